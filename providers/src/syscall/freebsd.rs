//! [`SyscallTable`] over the FreeBSD kernel's own objects: the system call
//! tables of every ABI the kernel has — `sysent[]` (32-byte `struct sysent`,
//! entry probe id at offset 20, return probe id at 24) and its names array,
//! see [`ABI_TABLES`] — and the hook variables `systrace_probe_func` and
//! `systrace_enabled` (abi-facts §6.2). The module's KPI glue looks the
//! addresses up and passes them to [`SysentTable::with_abis`] (or
//! [`SysentTable::new`] for the native table alone); [`systrace_hook`] is
//! the function stored in `systrace_probe_func`.
//!
//! FreeBSD builds one systrace per ABI, all named `syscall`, the module
//! naming the ABI; only the native one installs the hook, which fires the
//! id stored in the sysent entry the kernel dispatched through (`callp`),
//! whatever table it belongs to. Here one provider holds the ABIs' tables
//! back to back (index = ABI base + system call number) and maps `callp`
//! to that index.
//!
//! Probe context: [`systrace_hook`] (called by `syscallenter`/`syscallexit`)
//! and [`SysentTable::sysnum_of_call`].

use super::{Site, SyscallProvider, SyscallTable};
use alloc::vec::Vec;
use core::ffi::c_char;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

/// `sizeof(struct sysent)` on LP64.
pub const SYSENT_SIZE: usize = 32;
/// Offset of `sy_entry` in `struct sysent`.
pub const SY_ENTRY_OFFSET: usize = 20;
/// Offset of `sy_return` in `struct sysent`.
pub const SY_RETURN_OFFSET: usize = 24;

/// The system call ABIs FreeBSD builds a systrace for: (probe module, the
/// kernel's sysent symbol, its names symbol). `freebsd32` exists in kernels
/// with COMPAT_FREEBSD32; `linux` (the 64-bit Linux ABI on amd64/arm64, the
/// only one on i386) and `linux32` (amd64) are defined by the Linux ABI
/// code, usually the linux64.ko/linux.ko modules.
pub const ABI_TABLES: [(&str, &core::ffi::CStr, &core::ffi::CStr); 4] = [
    ("freebsd", c"sysent", c"syscallnames"),
    ("freebsd32", c"freebsd32_sysent", c"freebsd32_syscallnames"),
    ("linux", c"linux_sysent", c"linux_syscallnames"),
    ("linux32", c"linux32_sysent", c"linux32_syscallnames"),
];

/// One ABI's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysentAbi {
    /// Probe module naming the ABI (`freebsd`, `freebsd32`, …).
    pub module: &'static str,
    /// Address of its `struct sysent` array.
    pub sysent: usize,
    /// Entries of the array (and of the names array).
    pub count: usize,
    /// Address of its names array (`const char *[count]`).
    pub names: usize,
}

/// The kernel's system call tables and hooks.
pub struct SysentTable {
    /// The ABIs back to back: index `i` of the provider is entry
    /// `i - (counts of the ABIs before)` of the ABI it falls in.
    abis: Vec<SysentAbi>,
    total: usize,
    probe_func: usize,
    enabled: usize,
    hook: usize,
}

impl SysentTable {
    /// The native table alone (module `freebsd`).
    ///
    /// # Safety
    /// As for [`SysentTable::with_abis`] with one ABI.
    pub unsafe fn new(
        sysent: usize,
        count: usize,
        names: usize,
        probe_func: usize,
        enabled: usize,
        hook: usize,
    ) -> Self {
        let native = SysentAbi {
            module: super::MODULE,
            sysent,
            count,
            names,
        };
        // SAFETY: the caller's guarantees, passed on.
        unsafe { Self::with_abis(&[native], probe_func, enabled, hook) }
    }

    /// Several ABIs, in the order given. Entries beyond the provider's index
    /// space (2^16, the parg's entry flag) are left out.
    ///
    /// # Safety
    /// Each ABI's `sysent` points to `count` live `struct sysent`s and
    /// `names` to `count` pointers that are null or NUL-terminated strings;
    /// `probe_func` points to the kernel's `systrace_probe_func` variable
    /// and `enabled` to its `systrace_enabled` bool; all stay valid while
    /// the table exists. `hook` is the address of [`systrace_hook`].
    pub unsafe fn with_abis(
        abis: &[SysentAbi],
        probe_func: usize,
        enabled: usize,
        hook: usize,
    ) -> Self {
        let mut kept = Vec::with_capacity(abis.len());
        let mut total = 0usize;
        for abi in abis {
            let room = (super::ENTRY_FLAG - 1).saturating_sub(total);
            let count = abi.count.min(room);
            if count == 0 {
                continue;
            }
            kept.push(SysentAbi { count, ..*abi });
            total += count;
        }
        SysentTable {
            abis: kept,
            total,
            probe_func,
            enabled,
            hook,
        }
    }

    /// The ABIs the table holds.
    pub fn abis(&self) -> &[SysentAbi] {
        &self.abis
    }

    /// The ABI index `sysnum` falls in, and the entry within it.
    fn locate(&self, sysnum: usize) -> Option<(&SysentAbi, usize)> {
        let mut rest = sysnum;
        for abi in &self.abis {
            if rest < abi.count {
                return Some((abi, rest));
            }
            rest -= abi.count;
        }
        None
    }

    fn id_slot(&self, sysnum: usize, site: Site) -> Option<&AtomicU32> {
        let (abi, entry) = self.locate(sysnum)?;
        let offset = match site {
            Site::Entry => SY_ENTRY_OFFSET,
            Site::Return => SY_RETURN_OFFSET,
        };
        let addr = abi
            .sysent
            .checked_add(entry.checked_mul(SYSENT_SIZE)?)?
            .checked_add(offset)?;
        // SAFETY: inside the ABI's sysent[entry] (located above), 4-byte
        // aligned (the array is 8-aligned and the offsets are multiples of
        // 4); the kernel reads the field concurrently, hence the atomic.
        Some(unsafe { &*(addr as *const AtomicU32) })
    }
}

impl SyscallTable for SysentTable {
    fn len(&self) -> usize {
        self.total
    }

    fn name(&self, sysnum: usize) -> Option<&str> {
        let (abi, entry) = self.locate(sysnum)?;
        let slot = abi
            .names
            .checked_add(entry.checked_mul(core::mem::size_of::<usize>())?)?;
        // SAFETY: the ABI's names array has `count` pointer entries (see
        // `with_abis`).
        let name = unsafe { *(slot as *const *const c_char) };
        // SAFETY: a non-null entry is a NUL-terminated kernel string.
        let text = unsafe { crate::sdt::c_str(name) };
        (!text.is_empty()).then_some(text)
    }

    fn module(&self, sysnum: usize) -> &str {
        self.locate(sysnum)
            .map_or(super::MODULE, |(abi, _)| abi.module)
    }

    /// The index of the sysent entry `callp` points to, in whichever ABI's
    /// table holds it (`code` is only meaningful within that table).
    /// *Probe context.*
    fn sysnum_of_call(&self, _code: usize, callp: usize) -> Option<usize> {
        let mut base = 0usize;
        for abi in &self.abis {
            let offset = callp.wrapping_sub(abi.sysent);
            if callp >= abi.sysent && offset % SYSENT_SIZE == 0 {
                let entry = offset / SYSENT_SIZE;
                if entry < abi.count {
                    return base.checked_add(entry);
                }
            }
            base = base.checked_add(abi.count)?;
        }
        None
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
