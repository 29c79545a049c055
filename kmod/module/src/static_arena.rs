//! Memory for objects that live as long as the module: a bump arena the
//! global allocator serves one thread from while it is inside an
//! [`ArenaScope`], freed as a whole when the module unloads.
//!
//! Why: some dependencies build process-lifetime tables on first use and
//! never free them (iced-x86's decoder tables are a `lazy_static`). In a
//! kernel module those would be reported as leaked by the malloc type at
//! every unload. Initialising them inside a scope puts them here; the
//! unload handler frees the chunks after everything that could use them is
//! gone (the statics pointing at them vanish with the module's memory).
//!
//! Deallocating a pointer inside a chunk is a no-op (memory comes back at
//! unload); everything else goes to malloc(9). The bump logic is plain and
//! host-tested; the kernel part holds the chunks. Not probe context.

/// Bytes of one chunk.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Most chunks the arena holds (allocations beyond fail over to malloc).
pub const MAX_CHUNKS: usize = 16;

/// Where the next allocation of `size` bytes aligned to `align` (a power of
/// two) goes in a chunk at `base` with `used` bytes taken: (offset, new used),
/// or `None` if it does not fit in `capacity`.
pub fn bump(
    base: usize,
    used: usize,
    capacity: usize,
    size: usize,
    align: usize,
) -> Option<(usize, usize)> {
    if align == 0 || !align.is_power_of_two() {
        return None;
    }
    let here = base.checked_add(used)?;
    let aligned = here.checked_add(align - 1)? & !(align - 1);
    let offset = aligned - base;
    let end = offset.checked_add(size.max(1))?;
    (end <= capacity).then_some((offset, end))
}

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::{bump, CHUNK_BYTES, MAX_CHUNKS};
    use core::sync::atomic::{AtomicUsize, Ordering};

    use crate::malloc::{kernel_alloc, kernel_free};

    /// Chunk base addresses (0 = unused); read without the lock by dealloc.
    static CHUNKS: [AtomicUsize; MAX_CHUNKS] = [const { AtomicUsize::new(0) }; MAX_CHUNKS];
    /// Bytes used in the last chunk, and which chunk that is.
    static STATE: spin::Mutex<(usize, usize)> = spin::Mutex::new((0, 0));
    /// The thread (curthread) whose allocations go to the arena, 0 = none.
    static OWNER: AtomicUsize = AtomicUsize::new(0);

    /// While alive, the current thread's global allocations come from the
    /// arena. Open only in sleepable context (new chunks use M_WAITOK).
    pub struct ArenaScope {
        _private: (),
    }

    impl ArenaScope {
        /// Enter the scope (None if another thread is inside one).
        pub fn enter(thread: usize) -> Option<ArenaScope> {
            OWNER
                .compare_exchange(0, thread, Ordering::AcqRel, Ordering::Acquire)
                .ok()
                .map(|_| ArenaScope { _private: () })
        }
    }

    impl Drop for ArenaScope {
        fn drop(&mut self) {
            OWNER.store(0, Ordering::Release);
        }
    }

    /// Whether `thread` allocates from the arena now.
    pub fn arena_owner(thread: usize) -> bool {
        thread != 0 && OWNER.load(Ordering::Acquire) == thread
    }

    /// Allocate from the arena (null if it is full).
    pub fn arena_alloc(size: usize, align: usize, zeroed: bool) -> *mut u8 {
        let mut state = STATE.lock();
        loop {
            let (index, used) = *state;
            let base = CHUNKS.get(index).map_or(0, |c| c.load(Ordering::Acquire));
            if base != 0 {
                if let Some((offset, end)) = bump(base, used, CHUNK_BYTES, size, align) {
                    *state = (index, end);
                    let ptr = (base + offset) as *mut u8;
                    if zeroed {
                        // SAFETY: [ptr, ptr + size) lies inside the chunk.
                        unsafe { core::ptr::write_bytes(ptr, 0, size) };
                    }
                    return ptr;
                }
            }
            // Current chunk full (or none yet): open the next one.
            let next = if base == 0 { index } else { index + 1 };
            let Some(slot) = CHUNKS.get(next) else {
                return core::ptr::null_mut();
            };
            if size > CHUNK_BYTES {
                return core::ptr::null_mut();
            }
            let chunk = kernel_alloc(CHUNK_BYTES, 16, false, true);
            if chunk.is_null() {
                return core::ptr::null_mut();
            }
            slot.store(chunk as usize, Ordering::Release);
            *state = (next, 0);
        }
    }

    /// Whether `ptr` lies in an arena chunk.
    pub fn in_arena(ptr: *mut u8) -> bool {
        let p = ptr as usize;
        CHUNKS.iter().any(|c| {
            let base = c.load(Ordering::Acquire);
            base != 0 && p >= base && p < base + CHUNK_BYTES
        })
    }

    /// Free every chunk (module unload, after everything using the arena's
    /// objects is gone).
    pub fn release_arena() {
        let mut state = STATE.lock();
        for chunk in &CHUNKS {
            let base = chunk.swap(0, Ordering::AcqRel);
            // SAFETY: chunks come from kernel_alloc and are freed once (swap).
            unsafe { kernel_free(base as *mut u8) };
        }
        *state = (0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_aligns_and_refuses_overflow() {
        assert_eq!(bump(0x1000, 0, 64, 10, 8), Some((0, 10)));
        assert_eq!(bump(0x1000, 10, 64, 8, 8), Some((16, 24)));
        assert_eq!(bump(0x1000, 24, 64, 40, 16), None, "does not fit");
        assert_eq!(bump(0x1000, 24, 64, 32, 16), Some((32, 64)));
        assert_eq!(
            bump(0x1000, 0, 64, 0, 1),
            Some((0, 1)),
            "zero-size takes a byte"
        );
        assert_eq!(
            bump(0x1000, 0, 64, 8, 3),
            None,
            "alignment must be a power of two"
        );
        assert_eq!(
            bump(usize::MAX - 4, 0, 64, 8, 8),
            None,
            "no address overflow"
        );
    }
}
