//! Fails when a panic or an allocation becomes reachable from
//! `dtrace_probe()`: builds `tests/nopanic` (a no_std shared object whose
//! only root calls `dtrace_probe`, with a panic handler and allocator that
//! reference undefined symbols) and requires the link to succeed; a
//! negative control with an injected panic must fail to link.

use std::path::PathBuf;
use std::process::Command;

fn build(inject: bool) -> (bool, String, PathBuf) {
    build_with(inject, true)
}

/// Builds the check object; `strict` adds `--no-undefined` (the actual check).
fn build_with(inject: bool, strict: bool) -> (bool, String, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/nopanic");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.join("target"))
        .join(if strict {
            "nopanic-check"
        } else {
            "nopanic-diagnose"
        });
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // An explicit --target keeps the link flags away from build scripts.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let vv = Command::new(rustc).arg("-vV").output().expect("rustc -vV");
    let host = String::from_utf8_lossy(&vv.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("host triple");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&dir)
        .args([
            "build",
            "--release",
            "--offline",
            "--quiet",
            "--target",
            &host,
        ])
        .arg("--target-dir")
        .arg(&target)
        .env(
            "RUSTFLAGS",
            "-C link-arg=-Wl,--gc-sections -C link-arg=-Wl,--no-undefined -C link-arg=-lc",
        )
        .env_remove("CARGO_TARGET_DIR");
    if inject {
        cmd.args(["--features", "inject-panic"]);
    }
    let out = cmd.output().expect("run cargo");
    let so = target
        .join(&host)
        .join("release/librdtrace_nopanic_check.so");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        so,
    )
}

/// Total size of the defined functions whose (demangled) name contains
/// `part` (via `nm -S -C`).
fn code_size(so: &std::path::Path, part: &str) -> u64 {
    let out = Command::new("nm")
        .args(["-S", "-C"])
        .arg(so)
        .output()
        .expect("nm");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, ' ').collect();
            (f.len() == 4 && f[2].eq_ignore_ascii_case("t") && f[3].contains(part))
                .then(|| u64::from_str_radix(f[1], 16).unwrap_or(0))
        })
        .sum()
}

/// The functions in the (non-strict) object that call a panic or
/// allocation entry point: the culprits to fix.
fn culprits() -> String {
    let (_, build_err, so) = build_with(false, false);
    if !so.exists() {
        return format!("(diagnostic build failed: {build_err})");
    }
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn", "-C"])
        .arg(&so)
        .output();
    let Ok(out) = out else {
        return "(objdump unavailable)".into();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut current = String::new();
    let mut found = Vec::new();
    for line in text.lines() {
        if line.ends_with(">:") {
            current = line.to_owned();
        } else if (line.contains("call") || line.contains("jmp"))
            && ["panicking", "panic_", "_fail>", "may_allocate"]
                .iter()
                .any(|p| line.contains(p))
            && !current.contains("core::panicking")
        {
            let target = line.split_whitespace().last().unwrap_or("");
            found.push(format!("{current} -> {target}"));
        }
    }
    found.sort();
    found.dedup();
    found.join("\n")
}

#[test]
fn dtrace_probe_reaches_no_panic_and_no_allocation() {
    let (ok, err, so) = build(false);
    assert!(
        ok,
        "a panic or allocation is reachable from dtrace_probe(); callers:\n{}\n\nlinker:\n{err}",
        culprits()
    );
    // The firing path really is in the object (not optimised away).
    let size = code_size(&so, "rdtrace_framework::");
    assert!(
        size > 4000,
        "only {size} bytes of framework code linked: the check would be vacuous"
    );
    let (ok, err, _) = build(true);
    assert!(
        !ok,
        "the negative control (injected panic) linked, so the check is blind"
    );
    assert!(
        err.contains("rdtrace_probe_context_may_panic"),
        "unexpected failure:\n{err}"
    );
}
