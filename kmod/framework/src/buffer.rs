//! Per-CPU principal (and speculative) trace buffers with the switch, ring and
//! fill policies of abi-facts §5.4.
//!
//! Ownership: the live half (`tomax`) of CPU *n*'s buffer is touched only by
//! probe context running on CPU *n* with interrupts disabled, or by a
//! cross-call executed on CPU *n* (the BUFSNAP switch) — the platform makes
//! those mutually exclusive. After a state is STOPPED (no ECB of it can record
//! any more) the ioctl side may read it directly. Counters that other CPUs
//! read are atomics.
//!
//! Probe context: `reserve`, `commit`, `scratch`, `count_drop`,
//! `count_error` — allocation-free and panic-free.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::abi::{
    DTRACEBUF_CONSUMED, DTRACEBUF_FILL, DTRACEBUF_FULL, DTRACEBUF_NOSWITCH, DTRACEBUF_RING,
    DTRACEBUF_WRAPPED,
};
use crate::platform::Errno;

/// How the buffer behaves when full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Switch,
    Ring,
    Fill,
}

/// The mutable part, owned by the buffer's CPU (see module header).
struct Halves {
    tomax: Vec<u8>,
    xamot: Vec<u8>,
    offset: usize,
    xamot_offset: usize,
    xamot_drops: u64,
    xamot_errors: u32,
    switched: u64,
    /// Ring: offset of the oldest complete record.
    oldest: usize,
    /// Ring: end of the data written before the last wrap.
    wrap_end: usize,
    /// Set once the switch happened since the last snapshot.
    swapped: bool,
}

/// One CPU's buffer (cache-line aligned so CPUs never share a line).
#[repr(align(128))]
pub struct CpuBuffer {
    halves: UnsafeCell<Halves>,
    pub flags: AtomicU32,
    pub drops: AtomicU64,
    pub errors: AtomicU32,
    size: usize,
}

// SAFETY: `halves` is only accessed under the per-CPU exclusion described in
// the module header; everything else is atomic or immutable.
unsafe impl Sync for CpuBuffer {}
// SAFETY: as above; the buffer owns plain memory.
unsafe impl Send for CpuBuffer {}

/// What `reserve` hands back: where the record goes.
#[derive(Clone, Copy, Debug)]
pub struct Reservation {
    pub offset: usize,
}

/// A zeroed byte vector, failing with ENOMEM instead of aborting. Uses the
/// allocator's zeroed allocation (calloc-like: untouched pages stay
/// unmapped on a host, `M_ZERO` in the kernel).
pub(crate) fn try_zeroed(size: usize) -> Result<Vec<u8>, Errno> {
    if size == 0 {
        return Ok(Vec::new());
    }
    let layout = core::alloc::Layout::array::<u8>(size).map_err(|_| Errno::ENOMEM)?;
    // SAFETY: `layout` has non-zero size.
    let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return Err(Errno::ENOMEM);
    }
    // SAFETY: `p` was allocated by the global allocator with exactly this
    // layout (u8, `size` elements), and all `size` bytes are initialised
    // (zeroed), so it is a valid Vec<u8> buffer of length and capacity `size`.
    Ok(unsafe { Vec::from_raw_parts(p, size, size) })
}

impl CpuBuffer {
    /// Allocates a buffer of `size` bytes (two halves for switch/ring/fill:
    /// the spare is the snapshot half, or scratch space for ring/fill).
    pub fn new(size: usize, policy: Policy, spare: bool) -> Result<CpuBuffer, Errno> {
        let tomax = try_zeroed(size)?;
        let xamot = if spare { try_zeroed(size)? } else { Vec::new() };
        let flags = match policy {
            Policy::Switch => 0,
            Policy::Ring => DTRACEBUF_RING,
            Policy::Fill => DTRACEBUF_FILL,
        } | if spare { 0 } else { DTRACEBUF_NOSWITCH };
        Ok(CpuBuffer {
            halves: UnsafeCell::new(Halves {
                tomax,
                xamot,
                offset: 0,
                xamot_offset: 0,
                xamot_drops: 0,
                xamot_errors: 0,
                switched: 0,
                oldest: 0,
                wrap_end: 0,
                swapped: false,
            }),
            flags: AtomicU32::new(flags),
            drops: AtomicU64::new(0),
            errors: AtomicU32::new(0),
            size,
        })
    }

    /// Capacity in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// # Safety
    /// The caller is the owning CPU in probe context / a cross-call on it, or
    /// no probe context can touch this buffer (see module header).
    #[allow(clippy::mut_from_ref)]
    unsafe fn halves(&self) -> &mut Halves {
        // SAFETY: exclusivity is the caller's obligation (above).
        unsafe { &mut *self.halves.get() }
    }

