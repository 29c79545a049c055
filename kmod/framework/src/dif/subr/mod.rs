//! DIF subroutines (`CALL`), current FreeBSD numbering (abi-facts §4.4).
//! Probe context. Arguments come from the tuple stack; string results are
//! built in scratch and returned by address.
//!
//! Split by concern: `strings` (string functions), `net` (byte order and
//! `inet_*`), `json`, `memory_subrs` (copyin family, alloca, bcopy, memref,
//! memstr), `locks` (lock-state queries) and the small ones here.

pub(crate) mod json;
pub(crate) mod locks;
pub(crate) mod memory_subrs;
pub(crate) mod net;
pub(crate) mod strings;

use super::abi::{subr as s, FaultCode};
use super::memory::{fault, Machine};
use super::vm::Regs;
use super::Fault;

/// Value of argument `i` (0 when absent).
pub(crate) fn arg(regs: &Regs, i: usize) -> u64 {
    regs.args().get(i).map(|e| e.value).unwrap_or(0)
}

/// Run subroutine `id` and return its result.
pub(crate) fn call(m: &mut Machine<'_, '_>, id: u16, regs: &mut Regs) -> Result<u64, Fault> {
    let a0 = arg(regs, 0);
    let a1 = arg(regs, 1);
    let nargs = regs.args().len();
    match id {
        s::RAND => Ok(rand(m)),
        s::MUTEX_OWNED
        | s::MUTEX_OWNER
        | s::MUTEX_TYPE_ADAPTIVE
        | s::MUTEX_TYPE_SPIN
        | s::RW_READ_HELD
        | s::RW_WRITE_HELD
        | s::RW_ISWRITER
        | s::SX_SHARED_HELD
        | s::SX_EXCLUSIVE_HELD
        | s::SX_ISEXCLUSIVE => locks::query(m, id, a0),
        s::SPECULATION => Ok(m.ctx.hooks.speculation()),
        s::PROGENYOF => {
            let thread = m.ctx.thread;
            Ok(u64::from(m.ctx.hooks.progeny_of(a0 as i64, &thread)))
        }
        s::GETF => Ok(m.ctx.hooks.getf(a0 as i64)),
        s::GETMAJOR => Ok(((a0 >> 32) & 0xffff_ff00) | ((a0 >> 8) & 0xff)),
        s::GETMINOR => Ok(((a0 >> 24) & 0xff00) | (a0 & 0xffff_00ff)),
        s::MSGDSIZE | s::MSGSIZE | s::DDI_PATHNAME => Err(fault(FaultCode::IllOp, 0)),
        s::COPYIN
        | s::COPYINSTR
        | s::COPYINTO
        | s::ALLOCA
        | s::BCOPY
        | s::COPYOUT
        | s::COPYOUTSTR
        | s::MEMREF
        | s::MEMSTR => memory_subrs::call(m, id, regs),
        s::HTONS | s::NTOHS => Ok(u64::from((a0 as u16).to_be())),
        s::HTONL | s::NTOHL => Ok(u64::from((a0 as u32).to_be())),
        s::HTONLL | s::NTOHLL => Ok(a0.to_be()),
        s::INET_NTOP | s::INET_NTOA | s::INET_NTOA6 => net::inet(m, id, a0, a1),
        s::JSON => json::json(m, a0, a1),
        s::STRLEN
        | s::STRJOIN
        | s::LLTOSTR
        | s::BASENAME
        | s::DIRNAME
        | s::CLEANPATH
        | s::STRCHR
        | s::STRRCHR
        | s::STRSTR
        | s::STRTOK
        | s::SUBSTR
        | s::INDEX
        | s::RINDEX
        | s::TOUPPER
        | s::TOLOWER
        | s::STRTOLL => strings::call(m, id, regs, nargs),
        _ => Err(fault(FaultCode::IllOp, 0)),
    }
}

/// `rand()`: a per-CPU xorshift64* generator mixed with the timestamp.
fn rand(m: &mut Machine<'_, '_>) -> u64 {
    let mut x = m.ctx.locals.rand_state() ^ m.ctx.timestamp.rotate_left(17);
    if x == 0 {
        x = 0x9e37_79b9_7f4a_7c15;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    m.ctx.locals.set_rand_state(x);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
}
