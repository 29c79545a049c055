//! Shared helpers of the harness integration tests: finding the real
//! rdtrace.ko (or skipping/failing as the environment asks) and loading it.

#![allow(dead_code)]

pub mod consumer;

use std::path::PathBuf;

use rdtrace_koharness::kld::Kld;

/// Path of the amd64 module: `$RDTRACE_KO`, else `build/amd64/rdtrace.ko`.
pub fn ko_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RDTRACE_KO") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../build/amd64/rdtrace.ko")
}

/// The module's bytes, or None (after printing a SKIPPED line) when it is
/// missing and `RDTRACE_REQUIRE_KO` is not set. With it set, a missing
/// module fails the test.
pub fn ko_bytes(test: &str) -> Option<Vec<u8>> {
    let path = ko_path();
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var_os("RDTRACE_REQUIRE_KO").is_some() {
                panic!(
                    "{}: {e} (RDTRACE_REQUIRE_KO is set; run scripts/build-kmod.sh amd64)",
                    path.display()
                );
            }
            println!("koharness: SKIPPED {test}: {} not found ({e}); build it with scripts/build-kmod.sh amd64", path.display());
            None
        }
    }
}

/// Load the real module, panicking with the loader's message on failure.
pub fn load_rdtrace(bytes: Vec<u8>) -> Kld {
    match Kld::load("rdtrace.ko", bytes) {
        Ok(k) => k,
        Err(e) => panic!(
            "loading rdtrace.ko failed: {e}\nconsole:\n{}",
            rdtrace_koharness::kernel::console()
        ),
    }
}

/// Compile the hand-written fixture module (tests/fixtures/fixture_module.c)
/// with kernel code generation and `ld.lld -r`, with extra `-D` defines.
/// Returns the object's bytes.
pub fn build_fixture(defines: &[&str]) -> Vec<u8> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: Mutex<Option<HashMap<String, Vec<u8>>>> = Mutex::new(None);
    let key = defines.join(" ");
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(b) = cache.get(&key) {
        return b.clone();
    }
    let b = compile_fixture(defines);
    cache.insert(key, b.clone());
    b
}

fn compile_fixture(defines: &[&str]) -> Vec<u8> {
    use std::process::Command;
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture_module.c");
    let tag = defines.join("_").replace(['=', '-'], "");
    let dir = std::env::temp_dir().join(format!("koharness-fixture-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create fixture dir");
    let obj = dir.join("fixture.o");
    let ko = dir.join("fixture.ko");
    let mut cc = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()));
    cc.args([
        "--target=x86_64-unknown-freebsd",
        "-mcmodel=kernel",
        "-mno-red-zone",
        "-ffreestanding",
        "-fno-pic",
        "-fno-asynchronous-unwind-tables",
        "-mno-sse",
        "-mno-mmx",
        "-msoft-float",
        "-O1",
        "-c",
    ]);
    for d in defines {
        cc.arg(format!("-D{d}"));
    }
    let st = cc
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("run clang (needed for the fixture module)");
    assert!(st.success(), "clang failed on the fixture module");
    let lld = ["ld.lld", "ld.lld-19", "ld.lld-22"]
        .into_iter()
        .find(|t| Command::new(t).arg("--version").output().is_ok())
        .expect("ld.lld (ld.lld-19) is needed for the fixture module");
    let st = Command::new(lld)
        .arg("-r")
        .arg(&obj)
        .arg("-o")
        .arg(&ko)
        .status()
        .expect("run ld.lld");
    assert!(st.success(), "ld.lld -r failed on the fixture module");
    let bytes = std::fs::read(&ko).expect("read fixture.ko");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// Lines of the kernel console that start with `prefix`, in order.
pub fn console_lines(prefix: &str) -> Vec<String> {
    rdtrace_koharness::kernel::console()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect()
}
