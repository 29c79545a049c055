//! The arm64-only KPI rdtrace's arm64 build imports for writing kernel text
//! (`arm64_get_writable_addr`, `arm64_icache_sync_range`). The amd64 module
//! the harness loads never calls them; they exist so every symbol
//! sys-headers declares has an implementation with FreeBSD's contract.
//!
//! * `arm64_get_writable_addr(addr, &out)`: true with `out = addr` when the
//!   address is writable as it is (FreeBSD's first case); the harness has no
//!   second, writable mapping of read-only text, so for kernel or module
//!   text under write protection it answers false (FreeBSD's answer when no
//!   alias can be made).
//! * `arm64_icache_sync_range`: nothing to do on an x86 host, whose
//!   instruction fetch is coherent with stores.
//!
//! Not probe context.

extern "C" fn kpi_arm64_get_writable_addr(addr: u64, out: *mut u64) -> bool {
    if addr == 0 || out.is_null() {
        return false;
    }
    if super::trap::is_text(addr) && !super::trap::text_writable() {
        return false;
    }
    // SAFETY: out-parameter supplied by the caller (checked non-null).
    unsafe { *out = addr };
    true
}

extern "C" fn kpi_arm64_icache_sync_range(_addr: u64, _len: usize) {}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        (
            "arm64_get_writable_addr",
            kpi_arm64_get_writable_addr as *const () as usize,
        ),
        (
            "arm64_icache_sync_range",
            kpi_arm64_icache_sync_range as *const () as usize,
        ),
    ]
}
