//! The hosted platform: the framework's `Platform` over `std` and Linux.
//!
//! CPUs: there are `cpu_count()` = host CPUs virtual CPUs, each guarded by a
//! spin lock. Entering probe context (`interrupts_disable`) acquires one: a
//! thread bound with [`bind_cpu`] (profile timers, benchmarks) spins for its
//! own CPU; any other thread takes the first free CPU, starting from a
//! per-thread preferred one. While a thread is in probe context it *is* that
//! CPU, so two threads never act as the same CPU at once; if the OS preempts
//! a thread in probe context, another thread wanting that CPU spins (or an
//! unbound one picks another CPU) — exactly the guarantee disabled
//! interrupts give a kernel CPU. Nesting (ERROR fired from probe context,
//! BEGIN fired inside GO) just counts depth. Cross-calls run the function on
//! the caller's thread *as* the target CPU, holding that CPU's lock.
//!
//! Fault-checked loads, copyin and copyout use `process_vm_readv` /
//! `process_vm_writev` on our own pid, which report EFAULT for unmapped or
//! protected addresses instead of faulting: they really cannot crash.
//! Stacks (`stack()`, `ustack()`, `stackdepth`, `caller`, `ucaller`) are
//! the firing thread's own: walked through frame pointers (via the
//! fault-checked load, bounded by `stack::MAX_WALK` and the stack span) when
//! this build keeps them — checked once at start — and otherwise through
//! libgcc's DWARF unwinder (`_Unwind_Backtrace`), since Rust builds omit
//! frame pointers by default. Only PCs inside the executable mappings seen
//! at start are accepted by the frame-pointer walk. The hosted "user" stack
//! is the same walk: the traced code is this process.
//! Timers are threads. Time is the invariant TSC calibrated against
//! `CLOCK_MONOTONIC` when the CPU has one (else `CLOCK_MONOTONIC`), and
//! `CLOCK_REALTIME` for wall time.

use std::alloc::Layout;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use rdtrace_framework::platform::{
    AccessFault, AllocFlags, Errno, Platform, PlatformTimers, ThreadIdentity, TimerId,
};
use rdtrace_framework::stack;

/// One virtual CPU's probe-context lock (0 = free, else owner token).
#[repr(align(64))]
struct CpuSlot {
    owner: AtomicU64,
}

struct Timer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// A TSC-based monotonic clock (what FreeBSD's `dtrace_gethrtime` uses),
/// calibrated against `CLOCK_MONOTONIC`; only used when the CPU advertises
/// an invariant TSC (`constant_tsc` and `nonstop_tsc`).
#[derive(Clone, Copy)]
struct TscClock {
    base_tsc: u64,
    base_ns: u64,
    /// Nanoseconds per tick, as a 32.32 fixed-point number.
    mult: u64,
}

