//! What one DIF execution sees: [`ExecContext`] (probe facts, variable storage,
//! scratch space, the hooks the framework core implements) and the storage
//! types for clause-local and global static variables.
//!
//! Construction of [`StaticVars`] allocates and happens outside probe context
//! (when an enabling is created). Everything else here is probe context: no
//! allocation, no panics.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use super::abi::var as varid;
use super::difo::{Difo, VarScope};
use super::dynvar::DynVarArena;
use super::Fault;
use crate::platform::{Platform, ThreadIdentity};

/// Services the VM needs that only the framework core (or a provider) can give.
///
/// Every method is called in probe context. Defaults describe a probe with no
/// extra arguments, no stack information and no speculations.
pub trait ExecHooks {
    /// `argN` for N ≥ 5 and `args[N]` beyond the cached ones: the provider's
    /// `getargval`. `None` means the argument is not available (reads as 0).
    fn probe_arg(&mut self, _index: u64) -> Option<u64> {
        None
    }
    /// `speculation()`: a fresh speculation id, or 0 when none is free (the
    /// core counts the drop).
    fn speculation(&mut self) -> u64 {
        0
    }
    /// `stackdepth`.
    fn stack_depth(&mut self) -> u64 {
        0
    }
    /// `ustackdepth`.
    fn user_stack_depth(&mut self) -> u64 {
        0
    }
    /// `caller`: the kernel return address of the probe's caller.
    fn caller(&mut self) -> u64 {
        0
    }
    /// `ucaller`.
    fn user_caller(&mut self) -> u64 {
        0
    }
    /// `regs[index]` (`user` = `uregs[]`): a register of the interrupted
    /// frame. `None` is an illegal operation.
    fn register(&mut self, _user: bool, _index: u64) -> Option<u64> {
        None
    }
    /// `vtimestamp`: the current thread's on-CPU time in nanoseconds.
    fn vtimestamp(&mut self) -> u64 {
        0
    }
    /// `execargs`: write the current process's arguments (space-separated,
    /// NUL-terminated) into `buf`; false when unknown (the VM then uses the
    /// process name).
    fn exec_args(&mut self, _buf: &mut [u8]) -> bool {
        false
    }
    /// `jailname`: write the current jail's name (NUL-padded) into `buf`.
    fn jail_name(&mut self, buf: &mut [u8]) {
        let name = b"0";
        for (dst, src) in buf
            .iter_mut()
            .zip(name.iter().chain(core::iter::repeat(&0)))
        {
            *dst = *src;
        }
    }
    /// `progenyof(pid)`: whether the current process is `pid` or one of its
    /// descendants. The default only knows the current process and its parent.
    fn progeny_of(&mut self, pid: i64, thread: &ThreadIdentity) -> bool {
        pid == i64::from(thread.pid) || pid == i64::from(thread.ppid)
    }
    /// `getf(fd)`: the `struct file *` of descriptor `fd`, 0 if none.
    fn getf(&mut self, _fd: i64) -> u64 {
        0
    }
    /// `copyout`/`copyoutstr` (destructive): copy `bytes` to user address
    /// `uaddr` of the current process. Returns false on a fault.
    fn copyout(&mut self, _bytes: &[u8], _uaddr: u64) -> bool {
        false
    }
    /// The lock-state subroutines (`mutex_owned`, `rw_read_held`, ...):
    /// `Some(answer)` overrides the VM's own reading of the FreeBSD lock
    /// layout (`subr::locks`); the default `None` keeps it.
    fn lock_query(&mut self, _query: u16, _addr: u64) -> Option<u64> {
        None
    }
}

/// Hooks with every default: for tests and for DIFOs run where nothing more
/// is known.
#[derive(Default)]
pub struct NoHooks;
impl ExecHooks for NoHooks {}

/// The scratch region of one CPU for one probe firing: `alloca()` memory and
/// the results of string subroutines.
pub struct Scratch<'a> {
    buf: &'a mut [u8],
    used: usize,
}

