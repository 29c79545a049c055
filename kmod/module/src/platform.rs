//! The FreeBSD implementation of the framework's platform boundary
//! (`rdtrace_framework::platform::{Platform, PlatformTimers}`), over the KPI
//! bindings in `rdtrace_ffi::kpi`.
//!
//! Probe-context methods (CPU id, time, interrupt masking, fault-checked
//! loads, current thread) never allocate, sleep or panic. Known limits,
//! stated where they apply:
//!
//! * Fault-checked loads go byte by byte through the nofault load (see
//!   `nofault`), after a cheap `pmap_kextract` check for kernel addresses;
//!   user pages that are not resident read as BadAddress (probe context
//!   never pages anything in), like stock DTrace.
//! * `current_thread` fills in only `curthread`; pid/tid/uid/... need the
//!   release-specific `struct thread`/`struct proc` offsets, and
//!   `current_execname` is empty for the same reason.
//! * `stack()`/`stackdepth`/`caller` walk the kernel frame-pointer chain
//!   through the fault-checked load, bounded in depth and to
//!   [`KERNEL_STACK_SPAN`] above the walker. `ustack()`/`ucaller`/
//!   `ustackdepth` read the user trap frame (`curthread->td_frame`, layouts
//!   in [`TrapFrameLayout`]) and walk the user frame-pointer chain through
//!   the fault-checked user load ([`user_stack_from_trapframe`]); while the
//!   `td_frame` offset is unknown (it is searched for in the thread that
//!   opens /dev/dtrace, see [`find_td_frame_offset`]) they record no PCs.
//! * `destructive_allowed` keeps the framework's default (allowed): the
//!   `security.bsd.allow_destructive_dtrace` tunable is not read yet.
//!
//! Timers are direct-execution callouts (`C_DIRECT_EXEC`): their callbacks
//! run in interrupt context and must not allocate, free, sleep or take a
//! sleepable lock; `timer_destroy` drains the callout and so may sleep.
//!
//! The unit conversions are plain functions tested on the host; everything
//! touching the kernel is compiled for the kernel target only.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Size of a page on every supported architecture (4 KiB).
pub const PAGE_SIZE: u64 = 4096;

/// `struct bintime` (seconds + 2^-64 fractions) to nanoseconds, saturating.
pub const fn bintime_to_ns(sec: i64, frac: u64) -> u64 {
    if sec < 0 {
        return 0;
    }
    // The top 32 bits of the fraction give ~0.23 ns resolution, plenty.
    let frac_ns = ((frac >> 32) * NANOS_PER_SEC) >> 32;
    (sec as u64)
        .saturating_mul(NANOS_PER_SEC)
        .saturating_add(frac_ns)
}

/// `struct timespec` to nanoseconds, saturating (negative times give 0).
pub const fn timespec_to_ns(sec: i64, nsec: i64) -> u64 {
    if sec < 0 || nsec < 0 {
        return 0;
    }
    (sec as u64)
        .saturating_mul(NANOS_PER_SEC)
        .saturating_add(nsec as u64)
}

/// Nanoseconds to `sbintime_t` (32.32 fixed-point seconds), saturating at
/// the largest positive value; at least 1 so a timer never fires "now".
pub const fn ns_to_sbt(ns: u64) -> i64 {
    let secs = ns / NANOS_PER_SEC;
    let rem = ns % NANOS_PER_SEC;
    if secs >= (1 << 31) {
        return i64::MAX;
    }
    let sbt = (secs << 32) | ((rem << 32) / NANOS_PER_SEC);
    if sbt == 0 {
        1
    } else {
        sbt as i64
    }
}

/// The lowest kernel virtual address on this architecture: everything below
/// is user space or unmapped and is never read by a kernel load.
pub const fn kernel_address_floor(arch: &str) -> u64 {
    match arch.as_bytes() {
        b"aarch64" => 0xffff_0000_0000_0000,
        // amd64 and riscv64 (Sv39 and Sv48): the upper canonical half.
        _ => 0xffff_8000_0000_0000,
    }
}

/// The architecture this module is compiled for, as Rust names it.
pub const TARGET_ARCH: &str = if cfg!(target_arch = "aarch64") {
    "aarch64"
} else if cfg!(target_arch = "riscv64") {
    "riscv64"
} else {
    "x86_64"
};

/// The pages `[addr, addr + len)` touches, as page-aligned addresses, or
/// `None` if the range wraps around the address space.
pub fn pages_of(addr: u64, len: usize) -> Option<impl Iterator<Item = u64>> {
    fn page_start(page: u64) -> u64 {
        page * PAGE_SIZE
    }
    let len = len as u64;
    if len == 0 {
        return Some((0..0).map(page_start as fn(u64) -> u64));
    }
    let last = addr.checked_add(len - 1)?;
    let first_page = addr / PAGE_SIZE;
    let end_page = last / PAGE_SIZE + 1;
    Some((first_page..end_page).map(page_start as fn(u64) -> u64))
}

/// Which byte offset of `struct pcpu` holds `pc_cpuid`, once verified.
/// `u32::MAX` until [`FreeBsdPlatform::init`] has succeeded.
static PCPU_CPUID_OFFSET: AtomicU32 = AtomicU32::new(u32::MAX);

/// The FreeBSD platform. Stateless apart from the verified `pc_cpuid` offset.
pub struct FreeBsdPlatform;

