//! Stack capture for `stack()`, `ustack()`, `stackdepth`, `caller` and
//! `ucaller`: which frames belong to the probe site, and a bounded
//! frame-pointer walker the platforms share.
//!
//! **Which frames are recorded.** FreeBSD's stacks start at the function that
//! called `dtrace_probe()` (then skip the provider's `aframes`). Our own
//! frames between the platform's walker and that caller depend on inlining,
//! so instead of counting them `fire()` leaves an *entry mark* per CPU: the
//! address of one of its locals. The innermost frame records at or below
//! the mark are the framework's; the first one above it is `fire`'s (or
//! whatever `fire` was inlined into), whose saved return address is the
//! first PC outside the framework. If that PC is still inside an out-of-line copy of the
//! `dtrace_probe` entry stubs (debug builds do not inline them), it is
//! skipped too. Platforms hand every (callee frame address, caller PC) pair
//! they find to a [`Collector`], which applies these rules.
//!
//! **The walker.** [`walk_frame_pointers`] follows a frame-pointer chain
//! (x86_64 `rbp`, aarch64 `x29`, riscv64 `s0`) through loads the platform
//! checks for faults, stopping at the first unaligned, non-increasing,
//! out-of-range frame pointer or implausible PC, after at most
//! [`MAX_WALK`] frames.
//!
//! Probe context: everything here. No allocation, no panics.

use core::sync::atomic::{AtomicU64, Ordering};

/// The most frame records any walk visits (skipped ones included).
pub const MAX_WALK: usize = 256;

/// The most frames `stackdepth`/`ustackdepth` report.
pub const MAX_DEPTH: usize = 128;

/// How far (bytes) past its first frame a chain may reach: kernel stacks are
/// a few pages, hosted thread stacks at most a few MiB.
pub const DEFAULT_MAX_SPAN: u64 = 16 << 20;

/// Size bound used to recognise a return address inside an out-of-line
/// `dtrace_probe` entry stub (a call to `fire` and a return).
const ENTRY_STUB_BYTES: u64 = 192;

/// Where a frame record lies relative to the frame pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLayout {
    /// Offset of the caller's saved frame pointer.
    pub saved_fp: i64,
    /// Offset of the return address into the caller.
    pub return_pc: i64,
}

impl FrameLayout {
    /// x86_64: `push rbp; mov rbp, rsp` — [rbp] = saved rbp, [rbp+8] = return.
    pub const X86_64: FrameLayout = FrameLayout {
        saved_fp: 0,
        return_pc: 8,
    };
    /// aarch64 (AAPCS64 frame record): [x29] = saved x29, [x29+8] = x30.
    pub const AARCH64: FrameLayout = FrameLayout {
        saved_fp: 0,
        return_pc: 8,
    };
    /// riscv64 (s0 = frame address = CFA): [s0-8] = ra, [s0-16] = saved s0.
    pub const RISCV64: FrameLayout = FrameLayout {
        saved_fp: -16,
        return_pc: -8,
    };

    /// The layout of the architecture this code is built for.
    pub const fn native() -> FrameLayout {
        #[cfg(target_arch = "riscv64")]
        {
            FrameLayout::RISCV64
        }
        #[cfg(target_arch = "aarch64")]
        {
            FrameLayout::AARCH64
        }
        #[cfg(not(any(target_arch = "riscv64", target_arch = "aarch64")))]
        {
            FrameLayout::X86_64
        }
    }
}

/// This CPU's frame-pointer register (x86_64 `rbp`, aarch64 `x29`, riscv64
/// `s0`), where a walk starts; 0 on other architectures. Inlined so the value
/// is the caller's frame.
#[inline(always)]
pub fn current_frame_pointer() -> u64 {
    let fp: u64;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; no memory access, no side effects.
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above.
    unsafe {
        core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "riscv64")]
    // SAFETY: as above.
    unsafe {
        core::arch::asm!("mv {}, s0", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )))]
    {
        fp = 0;
    }
    fp
}

/// What the walker needs from the platform: fault-checked loads and the
/// plausibility of frame pointers and PCs.
pub trait FrameMemory {
    /// The 8 bytes at `addr`, or `None` if they cannot be read.
    fn load_u64(&mut self, addr: u64) -> Option<u64>;
    /// Whether `fp` may be a frame pointer of this stack.
    fn plausible_frame(&self, fp: u64) -> bool;
    /// Whether `pc` may be a return address (in code).
    fn plausible_pc(&self, pc: u64) -> bool;
}

/// Applies the probe-site rules to the (callee frame, caller PC) pairs of
/// a walk, innermost first, and fills `out`.
pub struct Collector<'a> {
    mark: u64,
    stubs: [u64; 2],
    skip: u32,
    seen_first: bool,
    out: &'a mut [u64],
    count: usize,
    limit: usize,
}

