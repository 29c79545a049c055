//! The sixth argument of an SDT probe.
//!
//! A kernel SDT site calls `sdt_probe_func(id, arg0, …, arg5)` (`sdt_probe`
//! passes 0 for arg5, `sdt_probe6` the real value), but `dtrace_probe`
//! carries only five arguments. FreeBSD's sdt provider parks arg5 in the
//! firing thread's DTrace area and answers `getargval(5)` from there.
//! rdtrace owns both ends (the hook and `getargval`), so it parks the value
//! per CPU instead and needs no `struct thread` layout: the hook keeps the
//! thread on its CPU (a critical section) and calls [`with_sixth_arg`],
//! which saves the CPU's previous value (an interrupt's probe may nest
//! inside the firing), publishes arg5, fires and restores; `getargval(5)`
//! on the same CPU reads it with [`sixth_arg`].
//!
//! Probe context: everything here (atomics only, no allocation, no panic).

use core::sync::atomic::{AtomicU64, Ordering};

/// CPUs with a slot (FreeBSD's amd64 MAXCPU); a CPU id beyond has no
/// sixth argument.
pub const MAX_CPUS: usize = 1024;

static SLOTS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Run `fire` with `arg5` published as `cpu`'s sixth SDT argument, then put
/// the CPU's previous value back. The caller keeps the thread on `cpu` for
/// the whole call. *Probe context.*
pub fn with_sixth_arg<R>(cpu: usize, arg5: u64, fire: impl FnOnce() -> R) -> R {
    let Some(slot) = SLOTS.get(cpu) else {
        return fire();
    };
    let saved = slot.swap(arg5, Ordering::AcqRel);
    let result = fire();
    slot.store(saved, Ordering::Release);
    result
}

/// The sixth argument of the SDT probe firing on `cpu` (0 when none has
/// fired there; `None` for a CPU id without a slot). *Probe context.*
pub fn sixth_arg(cpu: usize) -> Option<u64> {
    SLOTS.get(cpu).map(|slot| slot.load(Ordering::Acquire))
}

/// `getargval` for SDT probes: argument 5 from [`sixth_arg`]; no other
/// argument number is answered (arguments 0..4 travel with `dtrace_probe`,
/// and an SDT probe has at most six). *Probe context.*
pub fn getargval(cpu: usize, argno: i32) -> Option<u64> {
    if argno == 5 {
        sixth_arg(cpu)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_firings_restore_the_outer_value() {
        let cpu = MAX_CPUS - 1;
        let seen = with_sixth_arg(cpu, 66, || {
            let inner = with_sixth_arg(cpu, 77, || getargval(cpu, 5));
            (inner, getargval(cpu, 5), getargval(cpu, 4))
        });
        assert_eq!(seen, (Some(77), Some(66), None));
        assert_eq!(sixth_arg(cpu), Some(0), "restored after the firing");
        assert_eq!(with_sixth_arg(MAX_CPUS, 5, || sixth_arg(MAX_CPUS)), None);
    }
}