/// The one instance handed to the framework.
pub static PLATFORM: FreeBsdPlatform = FreeBsdPlatform;

impl FreeBsdPlatform {
    /// The verified `pc_cpuid` offset, if [`FreeBsdPlatform::init`] ran.
    pub fn cpuid_offset(&self) -> Option<u32> {
        match PCPU_CPUID_OFFSET.load(Ordering::Acquire) {
            u32::MAX => None,
            offset => Some(offset),
        }
    }
}

/// Choose the first candidate offset at which `read(cpu, offset)` returns
/// `cpu` for every present CPU. `read` returns `None` for absent CPUs.
pub fn choose_cpuid_offset(
    candidates: &[u32],
    max_cpu: u32,
    read: impl Fn(u32, u32) -> Option<Option<u32>>,
) -> Option<u32> {
    candidates.iter().copied().find(|&offset| {
        let mut present = 0;
        for cpu in 0..=max_cpu {
            match read(cpu, offset) {
                None => return false,
                Some(None) => {}
                Some(Some(value)) if value == cpu => present += 1,
                Some(Some(_)) => return false,
            }
        }
        present > 0
    })
}

/// How far (bytes) above the walker's own frame a kernel frame may lie: a
/// few kernel stack pages (KSTACK_PAGES is 4 on amd64 by default) with
/// generous room for kernels built with larger stacks.
pub const KERNEL_STACK_SPAN: u64 = 64 * 1024;

/// A kernel thread stack as the framework's frame-pointer walker
/// (`rdtrace_framework::stack`) sees it: frame pointers lie between the
/// walker's frame and [`KERNEL_STACK_SPAN`] above it, return addresses are
/// kernel addresses, and every load goes through `load` (the fault-checked
/// kernel load). *Probe context.*
pub struct KernelFrames<L: FnMut(u64) -> Option<u64>> {
    pub load: L,
    /// The walker's own frame (nothing below it is a caller's frame).
    pub low: u64,
    /// The lowest kernel address of the architecture.
    pub floor: u64,
}

impl<L: FnMut(u64) -> Option<u64>> rdtrace_framework::stack::FrameMemory for KernelFrames<L> {
    fn load_u64(&mut self, addr: u64) -> Option<u64> {
        (self.load)(addr)
    }

    fn plausible_frame(&self, fp: u64) -> bool {
        fp >= self.floor && fp >= self.low && fp - self.low < KERNEL_STACK_SPAN
    }

    fn plausible_pc(&self, pc: u64) -> bool {
        pc >= self.floor
    }
}

/// Where the user registers a `ustack()` walk starts from lie in the
/// architecture's `struct trapframe` (the frame `curthread->td_frame` points
/// to while a user thread is in the kernel). These are machine ABI, the same
/// on every supported release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapFrameLayout {
    /// The user PC at the trap (`tf_rip`, `tf_elr`, `tf_sepc`).
    pub pc: u64,
    /// The user frame pointer (`tf_rbp`, `tf_x[29]`, `tf_s[0]`).
    pub fp: u64,
}

impl TrapFrameLayout {
    /// amd64: 15 registers, trapno/fs/gs, addr, flags/es/ds, err, then rip;
    /// rbp is the ninth register.
    pub const AMD64: TrapFrameLayout = TrapFrameLayout { pc: 152, fp: 64 };
    /// arm64 (FreeBSD 13 and later): sp, lr, elr, spsr, esr, far, then
    /// x0..x29, so x29 is at 48 + 29 * 8.
    pub const ARM64: TrapFrameLayout = TrapFrameLayout { pc: 16, fp: 280 };
    /// riscv64: ra, sp, gp, tp, t0..t6, s0..s11 (s0 at 88), a0..a7, sepc.
    pub const RISCV64: TrapFrameLayout = TrapFrameLayout { pc: 248, fp: 88 };

    /// The layout of the architecture this module is built for.
    pub const fn native() -> TrapFrameLayout {
        if cfg!(target_arch = "aarch64") {
            TrapFrameLayout::ARM64
        } else if cfg!(target_arch = "riscv64") {
            TrapFrameLayout::RISCV64
        } else {
            TrapFrameLayout::AMD64
        }
    }
}

/// Byte offset of `td_frame` in `struct thread` (u64::MAX = unknown).
/// `struct thread` changes between releases and with kernel options and
/// rdtrace has no verified layout of it, so instead of a guessed constant
/// [`find_td_frame_offset`] looks for the field in a thread that opens
/// /dev/dtrace (a user thread inside open(2)). Until that succeeds (an
/// ambiguous search finds nothing) `ustack()`/`ucaller`/`ustackdepth`
/// record nothing.
static TD_FRAME_OFFSET: AtomicU64 = AtomicU64::new(u64::MAX);

/// The verified `td_frame` offset, if [`find_td_frame_offset`] found one.
pub fn td_frame_offset() -> Option<u64> {
    match TD_FRAME_OFFSET.load(Ordering::Acquire) {
        u64::MAX => None,
        offset => Some(offset),
    }
}

/// How many bytes of `struct thread` the search looks at (the structure is
/// about 1.3 KiB on the supported releases; `td_frame` lies well inside).
pub const TD_SCAN_BYTES: u64 = 2048;

