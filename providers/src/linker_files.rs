//! fbt and sdt sources over the kernel's loaded files ("linker files"): the
//! module glue implements [`LinkerFiles`] over `linker_file_foreach`,
//! `linker_file_function_listall` and `linker_file_lookup_set`, and gets the
//! [`FbtSource`](crate::glue::FbtSource) and
//! [`SdtSource`](crate::glue::SdtSource) the providers need.
//!
//! Module names: the file name without `.ko` (the kernel's file is
//! `kernel`). fbt skips DTrace's own files ([`module_excluded`]). Not probe
//! context.

use crate::fbt::isa::Isa;
use crate::fbt::{module_excluded, FbtProvider, FunctionSymbol};
use crate::glue::{FbtSource, SdtSource};
use crate::sdt::layout::{SdtArgType, SdtProbe, SdtProviderRecord, SdtTracepoint};
use crate::sdt::{module_of_file, LinkerSets};
use alloc::string::String;
use alloc::vec::Vec;

/// A loaded file, as the kernel identifies it (`linker_file_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkerFile(pub usize);

/// The kernel linker services the sources need.
pub trait LinkerFiles: Sync {
    /// Every loaded file, kernel first.
    fn files(&self) -> Vec<LinkerFile>;
    /// The file's name (`kernel`, `foo.ko`).
    fn name(&self, file: LinkerFile) -> String;
    /// The file's function symbols: (name, address, size).
    fn functions(&self, file: LinkerFile, f: &mut dyn FnMut(&str, u64, u64));
    /// The bounds of linker set `set` in `file` as (first entry, entry
    /// count), or `None` if the file has no such set.
    fn lookup_set(&self, file: LinkerFile, set: &str) -> Option<(usize, usize)>;
}

/// The kernel's files as an fbt and sdt source.
pub struct KernelFiles<L: LinkerFiles> {
    pub linker: L,
}

impl<I: Isa, L: LinkerFiles> FbtSource<I> for KernelFiles<L>
where
    I::Emulation: Send + Sync,
{
    fn provide_all(&self, fbt: &FbtProvider<I>) {
        for file in self.linker.files() {
            let file_name = self.linker.name(file);
            if module_excluded(&file_name) {
                continue;
            }
            let mut symbols: Vec<(String, u64, u64)> = Vec::new();
            self.linker.functions(file, &mut |name, addr, size| {
                symbols.push((name.into(), addr, size))
            });
            fbt.provide_module(
                module_of_file(&file_name),
                symbols.iter().map(|(name, addr, size)| FunctionSymbol {
                    name,
                    addr: *addr,
                    size: *size,
                }),
            );
        }
    }
}

fn set_slice<'a, T>(linker: &impl LinkerFiles, file: LinkerFile, set: &str) -> &'a [T] {
    match linker.lookup_set(file, set) {
        // SAFETY: the kernel linker reports `count` consecutive entries of
        // the set at `start`, which stay mapped while the file is loaded
        // (the providers keep the file from unloading while probes are enabled).
        Some((start, count)) if start != 0 => unsafe {
            core::slice::from_raw_parts(start as *const T, count)
        },
        _ => &[],
    }
}

/// Call `f` with the SDT linker sets of one loaded `file` (not at all when
/// it defines no SDT probes).
pub fn with_file_sets(
    linker: &impl LinkerFiles,
    file: LinkerFile,
    f: &mut dyn FnMut(&LinkerSets<'_>),
) {
    use crate::sdt::layout::{ARGTYPES_SET, PROBES_SET, PROVIDERS_SET, TRACEPOINTS_SET};
    let file_name = linker.name(file);
    let probes: &[*const SdtProbe] = set_slice(linker, file, PROBES_SET);
    if probes.is_empty() {
        return;
    }
    let sets = LinkerSets {
        file_name: &file_name,
        providers: set_slice::<*const SdtProviderRecord>(linker, file, PROVIDERS_SET),
        probes,
        argtypes: set_slice::<*const SdtArgType>(linker, file, ARGTYPES_SET),
        tracepoints: set_slice::<SdtTracepoint>(linker, file, TRACEPOINTS_SET),
    };
    f(&sets);
}

impl<L: LinkerFiles> SdtSource for KernelFiles<L> {
    fn for_each_file(&self, f: &mut dyn FnMut(&LinkerSets<'_>)) {
        for file in self.linker.files() {
            with_file_sets(&self.linker, file, f);
        }
    }
}
