//! `dtrace_probe()`: the firing path of abi-facts §5.3.
//!
//! Order per firing: look the probe up (lock-free), disable interrupts, note
//! the CPU, read the timestamp once, then for each ECB on the probe: the
//! per-consumer filter for dtrace-provider probes, the activity check (BEGIN
//! in WARMUP, END in COOLDOWN), the deadman, the buffer reservation (drops
//! counted per CPU), the record header, the predicate, the actions; a fault
//! abandons the record, counts an error and fires ERROR (a fault in an ERROR
//! ECB counts `dblerrors` instead).
//!
//! Probe context: everything in this file. It never allocates, sleeps or
//! panics; the lints below reject the usual panic sources and the
//! `no_panic_in_probe_context` test checks the built object (see
//! docs/architecture.md).
#![deny(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use core::sync::atomic::Ordering;

use crate::abi::*;
use crate::agg::AggSpec;
use crate::buffer::CpuBuffer;
use crate::bytes::{put_bytes, put_u16, put_u32, put_u64};
use crate::dif::{execute, read_memory, Difo, ExecContext, ExecHooks, Fault, ProbeInfo};
use crate::ecb::{Action, Ecb, FastDifo};
use crate::platform::ThreadIdentity;
use crate::registry::{self, Framework, Probe};
use crate::run::RunState;
use crate::spec::{self, NewSpec};
use crate::state::ConsumerState;

/// Fires probe `id` with arguments `a0..a4` (`dtrace_probe`).
#[inline]
pub fn dtrace_probe(id: u32, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) {
    fire(id, [a0, a1, a2, a3, a4], 0);
}

/// What went wrong in one ECB, reported after its borrows are released.
struct EcbError {
    state: *const ConsumerState,
    epid: u32,
    ndx: u64,
    offset: u64,
    code: u64,
    addr: u64,
}

/// Fires `id` with five arguments plus a sixth (only ERROR uses it).
pub fn fire(id: u32, args: [u64; 5], arg5: u64) {
    let Some(fw) = registry::get() else { return };
    let Some(probe) = fw.probe_by_id(id) else {
        return;
    };
    let head = probe.ecbs.load(Ordering::Acquire);
    if head.is_null() {
        return;
    }
    let p = fw.platform;
    if p.panicking() {
        return;
    }
    // Predicate cache: this thread already saw the probe's only predicate
    // false and has not stored a thread-local variable since.
    let cached = probe.predcache.load(Ordering::Acquire);
    if cached != 0 && p.thread_predcache() == cached {
        return;
    }
    let cookie = p.interrupts_disable();
    let cpu = p.cpu_id();
    let now = p.monotonic_ns();
    let mut thread: Option<ThreadIdentity> = None;
    let mut e = head;
    // SAFETY: ECBs on a probe chain stay valid until unlinked and synced;
    // we are in probe context (interrupts disabled) throughout the walk.
    while let Some(ecb) = unsafe { e.as_ref() } {
        if let Some(err) = run_ecb(fw, probe, ecb, cpu, now, &args, arg5, &mut thread) {
            let error_id = fw.probe_error.load(Ordering::Relaxed);
            fire(
                error_id,
                [
                    err.state as u64,
                    u64::from(err.epid),
                    err.ndx,
                    err.offset,
                    err.code,
                ],
                err.addr,
            );
        }
        e = ecb.next.load(Ordering::Acquire);
    }
    p.interrupts_restore(cookie);
}

/// The framework's side of the VM hooks for one ECB firing.
struct Hooks<'a> {
    probe: &'a Probe,
    state: &'a ConsumerState,
    run: &'a RunState,
    arg5: u64,
    is_error_probe: bool,
}

impl ExecHooks for Hooks<'_> {
    fn probe_arg(&mut self, index: u64) -> Option<u64> {
        if self.is_error_probe && index == 5 {
            return Some(self.arg5);
        }
        let argno = i32::try_from(index).ok()?;
        let aframes = self.probe.aframes.saturating_add(2);
        self.probe
            .provider()
            .ops
            .getargval(self.probe.id, self.probe.parg, argno, aframes)
    }

    fn speculation(&mut self) -> u64 {
        match spec::speculation(&self.run.specs) {
            NewSpec::Id(i) => i,
            NewSpec::Busy => {
                self.state.specdrops_busy.fetch_add(1, Ordering::Relaxed);
                0
            }
            NewSpec::Unavail => {
                self.state.specdrops_unavail.fetch_add(1, Ordering::Relaxed);
                0
            }
        }
    }
}