/// Whether the trap frame at `tf` is one a user thread entered the kernel
/// with: user-mode privilege bits and a user PC and stack pointer.
pub fn is_user_trapframe(
    arch: &str,
    tf: u64,
    load: &mut impl FnMut(u64) -> Option<u64>,
    user_limit: u64,
) -> bool {
    let user = |v: u64| (PAGE_SIZE..user_limit).contains(&v);
    let mut at = |off: u64| load(tf.wrapping_add(off));
    match arch {
        "aarch64" => {
            // tf_sp, tf_elr, tf_spsr: SPSR.M[4:0] = 0 is EL0t (AArch64).
            match (at(0), at(16), at(24)) {
                (Some(sp), Some(elr), Some(spsr)) => user(sp) && user(elr) && spsr & 0x1f == 0,
                _ => false,
            }
        }
        "riscv64" => {
            // tf_sp, tf_sepc, tf_sstatus: SPP (bit 8) = 0 is from U-mode.
            match (at(8), at(248), at(256)) {
                (Some(sp), Some(pc), Some(st)) => user(sp) && user(pc) && st & (1 << 8) == 0,
                _ => false,
            }
        }
        _ => {
            // tf_rip, tf_cs, tf_rsp, tf_ss: selectors with RPL 3 (only the
            // low 16 bits of the cs/ss words are the selector; the rest are
            // reserved).
            match (at(152), at(160), at(176), at(184)) {
                (Some(rip), Some(cs), Some(rsp), Some(ss)) => {
                    user(rip) && user(rsp) && cs & 3 == 3 && ss & 3 == 3
                }
                _ => false,
            }
        }
    }
}

/// Finds `td_frame` in the running user thread `thread` (inside a system
/// call): the one word of its first [`TD_SCAN_BYTES`] bytes that points into
/// this kernel stack, above `stack_low` (the caller's frame) and within
/// [`KERNEL_STACK_SPAN`], at a user trap frame. `None` when there is no
/// such word or more than one (never a guess).
pub fn find_td_frame_offset(
    arch: &str,
    thread: u64,
    stack_low: u64,
    mut load: impl FnMut(u64) -> Option<u64>,
    user_limit: u64,
) -> Option<u64> {
    let mut found = None;
    for off in (0..TD_SCAN_BYTES).step_by(8) {
        let Some(p) = load(thread.wrapping_add(off)) else {
            continue;
        };
        if p <= stack_low || p - stack_low >= KERNEL_STACK_SPAN || p & 7 != 0 {
            continue;
        }
        if is_user_trapframe(arch, p, &mut load, user_limit) {
            if found.is_some() {
                return None;
            }
            found = Some(off);
        }
    }
    found
}

/// How far (bytes) above the trap frame's frame pointer a user frame may
/// lie: user stacks are at most a few hundred MiB (`kern.maxssiz`).
pub const USER_STACK_SPAN: u64 = 1 << 30;

/// A user stack as the frame-pointer walker sees it: every load goes through
/// `load` (the fault-checked user load), frame pointers and return addresses
/// are user addresses. *Probe context.*
pub struct UserFrames<L: FnMut(u64) -> Option<u64>> {
    pub load: L,
    /// The architecture's user address limit (`VM_MAXUSER_ADDRESS`).
    pub limit: u64,
}

impl<L: FnMut(u64) -> Option<u64>> rdtrace_framework::stack::FrameMemory for UserFrames<L> {
    fn load_u64(&mut self, addr: u64) -> Option<u64> {
        (self.load)(addr)
    }

    fn plausible_frame(&self, fp: u64) -> bool {
        fp >= PAGE_SIZE && fp < self.limit
    }

    fn plausible_pc(&self, pc: u64) -> bool {
        pc >= PAGE_SIZE && pc < self.limit
    }
}

/// `ustack()` from a user trap frame at kernel address `trapframe`: the
/// trapped PC first, then the return addresses of the user frame-pointer
/// chain (FreeBSD's dtrace_getupcstack; like it, the link register of a
/// frameless leaf is not consulted). `kload` reads the trap frame (fault-
/// checked kernel load), `users` walks the user stack. With an empty `pcs`
/// it only counts. *Probe context.*
pub fn user_stack_from_trapframe<K, U>(
    mut kload: K,
    users: &mut UserFrames<U>,
    tf_layout: TrapFrameLayout,
    frame_layout: rdtrace_framework::stack::FrameLayout,
    trapframe: u64,
    pcs: &mut [u64],
) -> usize
where
    K: FnMut(u64) -> Option<u64>,
    U: FnMut(u64) -> Option<u64>,
{
    use rdtrace_framework::stack::{walk_frame_pointers, Collector, FrameMemory};
    if trapframe == 0 {
        return 0;
    }
    let (Some(pc), Some(fp)) = (
        kload(trapframe.wrapping_add(tf_layout.pc)),
        kload(trapframe.wrapping_add(tf_layout.fp)),
    ) else {
        return 0;
    };
    if !users.plausible_pc(pc) {
        return 0;
    }
    let mut sink = Collector::new(0, 0, pcs);
    if !sink.offer(0, pc) {
        return sink.count();
    }
    walk_frame_pointers(users, frame_layout, fp, USER_STACK_SPAN, &mut sink)
}

#[cfg(target_os = "none")]
mod kernel {
    use super::*;
    use alloc::boxed::Box;
    use core::ffi::c_void;
    use core::sync::atomic::AtomicBool;

