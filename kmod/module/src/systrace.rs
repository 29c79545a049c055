//! The syscall provider's FreeBSD glue: finds the system call tables of
//! every ABI the running kernel has — the native `sysent[]`/`syscallnames[]`
//! (imports; required) and, looked up by name and skipped quietly when
//! absent, `freebsd32_sysent`/`freebsd32_syscallnames` (COMPAT_FREEBSD32),
//! `linux_sysent`/`linux_syscallnames` and `linux32_sysent`/
//! `linux32_syscallnames` (`ABI_TABLES`) — and the systrace hook variables
//! (`systrace_probe_func`, `systrace_enabled`), and hands them to
//! `rdtrace_providers::syscall::freebsd::SysentTable`. Probes of a
//! non-native ABI are `syscall:<abi>:<name>:{entry,return}`.
//!
//! Only tables inside the kernel file itself are used: FreeBSD's
//! systrace_linux modules depend on the Linux ABI module, so it cannot be
//! unloaded under them; rdtrace holds no such reference, so an ABI whose
//! tables live in a loadable module (linux64.ko, linux.ko) is left out with
//! a console message.
//!
//! The number of entries is not compiled in (SYS_MAXSYSCALL differs between
//! releases): it is the size of the table's symbol divided by
//! `sizeof(struct sysent)`, bounded by the size of the names array, both
//! from the kernel linker's symbol table (`linker_ddb_lookup` +
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
    use rdtrace_providers::linker_files::LinkerFiles;
    use rdtrace_providers::syscall::freebsd::{
        systrace_hook, SysentAbi, SysentTable, ABI_TABLES, SYSENT_SIZE, SY_ENTRY_OFFSET,
        SY_RETURN_OFFSET,
    };

    use crate::console::console;
    use crate::kernel_files::{file_range, KpiLinkerFiles};

    // The provider's view of struct sysent agrees with the KPI header's.
    const _: () = {
        assert!(core::mem::size_of::<kpi::sysent>() == SYSENT_SIZE);
        assert!(core::mem::offset_of!(kpi::sysent, sy_entry) == SY_ENTRY_OFFSET);
        assert!(core::mem::offset_of!(kpi::sysent, sy_return) == SY_RETURN_OFFSET);
    };

    /// Address and size in bytes of the symbol `name` of any loaded file.
    fn kernel_symbol(name: &CStr) -> Option<(usize, usize)> {
        let mut sym: kpi::c_linker_sym_t = core::ptr::null();
        // SAFETY: `name` is NUL-terminated; `sym` is a valid out-parameter.
        if unsafe { kpi::linker_ddb_lookup(name.as_ptr(), &mut sym) } != 0 || sym.is_null() {
            return None;
        }
        let mut values = kpi::linker_symval_t {
            name: core::ptr::null(),
            value: core::ptr::null_mut(),
            size: 0,
        };
        // SAFETY: `sym` came from linker_ddb_lookup; `values` is writable.
        if unsafe { kpi::linker_ddb_symbol_values(sym, &mut values) } != 0 {
            return None;
        }
        Some((values.value as usize, values.size))
    }

    /// Size in bytes of kernel symbol `name` (0 if it has none).
    fn kernel_symbol_size(name: &CStr) -> usize {
        kernel_symbol(name).map_or(0, |(_, size)| size)
    }

    /// Whether `[addr, addr + size)` lies in the kernel file (the first
    /// linker file) rather than in a module that could be unloaded.
    fn in_kernel_file(addr: usize, size: usize) -> bool {
        let Some(kernel) = KpiLinkerFiles.files().first().copied() else {
            return false;
        };
        let (start, len) = file_range(kernel);
        addr >= start
            && addr
                .checked_add(size)
                .is_some_and(|end| end <= start.saturating_add(len))
    }

    /// The non-native ABI `module`'s tables, if the kernel has them.
    fn optional_abi(module: &'static str, sysent: &CStr, names: &CStr) -> Option<SysentAbi> {
        let (sysent_addr, sysent_size) = kernel_symbol(sysent)?;
        let (names_addr, names_size) = kernel_symbol(names)?;
        let count = syscall_count(sysent_size, SYSENT_SIZE, names_size);
        if count == 0 || sysent_addr == 0 || names_addr == 0 {
            return None;
        }
        if !in_kernel_file(sysent_addr, sysent_size) || !in_kernel_file(names_addr, names_size) {
            console(format_args!(
                "syscall provider: the {module} system call table is in a loadable module; \
                 its probes are not offered"
            ));
            return None;
        }
        Some(SysentAbi {
            module,
            sysent: sysent_addr,
            count,
            names: names_addr,
        })
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
        let mut abis = alloc::vec![SysentAbi {
            module: ABI_TABLES[0].0,
            sysent: core::ptr::addr_of_mut!(kpi::sysent) as usize,
            count,
            names: core::ptr::addr_of!(kpi::syscallnames) as usize,
        }];
        abis.extend(
            ABI_TABLES
                .iter()
                .skip(1)
                .filter_map(|(module, sysent, names)| optional_abi(module, sysent, names)),
        );
        // SAFETY: every ABI's sysent and names arrays hold at least `count`
        // entries (their symbol sizes say so) and, like the two hook
        // variables, are objects of the kernel file (checked for the
        // optional ABIs), which lives as long as the kernel.
        let table = unsafe {
            SysentTable::with_abis(
                &abis,
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
