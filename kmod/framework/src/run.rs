//! Everything a consumer state needs while tracing, built at GO and freed at
//! teardown: principal, aggregation and speculation buffers per CPU, the
//! variable storage the DIF VM uses (globals, per-CPU clause-locals, the
//! dynamic-variable arena), and the EPID → record-size table the ring and
//! speculation code walk records with.
//!
//! Probe context: reads only; per-CPU parts are touched only by their CPU.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use crate::abi::*;
use crate::agg::AggBuffer;
use crate::buffer::{CpuBuffer, Policy};
use crate::dif::{Difo, DynVarArena, GlobalVars, LocalVars, VarScope};
use crate::ecb::Ecb;
use crate::platform::{Errno, Platform};
use crate::spec::Speculation;
use crate::state::ConsumerState;

/// The running part of a consumer state.
pub struct RunState {
    pub policy: Policy,
    pub bufs: Vec<CpuBuffer>,
    pub aggbufs: Vec<AggBuffer>,
    pub specs: Vec<Speculation>,
    /// Global variables: shared by all CPUs, racy like FreeBSD's (see
    /// `globals_mut`).
    globals: UnsafeCell<GlobalVars>,
    /// Clause-local variables, one set per CPU (each on its own cache lines).
    locals: Vec<PerCpu<LocalVars>>,
    pub dynvars: DynVarArena,
    /// Per-CPU `chill()` accounting: (interval mark, ns chilled in it).
    chill: Vec<PerCpu<(u64, u64)>>,
    /// Record size by EPID − 1 (0 for destroyed ECBs).
    pub epid_sizes: Vec<u32>,
    pub strsize: u64,
}

/// A per-CPU slot, aligned so neighbouring CPUs never share a cache line.
#[repr(align(128))]
pub struct PerCpu<T>(UnsafeCell<T>);

// SAFETY: per-CPU parts are only touched by their CPU (see module header);
// globals follow the documented racy-store model.
unsafe impl Sync for RunState {}
// SAFETY: owns its memory.
unsafe impl Send for RunState {}

impl RunState {
    /// Record size of `epid` (ring walking, commit). *Probe context.*
    #[inline]
    pub fn record_size(&self, epid: u32) -> usize {
        self.epid_sizes
            .get((epid as usize).wrapping_sub(1))
            .map_or(0, |&s| s as usize)
    }

    /// The globals for one DIF execution.
    ///
    /// # Safety
    /// Probe context. Several CPUs may hold this at once: D global variables
    /// are unsynchronised in DTrace (last writer wins, torn by-ref values are
    /// possible), and the VM stores only plain bytes, so the race can yield
    /// odd values but never an invalid Rust value or an out-of-bounds access.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn globals_mut(&self) -> &mut GlobalVars {
        // SAFETY: see above.
        unsafe { &mut *self.globals.get() }
    }

    /// This CPU's chill accounting.
    ///
    /// # Safety
    /// Probe context on `cpu`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn chill_mut(&self, cpu: usize) -> Option<&mut (u64, u64)> {
        // SAFETY: only `cpu` touches its own slot.
        self.chill.get(cpu).map(|c| unsafe { &mut *c.0.get() })
    }

    /// This CPU's clause-locals.
    ///
    /// # Safety
    /// Probe context on `cpu`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn locals_mut(&self, cpu: usize) -> Option<&mut LocalVars> {
        // SAFETY: only `cpu` touches its own slot.
        self.locals.get(cpu).map(|c| unsafe { &mut *c.0.get() })
    }
}

/// Largest total (all CPUs) the framework will try for one kind of buffer;
/// larger requests halve (auto resize) or fail with ENOMEM (manual), as an
/// allocation that large would on FreeBSD.
const MAX_BUFFER_TOTAL: i64 = 1 << 30;

/// `dtrace_state_buffer`'s loop: try `size` rounded down to 8 bytes; on
/// ENOMEM halve it (auto resize) or fail (manual); E2BIG as soon as a size
/// cannot hold the END reserve; ENOMEM below 8 bytes.
fn alloc_halving<T>(
    size: i64,
    ncpu: usize,
    manual: bool,
    reserve: usize,
    mut f: impl FnMut(usize) -> Result<T, Errno>,
) -> Result<(T, i64), Errno> {
    let limit = MAX_BUFFER_TOTAL / (ncpu.max(1) as i64);
    let mut size = size;
    loop {
        let sz = crate::state::check_buffer_size(size, reserve)?;
        let got = if sz > limit {
            Err(Errno::ENOMEM)
        } else {
            f(sz as usize)
        };
        match got {
            Ok(t) => return Ok((t, sz)),
            Err(e) if e != Errno::ENOMEM || manual => return Err(e),
            Err(_) => size = sz / 2,
        }
    }
}