fn fault_code(f: &Fault) -> u64 {
    f.code as u64
}

/// Copies a by-reference result (`size` bytes, strings up to their NUL and
/// zero-filled) from `addr` into `out`.
fn copy_by_ref(
    ctx: &mut ExecContext<'_>,
    difo: &Difo,
    addr: u64,
    out: &mut [u8],
    is_string: bool,
) -> Result<(), Fault> {
    if addr == 0 {
        return Err(Fault {
            code: crate::dif::FaultCode::BadAddr,
            addr,
            offset: u32::MAX,
        });
    }
    if !is_string {
        return read_memory(ctx, difo.strtab(), addr, out);
    }
    // Strings: copy in page-bounded pieces until the NUL, zero-fill the rest.
    out.fill(0);
    let mut done = 0usize;
    while done < out.len() {
        let at = addr.wrapping_add(done as u64);
        let to_page = 4096usize.wrapping_sub((at & 4095) as usize);
        let piece = out.len().saturating_sub(done).min(64).min(to_page);
        let Some(dst) = out.get_mut(done..done.saturating_add(piece)) else {
            break;
        };
        read_memory(ctx, difo.strtab(), at, dst).or_else(|f| {
            // The piece may run off the end of an owned region: retry bytewise.
            for (i, b) in dst.iter_mut().enumerate() {
                let mut one = [0u8; 1];
                read_memory(ctx, difo.strtab(), at.wrapping_add(i as u64), &mut one)
                    .map_err(|_| f)?;
                *b = one[0];
                if one[0] == 0 {
                    break;
                }
            }
            Ok::<(), Fault>(())
        })?;
        if let Some(nul) = dst.iter().position(|&c| c == 0) {
            if let Some(rest) = out.get_mut(done.saturating_add(nul)..) {
                rest.fill(0);
            }
            return Ok(());
        }
        done = done.saturating_add(piece);
    }
    Ok(())
}

