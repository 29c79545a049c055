//! FreeBSD kernel programming interface bindings (feature `kpi`).
//!
//! Generated at build time by bindgen from `sys-headers/rdtrace_kpi.h` (the
//! kernel functions, globals, structures and constants rdtrace.ko uses, in
//! our own declarations) and `sys-headers/rdtrace_shim.h` (the C shim that
//! turns FreeBSD macros and inline functions into real functions). Only the
//! kernel module uses this module; nothing here runs on the host, although it
//! compiles there so the module crate can be checked and unit-tested.
//!
//! [`DECLARED_IMPORTS`] is the list of kernel symbols these declarations
//! import, and [`IMPORT_ALLOWLIST`] is `sys-headers/kpi-symbols.txt`, which the
//! `.ko` checks use; a test keeps the two identical.

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/kpi_bindings.rs"));
}

pub use bindings::*;

/// Kernel symbols imported by the declarations in `sys-headers` (sorted, one per line).
pub const DECLARED_IMPORTS: &str = include_str!(concat!(env!("OUT_DIR"), "/kpi_declared.txt"));

/// `sys-headers/kpi-symbols.txt`: the kernel symbols rdtrace.ko may import.
pub const IMPORT_ALLOWLIST: &str = include_str!("../../../sys-headers/kpi-symbols.txt");

/// The names in a symbol list: one per line, `#` starts a comment line.
pub fn symbol_names(list: &str) -> impl Iterator<Item = &str> {
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    #[test]
    fn allowlist_matches_the_declarations_exactly() {
        let declared: BTreeSet<&str> = symbol_names(DECLARED_IMPORTS).collect();
        let listed: BTreeSet<&str> = symbol_names(IMPORT_ALLOWLIST).collect();
        let missing: Vec<_> = declared.difference(&listed).collect();
        let extra: Vec<_> = listed.difference(&declared).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "sys-headers/kpi-symbols.txt is out of step with rdtrace_kpi.h: \
             declared but not listed {missing:?}, listed but not declared {extra:?}"
        );
    }

    #[test]
    fn declarations_cover_the_module_essentials() {
        let declared: BTreeSet<&str> = symbol_names(DECLARED_IMPORTS).collect();
        for name in [
            "module_register_init",
            "make_dev_s",
            "destroy_dev",
            "devfs_set_cdevpriv",
            "malloc",
            "free",
            "callout_reset_sbt_on",
            "smp_rendezvous",
            "copyin",
            "copyout",
        ] {
            assert!(declared.contains(name), "{name} is not declared");
        }
        assert!(!declared.iter().any(|n| n.starts_with("rdtrace_shim_")));
    }

    #[test]
    fn kernel_structures_have_their_abi_sizes() {
        use core::mem::{offset_of, size_of};
        assert_eq!(size_of::<mod_metadata>(), 24);
        assert_eq!(size_of::<mod_depend>(), 12);
        assert_eq!(size_of::<moduledata_t>(), 24);
        assert_eq!(size_of::<sysinit>(), 32);
        assert_eq!(offset_of!(sysinit, func), 16);
        assert_eq!(size_of::<cdevsw>(), 184);
        assert_eq!(offset_of!(cdevsw, d_ioctl), 56);
        assert_eq!(offset_of!(cdevsw, d_spare1), 120);
        assert_eq!(size_of::<make_dev_args>(), 64);
        assert_eq!(offset_of!(make_dev_args, mda_uid), 32);
        assert_eq!(size_of::<callout>(), 64);
        assert_eq!(size_of::<mtx>(), 32);
        assert_eq!(size_of::<sx>(), 32);
        assert_eq!(D_VERSION, 0x5c48c353);
    }
}
