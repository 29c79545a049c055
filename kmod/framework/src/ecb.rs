//! ECBs (enabling control blocks): creation from an ECB description for one
//! probe and one consumer, the action list with its record layout (exactly
//! what EPROBE/AGGDESC report: rechdr first, natural alignment, tuples at
//! offset 4 of an 8-byte block), aggregation creation, and linking into the
//! probe's chain (calling the provider's enable/disable).
//!
//! Everything the firing path can know in advance is computed here: the
//! shortcut for trivial DIFOs (`FastDifo`), plain scalar stores, the bytes
//! and hash of aggregation keys made only of constants (`ConstKey`), and,
//! for ECBs that only aggregate on such keys, a compact plan (`AggStep`).
//!
//! Probe context: reads the immutable `Ecb` fields and walks `next`;
//! `put_scalar` and `llquantize_bucket` run there.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::abi::*;
use crate::dif::Difo;
use crate::dof::{ActDesc, EcbDesc};
use crate::platform::Errno;
use crate::registry::{Framework, Probe};
use crate::state::{ConsumerState, StateInner};

/// An action's record description (`dtrace_recdesc_t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecDesc {
    pub action: u16,
    pub size: u32,
    pub offset: u32,
    pub alignment: u16,
    pub format: u16,
    pub arg: u64,
    pub uarg: u64,
}

impl RecDesc {
    /// The 32-byte ABI encoding.
    pub fn encode(&self, out: &mut [u8]) {
        use crate::bytes::{put_u16, put_u32, put_u64};
        put_u16(out, 0, self.action);
        put_u16(out, 2, 0);
        put_u32(out, 4, self.size);
        put_u32(out, 8, self.offset);
        put_u16(out, 12, self.alignment);
        put_u16(out, 14, self.format);
        put_u64(out, 16, self.arg);
        put_u64(out, 24, self.uarg);
    }
}

/// Aggregation facts kept on the aggregating action.
#[derive(Clone, Copy, Debug)]
pub struct AggInfo {
    pub id: u32,
    /// Index of the first in-tuple action.
    pub first: usize,
    /// Offset of the aggregation id word within the record (≡ 0 mod 8).
    pub base: u32,
    /// Whether the last tuple action is the aggregating function's argument.
    pub hasarg: bool,
    /// Initial value of the first value word.
    pub initial: u64,
}

/// One action of an ECB.
#[derive(Clone, Debug)]
pub struct Action {
    pub kind: u16,
    pub difo: Option<Arc<Difo>>,
    pub rec: RecDesc,
    pub intuple: bool,
    pub agg: Option<AggInfo>,
    /// A shortcut for trivial DIFOs (evaluated without the VM).
    pub fast: FastDifo,
    /// For in-tuple actions: the offset of their aggregation's id word.
    pub tuple_base: u32,
    /// For aggregating actions: the whole key, when every tuple member is
    /// a constant (`@ = count()`, `@["x"] = ...` with constant keys), built
    /// once here so firings skip writing and hashing it.
    pub const_key: Option<ConstKey>,
    /// For in-tuple actions: their aggregation has a [`ConstKey`], so
    /// nothing needs recording for them at firing time.
    pub in_const_key: bool,
    /// The result is a plain 1/2/4/8-byte value stored as is (a by-value
    /// DIFO on an action with no special record format), so the firing
    /// path can store it without the general `store`.
    pub scalar: bool,
}

/// A precomputed aggregation key: the bytes from the aggregation id word
/// + 4 up to the value, and their `agg::hash`.
#[derive(Clone, Debug)]
pub struct ConstKey {
    pub bytes: Box<[u8]>,
    pub hash: u64,
}

/// DIFOs simple enough to evaluate without building a VM context: a
/// constant (`setx; ret`, e.g. libdtrace's aggregation-variable tuple entry)
/// or one of the cached probe arguments (`ldgs argN; ret`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastDifo {
    /// Run the VM.
    No,
    Const(u64),
    Arg(usize),
}

/// Recognises a [`FastDifo`] (by-value results only).
pub fn fast_difo(d: &Difo) -> FastDifo {
    let rt = d.rtype();
    if rt.is_by_ref() || rt.kind == DIF_TYPE_STRING || rt.size != 8 {
        return FastDifo::No;
    }
    let (Some(&a), Some(&b), None) = (d.text().first(), d.text().get(1), d.text().get(2)) else {
        return FastDifo::No;
    };
    let (op, rd, imm) = (a >> 24, a & 0xff, (a >> 8) & 0xffff);
    if b != (35 << 24) | rd || rd == 0 {
        return FastDifo::No;
    }
    match op {
        // SETX
        37 => d
            .inttab()
            .get(imm as usize)
            .map_or(FastDifo::No, |&v| FastDifo::Const(v)),
        // LDGS arg0..arg4
        41 if (0x106..=0x10a).contains(&imm) => FastDifo::Arg((imm - 0x106) as usize),
        _ => FastDifo::No,
    }
}

