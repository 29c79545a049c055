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
//! Probe context: `aggregate`, `aggregate_hashed` (the key's hash
//! precomputed by the ECB for constant keys), `hash`, `apply` —
//! allocation-free, panic-free. The hit path (the key in its home index
//! slot) is inline; probing further and inserting are out of line.

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

/// The index hash of (`id`, `key`). Public so ECB creation can precompute
/// it for keys that are the same at every firing. *Probe context.*
#[inline]
pub fn hash(id: u32, key: &[u8]) -> u64 {
    // Word-at-a-time multiply/rotate mixing (keys are tuples of 4/8-byte
    // aligned records). Long keys (strings are `strsize` bytes) go through
    // four independent lanes, 32 bytes a round, so the multiplies overlap
    // instead of forming one long dependency chain; the tail (at most 7
    // bytes) is folded in as one little-endian word.
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    #[inline(always)]
    fn mix(h: u64, w: u64) -> u64 {
        (h ^ w).wrapping_mul(K).rotate_left(29)
    }
    let word = |c: &[u8]| get_u64(c, 0).unwrap_or(0);
    let mut h: u64 = u64::from(id).wrapping_mul(K) ^ (key.len() as u64);
    let mut blocks = key.chunks_exact(32);
    let mut lanes = [h, h ^ 1, h ^ 2, h ^ 3];
    let mut any_block = false;
    for b in &mut blocks {
        any_block = true;
        for (i, lane) in lanes.iter_mut().enumerate() {
            // The multiply depends only on the input word, so a lane's
            // chain per round is one rotate and one xor.
            let w = b.get(i * 8..).map_or(0, word).wrapping_mul(K);
            *lane = lane.rotate_left(23) ^ w;
        }
    }
    if any_block {
        h = lanes.iter().fold(0u64, |acc, &l| mix(acc, l));
    }
    let mut chunks = blocks.remainder().chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, word(c));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        crate::bytes::copy_prefix(&mut w, rest);
        h = mix(h, u64::from_ne_bytes(w));
    }
    h ^ (h >> 32)
}

/// Byte equality of two keys, a word at a time (keys are short; this
/// avoids a `memcmp` call per lookup). *Probe context.*
#[inline]
fn key_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 32 {
        // Long keys (strings): the library compare is vectorised.
        return a == b;
    }
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        if get_u64(x, 0) != get_u64(y, 0) {
            return false;
        }
    }
    let (ra, rb) = (ca.remainder(), cb.remainder());
    // Tuple keys are 4-byte multiples: the tail is usually one u32.
    if ra.len() == 4 {
        return get_u32(ra, 0) == get_u32(rb, 0);
    }
    ra.iter().zip(rb).all(|(x, y)| x == y)
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

