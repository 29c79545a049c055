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
use crate::platform::{Errno, ThreadIdentity, TimerId};
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

/// Buffer sizes GO allocates, after FreeBSD's `dtrace_state_go` checks.
/// A size of 0 means "no buffer of this kind".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoSizes {
    pub bufsize: i64,
    pub aggsize: i64,
    pub specsize: i64,
}

/// What [`go_buffer_sizes`] needs to know about the enabling.
#[derive(Debug, Clone, Copy)]
pub struct GoNeeds {
    /// Largest record any ECB needs (`dts_needed`); 0 without ECBs.
    pub needed: usize,
    /// Whether some ECB has an aggregating action.
    pub aggregates: bool,
    /// Whether some ECB has a speculate() action (`dts_speculates`).
    pub speculates: bool,
}

/// Default principal and aggregation buffer size when the consumer did not
/// set one. FreeBSD's kernel refuses an unset size with ENOSPC because its
/// libdtrace always sends libdtrace's default (4 MiB); rdtrace's consumer
/// leaves unset options out of the DOF, so the kernel supplies that default.
pub const DEFAULT_BUFSIZE: i64 = 4 * 1024 * 1024;

/// The sizing rules of `dtrace_state_go` before any allocation:
/// - with aggregations, the principal buffer doubles as their scratch space
///   and is raised to `needed`;
/// - without aggregations the aggregation size becomes 0, and without a
///   speculate() action the speculation size becomes 0;
/// - ENOSPC ("Enabling exceeds size of buffer") when a buffer that is needed
///   was explicitly set below 8 bytes (an explicit 0 aggsize included).
///
/// The record-size-versus-buffer check is *not* made here: FreeBSD drops
/// records that do not fit at probe time. Sizes are not yet rounded down to
/// 8 bytes (see [`check_buffer_size`]).
pub fn go_buffer_sizes(opt: impl Fn(usize) -> i64, needs: GoNeeds) -> Result<GoSizes, Errno> {
    let mut bufsize = opt(DTRACEOPT_BUFSIZE);
    if bufsize == DTRACEOPT_UNSET {
        bufsize = DEFAULT_BUFSIZE;
    }
    let mut aggsize = opt(DTRACEOPT_AGGSIZE);
    if !needs.aggregates {
        aggsize = 0;
    } else {
        if aggsize == DTRACEOPT_UNSET {
            aggsize = DEFAULT_BUFSIZE;
        }
        if aggsize != 0 && bufsize < needs.needed as i64 {
            bufsize = needs.needed as i64;
        }
    }
    let specsize = if needs.speculates {
        opt(DTRACEOPT_SPECSIZE)
    } else {
        0
    };
    if (needs.needed != 0 && bufsize < BUFFER_MIN)
        || (needs.speculates && specsize < BUFFER_MIN)
        || (needs.aggregates && aggsize < BUFFER_MIN)
    {
        return Err(Errno::ENOSPC);
    }
    if bufsize < BUFFER_MIN {
        // Only possible without ECBs: nothing to allocate.
        bufsize = 0;
    }
    Ok(GoSizes {
        bufsize,
        aggsize,
        specsize,
    })
}

/// `dtrace_state_buffer`'s per-attempt check: the size rounded down to 8
/// bytes, or E2BIG when it cannot hold the END reserve (fill policy; libdtrace
/// says "END enablings exceed size of principal buffer"), or ENOMEM when it
/// fell below 8 bytes (halving found nothing allocatable).
pub fn check_buffer_size(size: i64, reserve: usize) -> Result<i64, Errno> {
    if size < BUFFER_MIN {
        return Err(Errno::ENOMEM);
    }
    let size = size & !7;
    if (size as u64) < reserve as u64 {
        return Err(Errno::E2BIG);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(set: &[(usize, i64)]) -> impl Fn(usize) -> i64 + '_ {
        move |i| {
            set.iter()
                .find(|(k, _)| *k == i)
                .map_or(DTRACEOPT_UNSET, |&(_, v)| v)
        }
    }

    const PLAIN: GoNeeds = GoNeeds {
        needed: 16,
        aggregates: false,
        speculates: false,
    };

    #[test]
    fn unset_sizes_get_the_default_and_unused_kinds_are_zero() {
        let s = go_buffer_sizes(opts(&[(DTRACEOPT_SPECSIZE, 4096)]), PLAIN).unwrap();
        assert_eq!(
            s,
            GoSizes {
                bufsize: DEFAULT_BUFSIZE,
                aggsize: 0,
                specsize: 0
            }
        );
    }

    #[test]
    fn aggregations_raise_bufsize_to_needed_unless_aggsize_is_zero() {
        let needs = GoNeeds {
            needed: 300,
            aggregates: true,
            ..PLAIN
        };
        let s = go_buffer_sizes(opts(&[(DTRACEOPT_BUFSIZE, 64)]), needs).unwrap();
        assert_eq!((s.bufsize, s.aggsize), (300, DEFAULT_BUFSIZE));
        assert_eq!(
            go_buffer_sizes(
                opts(&[(DTRACEOPT_BUFSIZE, 64), (DTRACEOPT_AGGSIZE, 0)]),
                needs
            ),
            Err(Errno::ENOSPC)
        );
    }

    #[test]
    fn enospc_only_for_needed_buffers_below_eight() {
        let o = [(DTRACEOPT_BUFSIZE, 7)];
        assert_eq!(go_buffer_sizes(opts(&o), PLAIN), Err(Errno::ENOSPC));
        let none = GoNeeds { needed: 0, ..PLAIN };
        assert_eq!(go_buffer_sizes(opts(&o), none).map(|s| s.bufsize), Ok(0));
        let spec = GoNeeds {
            speculates: true,
            ..PLAIN
        };
        let o = [(DTRACEOPT_SPECSIZE, 7)];
        assert_eq!(go_buffer_sizes(opts(&o), spec), Err(Errno::ENOSPC));
        assert!(go_buffer_sizes(opts(&o), PLAIN).is_ok());
    }

    #[test]
    fn buffer_size_rounds_down_and_checks_the_reserve() {
        assert_eq!(check_buffer_size(59, 0), Ok(56));
        assert_eq!(check_buffer_size(8, 0), Ok(8));
        assert_eq!(check_buffer_size(7, 0), Err(Errno::ENOMEM));
        assert_eq!(check_buffer_size(79, 73), Err(Errno::E2BIG));
        assert_eq!(check_buffer_size(80, 73), Ok(80));
    }
}
