//! Writing instructions into live code, shared by fbt (breakpoints) and sdt
//! (tracepoint jumps). The FreeBSD implementation writes under
//! `smp_rendezvous` with write protection lifted and synchronises the
//! instruction caches; the hosted one uses `mprotect`. Not probe context.

use rdtrace_framework::platform::Errno;

/// Access to instruction memory.
pub trait TextWriter: Sync {
    /// Read `buf.len()` bytes of code at `addr`.
    fn read_text(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;

    /// Replace the code at `addr` with `bytes`, so that every CPU sees either
    /// the old or the new instruction, never a mix, and executes the new one
    /// from the next fetch on.
    ///
    /// # Safety
    /// `addr..addr + bytes.len()` must be an instruction the caller patches
    /// with an encoding valid at that place (a breakpoint, a NOP, a jump).
    unsafe fn write_text(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno>;
}
