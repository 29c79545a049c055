//! callout(9): `callout_init`, `callout_reset_sbt_on`, `_callout_stop_safe`,
//! with callouts that really fire on the harness CPU they were scheduled on.
//!
//! Each harness CPU has a dispatcher thread that sleeps until the earliest
//! callout due on that CPU, then runs the handler on that CPU as interrupt
//! work (as `C_DIRECT_EXEC` callouts run, without Giant): on a free CPU
//! itself, on a busy one by interrupting the thread spinning in module code
//! there (see `cpu::run_as_interrupt`). Return values follow
//! callout(9): reset returns 1 if it cancelled a pending callout, else 0;
//! stop returns 1 if the callout was pending, 0 if it could not be stopped
//! because its handler is running, -1 if it was neither; with `CS_DRAIN`
//! stop waits for a running handler (unless called from that handler) and
//! may sleep; while a drain waits, the running handler cannot re-arm the
//! callout (FreeBSD ignores that reset). The harness mirrors `c_time`, `c_func`, `c_arg`, `c_cpu` and
//! the ACTIVE/PENDING bits into the module's `struct callout`.
//! Not probe context (reset/stop take a host lock).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, Once};
use std::time::Duration;

use super::cpu::{self, ncpu};
use super::kpanic;
use super::time;

pub const C_ABSOLUTE: i32 = 0x0200;
pub const CS_DRAIN: i32 = 0x0001;
const CALLOUT_ACTIVE: u16 = 0x0002;
const CALLOUT_MPSAFE: u16 = 0x0008;
const CALLOUT_DIRECT: u16 = 0x0100;
const CALLOUT_IFLAG_PENDING: u16 = 0x0004;

#[derive(Clone, Debug)]
struct Entry {
    deadline_ns: u64,
    func: u64,
    arg: u64,
    cpu: usize,
    pending: bool,
    running: bool,
    running_tid: u64,
    fired: u64,
    /// A `callout_drain` is waiting for the running handler.
    draining: bool,
}

static STATE: Mutex<Option<HashMap<u64, Entry>>> = Mutex::new(None);
static CHANGED: Condvar = Condvar::new();
static START: Once = Once::new();

fn state() -> std::sync::MutexGuard<'static, Option<HashMap<u64, Entry>>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn mirror(c: u64, e: &Entry) {
    let flags = CALLOUT_MPSAFE
        | CALLOUT_DIRECT
        | if e.pending || e.running {
            CALLOUT_ACTIVE
        } else {
            0
        };
    // SAFETY: `c` is a 64-byte `struct callout` in module memory:
    // c_time @16, c_arg @32, c_func @40, c_flags @56, c_iflags @58, c_cpu @60.
    unsafe {
        std::ptr::write_volatile((c + 16) as *mut i64, time::ns_to_sbt(e.deadline_ns));
        std::ptr::write_volatile((c + 32) as *mut u64, e.arg);
        std::ptr::write_volatile((c + 40) as *mut u64, e.func);
        std::ptr::write_volatile((c + 56) as *mut u16, flags);
        std::ptr::write_volatile(
            (c + 58) as *mut u16,
            if e.pending { CALLOUT_IFLAG_PENDING } else { 0 },
        );
        std::ptr::write_volatile((c + 60) as *mut i32, e.cpu as i32);
    }
}

fn start_dispatchers() {
    START.call_once(|| {
        for c in 0..ncpu() {
            std::thread::Builder::new()
                .name(format!("softclock{c}"))
                .spawn(move || dispatcher(c))
                .expect("spawn callout dispatcher");
        }
    });
}

