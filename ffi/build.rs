//! Build script of rdtrace-ffi.
//!
//! Without the `kpi` feature it does nothing. With it:
//!
//! * bindgen turns `sys-headers/rdtrace_shim.h` (which includes
//!   `rdtrace_kpi.h`) into `$OUT_DIR/kpi_bindings.rs`, the Rust side of the
//!   FreeBSD KPI (module `rdtrace_ffi::kpi`);
//! * the kernel symbols those declarations import are written, one per line
//!   and sorted, to `$OUT_DIR/kpi_declared.txt`, so a test can hold
//!   `sys-headers/kpi-symbols.txt` to exactly that set;
//! * when building for a kernel target (`target_os = "none"`), the C shim
//!   `sys-headers/rdtrace_shim.c` is compiled with clang using the kernel code
//!   generation of that architecture and linked into the crate, so it ends up
//!   inside rdtrace.ko.

fn main() {
    #[cfg(feature = "kpi")]
    kpi::generate();
}

#[cfg(feature = "kpi")]
mod kpi {
    use std::env;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// Prefix of the functions the shim defines (they are not kernel imports).
    const SHIM_PREFIX: &str = "rdtrace_shim_";

    pub fn generate() {
        let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
        let headers = manifest.join("../sys-headers");
        let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
        for file in ["rdtrace_kpi.h", "rdtrace_shim.h", "rdtrace_shim.c"] {
            println!("cargo:rerun-if-changed={}", headers.join(file).display());
        }

        let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
        let clang_target = clang_target_for(&arch);

        let bindings = bindgen::Builder::default()
            .header(headers.join("rdtrace_shim.h").to_string_lossy())
            .clang_args([
                format!("--target={clang_target}"),
                "-ffreestanding".to_string(),
                "-nostdinc".to_string(),
                format!("-I{}", headers.display()),
            ])
            .allowlist_file(".*rdtrace_(kpi|shim)\\.h")
            .use_core()
            .ctypes_prefix("core::ffi")
            .default_enum_style(bindgen::EnumVariation::Consts)
            .prepend_enum_name(false)
            .derive_default(true)
            .derive_debug(false)
            .layout_tests(true)
            .generate_comments(true)
            .generate()
            .expect("bindgen could not read sys-headers/rdtrace_shim.h");
        let text = bindings.to_string();
        fs::write(out.join("kpi_bindings.rs"), &text).expect("write kpi_bindings.rs");
        fs::write(out.join("kpi_declared.txt"), declared_imports(&text))
            .expect("write kpi_declared.txt");

        if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
            compile_shim(&headers, &arch, clang_target);
        }
    }

    fn clang_target_for(arch: &str) -> &'static str {
        match arch {
            "x86_64" => "x86_64-unknown-freebsd",
            "aarch64" => "aarch64-unknown-freebsd",
            "riscv64" => "riscv64-unknown-freebsd",
            other => panic!(
                "rdtrace KPI bindings: unsupported architecture {other} (amd64, arm64, riscv64 only)"
            ),
        }
    }

    /// The kernel symbols declared in `extern "C"` blocks of the bindings,
    /// sorted, one per line, shim functions left out.
    fn declared_imports(bindings: &str) -> String {
        let mut names: Vec<&str> = bindings
            .lines()
            .filter_map(|line| {
                let line = line.trim_start();
                let rest = line
                    .strip_prefix("pub fn ")
                    .or_else(|| line.strip_prefix("pub static mut "))
                    .or_else(|| line.strip_prefix("pub static "))?;
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
                Some(&rest[..end])
            })
            .filter(|name| !name.starts_with(SHIM_PREFIX))
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut list = names.join("\n");
        list.push('\n');
        list
    }

    /// Flags giving the shim the same code generation as the Rust code.
    fn kernel_cflags(arch: &str) -> &'static [&'static str] {
        match arch {
            "x86_64" => &[
                "-mcmodel=kernel",
                "-mno-red-zone",
                "-mno-mmx",
                "-mno-sse",
                "-msoft-float",
                "-fno-pic",
            ],
            "aarch64" => &["-mgeneral-regs-only", "-ffixed-x18", "-fPIC"],
            "riscv64" => &["-march=rv64imac", "-mabi=lp64", "-mcmodel=medany", "-fPIC"],
            _ => &[],
        }
    }

    fn compile_shim(headers: &Path, arch: &str, clang_target: &str) {
        let mut build = cc::Build::new();
        build
            .compiler("clang")
            .no_default_flags(true)
            .cargo_warnings(true)
            .file(headers.join("rdtrace_shim.c"))
            .include(headers)
            .flag(format!("--target={clang_target}"))
            .flag("-O2")
            .flag("-ffreestanding")
            .flag("-nostdinc")
            .flag("-fno-builtin")
            .flag("-fno-common")
            .flag("-fno-stack-protector")
            .flag("-fno-omit-frame-pointer")
            .flag("-mno-omit-leaf-frame-pointer")
            .flag("-fno-asynchronous-unwind-tables")
            .flag("-fno-unwind-tables")
            .flag("-ffunction-sections")
            .flag("-fdata-sections")
            .flag("-Wall")
            .flag("-Werror");
        for flag in kernel_cflags(arch) {
            build.flag(flag);
        }
        build.compile("rdtrace_shim");
    }
}
