//! The syscall provider (FreeBSD's "systrace"): `syscall:freebsd:<name>:entry`
//! and `:return` for every system call, and likewise for every other system
//! call ABI the table offers (`syscall:freebsd32:…`, `syscall:linux:…`,
//! `syscall:linux32:…`; [`SyscallTable::module`]).
//!
//! The kernel calls `systrace_probe_func(sa, kind, retval)` from
//! `syscallenter`/`syscallexit` when `systrace_enabled` is set and the
//! `sysent` entry's `sy_entry`/`sy_return` holds a non-zero probe id. Those
//! kernel objects are reached through [`SyscallTable`] (the FreeBSD
//! implementation lives with the module's KPI glue; the hosted kernel has a
//! table of its own and an entry point tests call to "make a system call").
//!
//! parg = index in the table, with bit 16 set for entry probes (as FreeBSD;
//! with one ABI the index is the system call number). The kernel hook names
//! the system call by its `struct syscall_args` (`code` and `callp`, the
//! sysent entry), which [`SyscallTable::sysnum_of_call`] turns into the
//! index — so one hook serves every ABI, as FreeBSD's does by reading the
//! probe id from `callp`.
//! Entry probes get the first five arguments through `dtrace_probe`; args
//! 5..7 (a system call has at most 8 register arguments) are answered by
//! [`SyscallProvider::arg_value`] from the `struct syscall_args` the firing
//! CPU is publishing (the caller of [`SyscallProvider::fire_from_syscall_args`]
//! must keep the thread on its CPU, e.g. in a critical section). Return
//! probes get the return value in arg0 and arg1 (-1 when the call failed;
//! the error number is the thread's `errno`).
//!
//! Argument types are not described: FreeBSD takes them from tables
//! generated from `syscalls.master` at kernel build time
//! (`systrace_entry_setargdesc`), which a separately built module cannot
//! see, so `args[n]` has no type and D code uses `arg0..arg7`.
//!
//! Probe context: [`SyscallProvider::fire_entry`],
//! [`SyscallProvider::fire_return`], [`SyscallProvider::fire_from_syscall_args`]
//! and [`SyscallProvider::arg_value`].

pub mod freebsd;

use crate::host::{ProviderHandle, ProviderHost};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Module name of the native system call table's probes.
pub const MODULE: &str = "freebsd";
/// Artificial frames of syscall probes.
pub const AFRAMES: i32 = 1;
/// `SYSTRACE_ENTRY` flag in a probe's parg.
pub const ENTRY_FLAG: usize = 1 << 16;
/// Hook `kind` values (`SYSTRACE_ENTRY`/`SYSTRACE_RETURN`).
pub const KIND_ENTRY: i32 = 0;
pub const KIND_RETURN: i32 = 1;
/// Register arguments in `struct syscall_args` (`args[8]`).
pub const MAX_ARGS: usize = 8;
/// Offset of `callp` (the `struct sysent *`) in `struct syscall_args`.
pub const SYSCALL_ARGS_CALLP_OFFSET: usize = 8;
/// Offset of `args[0]` in `struct syscall_args` (abi-facts §6.2).
pub const SYSCALL_ARGS_ARGS_OFFSET: usize = 16;

/// Entry or return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Entry,
    Return,
}

/// The kernel's system call table and hooks, as the provider needs them.
pub trait SyscallTable: Sync {
    /// Number of entries in the table (`SYS_MAXSYSCALL`).
    fn len(&self) -> usize;
    /// Whether the table is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Name of system call `sysnum` (`syscallnames[sysnum]`), if any.
    fn name(&self, sysnum: usize) -> Option<&str>;
    /// Probe module (the ABI) of entry `sysnum`: [`MODULE`] unless the
    /// table holds several ABIs.
    fn module(&self, _sysnum: usize) -> &str {
        MODULE
    }
    /// The entry a kernel `struct syscall_args` names: its `code` and its
    /// `callp` (the address of the sysent entry the kernel dispatched
    /// through). `None`: not a system call of this table. The default (one
    /// native table) is `code`. *Probe context.*
    fn sysnum_of_call(&self, code: usize, _callp: usize) -> Option<usize> {
        Some(code)
    }
    /// Store `id` (0 = off) into `sysent[sysnum].sy_entry` / `sy_return`.
    fn set_probe_id(&self, sysnum: usize, site: Site, id: u32);
    /// Install (`true`) or remove the provider's hook (`systrace_probe_func`
    /// and `systrace_enabled`).
    fn set_hook(&self, installed: bool);
}