impl<'a> Scratch<'a> {
    /// Wrap `buf`; nothing is allocated yet.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Scratch { buf, used: 0 }
    }

    /// Bytes handed out so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Forget every allocation (the core does this between ECBs).
    pub fn reset(&mut self) {
        self.used = 0;
    }

    /// Address of the first byte.
    pub fn base(&self) -> u64 {
        self.buf.as_ptr() as u64
    }

    /// Allocate `size` bytes whose address is aligned to 8, zeroed. Returns
    /// the offset of the allocation, or `None` when the scratch region is
    /// exhausted.
    pub(crate) fn alloc(&mut self, size: u64) -> Option<usize> {
        let base = self.buf.as_ptr() as usize;
        let start = (base.checked_add(self.used)?.checked_add(7)? & !7usize) - base;
        let size = usize::try_from(size).ok()?;
        let end = start.checked_add(size)?;
        let region = self.buf.get_mut(start..end)?;
        region.fill(0);
        self.used = end;
        Some(start)
    }

    /// Give back the tail of the most recent allocation beyond `end` (offset).
    pub(crate) fn shrink_to(&mut self, end: usize) {
        if end <= self.used {
            self.used = end;
        }
    }

    /// The allocated part of the region.
    pub(crate) fn allocated(&self) -> &[u8] {
        self.buf.get(..self.used).unwrap_or(&[])
    }

    /// The allocated part of the region, writable.
    pub(crate) fn allocated_mut(&mut self) -> &mut [u8] {
        let used = self.used;
        self.buf.get_mut(..used).unwrap_or(&mut [])
    }

    /// Remaining capacity in bytes.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.used)
    }
}

/// One static (global or clause-local) user variable's storage slot.
#[derive(Debug, Default)]
struct StaticSlot {
    /// By-value content.
    value: AtomicU64,
    /// For by-reference variables: byte offset of the storage (an 8-byte
    /// "is null" marker followed by `size` bytes) within `data`; `u32::MAX`
    /// for by-value variables and unused ids.
    data_offset: u32,
    /// By-reference size in bytes.
    size: u32,
    /// Whether the id is declared at all.
    declared: bool,
}

/// Marker value stored in the first byte of a by-reference slot when the
/// variable was assigned a NULL pointer.
const NULL_MARKER: u8 = 0xff;

/// Storage for the user-defined static variables of one scope: globals
/// (`x = 1`) for a consumer, or clause-locals (`this->x`) for one CPU.
///
/// Shared by reference: a consumer's globals are written by every CPU at
/// once, so every cell is an atomic accessed with relaxed ordering (values
/// may be torn across bytes exactly as in the C implementation, but there is
/// no undefined behaviour).
///
/// Invariant: every by-reference slot's `[data_offset, data_offset + 8 +
/// size)` lies inside `data`.
pub struct StaticVars {
    slots: Vec<StaticSlot>,
    data: Vec<AtomicU8>,
    /// `strtok()` continuation pointer and limit (clause-local storage only).
    strtok_next: AtomicU64,
    strtok_limit: AtomicU64,
    /// `rand()` state (per CPU when used as clause-local storage).
    rand_state: AtomicU64,
}

/// Global static variables of one consumer.
pub type GlobalVars = StaticVars;
/// Clause-local variables (and per-firing subroutine state) of one CPU.
pub type LocalVars = StaticVars;

const RAND_SEED: u64 = 0x2545_f491_4f6c_dd1d;

