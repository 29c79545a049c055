//! Property tests (the in-CI equivalent of the cargo-fuzz target in
//! `fuzz/`): arbitrary and mutated-valid DOF, and arbitrary ioctl
//! arguments, must never panic, must fail with a clean errno, and must not
//! leak (net heap bytes return to their baseline after close).
//!
//! Everything runs inside one #[test] so the process-wide allocation
//! counter sees no other test's activity.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::dof_builder::*;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rdtrace_framework::abi::*;
use rdtrace_hosted::Errno;

struct Counting;
static NET: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        NET.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        NET.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NET.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        NET.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const DOF_ERRNOS: &[Errno] = &[
    Errno::EINVAL,
    Errno::E2BIG,
    Errno::ENOMEM,
    Errno::ENOSPC,
    Errno::EBUSY,
    Errno::EACCES,
];

fn valid_dofs() -> Vec<Vec<u8>> {
    vec![
        dof(
            &[Clause::new(
                "dtrace:::BEGIN",
                vec![Act::trace(Dif::constant(1)), Act::exit(0)],
            )],
            &[(0, 4096)],
        ),
        dof(
            &[Clause::new(
                "dtrace:::END",
                Act::printf("%d %s\n", vec![Dif::var(0x106), Dif::string("x")]),
            )
            .when(Dif::arg0_equals(0))],
            &[(0, 8192), (DTRACEOPT_STRSIZE as u32, 32)],
        ),
        dof(
            &[Clause::new(
                "dtrace:::BEGIN",
                Act::aggregation(
                    DTRACEAGG_QUANTIZE,
                    1,
                    vec![Dif::var(0x106)],
                    Some(Dif::constant(3)),
                    0,
                ),
            )],
            &[(0, 4096), (3, 4096)],
        ),
    ]
}

static ACCEPTED: AtomicIsize = AtomicIsize::new(0);
static REJECTED: AtomicIsize = AtomicIsize::new(0);

/// Opens a consumer, enables `image`, maybe runs it, closes; checks the errno.
fn exercise(image: &[u8], run: bool) {
    let c = open();
    let r = enable(&c, image);
    let counter = if r.is_ok() { &ACCEPTED } else { &REJECTED };
    counter.fetch_add(1, Ordering::Relaxed);
    match r {
        Ok(_) => {
            if run && go(&c).is_ok() {
                let _ = stop(&c);
                let _ = snap_all(&c, 1 << 16);
            }
        }
        Err(e) => {
            assert!(DOF_ERRNOS.contains(&e), "unexpected errno {e:?}");
            if e == Errno::EINVAL {
                // A rejection explains itself unless the options were refused.
                let _ = c.last_dof_error();
            }
        }
    }
}

const CMDS: &[u32] = &[
    DTRACEIOC_PROVIDER,
    DTRACEIOC_PROBES,
    DTRACEIOC_BUFSNAP,
    DTRACEIOC_PROBEMATCH,
    DTRACEIOC_ENABLE,
    DTRACEIOC_AGGSNAP,
    DTRACEIOC_EPROBE,
    DTRACEIOC_PROBEARG,
    DTRACEIOC_CONF,
    DTRACEIOC_STATUS,
    DTRACEIOC_GO,
    DTRACEIOC_STOP,
    DTRACEIOC_AGGDESC,
    DTRACEIOC_FORMAT,
    DTRACEIOC_DOFGET,
    DTRACEIOC_REPLICATE,
    0xc0047803,
    0,
];

#[test]
fn arbitrary_inputs_never_panic_or_leak() {
    // Warm up (lazy statics, thread-locals, the kernel itself).
    for d in valid_dofs() {
        exercise(&d, true);
    }
    let baseline = NET.load(Ordering::SeqCst);
    // A fresh runner per property: a runner counts cases across `run` calls.
    let runner = || {
        TestRunner::new(Config {
            cases: 300,
            failure_persistence: None,
            ..Config::default()
        })
    };
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..600), |bytes| {
            exercise(&bytes, false);
            Ok(())
        })
        .unwrap();
    let valid = valid_dofs();
    ACCEPTED.store(0, Ordering::SeqCst);
    REJECTED.store(0, Ordering::SeqCst);
    runner()
        .run(
            &(
                0..valid.len(),
                proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
                any::<bool>(),
                any::<u16>(),
            ),
            |(which, flips, truncate, cut)| {
                let mut d = valid[which].clone();
                for (pos, val) in flips {
                    let n = d.len();
                    d[pos % n] = val;
                }
                if truncate {
                    let keep = (cut as usize) % d.len();
                    d.truncate(keep.max(64));
                }
                exercise(&d, true);
                Ok(())
            },
        )
        .unwrap();
    let (acc, rej) = (
        ACCEPTED.load(Ordering::SeqCst),
        REJECTED.load(Ordering::SeqCst),
    );
    assert!(
        acc > 0 && rej > 0,
        "mutations should hit both paths: {acc} accepted, {rej} rejected"
    );
    runner()
        .run(
            &(
                0..CMDS.len(),
                proptest::collection::vec(any::<u8>(), 0..900),
                any::<bool>(),
            ),
            |(ci, mut arg, ptr_to_garbage)| {
                let c = open();
                let cmd = CMDS[ci];
                let mut scratch = vec![0u8; 1024];
                if ptr_to_garbage && arg.len() >= 8 {
                    arg[0..8].copy_from_slice(&(scratch.as_mut_ptr() as u64).to_ne_bytes());
                }
                let need = ((cmd >> 16) & 0x1fff) as usize;
                arg.resize(need.max(arg.len()), 0);
                let r = c.ioctl(cmd, &mut arg);
                if let Err(e) = r {
                    let ok = [
                        Errno::EINVAL,
                        Errno::ENOENT,
                        Errno::ESRCH,
                        Errno::EFAULT,
                        Errno::EBUSY,
                        Errno::ENOTTY,
                        Errno::ENOSPC,
                        Errno::ENOMEM,
                        Errno::EACCES,
                        Errno::E2BIG,
                    ];
                    prop_assert!(ok.contains(&e), "cmd {cmd:#x}: unexpected errno {e:?}");
                }
                Ok(())
            },
        )
        .unwrap();
    // Everything opened above is closed: no net growth beyond noise from
    // proptest's own bookkeeping (a few KiB).
    let after = NET.load(Ordering::SeqCst);
    assert!(
        after - baseline < 64 * 1024,
        "heap grew by {} bytes",
        after - baseline
    );
}
