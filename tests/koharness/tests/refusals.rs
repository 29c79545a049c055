//! What the kernel linker refuses, the harness refuses too, with a message
//! naming the offending symbol or type. Each case mutates a copy of a
//! module — the hand-built fixture (always) and the real rdtrace.ko (when
//! present) — and checks that the unmutated copy is accepted.

mod common;

use rdtrace_koharness::elf::{LoadError, ModuleObject, SHT_SYMTAB};
use rdtrace_koharness::kld::Kld;

/// The modules to mutate: the fixture, plus rdtrace.ko when it exists.
fn bases() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = vec![("fixture.ko", common::build_fixture(&[]))];
    if let Some(b) = common::ko_bytes("refusals (rdtrace.ko part)") {
        v.push(("rdtrace.ko", b));
    }
    v
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// File offset of section header `index`.
fn shdr(b: &[u8], index: usize) -> usize {
    u64::from_le_bytes(b[40..48].try_into().unwrap()) as usize + index * 64
}

fn refuse(name: &str, bytes: Vec<u8>) -> LoadError {
    match Kld::load(name, bytes) {
        Ok(_) => panic!("{name}: the mutated module was accepted"),
        Err(e) => e,
    }
}

#[test]
fn unmutated_modules_parse() {
    for (name, b) in bases() {
        let obj = ModuleObject::parse(b).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!obj.imports().is_empty(), "{name} imports kernel symbols");
    }
}

#[test]
fn wrong_elf_type_is_refused() {
    for (name, mut b) in bases() {
        put_u16(&mut b, 16, 3); // ET_DYN
        let e = refuse(name, b);
        assert_eq!(e, LoadError::NotRelocatable { e_type: 3 }, "{name}");
        assert!(e.to_string().contains("ELF type 3 is not ET_REL"), "{e}");
        assert_eq!(e.errno(), 78, "ENOSYS, so another loader may try");
    }
}

#[test]
fn wrong_machine_is_refused() {
    for (name, mut b) in bases() {
        put_u16(&mut b, 18, 183); // EM_AARCH64
        let e = refuse(name, b);
        assert_eq!(e, LoadError::WrongMachine { e_machine: 183 }, "{name}");
        assert!(
            e.to_string().contains("ELF machine 183 is not EM_X86_64"),
            "{e}"
        );
    }
}

#[test]
fn a_second_symbol_table_is_refused() {
    for (name, mut b) in bases() {
        let obj = ModuleObject::parse(b.clone()).unwrap();
        let victim = obj
            .sections
            .iter()
            .find(|s| {
                !s.is_loaded()
                    && s.index != 0
                    && s.sh_type != SHT_SYMTAB
                    && (s.name == ".comment" || s.name.starts_with(".note"))
            })
            .unwrap_or_else(|| panic!("{name}: no .comment/.note section to turn into a symtab"));
        let at = shdr(&b, victim.index) + 4;
        put_u32(&mut b, at, SHT_SYMTAB);
        let e = refuse(name, b);
        assert_eq!(e, LoadError::SymbolTableCount { count: 2 }, "{name}");
        assert!(e.to_string().contains("2 symbol tables"), "{e}");
    }
}

fn first_loaded_rela(obj: &ModuleObject) -> (usize, usize, String) {
    let rs = obj
        .relocs
        .iter()
        .find(|r| !r.entries.is_empty())
        .expect("a RELA section for a loaded section");
    let sec = obj
        .sections
        .iter()
        .find(|s| s.name == rs.name)
        .expect("rela section by name");
    let sym = &obj.symbols[rs.entries[0].sym as usize];
    (sec.index, sec.offset as usize, sym.name.clone())
}

