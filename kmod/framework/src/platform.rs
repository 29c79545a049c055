//! The platform boundary: the only way the framework reaches the kernel it runs in.
//!
//! The framework is `no_std` and knows nothing of FreeBSD or of the host OS.
//! Everything it needs from its environment goes through [`Platform`]. There are
//! exactly two implementations:
//!
//! * the FreeBSD one in `kmod/module` (over the KPI bindings in `rdtrace-ffi`),
//! * the hosted one in `kmod/hosted` (over `std`, OS threads acting as CPUs).
//!
//! Methods marked *probe context* may be called from `dtrace_probe()` and the
//! trap/hook entry points: implementations must not allocate, sleep, block on a
//! lock that can sleep, or panic there.

/// Why a memory access made on behalf of D code failed.
///
/// Mapped to a `DTRACEFLT_*` code by the DIF VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessFault {
    /// The address is not mapped or not readable (`DTRACEFLT_BADADDR`).
    BadAddress,
    /// The address is misaligned for the access on this architecture (`DTRACEFLT_BADALIGN`).
    BadAlignment,
    /// The address is in a range D must never touch (toxic range; `DTRACEFLT_BADADDR`).
    Toxic,
}

/// An errno value as FreeBSD defines it (the numbers match `sys/errno.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const ESRCH: Errno = Errno(3);
    pub const EIO: Errno = Errno(5);
    pub const ENXIO: Errno = Errno(6);
    pub const E2BIG: Errno = Errno(7);
    pub const EAGAIN: Errno = Errno(35);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EFAULT: Errno = Errno(14);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EINVAL: Errno = Errno(22);
    pub const ENOSPC: Errno = Errno(28);
    pub const ENOTTY: Errno = Errno(25);
    pub const EALREADY: Errno = Errno(37);
    pub const ENOTSUP: Errno = Errno(45);
    pub const ENODEV: Errno = Errno(19);
    pub const ERANGE: Errno = Errno(34);
}

/// Whether an allocation may sleep waiting for memory (`M_WAITOK`) or must
/// fail at once (`M_NOWAIT`). Probe context always uses [`AllocFlags::NoWait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocFlags {
    /// May sleep; never fails on FreeBSD (`M_WAITOK`).
    Wait,
    /// Must not sleep; may return null (`M_NOWAIT`).
    NoWait,
}

/// Identity of the thread a probe fires in or an ioctl comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadIdentity {
    pub pid: i32,
    pub ppid: i32,
    pub tid: i64,
    pub uid: u32,
    pub gid: u32,
    pub jid: i32,
    /// Address of the kernel thread structure (`curthread`), 0 if none.
    pub curthread: u64,
}

