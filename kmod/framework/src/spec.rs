//! Speculations: `speculation()`, `speculate()`, `commit()`, `discard()`,
//! with the states INACTIVE, ACTIVE, ACTIVEONE, ACTIVEMANY, COMMITTING,
//! COMMITTINGMANY, DISCARDING (abi-facts §5.7) and the busy/unavail drop
//! counters. Each speculation has one NOSWITCH buffer per CPU of `specsize`.
//! Work left for other CPUs (COMMITTINGMANY, DISCARDING) is finished by the
//! cleaner callout through a cross-call on every CPU.
//!
//! Probe context: `speculation`, `buffer_for`, `commit`, `discard`.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::buffer::{CpuBuffer, Policy};
use crate::bytes::{get_u32, put_u32};
use crate::platform::Errno;

pub const INACTIVE: u32 = 0;
pub const ACTIVE: u32 = 1;
pub const ACTIVEONE: u32 = 2;
pub const ACTIVEMANY: u32 = 3;
pub const COMMITTING: u32 = 4;
pub const COMMITTINGMANY: u32 = 5;
pub const DISCARDING: u32 = 6;

/// One speculation.
pub struct Speculation {
    pub state: AtomicU32,
    pub bufs: Vec<CpuBuffer>,
    /// Drops of committed data, summed over CPUs (FreeBSD's
    /// `dtb_xamot_drops` of speculation buffers, which STATUS reports as
    /// `specdrops`): a commit moves its buffer's drop count here, a discard
    /// forgets it.
    pub committed_drops: AtomicU64,
}