impl<'a> Collector<'a> {
    /// Frames at or below `mark` (see [`entry_mark`]; 0 = keep every frame)
    /// are the framework's; then `skip` more frames (the provider's
    /// `aframes`) are dropped; the rest fill `out`. With an empty `out` the
    /// collector only counts, up to [`MAX_DEPTH`].
    pub fn new(mark: u64, skip: u32, out: &'a mut [u64]) -> Collector<'a> {
        let limit = if out.is_empty() { MAX_DEPTH } else { out.len() };
        Collector {
            mark,
            stubs: entry_stubs(),
            skip,
            seen_first: false,
            out,
            count: 0,
            limit,
        }
    }

    /// One frame: `callee_frame` is the frame record (x86_64/aarch64) or
    /// frame address (riscv64, unwinders' CFA) of a function, `caller_pc`
    /// the return address into its caller. Returns false once full.
    pub fn offer(&mut self, callee_frame: u64, caller_pc: u64) -> bool {
        if self.count >= self.limit {
            return false;
        }
        // Only the innermost frames can be the framework's: once a frame
        // above the mark was seen, later ones are kept wherever they lie
        // (an unwinder may cross onto another stack, e.g. a signal stack).
        if self.mark != 0 && !self.seen_first && callee_frame <= self.mark {
            return true;
        }
        if !self.seen_first {
            self.seen_first = true;
            if self.mark != 0 && self.is_entry_stub(caller_pc) {
                return true;
            }
        }
        if self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        if let Some(slot) = self.out.get_mut(self.count) {
            *slot = caller_pc;
        }
        self.count += 1;
        self.count < self.limit
    }

    fn is_entry_stub(&self, pc: u64) -> bool {
        self.stubs
            .iter()
            .any(|&s| s != 0 && pc.wrapping_sub(s) < ENTRY_STUB_BYTES)
    }

    /// How many PCs were collected (written, or counted).
    pub fn count(&self) -> usize {
        self.count
    }
}

/// Addresses of the out-of-line `dtrace_probe` entry points (Rust and C).
fn entry_stubs() -> [u64; 2] {
    let rust: fn(u32, u64, u64, u64, u64, u64) = crate::firing::dtrace_probe;
    let c: extern "C" fn(u32, usize, usize, usize, usize, usize) = crate::cabi::dtrace_probe;
    [rust as *const () as u64, c as *const () as u64]
}

/// Walks the frame-pointer chain starting at `fp` (the walker's own frame)
/// and offers each frame to `sink`. Returns how many frames `sink` took.
pub fn walk_frame_pointers<M: FrameMemory>(
    mem: &mut M,
    layout: FrameLayout,
    fp: u64,
    max_span: u64,
    sink: &mut Collector<'_>,
) -> usize {
    let start = fp;
    let mut fp = fp;
    for _ in 0..MAX_WALK {
        if fp == 0 || fp & 7 != 0 || !mem.plausible_frame(fp) {
            break;
        }
        let (Some(pc), Some(next)) = (
            mem.load_u64(fp.wrapping_add_signed(layout.return_pc)),
            mem.load_u64(fp.wrapping_add_signed(layout.saved_fp)),
        ) else {
            break;
        };
        if !mem.plausible_pc(pc) {
            break;
        }
        if !sink.offer(fp, pc) {
            break;
        }
        // Callers' frames lie above their callees' (stacks grow down).
        if next <= fp || next.wrapping_sub(start) > max_span {
            break;
        }
        fp = next;
    }
    sink.count()
}

/// One CPU's entry mark, on its own cache lines: every firing stores its
/// CPU's mark twice, and adjacent marks would bounce one line between CPUs.
#[repr(align(128))]
struct Mark(AtomicU64);

/// Per-CPU entry marks (see the module comment), indexed by CPU id.
pub struct EntryMarks {
    marks: alloc::boxed::Box<[Mark]>,
}

impl EntryMarks {
    /// Marks for `ncpu` CPUs, all clear. Not probe context (allocates).
    pub fn new(ncpu: usize) -> EntryMarks {
        let mut v = alloc::vec::Vec::new();
        v.resize_with(ncpu.max(1), || Mark(AtomicU64::new(0)));
        EntryMarks {
            marks: v.into_boxed_slice(),
        }
    }

    /// Sets `cpu`'s mark to `addr`, returning the previous one (nested
    /// firings put it back with [`EntryMarks::restore`]).
    #[inline]
    pub fn set(&self, cpu: usize, addr: u64) -> u64 {
        // Only `cpu` itself touches its slot, with interrupts disabled: a
        // plain load and store suffice (no locked read-modify-write).
        self.marks.get(cpu).map_or(0, |m| {
            let previous = m.0.load(Ordering::Relaxed);
            m.0.store(addr, Ordering::Relaxed);
            previous
        })
    }

