//! The kernel linker's files as the fbt and sdt providers see them: the
//! FreeBSD implementation of `rdtrace_providers::linker_files::LinkerFiles`
//! over `linker_file_foreach`, `linker_file_lookup_set` and
//! `linker_file_function_listall`.
//!
//! A file's name is read from `struct linker_file` (`filename`, after the
//! kobj ops pointer, refs, userrefs, flags and the list link: offset 40 on
//! LP64, FreeBSD 12 through 15), its load range from `address` (64) and
//! `size` (72).
//!
//! `linker_file_foreach` holds the kernel linker's lock while it runs the
//! callback; the callbacks here only record the file pointers. The list is
//! used after the lock is dropped, as FreeBSD's fbt does, so a file could
//! unload meanwhile; files with enabled probes cannot (kld_unload_try).
//! Not probe context; must not be called from a kld_load/kld_unload handler
//! (the linker lock is held there).

/// Offsets in `struct linker_file` (LP64).
pub const LF_FILENAME_OFFSET: usize = 40;
pub const LF_ADDRESS_OFFSET: usize = 64;
pub const LF_SIZE_OFFSET: usize = 72;

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::{LF_ADDRESS_OFFSET, LF_FILENAME_OFFSET, LF_SIZE_OFFSET};
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::ffi::{c_char, c_int, c_void, CStr};

    use rdtrace_ffi::kpi;
    use rdtrace_providers::linker_files::{LinkerFile, LinkerFiles};

    /// The kernel linker.
    pub struct KpiLinkerFiles;

    unsafe extern "C" fn collect_file(lf: kpi::linker_file_t, arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the Vec files() passes; the callback runs
        // synchronously inside linker_file_foreach.
        let files = unsafe { &mut *(arg as *mut Vec<LinkerFile>) };
        files.push(LinkerFile(lf as usize));
        0
    }

    type FunctionSink<'a> = &'a mut dyn FnMut(&str, u64, u64);

    unsafe extern "C" fn each_function(
        _lf: kpi::linker_file_t,
        _index: c_int,
        symval: *mut kpi::linker_symval_t,
        arg: *mut c_void,
    ) -> c_int {
        // SAFETY: `arg` is the `&mut FunctionSink` functions() passes, alive
        // for the synchronous listall call.
        let sink = unsafe { &mut *(arg as *mut FunctionSink<'_>) };
        // SAFETY: the linker passes a valid symval whose name is a C string.
        let (name, value, size) = unsafe {
            let s = &*symval;
            (s.name, s.value as u64, s.size as u64)
        };
        if name.is_null() {
            return 0;
        }
        // SAFETY: non-null symbol names are NUL-terminated.
        if let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() {
            sink(name, value, size);
        }
        0
    }

    /// Load range of a file: (address, size).
    pub fn file_range(file: LinkerFile) -> (usize, usize) {
        // SAFETY: `file` is a live struct linker_file; the fields are
        // naturally aligned pointer-sized words.
        unsafe {
            (
                core::ptr::read((file.0 + LF_ADDRESS_OFFSET) as *const usize),
                core::ptr::read((file.0 + LF_SIZE_OFFSET) as *const usize),
            )
        }
    }

    /// The file's name (`kernel`, `foo.ko`).
    pub fn file_name(file: LinkerFile) -> String {
        // SAFETY: `file` is a live struct linker_file; `filename` is a C
        // string pointer (or null).
        let name =
            unsafe { core::ptr::read((file.0 + LF_FILENAME_OFFSET) as *const *const c_char) };
        if name.is_null() {
            return String::new();
        }
        // SAFETY: non-null file names are NUL-terminated.
        String::from(unsafe { CStr::from_ptr(name) }.to_str().unwrap_or(""))
    }

    impl LinkerFiles for KpiLinkerFiles {
        fn files(&self) -> Vec<LinkerFile> {
            let mut files: Vec<LinkerFile> = Vec::new();
            // SAFETY: the callback only pushes onto `files`, which outlives
            // the call.
            unsafe {
                kpi::linker_file_foreach(
                    Some(collect_file),
                    &mut files as *mut Vec<LinkerFile> as *mut c_void,
                )
            };
            files
        }

        fn name(&self, file: LinkerFile) -> String {
            file_name(file)
        }

        fn functions(&self, file: LinkerFile, f: &mut dyn FnMut(&str, u64, u64)) {
            let mut sink: FunctionSink<'_> = f;
            // SAFETY: `file` is a loaded file; the callback gets `sink`,
            // which outlives the call.
            unsafe {
                kpi::linker_file_function_listall(
                    file.0 as kpi::linker_file_t,
                    Some(each_function),
                    &mut sink as *mut FunctionSink<'_> as *mut c_void,
                )
            };
        }

        fn lookup_set(&self, file: LinkerFile, set: &str) -> Option<(usize, usize)> {
            // The linker wants the set's name without the section prefix
            // (it looks up `__start_set_<name>`).
            let set = set.strip_prefix("set_").unwrap_or(set);
            let mut name = [0u8; 64];
            let bytes = set.as_bytes();
            if bytes.len() >= name.len() {
                return None;
            }
            for (dst, src) in name.iter_mut().zip(bytes) {
                *dst = *src;
            }
            let mut start: usize = 0;
            let mut stop: usize = 0;
            let mut count: c_int = 0;
            // SAFETY: `name` is NUL-terminated; the out-parameters are
            // writable locals.
            let error = unsafe {
                kpi::linker_file_lookup_set(
                    file.0 as kpi::linker_file_t,
                    name.as_ptr() as *const c_char,
                    &mut start as *mut usize as *mut c_void,
                    &mut stop as *mut usize as *mut c_void,
                    &mut count,
                )
            };
            if error != 0 || start == 0 {
                return None;
            }
            Some((start, usize::try_from(count).unwrap_or(0)))
        }
    }
}