impl StaticVars {
    /// Storage for every variable of scope `scope` that `difos` declare.
    /// Allocates: call only outside probe context. Variables declared by
    /// several DIFOs share one slot (the size is the largest declared).
    pub fn new<'d>(scope: VarScope, difos: impl IntoIterator<Item = &'d Difo>) -> Self {
        let mut slots: Vec<StaticSlot> = Vec::new();
        for difo in difos {
            for v in difo
                .vars()
                .iter()
                .filter(|v| v.scope == scope && !v.is_array)
            {
                let Some(index) = v.id.checked_sub(varid::UBASE) else {
                    continue;
                };
                let index = usize::from(index);
                if slots.len() <= index {
                    slots.resize_with(index + 1, StaticSlot::default);
                }
                if let Some(slot) = slots.get_mut(index) {
                    slot.declared = true;
                    if v.by_ref {
                        slot.size = slot.size.max(v.size);
                        slot.data_offset = 0;
                    } else {
                        slot.data_offset = u32::MAX;
                    }
                }
            }
        }
        let mut total: usize = 0;
        for slot in slots.iter_mut() {
            if slot.declared && slot.data_offset != u32::MAX {
                slot.data_offset = u32::try_from(total).unwrap_or(u32::MAX);
                let padded = (slot.size as usize + 7) & !7;
                total += 8 + padded;
            } else {
                slot.data_offset = u32::MAX;
            }
        }
        let mut data = Vec::with_capacity(total);
        data.resize_with(total, || AtomicU8::new(0));
        StaticVars {
            slots,
            data,
            strtok_next: AtomicU64::new(0),
            strtok_limit: AtomicU64::new(0),
            rand_state: AtomicU64::new(RAND_SEED),
        }
    }

    /// Empty storage (for contexts that run DIFOs without static variables).
    pub fn empty() -> Self {
        StaticVars {
            slots: Vec::new(),
            data: Vec::new(),
            strtok_next: AtomicU64::new(0),
            strtok_limit: AtomicU64::new(0),
            rand_state: AtomicU64::new(RAND_SEED),
        }
    }

    /// Zero every variable (e.g. clause-locals at the start of a firing).
    pub fn clear(&self) {
        for slot in self.slots.iter() {
            slot.value.store(0, Ordering::Relaxed);
        }
        for b in self.data.iter() {
            b.store(0, Ordering::Relaxed);
        }
        self.strtok_next.store(0, Ordering::Relaxed);
        self.strtok_limit.store(0, Ordering::Relaxed);
    }

    fn slot(&self, id: u16) -> Option<&StaticSlot> {
        let slot = self.slots.get(usize::from(id.checked_sub(varid::UBASE)?))?;
        slot.declared.then_some(slot)
    }

    /// Address range `[start, end)` of the by-reference storage.
    pub(crate) fn data_range(&self) -> (u64, u64) {
        let start = self.data.as_ptr() as u64;
        (start, start + self.data.len() as u64)
    }

    /// Copy storage bytes at `off` into `buf`; false when out of range.
    pub(crate) fn read(&self, off: usize, buf: &mut [u8]) -> bool {
        let Some(src) = off
            .checked_add(buf.len())
            .and_then(|e| self.data.get(off..e))
        else {
            return false;
        };
        for (d, s) in buf.iter_mut().zip(src) {
            *d = s.load(Ordering::Relaxed);
        }
        true
    }

    /// Copy `bytes` into storage at `off`; false when out of range.
    pub(crate) fn write(&self, off: usize, bytes: &[u8]) -> bool {
        let Some(dst) = off
            .checked_add(bytes.len())
            .and_then(|e| self.data.get(off..e))
        else {
            return false;
        };
        for (d, s) in dst.iter().zip(bytes) {
            d.store(*s, Ordering::Relaxed);
        }
        true
    }

    /// Load: the value for by-value variables, the data address (0 if NULL
    /// was stored) for by-reference ones. `None` for an undeclared id.
    pub(crate) fn load(&self, id: u16) -> Option<u64> {
        let slot = self.slot(id)?;
        if slot.data_offset == u32::MAX {
            return Some(slot.value.load(Ordering::Relaxed));
        }
        let off = slot.data_offset as usize;
        let marker = self.data.get(off)?.load(Ordering::Relaxed);
        if marker == NULL_MARKER {
            Some(0)
        } else {
            Some(self.data_range().0 + off as u64 + 8)
        }
    }

    /// Store a by-value variable. Returns `None` when `id` is not a by-value
    /// declared variable.
    pub(crate) fn store_value(&self, id: u16, value: u64) -> Option<()> {
        let slot = self.slot(id)?;
        if slot.data_offset != u32::MAX {
            return None;
        }
        slot.value.store(value, Ordering::Relaxed);
        Some(())
    }

    /// For a by-reference variable: (offset of the payload in `data`, size).
    /// Marks the slot NULL or non-NULL per `is_null`.
    pub(crate) fn byref_target(&self, id: u16, is_null: bool) -> Option<(usize, usize)> {
        let slot = self.slot(id)?;
        if slot.data_offset == u32::MAX {
            return None;
        }
        let off = slot.data_offset as usize;
        self.data
            .get(off)?
            .store(if is_null { NULL_MARKER } else { 0 }, Ordering::Relaxed);
        Some((off + 8, slot.size as usize))
    }

    /// Forget per-firing subroutine state (the `strtok()` position). The
    /// core calls this on a CPU's clause-locals at the start of each probe
    /// firing, so `strtok(NULL, ...)` never continues a previous firing's
    /// string. Probe context.
    pub fn begin_firing(&self) {
        self.set_strtok_state(0, 0);
    }

    /// The saved `strtok()` position and limit.
    pub(crate) fn strtok_state(&self) -> (u64, u64) {
        (
            self.strtok_next.load(Ordering::Relaxed),
            self.strtok_limit.load(Ordering::Relaxed),
        )
    }

    /// Save the `strtok()` position and limit.
    pub(crate) fn set_strtok_state(&self, next: u64, limit: u64) {
        self.strtok_next.store(next, Ordering::Relaxed);
        self.strtok_limit.store(limit, Ordering::Relaxed);
    }

    /// The `rand()` state.
    pub(crate) fn rand_state(&self) -> u64 {
        self.rand_state.load(Ordering::Relaxed)
    }

    /// Replace the `rand()` state.
    pub(crate) fn set_rand_state(&self, v: u64) {
        self.rand_state.store(v, Ordering::Relaxed);
    }
}

