//! Consumer lifecycle: open (state creation), the GO/STOP transitions with
//! BEGIN/END firing, the cleaner and deadman callouts, option setting,
//! enabling matching, and teardown at close.
//!
//! Probe context: no (ioctl and callout context). Callouts take no
//! framework lock, so teardown may drain them while holding it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::abi::*;
use crate::dof::{EcbDesc, ProbeSpec};
use crate::ecb;
use crate::firing;
use crate::platform::{Errno, ThreadIdentity};
use crate::provider::ProbeDescription;
use crate::registry::{self, Core, Framework, Probe};
use crate::run;
use crate::spec;
use crate::state::{ConsumerState, StateInner};

/// `dtrace_state_option`: validates and sets one option.
pub fn set_option(
    fw: &Framework,
    state: &ConsumerState,
    option: u32,
    value: i64,
) -> Result<(), Errno> {
    if state.activity() != ACTIVITY_INACTIVE {
        return Err(Errno::EBUSY);
    }
    let idx = option as usize;
    if idx >= DTRACEOPT_MAX {
        return Err(Errno::EINVAL);
    }
    if idx != DTRACEOPT_CPU && value < 0 {
        return Err(Errno::EINVAL);
    }
    let mut value = value;
    match idx {
        DTRACEOPT_DESTRUCTIVE if !fw.platform.destructive_allowed() => {
            return Err(Errno::EACCES);
        }
        DTRACEOPT_BUFSIZE | DTRACEOPT_DYNVARSIZE | DTRACEOPT_AGGSIZE | DTRACEOPT_SPECSIZE
        | DTRACEOPT_STRSIZE
            if value == i64::MAX =>
        {
            value = i64::MAX - (1 << 27) + 1;
        }
        _ => {}
    }
    if let Some(o) = state.options.get(idx) {
        o.store(value, Ordering::Relaxed);
    }
    Ok(())
}

fn spec_to_desc(p: &ProbeSpec) -> ProbeDescription<'_> {
    ProbeDescription {
        id: 0,
        provider: &p.provider,
        module: &p.module,
        function: &p.function,
        name: &p.name,
    }
}

/// Whether `probe` matches `spec` under DTrace's rules (an all-empty spec
/// matches only probes with a function name).
pub fn spec_matches(probe: &Probe, spec: &ProbeSpec) -> bool {
    if probe.provider().defunct.load(Ordering::Acquire) {
        return false;
    }
    let all_empty = spec.provider.is_empty()
        && spec.module.is_empty()
        && spec.function.is_empty()
        && spec.name.is_empty();
    if all_empty {
        return !probe.function.is_empty();
    }
    probe.matches(&spec_to_desc(spec))
}

/// Creates ECBs of `state` for every probe matching `desc` created at or
/// after generation `since`. Returns the number matched.
pub fn match_desc(
    fw: &Framework,
    core: &Core,
    state: &ConsumerState,
    inner: &mut StateInner,
    desc: &EcbDesc,
    since: u64,
) -> Result<usize, Errno> {
    // Every DIFO of the state must declare each variable consistently.
    {
        let mut all: Vec<&crate::dif::Difo> = Vec::new();
        all.extend(desc.predicate.as_deref());
        all.extend(desc.actions.iter().filter_map(|a| a.difo.as_deref()));
        for &e in &inner.ecbs {
            // SAFETY: ECBs in the table are live (null = destroyed).
            if let Some(e) = unsafe { e.as_ref() } {
                all.extend(e.predicate.as_deref());
                all.extend(e.actions.iter().filter_map(|a| a.difo.as_deref()));
            }
        }
        if let Err(err) = crate::dif::check_consistency(&all) {
            inner.last_error = alloc::format!("inconsistent variable: {err}");
            return Err(Errno::EINVAL);
        }
    }
    let mut matched = Vec::new();
    fw.for_each_probe(core, |p| {
        if p.gen >= since && spec_matches(p, &desc.probe) {
            matched.push(p as *const Probe);
        }
        true
    });
    for &p in &matched {
        // SAFETY: probes are live while `fw.lock` (held by our caller) is held.
        let probe = unsafe { &*p };
        ecb::create(fw, state, inner, probe, desc)?;
    }
    Ok(matched.len())
}

/// Opens a consumer: asks providers for their probes and creates a state.
pub fn open(fw: &Framework, caller: &ThreadIdentity) -> Result<*const ConsumerState, Errno> {
    fw.opens.fetch_add(1, Ordering::AcqRel);
    fw.platform.consumer_opening();
    fw.provide_all(None);
    let state = Box::into_raw(ConsumerState::new(*caller));
    fw.lock.lock().states.push(state);
    Ok(state)
}

