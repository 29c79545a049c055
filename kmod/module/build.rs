//! Passes the target FreeBSD release (env `FREEBSD_RELEASE`, default 15.0) to
//! the crate as `RDTRACE_FREEBSD_RELEASE`, refusing releases rdtrace does not
//! support. The kernel-version range of the module's dependency on the kernel
//! is derived from it in `src/release.rs`.

fn main() {
    println!("cargo:rerun-if-env-changed=FREEBSD_RELEASE");
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("FREEBSD_RELEASE").unwrap_or_else(|_| "15.0".to_string());
    let release = release.trim();
    let (major, minor) = release
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .unwrap_or_else(|| panic!("FREEBSD_RELEASE={release:?}: expected MAJOR.MINOR, e.g. 15.0"));
    if !(14..=15).contains(&major) || minor > 99 {
        panic!(
            "FREEBSD_RELEASE={release}: rdtrace.ko supports FreeBSD 14.x and 15.x \
             (struct sysinit and the module ABI differ before 14)"
        );
    }
    println!("cargo:rustc-env=RDTRACE_FREEBSD_RELEASE={major}.{minor}");
}