fn dispatcher(my_cpu: usize) {
    let tid = cpu::with_thread(|t| t.tid);
    loop {
        let mut g = state();
        let (c, func, arg) = loop {
            let now = time::uptime_ns();
            let map = g.get_or_insert_with(HashMap::new);
            let next = map
                .iter()
                .filter(|(_, e)| e.pending && e.cpu == my_cpu)
                .min_by_key(|(_, e)| e.deadline_ns)
                .map(|(c, e)| (*c, e.deadline_ns));
            match next {
                Some((c, deadline)) if deadline <= now => {
                    let e = map.get_mut(&c).expect("entry just found");
                    e.pending = false;
                    e.running = true;
                    e.running_tid = tid;
                    e.fired += 1;
                    mirror(c, e);
                    break (c, e.func, e.arg);
                }
                Some((_, deadline)) => {
                    let wait = Duration::from_nanos(deadline - now);
                    g = CHANGED
                        .wait_timeout(g, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None => {
                    g = CHANGED
                        .wait_timeout(g, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        };
        drop(g);
        cpu::run_as_interrupt(my_cpu, &|| {
            // SAFETY: `func` is the module's `void (*)(void *)` handler given
            // to callout_reset_sbt_on; the module keeps it mapped while the
            // callout is scheduled or running (checked at unload).
            let f: extern "C" fn(u64) = unsafe { std::mem::transmute(func) };
            f(arg);
        });
        let mut g = state();
        if let Some(e) = g.get_or_insert_with(HashMap::new).get_mut(&c) {
            e.running = false;
            e.running_tid = 0;
            e.draining = false;
            mirror(c, e);
        }
        CHANGED.notify_all();
    }
}

extern "C" fn kpi_callout_init(c: u64, mpsafe: i32) {
    let mut g = state();
    let map = g.get_or_insert_with(HashMap::new);
    if map.get(&c).is_some_and(|e| e.pending || e.running) {
        kpanic(&format!(
            "callout_init: callout {c:#x} is pending or running"
        ));
    }
    if mpsafe == 0 {
        super::console_write("harness: callout_init without mpsafe (Giant) treated as MPSAFE\n");
    }
    // SAFETY: the caller passes its 64-byte struct callout, which FreeBSD zeroes.
    unsafe { std::ptr::write_bytes(c as *mut u8, 0, 64) };
    let e = Entry {
        deadline_ns: 0,
        func: 0,
        arg: 0,
        cpu: 0,
        pending: false,
        running: false,
        running_tid: 0,
        fired: 0,
        draining: false,
    };
    mirror(c, &e);
    map.insert(c, e);
}

extern "C" fn kpi_callout_reset_sbt_on(
    c: u64,
    sbt: i64,
    _prec: i64,
    func: u64,
    arg: u64,
    cpu: i32,
    flags: i32,
) -> i32 {
    start_dispatchers();
    let mut g = state();
    let map = g.get_or_insert_with(HashMap::new);
    let Some(e) = map.get_mut(&c) else {
        kpanic(&format!(
            "callout_reset_sbt_on: callout {c:#x} was never initialized"
        ));
    };
    if func == 0 {
        kpanic("callout_reset_sbt_on: NULL function");
    }
    if e.draining {
        // Someone is draining this callout: the handler may not re-arm it.
        return 0;
    }
    let target = if cpu == -1 { e.cpu } else { cpu as usize };
    if target >= ncpu() {
        kpanic(&format!("callout_reset_sbt_on: CPU {cpu} is not present"));
    }
    let deadline = if flags & C_ABSOLUTE != 0 {
        time::sbt_to_ns(sbt)
    } else {
        time::uptime_ns() + time::sbt_to_ns(sbt)
    };
    let cancelled = e.pending;
    e.deadline_ns = deadline;
    e.func = func;
    e.arg = arg;
    e.cpu = target;
    e.pending = true;
    mirror(c, e);
    CHANGED.notify_all();
    i32::from(cancelled)
}

extern "C" fn kpi_callout_stop_safe(c: u64, flags: i32) -> i32 {
    let tid = cpu::with_thread(|t| t.tid);
    let mut g = state();
    let map = g.get_or_insert_with(HashMap::new);
    let Some(e) = map.get_mut(&c) else {
        kpanic(&format!(
            "callout_stop: callout {c:#x} was never initialized"
        ));
    };
    let was_pending = e.pending;
    e.pending = false;
    mirror(c, e);
    let running_elsewhere = e.running && e.running_tid != tid;
    if flags & CS_DRAIN != 0 && running_elsewhere {
        e.draining = true;
    }
    drop(g);
    if flags & CS_DRAIN != 0 && running_elsewhere {
        cpu::blocking("callout_drain", false, || {
            let mut g = state();
            while g
                .get_or_insert_with(HashMap::new)
                .get(&c)
                .is_some_and(|e| e.running)
            {
                g = CHANGED.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        });
    }
    if was_pending {
        1
    } else if running_elsewhere {
        0
    } else {
        -1
    }
}

/// Callouts pending or running whose handler or structure lies in `[lo, hi)`.
pub fn active_in(lo: u64, hi: u64) -> Vec<String> {
    let mut g = state();
    g.get_or_insert_with(HashMap::new)
        .iter()
        .filter(|(c, e)| {
            (e.pending || e.running) && ((**c >= lo && **c < hi) || (e.func >= lo && e.func < hi))
        })
        .map(|(c, e)| {
            format!(
                "callout {c:#x} func {:#x} pending {} running {}",
                e.func, e.pending, e.running
            )
        })
        .collect()
}

/// How many times the callout at `c` has fired.
pub fn fired(c: u64) -> u64 {
    let mut g = state();
    g.get_or_insert_with(HashMap::new)
        .get(&c)
        .map(|e| e.fired)
        .unwrap_or(0)
}

/// Total handler invocations so far.
pub fn total_fired() -> u64 {
    let mut g = state();
    g.get_or_insert_with(HashMap::new)
        .values()
        .map(|e| e.fired)
        .sum()
}

/// Forget callouts whose structure lies in `[lo, hi)` (the memory is gone).
pub fn forget_range(lo: u64, hi: u64) {
    let mut g = state();
    g.get_or_insert_with(HashMap::new)
        .retain(|c, e| !(*c >= lo && *c < hi) || e.pending || e.running);
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("callout_init", kpi_callout_init as *const () as usize),
        (
            "callout_reset_sbt_on",
            kpi_callout_reset_sbt_on as *const () as usize,
        ),
        (
            "_callout_stop_safe",
            kpi_callout_stop_safe as *const () as usize,
        ),
    ]
}
