//! mutex(9), sx(9), rmlock(9) and critical sections, with ownership assertions.
//!
//! Every lock lives in module memory; the harness keeps the real state in a
//! table keyed by the lock's address and mirrors the owner into the lock
//! word (`mtx_lock`/`sx_lock`) like FreeBSD does (unowned mutex = 4,
//! destroyed = 6, unlocked sx = 1). What FreeBSD's INVARIANTS/WITNESS kernel
//! asserts, this panics on: initialising twice, using an uninitialised or
//! destroyed lock, unlocking a lock the thread does not own, recursing on a
//! non-recursive lock, using the spin operations on a sleep mutex and vice
//! versa, sleeping (sx, rm write) with a mutex held, destroying a lock
//! another thread holds (or an sx that is held at all), `critical_exit`
//! without `critical_enter`. Blocking gives the harness CPU up (see cpu.rs).
//! Spin mutexes and critical sections may be used in probe context.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use super::cpu::{self, with_thread};
use super::kpanic;

pub const MTX_SPIN: i32 = 0x1;
pub const MTX_RECURSE: i32 = 0x4;
pub const SX_RECURSE: i32 = 0x20;
pub const LO_INITIALIZED: u32 = 0x0001_0000;
pub const MTX_UNOWNED: u64 = 0x4;
pub const MTX_DESTROYED: u64 = 0x6;
pub const SX_LOCK_UNLOCKED: u64 = 0x1;
pub const SX_LOCK_DESTROYED: u64 = 0x6;
/// Offset of the lock word in `struct mtx`/`struct sx` (after `struct lock_object`).
pub const LOCK_WORD_OFFSET: u64 = 24;

/// The kind of a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    SleepMutex,
    SpinMutex,
    Sx,
    Rm,
}

/// State of one lock (keyed by the address of the lock structure).
#[derive(Clone, Debug)]
pub struct LockState {
    pub kind: LockKind,
    pub name: String,
    pub recursable: bool,
    /// Exclusive owner's harness tid (0 = none).
    pub owner: u64,
    pub recursion: u32,
    /// Shared holders (sx shared, rm readers): tids, one entry per hold.
    pub readers: Vec<u64>,
    /// rm read trackers → holder tid.
    pub trackers: HashMap<u64, u64>,
    pub destroyed: bool,
}

struct Table {
    locks: HashMap<u64, LockState>,
    /// Every lock ever initialised, in order (address, kind, name).
    history: Vec<(u64, LockKind, String)>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
static CHANGED: Condvar = Condvar::new();

fn lock_table() -> std::sync::MutexGuard<'static, Option<Table>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

fn table_mut(g: &mut Option<Table>) -> &mut Table {
    g.get_or_insert_with(|| Table {
        locks: HashMap::new(),
        history: Vec::new(),
    })
}

fn me() -> u64 {
    with_thread(|t| t.tid)
}

fn write_word(addr: u64, value: u64) {
    // SAFETY: `addr` is the lock word inside a lock structure the module
    // handed us; it stays valid until the lock is destroyed.
    unsafe { std::ptr::write_volatile(addr as *mut u64, value) }
}

fn init_lock(base: u64, name_ptr: u64, kind: LockKind, recursable: bool) {
    // SAFETY: lock names are C strings in module memory.
    let name = unsafe { super::c_str(name_ptr, 128) };
    let mut g = lock_table();
    let t = table_mut(&mut g);
    if let Some(old) = t.locks.get(&base) {
        if !old.destroyed {
            kpanic(&format!(
                "lock \"{name}\" {base:#x} already initialized (as \"{}\")",
                old.name
            ));
        }
    }
    // SAFETY: lock_object header (lo_name @0, lo_flags @8) of a live lock.
    unsafe {
        std::ptr::write_volatile(base as *mut u64, name_ptr);
        std::ptr::write_volatile((base + 8) as *mut u32, LO_INITIALIZED);
    }
    t.history.push((base, kind, name.clone()));
    t.locks.insert(
        base,
        LockState {
            kind,
            name,
            recursable,
            owner: 0,
            recursion: 0,
            readers: Vec::new(),
            trackers: HashMap::new(),
            destroyed: false,
        },
    );
}

fn get<'a>(t: &'a mut Table, base: u64, kind: LockKind, op: &str) -> &'a mut LockState {
    match t.locks.get_mut(&base) {
        None => kpanic(&format!("{op}: lock {base:#x} was never initialized")),
        Some(l) if l.destroyed => {
            kpanic(&format!("{op}: lock \"{}\" {base:#x} is destroyed", l.name))
        }
        Some(l) if l.kind != kind => kpanic(&format!(
            "{op}: lock \"{}\" is a {:?}, not a {kind:?}",
            l.name, l.kind
        )),
        Some(l) => l,
    }
}

