//! Per-CPU aggregation buffers and the aggregating functions (count, sum,
//! min, max, avg, stddev with a 128-bit sum of squares, quantize, lquantize,
//! llquantize), keyed by the tuple bytes an ECB recorded.
//!
//! Layout handed to AGGSNAP (abi-facts §2.6): entries from offset 0, each
//! 8-aligned: the u32 aggregation id, the key bytes, the value words;
//! 4-byte fillers are zero. The hash index is kernel-private (a separate
//! array), never copied out.
//!
//! Ownership is the same as `buffer.rs`: the live half belongs to its CPU in
//! probe context; the switch runs as a cross-call on that CPU.
//!
//! Probe context: `aggregate` — allocation-free, panic-free.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::abi::*;
use crate::bytes::{get_u32, get_u64, put_u32, put_u64};
use crate::ecb::llquantize_bucket;
use crate::platform::Errno;

struct Half {
    data: Vec<u8>,
    used: usize,
    /// Open-addressing index: 0 = empty, else entry offset + 1.
    index: Vec<u32>,
    entries: usize,
}

impl Half {
    fn new(size: usize) -> Result<Half, Errno> {
        let data = crate::buffer::try_zeroed(size)?;
        // One index slot per 64 data bytes, between 64 and 1 Mi slots.
        let slots = (size / 64).clamp(64, 1 << 20).next_power_of_two();
        let mut index = Vec::new();
        index.try_reserve_exact(slots).map_err(|_| Errno::ENOMEM)?;
        index.resize(slots, 0);
        Ok(Half {
            data,
            used: 0,
            index,
            entries: 0,
        })
    }

    fn reset(&mut self) {
        self.used = 0;
        self.entries = 0;
        self.index.fill(0);
    }
}

struct Halves {
    live: Half,
    spare: Half,
    frozen_drops: u64,
    switched: u64,
    swapped: bool,
}

/// One CPU's aggregation buffer (cache-line aligned).
#[repr(align(128))]
pub struct AggBuffer {
    halves: UnsafeCell<Halves>,
    pub drops: AtomicU64,
}

// SAFETY: see module header (per-CPU exclusion); counters are atomic.
unsafe impl Sync for AggBuffer {}
// SAFETY: owns plain memory.
unsafe impl Send for AggBuffer {}

/// What the aggregating action needs to know (from its ECB).
#[derive(Clone, Copy, Debug)]
pub struct AggSpec {
    pub kind: u16,
    pub id: u32,
    pub initial: u64,
    /// Key bytes (from the aggregation id word + 4 up to the value).
    pub key_len: usize,
    /// Value size in bytes.
    pub value_len: usize,
    /// Padding between the key and the value.
    pub value_off: usize,
}

fn hash(id: u32, key: &[u8]) -> u64 {
    // Word-at-a-time multiply/rotate mixing: keys are tuples of 4/8-byte
    // aligned records, so this is both fast and well spread.
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = u64::from(id).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = get_u64(c, 0).unwrap_or(0);
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
    }
    h ^ (h >> 32)
}

/// Quantize bucket for `v` (127 buckets, zero at 63).
pub fn quantize_bucket(v: i64) -> usize {
    if v == 0 {
        63
    } else if v > 0 {
        64 + (63 - v.leading_zeros() as usize)
    } else {
        let m = v.unsigned_abs();
        let log = 63 - m.leading_zeros() as usize;
        62usize.saturating_sub(log)
    }
}

fn add_word(val: &mut [u8], idx: usize, delta: u64) {
    let off = idx * 8;
    let old = get_u64(val, off).unwrap_or(0);
    put_u64(val, off, old.wrapping_add(delta));
}