/// The services the framework needs from the kernel it runs in.
///
/// # Safety
///
/// Implementations promise that the probe-context methods are callable with
/// interrupts disabled and never allocate, sleep or panic, and that
/// [`Platform::fault_checked_load`] never faults the caller whatever address
/// it is given.
pub unsafe trait Platform: PlatformTimers + Sync + 'static {
    // ---- memory -----------------------------------------------------------

    /// Allocate `size` bytes aligned to `align` (a power of two), zeroed.
    /// Returns null on failure (only possible with [`AllocFlags::NoWait`]).
    fn alloc_zeroed(&self, size: usize, align: usize, flags: AllocFlags) -> *mut u8;

    /// Free memory from [`Platform::alloc_zeroed`] with the same size and alignment.
    ///
    /// # Safety
    /// `ptr` must come from `alloc_zeroed(size, align, _)` on this platform and
    /// not have been freed.
    unsafe fn free(&self, ptr: *mut u8, size: usize, align: usize);

    // ---- CPUs and time (probe context) ------------------------------------

    /// The id of the CPU the caller runs on. Stable while interrupts are disabled.
    fn cpu_id(&self) -> usize;

    /// One more than the highest CPU id that can ever run probes (`mp_maxid + 1`).
    fn cpu_count(&self) -> usize;

    /// Monotonic high-resolution time in nanoseconds (DTrace's `timestamp`).
    fn monotonic_ns(&self) -> u64;

    /// Wall-clock time in nanoseconds since the Unix epoch (`walltimestamp`).
    fn wall_ns(&self) -> u64;

    /// Disable interrupts (or, hosted, preemption into probe context) on this
    /// CPU, returning a cookie for [`Platform::interrupts_restore`].
    fn interrupts_disable(&self) -> usize;

    /// Undo [`Platform::interrupts_disable`].
    fn interrupts_restore(&self, cookie: usize);

    // ---- fault-checked access (probe context) -----------------------------

    /// Load `buf.len()` bytes from kernel address `addr` without ever faulting
    /// the caller.
    fn fault_checked_load(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault>;

    /// Load `buf.len()` bytes from user address `addr` of the current process
    /// without faulting the caller.
    fn fault_checked_user_load(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault>;

    // ---- user memory from ioctl context -----------------------------------

    /// `copyin(9)`: copy from the calling process's address space.
    fn copyin(&self, uaddr: u64, buf: &mut [u8]) -> Result<(), Errno>;

    /// `copyout(9)`: copy to the calling process's address space.
    fn copyout(&self, buf: &[u8], uaddr: u64) -> Result<(), Errno>;

    // ---- cross-CPU ----------------------------------------------------------

    /// Run `func(arg)` on every CPU (or on `cpu` only, if `Some`) and return when
    /// all have run it (`smp_rendezvous`/`dtrace_xcall`).
    fn xcall(&self, cpu: Option<usize>, func: fn(usize), arg: usize);

    /// Wait until every CPU has left probe context once (`dtrace_sync`).
    fn sync(&self) {
        fn nothing(_: usize) {}
        self.xcall(None, nothing, 0);
    }

    // ---- identity (probe context) -------------------------------------------

    /// Who is running on this CPU right now.
    fn current_thread(&self) -> ThreadIdentity;

    /// The current process's command name, NUL-padded (`execname`).
    fn current_execname(&self, buf: &mut [u8]);

    // ---- diagnostics / policy (never probe context) ---------------------------

    /// Report a diagnostic the operator should see (FreeBSD: `printf(9)` to the
    /// console; hosted: stderr when `RDTRACE_VERBOSE` is set). Used for rejected
    /// DOF, killed consumers and similar. The default drops the message.
    fn log(&self, _message: &str) {}

    /// Whether destructive actions are allowed system-wide
    /// (`security.bsd.allow_destructive_dtrace`). Defaults to allowed.
    fn destructive_allowed(&self) -> bool {
        true
    }

    /// Whether the system is panicking: probes then fire nothing (probe context).
    fn panicking(&self) -> bool {
        false
    }

    /// The current thread's predicate-cache id (FreeBSD keeps it in the
    /// thread's DTrace area, `td_dtrace` + 4). 0 = none; the default has no
    /// per-thread storage and so disables the cache. *Probe context.*
    fn thread_predcache(&self) -> u32 {
        0
    }

    /// Sets the current thread's predicate-cache id. *Probe context.*
    fn set_thread_predcache(&self, _id: u32) {}

    // ---- stacks (probe context) ---------------------------------------------

    /// `stack()`: kernel return addresses, innermost first, starting at the
    /// function that called `dtrace_probe()` — the framework's own frames
    /// are those at or below [`crate::stack::entry_mark`] of this CPU (pass
    /// every frame through a [`crate::stack::Collector`]) — then skipping
    /// `aframes` frames of provider plumbing. With an empty `pcs` it only
    /// counts (`stackdepth`). Returns how many were written (or counted).
    /// The default knows no stacks.
    fn kernel_stack(&self, _pcs: &mut [u64], _aframes: u32) -> usize {
        0
    }

    /// A consumer is opening the device, in the opening thread's system
    /// call (sleepable, no framework lock held): a chance to learn what only
    /// a user thread inside the kernel shows (FreeBSD: where `td_frame` is
    /// in `struct thread`). The default does nothing.
    fn consumer_opening(&self) {}

    /// `ustack()`: the current thread's user PCs, innermost (where the
    /// thread entered the kernel) first. With an empty `pcs` it only counts
    /// (`ustackdepth`). Returns how many were written (or counted). The
    /// default knows no stacks.
    fn user_stack(&self, _pcs: &mut [u64]) -> usize {
        0
    }

    // ---- destructive actions (probe context; only with `-w`) ---------------

    /// `raise(sig)`: post `sig` to the current thread on return to user mode.
    /// The default (no process control) ignores it.
    fn action_raise(&self, _sig: i32) {}

    /// `stop()`: stop the current process on return to user mode.
    fn action_stop(&self) {}

    /// `breakpoint()`: enter the kernel debugger.
    fn action_breakpoint(&self) {}

    /// `panic()`: panic the system (FreeBSD: `panic("dtrace: panic action at probe %s")`).
    fn action_panic(&self, _probe: &str) {}
}

/// A periodic timer created by [`PlatformTimers::timer_create`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId(pub usize);

/// Periodic timers (a supertrait of [`Platform`], so one `&dyn Platform` object
/// carries both): `callout(9)` (`callout_reset_sbt_on` with `C_DIRECT_EXEC`) on
/// FreeBSD, OS threads on the hosted kernel. Used by the framework's cleaner and
/// deadman and by the profile provider.
pub trait PlatformTimers {
    /// Start calling `func(arg)` every `interval_ns`, on CPU `cpu` if given (the
    /// callback then runs as that CPU), otherwise on any CPU. The first call comes
    /// one interval from now. Returns `None` if no timer could be created.
    fn timer_create(
        &self,
        cpu: Option<usize>,
        interval_ns: u64,
        func: fn(usize),
        arg: usize,
    ) -> Option<TimerId>;

    /// Stop a timer and wait until a callback that is running has returned
    /// (`callout_drain`). Must not be called from the timer's own callback.
    fn timer_destroy(&self, id: TimerId);
}
