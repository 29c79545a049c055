//! Consumer states (`dtrace_state_t`): one per open of `/dev/dtrace/dtrace`,
//! with the activity machine INACTIVE → WARMUP → ACTIVE → DRAINING →
//! COOLDOWN → STOPPED (and KILLED by the deadman), the option array, the EPID
//! and aggregation tables, formats, retained enablings and the last DOF error.
//!
//! Probe context reads: `activity`, `options` (atomics), `run` (published at
//! GO, freed only at teardown after a sync) and the counters. Everything else
//! is under `Framework::lock` + `inner`.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::abi::*;
use crate::dof::EcbDesc;
use crate::ecb::Ecb;
use crate::platform::{ThreadIdentity, TimerId};
use crate::run::RunState;

/// What the state keeps under its own lock (taken after `Framework::lock`).
pub struct StateInner {
    /// ECBs by EPID − 1 (null once destroyed).
    pub ecbs: Vec<*mut Ecb>,
    /// Aggregations by aggregation id − 1: (EPID, index of the aggregating
    /// action in that ECB).
    pub aggs: Vec<(u32, usize)>,
    /// Format strings by format id − 1 (NUL-terminated).
    pub formats: Vec<Box<[u8]>>,
    /// Retained enablings (re-matched by ENABLE with a NULL DOF), each with
    /// the probe generation it was last matched at.
    pub retained: Vec<(EcbDesc, u64)>,
    /// Why the last DOF was rejected (empty if it was not).
    pub last_error: String,
    /// The cleaner and deadman callouts while running.
    pub timers: Vec<TimerId>,
}

/// One consumer.
pub struct ConsumerState {
    pub activity: AtomicU32,
    pub opener: ThreadIdentity,
    pub options: [AtomicI64; DTRACEOPT_MAX],
    pub inner: spin::Mutex<StateInner>,
    /// Buffers, variables and speculations; null until GO.
    pub run: AtomicPtr<RunState>,
    /// Last time the deadman saw the consumer alive (ns, monotonic).
    pub alive: AtomicU64,
    /// Last STATUS ioctl (ns, monotonic).
    pub laststatus: AtomicU64,
    pub dblerrors: AtomicU64,
    /// Errors moved out of the per-CPU buffers at each switch (`dts_errors`).
    pub errors: AtomicU64,
    pub specdrops_busy: AtomicU64,
    pub specdrops_unavail: AtomicU64,
    pub stkstroverflows: AtomicU64,
    /// Bytes kept free for END under the fill policy (0 after STOP).
    pub reserve: AtomicUsize,
    /// Whether an enabled action is destructive.
    pub destructive: AtomicU32,
    /// Highest record size any ECB needs (`dts_needed`).
    pub needed: AtomicUsize,
}

// SAFETY: the raw pointers inside are only dereferenced under the locking
// rules in the module header; the rest is atomics.
unsafe impl Send for ConsumerState {}
// SAFETY: as above.
unsafe impl Sync for ConsumerState {}

impl ConsumerState {
    /// A fresh INACTIVE state with FreeBSD's option defaults.
    pub fn new(opener: ThreadIdentity) -> Box<ConsumerState> {
        let options: [AtomicI64; DTRACEOPT_MAX] =
            core::array::from_fn(|_| AtomicI64::new(DTRACEOPT_UNSET));
        let set = |i: usize, v: i64| {
            if let Some(o) = options.get(i) {
                o.store(v, Ordering::Relaxed);
            }
        };
        set(DTRACEOPT_NSPEC, DEFAULT_NSPEC);
        set(DTRACEOPT_SPECSIZE, DEFAULT_SPECSIZE);
        set(DTRACEOPT_CPU, -1);
        set(DTRACEOPT_STRSIZE, DEFAULT_STRSIZE);
        set(DTRACEOPT_STACKFRAMES, 20);
        set(DTRACEOPT_USTACKFRAMES, 20);
        set(DTRACEOPT_CLEANRATE, CLEANRATE_DEFAULT_NS);
        set(DTRACEOPT_AGGRATE, 1_000_000_000);
        set(DTRACEOPT_SWITCHRATE, 1_000_000_000);
        set(DTRACEOPT_STATUSRATE, 1_000_000_000);
        set(DTRACEOPT_JSTACKFRAMES, 50);
        set(DTRACEOPT_JSTACKSTRSIZE, 512);
        Box::new(ConsumerState {
            activity: AtomicU32::new(ACTIVITY_INACTIVE),
            opener,
            options,
            inner: spin::Mutex::new(StateInner {
                ecbs: Vec::new(),
                aggs: Vec::new(),
                formats: Vec::new(),
                retained: Vec::new(),
                last_error: String::new(),
                timers: Vec::new(),
            }),
            run: AtomicPtr::new(core::ptr::null_mut()),
            alive: AtomicU64::new(0),
            laststatus: AtomicU64::new(0),
            dblerrors: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            specdrops_busy: AtomicU64::new(0),
            specdrops_unavail: AtomicU64::new(0),
            stkstroverflows: AtomicU64::new(0),
            reserve: AtomicUsize::new(0),
            destructive: AtomicU32::new(0),
            needed: AtomicUsize::new(0),
        })
    }

    /// Option value `i` (UNSET if out of range). *Probe context.*
    #[inline]
    pub fn opt(&self, i: usize) -> i64 {
        self.options
            .get(i)
            .map_or(DTRACEOPT_UNSET, |o| o.load(Ordering::Relaxed))
    }

    /// Current activity. *Probe context.*
    #[inline]
    pub fn activity(&self) -> u32 {
        self.activity.load(Ordering::Acquire)
    }

    /// The run state once GO succeeded. *Probe context.*
    #[inline]
    pub fn run(&self) -> Option<&RunState> {
        // SAFETY: published at GO with Release; freed only at teardown after
        // every ECB is unlinked and all CPUs synced.
        unsafe { self.run.load(Ordering::Acquire).as_ref() }
    }

    /// Records why a DOF was rejected (readable via `last_dof_error`).
    pub fn set_error(&self, inner: &mut StateInner, msg: String) {
        inner.last_error = msg;
    }
}
