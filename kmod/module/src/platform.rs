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
//!   [`KERNEL_STACK_SPAN`] above the walker. `ustack()`/`ucaller` are not
//!   implemented (they need the release-specific `td_frame` offset to reach
//!   the user trap frame) and record no PCs.
//! * `destructive_allowed` keeps the framework's default (allowed): the
//!   `security.bsd.allow_destructive_dtrace` tunable is not read yet.
//!
//! Timers are direct-execution callouts (`C_DIRECT_EXEC`): their callbacks
//! run in interrupt context and must not allocate, free, sleep or take a
//! sleepable lock; `timer_destroy` drains the callout and so may sleep.
//!
//! The unit conversions are plain functions tested on the host; everything
//! touching the kernel is compiled for the kernel target only.

use core::sync::atomic::{AtomicU32, Ordering};

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
                Some(offset) => {
                    PCPU_CPUID_OFFSET.store(offset, Ordering::Release);
                    Ok(())
                }
                None => Err(Errno(6)), // ENXIO
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

    /// This CPU's frame-pointer register (rbp / x29 / s0).
    #[inline(always)]
    fn current_frame_pointer() -> u64 {
        let fp: u64;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: reads a register; no memory access, no side effects.
        unsafe {
            core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: as above.
        unsafe {
            core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
        }
        #[cfg(target_arch = "riscv64")]
        // SAFETY: as above.
        unsafe {
            core::arch::asm!("mv {}, s0", out(reg) fp, options(nomem, nostack, preserves_flags));
        }
        fp
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
            use rdtrace_framework::stack;
            let fp = current_frame_pointer();
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
