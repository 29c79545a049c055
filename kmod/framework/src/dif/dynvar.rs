//! The dynamic variable arena of one consumer: thread-local (`self->x`) and
//! associative (`a[k]`, `self->a[k]`) variables (abi-facts §5.6).
//!
//! Memory is allocated once, by [`DynVarArena::new`], through the platform
//! (never in probe context) and carved into fixed-size chunks. Each chunk
//! holds one variable: its encoded key followed by its value. Chunks are found
//! through a hash table of chains; each bucket has a spin lock held only while
//! its chain is walked or changed. Free chunks live on per-CPU lists.
//!
//! Reuse safety: a deleted chunk (a variable assigned 0) goes to its CPU's
//! *dirty* list. The cleaner ([`DynVarArena::clean`], run by the core's
//! periodic callout) moves dirty chunks to *rinsing*, waits until every CPU
//! has left probe context once (`Platform::sync`) and then moves them to
//! *clean*, from where allocation may reuse them. So an address a probe
//! obtained from a lookup stays valid memory for the rest of that firing even
//! if another CPU deletes the variable meanwhile.
//!
//! All data is accessed through atomics (relaxed), so concurrent readers and
//! writers on different CPUs race only in the sense DTrace allows (torn
//! values), never in the Rust-memory-model sense.
//!
//! Probe context: [`DynVarArena::find`] and the data accessors. Locks taken
//! there spin a bounded number of times; giving up counts a drop.

use core::ops::Deref;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::Fault;
use crate::platform::{AllocFlags, Platform};

/// Bytes of one encoded key entry header (value + size).
const KEY_ENTRY_BYTES: usize = 16;
/// How often a probe-context lock attempt spins before giving up.
const PROBE_SPIN_LIMIT: u32 = 1 << 16;
/// "No chunk" in a link field (links hold chunk index + 1).
const NIL: u32 = 0;

/// Chunk size needed for `entries` key entries, `byref_bytes` of by-reference
/// key content (already rounded to 8 per entry) and a value of `value_size`.
pub fn chunk_size_for(entries: usize, byref_bytes: usize, value_size: usize) -> usize {
    let value = value_size.max(8).saturating_add(7) & !7;
    entries
        .saturating_mul(KEY_ENTRY_BYTES)
        .saturating_add(byref_bytes)
        .saturating_add(value)
}

/// Reads D memory for by-reference key bytes: `read(addr, buf)`.
pub type ReadFn<'r> = dyn FnMut(u64, &mut [u8]) -> Result<(), Fault> + 'r;

/// One element of a dynamic variable's key: a by-value integer (`size == 0`)
/// or `size` bytes at address `value`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyEntry {
    pub value: u64,
    pub size: u64,
}

/// What [`DynVarArena::find`] should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynOp {
    /// Return the variable if it exists.
    Lookup,
    /// Return the variable, creating it (zero-filled) if needed.
    Alloc,
    /// Delete the variable if it exists.
    Delete,
}

/// Drop counters, readable by the core (`dtrace_status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DynDrops {
    /// No free chunk anywhere and nothing waiting to be cleaned.
    pub dyndrops: u64,
    /// No free chunk while some were being rinsed.
    pub dyndrops_rinsing: u64,
    /// No free chunk while some were dirty.
    pub dyndrops_dirty: u64,
}

/// Types valid when all-zero and safe to share: only atomics.
///
/// # Safety
/// Implementors must be valid when every byte is zero and contain nothing
/// that needs dropping.
unsafe trait ZeroValid: Sync {}
// SAFETY: atomics are valid when zero and need no drop.
unsafe impl ZeroValid for AtomicU8 {}
// SAFETY: as above.
unsafe impl ZeroValid for AtomicU32 {}
// SAFETY: made only of atomics.
unsafe impl ZeroValid for Bucket {}
// SAFETY: made only of atomics.
unsafe impl ZeroValid for ChunkHeader {}
// SAFETY: made only of atomics.
unsafe impl ZeroValid for CpuLists {}

/// A zero-initialised array in platform memory.
///
/// Invariant: `ptr` points to `len` zero-initialised `T`s allocated by
/// `platform.alloc_zeroed(bytes(len), align_of::<T>(), Wait)` (or is dangling
/// with `len == 0`), owned by this value.
struct PlatformArray<T: ZeroValid + 'static> {
    ptr: *mut T,
    len: usize,
    platform: &'static dyn Platform,
}

