//! Kernel memory for Rust: the global allocator over malloc(9), and the
//! explicit allocation entry points the platform uses.
//!
//! * Alignment: malloc(9) returns memory aligned for any C object
//!   ([`MALLOC_NATURAL_ALIGN`]); larger alignments up to a page use
//!   `malloc_aligned`, and anything larger fails (returns null) rather than
//!   waste memory silently.
//! * Sleeping: `M_WAITOK` may sleep and never fails; `M_NOWAIT` never sleeps
//!   and may fail. The global allocator cannot see its caller's context, so it
//!   uses `M_NOWAIT` unless the current thread is inside a
//!   [`SleepableScope`], which the module's entry points that are known to run
//!   in a sleepable context (module load/unload, cdev open/ioctl/close) open
//!   around their work. Probe context never allocates at all.
//!
//! A thread inside a `static_arena::ArenaScope` allocates from that arena
//! instead (objects living as long as the module).
//!
//! All memory is charged to the kernel's `M_DEVBUF` malloc type: defining our
//! own type would tie the module to the release-specific `M_VERSION` and
//! `struct malloc_type` layout.
//!
//! The sleepable-thread registry is host-testable; the allocator itself is
//! kernel-only.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Alignment malloc(9) guarantees for every allocation on LP64 FreeBSD.
pub const MALLOC_NATURAL_ALIGN: usize = 16;

/// Largest alignment `malloc_aligned` supports (one page).
pub const MALLOC_MAX_ALIGN: usize = 4096;

/// How a request with `align` is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlignStrategy {
    /// Plain `malloc`.
    Plain,
    /// `malloc_aligned(size, align, ..)`.
    Aligned,
    /// Not supported: fail the allocation.
    Unsupported,
}

/// Choose how to allocate with alignment `align` (a power of two).
pub const fn align_strategy(align: usize) -> AlignStrategy {
    if align <= MALLOC_NATURAL_ALIGN {
        AlignStrategy::Plain
    } else if align <= MALLOC_MAX_ALIGN {
        AlignStrategy::Aligned
    } else {
        AlignStrategy::Unsupported
    }
}

/// Number of threads that can be inside a [`SleepableScope`] at once; more
/// concurrent callers simply allocate with `M_NOWAIT`.
const SLEEPABLE_SLOTS: usize = 64;

/// Threads (their `struct thread` address) currently known to be sleepable.
/// 0 marks a free slot.
pub struct SleepableThreads {
    slots: [AtomicUsize; SLEEPABLE_SLOTS],
}

impl SleepableThreads {
    pub const fn new() -> Self {
        SleepableThreads {
            slots: [const { AtomicUsize::new(0) }; SLEEPABLE_SLOTS],
        }
    }