/// Applies aggregating function `kind` to the value words in `val`.
/// `expr` is the aggregated expression, `arg` the action's own value
/// (quantize increment etc.). *Probe context.*
pub fn apply(kind: u16, val: &mut [u8], expr: u64, arg: u64) {
    match kind {
        DTRACEAGG_COUNT => add_word(val, 0, 1),
        DTRACEAGG_SUM => add_word(val, 0, expr),
        DTRACEAGG_MIN if (expr as i64) < (get_u64(val, 0).unwrap_or(0) as i64) => {
            put_u64(val, 0, expr);
        }
        DTRACEAGG_MAX if (expr as i64) > (get_u64(val, 0).unwrap_or(0) as i64) => {
            put_u64(val, 0, expr);
        }
        DTRACEAGG_AVG => {
            add_word(val, 0, 1);
            add_word(val, 1, expr);
        }
        DTRACEAGG_STDDEV => {
            add_word(val, 0, 1);
            add_word(val, 1, expr);
            let sq = u128::from((expr as i64).unsigned_abs())
                .wrapping_mul(u128::from((expr as i64).unsigned_abs()));
            let lo = get_u64(val, 16).unwrap_or(0);
            let hi = get_u64(val, 24).unwrap_or(0);
            let cur = (u128::from(hi) << 64) | u128::from(lo);
            let sum = cur.wrapping_add(sq);
            put_u64(val, 16, sum as u64);
            put_u64(val, 24, (sum >> 64) as u64);
        }
        DTRACEAGG_QUANTIZE => add_word(val, quantize_bucket(expr as i64), arg),
        DTRACEAGG_LQUANTIZE => {
            let packed = get_u64(val, 0).unwrap_or(0);
            let step = i64::from((packed >> 48) as u16);
            let levels = i64::from((packed >> 32) as u16);
            let base = i64::from(packed as u32 as i32);
            let v = expr as i64;
            let idx = if v < base {
                1
            } else {
                let level = (v.saturating_sub(base)) / step.max(1);
                if level < levels {
                    level as usize + 2
                } else {
                    levels as usize + 2
                }
            };
            add_word(val, idx, arg);
        }
        DTRACEAGG_LLQUANTIZE => {
            let packed = get_u64(val, 0).unwrap_or(0);
            let b = llquantize_bucket(
                (packed >> 48) as u16,
                (packed >> 32) as u16,
                (packed >> 16) as u16,
                packed as u16,
                expr as i64,
            );
            add_word(val, b + 1, arg);
        }
        _ => {}
    }
}

impl AggBuffer {
    /// Two halves of `size` bytes each.
    pub fn new(size: usize) -> Result<AggBuffer, Errno> {
        Ok(AggBuffer {
            halves: UnsafeCell::new(Halves {
                live: Half::new(size)?,
                spare: Half::new(size)?,
                frozen_drops: 0,
                switched: 0,
                swapped: false,
            }),
            drops: AtomicU64::new(0),
        })
    }