fn cleaner(arg: usize) {
    let Some(fw) = registry::get() else { return };
    // SAFETY: the callout is drained before its state is freed.
    let state = unsafe { &*(arg as *const ConsumerState) };
    let Some(run) = state.run() else { return };
    run.dynvars.clean();
    spec_clean(fw, state);
}

fn deadman(arg: usize) {
    let Some(fw) = registry::get() else { return };
    // SAFETY: as for `cleaner`.
    let state = unsafe { &*(arg as *const ConsumerState) };
    let now = fw.platform.monotonic_ns();
    if now.saturating_sub(state.laststatus.load(Ordering::Relaxed)) >= DEADMAN_USER_NS {
        // The consumer stopped asking for status: let probe context kill it.
        return;
    }
    state.alive.store(now, Ordering::Relaxed);
}

fn spec_clean_here(arg: usize) {
    let Some(fw) = registry::get() else { return };
    // SAFETY: called by `spec_clean` through a synchronous cross-call while
    // the state is alive.
    let state = unsafe { &*(arg as *const ConsumerState) };
    let Some(run) = state.run() else { return };
    let cpu = fw.platform.cpu_id();
    let now = fw.platform.monotonic_ns();
    let Some(dest) = run.bufs.get(cpu) else {
        return;
    };
    let rs = |e: u32| run.record_size(e);
    for s in &run.specs {
        let st = s.state.load(Ordering::Acquire);
        let Some(src) = s.bufs.get(cpu) else { continue };
        if st == spec::COMMITTINGMANY {
            let reserve = state.reserve.load(Ordering::Relaxed);
            // SAFETY: the cross-call runs as `cpu`, which owns both buffers.
            unsafe { spec::finish_commit(s, src, dest, now, reserve, &rs) };
        } else if st == spec::DISCARDING {
            // SAFETY: as above.
            unsafe { spec::finish_discard(src) };
        }
    }
}