    /// Record `thread` as sleepable. Returns the slot used, or `None` when all
    /// slots are busy (the thread then just allocates without sleeping).
    pub fn enter(&self, thread: usize) -> Option<usize> {
        if thread == 0 {
            return None;
        }
        self.slots.iter().position(|slot| {
            slot.compare_exchange(0, thread, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Forget the registration made by [`SleepableThreads::enter`].
    pub fn leave(&self, slot: usize) {
        if let Some(entry) = self.slots.get(slot) {
            entry.store(0, Ordering::Release);
        }
    }

    /// Whether `thread` is currently registered.
    pub fn contains(&self, thread: usize) -> bool {
        thread != 0
            && self
                .slots
                .iter()
                .any(|slot| slot.load(Ordering::Acquire) == thread)
    }
}

impl Default for SleepableThreads {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::*;
    use core::alloc::{GlobalAlloc, Layout};
    use core::ffi::c_void;
    use core::ptr::addr_of_mut;

    use rdtrace_ffi::kpi::{self, M_DEVBUF, M_NOWAIT, M_WAITOK, M_ZERO};

    static SLEEPABLE: SleepableThreads = SleepableThreads::new();

    /// While alive, global allocations made by this thread may sleep.
    ///
    /// Only open one where sleeping is allowed: no spin mutex held, interrupts
    /// enabled, not in a callout or probe context.
    pub struct SleepableScope {
        slot: Option<usize>,
    }

    impl SleepableScope {
        pub fn enter() -> SleepableScope {
            SleepableScope {
                slot: SLEEPABLE.enter(current_thread()),
            }
        }
    }

    impl Drop for SleepableScope {
        fn drop(&mut self) {
            if let Some(slot) = self.slot {
                SLEEPABLE.leave(slot);
            }
        }
    }

    fn current_thread() -> usize {
        // SAFETY: reads this CPU's curthread; always valid in kernel context.
        unsafe { kpi::rdtrace_shim_curthread() as usize }
    }

    fn devbuf() -> *mut kpi::malloc_type {
        // Only the address of the kernel's M_DEVBUF is taken, never a reference.
        addr_of_mut!(M_DEVBUF)
    }

    /// Allocate `size` bytes aligned to `align`; `zeroed` adds M_ZERO and
    /// `may_sleep` selects M_WAITOK over M_NOWAIT. Null on failure.
    pub fn kernel_alloc(size: usize, align: usize, zeroed: bool, may_sleep: bool) -> *mut u8 {
        let mut flags = if may_sleep { M_WAITOK } else { M_NOWAIT } as i32;
        if zeroed {
            flags |= M_ZERO as i32;
        }
        // malloc(9) with size 0 returns a minimal allocation; keep it non-null.
        let size = size.max(1);
        match align_strategy(align) {
            // SAFETY: malloc(9) with a valid type and flags; may sleep only if
            // M_WAITOK was chosen, which the caller vouched for.
            AlignStrategy::Plain => unsafe { kpi::malloc(size, devbuf(), flags) as *mut u8 },
            // SAFETY: as above; align is a power of two no larger than a page.
            AlignStrategy::Aligned => unsafe {
                kpi::malloc_aligned(size, align, devbuf(), flags) as *mut u8
            },
            AlignStrategy::Unsupported => core::ptr::null_mut(),
        }
    }

    /// Free memory from [`kernel_alloc`].
    ///
    /// # Safety
    /// `ptr` must come from `kernel_alloc` and not have been freed.
    pub unsafe fn kernel_free(ptr: *mut u8) {
        if !ptr.is_null() {
            // SAFETY: the caller guarantees ptr came from malloc(9)/malloc_aligned
            // with M_DEVBUF; free(9) accepts both.
            unsafe { kpi::free(ptr as *mut c_void, devbuf()) }
        }
    }

    /// The module's global allocator (see the module comment).
    pub struct KernelAllocator;

    /// An allocation from the static arena, when this thread is inside an
    /// `ArenaScope` and the arena has room.
    fn from_arena(layout: Layout, zeroed: bool) -> Option<*mut u8> {
        if !crate::static_arena::arena_owner(current_thread()) {
            return None;
        }
        let ptr = crate::static_arena::arena_alloc(layout.size(), layout.align(), zeroed);
        (!ptr.is_null()).then_some(ptr)
    }

    /// The calling thread (`curthread`), as the arena scope records it.
    pub fn this_thread() -> usize {
        current_thread()
    }

    fn may_sleep_here() -> bool {
        SLEEPABLE.contains(current_thread())
    }

    // SAFETY: allocations come from malloc(9), are at least layout.size()
    // bytes, are aligned as requested (or null), and stay valid until dealloc.
    unsafe impl GlobalAlloc for KernelAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if let Some(ptr) = from_arena(layout, false) {
                return ptr;
            }
            kernel_alloc(layout.size(), layout.align(), false, may_sleep_here())
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            if let Some(ptr) = from_arena(layout, true) {
                return ptr;
            }
            kernel_alloc(layout.size(), layout.align(), true, may_sleep_here())
        }

        unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
            if crate::static_arena::in_arena(ptr) {
                // Arena memory comes back as a whole at unload.
                return;
            }
            // SAFETY: GlobalAlloc's contract: ptr came from this allocator.
            unsafe { kernel_free(ptr) }
        }
    }

    #[global_allocator]
    static GLOBAL: KernelAllocator = KernelAllocator;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_strategy_boundaries() {
        assert_eq!(align_strategy(1), AlignStrategy::Plain);
        assert_eq!(align_strategy(16), AlignStrategy::Plain);
        assert_eq!(align_strategy(32), AlignStrategy::Aligned);
        assert_eq!(align_strategy(4096), AlignStrategy::Aligned);
        assert_eq!(align_strategy(8192), AlignStrategy::Unsupported);
    }

    #[test]
    fn sleepable_registry_tracks_threads() {
        let reg = SleepableThreads::new();
        assert!(!reg.contains(0x1000));
        let slot = reg.enter(0x1000).unwrap();
        assert!(reg.contains(0x1000));
        assert!(!reg.contains(0x2000));
        let other = reg.enter(0x2000).unwrap();
        assert_ne!(slot, other);
        reg.leave(slot);
        assert!(!reg.contains(0x1000));
        assert!(reg.contains(0x2000));
        assert_eq!(reg.enter(0), None);
        assert!(!reg.contains(0));
    }

    #[test]
    fn sleepable_registry_degrades_when_full() {
        let reg = SleepableThreads::new();
        for t in 1..=SLEEPABLE_SLOTS {
            assert!(reg.enter(t * 8).is_some());
        }
        assert_eq!(reg.enter(0xdead_0000), None);
        assert!(!reg.contains(0xdead_0000));
        reg.leave(SLEEPABLE_SLOTS + 5); // out of range: ignored
    }
}