    /// Counts one dropped record. *Probe context.*
    #[inline]
    pub fn count_drop(&self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one error (fault). *Probe context.*
    #[inline]
    pub fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Reserves `needed` bytes aligned to `align` (≥ 4, power of two) and
    /// returns the record's offset; pad words are written as EPID 0.
    /// `fill_reserve` is the END reserve honoured by the fill policy unless
    /// `cooldown`. `record_size(epid)` gives the size of the record with that
    /// EPID (ring policy walks old records with it). `None` = dropped (already
    /// counted). *Probe context.*
    ///
    /// # Safety
    /// The caller is probe context on this buffer's CPU.
    #[inline]
    pub unsafe fn reserve(
        &self,
        needed: usize,
        align: usize,
        fill_reserve: usize,
        cooldown: bool,
        record_size: &dyn Fn(u32) -> usize,
    ) -> Option<Reservation> {
        // Fast path, shared by the switch policy and a ring that has not
        // wrapped yet: the record fits after the current offset. (Fill
        // checks its END reserve, a wrapped ring walks old records: both
        // go the general way.)
        let flags = self.flags.load(Ordering::Relaxed);
        if flags & (DTRACEBUF_FILL | DTRACEBUF_WRAPPED) == 0 {
            // SAFETY: caller contract.
            let h = unsafe { self.halves() };
            let align = align.max(4);
            let offs = h.offset;
            let pad = align.wrapping_sub(offs & (align - 1)) & (align - 1);
            let start = offs.wrapping_add(pad);
            let fits = start >= offs && start.checked_add(needed).is_some_and(|e| e <= self.size);
            if fits {
                if pad != 0 {
                    if let Some(pads) = h.tomax.get_mut(offs..start) {
                        pads.fill(0);
                    }
                }
                h.offset = start;
                return Some(Reservation { offset: start });
            }
        }
        // SAFETY: caller contract, passed on.
        unsafe { self.reserve_slow(needed, align, fill_reserve, cooldown, record_size) }
    }

    /// Everything [`CpuBuffer::reserve`]'s fast path does not cover.
    ///
    /// # Safety
    /// As `reserve`.
    #[inline(never)]
    unsafe fn reserve_slow(
        &self,
        needed: usize,
        align: usize,
        fill_reserve: usize,
        cooldown: bool,
        record_size: &dyn Fn(u32) -> usize,
    ) -> Option<Reservation> {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        let flags = self.flags.load(Ordering::Relaxed);
        let align = align.max(4);
        let size = self.size;
        let mut offs = h.offset;
        let pad = (align - (offs & (align - 1))) & (align - 1);
        let total = match pad.checked_add(needed) {
            Some(t) => t,
            None => {
                self.count_drop();
                return None;
            }
        };
        if flags & DTRACEBUF_RING != 0 {
            if needed > size {
                self.count_drop();
                return None;
            }
            if offs.saturating_add(total) > size {
                // Wrap: zero the tail so consumers see EPIDNONE there.
                if let Some(tail) = h.tomax.get_mut(offs..) {
                    tail.fill(0);
                }
                h.wrap_end = offs;
                h.oldest = 0;
                self.flags.fetch_or(DTRACEBUF_WRAPPED, Ordering::Relaxed);
                h.offset = 0;
                return self.ring_advance(h, 0, needed, record_size);
            }
            if let Some(pads) = h.tomax.get_mut(offs..offs + pad) {
                pads.fill(0);
            }
            let start = offs + pad;
            if self.flags.load(Ordering::Relaxed) & DTRACEBUF_WRAPPED != 0 {
                h.offset = start;
                return self.ring_advance(h, start, needed, record_size);
            }
            h.offset = start;
            return Some(Reservation { offset: start });
        }
        if flags & DTRACEBUF_FILL != 0 {
            if flags & DTRACEBUF_FULL != 0 && !cooldown {
                self.count_drop();
                return None;
            }
            let limit = if cooldown {
                size
            } else {
                size.saturating_sub(fill_reserve)
            };
            if offs.saturating_add(total) > limit {
                self.flags.fetch_or(DTRACEBUF_FULL, Ordering::Relaxed);
                self.count_drop();
                return None;
            }
        }
        if offs.saturating_add(total) > size {
            self.count_drop();
            return None;
        }
        if let Some(pads) = h.tomax.get_mut(offs..offs + pad) {
            pads.fill(0);
        }
        offs += pad;
        h.offset = offs;
        Some(Reservation { offset: offs })
    }

    /// Ring: moves the oldest-record pointer past every record the write at
    /// `[start, start + needed)` will overwrite.
    fn ring_advance(
        &self,
        h: &mut Halves,
        start: usize,
        needed: usize,
        record_size: &dyn Fn(u32) -> usize,
    ) -> Option<Reservation> {
        let end = start.saturating_add(needed);
        while h.oldest >= start && h.oldest < end && h.oldest < h.wrap_end {
            let epid = crate::bytes::get_u32(&h.tomax, h.oldest).unwrap_or(0);
            let step = if epid == 0 { 4 } else { record_size(epid) };
            if step == 0 {
                h.oldest = h.wrap_end;
                break;
            }
            h.oldest = h.oldest.saturating_add(step);
        }
        Some(Reservation { offset: start })
    }

    /// The live data half, for writing the record reserved at `r` (exactly
    /// `len` bytes). *Probe context.*
    ///
    /// # Safety
    /// Probe context on this buffer's CPU, after a successful `reserve`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn record_mut(&self, r: Reservation, len: usize) -> Option<&mut [u8]> {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        h.tomax.get_mut(r.offset..r.offset.checked_add(len)?)
    }

