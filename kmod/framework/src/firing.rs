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
use crate::bytes::{put_u32, put_u64};
use crate::dif::{execute, load_string, read_memory, Difo, ExecContext, ExecHooks, Fault};
use crate::ecb::{put_scalar, Action, Ecb, FastDifo};
use crate::platform::ThreadIdentity;
use crate::registry::{self, Framework, Probe};
use crate::run::RunState;
use crate::spec::{self, NewSpec};
use crate::stack;
use crate::state::ConsumerState;

/// Fires probe `id` with arguments `a0..a4` (`dtrace_probe`). Always
/// inlined (debug builds too), so no frame of its own stands between the
/// probe site and `fire` in stack() (see `stack.rs`).
#[inline(always)]
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
/// Never inlined: its frame separates the framework's frames from the
/// probe site's for stack() (see `stack.rs`, the entry mark).
#[inline(never)]
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
    // Frames at or below this local are the framework's (stack.rs).
    let entry = 0u8;
    let outer_mark = fw.entry_marks.set(cpu, &entry as *const u8 as u64);
    let now = p.monotonic_ns();
    let mut thread: Option<ThreadIdentity> = None;
    let mut e = head;
    // SAFETY: ECBs on a probe chain stay valid until unlinked and synced;
    // we are in probe context (interrupts disabled) throughout the walk.
    while let Some(ecb) = unsafe { e.as_ref() } {
        let err = match admit(fw, probe, ecb, cpu, now, &args) {
            None => None,
            Some(a) if ecb.agg_only => {
                aggregate_only(a.run, ecb, cpu, &args);
                None
            }
            Some(a) => run_ecb(fw, probe, ecb, cpu, now, &args, arg5, &mut thread, a),
        };
        if let Some(err) = err {
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
    fw.entry_marks.restore(cpu, outer_mark);
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

    fn stack_depth(&mut self) -> u64 {
        let aframes = self.probe.aframes.max(0) as u32;
        registry::get().map_or(0, |fw| stack::kernel_depth(fw.platform, aframes))
    }

    fn caller(&mut self) -> u64 {
        let aframes = self.probe.aframes.max(0) as u32;
        registry::get().map_or(0, |fw| stack::kernel_caller(fw.platform, aframes))
    }

    fn user_stack_depth(&mut self) -> u64 {
        registry::get().map_or(0, |fw| stack::user_depth(fw.platform))
    }

    fn user_caller(&mut self) -> u64 {
        registry::get().map_or(0, |fw| stack::user_caller(fw.platform))
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

/// Zeroes a gap between records. Gaps are usually 0 or 4 bytes: those
/// are done without a `memset` call.
#[inline]
fn zero(gap: &mut [u8]) {
    match gap.len() {
        0 => {}
        4 => {
            put_u32(gap, 0, 0);
        }
        _ => gap.fill(0),
    }
}

fn fault_code(f: &Fault) -> u64 {
    f.code as u64
}

/// The common case of a string result: it lies in memory the VM owns (a
/// built-in or subroutine result in scratch, or a constant in the DIFO's
/// string table), so it is copied straight from that slice: up to its NUL
/// (zero-filling the rest) or `out.len()` bytes. Returns false, having
/// written nothing, when `addr` is not there or the owned region ends
/// before either: the general path then decides (and faults as it does).
fn copy_owned_string(ctx: &ExecContext<'_>, difo: &Difo, addr: u64, out: &mut [u8]) -> bool {
    fn from_addr(addr: u64, base: u64, bytes: &[u8]) -> Option<&[u8]> {
        let off = addr.checked_sub(base)?;
        bytes.get(usize::try_from(off).ok()?..)
    }
    let strtab = difo.strtab();
    let Some(src) = from_addr(addr, ctx.scratch.base(), ctx.scratch.allocated())
        .or_else(|| from_addr(addr, strtab.as_ptr() as u64, strtab))
    else {
        return false;
    };
    let avail = src.len().min(out.len());
    let Some(head) = src.get(..avail) else {
        return false;
    };
    let len = match head.iter().position(|&c| c == 0) {
        Some(nul) => nul,
        None if avail == out.len() => avail,
        None => return false,
    };
    let (Some(dst), Some(from)) = (out.get_mut(..len), src.get(..len)) else {
        return false;
    };
    crate::bytes::copy_prefix(dst, from);
    if let Some(rest) = out.get_mut(len..) {
        rest.fill(0);
    }
    true
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
    if copy_owned_string(ctx, difo, addr, out) {
        return Ok(());
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
            // The piece may run off the end of an owned region (a string
            // built in scratch ends at the scratch allocation): read just
            // the string, which stops at its NUL, then the piece's last
            // byte if the string is longer than the piece.
            let len = load_string(difo, ctx, at, dst).map_err(|_| f)?;
            let last = dst.len().saturating_sub(1);
            if len == last {
                let mut one = [0u8; 1];
                read_memory(ctx, difo.strtab(), at.wrapping_add(last as u64), &mut one)
                    .map_err(|_| f)?;
                if let Some(b) = dst.get_mut(last) {
                    *b = one[0];
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
            put_scalar(dst, val);
        }
    }
    Ok(())
}

/// The whole work of an [`Ecb::agg_only`] ECB once its (never committed)
/// reservation succeeded: every key and its hash were built at ECB
/// creation, every value is a constant or a probe argument.
#[inline]
fn aggregate_only(run: &RunState, ecb: &Ecb, cpu: usize, args: &[u64; 5]) {
    let Some(aggbuf) = run.aggbufs.get(cpu) else {
        return;
    };
    for step in ecb.agg_plan.iter() {
        let val = match step.value {
            FastDifo::Const(v) => v,
            FastDifo::Arg(i) => args.get(i).copied().unwrap_or(0),
            FastDifo::No => 0,
        };
        // SAFETY: probe context on `cpu` (the caller's contract).
        unsafe { aggbuf.aggregate_hashed(&step.spec, &step.key, step.hash, val, 1) };
    }
}

/// An ECB that passed the admission checks, with its reservation.
struct Admitted<'a> {
    state: &'a ConsumerState,
    run: &'a RunState,
    buf: &'a CpuBuffer,
    r: crate::buffer::Reservation,
    /// The END reserve the fill policy keeps (0 in COOLDOWN).
    reserve: usize,
}

/// Everything every ECB goes through before its actions: the per-consumer
/// filter of dtrace-provider probes, the activity check, the deadman, and
/// the buffer reservation (whose failure is a counted drop). `None` = the
/// ECB does nothing this firing.
#[inline(always)]
fn admit<'a>(
    fw: &Framework,
    probe: &Probe,
    ecb: &'a Ecb,
    cpu: usize,
    now: u64,
    args: &[u64; 5],
) -> Option<Admitted<'a>> {
    // SAFETY: the state outlives its linked ECBs (teardown unlinks + syncs first).
    let state = unsafe { &*ecb.state };
    if ecb.dtrace_probe && args[0] != ecb.state as u64 {
        return None;
    }
    let activity = state.activity();
    if activity != ACTIVITY_ACTIVE {
        let is_error_probe = probe.id == fw.probe_error.load(Ordering::Relaxed);
        let is_begin = probe.id == fw.probe_begin.load(Ordering::Relaxed);
        let is_end = probe.id == fw.probe_end.load(Ordering::Relaxed);
        // ERROR reports a fault of this same state (filtered on arg0 above),
        // so it runs whenever the faulting BEGIN or END clause could run: a
        // fault in BEGIN (WARMUP) or END (COOLDOWN) must still reach the
        // consumer.
        let ok = (activity == ACTIVITY_WARMUP && (is_begin || is_error_probe))
            || (activity == ACTIVITY_COOLDOWN && (is_end || is_error_probe));
        if !ok {
            return None;
        }
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
    // SAFETY: probe context on `cpu` (interrupts disabled by `fire`).
    let r = unsafe {
        buf.reserve(
            ecb.needed as usize,
            ecb.alignment as usize,
            reserve,
            cooldown,
            &record_size,
        )
    }?;
    Some(Admitted {
        state,
        run,
        buf,
        r,
        reserve,
    })
}

/// One admitted ECB's record, predicate and actions (the general path).
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
    admitted: Admitted<'_>,
) -> Option<EcbError> {
    let Admitted {
        state,
        run,
        buf,
        r,
        reserve,
    } = admitted;
    let is_error_probe = probe.id == fw.probe_error.load(Ordering::Relaxed);
    let record_size = |epid: u32| run.record_size(epid);
    let needed = ecb.needed as usize;
    // SAFETY: as above; `r` was just reserved.
    let (rec, scratch) = unsafe { buf.record_and_scratch(r, needed) }?;
    if ecb.size != 0 {
        put_u32(rec, 0, ecb.epid);
        put_u32(rec, 4, (now >> 32) as u32);
        put_u32(rec, 8, now as u32);
    }
    let mut hooks = Hooks {
        probe,
        state,
        run,
        arg5,
        is_error_probe,
    };
    // The VM context is built only for ECBs that run real DIF (see
    // `Ecb::needs_vm`); trivial DIFOs are evaluated inline below.
    let mut ctx = if ecb.needs_vm {
        // SAFETY: probe context on `cpu`.
        let locals = unsafe { run.locals_mut(cpu) }?;
        // SAFETY: probe context; see `RunState::globals_mut` for the sharing model.
        let globals = unsafe { run.globals_mut() };
        locals.begin_firing();
        Some(ExecContext::new(
            fw.platform,
            globals,
            locals,
            &run.dynvars,
            scratch,
            &mut hooks,
        ))
    } else {
        None
    };
    // The probe facts are written into the context where it lies: building
    // them aside and moving them in made the CPU reload just-written
    // fields at a different width (a store-forwarding stall per firing).
    if let Some(c) = ctx.as_mut() {
        let prov = probe.provider();
        c.probe.epid = ecb.epid;
        c.probe.id = probe.id;
        c.probe.args = *args;
        c.probe.provider = prov.name.as_bytes();
        c.probe.module = probe.module.as_bytes();
        c.probe.function = probe.function.as_bytes();
        c.probe.name = probe.name.as_bytes();
        c.timestamp = now;
        c.cpu = cpu as u32;
        c.thread = fw.platform.current_thread();
        c.strsize = run.strsize;
    }
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
        if a.in_const_key {
            // Its aggregation's key was built at ECB creation (constant).
            if let FastDifo::Const(v) = a.fast {
                last_val = v;
            }
            continue;
        }
        if a.intuple && a.agg.is_none() {
            // Zero only the gaps between tuple records (each record is
            // fully written below), so keys compare byte-for-byte.
            let from = tuple_cursor.unwrap_or((a.tuple_base as usize).saturating_add(4));
            if let Some(gap) = rec.get_mut(from..a.rec.offset as usize) {
                zero(gap);
            }
            tuple_cursor = Some((a.rec.offset as usize).saturating_add(a.rec.size as usize));
        }
        let val = match (a.fast, a.difo.as_deref(), ctx.as_mut()) {
            (FastDifo::Const(v), _, _) => v,
            (FastDifo::Arg(i), _, _) => args.get(i).copied().unwrap_or(0),
            (FastDifo::No, Some(d), Some(c)) => match execute(d, c) {
                // A dynamic-variable drop abandons the record and the
                // remaining actions (FreeBSD's CPU_DTRACE_DROP).
                Ok(_) if c.dyn_dropped => {
                    if c.thread_local_stored {
                        fw.platform.set_thread_predcache(0);
                    }
                    return None;
                }
                Ok(v) => v,
                Err(f) => return fault(ndx, &f),
            },
            _ => 0,
        };
        if let Some(g) = a.agg {
            let Some(aggbuf) = run.aggbufs.get(cpu) else {
                continue;
            };
            let arg = if g.hasarg { last_val } else { 1 };
            last_val = val;
            if let Some(ck) = &a.const_key {
                let spec = AggSpec {
                    kind: a.kind,
                    id: g.id,
                    initial: g.initial,
                    key_len: ck.bytes.len(),
                    value_off: 0,
                    value_len: a.rec.size as usize,
                };
                // SAFETY: probe context on `cpu`.
                unsafe { aggbuf.aggregate_hashed(&spec, &ck.bytes, ck.hash, val, arg) };
                continue;
            }
            let key_start = (g.base as usize).saturating_add(4);
            let key_end = a.rec.offset as usize;
            if let Some(gap) = rec.get_mut(tuple_cursor.take().unwrap_or(key_start)..key_end) {
                zero(gap);
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
            // SAFETY: probe context on `cpu`.
            unsafe { aggbuf.aggregate(&spec, key, val, arg) };
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
                if a.scalar {
                    // Plain by-value result: what `store` would do, inline.
                    let off = a.rec.offset as usize;
                    if let Some(d) = dst.get_mut(off..off.saturating_add(a.rec.size as usize)) {
                        put_scalar(d, val);
                    }
                    if a.kind != DTRACEACT_EXIT {
                        last_val = val;
                        continue;
                    }
                }
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
                if a.scalar {
                    // Stored above (an exit() value); fall through to the
                    // state change below.
                } else if let Err(f) = store(
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

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )]

    use super::*;
    use crate::dif::{DynVarArena, NoHooks, StaticVars, TypeDesc};
    use crate::platform::{AccessFault, AllocFlags, Errno, Platform};

    /// Just enough platform for an execution context; no foreign memory.
    struct Bare;

    // SAFETY: probe-context methods neither allocate nor panic; there is no
    // foreign memory, so every fault-checked load reports a bad address.
    unsafe impl Platform for Bare {
        fn alloc_zeroed(&self, size: usize, align: usize, _: AllocFlags) -> *mut u8 {
            match core::alloc::Layout::from_size_align(size.max(1), align.max(1)) {
                // SAFETY: non-zero size.
                Ok(l) => unsafe { alloc::alloc::alloc_zeroed(l) },
                Err(_) => core::ptr::null_mut(),
            }
        }
        unsafe fn free(&self, ptr: *mut u8, size: usize, align: usize) {
            if let Ok(l) = core::alloc::Layout::from_size_align(size.max(1), align.max(1)) {
                // SAFETY: allocated by `alloc_zeroed` with this layout.
                unsafe { alloc::alloc::dealloc(ptr, l) };
            }
        }
        fn cpu_id(&self) -> usize {
            0
        }
        fn cpu_count(&self) -> usize {
            1
        }
        fn monotonic_ns(&self) -> u64 {
            1
        }
        fn wall_ns(&self) -> u64 {
            1
        }
        fn interrupts_disable(&self) -> usize {
            0
        }
        fn interrupts_restore(&self, _: usize) {}
        fn fault_checked_load(&self, _: u64, _: &mut [u8]) -> Result<(), AccessFault> {
            Err(AccessFault::BadAddress)
        }
        fn fault_checked_user_load(&self, _: u64, _: &mut [u8]) -> Result<(), AccessFault> {
            Err(AccessFault::BadAddress)
        }
        fn copyin(&self, _: u64, _: &mut [u8]) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
        fn copyout(&self, _: &[u8], _: u64) -> Result<(), Errno> {
            Err(Errno::EFAULT)
        }
        fn xcall(&self, _: Option<usize>, func: fn(usize), arg: usize) {
            func(arg);
        }
        fn current_thread(&self) -> ThreadIdentity {
            ThreadIdentity::default()
        }
        fn current_execname(&self, buf: &mut [u8]) {
            buf.fill(0);
        }
    }

    impl crate::platform::PlatformTimers for Bare {
        fn timer_create(
            &self,
            _: Option<usize>,
            _: u64,
            _: fn(usize),
            _: usize,
        ) -> Option<crate::platform::TimerId> {
            None
        }
        fn timer_destroy(&self, _: crate::platform::TimerId) {}
    }

    static BARE: Bare = Bare;

    #[test]
    fn owned_strings_are_copied_directly_and_exactly() {
        let difo = Difo::new(
            alloc::vec![(35 << 24) | 1],
            alloc::vec![],
            b"hello world\0".to_vec(),
            alloc::vec![],
            TypeDesc::ctf(0, 8),
        )
        .unwrap();
        let (globals, locals) = (StaticVars::empty(), StaticVars::empty());
        let dynvars = DynVarArena::empty(&BARE).unwrap();
        let mut scratch = [0xaau8; 64];
        let mut hooks = NoHooks;
        let mut ctx =
            ExecContext::new(&BARE, &globals, &locals, &dynvars, &mut scratch, &mut hooks);
        // "abc" in scratch, allocated exactly (no room for anything after).
        let off = ctx.scratch.alloc(4).unwrap();
        ctx.scratch.allocated_mut()[off..off + 3].copy_from_slice(b"abc");
        let abc = ctx.scratch.base() + off as u64;
        let mut out = [0xffu8; 8];
        assert!(copy_owned_string(&ctx, &difo, abc, &mut out));
        assert_eq!(&out, b"abc\0\0\0\0\0");
        copy_by_ref(&mut ctx, &difo, abc, &mut out, true).unwrap();
        assert_eq!(&out, b"abc\0\0\0\0\0");
        // A string-table constant longer than the record: exactly
        // `out.len()` bytes, no NUL (as the piecewise copy does).
        let hello = difo.strtab().as_ptr() as u64;
        let mut short = [0u8; 5];
        assert!(copy_owned_string(&ctx, &difo, hello, &mut short));
        assert_eq!(&short, b"hello");
        let mut long = [0xffu8; 16];
        copy_by_ref(&mut ctx, &difo, hello + 6, &mut long, true).unwrap();
        assert_eq!(&long, b"world\0\0\0\0\0\0\0\0\0\0\0");
        // The scratch allocation ends before any NUL and before the record
        // does: not handled here; the general path faults on the bytes
        // beyond the allocation.
        ctx.scratch.allocated_mut()[off + 3] = b'd';
        let mut out = [0u8; 8];
        assert!(!copy_owned_string(&ctx, &difo, abc, &mut out));
        assert!(copy_by_ref(&mut ctx, &difo, abc, &mut out, true).is_err());
        // Memory the VM does not own is not this function's business.
        assert!(!copy_owned_string(&ctx, &difo, 0x1000, &mut out));
        assert!(copy_by_ref(&mut ctx, &difo, 0x1000, &mut out, true).is_err());
    }
}
