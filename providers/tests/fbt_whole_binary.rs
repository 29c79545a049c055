//! fbt over a whole, large x86_64 binary (this test binary, or the file
//! named by RDTRACE_FBT_MEASURE_BIN): enumerate its function symbols,
//! decode every function, create the probes, enable all of them (writing a
//! breakpoint at every site of an in-memory copy of the code), disable
//! them all, and check that the code is restored byte for byte. Prints how
//! many functions are instrumented and how long each phase takes (the
//! figures issue #6 asks for).

mod common;

use common::MockHost;
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use rdtrace_framework::platform::Errno;
use rdtrace_providers::fbt::isa::x86_64::X86_64;
use rdtrace_providers::fbt::{FbtProvider, FunctionSymbol};
use rdtrace_providers::text::TextWriter;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A copy of the binary's `.text`, written through the provider.
struct TextCopy {
    base: u64,
    bytes: Mutex<Vec<u8>>,
    writes: AtomicUsize,
}

impl TextWriter for TextCopy {
    fn read_text(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let off = addr.checked_sub(self.base).ok_or(Errno::EFAULT)? as usize;
        let mem = self.bytes.lock().unwrap();
        buf.copy_from_slice(mem.get(off..off + buf.len()).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    unsafe fn write_text(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let off = addr.checked_sub(self.base).ok_or(Errno::EFAULT)? as usize;
        let mut mem = self.bytes.lock().unwrap();
        mem.get_mut(off..off + bytes.len())
            .ok_or(Errno::EFAULT)?
            .copy_from_slice(bytes);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn instrument_every_function_of_a_large_binary() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let path = std::env::var("RDTRACE_FBT_MEASURE_BIN")
        .unwrap_or_else(|_| std::env::current_exe().unwrap().display().to_string());
    let data = std::fs::read(&path).unwrap();
    let file = object::File::parse(&*data).expect("an ELF file");
    let text = file.section_by_name(".text").expect(".text");
    let (base, code) = (text.address(), text.data().unwrap().to_vec());
    let end = base + code.len() as u64;

    let started = Instant::now();
    let functions: Vec<(String, u64, u64)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .filter(|s| s.address() >= base && s.address() + s.size() <= end)
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.address(), s.size())))
        .collect();
    let listed = started.elapsed();
    assert!(
        functions.len() > 1000,
        "a large binary: {}",
        functions.len()
    );

    let host = MockHost::leaked(1);
    let copy: &'static TextCopy = Box::leak(Box::new(TextCopy {
        base,
        bytes: Mutex::new(code.clone()),
        writes: AtomicUsize::new(0),
    }));
    let fbt: FbtProvider<X86_64> = FbtProvider::new(host, copy);
    fbt.set_handle(1);
    let started = Instant::now();
    let stats = fbt.provide_module(
        "bin",
        functions.iter().map(|(n, a, s)| FunctionSymbol {
            name: n,
            addr: *a,
            size: *s,
        }),
    );
    let provided = started.elapsed();

    let probes = fbt.probe_list();
    let started = Instant::now();
    let mut refused = 0usize;
    for (id, parg, _, _) in &probes {
        if fbt.enable(*id, *parg).is_err() {
            refused += 1;
        }
    }
    let enabled = started.elapsed();
    let sites_written = copy.writes.load(Ordering::Relaxed);
    let patched = {
        let mem = copy.bytes.lock().unwrap();
        mem.iter().zip(&code).filter(|(a, b)| a != b).count()
    };
    let started = Instant::now();
    for (id, parg, _, _) in &probes {
        fbt.disable(*id, *parg);
    }
    let disabled = started.elapsed();

    eprintln!(
        "fbt over {path}: {} function symbols ({} excluded, {} aliases) -> {} entry probes, {} return probes \
         over {} return sites; symbols listed in {listed:?}, decoded + probes created in {provided:?}; \
         {} probes enabled ({refused} refused, {sites_written} breakpoints written) in {enabled:?}, \
         disabled in {disabled:?}",
        stats.functions,
        stats.excluded,
        stats.aliases,
        stats.entry_probes,
        stats.return_probes,
        stats.return_sites,
        probes.len(),
    );
    assert_eq!(
        refused, 0,
        "every decoded site held the bytes seen at decode time"
    );
    assert_eq!(
        sites_written,
        stats.entry_probes + stats.return_sites,
        "one breakpoint per site"
    );
    assert!(
        patched > 0 && patched <= sites_written,
        "breakpoints are in the code"
    );
    assert!(
        stats.entry_probes * 2 > stats.functions - stats.excluded - stats.aliases,
        "most functions get an entry probe"
    );
    assert_eq!(
        *copy.bytes.lock().unwrap(),
        code,
        "disabling restored every byte"
    );
}