impl Speculation {
    /// Moves `buf`'s drop count into [`Speculation::committed_drops`].
    fn keep_drops(&self, buf: &CpuBuffer) {
        let n = buf.drops.swap(0, Ordering::Relaxed);
        if n != 0 {
            self.committed_drops.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Speculative data dropped so far and later committed (`specdrops`).
    pub fn drops(&self) -> u64 {
        self.committed_drops.load(Ordering::Relaxed)
    }
}

impl Speculation {
    /// Per-CPU buffers of `size` bytes.
    pub fn new(ncpu: usize, size: usize) -> Result<Speculation, Errno> {
        let mut bufs = Vec::new();
        for _ in 0..ncpu {
            bufs.push(CpuBuffer::new(size, Policy::Switch, false)?);
        }
        Ok(Speculation {
            state: AtomicU32::new(INACTIVE),
            bufs,
            committed_drops: AtomicU64::new(0),
        })
    }
}

/// The `nspec` speculations of a consumer at GO, each with one buffer of
/// `specsize` bytes per CPU. ENOMEM (as FreeBSD's `dtrace_state_go`) when
/// `nspec` exceeds `INT_MAX` or the buffers with their headers would take
/// more than `max_total` bytes. Not probe context (allocates).
pub fn allocate(
    nspec: usize,
    ncpu: usize,
    specsize: usize,
    max_total: u128,
) -> Result<Vec<Speculation>, Errno> {
    if nspec > i32::MAX as usize {
        return Err(Errno::ENOMEM);
    }
    let per_buffer = specsize as u128 + core::mem::size_of::<CpuBuffer>() as u128;
    let total = (nspec as u128) * (ncpu.max(1) as u128) * per_buffer;
    if total > max_total {
        return Err(Errno::ENOMEM);
    }
    let mut specs = Vec::new();
    specs.try_reserve_exact(nspec).map_err(|_| Errno::ENOMEM)?;
    for _ in 0..nspec {
        specs.push(Speculation::new(ncpu, specsize)?);
    }
    Ok(specs)
}

fn cas(a: &AtomicU32, cur: u32, new: u32) -> bool {
    a.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// Outcome of `speculation()`.
pub enum NewSpec {
    Id(u64),
    Busy,
    Unavail,
}

/// `speculation()`: a free speculation's 1-based id. *Probe context.*
pub fn speculation(specs: &[Speculation]) -> NewSpec {
    let mut busy = false;
    for (i, s) in specs.iter().enumerate() {
        let cur = s.state.load(Ordering::Acquire);
        if cur == INACTIVE && cas(&s.state, INACTIVE, ACTIVE) {
            return NewSpec::Id(i as u64 + 1);
        }
        if matches!(cur, COMMITTING | COMMITTINGMANY | DISCARDING) {
            busy = true;
        }
    }
    if busy {
        NewSpec::Busy
    } else {
        NewSpec::Unavail
    }
}

/// `speculate(id)`: this CPU's buffer of speculation `id`, moving the state
/// to ACTIVEONE/ACTIVEMANY; `Err(true)` = illegal id (ILLOP), `Err(false)` =
/// drop the record. *Probe context.*
///
/// # Safety
/// Probe context on `cpu`.
pub unsafe fn buffer_for(specs: &[Speculation], cpu: usize, id: u64) -> Result<&CpuBuffer, bool> {
    if id == 0 {
        return Err(false);
    }
    let Some(s) = specs.get((id - 1) as usize) else {
        return Err(true);
    };
    let Some(buf) = s.bufs.get(cpu) else {
        return Err(false);
    };
    loop {
        let cur = s.state.load(Ordering::Acquire);
        // SAFETY: probe context on `cpu` owns this buffer.
        let has_data = !unsafe { buf.live() }.is_empty();
        let new = match cur {
            INACTIVE | COMMITTINGMANY | DISCARDING | COMMITTING => return Err(false),
            ACTIVEONE if has_data => return Ok(buf),
            ACTIVEONE => ACTIVEMANY,
            ACTIVEMANY => return Ok(buf),
            ACTIVE => ACTIVEONE,
            _ => return Err(false),
        };
        if cas(&s.state, cur, new) {
            return Ok(buf);
        }
    }
}

/// The cleaner's part of a COMMITTINGMANY speculation on one CPU: copy
/// this CPU's data into `dest`, empty the buffer, keep its drop count.
///
/// # Safety
/// Cross-call (or probe context) on the CPU owning both buffers.
pub unsafe fn finish_commit(
    spec: &Speculation,
    src: &CpuBuffer,
    dest: &CpuBuffer,
    now: u64,
    fill_reserve: usize,
    record_size: &dyn Fn(u32) -> usize,
) {
    // SAFETY: caller contract.
    unsafe {
        copy_into(src, dest, now, fill_reserve, record_size);
        src.reset();
    }
    spec.keep_drops(src);
}

/// The cleaner's part of a DISCARDING speculation on one CPU.
///
/// # Safety
/// As [`finish_commit`].
pub unsafe fn finish_discard(src: &CpuBuffer) {
    // SAFETY: caller contract.
    unsafe { src.reset() };
    src.drops.store(0, Ordering::Relaxed);
}

/// Copies `src`'s records into `dest` (the principal buffer), rewriting the
/// speculative timestamps to `now`. Counts a drop in `dest` if it does not fit.
///
/// # Safety
/// Probe context (or cross-call) on the CPU owning both buffers.
pub unsafe fn copy_into(
    src: &CpuBuffer,
    dest: &CpuBuffer,
    now: u64,
    fill_reserve: usize,
    record_size: &dyn Fn(u32) -> usize,
) {
    // SAFETY: caller contract.
    let data = unsafe { src.live() };
    if data.is_empty() {
        return;
    }
    let len = data.len();
    // SAFETY: caller contract.
    let Some(r) = (unsafe { dest.reserve(len, 8, fill_reserve, false, record_size) }) else {
        return;
    };
    // SAFETY: caller contract; `r` was just reserved.
    let Some(out) = (unsafe { dest.record_mut(r, len) }) else {
        return;
    };
    crate::bytes::copy_prefix(out, data);
    let mut off = 0usize;
    while off + 4 <= len {
        let epid = get_u32(out, off).unwrap_or(0);
        if epid == 0 {
            off += 4;
            continue;
        }
        put_u32(out, off + 4, (now >> 32) as u32);
        put_u32(out, off + 8, now as u32);
        let step = record_size(epid);
        if step == 0 {
            break;
        }
        off += step;
    }
    // SAFETY: caller contract.
    unsafe { dest.commit(r, len) };
}

/// `commit(id)` on `cpu`; `Err` = illegal id (ILLOP). *Probe context.*
///
/// # Safety
/// Probe context on `cpu`.
#[allow(clippy::result_unit_err)]
pub unsafe fn commit(
    specs: &[Speculation],
    cpu: usize,
    id: u64,
    dest: &CpuBuffer,
    now: u64,
    fill_reserve: usize,
    record_size: &dyn Fn(u32) -> usize,
) -> Result<(), ()> {
    if id == 0 {
        return Ok(());
    }
    let Some(s) = specs.get((id - 1) as usize) else {
        return Err(());
    };
    let Some(src) = s.bufs.get(cpu) else {
        return Ok(());
    };
    // SAFETY: probe context on `cpu`.
    let has_data = !unsafe { src.live() }.is_empty();
    let (cur, new) = loop {
        let cur = s.state.load(Ordering::Acquire);
        if cur == COMMITTINGMANY {
            break (cur, cur);
        }
        let new = match cur {
            INACTIVE | DISCARDING | COMMITTING => return Ok(()),
            ACTIVE => COMMITTING,
            ACTIVEONE if has_data => COMMITTING,
            _ => COMMITTINGMANY,
        };
        if cas(&s.state, cur, new) {
            break (cur, new);
        }
    };
    // SAFETY: probe context on `cpu` owns `src` and `dest`.
    unsafe {
        copy_into(src, dest, now, fill_reserve, record_size);
        src.reset();
    }
    s.keep_drops(src);
    if cur == ACTIVE || (cur == ACTIVEONE && new == COMMITTING) {
        cas(&s.state, COMMITTING, INACTIVE);
    }
    Ok(())
}

/// `discard(id)` on `cpu`; `Err` = illegal id (ILLOP). *Probe context.*
///
/// # Safety
/// Probe context on `cpu`.
#[allow(clippy::result_unit_err)]
pub unsafe fn discard(specs: &[Speculation], cpu: usize, id: u64) -> Result<(), ()> {
    if id == 0 {
        return Ok(());
    }
    let Some(s) = specs.get((id - 1) as usize) else {
        return Err(());
    };
    let Some(buf) = s.bufs.get(cpu) else {
        return Ok(());
    };
    // SAFETY: probe context on `cpu`.
    let has_data = !unsafe { buf.live() }.is_empty();
    loop {
        let cur = s.state.load(Ordering::Acquire);
        let new = match cur {
            INACTIVE | COMMITTINGMANY | COMMITTING | DISCARDING => return Ok(()),
            ACTIVE | ACTIVEMANY => DISCARDING,
            ACTIVEONE if has_data => INACTIVE,
            _ => DISCARDING,
        };
        if cas(&s.state, cur, new) {
            break;
        }
    }
    // SAFETY: probe context on `cpu`.
    unsafe { buf.reset() };
    buf.drops.store(0, Ordering::Relaxed);
    Ok(())
}
