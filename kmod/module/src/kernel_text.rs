//! Writing kernel instructions for fbt and sdt: the FreeBSD implementation
//! of `rdtrace_providers::text::TextWriter`.
//!
//! Every write happens inside `smp_rendezvous` (all CPUs stopped in the
//! rendezvous with interrupts off, barriers before and after the action),
//! done by exactly one CPU, so no CPU executes a half-written instruction:
//! * amd64: kernel text is mapped read-only; the writer clears CR0.WP for
//!   the copy and puts the old CR0 back (what FreeBSD's fbt and sdt do);
//!   x86 keeps instruction fetch coherent with stores, and every other CPU
//!   leaves the rendezvous through a serialising return from interrupt.
//! * riscv64: kernel text is writable (FreeBSD's fbt stores directly); the
//!   writer stores, then every CPU runs `fence.i` in the teardown.
//! * arm64: the writer stores through a writable alias of the text page
//!   (`arm64_get_writable_addr`, as FreeBSD's fbt/sdt/kinst do), then
//!   `arm64_icache_sync_range` (clean D-cache, invalidate I-cache,
//!   broadcast); every CPU runs `isb` in the teardown. A page with no
//!   writable alias fails the write (EFAULT).
//!
//! Reads are plain loads of mapped kernel text. Not probe context.

/// The most bytes one write replaces (a 5-byte jump is the largest patch).
pub const MAX_PATCH_BYTES: usize = 8;

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::MAX_PATCH_BYTES;
    use core::ffi::c_void;
    use core::sync::atomic::{AtomicBool, Ordering};

    use rdtrace_ffi::kpi;
    use rdtrace_framework::platform::Errno;
    use rdtrace_providers::text::TextWriter;

    /// The kernel's text.
    pub struct KernelText;

    /// The one instance the providers use.
    pub static KERNEL_TEXT: KernelText = KernelText;

    /// One write, shared by every CPU of the rendezvous.
    struct Patch {
        addr: u64,
        bytes: [u8; MAX_PATCH_BYTES],
        len: usize,
        /// Set by the CPU that does the write.
        claimed: AtomicBool,
    }

    #[cfg(target_arch = "x86_64")]
    fn write_bytes(patch: &Patch) -> bool {
        const CR0_WP: u64 = 1 << 16;
        let cr0: u64;
        // SAFETY: reading CR0 has no side effects; we run in the kernel
        // with interrupts off (rendezvous action).
        unsafe { core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack)) };
        // SAFETY: clearing WP lets ring 0 write read-only pages; only this
        // CPU runs (the others wait in the rendezvous) and WP is restored
        // right after the copy.
        unsafe {
            core::arch::asm!("mov cr0, {}", in(reg) cr0 & !CR0_WP, options(nostack));
            copy(patch);
            core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
        }
        true
    }

    #[cfg(target_arch = "riscv64")]
    fn write_bytes(patch: &Patch) -> bool {
        // SAFETY: FreeBSD/riscv kernel text is writable; the other CPUs
        // wait in the rendezvous and fence.i in the teardown.
        unsafe { copy(patch) };
        true
    }

    #[cfg(target_arch = "aarch64")]
    fn write_bytes(patch: &Patch) -> bool {
        let mut alias: *mut c_void = core::ptr::null_mut();
        // SAFETY: asks the kernel for a writable mapping of the text byte
        // at patch.addr; `alias` is a valid out-parameter.
        if !unsafe { kpi::arm64_get_writable_addr(patch.addr as *mut c_void, &mut alias) }
            || alias.is_null()
        {
            return false;
        }
        // A patch is one aligned 4-byte instruction, never crossing a page.
        // SAFETY: `alias` maps the same bytes writable; the other CPUs wait
        // in the rendezvous.
        unsafe {
            copy_to(alias as u64, patch);
            kpi::arm64_icache_sync_range(patch.addr as *mut c_void, patch.len);
        }
        true
    }

    /// Copy the bytes with volatile byte stores to `dest` (no library call).
    ///
    /// # Safety
    /// `dest..+len` must be writable now and map the instruction at
    /// `patch.addr` the caller may replace.
    unsafe fn copy_to(dest: u64, patch: &Patch) {
        for (i, byte) in patch.bytes.iter().take(patch.len).enumerate() {
            // SAFETY: per the caller; `i < len`.
            unsafe { core::ptr::write_volatile((dest as *mut u8).add(i), *byte) };
        }
    }

    /// Copy the bytes in place.
    ///
    /// # Safety
    /// As for [`copy_to`] with `dest = patch.addr`.
    #[cfg(not(target_arch = "aarch64"))]
    unsafe fn copy(patch: &Patch) {
        // SAFETY: forwarded from the caller.
        unsafe { copy_to(patch.addr, patch) }
    }

    extern "C" fn patch_action(arg: *mut c_void) {
        // SAFETY: write_text keeps the Patch alive until the rendezvous ends.
        let patch = unsafe { &*(arg as *const Patch) };
        if patch
            .claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let _ = write_bytes(patch);
        }
    }

    extern "C" fn patch_teardown(_arg: *mut c_void) {
        #[cfg(target_arch = "riscv64")]
        // SAFETY: fence.i only orders this hart's instruction fetches.
        unsafe {
            core::arch::asm!("fence.i", options(nostack))
        };
        #[cfg(target_arch = "aarch64")]
        // SAFETY: isb only resynchronises this CPU's instruction stream.
        unsafe {
            core::arch::asm!("isb", options(nostack))
        };
    }

    impl TextWriter for KernelText {
        fn read_text(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
            for (i, byte) in buf.iter_mut().enumerate() {
                let at = addr.checked_add(i as u64).ok_or(Errno::EFAULT)?;
                // SAFETY: callers read the code of functions the kernel
                // linker reported (mapped text of a loaded file).
                *byte = unsafe { core::ptr::read_volatile(at as *const u8) };
            }
            Ok(())
        }

        unsafe fn write_text(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
            if bytes.is_empty() || bytes.len() > MAX_PATCH_BYTES {
                return Err(Errno::EINVAL);
            }
            let mut patch = Patch {
                addr,
                bytes: [0; MAX_PATCH_BYTES],
                len: bytes.len(),
                claimed: AtomicBool::new(false),
            };
            for (dst, src) in patch.bytes.iter_mut().zip(bytes) {
                *dst = *src;
            }
            // SAFETY: NULL setup/teardown-barrier arguments give barriers
            // before and after the action; `patch` outlives the call.
            unsafe {
                kpi::smp_rendezvous(
                    None,
                    Some(patch_action),
                    Some(patch_teardown),
                    &mut patch as *mut Patch as *mut c_void,
                )
            };
            if patch.claimed.load(Ordering::Acquire) {
                Ok(())
            } else {
                Err(Errno::EFAULT)
            }
        }
    }
}