/// An ECB. Immutable once linked (except `next`).
pub struct Ecb {
    pub next: AtomicPtr<Ecb>,
    pub state: *const ConsumerState,
    pub probe: *const Probe,
    pub probe_id: u32,
    pub epid: u32,
    pub predicate: Option<Arc<Difo>>,
    pub actions: Vec<Action>,
    /// Bytes committed per firing (0: nothing recorded).
    pub size: u32,
    /// Bytes reserved per firing (tuples need room beyond `size`).
    pub needed: u32,
    pub alignment: u32,
    pub uarg: u64,
    /// The probe belongs to the `dtrace` provider (BEGIN/END/ERROR).
    pub dtrace_probe: bool,
    /// Predicate-cache id (0 = the predicate is absent or not cacheable).
    pub pred_cacheid: u32,
    /// Whether firing needs a DIF VM context (a predicate, or an action whose
    /// DIFO is not a [`FastDifo`] shortcut, or a by-reference result).
    pub needs_vm: bool,
    /// Nothing but aggregations with constant keys and shortcut values
    /// (`@ = count()`, `@["k"] = sum(arg1)`), no predicate, nothing
    /// recorded: the firing path only reserves (for FreeBSD's drop
    /// accounting) and aggregates.
    pub agg_only: bool,
    /// For `agg_only` ECBs: their aggregations, compactly (what the fast
    /// path reads instead of the action list).
    pub agg_plan: Box<[AggStep]>,
}

/// One aggregation of an [`Ecb::agg_only`] ECB, with everything known at
/// creation precomputed: the spec, the constant key and its hash, and
/// where the aggregated value comes from (`FastDifo::No`: no expression,
/// value 0).
#[derive(Clone, Debug)]
pub struct AggStep {
    pub spec: crate::agg::AggSpec,
    pub key: Box<[u8]>,
    pub hash: u64,
    pub value: FastDifo,
}

// SAFETY: the raw pointers refer to the owning state and probe, which
// outlive the ECB (teardown unlinks and syncs before freeing either).
unsafe impl Send for Ecb {}
// SAFETY: as above; shared access is read-only except the atomic `next`.
unsafe impl Sync for Ecb {}

/// Adds a format string, returning its 1-based id (0 if the table is full,
/// as FreeBSD fails silently).
pub fn format_add(inner: &mut StateInner, f: &[u8]) -> u16 {
    let boxed: Box<[u8]> = f.into();
    if let Some(i) = inner.formats.iter().position(|x| x.is_empty()) {
        if let Some(slot) = inner.formats.get_mut(i) {
            *slot = boxed;
            return (i + 1) as u16;
        }
    }
    if inner.formats.len() >= u16::MAX as usize - 1 {
        return 0;
    }
    inner.formats.push(boxed);
    inner.formats.len() as u16
}

fn lquantize_parts(arg: u64) -> (u16, u16, i32) {
    ((arg >> 48) as u16, (arg >> 32) as u16, arg as u32 as i32)
}

/// `llquantize` bucket index for `value` (the log/linear layout of
/// abi-facts §2.6): bucket 0 below factor^low, then `nsteps`-wide linear
/// steps per order of magnitude, top bucket at or above factor^(high+1).
pub fn llquantize_bucket(factor: u16, low: u16, high: u16, nsteps: u16, value: i64) -> usize {
    let factor = i64::from(factor);
    let nsteps = i64::from(nsteps);
    let mut this: i64 = 1;
    for _ in 0..low {
        this = this.saturating_mul(factor);
    }
    if value < this {
        return 0;
    }
    let mut last = this;
    this = this.saturating_mul(factor);
    let mut base: i64 = 1;
    let mut value = value;
    let mut order = i64::from(low);
    while order <= i64::from(high) {
        let nbuckets = if this > nsteps { nsteps } else { this };
        let next = this.checked_mul(factor);
        if next.is_none() {
            // The next power overflows: FreeBSD clamps the value to the top
            // of this order unconditionally (`value = this - 1`), so every
            // value from `last` up lands in this order's top bucket. (FreeBSD
            // detects the overflow as a wrapped product; checked_mul is the
            // exact form of that test.)
            value = this.saturating_sub(1);
        }
        if value < this {
            let width = (this / nbuckets.max(1)).max(1);
            return (base + (value - last) / width).max(0) as usize;
        }
        base += nbuckets - nbuckets / factor.max(1);
        last = this;
        this = next.unwrap_or(i64::MAX);
        order += 1;
    }
    base.max(0) as usize
}

