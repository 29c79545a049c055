//! Harness CPUs, `struct pcpu`, `curthread` and the rules for entering module code.
//!
//! The fake kernel has [`ncpu()`] CPUs. Each has a `struct pcpu` page below
//! 2 GiB (`pc_curthread` at offset 0, `pc_cpuid` at [`PCPU_CPUID_OFFSET`]),
//! reached from module code through `%gs`, exactly as on amd64 FreeBSD.
//!
//! A host thread runs module code only while it *occupies* a harness CPU: it
//! takes the CPU's slot, points its own GS base at that CPU's pcpu
//! (`arch_prctl(ARCH_SET_GS)`; the GS base is per host thread) and stores its
//! fake `struct thread` in `pc_curthread`. A thread gives its CPU up only when
//! it leaves the kernel or blocks (sleepable lock, sleep, callout drain,
//! waiting for a rendezvous) — never in a critical section or with a spin
//! lock held. Interrupt work (callouts, rendezvous actions) takes a free
//! CPU ahead of threads entering from user space; for a busy CPU it waits
//! briefly, then interrupts the occupant with SIGUSR2 and runs in its
//! handler — but only when the occupant was interrupted in module text (the
//! harness's own code may hold host locks) — as a timer interrupt or IPI
//! would. So a thread spinning in module code cannot deadlock a callout
//! drain or a rendezvous; the price is that such an interrupt is not held
//! off by the occupant's (untrackable) interrupt-disable state (`cli` is
//! emulated as a no-op, see `trap.rs`).
//! Not probe context (these are host-side helpers).

use std::cell::RefCell;
use std::sync::{Condvar, Mutex, OnceLock};

use crate::lowmem::LowRegion;

/// Default number of harness CPUs (`mp_ncpus`; `mp_maxid` = ncpu - 1).
pub const DEFAULT_NCPU: usize = 4;

/// Number of harness CPUs: `RDTRACE_KOHARNESS_NCPU` (1..=64) if set, else
/// [`DEFAULT_NCPU`]; fixed at first use.
pub fn ncpu() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("RDTRACE_KOHARNESS_NCPU")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| (1..=64).contains(n))
            .unwrap_or(DEFAULT_NCPU)
    })
}
/// FreeBSD's amd64 `MAXCPU`, the length of `cpuid_to_pcpu[]`.
pub const MAXCPU: usize = 256;
/// Offset of `pc_cpuid` in amd64 `struct pcpu` (after curthread, idlethread,
/// fpcurthread, deadthread, curpcb, sched, switchtime and switchticks).
pub const PCPU_CPUID_OFFSET: usize = 60;
/// Bytes reserved per `struct pcpu` (the real one is under a page).
pub const PCPU_SIZE: usize = 4096;
/// Bytes reserved per fake `struct thread` (zeroed; module code treats it as opaque).
pub const THREAD_SIZE: usize = 4096;

const ARCH_SET_GS: libc::c_int = 0x1001;

/// Who runs on a CPU, and who waits for it. A freed CPU is handed straight
/// to the first waiter; "interrupt" work (callouts, rendezvous actions)
/// queues ahead of threads entering from user space, so a thread that keeps
/// re-entering the kernel cannot starve a CPU's callouts (on hardware the
/// interrupt would preempt it).
struct SlotState {
    owner: Option<u64>,
    /// The host thread of `owner` (for IPIs).
    owner_thread: Option<libc::pthread_t>,
    waiting: std::collections::VecDeque<(u64, libc::pthread_t)>,
    /// Interrupt work queued for this CPU's occupant (IPI jobs).
    mailbox: Vec<usize>,
}

struct CpuSlot {
    state: Mutex<SlotState>,
    freed: Condvar,
}

/// The pcpu pages of all harness CPUs.
pub struct Cpus {
    pcpu: LowRegion,
    slots: Vec<CpuSlot>,
}

static CPUS: OnceLock<Cpus> = OnceLock::new();

/// The CPU table (created on first use).
pub fn cpus() -> &'static Cpus {
    CPUS.get_or_init(|| {
        let pcpu = LowRegion::new(PCPU_SIZE * ncpu()).expect("mmap pcpu pages below 2 GiB");
        for cpu in 0..ncpu() {
            let at = pcpu.addr() + (cpu * PCPU_SIZE + PCPU_CPUID_OFFSET) as u64;
            // SAFETY: inside the freshly mapped, writable pcpu region.
            unsafe { std::ptr::write(at as *mut u32, cpu as u32) };
        }
        let slots = (0..ncpu())
            .map(|_| CpuSlot {
                state: Mutex::new(SlotState {
                    owner: None,
                    owner_thread: None,
                    waiting: std::collections::VecDeque::new(),
                    mailbox: Vec::new(),
                }),
                freed: Condvar::new(),
            })
            .collect();
        Cpus { pcpu, slots }
    })
}