    use rdtrace_ffi::kpi;
    use rdtrace_framework::platform::{
        AccessFault, AllocFlags, Errno, Platform, PlatformTimers, ThreadIdentity, TimerId,
    };
    use rdtrace_framework::stack;

    use crate::malloc::{kernel_alloc, kernel_free};
    use crate::release::TARGET_RELEASE;

    impl FreeBsdPlatform {
        /// Verify the per-CPU layout this build assumes (MOD_LOAD, sleepable).
        /// Fails with ENXIO if no known `pc_cpuid` offset is right.
        pub fn init(&self) -> Result<(), Errno> {
            // SAFETY: mp_maxid is a kernel global set before modules load.
            let max_cpu = unsafe { kpi::mp_maxid };
            let read = |cpu: u32, offset: u32| -> Option<Option<u32>> {
                // SAFETY: pcpu_find() returns the struct pcpu of a CPU id or
                // null for an absent one; struct pcpu is far larger than the
                // offsets we probe, and the u32 there is naturally aligned.
                unsafe {
                    let pcpu = kpi::pcpu_find(cpu) as *const u8;
                    if pcpu.is_null() {
                        return Some(None);
                    }
                    Some(Some(core::ptr::read_volatile(
                        pcpu.add(offset as usize) as *const u32
                    )))
                }
            };
            match choose_cpuid_offset(&TARGET_RELEASE.pcpu_cpuid_offsets(), max_cpu, read) {
                Some(offset) => PCPU_CPUID_OFFSET.store(offset, Ordering::Release),
                None => return Err(Errno(6)), // ENXIO
            }
            Ok(())
        }

        /// Looks for `td_frame` in the current thread, a user thread in a
        /// system call (see [`find_td_frame_offset`]); leaves it unknown if
        /// not found. Needs the fault-tolerant loads installed.
        #[inline(never)]
        fn find_td_frame(&self) {
            // SAFETY: reads curthread from this CPU's struct pcpu.
            let td = unsafe { kpi::rdtrace_shim_curthread() as u64 };
            if td == 0 {
                return;
            }
            let load = |addr: u64| {
                let mut b = [0u8; 8];
                self.fault_checked_load(addr, &mut b)
                    .ok()
                    .map(|()| u64::from_ne_bytes(b))
            };
            let found = find_td_frame_offset(
                TARGET_ARCH,
                td,
                stack::current_frame_pointer(),
                load,
                crate::nofault::user_address_limit(TARGET_ARCH),
            );
            if let Some(offset) = found {
                TD_FRAME_OFFSET.store(offset, Ordering::Release);
            }
        }
    }

    /// Run `func(arg)` on one or all CPUs; shared by every CPU in a rendezvous.
    struct XcallRequest {
        target: Option<usize>,
        func: fn(usize),
        arg: usize,
    }

    extern "C" fn xcall_action(request: *mut c_void) {
        // SAFETY: smp_rendezvous passes the XcallRequest that xcall() keeps
        // alive (on its stack) until every CPU has run this action.
        let request = unsafe { &*(request as *const XcallRequest) };
        let here = PLATFORM.cpu_id();
        if request.target.is_none_or(|cpu| cpu == here) {
            (request.func)(request.arg);
        }
    }

    fn errno_of_copy(result: i32) -> Result<(), Errno> {
        if result == 0 {
            Ok(())
        } else {
            Err(Errno(result))
        }
    }

    // SAFETY: the probe-context methods below only read per-CPU registers,
    // kernel time, and memory loaded through the nofault sequence, whose
    // faults the trap hook absorbs (and which refuses to run without the
    // hook); none allocates, sleeps or panics.
    unsafe impl Platform for FreeBsdPlatform {
        fn alloc_zeroed(&self, size: usize, align: usize, flags: AllocFlags) -> *mut u8 {
            kernel_alloc(size, align, true, flags == AllocFlags::Wait)
        }

        unsafe fn free(&self, ptr: *mut u8, _size: usize, _align: usize) {
            // SAFETY: the caller passes memory from alloc_zeroed (kernel_alloc).
            unsafe { kernel_free(ptr) }
        }

        fn cpu_id(&self) -> usize {
            match self.cpuid_offset() {
                // SAFETY: reads this CPU's pc_cpuid through the per-CPU base
                // register at the offset verified at load.
                Some(offset) => unsafe { kpi::rdtrace_shim_curcpu(offset) as usize },
                None => 0,
            }
        }

        fn cpu_count(&self) -> usize {
            // SAFETY: mp_maxid is constant after boot.
            (unsafe { kpi::mp_maxid } as usize).saturating_add(1)
        }

        fn monotonic_ns(&self) -> u64 {
            let mut bt = kpi::bintime::default();
            // SAFETY: binuptime(9) fills the bintime; lock-free and non-sleeping.
            unsafe { kpi::binuptime(&mut bt) };
            bintime_to_ns(bt.sec, bt.frac)
        }

        fn wall_ns(&self) -> u64 {
            let mut ts = kpi::timespec::default();
            // SAFETY: nanotime(9) fills the timespec; lock-free and non-sleeping.
            unsafe { kpi::nanotime(&mut ts) };
            timespec_to_ns(ts.tv_sec, ts.tv_nsec)
        }