/// Acquire exclusively, waiting (with the CPU given up unless `spin`).
fn acquire_exclusive(base: u64, kind: LockKind, op: &str, spin: bool) {
    let tid = me();
    {
        let mut g = lock_table();
        let l = get(table_mut(&mut g), base, kind, op);
        if l.owner == tid {
            if !l.recursable {
                kpanic(&format!(
                    "{op}: recursed on non-recursive lock \"{}\"",
                    l.name
                ));
            }
            l.recursion += 1;
            return;
        }
        if l.readers.contains(&tid) {
            kpanic(&format!(
                "{op}: \"{}\" exclusively locked by a thread holding it shared",
                l.name
            ));
        }
        if l.owner == 0 && l.readers.is_empty() {
            l.owner = tid;
            return;
        }
    }
    let wait = || {
        let mut g = lock_table();
        loop {
            let l = get(table_mut(&mut g), base, kind, op);
            if l.owner == 0 && l.readers.is_empty() {
                l.owner = tid;
                return;
            }
            g = CHANGED.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    };
    if spin {
        wait();
    } else {
        cpu::blocking(op, kind != LockKind::Sx, wait);
    }
}

fn release_exclusive(base: u64, kind: LockKind, op: &str) {
    let tid = me();
    let mut g = lock_table();
    let l = get(table_mut(&mut g), base, kind, op);
    if l.owner != tid {
        kpanic(&format!(
            "{op}: lock \"{}\" not owned by this thread",
            l.name
        ));
    }
    if l.recursion > 0 {
        l.recursion -= 1;
        return;
    }
    l.owner = 0;
    CHANGED.notify_all();
}

fn destroy(base: u64, kind: LockKind, op: &str, allow_self_owned: bool) {
    let tid = me();
    let mut g = lock_table();
    let l = get(table_mut(&mut g), base, kind, op);
    let held_by_other = l.owner != 0 && l.owner != tid;
    if held_by_other || !l.readers.is_empty() || (l.owner == tid && !allow_self_owned) {
        kpanic(&format!("{op}: lock \"{}\" destroyed while held", l.name));
    }
    let was_owned = l.owner == tid;
    l.destroyed = true;
    l.owner = 0;
    drop(g);
    if was_owned {
        with_thread(|t| t.sleep_mutexes = t.sleep_mutexes.saturating_sub(1));
    }
    // SAFETY: lo_flags at +8 of the lock object.
    unsafe { std::ptr::write_volatile((base + 8) as *mut u32, 0) };
}

// ---- mutex(9) -------------------------------------------------------------

extern "C" fn kpi_mtx_init(c: u64, name: u64, _type: u64, opts: i32) {
    let base = c - LOCK_WORD_OFFSET;
    let kind = if opts & MTX_SPIN != 0 {
        LockKind::SpinMutex
    } else {
        LockKind::SleepMutex
    };
    init_lock(base, name, kind, opts & MTX_RECURSE != 0);
    write_word(c, MTX_UNOWNED);
}

extern "C" fn kpi_mtx_destroy(c: u64) {
    let base = c - LOCK_WORD_OFFSET;
    let kind = {
        let mut g = lock_table();
        match table_mut(&mut g).locks.get(&base) {
            Some(l) => l.kind,
            None => kpanic(&format!("mtx_destroy: {base:#x} was never initialized")),
        }
    };
    destroy(base, kind, "mtx_destroy", true);
    write_word(c, MTX_DESTROYED);
}

extern "C" fn kpi_mtx_lock_flags(c: u64, _opts: i32, _file: u64, _line: i32) {
    let base = c - LOCK_WORD_OFFSET;
    acquire_exclusive(base, LockKind::SleepMutex, "mtx_lock", false);
    with_thread(|t| t.sleep_mutexes += 1);
    write_word(c, cpu::curthread());
}

extern "C" fn kpi_mtx_unlock_flags(c: u64, _opts: i32, _file: u64, _line: i32) {
    let base = c - LOCK_WORD_OFFSET;
    release_exclusive(base, LockKind::SleepMutex, "mtx_unlock");
    with_thread(|t| t.sleep_mutexes = t.sleep_mutexes.saturating_sub(1));
    let still_owned = {
        let mut g = lock_table();
        table_mut(&mut g)
            .locks
            .get(&base)
            .is_some_and(|l| l.owner != 0)
    };
    if !still_owned {
        write_word(c, MTX_UNOWNED);
    }
}

extern "C" fn kpi_mtx_lock_spin_flags(c: u64, _opts: i32, _file: u64, _line: i32) {
    let base = c - LOCK_WORD_OFFSET;
    with_thread(|t| t.critnest += 1);
    acquire_exclusive(base, LockKind::SpinMutex, "mtx_lock_spin", true);
    with_thread(|t| t.spinlocks += 1);
    write_word(c, cpu::curthread());
}

extern "C" fn kpi_mtx_unlock_spin_flags(c: u64, _opts: i32, _file: u64, _line: i32) {
    let base = c - LOCK_WORD_OFFSET;
    release_exclusive(base, LockKind::SpinMutex, "mtx_unlock_spin");
    let still_owned = {
        let mut g = lock_table();
        table_mut(&mut g)
            .locks
            .get(&base)
            .is_some_and(|l| l.owner != 0)
    };
    if !still_owned {
        write_word(c, MTX_UNOWNED);
    }
    with_thread(|t| {
        t.spinlocks = t.spinlocks.saturating_sub(1);
        t.critnest = t.critnest.saturating_sub(1);
    });
}

// ---- sx(9) ----------------------------------------------------------------

extern "C" fn kpi_sx_init_flags(sx: u64, name: u64, opts: i32) {
    init_lock(sx, name, LockKind::Sx, opts & SX_RECURSE != 0);
    write_word(sx + LOCK_WORD_OFFSET, SX_LOCK_UNLOCKED);
}

extern "C" fn kpi_sx_destroy(sx: u64) {
    destroy(sx, LockKind::Sx, "sx_destroy", false);
    write_word(sx + LOCK_WORD_OFFSET, SX_LOCK_DESTROYED);
}

extern "C" fn kpi_sx_xlock(sx: u64, _opts: i32, _file: u64, _line: i32) -> i32 {
    acquire_exclusive(sx, LockKind::Sx, "sx_xlock", false);
    with_thread(|t| t.sleepable_locks += 1);
    write_word(sx + LOCK_WORD_OFFSET, cpu::curthread());
    0
}

extern "C" fn kpi_sx_xunlock(sx: u64, _file: u64, _line: i32) {
    release_exclusive(sx, LockKind::Sx, "sx_xunlock");
    with_thread(|t| t.sleepable_locks = t.sleepable_locks.saturating_sub(1));
    let still = {
        let mut g = lock_table();
        table_mut(&mut g)
            .locks
            .get(&sx)
            .is_some_and(|l| l.owner != 0)
    };
    if !still {
        write_word(sx + LOCK_WORD_OFFSET, SX_LOCK_UNLOCKED);
    }
}

fn acquire_shared(base: u64, kind: LockKind, op: &str, tracker: u64) {
    let tid = me();
    let wait = || {
        let mut g = lock_table();
        loop {
            let l = get(table_mut(&mut g), base, kind, op);
            if l.owner == tid {
                kpanic(&format!(
                    "{op}: \"{}\" locked shared by its exclusive owner",
                    l.name
                ));
            }
            if l.owner == 0 {
                l.readers.push(tid);
                if tracker != 0 {
                    l.trackers.insert(tracker, tid);
                }
                return;
            }
            g = CHANGED.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    };
    cpu::blocking(op, kind == LockKind::Rm, wait);
}

fn release_shared(base: u64, kind: LockKind, op: &str, tracker: u64) {
    let tid = me();
    let mut g = lock_table();
    let l = get(table_mut(&mut g), base, kind, op);
    if tracker != 0 && l.trackers.remove(&tracker) != Some(tid) {
        kpanic(&format!(
            "{op}: tracker {tracker:#x} does not hold \"{}\"",
            l.name
        ));
    }
    match l.readers.iter().position(|r| *r == tid) {
        Some(i) => {
            l.readers.swap_remove(i);
        }
        None => kpanic(&format!(
            "{op}: lock \"{}\" not share-locked by this thread",
            l.name
        )),
    }
    CHANGED.notify_all();
}

fn sx_update_shared_word(sx: u64) {
    let n = {
        let mut g = lock_table();
        table_mut(&mut g)
            .locks
            .get(&sx)
            .map(|l| l.readers.len() as u64)
            .unwrap_or(0)
    };
    write_word(sx + LOCK_WORD_OFFSET, (n << 5) | SX_LOCK_UNLOCKED);
}

extern "C" fn kpi_sx_slock(sx: u64, _opts: i32, _file: u64, _line: i32) -> i32 {
    acquire_shared(sx, LockKind::Sx, "sx_slock", 0);
    with_thread(|t| t.sleepable_locks += 1);
    sx_update_shared_word(sx);
    0
}

extern "C" fn kpi_sx_sunlock(sx: u64, _file: u64, _line: i32) {
    release_shared(sx, LockKind::Sx, "sx_sunlock", 0);
    with_thread(|t| t.sleepable_locks = t.sleepable_locks.saturating_sub(1));
    sx_update_shared_word(sx);
}

// ---- rmlock(9) ----------------------------------------------------------------

extern "C" fn kpi_rm_init_flags(rm: u64, name: u64, opts: i32) {
    init_lock(rm, name, LockKind::Rm, opts & 0x1 != 0);
}

extern "C" fn kpi_rm_destroy(rm: u64) {
    destroy(rm, LockKind::Rm, "rm_destroy", false);
}

extern "C" fn kpi_rm_rlock(rm: u64, tracker: u64, _trylock: i32) -> i32 {
    if tracker == 0 {
        kpanic("rm_rlock: NULL priority tracker");
    }
    acquire_shared(rm, LockKind::Rm, "rm_rlock", tracker);
    with_thread(|t| t.sleepable_locks += 1);
    1
}

extern "C" fn kpi_rm_runlock(rm: u64, tracker: u64) {
    release_shared(rm, LockKind::Rm, "rm_runlock", tracker);
    with_thread(|t| t.sleepable_locks = t.sleepable_locks.saturating_sub(1));
}

extern "C" fn kpi_rm_wlock(rm: u64) {
    acquire_exclusive(rm, LockKind::Rm, "rm_wlock", false);
    with_thread(|t| t.sleepable_locks += 1);
}

extern "C" fn kpi_rm_wunlock(rm: u64) {
    release_exclusive(rm, LockKind::Rm, "rm_wunlock");
    with_thread(|t| t.sleepable_locks = t.sleepable_locks.saturating_sub(1));
}

// ---- critical sections ------------------------------------------------------

extern "C" fn kpi_critical_enter() {
    with_thread(|t| t.critnest += 1);
}

extern "C" fn kpi_critical_exit() {
    let ok = with_thread(|t| {
        if t.critnest == 0 {
            return false;
        }
        t.critnest -= 1;
        true
    });
    if !ok {
        kpanic("critical_exit: not in a critical section");
    }
}

/// Locks initialised and not yet destroyed: (address, kind, name).
pub fn live_locks() -> Vec<(u64, LockKind, String)> {
    let mut g = lock_table();
    let t = table_mut(&mut g);
    let mut v: Vec<(u64, LockKind, String)> = t
        .locks
        .iter()
        .filter(|(_, l)| !l.destroyed)
        .map(|(a, l)| (*a, l.kind, l.name.clone()))
        .collect();
    v.sort_by_key(|x| x.0);
    v
}

/// Every lock initialised so far (including destroyed ones).
pub fn history() -> Vec<(u64, LockKind, String)> {
    let mut g = lock_table();
    table_mut(&mut g).history.clone()
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("_mtx_init", kpi_mtx_init as *const () as usize),
        ("_mtx_destroy", kpi_mtx_destroy as *const () as usize),
        ("__mtx_lock_flags", kpi_mtx_lock_flags as *const () as usize),
        (
            "__mtx_unlock_flags",
            kpi_mtx_unlock_flags as *const () as usize,
        ),
        (
            "__mtx_lock_spin_flags",
            kpi_mtx_lock_spin_flags as *const () as usize,
        ),
        (
            "__mtx_unlock_spin_flags",
            kpi_mtx_unlock_spin_flags as *const () as usize,
        ),
        ("sx_init_flags", kpi_sx_init_flags as *const () as usize),
        ("sx_destroy", kpi_sx_destroy as *const () as usize),
        ("_sx_xlock", kpi_sx_xlock as *const () as usize),
        ("_sx_xunlock", kpi_sx_xunlock as *const () as usize),
        ("_sx_slock", kpi_sx_slock as *const () as usize),
        ("_sx_sunlock", kpi_sx_sunlock as *const () as usize),
        ("rm_init_flags", kpi_rm_init_flags as *const () as usize),
        ("rm_destroy", kpi_rm_destroy as *const () as usize),
        ("_rm_rlock", kpi_rm_rlock as *const () as usize),
        ("_rm_runlock", kpi_rm_runlock as *const () as usize),
        ("_rm_wlock", kpi_rm_wlock as *const () as usize),
        ("_rm_wunlock", kpi_rm_wunlock as *const () as usize),
        (
            "critical_enter_KBI",
            kpi_critical_enter as *const () as usize,
        ),
        ("critical_exit_KBI", kpi_critical_exit as *const () as usize),
    ]
}

/// Release the interlock `lock` (a `struct lock_object *`: a mutex or an
/// exclusively held sx) for `_sleep`; returns its kind for reacquisition.
pub(super) fn release_interlock(lock: u64) -> LockKind {
    let kind = {
        let mut g = lock_table();
        match table_mut(&mut g).locks.get(&lock) {
            Some(l) if !l.destroyed => l.kind,
            _ => kpanic(&format!("_sleep: interlock {lock:#x} is not a live lock")),
        }
    };
    match kind {
        LockKind::SleepMutex => kpi_mtx_unlock_flags(lock + LOCK_WORD_OFFSET, 0, 0, 0),
        LockKind::Sx => kpi_sx_xunlock(lock, 0, 0),
        other => kpanic(&format!("_sleep: a {other:?} cannot be a sleep interlock")),
    }
    kind
}

/// Take the interlock back after `_sleep`.
pub(super) fn reacquire_interlock(lock: u64, kind: LockKind) {
    match kind {
        LockKind::SleepMutex => kpi_mtx_lock_flags(lock + LOCK_WORD_OFFSET, 0, 0, 0),
        _ => {
            kpi_sx_xlock(lock, 0, 0, 0);
        }
    }
}