/// Stores an action's value at its record offset.
#[allow(clippy::too_many_arguments)]
fn store(
    platform: &dyn crate::platform::Platform,
    aframes: u32,
    ctx: Option<&mut ExecContext<'_>>,
    a: &Action,
    rec: &mut [u8],
    val: u64,
    pid: u64,
    limit: Option<u64>,
) -> Result<(), Fault> {
    let off = a.rec.offset as usize;
    let size = a.rec.size as usize;
    if size == 0 {
        return Ok(());
    }
    let Some(end) = off.checked_add(size) else {
        return Ok(());
    };
    let Some(dst) = rec.get_mut(off..end) else {
        return Ok(());
    };
    match a.kind {
        DTRACEACT_USYM | DTRACEACT_UMOD | DTRACEACT_UADDR => {
            put_u64(dst, 0, pid);
            put_u64(dst, 8, val);
        }
        DTRACEACT_STACK => {
            dst.fill(0);
            let mut pcs = [0u64; 64];
            let n = platform.kernel_stack(&mut pcs, aframes);
            for (i, pc) in pcs.iter().take(n).enumerate() {
                put_u64(dst, i.saturating_mul(8), *pc);
            }
        }
        DTRACEACT_USTACK | DTRACEACT_JSTACK => {
            dst.fill(0);
            put_u64(dst, 0, pid);
            let nframes = (a.rec.arg & 0xffff_ffff) as usize;
            let mut pcs = [0u64; 64];
            let want = pcs.len().min(nframes);
            let n = platform.user_stack(pcs.get_mut(..want).unwrap_or(&mut []));
            for (i, pc) in pcs.iter().take(n).enumerate() {
                put_u64(dst, i.saturating_add(1).saturating_mul(8), *pc);
            }
        }
        _ => {
            let Some(difo) = a.difo.as_deref() else {
                dst.fill(0);
                return Ok(());
            };
            let rt = difo.rtype();
            if rt.is_by_ref() || rt.kind == DIF_TYPE_STRING {
                let Some(ctx) = ctx else {
                    dst.fill(0);
                    return Ok(());
                };
                // tracemem(addr, size, dynsize) copies only dynsize bytes.
                let n = match limit {
                    Some(l) if a.kind == DTRACEACT_TRACEMEM && l != 0 && l < dst.len() as u64 => {
                        l as usize
                    }
                    _ => dst.len(),
                };
                let Some((head, tail)) = dst.split_at_mut_checked(n) else {
                    return Ok(());
                };
                tail.fill(0);
                return copy_by_ref(ctx, difo, val, head, rt.kind == DIF_TYPE_STRING);
            }
            match size {
                1 => {
                    put_bytes(dst, 0, &[val as u8]);
                }
                2 => {
                    put_u16(dst, 0, val as u16);
                }
                4 => {
                    put_u32(dst, 0, val as u32);
                }
                8 => {
                    put_u64(dst, 0, val);
                }
                _ => dst.fill(0),
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_ecb(
    fw: &Framework,
    probe: &Probe,
    ecb: &Ecb,
    cpu: usize,
    now: u64,
    args: &[u64; 5],
    arg5: u64,
    thread: &mut Option<ThreadIdentity>,
) -> Option<EcbError> {
    // SAFETY: the state outlives its linked ECBs (teardown unlinks + syncs first).
    let state = unsafe { &*ecb.state };
    if ecb.dtrace_probe && args[0] != ecb.state as u64 {
        return None;
    }
    let activity = state.activity();
    let is_begin = probe.id == fw.probe_begin.load(Ordering::Relaxed);
    let is_end = probe.id == fw.probe_end.load(Ordering::Relaxed);
    // ERROR reports a fault of this same state (filtered on arg0 above), so
    // it runs whenever the faulting BEGIN or END clause could run: a fault
    // in BEGIN (WARMUP) or END (COOLDOWN) must still reach the consumer.
    let is_error = probe.id == fw.probe_error.load(Ordering::Relaxed);
    let ok = activity == ACTIVITY_ACTIVE
        || (activity == ACTIVITY_WARMUP && (is_begin || is_error))
        || (activity == ACTIVITY_COOLDOWN && (is_end || is_error));
    if !ok {
        return None;
    }
    let alive = state.alive.load(Ordering::Relaxed);
    if now.saturating_sub(alive) > DEADMAN_TIMEOUT_NS {
        let exempt = state.opt(DTRACEOPT_DESTRUCTIVE) != DTRACEOPT_UNSET
            && fw.platform.destructive_allowed();
        if !exempt {
            state.activity.store(ACTIVITY_KILLED, Ordering::Release);
            return None;
        }
    }
    let run = state.run()?;
    let buf = run.bufs.get(cpu)?;
    if buf.size() == 0 {
        return None;
    }
    let cooldown = activity == ACTIVITY_COOLDOWN;
    let reserve = if cooldown {
        0
    } else {
        state.reserve.load(Ordering::Relaxed)
    };
    let record_size = |epid: u32| run.record_size(epid);
    let needed = ecb.needed as usize;
    // SAFETY: probe context on `cpu` (interrupts disabled by `fire`).
    let r = unsafe {
        buf.reserve(
            needed,
            ecb.alignment as usize,
            reserve,
            cooldown,
            &record_size,
        )
    }?;
    // SAFETY: as above; `r` was just reserved.
    let (rec, scratch) = unsafe { buf.record_and_scratch(r, needed) }?;
    if ecb.size != 0 {
        put_u32(rec, 0, ecb.epid);
        put_u32(rec, 4, (now >> 32) as u32);
        put_u32(rec, 8, now as u32);
    }
    let is_error_probe = probe.id == fw.probe_error.load(Ordering::Relaxed);
    let mut hooks = Hooks {
        probe,
        state,
        run,
        arg5,
        is_error_probe,
    };
    // SAFETY: probe context on `cpu`.
    let locals = unsafe { run.locals_mut(cpu) }?;
    // The VM context is built only for ECBs that run real DIF (see
    // `Ecb::needs_vm`); trivial DIFOs are evaluated inline below.
    let mut ctx = if ecb.needs_vm {
        let tid = *thread.get_or_insert_with(|| fw.platform.current_thread());
        // SAFETY: probe context; see `RunState::globals_mut` for the sharing model.
        let globals = unsafe { run.globals_mut() };
        locals.begin_firing();
        let mut c = ExecContext::new(
            fw.platform,
            globals,
            locals,
            &run.dynvars,
            scratch,
            &mut hooks,
        );
        let prov = probe.provider();
        c.probe = ProbeInfo {
            epid: ecb.epid,
            id: probe.id,
            args: *args,
            provider: prov.name.as_bytes(),
            module: probe.module.as_bytes(),
            function: probe.function.as_bytes(),
            name: probe.name.as_bytes(),
        };
        c.timestamp = now;
        c.cpu = cpu as u32;
        c.thread = tid;
        c.strsize = run.strsize;
        Some(c)
    } else {
        None
    };
    let fault = |ndx: usize, f: &Fault| {
        buf.count_error();
        if is_error_probe {
            state.dblerrors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(EcbError {
            state: ecb.state,
            epid: ecb.epid,
            ndx: ndx as u64,
            offset: u64::from(f.offset),
            code: fault_code(f),
            addr: f.addr,
        })
    };
    if let (Some(pred), Some(c)) = (ecb.predicate.as_deref(), ctx.as_mut()) {
        match execute(pred, c) {
            Ok(0) => {
                if ecb.pred_cacheid != 0 && !c.thread_local_stored {
                    fw.platform.set_thread_predcache(ecb.pred_cacheid);
                }
                return None;
            }
            Ok(_) => {}
            Err(f) => return fault(0, &f),
        }
    }
    let mut target: &CpuBuffer = buf;
    let mut target_r = r;
    let mut spec_rec: Option<&mut [u8]> = None;
    let mut committed = false;
    let mut last_val: u64 = 0;
    let mut tracememsize: Option<u64> = None;
    let mut tuple_cursor: Option<usize> = None;
    for (i, a) in ecb.actions.iter().enumerate() {
        let ndx = i.saturating_add(1);
        if a.intuple && a.agg.is_none() {
            // Zero only the gaps between tuple records (each record is
            // fully written below), so keys compare byte-for-byte.
            let from = tuple_cursor.unwrap_or((a.tuple_base as usize).saturating_add(4));
            if let Some(gap) = rec.get_mut(from..a.rec.offset as usize) {
                gap.fill(0);
            }
            tuple_cursor = Some((a.rec.offset as usize).saturating_add(a.rec.size as usize));
        }
        let val = match (a.fast, a.difo.as_deref(), ctx.as_mut()) {
            (FastDifo::Const(v), _, _) => v,
            (FastDifo::Arg(i), _, _) => args.get(i).copied().unwrap_or(0),
            (FastDifo::No, Some(d), Some(c)) => match execute(d, c) {
                Ok(v) => v,
                Err(f) => return fault(ndx, &f),
            },
            _ => 0,
        };
        if let Some(g) = a.agg {
            let Some(aggbuf) = run.aggbufs.get(cpu) else {
                continue;
            };
            let key_start = (g.base as usize).saturating_add(4);
            let key_end = a.rec.offset as usize;
            if let Some(gap) = rec.get_mut(tuple_cursor.take().unwrap_or(key_start)..key_end) {
                gap.fill(0);
            }
            let key = rec.get(key_start..key_end).unwrap_or(&[]);
            let spec = AggSpec {
                kind: a.kind,
                id: g.id,
                initial: g.initial,
                key_len: key_end.saturating_sub(key_start),
                value_off: 0,
                value_len: a.rec.size as usize,
            };
            let arg = if g.hasarg { last_val } else { 1 };
            // SAFETY: probe context on `cpu`.
            unsafe { aggbuf.aggregate(&spec, key, val, arg) };
            last_val = val;
            continue;
        }
        match a.kind {
            DTRACEACT_SPECULATE => {
                // SAFETY: probe context on `cpu`.
                let sbuf = match unsafe { spec::buffer_for(&run.specs, cpu, val) } {
                    Ok(b) => b,
                    Err(true) => {
                        return fault(
                            ndx,
                            &Fault {
                                code: crate::dif::FaultCode::IllOp,
                                addr: 0,
                                offset: u32::MAX,
                            },
                        );
                    }
                    Err(false) => return None,
                };
                // SAFETY: probe context on `cpu` owns this speculation buffer.
                let sr = unsafe {
                    sbuf.reserve(needed, ecb.alignment as usize, 0, false, &record_size)
                }?;
                // SAFETY: as above; `sr` was just reserved.
                let srec = unsafe { sbuf.record_mut(sr, needed) }?;
                put_u32(srec, 0, ecb.epid);
                put_u32(srec, 4, u32::MAX);
                put_u32(srec, 8, u32::MAX);
                target = sbuf;
                target_r = sr;
                spec_rec = Some(srec);
            }
            DTRACEACT_COMMIT => {
                if ecb.size != 0 {
                    // SAFETY: probe context on `cpu`; `target_r` is our reservation.
                    unsafe { target.commit(target_r, ecb.size as usize) };
                }
                committed = true;
                // SAFETY: probe context on `cpu`.
                let res =
                    unsafe { spec::commit(&run.specs, cpu, val, buf, now, reserve, &record_size) };
                if res.is_err() {
                    return fault(
                        ndx,
                        &Fault {
                            code: crate::dif::FaultCode::IllOp,
                            addr: 0,
                            offset: u32::MAX,
                        },
                    );
                }
            }
            DTRACEACT_DISCARD => {
                // SAFETY: probe context on `cpu`.
                if unsafe { spec::discard(&run.specs, cpu, val) }.is_err() {
                    return fault(
                        ndx,
                        &Fault {
                            code: crate::dif::FaultCode::IllOp,
                            addr: 0,
                            offset: u32::MAX,
                        },
                    );
                }
            }
            DTRACEACT_TRACEMEM_DYNSIZE => {
                tracememsize = Some(val);
                let dst: &mut [u8] = match spec_rec.as_deref_mut() {
                    Some(s) => s,
                    None => &mut *rec,
                };
                let pc = probe.aframes.max(0) as u32;
                if let Err(f) = store(fw.platform, pc, ctx.as_mut(), a, dst, val, 0, None) {
                    return fault(ndx, &f);
                }
            }
            DTRACEACT_RAISE => fw.platform.action_raise(val as i32),
            DTRACEACT_STOP => fw.platform.action_stop(),
            DTRACEACT_BREAKPOINT => fw.platform.action_breakpoint(),
            DTRACEACT_PANIC => fw.platform.action_panic(&probe.name),
            DTRACEACT_CHILL => {
                // Spin for `val` ns, at most 500 ms per CPU per second
                // (more is an illegal operation), as FreeBSD does.
                // SAFETY: probe context on `cpu`.
                if let Some(acct) = unsafe { run.chill_mut(cpu) } {
                    if now.saturating_sub(acct.0) > CHILL_INTERVAL_NS {
                        *acct = (now, 0);
                    }
                    match acct.1.checked_add(val) {
                        Some(total) if total <= CHILL_MAX_NS => {
                            while fw.platform.monotonic_ns().saturating_sub(now) < val {
                                core::hint::spin_loop();
                            }
                            acct.1 = total;
                        }
                        _ => {
                            let f = Fault {
                                code: crate::dif::FaultCode::IllOp,
                                addr: 0,
                                offset: u32::MAX,
                            };
                            return fault(ndx, &f);
                        }
                    }
                }
            }
            _ => {
                let dst: &mut [u8] = match spec_rec.as_deref_mut() {
                    Some(s) => s,
                    None => &mut *rec,
                };
                let pid = if matches!(
                    a.kind,
                    DTRACEACT_USYM
                        | DTRACEACT_UMOD
                        | DTRACEACT_UADDR
                        | DTRACEACT_USTACK
                        | DTRACEACT_JSTACK
                ) {
                    thread
                        .get_or_insert_with(|| fw.platform.current_thread())
                        .pid as u64
                } else {
                    0
                };
                if let Err(f) = store(
                    fw.platform,
                    probe.aframes.max(0) as u32,
                    ctx.as_mut(),
                    a,
                    dst,
                    val,
                    pid,
                    tracememsize,
                ) {
                    return fault(ndx, &f);
                }
                // exit(): after its record is stored, ACTIVE (or WARMUP, for
                // BEGIN) moves to DRAINING; losing the race means another CPU
                // already did, and this record is abandoned.
                if a.kind == DTRACEACT_EXIT {
                    let cur = state.activity();
                    if cur != ACTIVITY_COOLDOWN {
                        let from = if cur == ACTIVITY_WARMUP {
                            ACTIVITY_WARMUP
                        } else {
                            ACTIVITY_ACTIVE
                        };
                        if state
                            .activity
                            .compare_exchange(
                                from,
                                ACTIVITY_DRAINING,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_err()
                        {
                            return None;
                        }
                    }
                }
            }
        }
        last_val = val;
    }
    if ctx.as_ref().is_some_and(|c| c.thread_local_stored) {
        fw.platform.set_thread_predcache(0);
    }
    if !committed && ecb.size != 0 {
        // SAFETY: probe context on `cpu`; `target_r` is our reservation.
        unsafe { target.commit(target_r, ecb.size as usize) };
    }
    None
}