impl Cpus {
    /// Address of CPU `cpu`'s `struct pcpu`.
    pub fn pcpu_addr(&self, cpu: usize) -> u64 {
        self.pcpu.addr() + (cpu * PCPU_SIZE) as u64
    }
}

/// Per host thread: its fake `struct thread`, the CPU it occupies and the
/// kernel-side state FreeBSD keeps in `struct thread`.
pub struct ThreadState {
    /// The fake `struct thread` (below 2 GiB, zeroed).
    pub td: LowRegion,
    /// Harness thread id (also used as the lock owner cookie).
    pub tid: u64,
    /// The CPU occupied right now, if any.
    pub cpu: Option<usize>,
    /// Nesting depth of kernel entries (enter_kernel calls).
    pub entry_depth: u32,
    /// `td_critnest`.
    pub critnest: u32,
    /// Spin mutexes held (each also counts as a critical section).
    pub spinlocks: u32,
    /// Sleep mutexes (MTX_DEF) held.
    pub sleep_mutexes: u32,
    /// sx and rm locks held (sleepable).
    pub sleepable_locks: u32,
    /// The devfs file being operated on (FreeBSD's `td_fpop`).
    pub fpop: Option<u64>,
    /// This thread's alternate signal stack (trap emulation runs on it).
    _altstack: Vec<u8>,
}

thread_local! {
    static THREAD: RefCell<Option<ThreadState>> = const { RefCell::new(None) };
    static HOME_CPU: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The CPU this thread occupies, readable from a signal handler.
    static CURRENT_CPU: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The CPU this host thread runs on when it enters the kernel from "user
/// space" (system calls through devfs, sysctl, SYSINITs): CPU 0 unless set.
pub fn home_cpu() -> usize {
    HOME_CPU.with(|c| c.get()) % ncpu()
}

/// Make this host thread enter the kernel on `cpu` (modulo the CPU count),
/// like a process scheduled there.
pub fn set_home_cpu(cpu: usize) {
    HOME_CPU.with(|c| c.set(cpu));
}

static NEXT_TID: Mutex<u64> = Mutex::new(100_001);

/// Run `f` with this host thread's kernel state (created on first use).
pub fn with_thread<R>(f: impl FnOnce(&mut ThreadState) -> R) -> R {
    THREAD.with(|t| {
        let mut t = t.borrow_mut();
        if t.is_none() {
            let td = LowRegion::new(THREAD_SIZE).expect("mmap struct thread below 2 GiB");
            let mut next = NEXT_TID.lock().unwrap_or_else(|e| e.into_inner());
            let tid = *next;
            *next += 1;
            *t = Some(ThreadState {
                td,
                tid,
                cpu: None,
                entry_depth: 0,
                critnest: 0,
                spinlocks: 0,
                sleep_mutexes: 0,
                sleepable_locks: 0,
                fpop: None,
                _altstack: super::trap::setup_altstack(),
            });
        }
        f(t.as_mut().expect("thread state just created"))
    })
}

/// `curthread` of the calling host thread.
pub fn curthread() -> u64 {
    with_thread(|t| t.td.addr())
}

/// The CPU the calling thread occupies (panics the harness if none: module
/// code asked for its CPU outside of the kernel).
pub fn curcpu() -> usize {
    with_thread(|t| t.cpu).unwrap_or_else(|| crate::kernel::kpanic("curcpu outside of the kernel"))
}

fn set_gs_base(addr: u64) {
    // SAFETY: ARCH_SET_GS only changes this thread's GS base register; the
    // harness never uses %gs itself and Rust's TLS lives in %fs.
    let rc = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_GS, addr) };
    assert_eq!(rc, 0, "arch_prctl(ARCH_SET_GS) failed");
}

fn take_slot(cpu: usize, tid: u64, interrupt: bool) {
    let slot = &cpus().slots[cpu];
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
    if st.owner == Some(tid) {
        return;
    }
    if st.owner.is_none() && st.waiting.is_empty() {
        st.owner = Some(tid);
        st.owner_thread = Some(me);
        CURRENT_CPU.with(|c| c.set(Some(cpu)));
        return;
    }
    if interrupt {
        st.waiting.push_front((tid, me));
    } else {
        st.waiting.push_back((tid, me));
    }
    while st.owner != Some(tid) {
        st = slot.freed.wait(st).unwrap_or_else(|e| e.into_inner());
    }
    CURRENT_CPU.with(|c| c.set(Some(cpu)));
}