/// Facts about the probe that fired, fixed for the whole firing.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeInfo<'a> {
    /// Enabled probe id of the ECB being run.
    pub epid: u32,
    /// Probe id.
    pub id: u32,
    /// The first five arguments as the provider passed them.
    pub args: [u64; 5],
    pub provider: &'a [u8],
    pub module: &'a [u8],
    pub function: &'a [u8],
    pub name: &'a [u8],
}

/// Everything one execution of a DIFO can see and change.
pub struct ExecContext<'a> {
    pub platform: &'a dyn Platform,
    pub probe: ProbeInfo<'a>,
    /// `timestamp`, read once per firing by the caller.
    pub timestamp: u64,
    /// `walltimestamp`; 0 means "read it from the platform when used".
    pub walltimestamp: u64,
    /// The CPU the probe fires on.
    pub cpu: u32,
    pub thread: ThreadIdentity,
    /// Interrupt nesting depth (0 = thread context); part of `self->` keys.
    pub interrupt_depth: u8,
    /// `errno` of the current thread.
    pub errno: i32,
    /// Whether the consumer may read kernel memory the VM does not own;
    /// when false such loads fault with KPRIV.
    pub kernel_visible: bool,
    /// `strsize` option: longest D string.
    pub strsize: u64,
    /// The consumer's globals, shared by every CPU.
    pub globals: &'a GlobalVars,
    /// This CPU's clause-locals.
    pub locals: &'a LocalVars,
    pub dynvars: &'a DynVarArena,
    pub scratch: Scratch<'a>,
    pub hooks: &'a mut dyn ExecHooks,
    /// Set when the execution stored to a thread-local variable (the core
    /// then invalidates the thread's predicate cache).
    pub thread_local_stored: bool,
    /// Set when a dynamic-variable store found no free chunk (the arena
    /// counted the drop). Like FreeBSD's `CPU_DTRACE_DROP`, the core then
    /// abandons the ECB's record and skips its remaining actions.
    pub dyn_dropped: bool,
    /// The last fault's details are also returned from `execute`; this is a
    /// copy the core may inspect after a successful run (always `None` then).
    pub last_fault: Option<Fault>,
}

impl<'a> ExecContext<'a> {
    /// A context with default probe facts (all zero) over the given storage.
    pub fn new(
        platform: &'a dyn Platform,
        globals: &'a GlobalVars,
        locals: &'a LocalVars,
        dynvars: &'a DynVarArena,
        scratch: &'a mut [u8],
        hooks: &'a mut dyn ExecHooks,
    ) -> Self {
        ExecContext {
            platform,
            probe: ProbeInfo::default(),
            timestamp: 0,
            walltimestamp: 0,
            cpu: 0,
            thread: ThreadIdentity::default(),
            interrupt_depth: 0,
            errno: 0,
            kernel_visible: true,
            strsize: 256,
            globals,
            locals,
            dynvars,
            scratch: Scratch::new(scratch),
            hooks,
            thread_local_stored: false,
            dyn_dropped: false,
            last_fault: None,
        }
    }

    /// The key that makes `self->` variables per thread (abi-facts §4.5).
    pub fn thread_key(&self) -> u64 {
        let low = (self.thread.tid as u64).wrapping_add(0xffff) & ((1u64 << 61) - 1);
        low | (u64::from(self.interrupt_depth & 7) << 61)
    }
}
