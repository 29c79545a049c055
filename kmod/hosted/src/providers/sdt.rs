//! SDT on the hosted kernel: the probes rdtrace's Rust code declares with
//! `sdt_probe_define!` sit in this process's ELF linker sets, bounded by the
//! linker's `__start_`/`__stop_` symbols, exactly where the kernel's
//! `linker_file_lookup_set` would find them in a module.
//!
//! The hosted crate always defines at least one probe (see `syscall.rs`), so
//! the provider, probe and argtype sets exist in every binary that links it.
//! Not probe context.

use rdtrace_providers::glue::SdtSource;
use rdtrace_providers::sdt::layout::{SdtArgType, SdtProbe, SdtProviderRecord};
use rdtrace_providers::sdt::LinkerSets;

extern "C" {
    static __start_set_sdt_providers_set: *const SdtProviderRecord;
    static __stop_set_sdt_providers_set: *const SdtProviderRecord;
    static __start_set_sdt_probes_set: *const SdtProbe;
    static __stop_set_sdt_probes_set: *const SdtProbe;
    static __start_set_sdt_argtypes_set: *const SdtArgType;
    static __stop_set_sdt_argtypes_set: *const SdtArgType;
}

fn linker_set<T>(start: *const T, stop: *const T) -> &'static [T] {
    let bytes = (stop as usize).saturating_sub(start as usize);
    let count = bytes / std::mem::size_of::<T>().max(1);
    // SAFETY: the linker places `count` consecutive, initialised entries of
    // the set between its __start_ and __stop_ symbols, for the process's life.
    unsafe { std::slice::from_raw_parts(start, count) }
}

/// This process's SDT linker sets, named after the executable.
pub fn own_linker_sets() -> LinkerSets<'static> {
    LinkerSets {
        file_name: "rdtrace-hosted",
        providers: linker_set(
            &raw const __start_set_sdt_providers_set,
            &raw const __stop_set_sdt_providers_set,
        ),
        probes: linker_set(
            &raw const __start_set_sdt_probes_set,
            &raw const __stop_set_sdt_probes_set,
        ),
        argtypes: linker_set(
            &raw const __start_set_sdt_argtypes_set,
            &raw const __stop_set_sdt_argtypes_set,
        ),
        tracepoints: &[],
    }
}

/// The distinct provider names in this process's sets.
pub fn own_provider_names() -> Vec<String> {
    let mut names: Vec<String> = own_linker_sets()
        .providers
        .iter()
        .filter_map(|&p| {
            // SAFETY: entries of our own linker set are live 'static records.
            let record = unsafe { p.as_ref() }?;
            // SAFETY: a record's name is a 'static C string (or null).
            Some(unsafe { rdtrace_providers::sdt::c_str(record.name) }.to_string())
        })
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// An [`SdtSource`] over this process's own linker sets.
pub struct OwnLinkerSets;

impl SdtSource for OwnLinkerSets {
    fn for_each_file(&self, f: &mut dyn FnMut(&LinkerSets<'_>)) {
        f(&own_linker_sets());
    }
}