#[test]
fn relocation_types_the_kernel_rejects_are_refused_by_name() {
    for (r_type, r_name) in [
        (10u32, "R_X86_64_32"),
        (9, "R_X86_64_GOTPCREL"),
        (5, "R_X86_64_COPY"),
        (42, "R_X86_64_REX_GOTPCRELX"),
    ] {
        for (name, mut b) in bases() {
            let obj = ModuleObject::parse(b.clone()).unwrap();
            let (_, rela_off, sym) = first_loaded_rela(&obj);
            // r_info = (sym << 32) | type: patch the low word of the first entry.
            put_u32(&mut b, rela_off + 8, r_type);
            let e = refuse(name, b);
            match &e {
                LoadError::UnacceptedRelocation {
                    r_type: t, symbol, ..
                } => {
                    assert_eq!(*t, r_type);
                    assert_eq!(symbol, &sym);
                }
                other => panic!("{name}: expected a relocation refusal, got {other}"),
            }
            let msg = e.to_string();
            assert!(
                msg.contains(r_name) && msg.contains("unexpected relocation type"),
                "{msg}"
            );
        }
    }
}

#[test]
fn a_linker_set_split_into_two_sections_is_refused() {
    for (name, mut b) in bases() {
        let obj = ModuleObject::parse(b.clone()).unwrap();
        let set = obj
            .sections
            .iter()
            .find(|s| s.name == "set_sysinit_set")
            .expect("set_sysinit_set");
        let other = obj
            .sections
            .iter()
            .find(|s| s.is_loaded() && !s.name.starts_with("set_") && s.name.starts_with(".rodata"))
            .expect("a loaded .rodata section");
        let set_name_off = get_u32(&b, shdr(&b, set.index));
        let at = shdr(&b, other.index);
        put_u32(&mut b, at, set_name_off);
        let e = refuse(name, b);
        assert_eq!(
            e,
            LoadError::SplitLinkerSet {
                name: "set_sysinit_set".into(),
                count: 2
            },
            "{name}"
        );
        assert!(
            e.to_string()
                .contains("`set_sysinit_set` is split into 2 sections"),
            "{e}"
        );
    }
}

#[test]
fn an_import_the_harness_lacks_is_refused_by_name() {
    for (name, mut b) in bases() {
        let obj = ModuleObject::parse(b.clone()).unwrap();
        let import = obj
            .imports()
            .into_iter()
            .find(|n| n == "printf" || n == "make_dev_s")
            .expect("printf or make_dev_s import");
        // Find the symbol and rename it in the string table.
        let symtab = obj
            .sections
            .iter()
            .find(|s| s.sh_type == SHT_SYMTAB)
            .unwrap();
        let strtab = &obj.sections[symtab.link as usize];
        let idx = obj
            .symbols
            .iter()
            .position(|s| s.name == import && s.is_undefined())
            .unwrap();
        let st_name = get_u32(&b, symtab.offset as usize + idx * 24) as usize;
        let last = strtab.offset as usize + st_name + import.len() - 1;
        b[last] = b'Q';
        let renamed = format!("{}Q", &import[..import.len() - 1]);
        let e = refuse(name, b);
        assert_eq!(
            e,
            LoadError::UndefinedSymbol {
                name: renamed.clone()
            },
            "{name}"
        );
        assert!(
            e.to_string()
                .contains(&format!("symbol {renamed} undefined")),
            "{e}"
        );
        assert_eq!(e.errno(), 2, "ENOENT like kldload");
    }
}

#[test]
fn a_kernel_version_outside_the_dependency_range_is_refused() {
    // The fixture depends on kernel [1500000, 1599999]; build one that wants 16.x.
    let src_dep = common::build_fixture(&[]);
    let needle = 1_500_000i32.to_le_bytes();
    let mut b = src_dep.clone();
    let at = b
        .windows(4)
        .position(|w| w == needle)
        .expect("mod_depend in .rodata");
    b[at..at + 4].copy_from_slice(&1_600_000i32.to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&1_600_000i32.to_le_bytes());
    b[at + 8..at + 12].copy_from_slice(&1_699_999i32.to_le_bytes());
    let e = refuse("fixture.ko", b);
    assert_eq!(e.errno(), 2);
    assert!(
        e.to_string()
            .contains("depends on kernel - not available or version mismatch"),
        "{e}"
    );
}
