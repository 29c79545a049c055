//! Memory subroutines: copyin, copyinstr, copyinto, alloca, bcopy,
//! copyout, copyoutstr, memref, memstr (probe context). User memory is read
//! only through the platform's fault-checked user access; destinations must
//! be scratch memory.

use super::super::abi::{subr as s, FaultCode};
use super::super::memory::{fault, Machine};
use super::super::vm::Regs;
use super::super::Fault;
use super::arg;

/// Largest `memstr()` result (`kern.dtrace.memstr_max`).
pub const MEMSTR_MAX: u64 = 4096;

fn in_scratch(m: &Machine<'_, '_>, addr: u64, len: u64) -> bool {
    let base = m.ctx.scratch.base();
    let used = m.ctx.scratch.used() as u64;
    addr >= base && addr.checked_add(len).is_some_and(|end| end <= base + used)
}

/// Copy `len` bytes of user memory at `uaddr` to scratch address `dst`.
fn copy_from_user(m: &mut Machine<'_, '_>, uaddr: u64, dst: u64, len: u64) -> Result<(), Fault> {
    let mut done = 0u64;
    let mut buf = [0u8; 64];
    while done < len {
        let n = m.read_piece(true, uaddr.wrapping_add(done), len - done, &mut buf)?;
        let piece = buf.get(..n).unwrap_or(&[]);
        m.write(dst.wrapping_add(done), piece)?;
        done += n as u64;
        if n == 0 {
            break;
        }
    }
    Ok(())
}

pub(crate) fn call(m: &mut Machine<'_, '_>, id: u16, regs: &Regs) -> Result<u64, Fault> {
    let a0 = arg(regs, 0);
    let a1 = arg(regs, 1);
    let a2 = arg(regs, 2);
    let nargs = regs.args().len();
    match id {
        s::ALLOCA => m.scratch_alloc(a0),
        s::COPYIN => {
            let dst = m.scratch_alloc(a1)?;
            copy_from_user(m, a0, dst, a1)?;
            Ok(dst)
        }
        s::COPYINTO => {
            if !in_scratch(m, a2, a1) {
                return Err(fault(FaultCode::BadAddr, a2));
            }
            copy_from_user(m, a0, a2, a1)?;
            Ok(0)
        }
        s::COPYINSTR => {
            let mut size = m.ctx.strsize.max(1);
            if nargs > 1 && a1 < size {
                size = a1 + 1;
            }
            let dst = m.scratch_alloc(size)?;
            m.copy_string(true, a0, dst, size)?;
            Ok(dst)
        }
        s::BCOPY => {
            if !in_scratch(m, a1, a2) {
                return Err(fault(FaultCode::BadAddr, a1));
            }
            m.copy(a0, a1, a2)?;
            Ok(0)
        }
        s::COPYOUT | s::COPYOUTSTR => {
            let len = if id == s::COPYOUTSTR {
                m.strlen(false, a0, a2)?.saturating_add(1).min(a2)
            } else {
                a2
            };
            let mut done = 0u64;
            let mut buf = [0u8; 64];
            while done < len {
                let n = m.read_piece(false, a0.wrapping_add(done), len - done, &mut buf)?;
                if n == 0 {
                    return Err(fault(FaultCode::BadAddr, a0.wrapping_add(done)));
                }
                let piece = buf.get(..n).unwrap_or(&[]);
                if !m.ctx.hooks.copyout(piece, a1.wrapping_add(done)) {
                    return Err(fault(FaultCode::BadAddr, a1.wrapping_add(done)));
                }
                done += n as u64;
            }
            Ok(0)
        }
        s::MEMREF => {
            let at = m.scratch_alloc(16)?;
            m.write(at, &a0.to_ne_bytes())?;
            m.write(at + 8, &a1.to_ne_bytes())?;
            Ok(at)
        }
        s::MEMSTR => {
            let size = a2;
            if size == 0 {
                return Ok(0);
            }
            if size > MEMSTR_MAX {
                return Err(fault(FaultCode::IllOp, 0));
            }
            let dst = m.scratch_alloc(size)?;
            let fill = a1 as u8;
            let mut buf = [0u8; 64];
            let mut done = 0u64;
            while done < size - 1 {
                let n = m.read_piece(false, a0.wrapping_add(done), size - 1 - done, &mut buf)?;
                if n == 0 {
                    return Err(fault(FaultCode::BadAddr, a0.wrapping_add(done)));
                }
                let piece = buf.get_mut(..n).unwrap_or(&mut []);
                for b in piece.iter_mut() {
                    if *b == 0 {
                        *b = fill;
                    }
                }
                m.write(dst.wrapping_add(done), piece)?;
                done += n as u64;
            }
            Ok(dst)
        }
        _ => Err(fault(FaultCode::IllOp, 0)),
    }
}