/// Finishes COMMITTINGMANY/DISCARDING speculations on every CPU.
fn spec_clean(fw: &Framework, state: &ConsumerState) {
    let Some(run) = state.run() else { return };
    let pending: Vec<usize> = run
        .specs
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            matches!(
                s.state.load(Ordering::Acquire),
                spec::COMMITTINGMANY | spec::DISCARDING
            )
        })
        .map(|(i, _)| i)
        .collect();
    if pending.is_empty() {
        return;
    }
    fw.platform.xcall(
        None,
        spec_clean_here,
        state as *const ConsumerState as usize,
    );
    for i in pending {
        if let Some(s) = run.specs.get(i) {
            let cur = s.state.load(Ordering::Acquire);
            if matches!(cur, spec::COMMITTINGMANY | spec::DISCARDING) {
                let _ = s.state.compare_exchange(
                    cur,
                    spec::INACTIVE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
    }
}

/// `dtrace_state_go`. Returns the CPU BEGIN ran on.
pub fn go(fw: &Framework, state: &ConsumerState) -> Result<i32, Errno> {
    let core = fw.lock.lock();
    let mut inner = state.inner.lock();
    if state.activity() != ACTIVITY_INACTIVE {
        return Err(Errno::EBUSY);
    }
    if state.destructive.load(Ordering::Relaxed) != 0
        && state.opt(DTRACEOPT_DESTRUCTIVE) == DTRACEOPT_UNSET
    {
        return Err(Errno::EACCES);
    }
    if state.opt(DTRACEOPT_GRABANON) != DTRACEOPT_UNSET {
        // There is no anonymous state in rdtrace.
        return Err(Errno::ENOENT);
    }
    // END reserve (`dtrace_state_prereserve`): only the fill policy keeps
    // one; every buffer GO allocates must hold it (else E2BIG).
    let end_id = fw.probe_end.load(Ordering::Relaxed);
    let reserve: usize = if state.opt(DTRACEOPT_BUFPOLICY) == DTRACEOPT_BUFPOLICY_FILL {
        inner
            .ecbs
            .iter()
            // SAFETY: ECBs in the table are live (null = destroyed).
            .filter_map(|&e| unsafe { e.as_ref() })
            .filter(|e| e.probe_id == end_id)
            .map(|e| e.needed as usize + e.alignment as usize)
            .sum()
    } else {
        0
    };
    state.reserve.store(reserve, Ordering::Relaxed);
    let built = run::build(fw.platform, state, &inner.ecbs, inner.aggs.len(), fw.ncpu)?;
    // Clamp the rates.
    let clamp = |i: usize, lo: i64, hi: i64| {
        if let Some(o) = state.options.get(i) {
            let v = o.load(Ordering::Relaxed);
            let v = if v == 0 { hi } else { v.clamp(lo, hi) };
            o.store(v, Ordering::Relaxed);
        }
    };
    if state.opt(DTRACEOPT_STATUSRATE) > STATUSRATE_MAX_NS {
        clamp(DTRACEOPT_STATUSRATE, 0, STATUSRATE_MAX_NS);
    }
    clamp(DTRACEOPT_CLEANRATE, CLEANRATE_MIN_NS, CLEANRATE_MAX_NS);
    state
        .run
        .store(Box::into_raw(Box::new(built)), Ordering::Release);
    let now = fw.platform.monotonic_ns();
    state.alive.store(now, Ordering::Relaxed);
    state.laststatus.store(now, Ordering::Relaxed);
    let arg = state as *const ConsumerState as usize;
    let cleanrate = state.opt(DTRACEOPT_CLEANRATE).max(CLEANRATE_MIN_NS) as u64;
    if let Some(t) = fw.platform.timer_create(None, cleanrate, cleaner, arg) {
        inner.timers.push(t);
    }
    if let Some(t) = fw
        .platform
        .timer_create(None, DEADMAN_INTERVAL_NS, deadman, arg)
    {
        inner.timers.push(t);
    }
    state.activity.store(ACTIVITY_WARMUP, Ordering::Release);
    drop(inner);
    // `fw.lock` stays held across BEGIN, as in FreeBSD: probe context takes
    // no framework lock, and no other ioctl can change the state meanwhile.
    let cookie = fw.platform.interrupts_disable();
    let cpu = fw.platform.cpu_id();
    firing::dtrace_probe(
        fw.probe_begin.load(Ordering::Relaxed),
        arg as u64,
        0,
        0,
        0,
        0,
    );
    fw.platform.interrupts_restore(cookie);
    let _ = state.activity.compare_exchange(
        ACTIVITY_WARMUP,
        ACTIVITY_ACTIVE,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    drop(core);
    Ok(cpu as i32)
}

/// `dtrace_state_stop`. Returns the CPU END ran on.
pub fn stop(fw: &Framework, state: &ConsumerState) -> Result<i32, Errno> {
    let _core = fw.lock.lock();
    let a = state.activity();
    if a != ACTIVITY_ACTIVE && a != ACTIVITY_DRAINING {
        return Err(Errno::EINVAL);
    }
    state.activity.store(ACTIVITY_DRAINING, Ordering::Release);
    fw.platform.sync();
    state.activity.store(ACTIVITY_COOLDOWN, Ordering::Release);
    fw.platform.sync();
    state.reserve.store(0, Ordering::Relaxed);
    let cookie = fw.platform.interrupts_disable();
    let cpu = fw.platform.cpu_id();
    firing::dtrace_probe(
        fw.probe_end.load(Ordering::Relaxed),
        state as *const ConsumerState as u64,
        0,
        0,
        0,
        0,
    );
    fw.platform.interrupts_restore(cookie);
    state.activity.store(ACTIVITY_STOPPED, Ordering::Release);
    fw.platform.sync();
    Ok(cpu as i32)
}

/// Tears a state down (close): unlink its ECBs, stop callouts, free
/// everything after a sync.
pub(crate) fn close(fw: &Framework, statep: *const ConsumerState) {
    // SAFETY: the handle owns the state until this call.
    let state = unsafe { &*statep };
    // Drain the callouts first, without the framework lock: draining may
    // sleep (callout_drain), and the callouts take no framework lock.
    let timers = core::mem::take(&mut state.inner.lock().timers);
    for t in timers {
        fw.platform.timer_destroy(t);
    }
    let mut core = fw.lock.lock();
    if state.activity() != ACTIVITY_INACTIVE && state.activity() != ACTIVITY_STOPPED {
        state.activity.store(ACTIVITY_KILLED, Ordering::Release);
        fw.platform.sync();
    }
    let ecbs = core::mem::take(&mut state.inner.lock().ecbs);
    for &e in &ecbs {
        if !e.is_null() {
            ecb::disable(e);
        }
    }
    fw.platform.sync();
    for e in ecbs {
        if !e.is_null() {
            // SAFETY: unlinked and synced: no probe context can reach it.
            drop(unsafe { Box::from_raw(e) });
        }
    }
    let run = state.run.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !run.is_null() {
        // SAFETY: published by `go` via `Box::into_raw`; no ECB refers to it now.
        drop(unsafe { Box::from_raw(run) });
    }
    core.states.retain(|&s| s != statep);
    drop(core);
    // SAFETY: created by `open` via `Box::into_raw`; unreachable now.
    drop(unsafe { Box::from_raw(statep as *mut ConsumerState) });
    fw.opens.fetch_sub(1, Ordering::AcqRel);
}