        fn interrupts_disable(&self) -> usize {
            // SAFETY: masks interrupts on this CPU; the cookie restores them.
            unsafe { kpi::rdtrace_shim_intr_disable() as usize }
        }

        fn interrupts_restore(&self, cookie: usize) {
            // SAFETY: the cookie came from interrupts_disable on this CPU.
            unsafe { kpi::rdtrace_shim_intr_restore(cookie as kpi::register_t) }
        }

        fn fault_checked_load(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
            if addr < kernel_address_floor(TARGET_ARCH) {
                return Err(AccessFault::Toxic);
            }
            let Some(pages) = pages_of(addr, buf.len()) else {
                return Err(AccessFault::BadAddress);
            };
            for page in pages {
                // SAFETY: pmap_kextract only walks the kernel page tables.
                if unsafe { kpi::pmap_kextract(page) } == 0 {
                    return Err(AccessFault::BadAddress);
                }
            }
            crate::nofault::load(addr, buf, false).map_err(|_| AccessFault::BadAddress)
        }

        fn fault_checked_user_load(&self, addr: u64, buf: &mut [u8]) -> Result<(), AccessFault> {
            if !crate::nofault::is_user_range(TARGET_ARCH, addr, buf.len()) {
                return Err(AccessFault::BadAddress);
            }
            crate::nofault::load(addr, buf, true).map_err(|_| AccessFault::BadAddress)
        }

        fn copyin(&self, uaddr: u64, buf: &mut [u8]) -> Result<(), Errno> {
            // SAFETY: copyin(9) validates the user range and reports faults
            // as EFAULT; buf is a valid kernel buffer of buf.len() bytes.
            errno_of_copy(unsafe {
                kpi::copyin(
                    uaddr as usize as *const c_void,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            })
        }

        fn copyout(&self, buf: &[u8], uaddr: u64) -> Result<(), Errno> {
            // SAFETY: copyout(9) validates the user range; buf is valid.
            errno_of_copy(unsafe {
                kpi::copyout(
                    buf.as_ptr().cast(),
                    uaddr as usize as *mut c_void,
                    buf.len(),
                )
            })
        }

        fn xcall(&self, cpu: Option<usize>, func: fn(usize), arg: usize) {
            let request = XcallRequest {
                target: cpu,
                func,
                arg,
            };
            // SAFETY: smp_rendezvous(9) runs xcall_action on every CPU and
            // returns only after all have finished, so `request` outlives
            // every use; the no-barrier callbacks are the kernel's own.
            unsafe {
                kpi::smp_rendezvous(
                    Some(kpi::smp_no_rendezvous_barrier),
                    Some(xcall_action),
                    Some(kpi::smp_no_rendezvous_barrier),
                    &request as *const XcallRequest as *mut c_void,
                )
            }
        }

        fn current_thread(&self) -> ThreadIdentity {
            ThreadIdentity {
                // SAFETY: reads curthread from this CPU's struct pcpu.
                curthread: unsafe { kpi::rdtrace_shim_curthread() as u64 },
                ..ThreadIdentity::default()
            }
        }

        fn current_execname(&self, buf: &mut [u8]) {
            buf.fill(0);
        }

        /// Walks the kernel frame-pointer chain (the kernel targets keep
        /// frame pointers: `frame-pointer: always`) from this frame.
        #[inline(never)]
        fn kernel_stack(&self, pcs: &mut [u64], aframes: u32) -> usize {
            let fp = stack::current_frame_pointer();
            let mark = stack::entry_mark(self.cpu_id());
            let mut sink = stack::Collector::new(mark, aframes, pcs);
            let mut frames = KernelFrames {
                load: |addr: u64| {
                    let mut b = [0u8; 8];
                    self.fault_checked_load(addr, &mut b)
                        .ok()
                        .map(|()| u64::from_ne_bytes(b))
                },
                low: fp,
                floor: kernel_address_floor(TARGET_ARCH),
            };
            stack::walk_frame_pointers(
                &mut frames,
                stack::FrameLayout::native(),
                fp,
                KERNEL_STACK_SPAN,
                &mut sink,
            )
        }

        /// The first consumer open learns where `td_frame` is (the opener
        /// is a user thread inside open(2)); later opens retry until found.
        fn consumer_opening(&self) {
            if td_frame_offset().is_none() && crate::nofault::available() {
                self.find_td_frame();
            }
        }

        /// `ustack()`: the trap frame through `curthread->td_frame`, then
        /// the user frame-pointer chain through the fault-checked user load.
        /// Records nothing while the `td_frame` offset is unknown.
        fn user_stack(&self, pcs: &mut [u64]) -> usize {
            let Some(td_frame) = td_frame_offset() else {
                return 0;
            };
            let kload = |addr: u64| {
                let mut b = [0u8; 8];
                self.fault_checked_load(addr, &mut b)
                    .ok()
                    .map(|()| u64::from_ne_bytes(b))
            };
            // SAFETY: reads curthread from this CPU's struct pcpu.
            let td = unsafe { kpi::rdtrace_shim_curthread() as u64 };
            if td == 0 {
                return 0;
            }
            let Some(trapframe) = kload(td.wrapping_add(td_frame)) else {
                return 0;
            };
            let mut users = UserFrames {
                load: |addr: u64| {
                    let mut b = [0u8; 8];
                    self.fault_checked_user_load(addr, &mut b)
                        .ok()
                        .map(|()| u64::from_ne_bytes(b))
                },
                limit: crate::nofault::user_address_limit(TARGET_ARCH),
            };
            user_stack_from_trapframe(
                kload,
                &mut users,
                TrapFrameLayout::native(),
                rdtrace_framework::stack::FrameLayout::native(),
                trapframe,
                pcs,
            )
        }

        fn log(&self, message: &str) {
            crate::console::console(format_args!("{message}"));
        }

        fn panicking(&self) -> bool {
            // SAFETY: panicstr is a kernel global pointer, set once on panic.
            !unsafe { core::ptr::read_volatile(core::ptr::addr_of!(kpi::panicstr)) }.is_null()
        }
    }

