//! Little helpers to read and write native-endian integers at byte offsets of
//! argument blocks, DOF images and buffers, without ever panicking.
//!
//! Probe context: yes (allocation-free, panic-free: out-of-range accesses
//! return `None`/`false`).

/// Copies `min(dst.len(), src.len())` bytes; never panics (unlike
/// `copy_from_slice`, whose length check the optimiser cannot always drop).
#[inline]
pub fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Reads a native-endian `u16` at `off`.
#[inline]
pub fn get_u16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_ne_bytes([*s.first()?, *s.get(1)?]))
}

/// Reads a native-endian `u32` at `off`.
#[inline]
pub fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    copy_prefix(&mut a, s);
    Some(u32::from_ne_bytes(a))
}

/// Reads a native-endian `i32` at `off`.
#[inline]
pub fn get_i32(b: &[u8], off: usize) -> Option<i32> {
    get_u32(b, off).map(|v| v as i32)
}

/// Reads a native-endian `u64` at `off`.
#[inline]
pub fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    copy_prefix(&mut a, s);
    Some(u64::from_ne_bytes(a))
}

/// Writes `v` at `off`; `false` if it does not fit.
#[inline]
pub fn put_u16(b: &mut [u8], off: usize, v: u16) -> bool {
    put_bytes(b, off, &v.to_ne_bytes())
}

/// Writes `v` at `off`; `false` if it does not fit.
#[inline]
pub fn put_u32(b: &mut [u8], off: usize, v: u32) -> bool {
    put_bytes(b, off, &v.to_ne_bytes())
}

/// Writes `v` at `off`; `false` if it does not fit.
#[inline]
pub fn put_i32(b: &mut [u8], off: usize, v: i32) -> bool {
    put_bytes(b, off, &v.to_ne_bytes())
}

/// Writes `v` at `off`; `false` if it does not fit.
#[inline]
pub fn put_u64(b: &mut [u8], off: usize, v: u64) -> bool {
    put_bytes(b, off, &v.to_ne_bytes())
}

/// Copies `src` to `off`; `false` (nothing written) if it does not fit.
#[inline]
pub fn put_bytes(b: &mut [u8], off: usize, src: &[u8]) -> bool {
    let Some(end) = off.checked_add(src.len()) else {
        return false;
    };
    match b.get_mut(off..end) {
        Some(d) => {
            copy_prefix(d, src);
            true
        }
        None => false,
    }
}

/// The NUL-terminated string stored in a fixed-size field (without the NUL);
/// the whole field if it has no NUL. Invalid UTF-8 yields `None`.
pub fn c_str_field(b: &[u8]) -> Option<&str> {
    let len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    core::str::from_utf8(b.get(..len)?).ok()
}

/// Stores `s` NUL-terminated in the fixed-size field `b`, truncating to
/// `b.len() - 1` bytes and zero-filling the rest.
pub fn set_c_str_field(b: &mut [u8], s: &str) {
    b.fill(0);
    let n = s.len().min(b.len().saturating_sub(1));
    if let (Some(d), Some(src)) = (b.get_mut(..n), s.as_bytes().get(..n)) {
        copy_prefix(d, src);
    }
}

/// Rounds `v` up to a multiple of `align` (a power of two); `None` on overflow.
#[inline]
pub fn align_up(v: usize, align: usize) -> Option<usize> {
    let mask = align.checked_sub(1)?;
    Some(v.checked_add(mask)? & !mask)
}
