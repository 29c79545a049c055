//! sys-headers/layout-check.sh: our KPI declarations against the ABI facts
//! (always) and against a real FreeBSD kernel source tree (when one is
//! present; otherwise the script says SKIPPED and the test passes).

use std::collections::BTreeMap;
use std::process::Command;

use rdtrace_kocheck::workspace_root;

fn run_layout_check(arg: &str) -> Option<String> {
    let script = workspace_root().join("sys-headers/layout-check.sh");
    let output = match Command::new("sh").arg(&script).arg(arg).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {}: {e}", script.display()),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("clang: not found") || stderr.contains("clang: No such file") {
            println!("SKIPPED: clang not available for the layout check");
            return None;
        }
        panic!(
            "layout-check.sh {arg} failed:\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn expected_values() -> Option<BTreeMap<String, i64>> {
    let text = run_layout_check("--expected")?;
    Some(
        text.lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                (parts.next()? == "#define").then_some(())?;
                let name = parts.next()?.strip_prefix("EXPECT_")?.to_string();
                Some((name, parts.next()?.parse().ok()?))
            })
            .collect(),
    )
}

#[test]
fn declarations_match_the_abi_facts() {
    let Some(values) = expected_values() else {
        return;
    };
    // Independent numbers: abi-facts.md §7.3 and §9 (observed in real
    // FreeBSD 14.2 modules) and the FreeBSD constants they quote.
    let facts: &[(&str, i64)] = &[
        ("mod_metadata", 24),
        ("mod_metadata_md_data", 8),
        ("mod_metadata_md_cval", 16),
        ("mod_depend", 12),
        ("mod_version", 4),
        ("moduledata", 24),
        ("moduledata_evhand", 8),
        ("moduledata_priv", 16),
        ("sysinit", 32),
        ("sysinit_func", 16),
        ("sysinit_udata", 24),
        ("cdevsw_d_name", 8),
        ("cdevsw_d_open", 16),
        ("cdevsw_d_close", 32),
        ("cdevsw_d_ioctl", 56),
        ("cdevsw_d_mmap_single", 112),
        ("cdevsw_d_spare2", 136),
        ("D_VERSION", 0x5c48c353),
        ("MDT_DEPEND", 1),
        ("MDT_MODULE", 2),
        ("MDT_VERSION", 3),
        ("MDT_STRUCT_VERSION", 1),
        ("MOD_LOAD", 0),
        ("MOD_UNLOAD", 1),
        ("MOD_SHUTDOWN", 2),
        ("MOD_QUIESCE", 3),
        ("SI_SUB_DTRACE", 0x3020000),
        ("SI_SUB_DTRACE_PROVIDER", 0x3048000),
        ("SI_SUB_DRIVERS", 0x3100000),
        ("SI_ORDER_FIRST", 0),
        ("SI_ORDER_MIDDLE", 0x1000000),
    ];
    for (name, want) in facts {
        assert_eq!(values.get(*name), Some(want), "{name}");
    }
}

#[test]
fn declarations_match_a_freebsd_source_tree_if_present() {
    for arch in ["amd64", "arm64", "riscv64"] {
        let Some(out) = run_layout_check(arch) else {
            return;
        };
        if out.starts_with("SKIPPED") {
            println!("{}", out.trim());
            return;
        }
        assert!(out.contains("agrees with the FreeBSD headers"), "{out}");
    }
}
