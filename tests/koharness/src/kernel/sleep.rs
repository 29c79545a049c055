//! sleep(9) and friends: `_sleep`, `wakeup`, `wakeup_one`, `pause_sbt`,
//! `kern_yield`, `DELAY`.
//!
//! `_sleep(ident, lock, priority, wmesg, sbt, pr, flags)` releases the
//! interlock (a sleep mutex or an exclusively held sx), gives the CPU up,
//! waits for `wakeup(ident)` or the timeout (`sbt` > 0; absolute with
//! `C_ABSOLUTE`), and takes the interlock back unless `PDROP` is set;
//! it returns 0 when woken and EWOULDBLOCK on timeout. Sleeping with any
//! other mutex held or in a critical section panics, as under WITNESS.
//! `wakeup_one` wakes every sleeper on the channel (sleepers must recheck
//! their condition anyway). `pause_sbt` sleeps on a private channel and so
//! returns EWOULDBLOCK. `DELAY` spins without giving the CPU up.
//! None of these may be called in probe context (DELAY excepted).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{cpu, locks, time};

const PDROP: i32 = 0x200;
const C_ABSOLUTE: i32 = 0x0200;
pub const EWOULDBLOCK: i32 = 35;

static CHANNELS: Mutex<Option<HashMap<u64, u64>>> = Mutex::new(None);
static WOKEN: Condvar = Condvar::new();

fn generation(ident: u64) -> u64 {
    let mut g = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    *g.get_or_insert_with(HashMap::new).entry(ident).or_insert(0)
}

/// Sleep on `ident` until its generation moves past `start_gen` (read
/// before the interlock was dropped, so no wakeup is lost) or until
/// `deadline`; true if woken.
fn wait(ident: u64, start_gen: u64, deadline: Option<Instant>) -> bool {
    let mut g = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if g.get_or_insert_with(HashMap::new)
            .get(&ident)
            .copied()
            .unwrap_or(0)
            != start_gen
        {
            return true;
        }
        match deadline {
            None => g = WOKEN.wait(g).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                g = WOKEN
                    .wait_timeout(g, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

fn deadline_of(sbt: i64, flags: i32) -> Option<Instant> {
    if sbt <= 0 {
        return None;
    }
    let ns = if flags & C_ABSOLUTE != 0 {
        time::sbt_to_ns(sbt).saturating_sub(time::uptime_ns())
    } else {
        time::sbt_to_ns(sbt)
    };
    Some(Instant::now() + Duration::from_nanos(ns))
}

#[allow(clippy::too_many_arguments)]
extern "C" fn kpi_sleep(
    ident: u64,
    lock: u64,
    priority: i32,
    _wmesg: u64,
    sbt: i64,
    _pr: i64,
    flags: i32,
) -> i32 {
    if ident == 0 {
        super::kpanic("_sleep: NULL wait channel");
    }
    let deadline = deadline_of(sbt, flags);
    let start_gen = generation(ident);
    let kind = (lock != 0).then(|| locks::release_interlock(lock));
    let woken = cpu::blocking("_sleep", false, || wait(ident, start_gen, deadline));
    if let Some(kind) = kind {
        if priority & PDROP == 0 {
            locks::reacquire_interlock(lock, kind);
        }
    }
    if woken {
        0
    } else {
        EWOULDBLOCK
    }
}

extern "C" fn kpi_wakeup(ident: u64) {
    let mut g = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    *g.get_or_insert_with(HashMap::new).entry(ident).or_insert(0) += 1;
    WOKEN.notify_all();
}

extern "C" fn kpi_pause_sbt(_wmesg: u64, sbt: i64, _pr: i64, flags: i32) -> i32 {
    let deadline = deadline_of(sbt.max(1), flags);
    let private = cpu::curthread() + 1;
    let start_gen = generation(private);
    cpu::blocking("pause", false, || wait(private, start_gen, deadline));
    EWOULDBLOCK
}

extern "C" fn kpi_kern_yield(_prio: i32) {
    cpu::spin_wait_interruptible(std::thread::yield_now);
}

extern "C" fn kpi_delay(usec: i32) {
    let end = Instant::now() + Duration::from_micros(usec.max(0) as u64);
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("_sleep", kpi_sleep as *const () as usize),
        ("wakeup", kpi_wakeup as *const () as usize),
        ("wakeup_one", kpi_wakeup as *const () as usize),
        ("pause_sbt", kpi_pause_sbt as *const () as usize),
        ("kern_yield", kpi_kern_yield as *const () as usize),
        ("DELAY", kpi_delay as *const () as usize),
    ]
}