/// Value size and initial word for an aggregating action (EINVAL for bad
/// parameters), as `dtrace_ecb_aggregation_create` validates them.
fn agg_shape(kind: u16, arg: u64) -> Result<(u32, u64), Errno> {
    Ok(match kind {
        DTRACEAGG_COUNT | DTRACEAGG_SUM => (8, 0),
        DTRACEAGG_MIN => (8, i64::MAX as u64),
        DTRACEAGG_MAX => (8, i64::MIN as u64),
        DTRACEAGG_AVG => (16, 0),
        DTRACEAGG_STDDEV => (32, 0),
        DTRACEAGG_QUANTIZE => (127 * 8, 0),
        DTRACEAGG_LQUANTIZE => {
            let (step, levels, base) = lquantize_parts(arg);
            if step == 0 || levels == 0 {
                return Err(Errno::EINVAL);
            }
            let top = i64::from(base) + i64::from(levels) * i64::from(step);
            if top > i64::from(i32::MAX) + i64::from(u16::MAX) * i64::from(u16::MAX) {
                return Err(Errno::EINVAL);
            }
            ((u32::from(levels) + 3) * 8, arg)
        }
        DTRACEAGG_LLQUANTIZE => {
            let factor = (arg >> 48) as u16;
            let low = (arg >> 32) as u16;
            let high = (arg >> 16) as u16;
            let nsteps = arg as u16;
            if factor < 2 || low >= high || nsteps < factor {
                return Err(Errno::EINVAL);
            }
            let mut v = i64::from(factor);
            while v < i64::from(nsteps) {
                v = v.saturating_mul(i64::from(factor));
            }
            if v % i64::from(nsteps) != 0 || i64::from(nsteps) % i64::from(factor) != 0 {
                return Err(Errno::EINVAL);
            }
            let top = llquantize_bucket(factor, low, high, nsteps, i64::MAX);
            let size = (top as u64 + 2) * 8;
            if size > 64 * 1024 {
                return Err(Errno::EINVAL);
            }
            (size as u32, arg)
        }
        _ => return Err(Errno::EINVAL),
    })
}

fn natural_align(size: u32) -> u16 {
    let mut mask = 7u32;
    while size != 0 && mask > 0 {
        if size & mask == 0 {
            return (mask + 1) as u16;
        }
        mask >>= 1;
    }
    1
}