// SAFETY: the elements are `Sync` atomics; the array owns its memory.
unsafe impl<T: ZeroValid> Send for PlatformArray<T> {}
// SAFETY: shared access only hands out `&[T]` of `Sync` elements.
unsafe impl<T: ZeroValid> Sync for PlatformArray<T> {}

impl<T: ZeroValid> PlatformArray<T> {
    fn new(platform: &'static dyn Platform, len: usize) -> Option<Self> {
        if len == 0 {
            return Some(PlatformArray {
                ptr: core::ptr::NonNull::dangling().as_ptr(),
                len: 0,
                platform,
            });
        }
        let bytes = len.checked_mul(core::mem::size_of::<T>())?;
        let ptr = platform.alloc_zeroed(bytes, core::mem::align_of::<T>(), AllocFlags::Wait);
        if ptr.is_null() {
            return None;
        }
        Some(PlatformArray {
            ptr: ptr.cast::<T>(),
            len,
            platform,
        })
    }
}

impl<T: ZeroValid> Deref for PlatformArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: by the invariant `ptr` is valid for `len` initialised
        // (all-zero, which `ZeroValid` makes valid) elements for as long as
        // `self` lives, and is properly aligned (or dangling with len 0).
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: ZeroValid> Drop for PlatformArray<T> {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        let bytes = self.len * core::mem::size_of::<T>();
        // SAFETY: by the invariant the memory came from `alloc_zeroed` with
        // this size and alignment and is freed only here, once.
        unsafe {
            self.platform
                .free(self.ptr.cast::<u8>(), bytes, core::mem::align_of::<T>())
        };
    }
}

#[repr(C)]
struct Bucket {
    lock: AtomicU32,
    head: AtomicU32,
}

#[repr(C)]
struct ChunkHeader {
    /// Next chunk in the bucket chain or in a free/dirty/rinsing/clean list.
    next: AtomicU32,
    /// Encoded key length in bytes (a multiple of 8); the value follows.
    key_len: AtomicU32,
    hash: AtomicU64,
}

#[repr(C, align(64))]
struct CpuLists {
    lock: AtomicU32,
    free: AtomicU32,
    dirty: AtomicU32,
    rinsing: AtomicU32,
    clean: AtomicU32,
}

/// Held spin lock; released on drop.
struct SpinGuard<'a>(&'a AtomicU32);

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

fn lock_bounded(lock: &AtomicU32, limit: u32) -> Option<SpinGuard<'_>> {
    let mut spins = 0u32;
    loop {
        if lock
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Some(SpinGuard(lock));
        }
        spins = spins.saturating_add(1);
        if spins >= limit {
            return None;
        }
        core::hint::spin_loop();
    }
}

fn lock_spin(lock: &AtomicU32) -> SpinGuard<'_> {
    loop {
        if let Some(g) = lock_bounded(lock, u32::MAX) {
            return g;
        }
    }
}

/// The dynamic variable arena of one consumer. See the module comment.
pub struct DynVarArena {
    chunk_size: usize,
    buckets: PlatformArray<Bucket>,
    headers: PlatformArray<ChunkHeader>,
    data: PlatformArray<AtomicU8>,
    cpus: PlatformArray<CpuLists>,
    dyndrops: AtomicU64,
    dyndrops_rinsing: AtomicU64,
    dyndrops_dirty: AtomicU64,
    /// FreeBSD's `dtds_state`: CLEAN until an allocation finds no chunk,
    /// then EMPTY, DIRTY or RINSING (why it failed) until a cleaning pass
    /// has made chunks clean again. Failed allocations are counted by it.
    state: AtomicU32,
    platform: &'static dyn Platform,
}

/// `dtds_state` values.
const STATE_CLEAN: u32 = 0;
const STATE_EMPTY: u32 = 1;
const STATE_DIRTY: u32 = 2;
const STATE_RINSING: u32 = 3;

