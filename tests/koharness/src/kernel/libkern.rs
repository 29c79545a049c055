//! libkern string and memory functions (`memcpy`, `memset`, `strlen` …).
//!
//! These have the C library's semantics in FreeBSD's kernel too, so the host
//! C library's implementations are bound directly (they may use SIMD
//! registers, which is harmless here: module code never keeps values in
//! them). Callable in probe context.

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("memcpy", libc::memcpy as *const () as usize),
        ("memmove", libc::memmove as *const () as usize),
        ("memset", libc::memset as *const () as usize),
        ("memcmp", libc::memcmp as *const () as usize),
        ("bcmp", libc::memcmp as *const () as usize),
        ("strlen", libc::strlen as *const () as usize),
        ("strnlen", libc::strnlen as *const () as usize),
        ("strcmp", libc::strcmp as *const () as usize),
        ("strncmp", libc::strncmp as *const () as usize),
        ("strchr", libc::strchr as *const () as usize),
        ("strrchr", libc::strrchr as *const () as usize),
        ("memchr", libc::memchr as *const () as usize),
        ("bzero", kpi_bzero as *const () as usize),
        ("bcopy", kpi_bcopy as *const () as usize),
        ("strlcpy", kpi_strlcpy as *const () as usize),
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

/// strlcpy(9): copy at most `size - 1` bytes, always NUL-terminate (when
/// `size` > 0), return the length of `src`.
extern "C" fn kpi_strlcpy(dst: *mut u8, src: *const u8, size: usize) -> usize {
    // SAFETY: `src` is a NUL-terminated string (strlcpy contract).
    let len = unsafe { libc::strlen(src.cast()) };
    if size > 0 {
        let n = len.min(size - 1);
        // SAFETY: `dst` has `size` writable bytes (strlcpy contract).
        unsafe {
            std::ptr::copy(src, dst, n);
            *dst.add(n) = 0;
        }
    }
    len
}