/// `dtrace_ecb_action_add`: appends one action, enforcing FreeBSD's rules.
fn action_add(
    state: &ConsumerState,
    inner: &mut StateInner,
    actions: &mut Vec<Action>,
    size_so_far: u32,
    d: &ActDesc,
) -> Result<(), Errno> {
    let dp = d.difo.as_ref();
    let mut arg = d.arg;
    let mut format = 0u16;
    let mut size: u32 = 0;
    let mut agg = None;
    if act_is_agg(d.kind) {
        if actions
            .iter()
            .any(|a| matches!(a.kind, DTRACEACT_COMMIT | DTRACEACT_SPECULATE))
        {
            return Err(Errno::EINVAL);
        }
        let (vsize, initial) = agg_shape(d.kind, d.arg)?;
        size = vsize;
        let mut ntuple = d.ntuple;
        if ntuple == 0 {
            return Err(Errno::EINVAL);
        }
        let mut first = None;
        for (i, a) in actions.iter().enumerate().rev() {
            if act_is_agg(a.kind) {
                break;
            }
            ntuple -= 1;
            if ntuple == 0 {
                first = Some(i);
                break;
            }
        }
        let first = first.ok_or(Errno::EINVAL)?;
        let hasarg = actions.last().is_some_and(|a| {
            a.kind == DTRACEACT_DIFEXPR && a.difo.as_ref().is_some_and(|p| p.rtype().size == 0)
        });
        let id = (inner.aggs.len() + 1) as u32;
        for a in actions.iter_mut().skip(first) {
            a.intuple = true;
        }
        if let Some(f) = actions.get_mut(first) {
            f.rec.alignment = f.rec.alignment.max(4);
        }
        agg = Some(AggInfo {
            id,
            first,
            base: 0,
            hasarg,
            initial,
        });
    } else {
        if act_is_destructive(d.kind)
            || (d.kind == DTRACEACT_DIFEXPR && dp.is_some_and(|p| p.is_destructive()))
        {
            state.destructive.store(1, Ordering::Relaxed);
        }
        let rtype = dp.map(|p| p.rtype());
        match d.kind {
            DTRACEACT_PRINTF
            | DTRACEACT_PRINTA
            | DTRACEACT_SYSTEM
            | DTRACEACT_FREOPEN
            | DTRACEACT_DIFEXPR
            | DTRACEACT_LIBACT
            | DTRACEACT_TRACEMEM
            | DTRACEACT_TRACEMEM_DYNSIZE => {
                if matches!(
                    d.kind,
                    DTRACEACT_PRINTF
                        | DTRACEACT_PRINTA
                        | DTRACEACT_SYSTEM
                        | DTRACEACT_FREOPEN
                        | DTRACEACT_DIFEXPR
                ) {
                    if let Some(f) = &d.format {
                        format = format_add(inner, f);
                    }
                }
                let rt = rtype.ok_or(Errno::EINVAL)?;
                size = rt.size;
                if size == 0 && rt.kind == DIF_TYPE_STRING {
                    if rt.flags & DIF_TF_BYREF == 0 {
                        return Err(Errno::EINVAL);
                    }
                    size =
                        u32::try_from(state.opt(DTRACEOPT_STRSIZE)).map_err(|_| Errno::EINVAL)?;
                }
            }
            DTRACEACT_STACK => {
                let mut nframes = arg;
                if nframes == 0 {
                    nframes = state.opt(DTRACEOPT_STACKFRAMES).max(1) as u64;
                    arg = nframes;
                }
                size = u32::try_from(nframes.saturating_mul(8)).map_err(|_| Errno::EINVAL)?;
            }
            DTRACEACT_JSTACK | DTRACEACT_USTACK => {
                let mut nframes = arg & 0xffff_ffff;
                let mut strsize = arg >> 32;
                if d.kind == DTRACEACT_JSTACK {
                    if strsize == 0 {
                        strsize = state.opt(DTRACEOPT_JSTACKSTRSIZE).max(0) as u64;
                    }
                    if nframes == 0 {
                        nframes = state.opt(DTRACEOPT_JSTACKFRAMES).max(1) as u64;
                    }
                } else if nframes == 0 {
                    nframes = state.opt(DTRACEOPT_USTACKFRAMES).max(1) as u64;
                }
                arg = (strsize << 32) | nframes;
                let s = (nframes + 1).saturating_mul(8).saturating_add(strsize);
                let s = (s + 7) & !7;
                size = u32::try_from(s).map_err(|_| Errno::EINVAL)?;
            }
            DTRACEACT_SYM | DTRACEACT_MOD => {
                let rt = rtype.ok_or(Errno::EINVAL)?;
                if rt.size != 8 || rt.flags & DIF_TF_BYREF != 0 {
                    return Err(Errno::EINVAL);
                }
                size = 8;
            }
            DTRACEACT_USYM | DTRACEACT_UMOD | DTRACEACT_UADDR => {
                let rt = rtype.ok_or(Errno::EINVAL)?;
                if rt.size != 8 || rt.flags & DIF_TF_BYREF != 0 {
                    return Err(Errno::EINVAL);
                }
                size = 16;
            }
            DTRACEACT_STOP | DTRACEACT_BREAKPOINT | DTRACEACT_PANIC => {}
            DTRACEACT_CHILL | DTRACEACT_DISCARD | DTRACEACT_RAISE => {
                dp.ok_or(Errno::EINVAL)?;
            }
            DTRACEACT_EXIT => {
                let rt = rtype.ok_or(Errno::EINVAL)?;
                if rt.size != 4 || rt.flags & DIF_TF_BYREF != 0 {
                    return Err(Errno::EINVAL);
                }
                size = 4;
            }
            DTRACEACT_SPECULATE => {
                if size_so_far > RECHDR_SIZE {
                    return Err(Errno::EINVAL);
                }
                dp.ok_or(Errno::EINVAL)?;
            }
            DTRACEACT_PRINTM => {
                size = rtype.ok_or(Errno::EINVAL)?.size;
            }
            DTRACEACT_COMMIT => {
                if actions.iter().any(|a| a.kind == DTRACEACT_COMMIT) {
                    return Err(Errno::EINVAL);
                }
                dp.ok_or(Errno::EINVAL)?;
            }
            _ => return Err(Errno::EINVAL),
        }
        if (size != 0 || d.kind == DTRACEACT_SPECULATE)
            && actions.iter().any(|a| a.kind == DTRACEACT_COMMIT)
        {
            return Err(Errno::EINVAL);
        }
    }
    actions.push(Action {
        kind: d.kind,
        difo: d.difo.clone(),
        rec: RecDesc {
            action: d.kind,
            size,
            offset: 0,
            alignment: natural_align(size),
            format,
            arg,
            uarg: d.uarg,
        },
        intuple: false,
        agg,
        fast: d.difo.as_deref().map_or(FastDifo::No, fast_difo),
        tuple_base: 0,
        const_key: None,
        in_const_key: false,
        scalar: agg.is_none()
            && matches!(size, 1 | 2 | 4 | 8)
            && !matches!(
                d.kind,
                DTRACEACT_USYM
                    | DTRACEACT_UMOD
                    | DTRACEACT_UADDR
                    | DTRACEACT_STACK
                    | DTRACEACT_USTACK
                    | DTRACEACT_JSTACK
                    | DTRACEACT_TRACEMEM
                    | DTRACEACT_TRACEMEM_DYNSIZE
            )
            && dp.is_some_and(|p| {
                let rt = p.rtype();
                !rt.is_by_ref() && rt.kind != DIF_TYPE_STRING
            }),
    });
    if let Some(a) = agg {
        inner.aggs.push((0, actions.len() - 1));
        let _ = a;
    }
    Ok(())
}

