//! Macros for rdtrace's own Rust code to declare SDT providers and probes
//! that land in the same linker sets as the kernel's, and to fire them.
//!
//! ```
//! rdtrace_providers::sdt_provider_define!(pub RDTRACE_SDT, "rdtrace");
//! rdtrace_providers::sdt_probe_define!(
//!     pub BUF_SWITCH, RDTRACE_SDT, "framework", "buffer", "switch__start", ["int", "uint64_t"]
//! );
//! # fn main() {
//! let (cpu, bytes) = (1u32, 4096u64);
//! // Disabled: nothing fires and the arguments are not evaluated.
//! rdtrace_providers::sdt_probe!(BUF_SWITCH, cpu, bytes);
//! assert_eq!(BUF_SWITCH.enabled_id(), 0);
//! assert_eq!(BUF_SWITCH.n_args, 2);
//! # }
//! ```
//!
//! Call sites test the probe's id (no hot-patching for rdtrace's own probes):
//! disabled, a site costs one atomic load and a branch. Probe context.

/// Declare an SDT provider record and put it in `set_sdt_providers_set`.
#[macro_export]
macro_rules! sdt_provider_define {
    ($vis:vis $ident:ident, $name:literal) => {
        $vis static $ident: $crate::sdt::layout::SdtProviderRecord = $crate::sdt::layout::SdtProviderRecord {
            name: concat!($name, "\0").as_ptr().cast(),
            list: $crate::sdt::layout::ListSlot::new(),
            id: ::core::cell::UnsafeCell::new(0),
            refcount: ::core::cell::UnsafeCell::new(0),
        };
        const _: () = {
            #[link_section = "set_sdt_providers_set"]
            #[used]
            static ENTRY: &$crate::sdt::layout::SdtProviderRecord = &$ident;
        };
    };
}

/// Declare an SDT probe of `provider` with argument type names, putting the
/// probe in `set_sdt_probes_set` and its argument types in
/// `set_sdt_argtypes_set`.
#[macro_export]
macro_rules! sdt_probe_define {
    ($vis:vis $ident:ident, $provider:path, $module:literal, $function:literal, $name:literal, [$($argty:literal),* $(,)?]) => {
        $vis static $ident: $crate::sdt::layout::SdtProbe = $crate::sdt::layout::SdtProbe {
            version: ::core::mem::size_of::<$crate::sdt::layout::SdtProbe>() as u64,
            provider: &$provider,
            list: $crate::sdt::layout::ListSlot::new(),
            argtypes: $crate::sdt::layout::ListSlot::new(),
            tracepoints: $crate::sdt::layout::ListSlot::new(),
            module: concat!($module, "\0").as_ptr().cast(),
            function: concat!($function, "\0").as_ptr().cast(),
            name: concat!($name, "\0").as_ptr().cast(),
            id: ::core::sync::atomic::AtomicU64::new(0),
            n_args: { let types: &[&str] = &[$($argty),*]; types.len() as i32 },
            linker_file: ::core::cell::UnsafeCell::new(0),
        };
        const _: () = {
            #[link_section = "set_sdt_probes_set"]
            #[used]
            static ENTRY: &$crate::sdt::layout::SdtProbe = &$ident;
        };
        $crate::__sdt_argtypes!($ident, 0; $($argty),*);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_argtypes {
    ($probe:ident, $index:expr; ) => {};
    ($probe:ident, $index:expr; $ty:literal $(, $rest:literal)*) => {
        const _: () = {
            static ARG: $crate::sdt::layout::SdtArgType = $crate::sdt::layout::SdtArgType {
                index: $index,
                type_name: concat!($ty, "\0").as_ptr().cast(),
                translated_type: ::core::ptr::null(),
                list: $crate::sdt::layout::ListSlot::new(),
                probe: &$probe,
            };
            #[link_section = "set_sdt_argtypes_set"]
            #[used]
            static ENTRY: &$crate::sdt::layout::SdtArgType = &ARG;
        };
        $crate::__sdt_argtypes!($probe, $index + 1; $($rest),*);
    };
}

/// Fire an SDT probe declared with `sdt_probe_define!` if it is enabled.
/// The arguments (at most five, each convertible with `as u64`) are only
/// evaluated when it is.
#[macro_export]
macro_rules! sdt_probe {
    ($probe:path $(, $arg:expr)* $(,)?) => {{
        let id = $probe.enabled_id();
        if id != 0 {
            $crate::sdt::fire_own(id, $crate::sdt::pad_args(&[$(($arg) as u64),*]));
        }
    }};
}
