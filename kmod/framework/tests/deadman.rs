//! The deadman, driven by a mock platform whose clock the test controls:
//! a consumer whose state has not been seen alive for more than 10 s is
//! KILLED by probe context (unless destructive tracing is allowed), and
//! STATUS reports it. Own process: the framework is a per-process singleton.

#[path = "../../hosted/tests/common/dof_builder.rs"]
mod dof_builder;

use std::sync::atomic::{AtomicU64, Ordering};

use dof_builder::*;
use rdtrace_framework::abi::*;
use rdtrace_framework::platform::*;
use rdtrace_framework::provider::{ProviderAttributes, ProviderOps};
use rdtrace_framework::{registry, Attribute};

static CLOCK: AtomicU64 = AtomicU64::new(1_000_000_000);

struct Mock;

// SAFETY: single-CPU test platform: probe-context methods do not allocate or
// panic; loads copy only from addresses the test itself handed out.
unsafe impl Platform for Mock {
    fn alloc_zeroed(&self, size: usize, align: usize, _: AllocFlags) -> *mut u8 {
        let l = std::alloc::Layout::from_size_align(size.max(1), align.max(1)).unwrap();
        // SAFETY: non-zero size.
        unsafe { std::alloc::alloc_zeroed(l) }
    }
    unsafe fn free(&self, ptr: *mut u8, size: usize, align: usize) {
        let l = std::alloc::Layout::from_size_align(size.max(1), align.max(1)).unwrap();
        // SAFETY: caller contract.
        unsafe { std::alloc::dealloc(ptr, l) }
    }
    fn cpu_id(&self) -> usize {
        0
    }
    fn cpu_count(&self) -> usize {
        1
    }
    fn monotonic_ns(&self) -> u64 {
        CLOCK.load(Ordering::SeqCst)
    }
    fn wall_ns(&self) -> u64 {
        CLOCK.load(Ordering::SeqCst)
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
    fn copyin(&self, uaddr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        // SAFETY: the test only passes addresses of its own live buffers.
        unsafe { std::ptr::copy_nonoverlapping(uaddr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
    fn copyout(&self, buf: &[u8], uaddr: u64) -> Result<(), Errno> {
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), uaddr as *mut u8, buf.len()) };
        Ok(())
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

impl PlatformTimers for Mock {
    // No callouts: the deadman never refreshes `alive`, as when a consumer
    // stops calling STATUS.
    fn timer_create(&self, _: Option<usize>, _: u64, _: fn(usize), _: usize) -> Option<TimerId> {
        None
    }
    fn timer_destroy(&self, _: TimerId) {}
}

static MOCK: Mock = Mock;

struct P;
impl ProviderOps for P {
    fn enable(&self, _: u32, _: usize) {}
    fn disable(&self, _: u32, _: usize) {}
    fn destroy(&self, _: u32, _: usize) {}
}

fn ioctl(h: &rdtrace_framework::ConsumerHandle, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
    rdtrace_framework::consumer_ioctl(h, cmd, arg, &ThreadIdentity::default())
}

fn status(h: &rdtrace_framework::ConsumerHandle) -> [u8; 88] {
    let mut s = [0u8; 88];
    ioctl(h, DTRACEIOC_STATUS, &mut s).unwrap();
    s
}

fn run(destructive: bool) -> (bool, u64) {
    let name = if destructive { "dmd" } else { "dm" };
    let id = registry::register(
        name,
        &ProviderAttributes::uniform(Attribute::STABLE_COMMON),
        0,
        None,
        Box::new(P),
    )
    .unwrap();
    let probe = registry::probe_create(id, "m", "f", "p", 0, 0);
    let h = rdtrace_framework::consumer_open(&ThreadIdentity::default()).unwrap();
    let mut opts = vec![(0u32, 4096i64)];
    if destructive {
        opts.push((DTRACEOPT_DESTRUCTIVE as u32, 0));
    }
    let d = dof(
        &[Clause::new(
            &format!("{name}:::p"),
            vec![Act::trace(Dif::var(0x106))],
        )],
        &opts,
    );
    let mut arg = [0u8; 16];
    arg[0..8].copy_from_slice(&(d.as_ptr() as u64).to_ne_bytes());
    ioctl(&h, DTRACEIOC_ENABLE, &mut arg).unwrap();
    let mut cpu = [0u8; 4];
    ioctl(&h, DTRACEIOC_GO, &mut cpu).unwrap();
    rdtrace_framework::dtrace_probe(probe, 1, 0, 0, 0, 0);
    assert_eq!(status(&h)[80], 0, "alive at first");
    CLOCK.fetch_add(11_000_000_000, Ordering::SeqCst);
    rdtrace_framework::dtrace_probe(probe, 2, 0, 0, 0, 0);
    let killed = status(&h)[80] != 0;
    let stop = ioctl(&h, DTRACEIOC_STOP, &mut cpu);
    if killed {
        assert_eq!(
            stop.unwrap_err(),
            Errno::EINVAL,
            "a killed consumer cannot STOP"
        );
    }
    let mut data = vec![0u8; 4096];
    let mut desc = [0u8; 48];
    desc[24..32].copy_from_slice(&(data.as_mut_ptr() as u64).to_ne_bytes());
    let mut parg = [0u8; 8];
    parg.copy_from_slice(&(desc.as_mut_ptr() as u64).to_ne_bytes());
    ioctl(&h, DTRACEIOC_BUFSNAP, &mut parg).unwrap();
    let size = u64::from_ne_bytes(desc[0..8].try_into().unwrap());
    rdtrace_framework::consumer_close(h);
    (killed, size / 24)
}

#[test]
fn deadman_kills_a_silent_consumer_unless_destructive() {
    rdtrace_framework::attach(&MOCK).unwrap();
    let (killed, records) = run(false);
    assert!(killed, "10 s without a sign of life kills the consumer");
    assert_eq!(records, 1, "the firing after the timeout recorded nothing");
    let (killed, records) = run(true);
    assert!(!killed, "destructive tracing is exempt");
    assert_eq!(records, 2);
}