fn roundup(v: u32, a: u32) -> Option<u32> {
    let a = a.max(1);
    v.checked_add(a - 1).map(|x| x / a * a)
}

/// `dtrace_ecb_resize`: computes offsets, size, needed and alignment.
fn resize(actions: &mut [Action]) -> Result<(u32, u32, u32), Errno> {
    let mut size = RECHDR_SIZE;
    let mut needed = RECHDR_SIZE;
    let mut alignment: u32 = 4;
    let mut cur: Option<u32> = None;
    let mut aggbase: Option<u32> = None;
    for a in actions.iter_mut() {
        let al = u32::from(a.rec.alignment);
        alignment = alignment.max(al);
        if a.agg.is_some() {
            let (Some(c), Some(base)) = (cur, aggbase) else {
                return Err(Errno::EINVAL);
            };
            let off = roundup(c, al).ok_or(Errno::EINVAL)?;
            a.rec.offset = off;
            let end = off.checked_add(a.rec.size).ok_or(Errno::EINVAL)?;
            needed = needed.max(end);
            if let Some(g) = a.agg.as_mut() {
                g.base = base;
            }
            cur = None;
            aggbase = None;
        } else if a.intuple {
            let c = match cur {
                Some(c) => c,
                None => {
                    // First tuple record: offset 4 within an 8-byte block.
                    let mut c = size;
                    while c % 8 != 4 {
                        c += 1;
                    }
                    aggbase = Some(c - 4);
                    c
                }
            };
            let off = roundup(c, al).ok_or(Errno::EINVAL)?;
            a.rec.offset = off;
            a.tuple_base = aggbase.unwrap_or(0);
            cur = Some(off.checked_add(a.rec.size).ok_or(Errno::EINVAL)?);
        } else {
            size = roundup(size, al).ok_or(Errno::EINVAL)?;
            a.rec.offset = size;
            size = size.checked_add(a.rec.size).ok_or(Errno::EINVAL)?;
            needed = needed.max(size);
        }
    }
    if let Some(first) = actions.first() {
        let lone_speculate = first.kind == DTRACEACT_SPECULATE && actions.len() == 1;
        if !lone_speculate && size == RECHDR_SIZE {
            size = 0;
        }
    }
    let size = roundup(size, 4).ok_or(Errno::EINVAL)?;
    let needed = roundup(needed, 4).ok_or(Errno::EINVAL)?;
    Ok((size, needed, alignment))
}