impl DynVarArena {
    /// Carve `size` bytes into chunks of `chunk_size` (rounded up to 8)
    /// shared by `ncpu` CPUs. Allocates (may sleep): never call in probe
    /// context. `None` if the platform cannot supply the memory. A size too
    /// small for one chunk (or `chunk_size` 0) gives an arena that drops
    /// every allocation.
    pub fn new(
        platform: &'static dyn Platform,
        size: usize,
        chunk_size: usize,
        ncpu: usize,
    ) -> Option<DynVarArena> {
        let chunk_size = chunk_size.checked_add(7)? & !7;
        let per_chunk =
            chunk_size + core::mem::size_of::<ChunkHeader>() + core::mem::size_of::<Bucket>();
        let nchunks = if chunk_size == 0 {
            0
        } else {
            (size / per_chunk).min(u32::MAX as usize - 1)
        };
        let ncpu = ncpu.max(1);
        let arena = DynVarArena {
            chunk_size,
            buckets: PlatformArray::new(platform, nchunks.max(1))?,
            headers: PlatformArray::new(platform, nchunks)?,
            data: PlatformArray::new(platform, nchunks.checked_mul(chunk_size)?)?,
            cpus: PlatformArray::new(platform, ncpu)?,
            dyndrops: AtomicU64::new(0),
            dyndrops_rinsing: AtomicU64::new(0),
            dyndrops_dirty: AtomicU64::new(0),
            state: AtomicU32::new(STATE_CLEAN),
            platform,
        };
        // Deal the chunks out to the CPUs' free lists round-robin.
        for index in (0..nchunks).rev() {
            let cpu = index % ncpu;
            if let (Some(lists), Some(h)) = (arena.cpus.get(cpu), arena.headers.get(index)) {
                h.next
                    .store(lists.free.load(Ordering::Relaxed), Ordering::Relaxed);
                lists.free.store(index as u32 + 1, Ordering::Relaxed);
            }
        }
        Some(arena)
    }

    /// An arena with no chunks (every allocation is dropped). Allocates
    /// nothing but the per-CPU list heads.
    pub fn empty(platform: &'static dyn Platform) -> Option<DynVarArena> {
        DynVarArena::new(platform, 0, 0, 1)
    }

