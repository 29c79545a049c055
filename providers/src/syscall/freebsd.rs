//! [`SyscallTable`] over the FreeBSD kernel's own objects: `sysent[]`
//! (32-byte `struct sysent`, entry probe id at offset 20, return probe id at
//! 24), `syscallnames[]`, and the hook variables `systrace_probe_func` and
//! `systrace_enabled` (abi-facts §6.2). The module's KPI glue looks the
//! addresses up and passes them to [`SysentTable::new`];
//! [`systrace_hook`] is the function stored in `systrace_probe_func`.
//!
//! Probe context: [`systrace_hook`] (called by `syscallenter`/`syscallexit`).

use super::{Site, SyscallProvider, SyscallTable};
use core::ffi::c_char;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

/// `sizeof(struct sysent)` on LP64.
pub const SYSENT_SIZE: usize = 32;
/// Offset of `sy_entry` in `struct sysent`.
pub const SY_ENTRY_OFFSET: usize = 20;
/// Offset of `sy_return` in `struct sysent`.
pub const SY_RETURN_OFFSET: usize = 24;

/// The kernel's system call table and hooks.
pub struct SysentTable {
    sysent: usize,
    count: usize,
    names: usize,
    probe_func: usize,
    enabled: usize,
    hook: usize,
}

impl SysentTable {
    /// # Safety
    /// `sysent` points to `count` live `struct sysent`s, `names` to `count`
    /// pointers that are null or NUL-terminated strings (`syscallnames`),
    /// `probe_func` to the kernel's `systrace_probe_func` variable and
    /// `enabled` to its `systrace_enabled` bool; all stay valid while the
    /// table exists. `hook` is the address of [`systrace_hook`].
    pub unsafe fn new(
        sysent: usize,
        count: usize,
        names: usize,
        probe_func: usize,
        enabled: usize,
        hook: usize,
    ) -> Self {
        SysentTable {
            sysent,
            count,
            names,
            probe_func,
            enabled,
            hook,
        }
    }

    fn id_slot(&self, sysnum: usize, site: Site) -> Option<&AtomicU32> {
        if sysnum >= self.count {
            return None;
        }
        let offset = match site {
            Site::Entry => SY_ENTRY_OFFSET,
            Site::Return => SY_RETURN_OFFSET,
        };
        let addr = self
            .sysent
            .checked_add(sysnum.checked_mul(SYSENT_SIZE)?)?
            .checked_add(offset)?;
        // SAFETY: inside sysent[sysnum] (checked above), 4-byte aligned (the
        // array is 8-aligned and the offsets are multiples of 4); the kernel
        // reads the field concurrently, hence the atomic.
        Some(unsafe { &*(addr as *const AtomicU32) })
    }
}

impl SyscallTable for SysentTable {
    fn len(&self) -> usize {
        self.count
    }

    fn name(&self, sysnum: usize) -> Option<&str> {
        if sysnum >= self.count {
            return None;
        }
        let slot = self
            .names
            .checked_add(sysnum.checked_mul(core::mem::size_of::<usize>())?)?;
        // SAFETY: `names` has `count` pointer entries (see `new`).
        let name = unsafe { *(slot as *const *const c_char) };
        // SAFETY: a non-null entry is a NUL-terminated kernel string.
        let text = unsafe { crate::sdt::c_str(name) };
        (!text.is_empty()).then_some(text)
    }

    fn set_probe_id(&self, sysnum: usize, site: Site, id: u32) {
        if let Some(slot) = self.id_slot(sysnum, site) {
            slot.store(id, Ordering::Release);
        }
    }

    fn set_hook(&self, installed: bool) {
        // SAFETY: `probe_func` and `enabled` are the kernel's variables (see
        // `new`); pointer-sized and byte-sized stores are atomic here.
        let (func, enabled) = unsafe {
            (
                &*(self.probe_func as *const AtomicUsize),
                &*(self.enabled as *const AtomicU8),
            )
        };
        if installed {
            func.store(self.hook, Ordering::Release);
            enabled.store(1, Ordering::Release);
        } else {
            enabled.store(0, Ordering::Release);
        }
    }
}

static KERNEL_PROVIDER: AtomicPtr<SyscallProvider> = AtomicPtr::new(core::ptr::null_mut());

/// The provider [`systrace_hook`] fires.
pub fn set_kernel_provider(provider: &'static SyscallProvider) {
    KERNEL_PROVIDER.store(
        provider as *const SyscallProvider as *mut SyscallProvider,
        Ordering::Release,
    );
}

/// Stop [`systrace_hook`] from reaching the provider (before it is freed).
pub fn clear_kernel_provider() {
    KERNEL_PROVIDER.store(core::ptr::null_mut(), Ordering::Release);
}

/// `systrace_probe_func`: `(struct syscall_args *, kind, retval)`. *Probe context.*
///
/// # Safety
/// Called by the kernel with a live `struct syscall_args`.
pub unsafe extern "C" fn systrace_hook(sa: *mut u8, kind: i32, retval: i32) {
    // SAFETY: null or the 'static provider given to `set_kernel_provider`.
    let Some(provider) = (unsafe { KERNEL_PROVIDER.load(Ordering::Acquire).as_ref() }) else {
        return;
    };
    if sa.is_null() {
        return;
    }
    // SAFETY: the kernel passes a live syscall_args.
    unsafe { provider.fire_from_syscall_args(sa, kind, retval) };
}