    /// One periodic timer: a callout that re-arms itself after each call.
    struct Timer {
        callout: kpi::callout,
        interval: i64,
        cpu: i32,
        func: fn(usize),
        arg: usize,
        stopping: AtomicBool,
    }

    fn arm(timer: *mut Timer) {
        // SAFETY: timer is a live Box<Timer> owned by the timer table until
        // timer_destroy drains the callout; callout_reset_sbt_on only links
        // the callout into the kernel's wheel.
        unsafe {
            kpi::callout_reset_sbt_on(
                &mut (*timer).callout,
                (*timer).interval,
                0,
                Some(timer_fired),
                timer as *mut c_void,
                (*timer).cpu,
                kpi::C_DIRECT_EXEC as i32,
            );
        }
    }

    extern "C" fn timer_fired(arg: *mut c_void) {
        let timer = arg as *mut Timer;
        // SAFETY: the callout's argument is its own Timer, alive until drained.
        let (func, value, stopping) = unsafe { ((*timer).func, (*timer).arg, &(*timer).stopping) };
        func(value);
        if !stopping.load(Ordering::Acquire) {
            arm(timer);
        }
    }

    impl PlatformTimers for FreeBsdPlatform {
        fn timer_create(
            &self,
            cpu: Option<usize>,
            interval_ns: u64,
            func: fn(usize),
            arg: usize,
        ) -> Option<TimerId> {
            let cpu = match cpu {
                Some(cpu) if cpu < self.cpu_count() => i32::try_from(cpu).ok()?,
                Some(_) => return None,
                None => -1,
            };
            let timer = Box::into_raw(Box::new(Timer {
                callout: kpi::callout::default(),
                interval: ns_to_sbt(interval_ns),
                cpu,
                func,
                arg,
                stopping: AtomicBool::new(false),
            }));
            // SAFETY: initialises the callout inside the (pinned) boxed Timer;
            // mpsafe = 1: the handler takes no Giant.
            unsafe { kpi::callout_init(&mut (*timer).callout, 1) };
            arm(timer);
            Some(TimerId(timer as usize))
        }

