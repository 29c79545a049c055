//! The DIF virtual machine: DIFO validation, the interpreter, built-in
//! variables, subroutines and variable storage (thread-local, global and
//! clause-local scalars and associative arrays).
//!
//! Entry points for the framework core:
//! * [`Difo::new`] — validate a DIF object (ioctl context; allocates).
//! * [`execute`] — run one in probe context with an [`ExecContext`].
//! * [`DynVarArena`] (created at enabling time; `clean` from the cleaner
//!   callout), [`GlobalVars`] / [`LocalVars`] (created at enabling time).
//!
//! Everything reachable from [`execute`] is probe context: it never
//! allocates, never sleeps (only bounded spin locks in the dynamic variable
//! arena), and never panics (the lints below forbid the usual ways).
#![deny(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

pub mod abi;
pub mod bench_support;
mod builtins;
pub mod context;
pub mod difo;
pub mod dynvar;
mod memory;
mod subr;
mod vm;

#[cfg(test)]
mod tests;

pub use abi::FaultCode;
pub use context::{
    ExecContext, ExecHooks, GlobalVars, LocalVars, NoHooks, ProbeInfo, Scratch, StaticVars,
};
pub use difo::{check_consistency, Difo, DifoError, TypeDesc, VarDesc, VarInfo, VarScope};
pub use dynvar::{DynDrops, DynVarArena};
pub use vm::execute;

/// A fault raised by D code: the `DTRACEFLT_*` code, the offending address
/// (`cpuc_dtrace_illval`; 0 when there is none) and the byte offset of the
/// faulting instruction in the DIFO text (what libdtrace prints as
/// "at DIF offset N").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub code: FaultCode,
    pub addr: u64,
    pub offset: u32,
}

/// Copy `buf.len()` bytes at `addr` as D code would load them, given the
/// string table of the DIFO that produced the address. Probe context.
pub fn read_memory(
    ctx: &mut ExecContext<'_>,
    strtab: &[u8],
    addr: u64,
    buf: &mut [u8],
) -> Result<(), Fault> {
    let m = memory::Machine { ctx, strtab };
    m.load(addr, buf)
}

/// Copy `buf.len()` bytes at `addr` as D code would load them (owned
/// memory bounds-checked, anything else through the platform's
/// fault-checked load). For the core's recording of by-reference results.
/// Probe context.
pub fn load_bytes(
    difo: &Difo,
    ctx: &mut ExecContext<'_>,
    addr: u64,
    buf: &mut [u8],
) -> Result<(), Fault> {
    let m = memory::Machine {
        ctx,
        strtab: difo.strtab(),
    };
    m.load(addr, buf)
}

/// Copy the D string at `addr` into `buf` (at most `buf.len() - 1`
/// characters), zero-filling the rest; returns the string length copied.
/// Probe context.
pub fn load_string(
    difo: &Difo,
    ctx: &mut ExecContext<'_>,
    addr: u64,
    buf: &mut [u8],
) -> Result<usize, Fault> {
    buf.fill(0);
    let max = buf.len().saturating_sub(1) as u64;
    let m = memory::Machine {
        ctx,
        strtab: difo.strtab(),
    };
    let len = m.strlen(false, addr, max)?;
    let dst = buf.get_mut(..len as usize).unwrap_or(&mut []);
    m.load(addr, dst)?;
    Ok(len as usize)
}

impl Difo {
    /// Validate and build a DIFO (abi-facts §4.6). See [`Difo::from_parts`].
    pub fn new(
        text: alloc::vec::Vec<u32>,
        inttab: alloc::vec::Vec<u64>,
        strtab: alloc::vec::Vec<u8>,
        vartab: alloc::vec::Vec<VarDesc>,
        rtype: TypeDesc,
    ) -> Result<Difo, DifoError> {
        Difo::from_parts(text, inttab, strtab, &vartab, rtype)
    }
}