/// Builds the run state at GO (`dtrace_state_buffers` and friends). Options
/// actually used are written back (halved sizes, clamped rates).
pub fn build(
    platform: &'static dyn Platform,
    state: &ConsumerState,
    ecbs: &[*mut Ecb],
    naggs: usize,
    ncpu: usize,
) -> Result<RunState, Errno> {
    let opt = |i| state.opt(i);
    let set = |i: usize, v: i64| {
        if let Some(o) = state.options.get(i) {
            o.store(v, core::sync::atomic::Ordering::Relaxed);
        }
    };
    let manual = opt(DTRACEOPT_BUFRESIZE) == DTRACEOPT_BUFRESIZE_MANUAL;
    let policy = match opt(DTRACEOPT_BUFPOLICY) {
        DTRACEOPT_BUFPOLICY_RING => Policy::Ring,
        DTRACEOPT_BUFPOLICY_FILL => Policy::Fill,
        _ => Policy::Switch,
    };
    let cpu_opt = opt(DTRACEOPT_CPU);
    let only = |c: usize| cpu_opt < 0 || cpu_opt as usize == c;
    // Sizes and refusals as FreeBSD's dtrace_state_go/dtrace_state_buffer
    // (state.rs; fwcore2, see /work/coord/fwcore2-notes.md).
    let has_kind = |f: &dyn Fn(u16) -> bool| {
        ecbs.iter().any(|&e| {
            // SAFETY: ECB pointers in the state's table are live (null = destroyed).
            unsafe { e.as_ref() }.is_some_and(|e| e.actions.iter().any(|a| f(a.kind)))
        })
    };
    let sizes = crate::state::go_buffer_sizes(
        opt,
        crate::state::GoNeeds {
            needed: state.needed.load(core::sync::atomic::Ordering::Relaxed),
            aggregates: naggs != 0,
            speculates: has_kind(&|k| k == DTRACEACT_SPECULATE),
        },
    )?;
    let reserve = state.reserve.load(core::sync::atomic::Ordering::Relaxed);
    let principal = |sz: usize| {
        let mut v = Vec::new();
        for c in 0..ncpu {
            v.push(CpuBuffer::new(if only(c) { sz } else { 0 }, policy, true)?);
        }
        Ok(v)
    };
    // Size 0 (no ECB needs the buffer): FreeBSD allocates nothing.
    let (bufs, bufsize) = if sizes.bufsize == 0 {
        (principal(0)?, 0)
    } else {
        alloc_halving(sizes.bufsize, ncpu, manual, reserve, principal)?
    };
    set(DTRACEOPT_BUFSIZE, bufsize);
    let aggbufs = if sizes.aggsize == 0 {
        set(DTRACEOPT_AGGSIZE, 0);
        Vec::new()
    } else {
        let (v, sz) = alloc_halving(sizes.aggsize, ncpu, manual, reserve, |sz| {
            let mut v = Vec::new();
            for c in 0..ncpu {
                v.push(AggBuffer::new(if only(c) { sz } else { 0 })?);
            }
            Ok(v)
        })?;
        set(DTRACEOPT_AGGSIZE, sz);
        v
    };
    let nspec = opt(DTRACEOPT_NSPEC).max(0) as usize;
    // FreeBSD always creates `nspec` speculations (speculation() hands out
    // ids even with no speculate()); their buffers are sized 0 unless some
    // ECB speculates (fwcore, see /work/coord/fwcore-notes.md).
    let specsize = if sizes.specsize != 0 && nspec != 0 {
        crate::state::check_buffer_size(sizes.specsize, reserve)? as usize
    } else {
        0
    };
    let specs = crate::spec::allocate(nspec, ncpu, specsize, MAX_BUFFER_TOTAL as u128)?;
    // Variable storage sized from every DIFO of the state.
    let mut difos: Vec<Arc<Difo>> = Vec::new();
    for &e in ecbs {
        // SAFETY: as above.
        if let Some(e) = unsafe { e.as_ref() } {
            difos.extend(e.predicate.iter().cloned());
            difos.extend(e.actions.iter().filter_map(|a| a.difo.clone()));
        }
    }
    let strsize = opt(DTRACEOPT_STRSIZE).max(1) as u64;
    let globals = GlobalVars::new(VarScope::Global, difos.iter().map(|d| &**d));
    let mut locals = Vec::new();
    for _ in 0..ncpu {
        locals.push(PerCpu(UnsafeCell::new(LocalVars::new(
            VarScope::Local,
            difos.iter().map(|d| &**d),
        ))));
    }
    let chunk = difos
        .iter()
        .map(|d| d.dynvar_chunk_size(strsize))
        .max()
        .unwrap_or(0);
    let mut dynvarsize = opt(DTRACEOPT_DYNVARSIZE);
    if dynvarsize == DTRACEOPT_UNSET {
        dynvarsize = DEFAULT_DYNVARSIZE;
    }
    let dynvars = if chunk == 0 {
        DynVarArena::empty(platform).ok_or(Errno::ENOMEM)?
    } else {
        let mut size = dynvarsize.min(MAX_BUFFER_TOTAL);
        loop {
            if let Some(a) = DynVarArena::new(platform, size.max(0) as usize, chunk, ncpu) {
                set(DTRACEOPT_DYNVARSIZE, size);
                break a;
            }
            if manual || size < 2 * chunk as i64 {
                return Err(Errno::ENOMEM);
            }
            size /= 2;
        }
    };
    let epid_sizes = ecbs
        .iter()
        // SAFETY: as above.
        .map(|&e| unsafe { e.as_ref() }.map_or(0, |e| e.size))
        .collect();
    let chill = (0..ncpu)
        .map(|_| PerCpu(UnsafeCell::new((0u64, 0u64))))
        .collect();
    Ok(RunState {
        chill,
        policy,
        bufs,
        aggbufs,
        specs,
        globals: UnsafeCell::new(globals),
        locals,
        dynvars,
        epid_sizes,
        strsize,
    })
}
