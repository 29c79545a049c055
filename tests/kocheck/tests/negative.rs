//! The checks must reject what FreeBSD's loader rejects. These tests compile
//! small deliberately wrong objects with clang and run the checks on them;
//! without clang they are skipped with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

use rdtrace_kocheck::*;

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rdtrace-kocheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compile `source` with clang for `target` and `flags`; None if no clang.
fn compile(name: &str, source: &str, target: &str, flags: &[&str]) -> Option<PathBuf> {
    let dir = scratch_dir();
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, source).unwrap();
    let status = Command::new("clang")
        .arg(format!("--target={target}"))
        .args(["-c", "-O2", "-ffreestanding", "-nostdinc"])
        .args(flags)
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .status();
    match status {
        Ok(s) if s.success() => Some(o),
        Ok(s) => panic!("clang failed on {name}: {s}"),
        Err(_) => {
            println!("SKIPPED: clang not available for the negative .ko checks");
            None
        }
    }
}

const BAD_MODULE: &str = r#"
extern int some_global;
extern void not_a_kernel_function(void);
double scale(double x) { return x * 3.5; }
int read_global(void) { not_a_kernel_function(); return some_global; }
__attribute__((section("set_sysinit_set"), used)) void *first = (void *)read_global;
"#;

fn listing_of(path: &Path, arch: Arch) -> String {
    disassemble(path, arch).unwrap()
}

#[test]
fn pic_sse_object_is_rejected_on_amd64() {
    let Some(obj) = compile(
        "bad_amd64",
        BAD_MODULE,
        "x86_64-unknown-freebsd",
        &["-fPIC"],
    ) else {
        return;
    };
    let bytes = std::fs::read(&obj).unwrap();
    let file = parse(&bytes).unwrap();
    assert!(check_header(&file, Arch::Amd64).is_ok());
    let relocs = check_relocations(&file, Arch::Amd64);
    assert!(
        relocs.iter().any(|p| p.contains("relocation type")),
        "GOT-relative relocations must be rejected: {relocs:?}"
    );
    let fp = fp_simd_uses(&listing_of(&obj, Arch::Amd64), Arch::Amd64);
    assert!(!fp.is_empty(), "SSE use must be found");
    let unlisted = unlisted_imports(&file, &kpi_allowlist());
    assert!(
        unlisted.contains(&"not_a_kernel_function".to_string()),
        "{unlisted:?}"
    );
    assert!(
        unlisted.contains(&"some_global".to_string()),
        "{unlisted:?}"
    );
    let sets = check_linker_sets(&file);
    assert!(
        sets.iter().any(|p| p.contains("set_modmetadata_set")),
        "missing metadata set must be reported: {sets:?}"
    );
    // An ET_REL file is not what arm64 loads.
    assert!(check_header(&file, Arch::Arm64).is_err());
}

#[test]
fn small_code_model_is_rejected_on_amd64() {
    // Without -mcmodel=kernel, absolute addresses use R_X86_64_32.
    let Some(obj) = compile(
        "small_amd64",
        "extern int table[]; int *where(void) { return table; }",
        "x86_64-unknown-freebsd",
        &["-fno-pic", "-mcmodel=small"],
    ) else {
        return;
    };
    let bytes = std::fs::read(&obj).unwrap();
    let file = parse(&bytes).unwrap();
    let types: Vec<u32> = relocation_types(&file)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert!(types.contains(&object::elf::R_X86_64_32), "{types:?}");
    assert!(!check_relocations(&file, Arch::Amd64).is_empty());
}

#[test]
fn fp_code_is_found_on_arm64_and_riscv64() {
    if let Some(obj) = compile("fp_arm64", BAD_MODULE, "aarch64-unknown-freebsd", &[]) {
        let fp = fp_simd_uses(&listing_of(&obj, Arch::Arm64), Arch::Arm64);
        assert!(!fp.is_empty(), "arm64 FP use must be found");
    }
    if let Some(obj) = compile(
        "fp_riscv64",
        BAD_MODULE,
        "riscv64-unknown-freebsd",
        &["-march=rv64imafdc", "-mabi=lp64d"],
    ) {
        let fp = fp_simd_uses(&listing_of(&obj, Arch::Riscv64), Arch::Riscv64);
        assert!(!fp.is_empty(), "riscv64 FP use must be found");
    }
}

#[test]
fn split_linker_set_is_rejected() {
    // Two sections with the same set name (what GNU ld -r produced from
    // Rust's retained set entries): a loader taking the first one would
    // silently skip the second.
    let Some(obj) = compile(
        "split_set",
        r#"
        __asm__(".section set_sysinit_set,\"aw\",@progbits,unique,1\n.quad 0\n"
                ".section set_sysinit_set,\"aw\",@progbits,unique,2\n.quad 0\n"
                ".text\n");
        "#,
        "x86_64-unknown-freebsd",
        &["-fno-pic"],
    ) else {
        return;
    };
    let bytes = std::fs::read(&obj).unwrap();
    let file = parse(&bytes).unwrap();
    let problems = check_linker_sets(&file);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("set_sysinit_set is split over 2 sections")),
        "{problems:?}"
    );
}

#[test]
fn red_zone_leaf_function_is_found_on_amd64() {
    // A user-space build keeps a leaf function's locals in the red zone.
    let Some(obj) = compile(
        "red_zone",
        "int leaf(int x) { volatile int spill[4]; spill[x & 3] = x; return spill[(x + 1) & 3]; }",
        "x86_64-unknown-freebsd",
        &["-mred-zone", "-fno-omit-frame-pointer"],
    ) else {
        return;
    };
    let uses = red_zone_uses(&listing_of(&obj, Arch::Amd64));
    assert!(!uses.is_empty(), "red-zone use must be found");
    // The same code built for the kernel is clean.
    let Some(kernel) = compile(
        "no_red_zone",
        "int leaf(int x) { volatile int spill[4]; spill[x & 3] = x; return spill[(x + 1) & 3]; }",
        "x86_64-unknown-freebsd",
        &["-mno-red-zone", "-fno-omit-frame-pointer"],
    ) else {
        return;
    };
    let uses = red_zone_uses(&listing_of(&kernel, Arch::Amd64));
    assert!(uses.is_empty(), "{uses:?}");
}
