//! Checks each built rdtrace.ko (build/<arch>/rdtrace.ko). A module that has
//! not been built is skipped with a message, unless RDTRACE_REQUIRE_KO is set
//! (as `make test` does), in which case it is a failure.

use rdtrace_kocheck::*;

fn check_all(arch: Arch) {
    let Some(bytes) = load_module(arch) else {
        return;
    };
    let file = parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", arch.name()));
    let mut problems = Vec::new();
    if let Err(e) = check_header(&file, arch) {
        problems.push(e);
    }
    if let Err(e) = check_single_symtab(&file) {
        problems.push(e);
    }
    problems.extend(check_forbidden_content(&file));
    problems.extend(check_relocations(&file, arch));
    problems.extend(check_linker_sets(&file));
    let allow = kpi_allowlist();
    for name in unlisted_imports(&file, &allow) {
        problems.push(format!(
            "undefined symbol {name} is not in sys-headers/kpi-symbols.txt"
        ));
    }
    let listing = disassemble(&ko_path(arch), arch).unwrap_or_else(|e| panic!("{e}"));
    let count = instruction_count(&listing);
    assert!(
        count > 100,
        "only {count} instructions disassembled: listing not understood"
    );
    for line in fp_simd_uses(&listing, arch).into_iter().take(20) {
        problems.push(format!("FP/SIMD register use: {line}"));
    }
    if arch == Arch::Amd64 {
        for line in red_zone_uses(&listing).into_iter().take(20) {
            problems.push(format!("red-zone use: {line}"));
        }
    }
    for line in reserved_register_uses(&listing, arch).into_iter().take(20) {
        problems.push(format!("reserved per-CPU register use: {line}"));
    }
    assert!(
        problems.is_empty(),
        "build/{}/rdtrace.ko fails the FreeBSD module checks:\n  {}",
        arch.name(),
        problems.join("\n  ")
    );
}

#[test]
fn amd64_module_is_loadable() {
    check_all(Arch::Amd64);
}

#[test]
fn arm64_module_is_loadable() {
    check_all(Arch::Arm64);
}

#[test]
fn riscv64_module_is_loadable() {
    check_all(Arch::Riscv64);
}

#[test]
fn amd64_module_has_no_32bit_or_got_relocations() {
    let Some(bytes) = load_module(Arch::Amd64) else {
        return;
    };
    let file = parse(&bytes).unwrap();
    let bad: Vec<_> = relocation_types(&file)
        .into_iter()
        .filter(|(t, _)| {
            matches!(
                *t,
                object::elf::R_X86_64_32
                    | object::elf::R_X86_64_GOTPCREL
                    | object::elf::R_X86_64_GOTPCRELX
                    | object::elf::R_X86_64_REX_GOTPCRELX
            )
        })
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    // The module really is relocated: the sets need R_X86_64_64 slots.
    assert!(relocation_types(&file)
        .iter()
        .any(|(t, _)| *t == object::elf::R_X86_64_64));
}

#[test]
fn modules_import_only_what_they_use_from_the_kpi_list() {
    let allow = kpi_allowlist();
    assert!(allow.contains("module_register_init"));
    for arch in Arch::ALL {
        let Some(bytes) = load_module(arch) else {
            continue;
        };
        let file = parse(&bytes).unwrap();
        let imports = undefined_symbols(&file);
        assert!(
            imports.contains("module_register_init"),
            "{}: the module must import module_register_init, imports {imports:?}",
            arch.name()
        );
    }
}

#[test]
fn kernel_dependency_matches_the_release_built_for() {
    let release = std::env::var("FREEBSD_RELEASE").unwrap_or_else(|_| "15.0".into());
    let expected = expected_kernel_range(&release).expect("FREEBSD_RELEASE is MAJOR.MINOR");
    for arch in Arch::ALL {
        let Some(bytes) = load_module(arch) else {
            continue;
        };
        let file = parse(&bytes).unwrap();
        let range = kernel_dependency(&file).unwrap_or_else(|e| panic!("{}: {e}", arch.name()));
        assert_eq!(
            range,
            expected,
            "{}: MDT_DEPEND kernel range for FREEBSD_RELEASE={release}",
            arch.name()
        );
    }
}
