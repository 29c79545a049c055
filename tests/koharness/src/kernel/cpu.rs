//! Harness CPUs, `struct pcpu`, `curthread` and the rules for entering module code.
//!
//! The fake kernel has [`NCPU`] CPUs. Each has a `struct pcpu` page below
//! 2 GiB (`pc_curthread` at offset 0, `pc_cpuid` at [`PCPU_CPUID_OFFSET`]),
//! reached from module code through `%gs`, exactly as on amd64 FreeBSD.
//!
//! A host thread runs module code only while it *occupies* a harness CPU: it
//! takes the CPU's slot, points its own GS base at that CPU's pcpu
//! (`arch_prctl(ARCH_SET_GS)`; the GS base is per host thread) and stores its
//! fake `struct thread` in `pc_curthread`. A thread gives its CPU up only when
//! it leaves the kernel or blocks (sleepable lock, sleep, callout drain,
//! waiting for a rendezvous) — never in a critical section or with a spin
//! lock held. Callouts and rendezvous actions for a CPU wait for its slot,
//! which gives module code the exclusivity that disabled interrupts give it
//! on real hardware (`cli` itself is emulated as a no-op, see `trap.rs`).
//! Not probe context (these are host-side helpers).

use std::cell::RefCell;
use std::sync::{Condvar, Mutex, OnceLock};

use crate::lowmem::LowRegion;

/// Number of harness CPUs (`mp_ncpus`; `mp_maxid` = NCPU - 1).
pub const NCPU: usize = 4;
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

struct CpuSlot {
    owner: Mutex<Option<u64>>,
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
        let pcpu = LowRegion::new(PCPU_SIZE * NCPU).expect("mmap pcpu pages below 2 GiB");
        for cpu in 0..NCPU {
            let at = pcpu.addr() + (cpu * PCPU_SIZE + PCPU_CPUID_OFFSET) as u64;
            // SAFETY: inside the freshly mapped, writable pcpu region.
            unsafe { std::ptr::write(at as *mut u32, cpu as u32) };
        }
        let slots = (0..NCPU)
            .map(|_| CpuSlot {
                owner: Mutex::new(None),
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

fn take_slot(cpu: usize, tid: u64) {
    let slot = &cpus().slots[cpu];
    let mut owner = slot.owner.lock().unwrap_or_else(|e| e.into_inner());
    while owner.is_some_and(|o| o != tid) {
        owner = slot.freed.wait(owner).unwrap_or_else(|e| e.into_inner());
    }
    *owner = Some(tid);
}

fn give_slot(cpu: usize, tid: u64) {
    let slot = &cpus().slots[cpu];
    let mut owner = slot.owner.lock().unwrap_or_else(|e| e.into_inner());
    if *owner == Some(tid) {
        *owner = None;
        slot.freed.notify_all();
    }
}

/// Occupy `cpu` (waiting for it), point GS at its pcpu and make this thread
/// its `curthread`. Nested entries keep the CPU already occupied.
pub fn enter_kernel(cpu: usize) {
    let (tid, td, nested) = with_thread(|t| {
        t.entry_depth += 1;
        (t.tid, t.td.addr(), t.cpu.is_some())
    });
    if nested {
        return;
    }
    take_slot(cpu, tid);
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
        take_slot(cpu, tid);
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
        take_slot(cpu, tid);
        occupy(cpu, td);
    }
    r
}

/// Whether the calling thread may sleep (not in a critical section, no
/// spin or sleep mutex held).
pub fn may_sleep() -> bool {
    with_thread(|t| t.critnest == 0 && t.spinlocks == 0 && t.sleep_mutexes == 0)
}

/// Run `f` on `cpu` (callout dispatchers, rendezvous workers): the calling
/// thread occupies the CPU, waiting for it if needed, for the duration of `f`.
pub fn run_on_cpu<R: Send>(cpu: usize, f: impl FnOnce() -> R + Send) -> R {
    enter_kernel(cpu);
    let r = f();
    leave_kernel();
    r
}