/// The syscall provider.
pub struct SyscallProvider {
    host: &'static dyn ProviderHost,
    table: &'static dyn SyscallTable,
    handle: AtomicUsize,
    /// Enabled probe id per system call (0 = disabled), read in probe context.
    entry_ids: Box<[AtomicU32]>,
    return_ids: Box<[AtomicU32]>,
    enabled: AtomicUsize,
    /// System calls whose probes exist (no dtrace_probe_lookup, which scans
    /// every probe).
    provided: Box<[AtomicBool]>,
    /// Per CPU: the `struct syscall_args` whose entry probe is firing there
    /// (null otherwise), for arguments 5..7.
    in_flight: Box<[AtomicPtr<u8>]>,
}

fn zeroed(len: usize) -> Box<[AtomicU32]> {
    let mut v = Vec::with_capacity(len);
    v.resize_with(len, || AtomicU32::new(0));
    v.into_boxed_slice()
}

impl SyscallProvider {
    pub fn new(host: &'static dyn ProviderHost, table: &'static dyn SyscallTable) -> Self {
        let len = table.len();
        SyscallProvider {
            host,
            table,
            handle: AtomicUsize::new(0),
            entry_ids: zeroed(len),
            return_ids: zeroed(len),
            enabled: AtomicUsize::new(0),
            provided: (0..len).map(|_| AtomicBool::new(false)).collect(),
            in_flight: (0..host.cpu_count())
                .map(|_| AtomicPtr::new(core::ptr::null_mut()))
                .collect(),
        }
    }

    /// Record the framework's id for this provider.
    pub fn set_handle(&self, handle: ProviderHandle) {
        self.handle.store(handle, Ordering::Release);
    }

    /// `provide`: create entry and return probes for every named system call
    /// that has none yet.
    pub fn provide(&self) {
        let handle = self.handle.load(Ordering::Acquire);
        for sysnum in 0..self.table.len() {
            let Some(name) = self.table.name(sysnum) else {
                continue;
            };
            let already = self
                .provided
                .get(sysnum)
                .is_none_or(|done| done.swap(true, Ordering::AcqRel));
            if name.is_empty() || already {
                continue;
            }
            let module = self.table.module(sysnum);
            self.host
                .probe_create(handle, module, name, "entry", AFRAMES, sysnum | ENTRY_FLAG);
            self.host
                .probe_create(handle, module, name, "return", AFRAMES, sysnum);
        }
    }

    fn slot(&self, parg: usize) -> Option<(&AtomicU32, usize, Site)> {
        let sysnum = parg & (ENTRY_FLAG - 1);
        if parg & ENTRY_FLAG != 0 {
            Some((self.entry_ids.get(sysnum)?, sysnum, Site::Entry))
        } else {
            Some((self.return_ids.get(sysnum)?, sysnum, Site::Return))
        }
    }

    /// `enable`: publish the probe id to the table and install the hook.
    pub fn enable(&self, id: u32, parg: usize) {
        let Some((slot, sysnum, site)) = self.slot(parg) else {
            return;
        };
        if slot.swap(id, Ordering::AcqRel) == 0 && self.enabled.fetch_add(1, Ordering::AcqRel) == 0
        {
            self.table.set_hook(true);
        }
        self.table.set_probe_id(sysnum, site, id);
    }

