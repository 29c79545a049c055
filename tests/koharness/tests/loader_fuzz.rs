//! Corrupted module files must be refused with an error (or, when the
//! corruption is harmless, linked), never crash the loader: thousands of
//! deterministic byte mutations of the fixture module (and rdtrace.ko when
//! present) go through parse + link, without running any module code.

mod common;

use rdtrace_koharness::elf::ModuleObject;
use rdtrace_koharness::isolate::run_isolated;
use rdtrace_koharness::kernel;
use rdtrace_koharness::loader::LinkedImage;

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Byte ranges worth corrupting: the ELF header, the section header table,
/// and every symbol table and RELA section.
fn interesting_ranges(bytes: &[u8]) -> Vec<(usize, usize)> {
    let obj = ModuleObject::parse(bytes.to_vec()).expect("pristine module parses");
    let shoff = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
    let mut v = vec![(0, 64), (shoff, obj.sections.len() * 64)];
    for s in &obj.sections {
        if s.sh_type == 2 || s.sh_type == 4 {
            v.push((s.offset as usize, s.size as usize));
        }
    }
    v
}

fn fuzz(name: &str, pristine: &[u8], rounds: usize, seed: u64) -> (usize, usize) {
    let ranges = interesting_ranges(pristine);
    let mut rng = Lcg(seed);
    let (mut refused, mut linked) = (0, 0);
    for _ in 0..rounds {
        let mut b = pristine.to_vec();
        for _ in 0..1 + rng.next() % 3 {
            let (start, len) = ranges[(rng.next() as usize) % ranges.len()];
            if len == 0 {
                continue;
            }
            let at = start + (rng.next() as usize) % len;
            b[at] = match rng.next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => b[at] ^ (1 << (rng.next() % 8)),
                _ => rng.next() as u8,
            };
        }
        match ModuleObject::parse(b).and_then(|o| LinkedImage::link(o, kernel::image())) {
            Ok(_image) => linked += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty(), "{name}: empty error message");
                refused += 1;
            }
        }
    }
    (refused, linked)
}

#[test]
fn corrupted_modules_are_refused_or_linked_never_crash() {
    run_isolated(
        "corrupted_modules_are_refused_or_linked_never_crash",
        "fuzz",
        || {
            let fixture = common::build_fixture(&[]);
            let (r, l) = fuzz("fixture.ko", &fixture, 3000, 1);
            println!("koharness: fixture.ko mutations: {r} refused, {l} linked");
            assert!(r > 0, "some corruptions must be refused");
            if let Some(ko) =
                common::ko_bytes("corrupted_modules_are_refused_or_linked_never_crash")
            {
                let (r, l) = fuzz("rdtrace.ko", &ko, 300, 2);
                println!("koharness: rdtrace.ko mutations: {r} refused, {l} linked");
                assert!(r > 0);
            }
        },
    );
}