    /// Puts back the mark `set` returned.
    #[inline]
    pub fn restore(&self, cpu: usize, previous: u64) {
        if let Some(m) = self.marks.get(cpu) {
            m.0.store(previous, Ordering::Relaxed);
        }
    }

    /// `cpu`'s current mark (0 = not in probe context).
    #[inline]
    pub fn get(&self, cpu: usize) -> u64 {
        self.marks
            .get(cpu)
            .map_or(0, |m| m.0.load(Ordering::Relaxed))
    }
}

/// The entry mark of the firing on `cpu` (0 if none), for platforms'
/// stack walkers.
pub fn entry_mark(cpu: usize) -> u64 {
    crate::registry::get().map_or(0, |fw| fw.entry_marks.get(cpu))
}

/// `stackdepth`: how many kernel frames `stack()` would see.
pub fn kernel_depth(platform: &dyn crate::platform::Platform, aframes: u32) -> u64 {
    platform.kernel_stack(&mut [], aframes) as u64
}

/// `caller`: the first PC of `stack()`.
pub fn kernel_caller(platform: &dyn crate::platform::Platform, aframes: u32) -> u64 {
    let mut pc = [0u64; 1];
    if platform.kernel_stack(&mut pc, aframes) == 0 {
        return 0;
    }
    pc[0]
}

/// `ustackdepth`.
pub fn user_depth(platform: &dyn crate::platform::Platform) -> u64 {
    platform.user_stack(&mut []) as u64
}

/// `ucaller`: the second user PC (the first is where the thread is now).
pub fn user_caller(platform: &dyn crate::platform::Platform) -> u64 {
    let mut pcs = [0u64; 2];
    if platform.user_stack(&mut pcs) < 2 {
        return 0;
    }
    pcs[1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A synthetic stack: 8-byte words at addresses, code in [0x1000, 0x9000).
    struct FakeStack {
        words: BTreeMap<u64, u64>,
        loads: usize,
    }

    impl FrameMemory for FakeStack {
        fn load_u64(&mut self, addr: u64) -> Option<u64> {
            self.loads += 1;
            self.words.get(&addr).copied()
        }
        fn plausible_frame(&self, fp: u64) -> bool {
            (0x7000_0000..0x7100_0000).contains(&fp)
        }
        fn plausible_pc(&self, pc: u64) -> bool {
            (0x1000..0x9000).contains(&pc)
        }
    }

    /// Frame records for `layout` at `frames[i]` returning to `pcs[i]`,
    /// chained upward; the last links to `end`.
    fn stack(layout: FrameLayout, frames: &[u64], pcs: &[u64], end: u64) -> FakeStack {
        let mut words = BTreeMap::new();
        for (i, (&f, &pc)) in frames.iter().zip(pcs).enumerate() {
            let next = frames.get(i + 1).copied().unwrap_or(end);
            words.insert(f.wrapping_add_signed(layout.saved_fp), next);
            words.insert(f.wrapping_add_signed(layout.return_pc), pc);
        }
        FakeStack { words, loads: 0 }
    }

    fn collect(
        mem: &mut FakeStack,
        layout: FrameLayout,
        fp: u64,
        mark: u64,
        skip: u32,
    ) -> Vec<u64> {
        let mut out = [0u64; 16];
        let mut c = Collector::new(mark, skip, &mut out);
        let n = walk_frame_pointers(mem, layout, fp, DEFAULT_MAX_SPAN, &mut c);
        out[..n].to_vec()
    }

    const FRAMES: [u64; 5] = [
        0x7000_0100,
        0x7000_0200,
        0x7000_0300,
        0x7000_0400,
        0x7000_0500,
    ];
    const PCS: [u64; 5] = [0x1100, 0x2200, 0x3300, 0x4400, 0x5500];

    #[test]
    fn walks_every_layout_and_stops_at_the_chain_end() {
        for layout in [
            FrameLayout::X86_64,
            FrameLayout::AARCH64,
            FrameLayout::RISCV64,
        ] {
            let mut m = stack(layout, &FRAMES, &PCS, 0);
            assert_eq!(collect(&mut m, layout, FRAMES[0], 0, 0), PCS.to_vec());
        }
    }

    #[test]
    fn frames_at_or_below_the_mark_and_aframes_are_skipped() {
        let l = FrameLayout::X86_64;
        let mut m = stack(l, &FRAMES, &PCS, 0);
        // Mark between frames 1 and 2: frames 0, 1 are the framework's.
        assert_eq!(
            collect(&mut m, l, FRAMES[0], 0x7000_0250, 0),
            vec![0x3300, 0x4400, 0x5500]
        );
        let mut m = stack(l, &FRAMES, &PCS, 0);
        assert_eq!(
            collect(&mut m, l, FRAMES[0], 0x7000_0250, 1),
            vec![0x4400, 0x5500]
        );
        // A mark on a frame record itself counts that frame as the framework's.
        let mut m = stack(l, &FRAMES, &PCS, 0);
        assert_eq!(
            collect(&mut m, l, FRAMES[0], FRAMES[1], 0),
            vec![0x3300, 0x4400, 0x5500]
        );
    }

    #[test]
    fn stops_at_bad_links_and_implausible_pcs() {
        let l = FrameLayout::X86_64;
        // A link that goes down the stack.
        let mut m = stack(l, &FRAMES, &PCS, 0);
        m.words.insert(FRAMES[2], 0x7000_0050);
        assert_eq!(
            collect(&mut m, l, FRAMES[0], 0, 0),
            vec![0x1100, 0x2200, 0x3300]
        );
        // An unaligned link.
        let mut m = stack(l, &FRAMES, &PCS, 0);
        m.words.insert(FRAMES[1], 0x7000_0303);
        assert_eq!(collect(&mut m, l, FRAMES[0], 0, 0), vec![0x1100, 0x2200]);
        // A PC outside code ends the walk before it is recorded.
        let mut m = stack(l, &FRAMES, &PCS, 0);
        m.words.insert(FRAMES[3] + 8, 0xdead_0000);
        assert_eq!(
            collect(&mut m, l, FRAMES[0], 0, 0),
            vec![0x1100, 0x2200, 0x3300]
        );
        // An unreadable record.
        let mut m = stack(l, &FRAMES, &PCS, 0);
        m.words.remove(&(FRAMES[2] + 8));
        assert_eq!(collect(&mut m, l, FRAMES[0], 0, 0), vec![0x1100, 0x2200]);
        // A frame outside the stack range.
        let mut m = stack(l, &FRAMES, &PCS, 0x9000_0000);
        assert_eq!(collect(&mut m, l, FRAMES[0], 0, 0).len(), 5);
        // A link jumping further than the allowed span.
        let mut m = stack(l, &FRAMES, &PCS, 0);
        let mut out = [0u64; 8];
        let mut c = Collector::new(0, 0, &mut out);
        assert_eq!(walk_frame_pointers(&mut m, l, FRAMES[0], 0x250, &mut c), 3);
    }

    #[test]
    fn a_cyclic_chain_is_bounded() {
        let l = FrameLayout::X86_64;
        let mut m = stack(l, &FRAMES[..2], &PCS[..2], FRAMES[0]);
        let mut out = [0u64; 8];
        let mut c = Collector::new(0, 0, &mut out);
        assert_eq!(
            walk_frame_pointers(&mut m, l, FRAMES[0], DEFAULT_MAX_SPAN, &mut c),
            2
        );
        assert!(m.loads <= 2 * MAX_WALK);
    }

    #[test]
    fn counting_without_output_and_filling_a_short_buffer() {
        let l = FrameLayout::X86_64;
        let mut m = stack(l, &FRAMES, &PCS, 0);
        let mut c = Collector::new(0, 1, &mut []);
        assert_eq!(
            walk_frame_pointers(&mut m, l, FRAMES[0], DEFAULT_MAX_SPAN, &mut c),
            4
        );
        let mut m = stack(l, &FRAMES, &PCS, 0);
        let mut out = [0u64; 2];
        let mut c = Collector::new(0, 0, &mut out);
        assert_eq!(
            walk_frame_pointers(&mut m, l, FRAMES[0], DEFAULT_MAX_SPAN, &mut c),
            2
        );
        assert_eq!(out, [0x1100, 0x2200]);
    }

    #[test]
    fn a_return_into_an_entry_stub_is_not_a_probe_site() {
        let stub = entry_stubs()[0];
        let mut out = [0u64; 4];
        let mut c = Collector::new(0x100, 0, &mut out);
        assert!(c.offer(0x80, 0x1)); // below the mark: framework
        assert!(c.offer(0x200, stub + 16)); // inside dtrace_probe: skipped
        assert!(c.offer(0x300, 0x4242));
        // Past the framework, a frame below the mark (another stack) is kept.
        assert!(c.offer(0x50, 0x4343));
        assert_eq!(c.count(), 2);
        assert_eq!(out[..2], [0x4242, 0x4343]);
    }

    #[test]
    fn entry_marks_nest() {
        let m = EntryMarks::new(2);
        assert_eq!(m.set(1, 0x500), 0);
        let outer = m.set(1, 0x300);
        assert_eq!(m.get(1), 0x300);
        m.restore(1, outer);
        assert_eq!(m.get(1), 0x500);
        assert_eq!(m.set(7, 1), 0, "an unknown CPU is ignored");
    }
}