impl TscClock {
    #[cfg(target_arch = "x86_64")]
    fn read_tsc() -> u64 {
        // SAFETY: RDTSC has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    #[cfg(target_arch = "x86_64")]
    fn calibrate() -> Option<TscClock> {
        let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        let flags = info.lines().find(|l| l.starts_with("flags"))?;
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        if !(has("constant_tsc") && has("nonstop_tsc")) {
            return None;
        }
        let (t0, n0) = (Self::read_tsc(), now(libc::CLOCK_MONOTONIC));
        std::thread::sleep(Duration::from_millis(5));
        let (t1, n1) = (Self::read_tsc(), now(libc::CLOCK_MONOTONIC));
        let dt = t1.checked_sub(t0).filter(|&d| d > 0)?;
        let mult = (u128::from(n1 - n0) << 32) / u128::from(dt);
        Some(TscClock {
            base_tsc: t1,
            base_ns: n1,
            mult: u64::try_from(mult).ok()?,
        })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn calibrate() -> Option<TscClock> {
        None
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn read_tsc() -> u64 {
        0
    }

    #[inline]
    fn ns(&self) -> u64 {
        let d = Self::read_tsc().wrapping_sub(self.base_tsc);
        self.base_ns
            .wrapping_add(((u128::from(d) * u128::from(self.mult)) >> 32) as u64)
    }
}

/// The hosted implementation of the platform interface.
pub struct HostedPlatform {
    tsc: Option<TscClock>,
    cpus: Box<[CpuSlot]>,
    timers: Mutex<Vec<Option<Timer>>>,
    execname: [u8; 32],
    pid: i32,
    /// Executable mappings of this process (stack PCs must lie in one).
    code: CodeRanges,
    /// Whether this build keeps frame pointers (checked at start): stacks
    /// are then walked through them, else through the system unwinder.
    frame_pointers: bool,
}

thread_local! {
    /// (cpu, nesting depth) while this thread is in probe context.
    static CURRENT: Cell<Option<(usize, u32)>> = const { Cell::new(None) };
    /// The CPU this thread is bound to, if any.
    static BOUND: Cell<Option<usize>> = const { Cell::new(None) };
    /// A token unique to this thread (never 0).
    static TOKEN: Cell<u64> = const { Cell::new(0) };
    static IDENT: Cell<Option<ThreadIdentity>> = const { Cell::new(None) };
    /// The thread's predicate-cache id.
    static PREDCACHE: Cell<u32> = const { Cell::new(0) };
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn token() -> u64 {
    TOKEN.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        let n = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        t.set(n);
        n
    })
}

/// Binds the calling thread to virtual CPU `cpu` (it will fire probes and
/// run cross-calls as that CPU); `None` unbinds.
pub fn bind_cpu(cpu: Option<usize>) {
    BOUND.with(|b| b.set(cpu));
}

fn now(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

impl HostedPlatform {
    /// A platform with one virtual CPU per host CPU.
    pub fn new() -> HostedPlatform {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self::with_cpus(n)
    }

    /// A platform with `n` virtual CPUs.
    pub fn with_cpus(n: usize) -> HostedPlatform {
        let cpus = (0..n.max(1))
            .map(|_| CpuSlot {
                owner: AtomicU64::new(0),
            })
            .collect();
        let mut execname = [0u8; 32];
        if let Ok(s) = std::fs::read_to_string("/proc/self/comm") {
            let s = s.trim_end();
            let n = s.len().min(execname.len() - 1);
            execname[..n].copy_from_slice(&s.as_bytes()[..n]);
        }
        HostedPlatform {
            tsc: TscClock::calibrate(),
            cpus,
            timers: Mutex::new(Vec::new()),
            execname,
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
            code: CodeRanges::of_this_process(),
            frame_pointers: false,
        }
        .with_frame_pointer_check()
    }

    /// Finds out whether this build keeps frame pointers: a walk from a
    /// known function must find its caller's return address.
    fn with_frame_pointer_check(mut self) -> HostedPlatform {
        let outer: fn(&HostedPlatform) -> u64 = frame_check_outer;
        let ra = frame_check_outer(&self);
        self.frame_pointers = ra.wrapping_sub(outer as *const () as u64) < 256;
        self
    }

    /// Whether stacks are walked through frame pointers (else the unwinder).
    pub fn walks_frame_pointers(&self) -> bool {
        self.frame_pointers
    }

    /// The stack of the calling thread, as [`stack::Collector`] wants it.
    /// Not inlined: the walk starts from its own frame.
    #[inline(never)]
    fn collect_stack(&self, pcs: &mut [u64], aframes: u32) -> usize {
        let mark = stack::entry_mark(self.cpu_id());
        let mut sink = stack::Collector::new(mark, aframes, pcs);
        let fp = stack::current_frame_pointer();
        if self.frame_pointers && fp != 0 {
            let here = 0u8;
            let mut mem = HostedStackMemory {
                platform: self,
                low: &here as *const u8 as u64,
            };
            stack::walk_frame_pointers(
                &mut mem,
                stack::FrameLayout::native(),
                fp,
                stack::DEFAULT_MAX_SPAN,
                &mut sink,
            )
        } else {
            unwind_stack(&mut sink)
        }
    }

    fn try_take(&self, cpu: usize, me: u64) -> bool {
        self.cpus.get(cpu).is_some_and(|s| {
            s.owner
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
    }

    fn take(&self, cpu: usize, me: u64) {
        while !self.try_take(cpu, me) {
            std::hint::spin_loop();
        }
    }

    fn release(&self, cpu: usize) {
        if let Some(s) = self.cpus.get(cpu) {
            s.owner.store(0, Ordering::Release);
        }
    }

    fn preferred(&self) -> usize {
        BOUND
            .with(|b| b.get())
            .unwrap_or_else(|| (token() as usize) % self.cpus.len())
    }

    fn rw_self(&self, addr: u64, len: usize, local: *mut u8, write: bool) -> bool {
        if len == 0 {
            return true;
        }
        if addr == 0 {
            return false;
        }
        let liov = libc::iovec {
            iov_base: local.cast(),
            iov_len: len,
        };
        let riov = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        // SAFETY: `local` points to `len` bytes we own (readable for writes,
        // writable for reads); the remote side is checked by the kernel, which
        // returns an error instead of faulting for bad addresses.
        let n = unsafe {
            if write {
                libc::process_vm_writev(self.pid, &liov, 1, &riov, 1, 0)
            } else {
                libc::process_vm_readv(self.pid, &liov, 1, &riov, 1, 0)
            }
        };
        n == len as isize
    }
}

impl Default for HostedPlatform {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: probe-context methods below never allocate, sleep or panic
// (thread-locals are const-initialised Cells; the CPU locks spin), and the
// fault-checked loads go through process_vm_readv, which cannot fault us.
unsafe impl Platform for HostedPlatform {
    fn alloc_zeroed(&self, size: usize, align: usize, _flags: AllocFlags) -> *mut u8 {
        match Layout::from_size_align(size.max(1), align.max(1)) {
            // SAFETY: the layout has non-zero size.
            Ok(l) => unsafe { std::alloc::alloc_zeroed(l) },
            Err(_) => std::ptr::null_mut(),
        }
    }

    unsafe fn free(&self, ptr: *mut u8, size: usize, align: usize) {
        if let Ok(l) = Layout::from_size_align(size.max(1), align.max(1)) {
            // SAFETY: the caller passes a pointer from `alloc_zeroed` with the same layout.
            unsafe { std::alloc::dealloc(ptr, l) };
        }
    }

    fn cpu_id(&self) -> usize {
        CURRENT
            .with(|c| c.get())
            .map_or_else(|| self.preferred(), |(cpu, _)| cpu)
    }

    fn cpu_count(&self) -> usize {
        self.cpus.len()
    }

    fn monotonic_ns(&self) -> u64 {
        match &self.tsc {
            Some(t) => t.ns(),
            None => now(libc::CLOCK_MONOTONIC),
        }
    }

    fn wall_ns(&self) -> u64 {
        now(libc::CLOCK_REALTIME)
    }

    fn interrupts_disable(&self) -> usize {
        if let Some((cpu, depth)) = CURRENT.with(|c| c.get()) {
            CURRENT.with(|c| c.set(Some((cpu, depth.saturating_add(1)))));
            return 1;
        }
        let me = token();
        let n = self.cpus.len();
        let cpu = if let Some(b) = BOUND.with(|b| b.get()) {
            // A bound thread names a valid CPU: no division per firing (a
            // `div` costs as much as the whole claim).
            let b = if b < n { b } else { b % n };
            self.take(b, me);
            b
        } else {
            let start = self.preferred();
            let mut i = 0usize;
            loop {
                let c = (start + i) % n;
                if self.try_take(c, me) {
                    break c;
                }
                i = i.wrapping_add(1);
                if i % n == 0 {
                    std::hint::spin_loop();
                }
            }
        };
        CURRENT.with(|c| c.set(Some((cpu, 1))));
        0
    }

    fn interrupts_restore(&self, _cookie: usize) {
        if let Some((cpu, depth)) = CURRENT.with(|c| c.get()) {
            if depth <= 1 {
                CURRENT.with(|c| c.set(None));
                self.release(cpu);
            } else {
                CURRENT.with(|c| c.set(Some((cpu, depth - 1))));
            }
        }
    }

    fn fault_checked_load(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        if self.rw_self(addr, buf.len(), buf.as_mut_ptr(), false) {
            Ok(())
        } else {
            Err(AccessFault::BadAddress)
        }
    }

    fn fault_checked_user_load(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
        self.fault_checked_load(addr, buf)
    }

    fn copyin(&self, uaddr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if self.rw_self(uaddr, buf.len(), buf.as_mut_ptr(), false) {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    fn copyout(&self, buf: &[u8], uaddr: u64) -> Result<(), Errno> {
        if self.rw_self(uaddr, buf.len(), buf.as_ptr() as *mut u8, true) {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    fn xcall(&self, cpu: Option<usize>, func: fn(usize), arg: usize) {
        let me = token();
        let saved = CURRENT.with(|c| c.get());
        let targets: Vec<usize> = match cpu {
            Some(c) => vec![c],
            None => (0..self.cpus.len()).collect(),
        };
        for c in targets {
            if c >= self.cpus.len() {
                continue;
            }
            let already = saved.is_some_and(|(held, _)| held == c);
            if !already {
                self.take(c, me);
            }
            CURRENT.with(|x| x.set(Some((c, 1))));
            func(arg);
            CURRENT.with(|x| x.set(saved));
            if !already {
                self.release(c);
            }
        }
    }

    fn current_thread(&self) -> ThreadIdentity {
        if let Some(id) = IDENT.with(|i| i.get()) {
            return id;
        }
        // SAFETY: these calls have no preconditions.
        let id = unsafe {
            ThreadIdentity {
                pid: libc::getpid(),
                ppid: libc::getppid(),
                tid: libc::gettid() as i64,
                uid: libc::getuid(),
                gid: libc::getgid(),
                jid: 0,
                curthread: 0,
            }
        };
        let id = ThreadIdentity {
            curthread: IDENT.with(|i| i as *const _ as u64),
            ..id
        };
        IDENT.with(|i| i.set(Some(id)));
        id
    }

    fn current_execname(&self, buf: &mut [u8]) {
        // A slice copy and a fill (a byte loop here cost ~20 ns per
        // `execname`, fwperf's measurement).
        let n = buf.len().min(self.execname.len());
        if let (Some(d), Some(s)) = (buf.get_mut(..n), self.execname.get(..n)) {
            d.copy_from_slice(s);
        }
        if let Some(rest) = buf.get_mut(n..) {
            rest.fill(0);
        }
    }

    fn thread_predcache(&self) -> u32 {
        PREDCACHE.with(|c| c.get())
    }

    fn set_thread_predcache(&self, id: u32) {
        PREDCACHE.with(|c| c.set(id));
    }

    fn kernel_stack(&self, pcs: &mut [u64], aframes: u32) -> usize {
        self.collect_stack(pcs, aframes)
    }

    /// The hosted kernel runs in the traced process itself, so its "user"
    /// stack is the same walk (the probe site's callers, no aframes).
    fn user_stack(&self, pcs: &mut [u64]) -> usize {
        self.collect_stack(pcs, 0)
    }

    fn log(&self, message: &str) {
        if std::env::var_os("RDTRACE_VERBOSE").is_some() {
            eprintln!("{message}");
        }
    }
}

impl PlatformTimers for HostedPlatform {
    fn timer_create(
        &self,
        cpu: Option<usize>,
        interval_ns: u64,
        func: fn(usize),
        arg: usize,
    ) -> Option<TimerId> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let interval = Duration::from_nanos(interval_ns.max(1000));
        let thread = std::thread::Builder::new()
            .name("rdtrace-timer".into())
            .spawn(move || {
                bind_cpu(cpu);
                let (lock, cv) = &*stop2;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                // Absolute deadlines (previous + interval), as FreeBSD's
                // callouts are rescheduled with C_ABSOLUTE: waking late does
                // not push every later firing back.
                let mut next = std::time::Instant::now() + interval;
                loop {
                    // Checked before waiting too: a stop requested before we
                    // first waited must not cost a whole interval.
                    if *stopped {
                        return;
                    }
                    let now = std::time::Instant::now();
                    if now < next {
                        let (g, _) = cv
                            .wait_timeout(stopped, next - now)
                            .unwrap_or_else(|e| e.into_inner());
                        stopped = g;
                        if *stopped {
                            return;
                        }
                        if std::time::Instant::now() < next {
                            continue; // woken early (spuriously): wait again
                        }
                    }
                    next += interval;
                    // Far behind (the host was busy): resume the cadence from
                    // now instead of firing a burst to catch up.
                    let now = std::time::Instant::now();
                    if now > next + interval * 16 {
                        next = now + interval;
                    }
                    drop(stopped);
                    func(arg);
                    stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if *stopped {
                        return;
                    }
                }
            })
            .ok()?;
        let mut timers = self.timers.lock().unwrap_or_else(|e| e.into_inner());
        let t = Timer {
            stop,
            thread: Some(thread),
        };
        if let Some(i) = timers.iter().position(Option::is_none) {
            timers[i] = Some(t);
            Some(TimerId(i))
        } else {
            timers.push(Some(t));
            Some(TimerId(timers.len() - 1))
        }
    }

    fn timer_destroy(&self, id: TimerId) {
        let t = {
            let mut timers = self.timers.lock().unwrap_or_else(|e| e.into_inner());
            timers.get_mut(id.0).and_then(Option::take)
        };
        if let Some(mut t) = t {
            {
                let (lock, cv) = &*t.stop;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
                cv.notify_all();
            }
            if let Some(h) = t.thread.take() {
                let _ = h.join();
            }
        }
    }
}

/// Whether a flag is set in the environment (diagnostics).
pub fn verbose() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("RDTRACE_VERBOSE").is_some())
}

// ---- stacks ---------------------------------------------------------------

/// Up to 64 executable mappings, read from /proc/self/maps at start (not
/// probe context); code mapped later is not recognised.
struct CodeRanges {
    ranges: [(u64, u64); 64],
    len: usize,
}

impl CodeRanges {
    fn of_this_process() -> CodeRanges {
        let mut c = CodeRanges {
            ranges: [(0, 0); 64],
            len: 0,
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return c;
        };
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            if !perms.contains('x') || c.len >= c.ranges.len() {
                continue;
            }
            let Some((lo, hi)) = range.split_once('-') else {
                continue;
            };
            if let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16)) {
                c.ranges[c.len] = (lo, hi);
                c.len += 1;
            }
        }
        c
    }

    fn contains(&self, pc: u64) -> bool {
        self.ranges[..self.len]
            .iter()
            .any(|&(lo, hi)| (lo..hi).contains(&pc))
    }
}

/// The calling thread's stack as the frame-pointer walker sees it: loads go
/// through `process_vm_readv` (never fault), frames lie above the walker.
struct HostedStackMemory<'a> {
    platform: &'a HostedPlatform,
    low: u64,
}

impl stack::FrameMemory for HostedStackMemory<'_> {
    fn load_u64(&mut self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.platform
            .fault_checked_load(addr, &mut b)
            .ok()
            .map(|()| u64::from_ne_bytes(b))
    }

    fn plausible_frame(&self, fp: u64) -> bool {
        fp > self.low && fp - self.low < stack::DEFAULT_MAX_SPAN
    }

    fn plausible_pc(&self, pc: u64) -> bool {
        self.platform.code.contains(pc)
    }
}

/// The return address in this function's frame record, read safely.
#[inline(never)]
fn frame_check_inner(p: &HostedPlatform) -> u64 {
    let fp = stack::current_frame_pointer();
    let mut b = [0u8; 8];
    let at = fp.wrapping_add_signed(stack::FrameLayout::native().return_pc);
    if fp == 0 || p.fault_checked_load(at, &mut b).is_err() {
        return 0;
    }
    u64::from_ne_bytes(b)
}

#[inline(never)]
fn frame_check_outer(p: &HostedPlatform) -> u64 {
    std::hint::black_box(frame_check_inner(std::hint::black_box(p)))
}

#[repr(C)]
struct UnwindContext {
    _opaque: [u8; 0],
}

type UnwindTraceFn = extern "C" fn(*mut UnwindContext, *mut libc::c_void) -> libc::c_int;

extern "C" {
    // libgcc_s's DWARF unwinder (linked by std on Linux): walks without
    // frame pointers, allocation-free once the process's frame tables are
    // located.
    fn _Unwind_Backtrace(trace: UnwindTraceFn, arg: *mut libc::c_void) -> libc::c_int;
    fn _Unwind_GetIP(ctx: *mut UnwindContext) -> usize;
    fn _Unwind_GetCFA(ctx: *mut UnwindContext) -> usize;
}

struct UnwindState<'s, 'o> {
    sink: &'s mut stack::Collector<'o>,
    frames: usize,
}

extern "C" fn unwind_frame(ctx: *mut UnwindContext, arg: *mut libc::c_void) -> libc::c_int {
    const CONTINUE: libc::c_int = 0; // _URC_NO_REASON
    const STOP: libc::c_int = 4; // _URC_NORMAL_STOP
                                 // SAFETY: `arg` is the UnwindState `unwind_stack` passed, alive for the
                                 // whole _Unwind_Backtrace call; `ctx` is the unwinder's current frame.
    let (state, ip, cfa) = unsafe {
        (
            &mut *(arg as *mut UnwindState<'_, '_>),
            _Unwind_GetIP(ctx) as u64,
            _Unwind_GetCFA(ctx) as u64,
        )
    };
    state.frames += 1;
    if ip == 0 || state.frames > stack::MAX_WALK {
        return STOP;
    }
    // At each step libgcc's context holds the return address into the
    // current function and the CFA of the frame it returns from (its callee).
    if !state.sink.offer(cfa, ip) {
        return STOP;
    }
    CONTINUE
}

/// Offers the calling thread's frames, as (callee CFA, caller PC), to `sink`.
fn unwind_stack(sink: &mut stack::Collector<'_>) -> usize {
    let mut state = UnwindState { sink, frames: 0 };
    // SAFETY: the callback only reads the context it is given and the
    // state, which outlives the call.
    unsafe {
        _Unwind_Backtrace(
            unwind_frame,
            &mut state as *mut UnwindState<'_, '_> as *mut libc::c_void,
        );
    }
    state.sink.count()
}