        fn timer_destroy(&self, id: TimerId) {
            let timer = id.0 as *mut Timer;
            if timer.is_null() {
                return;
            }
            // SAFETY: id came from timer_create and is destroyed once. After
            // `stopping` is set a handler may still re-arm once (it read the
            // flag before); the first drain waits for it, the second cancels
            // that last arming, then nothing references the Timer.
            unsafe {
                (*timer).stopping.store(true, Ordering::Release);
                kpi::rdtrace_shim_callout_drain(&mut (*timer).callout);
                kpi::rdtrace_shim_callout_drain(&mut (*timer).callout);
                drop(Box::from_raw(timer));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bintime_conversion() {
        assert_eq!(bintime_to_ns(0, 0), 0);
        assert_eq!(bintime_to_ns(2, 0), 2_000_000_000);
        assert_eq!(bintime_to_ns(1, 1 << 63), 1_500_000_000);
        assert_eq!(bintime_to_ns(-1, 5), 0);
        assert_eq!(bintime_to_ns(i64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn timespec_conversion() {
        assert_eq!(timespec_to_ns(3, 25), 3_000_000_025);
        assert_eq!(timespec_to_ns(-3, 25), 0);
    }

    #[test]
    fn sbt_conversion() {
        assert_eq!(ns_to_sbt(1_000_000_000), 1 << 32);
        assert_eq!(ns_to_sbt(500_000_000), 1 << 31);
        assert_eq!(ns_to_sbt(0), 1);
        assert_eq!(ns_to_sbt(u64::MAX), i64::MAX);
        // 1 ms is 2^32/1000 rounded down.
        assert_eq!(ns_to_sbt(1_000_000), 4_294_967);
    }

    #[test]
    fn page_walk() {
        let pages: Vec<u64> = pages_of(0x1ff0, 0x20).unwrap().collect();
        assert_eq!(pages, vec![0x1000, 0x2000]);
        let pages: Vec<u64> = pages_of(0x3000, 1).unwrap().collect();
        assert_eq!(pages, vec![0x3000]);
        assert_eq!(pages_of(0x3000, 0).unwrap().count(), 0);
        assert!(pages_of(u64::MAX - 2, 8).is_none());
    }

    #[test]
    fn kernel_floor_per_arch() {
        assert_eq!(kernel_address_floor("x86_64"), 0xffff_8000_0000_0000);
        assert_eq!(kernel_address_floor("aarch64"), 0xffff_0000_0000_0000);
        assert_eq!(kernel_address_floor("riscv64"), 0xffff_8000_0000_0000);
    }

    #[test]
    fn cpuid_offset_choice() {
        // A fake 15.x layout: cpuid at 60, something else at 52.
        let read = |cpu: u32, offset: u32| match offset {
            60 => Some(Some(cpu)),
            52 => Some(Some(0x1234_5678)),
            _ => None,
        };
        assert_eq!(choose_cpuid_offset(&[52, 60], 3, read), Some(60));
        // CPU 2 absent (hole in the CPU ids) is fine.
        let with_hole = |cpu: u32, offset: u32| {
            if cpu == 2 {
                Some(None)
            } else if offset == 52 {
                Some(Some(cpu))
            } else {
                Some(Some(99))
            }
        };
        assert_eq!(choose_cpuid_offset(&[60, 52], 3, with_hole), Some(52));
        // Nothing matches: refuse.
        assert_eq!(
            choose_cpuid_offset(&[60, 52], 1, |_, _| Some(Some(7))),
            None
        );
        // No CPU present at all: refuse.
        assert_eq!(choose_cpuid_offset(&[60], 1, |_, _| Some(None)), None);
    }

    /// A synthetic user stack for `user_stack_from_trapframe`: a trap frame
    /// in kernel memory and a frame-pointer chain in user memory.
    fn user_walk(
        tf: TrapFrameLayout,
        layout: rdtrace_framework::stack::FrameLayout,
        user_words: &[(u64, u64)],
        pc: u64,
        fp: u64,
        out: &mut [u64],
    ) -> usize {
        let trapframe = 0xffff_fe00_0020_0000u64;
        let kload = |a: u64| {
            if a == trapframe + tf.pc {
                Some(pc)
            } else if a == trapframe + tf.fp {
                Some(fp)
            } else {
                None
            }
        };
        let mut users = UserFrames {
            load: |a: u64| user_words.iter().find(|w| w.0 == a).map(|w| w.1),
            limit: 0x0000_8000_0000_0000,
        };
        user_stack_from_trapframe(kload, &mut users, tf, layout, trapframe, out)
    }

    #[test]
    fn user_stack_starts_at_the_trapped_pc_and_follows_the_chain() {
        use rdtrace_framework::stack::FrameLayout;
        let s = 0x7fff_ffff_d000u64;
        for (tf, layout) in [
            (TrapFrameLayout::AMD64, FrameLayout::X86_64),
            (TrapFrameLayout::ARM64, FrameLayout::AARCH64),
            (TrapFrameLayout::RISCV64, FrameLayout::RISCV64),
        ] {
            let word = |fp: u64, off: i64| fp.wrapping_add_signed(off);
            // Two user frames, the second ending the chain with a 0 link.
            let words = [
                (word(s, layout.return_pc), 0x40_1100),
                (word(s, layout.saved_fp), s + 0x100),
                (word(s + 0x100, layout.return_pc), 0x40_2200),
                (word(s + 0x100, layout.saved_fp), 0),
            ];
            let mut out = [0u64; 8];
            let n = user_walk(tf, layout, &words, 0x40_0010, s, &mut out);
            assert_eq!(n, 3, "{tf:?}");
            assert_eq!(&out[..3], &[0x40_0010, 0x40_1100, 0x40_2200], "{tf:?}");
            // Counting only (ustackdepth).
            assert_eq!(user_walk(tf, layout, &words, 0x40_0010, s, &mut []), 3);
            // A one-slot buffer holds just the trapped PC (ucaller needs 2).
            let mut one = [0u64; 1];
            assert_eq!(user_walk(tf, layout, &words, 0x40_0010, s, &mut one), 1);
        }
    }

    /// A synthetic thread at `td` whose word at `off` points to a trap frame
    /// on the kernel stack above `low`, plus that frame's words.
    fn thread_with_frame(
        td: u64,
        low: u64,
        fields: &[(u64, u64)],
        frame: &[(u64, u64)],
    ) -> Vec<(u64, u64)> {
        let tf = low + 0x3000;
        let mut w: Vec<(u64, u64)> = fields
            .iter()
            .map(|&(off, v)| (td + off, if v == 0 { tf } else { v }))
            .collect();
        w.extend(frame.iter().map(|&(off, v)| (tf + off, v)));
        w
    }

    #[test]
    fn td_frame_is_found_only_unambiguously_at_a_user_trap_frame() {
        let td = 0xffff_f800_0123_4000u64;
        let low = 0xffff_fe00_0040_0000u64;
        let limit = 0x0000_8000_0000_0000u64;
        let find = |arch: &str, words: &[(u64, u64)]| {
            find_td_frame_offset(
                arch,
                td,
                low,
                |a| words.iter().find(|w| w.0 == a).map(|w| w.1),
                limit,
            )
        };
        // amd64: rip, cs (0x43: RPL 3), rsp, ss (0x3b).
        let amd64 = [
            (152, 0x40_1000),
            (160, 0x43),
            (176, 0x7fff_f000),
            (184, 0x3b),
        ];
        // Other fields: a kernel pointer, a pointer below the walker's
        // frame, and td_frame (0 = "the trap frame") at 0x3c8.
        let fields = [(0x10, td), (0x18, low - 0x100), (0x3c8, 0)];
        let w = thread_with_frame(td, low, &fields, &amd64);
        assert_eq!(find("x86_64", &w), Some(0x3c8));
        // A kernel-mode frame (cs RPL 0) is not td_frame.
        let kernel = [
            (152, 0x40_1000),
            (160, 0x20),
            (176, 0x7fff_f000),
            (184, 0x28),
        ];
        assert_eq!(
            find("x86_64", &thread_with_frame(td, low, &fields, &kernel)),
            None
        );
        // Two candidates: ambiguous, so no answer.
        let twice = [(0x3c8, 0), (0x400, 0)];
        assert_eq!(
            find("x86_64", &thread_with_frame(td, low, &twice, &amd64)),
            None
        );
        // arm64: sp, elr, spsr EL0t; riscv64: sp, sepc, sstatus with SPP 0.
        let arm64 = [(0, 0x7fff_f000), (16, 0x40_1000), (24, 0x6000_0000)];
        let w = thread_with_frame(td, low, &fields, &arm64);
        assert_eq!(find("aarch64", &w), Some(0x3c8));
        let el1 = [(0, 0x7fff_f000), (16, 0x40_1000), (24, 0x6000_0005)];
        assert_eq!(
            find("aarch64", &thread_with_frame(td, low, &fields, &el1)),
            None
        );
        let riscv = [(8, 0x7fff_f000), (248, 0x40_1000), (256, 0x2_0000_0020)];
        let w = thread_with_frame(td, low, &fields, &riscv);
        assert_eq!(find("riscv64", &w), Some(0x3c8));
        let smode = [(8, 0x7fff_f000), (248, 0x40_1000), (256, 0x2_0000_0120)];
        assert_eq!(
            find("riscv64", &thread_with_frame(td, low, &fields, &smode)),
            None
        );
        // Nothing readable: nothing found.
        assert_eq!(find("x86_64", &[]), None);
    }

    #[test]
    fn user_stack_refuses_kernel_pcs_and_bad_frames() {
        use rdtrace_framework::stack::FrameLayout;
        let (tf, layout) = (TrapFrameLayout::AMD64, FrameLayout::X86_64);
        let mut out = [0u64; 4];
        // A kernel PC in the trap frame: not a user trap, nothing recorded.
        assert_eq!(
            user_walk(
                tf,
                layout,
                &[],
                0xffff_ffff_8010_0000,
                0x7000_0000,
                &mut out
            ),
            0
        );
        // A frameless program (rbp 0): only the trapped PC.
        assert_eq!(user_walk(tf, layout, &[], 0x40_0010, 0, &mut out), 1);
        // An unreadable user frame ends the walk after the trapped PC.
        assert_eq!(
            user_walk(tf, layout, &[], 0x40_0010, 0x7fff_0000, &mut out),
            1
        );
        // A chain that points into the kernel stops there.
        let s = 0x7fff_ffff_d000u64;
        let words = [(s + 8, 0x40_1100), (s, 0xffff_fe00_0000_0000)];
        assert_eq!(user_walk(tf, layout, &words, 0x40_0010, s, &mut out), 2);
        // The trapframe field offsets are those of struct trapframe.
        assert_eq!(
            TrapFrameLayout::AMD64,
            TrapFrameLayout {
                pc: 19 * 8,
                fp: 8 * 8
            }
        );
        assert_eq!(TrapFrameLayout::ARM64.fp, 6 * 8 + 29 * 8);
        assert_eq!(
            TrapFrameLayout::RISCV64,
            TrapFrameLayout {
                pc: 31 * 8,
                fp: 11 * 8
            }
        );
    }

    #[test]
    fn kernel_frames_walk_stops_outside_the_kernel_stack() {
        use rdtrace_framework::stack::{walk_frame_pointers, Collector, FrameLayout};
        let floor = kernel_address_floor("x86_64");
        let base = 0xffff_fe00_0010_0000u64;
        // Three frames, then a link to a user address (the trap frame's rbp).
        let words = [
            (base, base + 0x40),
            (base + 8, 0xffff_ffff_8010_0000),
            (base + 0x40, base + 0x80),
            (base + 0x48, 0xffff_ffff_8020_0000),
            (base + 0x80, 0x7fff_ffff_e000),
            (base + 0x88, 0xffff_ffff_8030_0000),
        ];
        let mut loads = 0;
        let mut frames = KernelFrames {
            load: |a: u64| {
                loads += 1;
                words.iter().find(|w| w.0 == a).map(|w| w.1)
            },
            low: base,
            floor,
        };
        let mut out = [0u64; 8];
        let mut c = Collector::new(0, 0, &mut out);
        let n = walk_frame_pointers(
            &mut frames,
            FrameLayout::X86_64,
            base,
            KERNEL_STACK_SPAN,
            &mut c,
        );
        assert_eq!(n, 3);
        assert_eq!(
            &out[..3],
            &[
                0xffff_ffff_8010_0000,
                0xffff_ffff_8020_0000,
                0xffff_ffff_8030_0000
            ]
        );
        assert!(loads <= 6);
        // A user-space return address ends the walk.
        let mut frames = KernelFrames {
            load: |a: u64| {
                if a == base + 8 {
                    Some(0x40_1000)
                } else {
                    Some(base + 0x40)
                }
            },
            low: base,
            floor,
        };
        let mut c = Collector::new(0, 0, &mut out);
        assert_eq!(
            walk_frame_pointers(
                &mut frames,
                FrameLayout::X86_64,
                base,
                KERNEL_STACK_SPAN,
                &mut c
            ),
            0
        );
    }
}
