//! Root = `rdtrace_check_probe_entry`, which fires a probe through
//! `dtrace_probe()`. The panic handler and the global allocator call symbols
//! that exist nowhere: if anything reachable from the root can panic or
//! allocate, the final link (`--gc-sections --no-undefined`) fails naming
//! them.
#![no_std]

extern crate alloc;

extern "C" {
    fn rdtrace_probe_context_may_panic() -> !;
    fn rdtrace_probe_context_may_allocate() -> *mut u8;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: never defined; referencing it is the point (see crate doc).
    unsafe { rdtrace_probe_context_may_panic() }
}

struct NoAlloc;

// SAFETY: never actually used at run time; it only makes allocation a link error.
unsafe impl core::alloc::GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        // SAFETY: never defined; see crate doc.
        unsafe { rdtrace_probe_context_may_allocate() }
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {
        // SAFETY: as above.
        unsafe {
            rdtrace_probe_context_may_allocate();
        }
    }
}

#[global_allocator]
static ALLOC: NoAlloc = NoAlloc;

/// Makes the framework pointer opaque to the optimiser (without this root it
/// could prove `dtrace_probe` a no-op and the check would be vacuous).
///
/// # Safety
/// `p` is null or a live framework.
#[no_mangle]
pub unsafe extern "C" fn rdtrace_check_publish(p: *mut u8) {
    // SAFETY: caller contract.
    unsafe { rdtrace_framework::registry::publish_for_checks(p.cast()) };
}

/// The probe-context entry point under test.
#[no_mangle]
pub extern "C" fn rdtrace_check_probe_entry(id: u32, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) {
    rdtrace_framework::dtrace_probe(id, a0, a1, a2, a3, a4);
    #[cfg(feature = "inject-panic")]
    {
        let v = [a0, a1];
        let i = a2 as usize;
        // Deliberately panicking indexing for the negative control.
        core::hint::black_box(v[i]);
    }
}