/// Creates an ECB of `state` on `probe` from `desc` and links it (calling
/// the provider's enable for the probe's first ECB). Under `fw.lock`.
pub fn create(
    fw: &Framework,
    state: &ConsumerState,
    inner: &mut StateInner,
    probe: &Probe,
    desc: &EcbDesc,
) -> Result<(), Errno> {
    let epid = (inner.ecbs.len() + 1) as u32;
    let aggs_before = inner.aggs.len();
    let mut actions = Vec::new();
    let mut result = Ok(());
    for d in &desc.actions {
        let so_far = resize(&mut actions.clone())
            .map(|r| r.0)
            .unwrap_or(u32::MAX);
        if let Err(e) = action_add(state, inner, &mut actions, so_far, d) {
            result = Err(e);
            break;
        }
    }
    let layout = result.and_then(|_| resize(&mut actions));
    let (size, needed, alignment) = match layout {
        Ok(l) => l,
        Err(e) => {
            inner.aggs.truncate(aggs_before);
            inner.ecbs.push(ptr::null_mut());
            return Err(e);
        }
    };
    // Now that the EPID is known, point the aggregations at it.
    for a in &actions {
        if let Some(g) = a.agg {
            if let Some(slot) = inner.aggs.get_mut(g.id as usize - 1) {
                slot.0 = epid;
            }
        }
    }
    precompute_const_keys(&mut actions);
    let dtrace_probe = probe.provider as usize == fw.dtrace_provider.load(Ordering::Acquire);
    let needs_vm = desc.predicate.is_some()
        || actions
            .iter()
            .any(|a| a.difo.is_some() && a.fast == FastDifo::No);
    let agg_only = desc.predicate.is_none()
        && size == 0
        && actions.iter().all(|a| {
            a.in_const_key
                || (a.const_key.is_some() && (a.fast != FastDifo::No || a.difo.is_none()))
        });
    let agg_plan: Box<[AggStep]> = if agg_only {
        actions
            .iter()
            .filter_map(|a| {
                let (g, ck) = (a.agg?, a.const_key.as_ref()?);
                Some(AggStep {
                    spec: crate::agg::AggSpec {
                        kind: a.kind,
                        id: g.id,
                        initial: g.initial,
                        key_len: ck.bytes.len(),
                        value_off: 0,
                        value_len: a.rec.size as usize,
                    },
                    key: ck.bytes.clone(),
                    hash: ck.hash,
                    value: a.fast,
                })
            })
            .collect()
    } else {
        Box::new([])
    };
    let ecb = Box::into_raw(Box::new(Ecb {
        next: AtomicPtr::new(ptr::null_mut()),
        state,
        probe,
        probe_id: probe.id,
        epid,
        predicate: desc.predicate.clone(),
        actions,
        size,
        needed,
        alignment,
        uarg: desc.uarg,
        dtrace_probe,
        needs_vm,
        agg_only,
        agg_plan,
        pred_cacheid: desc.predicate.as_deref().map_or(0, predicate_cacheid),
    }));
    inner.ecbs.push(ecb);
    state.needed.fetch_max(needed as usize, Ordering::Relaxed);
    enable(probe, ecb);
    Ok(())
}