#[inline]
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
            // FreeBSD's dtrace_aggregate_lquantize works on the value
            // truncated to 32 bits (`int32_t val = (int32_t)nval`), so
            // 2^32 + 5 lands in 5's bucket and INT64_MAX (low word -1) in
            // -1's. The level is computed in 64 bits, so `val - base` cannot
            // overflow (in C it can; see the lquantize_extremes test).
            let v = i64::from(expr as u32 as i32);
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
    #[inline]
    pub unsafe fn aggregate(&self, spec: &AggSpec, key: &[u8], expr: u64, arg: u64) {
        let key = key.get(..spec.key_len).unwrap_or(key);
        // SAFETY: caller contract, passed on.
        unsafe { self.aggregate_hashed(spec, key, hash(spec.id, key), expr, arg) }
    }

    /// [`AggBuffer::aggregate`] with the key's [`hash`] already known (ECBs
    /// precompute it for keys that never change). `key` must be exactly
    /// `spec.key_len` bytes and `key_hash` must be `hash(spec.id, key)`: a
    /// wrong hash only makes the lookup miss (a duplicate entry), never an
    /// out-of-bounds access. *Probe context.*
    ///
    /// # Safety
    /// Probe context on this buffer's CPU.
    #[inline(always)]
    pub unsafe fn aggregate_hashed(
        &self,
        spec: &AggSpec,
        key: &[u8],
        key_hash: u64,
        expr: u64,
        arg: u64,
    ) {
        // SAFETY: caller contract (per-CPU exclusion).
        let h = unsafe { &mut (*self.halves.get()).live };
        // Fast path: the key sits in its home slot (no collision), the
        // usual case for the few keys a hot probe aggregates on.
        let home = (key_hash as usize) & h.index.len().wrapping_sub(1);
        if let Some(&e) = h.index.get(home) {
            let off = (e as usize).wrapping_sub(1);
            if e != 0 && Self::hit(h, off, spec, key, expr, arg) {
                return;
            }
        }
        self.aggregate_probe(h, home, spec, key, expr, arg);
    }

    /// If the entry at `off` is (`spec.id`, `key`), aggregates into it and
    /// returns true. Entries were written by `insert` with exactly this
    /// layout, so every range is in bounds; `get` keeps that assumption
    /// from ever becoming a panic. *Probe context.*
    #[inline(always)]
    fn hit(h: &mut Half, off: usize, spec: &AggSpec, key: &[u8], expr: u64, arg: u64) -> bool {
        let Some(entry) = h.data.get_mut(off..) else {
            return false;
        };
        let same_id = get_u32(entry, 0) == Some(spec.id);
        let same_key = entry
            .get(4..4usize.wrapping_add(key.len()))
            .is_some_and(|k| key_eq(k, key));
        if !(same_id && same_key) {
            return false;
        }
        let val_off = 4usize
            .wrapping_add(spec.key_len)
            .wrapping_add(spec.value_off);
        if let Some(val) = entry.get_mut(val_off..val_off.wrapping_add(spec.value_len)) {
            // count() and sum() inline; everything else out of line.
            match spec.kind {
                DTRACEAGG_COUNT => add_word(val, 0, 1),
                DTRACEAGG_SUM => add_word(val, 0, expr),
                _ => apply(spec.kind, val, expr, arg),
            }
        }
        true
    }

    /// The lookup beyond the home slot (linear probing), then the insert.
    /// *Probe context.*
    #[inline(never)]
    fn aggregate_probe(
        &self,
        h: &mut Half,
        home: usize,
        spec: &AggSpec,
        key: &[u8],
        expr: u64,
        arg: u64,
    ) {
        let mask = h.index.len().wrapping_sub(1);
        let mut slot = home;
        for _ in 0..h.index.len() {
            let Some(&e) = h.index.get(slot) else { break };
            if e == 0 {
                break;
            }
            if Self::hit(h, (e as usize).wrapping_sub(1), spec, key, expr, arg) {
                return;
            }
            slot = (slot.wrapping_add(1)) & mask;
        }
        self.insert(h, slot, spec, key, expr, arg);
    }

    /// A key seen for the first time in this half: appends its entry at
    /// index slot `slot` (the empty slot the lookup stopped at), or counts a
    /// drop when the data or the index is full. *Probe context.*
    #[cold]
    #[inline(never)]
    fn insert(&self, h: &mut Half, slot: usize, spec: &AggSpec, key: &[u8], expr: u64, arg: u64) {
        let entry_len = 4 + spec.key_len + spec.value_off + spec.value_len;
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
    fn quantize_extremes_match_freebsd() {
        // FreeBSD's dtrace_aggregate_quantize: negative v goes to the first
        // bucket i (0..62) with v <= -(2^(62-i)); v >= 0 to the bucket
        // before the first i (64..126) with v < 2^(i-64), else 126.
        fn freebsd(v: i64) -> usize {
            let val = |i: usize| -> i128 {
                match i.cmp(&63) {
                    core::cmp::Ordering::Less => -(1i128 << (62 - i)),
                    core::cmp::Ordering::Equal => 0,
                    core::cmp::Ordering::Greater => 1i128 << (i - 64),
                }
            };
            let v = i128::from(v);
            if v < 0 {
                (0..63).find(|&i| v <= val(i)).unwrap()
            } else {
                (64..127).find(|&i| v < val(i)).map_or(126, |i| i - 1)
            }
        }
        let mut probes = alloc::vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, 0, 1, -1];
        for k in 0..63 {
            let p = 1i64 << k;
            probes.extend([p, p - 1, p + 1, -p, -p + 1, -p - 1]);
        }
        for v in probes {
            assert_eq!(quantize_bucket(v), freebsd(v), "value {v}");
        }
        assert_eq!(quantize_bucket(i64::MIN), 0);
        assert_eq!(quantize_bucket(-(1i64 << 62)), 0);
        assert_eq!(quantize_bucket(-(1i64 << 62) + 1), 1);
        assert_eq!(quantize_bucket(1i64 << 62), 126);
        assert_eq!(quantize_bucket((1i64 << 62) - 1), 125);
    }

    /// The lquantize bucket index (value word index) `expr` lands in.
    fn lquantize_word(base: i32, step: u16, levels: u16, expr: u64) -> usize {
        let arg = (u64::from(step) << 48) | (u64::from(levels) << 32) | u64::from(base as u32);
        let mut l = alloc::vec![0u8; (usize::from(levels) + 3) * 8];
        put_u64(&mut l, 0, arg);
        apply(DTRACEAGG_LQUANTIZE, &mut l, expr, 1);
        let hits: Vec<usize> = (1..usize::from(levels) + 3)
            .filter(|&i| get_u64(&l, i * 8) == Some(1))
            .collect();
        assert_eq!(hits.len(), 1, "exactly one bucket");
        hits[0]
    }

    #[test]
    fn lquantize_extremes_match_freebsd() {
        // Word 1 = underflow, 2.. = levels, levels + 2 = overflow.
        // FreeBSD truncates the value to 32 bits first.
        assert_eq!(lquantize_word(0, 10, 10, i64::MAX as u64), 1); // low word -1
        assert_eq!(lquantize_word(0, 10, 10, i64::MIN as u64), 2); // low word 0
        assert_eq!(lquantize_word(0, 10, 10, (1u64 << 32) + 5), 2); // 5
        assert_eq!(lquantize_word(0, 10, 10, (1u64 << 32) + 99), 11); // 99
        assert_eq!(lquantize_word(0, 10, 10, 100), 12); // overflow
        assert_eq!(lquantize_word(0, 10, 10, (-1i64) as u64), 1);
        assert_eq!(lquantize_word(-50, 10, 10, (-50i64) as u64), 2);
        assert_eq!(lquantize_word(-50, 10, 10, (-51i64) as u64), 1);
        assert_eq!(lquantize_word(-50, 10, 10, 49), 11);
        assert_eq!(lquantize_word(-50, 10, 10, 50), 12);
        // val - base does not fit in 32 bits: the overflow bucket (C would
        // overflow the int32 subtraction here).
        assert_eq!(lquantize_word(-100, 1, 5, i32::MAX as u64), 7);
        assert_eq!(lquantize_word(i32::MIN, 1, 5, i32::MAX as u64), 7);
        assert_eq!(lquantize_word(i32::MAX - 1, 1, 5, i32::MAX as u64), 3);
        assert_eq!(lquantize_word(i32::MIN, 1, 5, i32::MIN as u32 as u64), 2);
    }

    #[test]
    fn precomputed_hash_finds_the_same_entry() {
        let b = AggBuffer::new(4096).unwrap();
        let spec = AggSpec {
            kind: DTRACEAGG_SUM,
            id: 7,
            initial: 0,
            key_len: 12,
            value_off: 0,
            value_len: 8,
        };
        let key = [0u8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        // SAFETY: single-threaded test owns the buffer.
        unsafe {
            b.aggregate(&spec, &key, 5, 1);
            b.aggregate_hashed(&spec, &key, hash(7, &key), 6, 1);
            b.switch(1);
        }
        // SAFETY: as above.
        let (data, drops, _) = unsafe { b.frozen() }.unwrap();
        assert_eq!(drops, 0);
        // One entry: id, 12 key bytes, the sum.
        assert_eq!(data.len(), 24);
        assert_eq!(get_u32(data, 0), Some(7));
        assert_eq!(&data[4..16], &key);
        assert_eq!(get_u64(data, 16), Some(11));
    }

    #[test]
    fn colliding_keys_stay_apart() {
        let b = AggBuffer::new(64 * 64).unwrap();
        let spec = AggSpec {
            kind: DTRACEAGG_COUNT,
            id: 1,
            initial: 0,
            key_len: 4,
            value_off: 0,
            value_len: 8,
        };
        // Two keys with the same home slot in a 64-slot index, and keys
        // that differ only in their last byte (the tail compare).
        let home = |k: &[u8]| hash(1, k) as usize & 63;
        let first = 0u32.to_ne_bytes();
        let other = (1u32..)
            .map(u32::to_ne_bytes)
            .find(|k| home(k) == home(&first))
            .unwrap();
        // SAFETY: single-threaded test owns the buffer.
        unsafe {
            for _ in 0..3 {
                b.aggregate(&spec, &first, 0, 1);
            }
            for _ in 0..2 {
                b.aggregate(&spec, &other, 0, 1);
            }
            b.switch(1);
        }
        // SAFETY: as above.
        let (data, _, _) = unsafe { b.frozen() }.unwrap();
        assert_eq!(data.len(), 32);
        assert_eq!((&data[4..8], get_u64(data, 8)), (&first[..], Some(3)));
        assert_eq!((&data[20..24], get_u64(data, 24)), (&other[..], Some(2)));
        assert!(key_eq(b"abcdefgh1234", b"abcdefgh1234"));
        assert!(!key_eq(b"abcdefgh1234", b"abcdefgh1235"));
        assert!(!key_eq(b"abcdefgh123", b"abcdefgh124"));
        assert!(!key_eq(b"abc", b"abcd"));
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