    /// `disable`: clear the probe id; remove the hook with the last probe.
    pub fn disable(&self, _id: u32, parg: usize) {
        let Some((slot, sysnum, site)) = self.slot(parg) else {
            return;
        };
        self.table.set_probe_id(sysnum, site, 0);
        if slot.swap(0, Ordering::AcqRel) != 0 && self.enabled.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.table.set_hook(false);
        }
    }

    /// `destroy`: nothing is allocated per probe.
    pub fn destroy(&self, _id: u32, _parg: usize) {}

    /// Number of enabled probes.
    pub fn enabled_count(&self) -> usize {
        self.enabled.load(Ordering::Acquire)
    }

    /// Fire `sysnum`'s entry probe, if enabled. *Probe context.*
    pub fn fire_entry(&self, sysnum: usize, args: &[u64]) {
        let id = self
            .entry_ids
            .get(sysnum)
            .map_or(0, |s| s.load(Ordering::Acquire));
        if id == 0 {
            return;
        }
        let mut five = [0u64; 5];
        for (dst, src) in five.iter_mut().zip(args) {
            *dst = *src;
        }
        self.host.probe(id, five);
    }

    /// Fire `sysnum`'s return probe, if enabled; `retval` is the value the
    /// kernel passes (-1 on error). *Probe context.*
    pub fn fire_return(&self, sysnum: usize, retval: i64) {
        let id = self
            .return_ids
            .get(sysnum)
            .map_or(0, |s| s.load(Ordering::Acquire));
        if id != 0 {
            let value = retval as u64;
            self.host.probe(id, [value, value, 0, 0, 0]);
        }
    }

    /// `getargval`: argument `argno` (0..7) of the entry probe firing on
    /// this CPU, from its `struct syscall_args`; `None` for return probes,
    /// other argument numbers, or when no entry probe is firing here.
    /// *Probe context.*
    pub fn arg_value(&self, parg: usize, argno: i32) -> Option<u64> {
        if parg & ENTRY_FLAG == 0 {
            return None;
        }
        let argno = usize::try_from(argno).ok().filter(|n| *n < MAX_ARGS)?;
        let sa = self
            .in_flight
            .get(self.host.cpu_id())?
            .load(Ordering::Acquire);
        if sa.is_null() {
            return None;
        }
        // SAFETY: a non-null slot is the live syscall_args this CPU is firing
        // for (published by fire_from_syscall_args, which the caller keeps on
        // this CPU, and cleared before it returns); args[argno] lies inside.
        Some(unsafe {
            core::ptr::read_unaligned(sa.add(SYSCALL_ARGS_ARGS_OFFSET + 8 * argno) as *const u64)
        })
    }

    /// The `systrace_probe_func` body over a kernel `struct syscall_args`
    /// (u32 code @0, sysent pointer `callp` @8, register `args[8]` @16;
    /// abi-facts §6.2). *Probe context.*
    ///
    /// # Safety
    /// `sa` must point to a readable `struct syscall_args` of at least 80 bytes.
    pub unsafe fn fire_from_syscall_args(&self, sa: *const u8, kind: i32, retval: i32) {
        // SAFETY: the caller guarantees 80 readable bytes at `sa`; unaligned
        // reads make no alignment assumption.
        let (code, callp) = unsafe {
            (
                core::ptr::read_unaligned(sa as *const u32) as usize,
                core::ptr::read_unaligned(sa.add(SYSCALL_ARGS_CALLP_OFFSET) as *const usize),
            )
        };
        let Some(code) = self.table.sysnum_of_call(code, callp) else {
            return;
        };
        if kind == KIND_ENTRY {
            let mut args = [0u64; MAX_ARGS];
            for (i, arg) in args.iter_mut().enumerate() {
                // SAFETY: offsets 16..80 are inside the structure.
                *arg = unsafe {
                    core::ptr::read_unaligned(sa.add(SYSCALL_ARGS_ARGS_OFFSET + 8 * i) as *const u64)
                };
            }
            let slot = self.in_flight.get(self.host.cpu_id());
            if let Some(slot) = slot {
                slot.store(sa as *mut u8, Ordering::Release);
            }
            self.fire_entry(code, &args);
            if let Some(slot) = slot {
                slot.store(core::ptr::null_mut(), Ordering::Release);
            }
        } else {
            self.fire_return(code, i64::from(retval));
        }
    }
}