/// Writes `val` as a native-endian value of `dst.len()` (1, 2, 4 or 8)
/// bytes, truncating as a record store does; other sizes are zero-filled.
/// *Probe context.*
#[inline]
pub fn put_scalar(dst: &mut [u8], val: u64) {
    use crate::bytes::{put_bytes, put_u16, put_u32, put_u64};
    match dst.len() {
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

/// Fills in [`Action::const_key`] / [`Action::in_const_key`] for every
/// aggregation whose tuple members are all constants recorded by value
/// (and whose last member is not the function's argument). The key bytes
/// are exactly what the firing path would write: zero gaps, each member
/// at its record offset relative to the id word + 4.
fn precompute_const_keys(actions: &mut [Action]) {
    for j in 0..actions.len() {
        let Some(g) = actions.get(j).and_then(|a| a.agg) else {
            continue;
        };
        let Some(agg_off) = actions.get(j).map(|a| a.rec.offset as usize) else {
            continue;
        };
        let key_start = g.base as usize + 4;
        let Some(tuple) = actions.get(g.first..j) else {
            continue;
        };
        let constant = !g.hasarg
            && agg_off >= key_start
            && tuple.iter().all(|t| {
                t.kind == DTRACEACT_DIFEXPR
                    && t.scalar
                    && matches!(t.fast, FastDifo::Const(_))
                    && t.rec.offset as usize >= key_start
                    && (t.rec.offset + t.rec.size) as usize <= agg_off
            });
        if !constant {
            continue;
        }
        let mut bytes = alloc::vec![0u8; agg_off - key_start];
        for t in tuple {
            if let FastDifo::Const(v) = t.fast {
                let off = t.rec.offset as usize - key_start;
                if let Some(dst) = bytes.get_mut(off..off + t.rec.size as usize) {
                    put_scalar(dst, v);
                }
            }
        }
        let hash = crate::agg::hash(g.id, &bytes);
        if let Some(a) = actions.get_mut(j) {
            a.const_key = Some(ConstKey {
                bytes: bytes.into_boxed_slice(),
                hash,
            });
        }
        for t in actions.iter_mut().take(j).skip(g.first) {
            t.in_const_key = true;
        }
    }
}

/// A fresh predicate-cache id for a cacheable predicate: one that depends
/// only on the thread (its `self->` variables, curthread, pid, tid,
/// execname, zonename), so a false result stays false for that thread until
/// it stores a thread-local variable. 0 if not cacheable.
pub fn predicate_cacheid(d: &Difo) -> u32 {
    static NEXT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(1);
    let ok = d.text().iter().all(|&w| {
        let op = w >> 24;
        let var = (w >> 8) & 0xffff;
        match op {
            // register arithmetic, compares, branches, ret, nop, setx, sets, scmp
            1..=27 | 35 | 36 | 37 | 38 | 39 | 46 => true,
            // ldgs of thread-invariant built-ins
            41 => matches!(var, 0x100 | 0x116 | 0x117 | 0x118 | 0x119),
            // ldts (thread-local scalars)
            44 => true,
            _ => false,
        }
    });
    if ok {
        NEXT.fetch_add(1, Ordering::Relaxed).max(1)
    } else {
        0
    }
}

/// Appends `ecb` to the probe's chain (provider enable on the first).
fn enable(probe: &Probe, ecb: *mut Ecb) {
    let head = probe.ecbs.load(Ordering::Acquire);
    // SAFETY: `ecb` is live (just created by our caller).
    let cacheid = unsafe { &*ecb }.pred_cacheid;
    if head.is_null() {
        probe.predcache.store(cacheid, Ordering::Release);
        probe.ecbs.store(ecb, Ordering::Release);
        probe.necbs.fetch_add(1, Ordering::Relaxed);
        probe.provider().ops.enable(probe.id, probe.parg);
        return;
    }
    let mut last = head;
    // SAFETY: chain members are live ECBs; mutations happen under fw.lock.
    while let Some(next) = unsafe { (*last).next.load(Ordering::Acquire).as_mut() } {
        last = next;
    }
    // More than one ECB: the cache would skip the others too.
    probe.predcache.store(0, Ordering::Release);
    // SAFETY: `last` is a live chain member.
    unsafe { (*last).next.store(ecb, Ordering::Release) };
    probe.necbs.fetch_add(1, Ordering::Relaxed);
}

/// Unlinks `ecb` from its probe (provider disable when it was the last).
/// The caller syncs before freeing it. Under `fw.lock`.
pub(crate) fn disable(ecb: *mut Ecb) {
    // SAFETY: a live ECB whose probe is live (probes with ECBs are never removed).
    let e = unsafe { &*ecb };
    // SAFETY: as above.
    let probe = unsafe { &*e.probe };
    let next = e.next.load(Ordering::Acquire);
    let head = probe.ecbs.load(Ordering::Acquire);
    if head == ecb {
        probe.ecbs.store(next, Ordering::Release);
    } else {
        let mut cur = head;
        // SAFETY: chain members are live; we hold fw.lock.
        while let Some(c) = unsafe { cur.as_ref() } {
            let n = c.next.load(Ordering::Acquire);
            if n == ecb {
                c.next.store(next, Ordering::Release);
                break;
            }
            cur = n;
        }
    }
    if probe.necbs.fetch_sub(1, Ordering::Relaxed) == 1 {
        probe.predcache.store(0, Ordering::Release);
        probe.provider().ops.disable(probe.id, probe.parg);
    } else {
        let head = probe.ecbs.load(Ordering::Acquire);
        // SAFETY: chain members are live under fw.lock.
        let only = unsafe { head.as_ref() }.filter(|h| h.next.load(Ordering::Acquire).is_null());
        probe
            .predcache
            .store(only.map_or(0, |h| h.pred_cacheid), Ordering::Release);
    }
}

/// Records of the ECB that EPROBE reports (aggregating and in-tuple omitted).
pub fn eprobe_recs(e: &Ecb) -> impl Iterator<Item = &RecDesc> {
    e.actions
        .iter()
        .filter(|a| !act_is_agg(a.kind) && !a.intuple)
        .map(|a| &a.rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llquantize_buckets() {
        // factor 10, low 0, high 2, nsteps 10: bucket 0 is < 1.
        assert_eq!(llquantize_bucket(10, 0, 2, 10, 0), 0);
        assert_eq!(llquantize_bucket(10, 0, 2, 10, 1), 1);
        assert_eq!(llquantize_bucket(10, 0, 2, 10, 9), 9);
        assert_eq!(llquantize_bucket(10, 0, 2, 10, 10), 10);
        assert_eq!(llquantize_bucket(10, 0, 2, 10, 99), 18);
        assert!(llquantize_bucket(10, 0, 2, 10, i64::MAX) > 18);
    }

    fn difo(text: alloc::vec::Vec<u32>) -> Difo {
        Difo::from_parts(
            text,
            alloc::vec![0],
            alloc::vec::Vec::new(),
            &[],
            crate::dif::TypeDesc::ctf(0, 8),
        )
        .unwrap()
    }

    #[test]
    fn predicate_cacheability_and_fast_difos() {
        let ldgs = |v: u32| (41 << 24) | (v << 8) | 1;
        let ret1 = (35 << 24) | 1;
        // pid == 0 depends only on the thread: cacheable.
        let pid = difo(alloc::vec![
            ldgs(0x116),
            (37 << 24) | 2,
            (15 << 24) | (1 << 16) | (2 << 8),
            ret1
        ]);
        assert_ne!(predicate_cacheid(&pid), 0);
        // arg0 changes per firing: not cacheable.
        let arg0 = difo(alloc::vec![ldgs(0x106), ret1]);
        assert_eq!(predicate_cacheid(&arg0), 0);
        assert_eq!(fast_difo(&arg0), FastDifo::Arg(0));
        let konst = difo(alloc::vec![(37 << 24) | 1, ret1]);
        assert_eq!(fast_difo(&konst), FastDifo::Const(0));
        assert_eq!(fast_difo(&pid), FastDifo::No);
    }

    #[test]
    fn llquantize_clamps_like_freebsd_when_the_next_power_overflows() {
        // factor 10, low 0, high 18: the order [10^17, 10^18) is the last
        // whose next power (10^19) fits no i64. FreeBSD then clamps every
        // value of that order to 10^18 - 1: all of them share its top
        // bucket, as does everything larger.
        let top_of_order = llquantize_bucket(10, 0, 18, 10, 1_000_000_000_000_000_000 - 1);
        assert_eq!(
            llquantize_bucket(10, 0, 18, 10, 100_000_000_000_000_000),
            top_of_order
        );
        assert_eq!(
            llquantize_bucket(10, 0, 18, 10, 1_000_000_000_000_000_000),
            top_of_order
        );
        assert_eq!(llquantize_bucket(10, 0, 18, 10, i64::MAX), top_of_order);
        // The order below still buckets linearly.
        let a = llquantize_bucket(10, 0, 18, 10, 10_000_000_000_000_000);
        let b = llquantize_bucket(10, 0, 18, 10, 20_000_000_000_000_000);
        assert_eq!(b, a + 1);
        assert!(top_of_order > b);
        // Values below factor^low and negative values: bucket 0.
        assert_eq!(llquantize_bucket(10, 1, 3, 10, 9), 0);
        assert_eq!(llquantize_bucket(10, 0, 3, 10, i64::MIN), 0);
    }

    fn action(kind: u16, offset: u32, size: u32, fast: FastDifo) -> Action {
        Action {
            kind,
            difo: None,
            rec: RecDesc {
                action: kind,
                size,
                offset,
                ..RecDesc::default()
            },
            intuple: false,
            agg: None,
            fast,
            tuple_base: 0,
            const_key: None,
            in_const_key: false,
            scalar: kind == DTRACEACT_DIFEXPR,
        }
    }

    #[test]
    fn constant_keys_are_precomputed_exactly() {
        // @[7] = count(): the varid tuple member at 16, the count at 24,
        // the aggregation id word at 8 (key bytes 12..24).
        let mut tuple = action(DTRACEACT_DIFEXPR, 16, 8, FastDifo::Const(7));
        tuple.intuple = true;
        tuple.tuple_base = 8;
        let mut agg = action(DTRACEAGG_COUNT, 24, 8, FastDifo::No);
        agg.agg = Some(AggInfo {
            id: 3,
            first: 0,
            base: 8,
            hasarg: false,
            initial: 0,
        });
        let mut acts = alloc::vec![tuple.clone(), agg.clone()];
        precompute_const_keys(&mut acts);
        let mut want = alloc::vec![0u8; 12];
        want[4..12].copy_from_slice(&7u64.to_ne_bytes());
        let ck = acts[1].const_key.as_ref().unwrap();
        assert_eq!(&ck.bytes[..], &want[..]);
        assert_eq!(ck.hash, crate::agg::hash(3, &want));
        assert!(acts[0].in_const_key);
        // A member that is a probe argument makes the key per firing.
        let mut arg_tuple = tuple.clone();
        arg_tuple.fast = FastDifo::Arg(0);
        let mut acts = alloc::vec![tuple.clone(), arg_tuple, agg.clone()];
        acts[2].rec.offset = 32;
        acts[1].rec.offset = 24;
        precompute_const_keys(&mut acts);
        assert!(acts[2].const_key.is_none());
        assert!(!acts[0].in_const_key && !acts[1].in_const_key);
        // So does an aggregation whose last member is its argument.
        let mut acts = alloc::vec![tuple, agg];
        if let Some(g) = acts[1].agg.as_mut() {
            g.hasarg = true;
        }
        precompute_const_keys(&mut acts);
        assert!(acts[1].const_key.is_none());
    }

    #[test]
    fn natural_alignment() {
        assert_eq!(natural_align(8), 8);
        assert_eq!(natural_align(12), 4);
        assert_eq!(natural_align(2), 2);
        assert_eq!(natural_align(3), 1);
        assert_eq!(natural_align(0), 1);
    }
}