    /// Chunk size in bytes.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.headers.len()
    }

    /// Allocations dropped with no free chunk anywhere (`dyndrops`).
    pub fn drops(&self) -> u64 {
        self.dyndrops.load(Ordering::Relaxed)
    }

    /// Allocations dropped while dirty chunks awaited cleaning.
    pub fn drops_dirty(&self) -> u64 {
        self.dyndrops_dirty.load(Ordering::Relaxed)
    }

    /// Allocations dropped while chunks were being rinsed.
    pub fn drops_rinsing(&self) -> u64 {
        self.dyndrops_rinsing.load(Ordering::Relaxed)
    }

    /// All three drop counters.
    pub fn drop_counts(&self) -> DynDrops {
        DynDrops {
            dyndrops: self.dyndrops.load(Ordering::Relaxed),
            dyndrops_rinsing: self.dyndrops_rinsing.load(Ordering::Relaxed),
            dyndrops_dirty: self.dyndrops_dirty.load(Ordering::Relaxed),
        }
    }

    /// Chunks currently on (free, dirty, rinsing, clean) lists, summed over
    /// CPUs. Not probe context (walks lists under locks); for tests/status.
    pub fn list_lengths(&self) -> (usize, usize, usize, usize) {
        let mut out = (0, 0, 0, 0);
        for lists in self.cpus.iter() {
            let _g = lock_spin(&lists.lock);
            out.0 += self.list_len(lists.free.load(Ordering::Relaxed));
            out.1 += self.list_len(lists.dirty.load(Ordering::Relaxed));
            out.2 += self.list_len(lists.rinsing.load(Ordering::Relaxed));
            out.3 += self.list_len(lists.clean.load(Ordering::Relaxed));
        }
        out
    }

    fn list_len(&self, mut link: u32) -> usize {
        let mut n = 0;
        while let Some(h) = self.header(link) {
            n += 1;
            if n > self.headers.len() {
                break;
            }
            link = h.next.load(Ordering::Relaxed);
        }
        n
    }

    fn header(&self, link: u32) -> Option<&ChunkHeader> {
        self.headers.get((link as usize).checked_sub(1)?)
    }

    /// Address range `[start, end)` of chunk memory (keys and values).
    pub(crate) fn data_range(&self) -> (u64, u64) {
        let start = self.data.as_ptr() as u64;
        (start, start + self.data.len() as u64)
    }

    /// Copy chunk memory at byte `offset` into `buf`; false if out of range.
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> bool {
        let Some(src) = offset
            .checked_add(buf.len())
            .and_then(|end| self.data.get(offset..end))
        else {
            return false;
        };
        for (d, s) in buf.iter_mut().zip(src) {
            *d = s.load(Ordering::Relaxed);
        }
        true
    }

    /// Copy `bytes` into chunk memory at byte `offset`; false if out of range.
    pub(crate) fn write(&self, offset: usize, bytes: &[u8]) -> bool {
        let Some(dst) = offset
            .checked_add(bytes.len())
            .and_then(|end| self.data.get(offset..end))
        else {
            return false;
        };
        for (d, s) in dst.iter().zip(bytes) {
            d.store(*s, Ordering::Relaxed);
        }
        true
    }

    fn fill_zero(&self, offset: usize, len: usize) {
        if let Some(dst) = offset
            .checked_add(len)
            .and_then(|end| self.data.get(offset..end))
        {
            for d in dst {
                d.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Find (and per `op` create or delete) the variable with `key`, whose
    /// value is `value_size` bytes. Returns the value's address, or `None`
    /// when it does not exist (Lookup/Delete) or could not be created (Alloc;
    /// counted as a drop). `read` loads by-reference key bytes from D memory.
    pub fn find(
        &self,
        cpu: usize,
        key: &[KeyEntry],
        value_size: usize,
        op: DynOp,
        read: &mut ReadFn<'_>,
    ) -> Result<Option<u64>, Fault> {
        let nchunks = self.headers.len();
        // Encoded length and hash, streaming the by-reference bytes.
        let mut key_len: usize = 0;
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for e in key {
            let (v, s) = if e.size == 0 {
                (e.value, 0)
            } else {
                (0, e.size)
            };
            hash = mix(mix(hash, v), s);
            let padded = usize::try_from(s).unwrap_or(usize::MAX).saturating_add(7) & !7;
            key_len = key_len
                .saturating_add(KEY_ENTRY_BYTES)
                .saturating_add(padded);
            if e.size != 0 {
                hash = hash_bytes(hash, e.value, e.size, read)?;
            }
        }
        let fits =
            key_len.saturating_add(value_size.max(1).saturating_add(7) & !7) <= self.chunk_size;
        if nchunks == 0 || !fits {
            if op == DynOp::Alloc {
                self.dyndrops.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(None);
        }
        // An arena without buckets (a state with no dynamic variables) has
        // nowhere to look; checked_rem keeps the zero case panic-free.
        let Some(bucket) = hash
            .checked_rem(self.buckets.len() as u64)
            .and_then(|index| self.buckets.get(index as usize))
        else {
            return Ok(None);
        };
        let Some(_guard) = lock_bounded(&bucket.lock, PROBE_SPIN_LIMIT) else {
            if op == DynOp::Alloc {
                self.dyndrops.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(None);
        };
        // Walk the chain.
        let mut prev: Option<&ChunkHeader> = None;
        let mut link = bucket.head.load(Ordering::Acquire);
        let mut steps = 0usize;
        while let Some(h) = self.header(link) {
            steps += 1;
            if steps > nchunks {
                break; // corrupted chain: never loop forever
            }
            let index = link as usize - 1;
            if h.hash.load(Ordering::Relaxed) == hash
                && h.key_len.load(Ordering::Relaxed) as usize == key_len
                && self.key_matches(index, key, read)?
            {
                let value_addr = self.data_range().0 + (index * self.chunk_size + key_len) as u64;
                match op {
                    DynOp::Lookup | DynOp::Alloc => return Ok(Some(value_addr)),
                    DynOp::Delete => {
                        let next = h.next.load(Ordering::Relaxed);
                        match prev {
                            Some(p) => p.next.store(next, Ordering::Release),
                            None => bucket.head.store(next, Ordering::Release),
                        }
                        self.push_dirty(cpu, link);
                        return Ok(None);
                    }
                }
            }
            prev = Some(h);
            link = h.next.load(Ordering::Acquire);
        }
        if op != DynOp::Alloc {
            return Ok(None);
        }
        let Some(link) = self.alloc_chunk(cpu) else {
            return Ok(None);
        };
        let index = link as usize - 1;
        let base = index * self.chunk_size;
        if let Err(f) = self.write_key(base, key, read) {
            self.push_dirty(cpu, link);
            return Err(f);
        }
        self.fill_zero(base + key_len, self.chunk_size - key_len);
        if let Some(h) = self.header(link) {
            h.hash.store(hash, Ordering::Relaxed);
            h.key_len.store(key_len as u32, Ordering::Relaxed);
            h.next
                .store(bucket.head.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        bucket.head.store(link, Ordering::Release);
        Ok(Some(self.data_range().0 + (base + key_len) as u64))
    }

    fn key_matches(
        &self,
        index: usize,
        key: &[KeyEntry],
        read: &mut ReadFn<'_>,
    ) -> Result<bool, Fault> {
        let mut off = index * self.chunk_size;
        for e in key {
            let mut hdr = [0u8; KEY_ENTRY_BYTES];
            if !self.read(off, &mut hdr) {
                return Ok(false);
            }
            let (v, s) = if e.size == 0 {
                (e.value, 0)
            } else {
                (0, e.size)
            };
            let mut want = [0u8; KEY_ENTRY_BYTES];
            want[..8].copy_from_slice(&v.to_ne_bytes());
            want[8..].copy_from_slice(&s.to_ne_bytes());
            if hdr != want {
                return Ok(false);
            }
            off += KEY_ENTRY_BYTES;
            if s != 0 {
                let mut done: u64 = 0;
                while done < s {
                    let mut a = [0u8; 64];
                    let mut b = [0u8; 64];
                    let n = (s - done).min(64) as usize;
                    let (Some(a), Some(b)) = (a.get_mut(..n), b.get_mut(..n)) else {
                        return Ok(false);
                    };
                    read(e.value.wrapping_add(done), a)?;
                    if !self.read(off + done as usize, b) || a != b {
                        return Ok(false);
                    }
                    done += n as u64;
                }
                off += (s as usize + 7) & !7;
            }
        }
        Ok(true)
    }

    fn write_key(
        &self,
        mut off: usize,
        key: &[KeyEntry],
        read: &mut ReadFn<'_>,
    ) -> Result<(), Fault> {
        for e in key {
            let (v, s) = if e.size == 0 {
                (e.value, 0)
            } else {
                (0, e.size)
            };
            self.write(off, &v.to_ne_bytes());
            self.write(off + 8, &s.to_ne_bytes());
            off += KEY_ENTRY_BYTES;
            if s != 0 {
                let padded = (s as usize + 7) & !7;
                self.fill_zero(off, padded);
                let mut done: u64 = 0;
                while done < s {
                    let mut a = [0u8; 64];
                    let n = (s - done).min(64) as usize;
                    let Some(a) = a.get_mut(..n) else { break };
                    read(e.value.wrapping_add(done), a)?;
                    self.write(off + done as usize, a);
                    done += n as u64;
                }
                off += padded;
            }
        }
        Ok(())
    }

    fn push_dirty(&self, cpu: usize, link: u32) {
        let Some(lists) = self.cpus.get(cpu % self.cpus.len().max(1)) else {
            return;
        };
        // Spin without limit: the list lock is only ever held for a few
        // instructions, and losing the chunk would leak it forever.
        let _g = lock_spin(&lists.lock);
        if let Some(h) = self.header(link) {
            h.next
                .store(lists.dirty.load(Ordering::Relaxed), Ordering::Relaxed);
            lists.dirty.store(link, Ordering::Relaxed);
        }
    }

    fn pop(&self, head: &AtomicU32) -> Option<u32> {
        let link = head.load(Ordering::Relaxed);
        let h = self.header(link)?;
        head.store(h.next.load(Ordering::Relaxed), Ordering::Relaxed);
        Some(link)
    }

    fn alloc_chunk(&self, cpu: usize) -> Option<u32> {
        let ncpu = self.cpus.len();
        for step in 0..ncpu {
            let Some(lists) = self.cpus.get((cpu + step) % ncpu) else {
                continue;
            };
            let Some(_g) = lock_bounded(&lists.lock, PROBE_SPIN_LIMIT) else {
                continue;
            };
            if let Some(link) = self.pop(&lists.free) {
                return Some(link);
            }
            if lists.clean.load(Ordering::Relaxed) != NIL {
                // Clean chunks become this list's free chunks.
                lists
                    .free
                    .store(lists.clean.swap(NIL, Ordering::Relaxed), Ordering::Relaxed);
                if let Some(link) = self.pop(&lists.free) {
                    return Some(link);
                }
            }
        }
        // Nothing free. As FreeBSD's dtrace_dynvar(): the first failure
        // after a cleaning pass says why (rinsing chunks anywhere, else
        // dirty ones, else none at all) and that reason sticks — every
        // failure is counted under it — until the cleaner next makes
        // chunks clean.
        if self.state.load(Ordering::Relaxed) == STATE_CLEAN {
            let (mut dirty, mut rinsing) = (false, false);
            for lists in self.cpus.iter() {
                dirty |= lists.dirty.load(Ordering::Relaxed) != NIL;
                rinsing |= lists.rinsing.load(Ordering::Relaxed) != NIL;
            }
            let why = if rinsing {
                STATE_RINSING
            } else if dirty {
                STATE_DIRTY
            } else {
                STATE_EMPTY
            };
            let _ =
                self.state
                    .compare_exchange(STATE_CLEAN, why, Ordering::Relaxed, Ordering::Relaxed);
        }
        let counter = match self.state.load(Ordering::Relaxed) {
            STATE_RINSING => &self.dyndrops_rinsing,
            STATE_DIRTY => &self.dyndrops_dirty,
            _ => &self.dyndrops,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// One cleaning pass (the core's cleaner callout; not probe context):
    /// dirty → rinsing on every CPU, wait for every CPU to leave probe
    /// context (`Platform::sync` of the platform the arena was created
    /// with), rinsing → clean.
    pub fn clean(&self) {
        let platform = self.platform;
        let mut moved = false;
        for lists in self.cpus.iter() {
            let cookie = platform.interrupts_disable();
            {
                let _g = lock_spin(&lists.lock);
                if lists.rinsing.load(Ordering::Relaxed) == NIL {
                    let dirty = lists.dirty.swap(NIL, Ordering::Relaxed);
                    lists.rinsing.store(dirty, Ordering::Relaxed);
                }
                moved |= lists.rinsing.load(Ordering::Relaxed) != NIL;
            }
            platform.interrupts_restore(cookie);
        }
        if !moved {
            return;
        }
        platform.sync();
        for lists in self.cpus.iter() {
            let cookie = platform.interrupts_disable();
            {
                let _g = lock_spin(&lists.lock);
                let rinsed = lists.rinsing.swap(NIL, Ordering::Relaxed);
                self.append(&lists.clean, rinsed);
            }
            platform.interrupts_restore(cookie);
        }
        // Every CPU sees the clean lists before allocations may fail anew.
        platform.sync();
        self.state.store(STATE_CLEAN, Ordering::Relaxed);
    }

    /// Tests: move every dirty chunk to rinsing (the cleaner's first half).
    #[cfg(test)]
    pub(crate) fn begin_rinse_for_test(&self) {
        for lists in self.cpus.iter() {
            let _g = lock_spin(&lists.lock);
            let dirty = lists.dirty.swap(NIL, Ordering::Relaxed);
            lists.rinsing.store(dirty, Ordering::Relaxed);
        }
    }

    /// Append list `first` to the list at `head` (caller holds the lock).
    fn append(&self, head: &AtomicU32, first: u32) {
        if first == NIL {
            return;
        }
        let mut tail = head.load(Ordering::Relaxed);
        if tail == NIL {
            head.store(first, Ordering::Relaxed);
            return;
        }
        let mut steps = 0;
        while let Some(h) = self.header(tail) {
            let next = h.next.load(Ordering::Relaxed);
            steps += 1;
            if next == NIL || steps > self.headers.len() {
                h.next.store(first, Ordering::Relaxed);
                return;
            }
            tail = next;
        }
    }
}

#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29)
}

fn hash_bytes(mut hash: u64, addr: u64, size: u64, read: &mut ReadFn<'_>) -> Result<u64, Fault> {
    let mut done: u64 = 0;
    while done < size {
        let mut buf = [0u8; 64];
        let n = (size - done).min(64) as usize;
        let Some(part) = buf.get_mut(..n) else { break };
        read(addr.wrapping_add(done), part)?;
        for &b in part.iter() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        done += n as u64;
    }
    Ok(hash)
}