    /// Finds or creates the entry for (`spec.id`, `key`) and aggregates into
    /// it. Counts a drop when the buffer is full. *Probe context.*
    ///
    /// # Safety
    /// Probe context on this buffer's CPU.
    pub unsafe fn aggregate(&self, spec: &AggSpec, key: &[u8], expr: u64, arg: u64) {
        // SAFETY: caller contract (per-CPU exclusion).
        let h = unsafe { &mut (*self.halves.get()).live };
        let key = key.get(..spec.key_len).unwrap_or(key);
        let mask = h.index.len().wrapping_sub(1);
        let mut slot = (hash(spec.id, key) as usize) & mask;
        let entry_len = 4 + spec.key_len + spec.value_off + spec.value_len;
        for _ in 0..h.index.len() {
            let Some(&e) = h.index.get(slot) else { break };
            if e == 0 {
                break;
            }
            let off = (e - 1) as usize;
            let same_id = get_u32(&h.data, off) == Some(spec.id);
            if same_id && h.data.get(off + 4..off + 4 + key.len()) == Some(key) {
                let vstart = off + 4 + spec.key_len + spec.value_off;
                if let Some(val) = h.data.get_mut(vstart..vstart + spec.value_len) {
                    apply(spec.kind, val, expr, arg);
                }
                return;
            }
            slot = (slot + 1) & mask;
        }
        // New entry: keep the index at most 3/4 full.
        let start = (h.used + 7) & !7;
        let end = start.saturating_add(entry_len);
        if end > h.data.len() || (h.entries + 1) * 4 > h.index.len() * 3 {
            self.drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(e) = h.data.get_mut(h.used..end) else {
            self.drops.fetch_add(1, Ordering::Relaxed);
            return;
        };
        e.fill(0);
        let off = start;
        put_u32(&mut h.data, off, spec.id);
        if let Some(k) = h.data.get_mut(off + 4..off + 4 + key.len()) {
            crate::bytes::copy_prefix(k, key);
        }
        let vstart = off + 4 + spec.key_len + spec.value_off;
        if let Some(val) = h.data.get_mut(vstart..vstart + spec.value_len) {
            put_u64(val, 0, spec.initial);
            apply(spec.kind, val, expr, arg);
        }
        if let Some(s) = h.index.get_mut(slot) {
            *s = off as u32 + 1;
        }
        h.entries += 1;
        h.used = (end + 7) & !7;
        if h.used > h.data.len() {
            h.used = end;
        }
    }

    /// The switch (cross-call on the owning CPU).
    ///
    /// # Safety
    /// Runs on the owning CPU (cross-call).
    pub unsafe fn switch(&self, now: u64) {
        // SAFETY: caller contract.
        let h = unsafe { &mut *self.halves.get() };
        core::mem::swap(&mut h.live, &mut h.spare);
        h.live.reset();
        h.frozen_drops = self.drops.swap(0, Ordering::Relaxed);
        h.switched = now;
        h.swapped = true;
    }

    /// After a switch: (data, drops, switch time); `None` if it did not happen.
    ///
    /// # Safety
    /// After `switch`, serialised by the framework lock.
    pub unsafe fn frozen(&self) -> Option<(&[u8], u64, u64)> {
        // SAFETY: caller contract; the spare half is not touched by probe context.
        let h = unsafe { &mut *self.halves.get() };
        if !h.swapped {
            return None;
        }
        h.swapped = false;
        Some((
            h.spare.data.get(..h.spare.used).unwrap_or(&[]),
            h.frozen_drops,
            h.switched,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_buckets() {
        assert_eq!(quantize_bucket(0), 63);
        assert_eq!(quantize_bucket(1), 64);
        assert_eq!(quantize_bucket(3), 65);
        assert_eq!(quantize_bucket(4), 66);
        assert_eq!(quantize_bucket(-1), 62);
        assert_eq!(quantize_bucket(-3), 61);
        assert_eq!(quantize_bucket(i64::MAX), 126);
        assert_eq!(quantize_bucket(i64::MIN), 0);
    }

    #[test]
    fn keyed_counts_and_drops() {
        let b = AggBuffer::new(64).unwrap();
        let spec = AggSpec {
            kind: DTRACEAGG_COUNT,
            id: 1,
            initial: 0,
            key_len: 4,
            value_off: 0,
            value_len: 8,
        };
        // SAFETY: single-threaded test owns the buffer.
        unsafe {
            b.aggregate(&spec, b"aaaa", 0, 1);
            b.aggregate(&spec, b"aaaa", 0, 1);
            b.aggregate(&spec, b"bbbb", 0, 1);
            b.aggregate(&spec, b"cccc", 0, 1);
            b.aggregate(&spec, b"dddd", 0, 1);
            b.aggregate(&spec, b"eeee", 0, 1);
            b.aggregate(&spec, b"dddd", 0, 1);
            b.switch(5);
        }
        // SAFETY: as above.
        let (data, drops, ts) = unsafe { b.frozen() }.unwrap();
        assert_eq!(ts, 5);
        // 16-byte entries: 64 bytes hold four; the fifth key is dropped.
        assert_eq!(data.len(), 64);
        assert_eq!(drops, 1);
        assert_eq!(get_u64(data, 8), Some(2));
        assert_eq!(&data[20..24], b"bbbb");
        assert_eq!(&data[52..56], b"dddd");
        assert_eq!(get_u64(data, 56), Some(2));
    }

    #[test]
    fn stddev_and_lquantize() {
        let mut v = [0u8; 32];
        apply(DTRACEAGG_STDDEV, &mut v, (-3i64) as u64, 0);
        apply(DTRACEAGG_STDDEV, &mut v, 5, 0);
        assert_eq!(get_u64(&v, 0), Some(2));
        assert_eq!(get_u64(&v, 8), Some(2));
        assert_eq!(get_u64(&v, 16), Some(34));
        let arg: u64 = (10u64 << 48) | (5u64 << 32);
        let mut l = [0u8; 64];
        put_u64(&mut l, 0, arg);
        apply(DTRACEAGG_LQUANTIZE, &mut l, (-1i64) as u64, 1);
        apply(DTRACEAGG_LQUANTIZE, &mut l, 25, 1);
        apply(DTRACEAGG_LQUANTIZE, &mut l, 1000, 1);
        assert_eq!(get_u64(&l, 8), Some(1));
        assert_eq!(get_u64(&l, 32), Some(1));
        assert_eq!(get_u64(&l, 56), Some(1));
    }
}