fn give_slot(cpu: usize, tid: u64) {
    let slot = &cpus().slots[cpu];
    let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
    if st.owner == Some(tid) {
        CURRENT_CPU.with(|c| c.set(None));
        let next = st.waiting.pop_front();
        st.owner = next.map(|n| n.0);
        st.owner_thread = next.map(|n| n.1);
        slot.freed.notify_all();
    }
}

/// A piece of interrupt work (one CPU's part of a rendezvous) that may run
/// on whichever thread occupies the CPU, delivered like an IPI.
pub struct IpiJob<'a> {
    /// 0 pending, 1 running, 2 done.
    state: std::sync::atomic::AtomicU8,
    work: &'a (dyn Fn() + Sync),
    done: Mutex<bool>,
    finished: Condvar,
}

impl IpiJob<'_> {
    fn claim(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.state
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn run(&self) {
        (self.work)();
        self.state.store(2, std::sync::atomic::Ordering::Release);
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.finished.notify_all();
    }
}

/// How long interrupt work waits for a busy CPU before interrupting its
/// occupant (a probe-context section is far shorter than this).
const IPI_GRACE: std::time::Duration = std::time::Duration::from_millis(2);

/// Run `work` on `cpu` as interrupt work: if the CPU is free (or frees up
/// within a short grace period) take it like a callout does; otherwise
/// interrupt the thread running there with SIGUSR2 and let its handler run
/// `work` on that CPU, as an IPI would — so a rendezvous completes even
/// while another thread spins in module code on that CPU.
pub fn run_as_interrupt(cpu: usize, work: &(dyn Fn() + Sync)) {
    let job = IpiJob {
        state: std::sync::atomic::AtomicU8::new(0),
        work,
        done: Mutex::new(false),
        finished: Condvar::new(),
    };
    let tid = with_thread(|t| t.tid);
    let slot = &cpus().slots[cpu];
    let addr = &job as *const IpiJob<'_> as usize;
    let deadline = std::time::Instant::now() + IPI_GRACE;
    loop {
        // Free CPU: occupy it ourselves (and withdraw the job if queued).
        let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.owner.is_none() && st.waiting.is_empty() && job.claim() {
            st.mailbox.retain(|j| *j != addr);
            st.owner = Some(tid);
            // SAFETY: pthread_self has no preconditions.
            st.owner_thread = Some(unsafe { libc::pthread_self() });
            CURRENT_CPU.with(|c| c.set(Some(cpu)));
            drop(st);
            enter(cpu, true);
            job.run();
            leave_kernel();
            return;
        }
        if job.state.load(std::sync::atomic::Ordering::Acquire) == 2 {
            st.mailbox.retain(|j| *j != addr);
            return;
        }
        let owner = st.owner_thread;
        let kick =
            std::time::Instant::now() >= deadline && owner.is_some() && st.owner != Some(tid);
        if kick && !st.mailbox.contains(&addr) {
            st.mailbox.push(addr);
        }
        drop(st);
        if kick {
            if let Some(t) = owner {
                // SAFETY: `t` is a live thread occupying the CPU (it cannot
                // exit while it holds the slot); SIGUSR2 is the harness IPI.
                unsafe { libc::pthread_kill(t, libc::SIGUSR2) };
            }
        }
        let g = job.done.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = job
            .finished
            .wait_timeout_while(g, std::time::Duration::from_millis(1), |d| !*d)
            .unwrap_or_else(|e| e.into_inner());
        if *g {
            drop(g);
            let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
            st.mailbox.retain(|j| *j != addr);
            return;
        }
    }
}

