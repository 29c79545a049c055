//! libkern string and memory functions (`memcpy`, `memset`, `strlen` …).
//!
//! These have the C library's semantics in FreeBSD's kernel too, so the host
//! C library's implementations are bound directly (they may use SIMD
//! registers, which is harmless here: module code never keeps values in
//! them). Callable in probe context.

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("memcpy", libc::memcpy as usize),
        ("memmove", libc::memmove as usize),
        ("memset", libc::memset as usize),
        ("memcmp", libc::memcmp as usize),
        ("bcmp", libc::memcmp as usize),
        ("strlen", libc::strlen as usize),
        ("strnlen", libc::strnlen as usize),
        ("strcmp", libc::strcmp as usize),
        ("strncmp", libc::strncmp as usize),
        ("strchr", libc::strchr as usize),
        ("strrchr", libc::strrchr as usize),
        ("memchr", libc::memchr as usize),
        ("bzero", kpi_bzero as usize),
        ("bcopy", kpi_bcopy as usize),
    ]
}

extern "C" fn kpi_bzero(dst: *mut u8, len: usize) {
    // SAFETY: the caller owns `len` writable bytes at `dst` (bzero(9) contract).
    unsafe { std::ptr::write_bytes(dst, 0, len) }
}

extern "C" fn kpi_bcopy(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: bcopy(9) contract: readable src, writable dst, overlap allowed.
    unsafe { std::ptr::copy(src, dst, len) }
}
