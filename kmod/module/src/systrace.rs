//! The syscall provider's FreeBSD glue: finds the native system call table
//! (`sysent[]`, `syscallnames[]`) and the systrace hook variables
//! (`systrace_probe_func`, `systrace_enabled`) and hands them to
//! `rdtrace_providers::syscall::freebsd::SysentTable`.
//!
//! The number of entries is not compiled in (SYS_MAXSYSCALL differs between
//! releases): it is the size of the kernel's `sysent` symbol divided by
//! `sizeof(struct sysent)`, bounded by the size of `syscallnames`, both from
//! the kernel linker's symbol table (`linker_ddb_lookup` +
//! `linker_ddb_symbol_values`).
//!
//! [`rdtrace_systrace_hook`] is what the kernel's syscall path calls; it
//! keeps the thread on its CPU (a critical section) while the provider
//! publishes the `struct syscall_args` for arguments 5..7.
//!
//! Load/unload context, except the hook, which runs in probe context.

/// Entries a table of `table_bytes` bytes holds, bounded by the entries of
/// a names array of `names_bytes` bytes (pointers).
pub const fn syscall_count(table_bytes: usize, sysent_size: usize, names_bytes: usize) -> usize {
    if sysent_size == 0 {
        return 0;
    }
    let entries = table_bytes / sysent_size;
    let names = names_bytes / core::mem::size_of::<usize>();
    if entries < names {
        entries
    } else {
        names
    }
}

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::syscall_count;
    use alloc::boxed::Box;
    use core::ffi::CStr;
    use core::sync::atomic::{AtomicUsize, Ordering};

    use rdtrace_ffi::kpi;
    use rdtrace_framework::platform::Errno;
    use rdtrace_providers::syscall::freebsd::{
        systrace_hook, SysentTable, SYSENT_SIZE, SY_ENTRY_OFFSET, SY_RETURN_OFFSET,
    };

    // The provider's view of struct sysent agrees with the KPI header's.
    const _: () = {
        assert!(core::mem::size_of::<kpi::sysent>() == SYSENT_SIZE);
        assert!(core::mem::offset_of!(kpi::sysent, sy_entry) == SY_ENTRY_OFFSET);
        assert!(core::mem::offset_of!(kpi::sysent, sy_return) == SY_RETURN_OFFSET);
    };

    /// Size in bytes of kernel symbol `name` (0 if it has none).
    fn kernel_symbol_size(name: &CStr) -> usize {
        let mut sym: kpi::c_linker_sym_t = core::ptr::null();
        // SAFETY: `name` is NUL-terminated; `sym` is a valid out-parameter.
        if unsafe { kpi::linker_ddb_lookup(name.as_ptr(), &mut sym) } != 0 || sym.is_null() {
            return 0;
        }
        let mut values = kpi::linker_symval_t {
            name: core::ptr::null(),
            value: core::ptr::null_mut(),
            size: 0,
        };
        // SAFETY: `sym` came from linker_ddb_lookup; `values` is writable.
        if unsafe { kpi::linker_ddb_symbol_values(sym, &mut values) } != 0 {
            return 0;
        }
        values.size
    }

    /// The kernel's table as the provider wants it, leaked (freed by
    /// [`free_sysent_table`]). ENOENT when the kernel does not say how big
    /// its tables are.
    pub fn sysent_table() -> Result<&'static SysentTable, Errno> {
        let count = syscall_count(
            kernel_symbol_size(c"sysent"),
            SYSENT_SIZE,
            kernel_symbol_size(c"syscallnames"),
        );
        if count == 0 {
            return Err(Errno(2));
        }
        // SAFETY: sysent[] and syscallnames[] hold at least `count` entries
        // (their symbol sizes say so) and, like the two hook variables, are
        // kernel objects that live as long as the kernel.
        let table = unsafe {
            SysentTable::new(
                core::ptr::addr_of_mut!(kpi::sysent) as usize,
                count,
                core::ptr::addr_of!(kpi::syscallnames) as usize,
                core::ptr::addr_of_mut!(kpi::systrace_probe_func) as usize,
                core::ptr::addr_of_mut!(kpi::systrace_enabled) as usize,
                rdtrace_systrace_hook as *const () as usize,
            )
        };
        Ok(Box::leak(Box::new(table)))
    }

    /// Free a table from [`sysent_table`].
    ///
    /// # Safety
    /// `table` came from [`sysent_table`] and nothing uses it any more.
    pub unsafe fn free_sysent_table(table: &'static SysentTable) {
        // SAFETY: leaked from a Box by sysent_table; last reference.
        drop(unsafe { Box::from_raw(table as *const SysentTable as *mut SysentTable) });
    }

    /// Remove the hook for good (unload): clear `systrace_enabled`, and
    /// `systrace_probe_func` if it is still ours.
    pub fn clear_hook() {
        // SAFETY: the kernel's hook variables; pointer- and byte-sized
        // stores are single instructions the syscall path reads racily by
        // design.
        unsafe {
            core::ptr::write_volatile(core::ptr::addr_of_mut!(kpi::systrace_enabled), false);
            let func = &*(core::ptr::addr_of_mut!(kpi::systrace_probe_func) as *const AtomicUsize);
            let _ = func.compare_exchange(
                rdtrace_systrace_hook as *const () as usize,
                0,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// `systrace_probe_func`. *Probe context.*
    unsafe extern "C" fn rdtrace_systrace_hook(
        sa: *mut core::ffi::c_void,
        kind: core::ffi::c_int,
        retval: core::ffi::c_int,
    ) {
        // SAFETY: critical sections nest and may be entered from any
        // kernel context; the exit below pairs with this enter.
        unsafe { kpi::rdtrace_shim_critical_enter() };
        // SAFETY: the kernel passes its live struct syscall_args.
        unsafe { systrace_hook(sa as *mut u8, kind, retval) };
        // SAFETY: pairs with the enter above.
        unsafe { kpi::rdtrace_shim_critical_exit() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_comes_from_the_smaller_table() {
        assert_eq!(syscall_count(600 * 32, 32, 600 * 8), 600);
        assert_eq!(syscall_count(600 * 32, 32, 590 * 8), 590);
        assert_eq!(syscall_count(600 * 32 + 31, 32, 1000 * 8), 600);
        assert_eq!(syscall_count(0, 32, 600 * 8), 0);
        assert_eq!(syscall_count(600 * 32, 0, 600 * 8), 0);
    }
}