/// The SIGUSR2 (IPI) handler's work: run the jobs queued for the CPU this
/// thread occupies. Never blocks on the slot lock (try_lock), so it cannot
/// deadlock with the interrupted code; the sender retries.
pub(super) fn handle_ipi() {
    let Some(cpu) = CURRENT_CPU.with(|c| c.get()) else {
        return;
    };
    let Some(slot) = CPUS.get().and_then(|c| c.slots.get(cpu)) else {
        return;
    };
    let jobs: Vec<usize> = match slot.state.try_lock() {
        Ok(mut st) => std::mem::take(&mut st.mailbox),
        Err(_) => return,
    };
    for j in jobs {
        // SAFETY: a job's sender keeps it alive until its state is done,
        // and only the claimer (us, after a successful claim) runs it.
        let job = unsafe { &*(j as *const IpiJob<'_>) };
        if job.claim() {
            job.run();
        }
    }
}

/// Occupy `cpu` (waiting for it), point GS at its pcpu and make this thread
/// its `curthread`. Nested entries keep the CPU already occupied.
pub fn enter_kernel(cpu: usize) {
    enter(cpu, false);
}

fn enter(cpu: usize, interrupt: bool) {
    let (tid, td, nested) = with_thread(|t| {
        t.entry_depth += 1;
        (t.tid, t.td.addr(), t.cpu.is_some())
    });
    if nested {
        return;
    }
    take_slot(cpu, tid, interrupt);
    occupy(cpu, td);
    with_thread(|t| t.cpu = Some(cpu));
    crate::kernel::time::update_ticks();
}

fn occupy(cpu: usize, td: u64) {
    let pcpu = cpus().pcpu_addr(cpu);
    // SAFETY: pc_curthread is the first word of the pcpu page we own while
    // holding the slot.
    unsafe { std::ptr::write_volatile(pcpu as *mut u64, td) };
    set_gs_base(pcpu);
}

/// Leave the kernel: FreeBSD's `userret` checks (no critical section, no
/// locks held) and give the CPU back.
pub fn leave_kernel() {
    let (tid, cpu, last) = with_thread(|t| {
        t.entry_depth = t.entry_depth.saturating_sub(1);
        let last = t.entry_depth == 0;
        let cpu = t.cpu;
        if last {
            t.cpu = None;
        }
        (t.tid, cpu, last)
    });
    if !last {
        return;
    }
    let (crit, spin, mtx, sl) =
        with_thread(|t| (t.critnest, t.spinlocks, t.sleep_mutexes, t.sleepable_locks));
    if crit != 0 || spin != 0 || mtx != 0 || sl != 0 {
        crate::kernel::kpanic(&format!(
            "returning to user space with critnest {crit}, {spin} spin mutexes, {mtx} mutexes, {sl} sx/rm locks held"
        ));
    }
    if let Some(cpu) = cpu {
        give_slot(cpu, tid);
    }
}

/// Run `wait` with this thread's CPU given up (it is about to block), then
/// take the same CPU back. Blocking in a critical section or with a spin
/// mutex or (for sleeps) a sleep mutex held is a kernel bug: panic.
pub fn blocking<R>(what: &str, may_hold_mutex: bool, wait: impl FnOnce() -> R) -> R {
    let (tid, td, cpu, crit, spin, mtx) = with_thread(|t| {
        (
            t.tid,
            t.td.addr(),
            t.cpu,
            t.critnest,
            t.spinlocks,
            t.sleep_mutexes,
        )
    });
    if crit != 0 || spin != 0 {
        crate::kernel::kpanic(&format!(
            "{what}: blocking in a critical section or with a spin mutex held"
        ));
    }
    if !may_hold_mutex && mtx != 0 {
        crate::kernel::kpanic(&format!(
            "{what}: sleeping with a non-sleepable lock (mutex) held"
        ));
    }
    if let Some(cpu) = cpu {
        give_slot(cpu, tid);
    }
    let r = wait();
    if let Some(cpu) = cpu {
        take_slot(cpu, tid, false);
        occupy(cpu, td);
    }
    r
}

/// Run `wait` with this thread's CPU open to other work (callouts,
/// rendezvous actions), without the sleep checks of [`blocking`]: this is a
/// spin-wait with interrupts enabled, which FreeBSD allows even in a
/// critical section (e.g. waiting for the rendezvous lock).
pub fn spin_wait_interruptible<R>(wait: impl FnOnce() -> R) -> R {
    let (tid, td, cpu) = with_thread(|t| (t.tid, t.td.addr(), t.cpu));
    if let Some(cpu) = cpu {
        give_slot(cpu, tid);
    }
    let r = wait();
    if let Some(cpu) = cpu {
        take_slot(cpu, tid, false);
        occupy(cpu, td);
    }
    r
}

/// Whether the calling thread may sleep (not in a critical section, no
/// spin or sleep mutex held).
pub fn may_sleep() -> bool {
    with_thread(|t| t.critnest == 0 && t.spinlocks == 0 && t.sleep_mutexes == 0)
}

/// Run `f` on `cpu` as interrupt work (callout dispatchers, rendezvous
/// workers): the calling thread occupies the CPU, queueing ahead of threads
/// entering from user space, for the duration of `f`.
pub fn run_on_cpu<R: Send>(cpu: usize, f: impl FnOnce() -> R + Send) -> R {
    enter(cpu, true);
    let r = f();
    leave_kernel();
    r
}