    /// The record reserved at `r` (`len` bytes) and the scratch space beyond
    /// it (the unused tail of the live half; the spare half for ring/fill),
    /// as disjoint slices. *Probe context.*
    ///
    /// # Safety
    /// Probe context on this buffer's CPU, after a successful `reserve`.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub unsafe fn record_and_scratch(
        &self,
        r: Reservation,
        len: usize,
    ) -> Option<(&mut [u8], &mut [u8])> {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        let flags = self.flags.load(Ordering::Relaxed);
        let end = r.offset.checked_add(len)?;
        if flags & (DTRACEBUF_RING | DTRACEBUF_FILL) != 0 && !h.xamot.is_empty() {
            let rec = h.tomax.get_mut(r.offset..end)?;
            return Some((rec, h.xamot.as_mut_slice()));
        }
        let (head, tail) = h.tomax.split_at_mut_checked(end)?;
        Some((head.get_mut(r.offset..)?, tail))
    }

    /// Makes the record reserved at `r` (`size` bytes) visible. *Probe context.*
    ///
    /// # Safety
    /// As `record_mut`.
    #[inline]
    pub unsafe fn commit(&self, r: Reservation, size: usize) {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        h.offset = r.offset.saturating_add(size).min(self.size);
    }

    /// Scratch space for DIF (`alloca`, string results): the unused tail of
    /// the live half, or the spare half for ring/fill buffers. *Probe context.*
    ///
    /// # Safety
    /// Probe context on this buffer's CPU; `after` = bytes reserved for the
    /// record being built (scratch starts beyond it).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn scratch(&self, after: usize) -> &mut [u8] {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        let flags = self.flags.load(Ordering::Relaxed);
        if flags & (DTRACEBUF_RING | DTRACEBUF_FILL) != 0 && !h.xamot.is_empty() {
            return h.xamot.as_mut_slice();
        }
        let start = h.offset.saturating_add(after).min(h.tomax.len());
        h.tomax.get_mut(start..).unwrap_or(&mut [])
    }

    /// The switch (run on the buffer's CPU by a cross-call): swap halves and
    /// remember offset/drops/errors of the half now frozen.
    ///
    /// # Safety
    /// Runs on the owning CPU (cross-call) — see module header.
    pub unsafe fn switch(&self, now: u64) {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        if h.xamot.is_empty() {
            return;
        }
        core::mem::swap(&mut h.tomax, &mut h.xamot);
        h.xamot_offset = h.offset;
        h.offset = 0;
        h.xamot_drops = self.drops.swap(0, Ordering::Relaxed);
        h.xamot_errors = self.errors.swap(0, Ordering::Relaxed);
        h.switched = now;
        h.swapped = true;
    }

    /// After a switch: the frozen half's data, drops, errors and switch time;
    /// `None` if no switch happened (ENOENT for BUFSNAP).
    ///
    /// # Safety
    /// Called after `switch` completed, before the next switch on this CPU
    /// (serialised by the framework lock).
    pub unsafe fn frozen(&self) -> Option<(&[u8], u64, u32, u64)> {
        // SAFETY: caller contract; the frozen half is not touched by probe context.
        let h = unsafe { self.halves() };
        if !h.swapped {
            return None;
        }
        h.swapped = false;
        let data = h.xamot.get(..h.xamot_offset).unwrap_or(&[]);
        Some((data, h.xamot_drops, h.xamot_errors, h.switched))
    }

    /// Ring/fill snapshot once the consumer is stopped: the data (whole
    /// buffer for a wrapped ring), the oldest offset, and marks it consumed
    /// (the second snapshot returns nothing).
    ///
    /// # Safety
    /// No probe context may record into this buffer any more (state stopped).
    pub unsafe fn drain(&self) -> (&[u8], usize) {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        if self.flags.fetch_or(DTRACEBUF_CONSUMED, Ordering::Relaxed) & DTRACEBUF_CONSUMED != 0 {
            return (&[], 0);
        }
        if self.flags.load(Ordering::Relaxed) & DTRACEBUF_WRAPPED != 0 {
            let oldest = if h.oldest >= h.wrap_end { 0 } else { h.oldest };
            (h.tomax.as_slice(), oldest)
        } else {
            (h.tomax.get(..h.offset).unwrap_or(&[]), 0)
        }
    }

    /// Discards everything (speculation discard / reuse). *Probe context* on
    /// the owning CPU, or when no probe context can touch it.
    ///
    /// # Safety
    /// As `reserve`.
    pub unsafe fn reset(&self) {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        h.offset = 0;
        self.flags
            .fetch_and(!(DTRACEBUF_FULL | DTRACEBUF_WRAPPED), Ordering::Relaxed);
    }

    /// The live data written so far (speculation commit reads it).
    ///
    /// # Safety
    /// As `reserve`.
    pub unsafe fn live(&self) -> &[u8] {
        // SAFETY: caller contract.
        let h = unsafe { self.halves() };
        h.tomax.get(..h.offset).unwrap_or(&[])
    }

    /// Whether the fill policy marked it full.
    pub fn is_full(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & DTRACEBUF_FULL != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(_: u32) -> usize {
        16
    }

    #[test]
    fn switch_policy_drops_when_full() {
        let b = CpuBuffer::new(64, Policy::Switch, true).unwrap();
        for i in 0..4 {
            // SAFETY: single-threaded test owns the buffer.
            let r = unsafe { b.reserve(16, 8, 0, false, &sizes) }.unwrap();
            assert_eq!(r.offset, i * 16);
            // SAFETY: as above.
            unsafe { b.commit(r, 16) };
        }
        // SAFETY: as above.
        assert!(unsafe { b.reserve(16, 8, 0, false, &sizes) }.is_none());
        assert_eq!(b.drops.load(Ordering::Relaxed), 1);
        // SAFETY: as above.
        unsafe { b.switch(77) };
        // SAFETY: as above.
        let (data, drops, _, ts) = unsafe { b.frozen() }.unwrap();
        assert_eq!((data.len(), drops, ts), (64, 1, 77));
        // SAFETY: as above.
        assert!(unsafe { b.frozen() }.is_none());
    }

    #[test]
    fn alignment_pads_with_epid_none() {
        let b = CpuBuffer::new(64, Policy::Switch, true).unwrap();
        // SAFETY: single-threaded test owns the buffer.
        let r = unsafe { b.reserve(12, 4, 0, false, &sizes) }.unwrap();
        // SAFETY: as above.
        unsafe {
            b.record_mut(r, 12).unwrap().fill(0xff);
            b.commit(r, 12);
        }
        // SAFETY: as above.
        let r2 = unsafe { b.reserve(16, 8, 0, false, &sizes) }.unwrap();
        assert_eq!(r2.offset, 16);
        // SAFETY: as above.
        assert_eq!(&unsafe { b.live() }[12..16], &[0, 0, 0, 0]);
    }

    #[test]
    fn fill_policy_keeps_reserve() {
        let b = CpuBuffer::new(64, Policy::Fill, true).unwrap();
        // SAFETY: single-threaded test owns the buffer.
        let r = unsafe { b.reserve(32, 8, 32, false, &sizes) }.unwrap();
        // SAFETY: as above.
        unsafe { b.commit(r, 32) };
        // SAFETY: as above.
        assert!(unsafe { b.reserve(16, 8, 32, false, &sizes) }.is_none());
        assert!(b.is_full());
        // During cooldown END may use the reserve.
        // SAFETY: as above.
        assert!(unsafe { b.reserve(16, 8, 32, true, &sizes) }.is_some());
    }

    #[test]
    fn ring_wraps_and_tracks_oldest() {
        let b = CpuBuffer::new(48, Policy::Ring, true).unwrap();
        for i in 0..5u32 {
            // SAFETY: single-threaded test owns the buffer.
            let r = unsafe { b.reserve(16, 4, 0, false, &sizes) }.unwrap();
            // SAFETY: as above.
            unsafe {
                b.record_mut(r, 16).unwrap()[..4].copy_from_slice(&(i + 1).to_ne_bytes());
                b.commit(r, 16);
            }
        }
        // SAFETY: no more writers.
        let (data, oldest) = unsafe { b.drain() };
        assert_eq!(data.len(), 48);
        // Records 4 and 5 sit at 0 and 16; record 3 (oldest) at 32.
        assert_eq!(oldest, 32);
        assert_eq!(crate::bytes::get_u32(data, 32), Some(3));
        // SAFETY: as above.
        assert_eq!(unsafe { b.drain() }.0.len(), 0);
    }
}
