//! Lock-state subroutines (`mutex_owned`, `mutex_owner`,
//! `mutex_type_adaptive`, `mutex_type_spin`, `rw_*`, `sx_*`) answered from
//! FreeBSD's LP64 lock layout, unless the core's `ExecHooks::lock_query`
//! answers first. Probe context: only fault-checked loads of the lock.
//!
//! Layout facts (FreeBSD `sys/_lock.h`, `sys/_mutex.h`, `sys/_sx.h`,
//! `sys/_rwlock.h`, LP64): `struct lock_object` is `{ lo_name ptr; u32
//! lo_flags; u32 lo_data; lo_witness ptr }` (24 bytes), and `mtx`, `sx`
//! and `rwlock` put their lock word right after it. The lock class index is
//! `(lo_flags >> 24) & 0xf` into `lock_classes[]` = { spin mutex, sleep
//! mutex, sx, rm, sleepable rm, rw, lockmgr }.

use super::super::abi::subr as s;
use super::super::memory::Machine;
use super::super::Fault;

const LO_FLAGS_OFFSET: u64 = 8;
const LOCK_WORD_OFFSET: u64 = 24;

const CLASS_MTX_SPIN: u32 = 0;
const CLASS_MTX_SLEEP: u32 = 1;
const CLASS_SX: u32 = 2;
const CLASS_RW: u32 = 5;

/// `MTX_UNOWNED`: the word of an unheld mutex; owner bits exclude the low 3.
const MTX_UNOWNED: u64 = 0x4;
const MTX_FLAGMASK: u64 = 0x7;
/// sx and rw: bit 0 set means "shared/read mode", readers counted from bit 4.
const SHARED_BIT: u64 = 0x1;
const SHARERS_SHIFT: u32 = 4;
const RWSX_FLAGMASK: u64 = 0xf;

/// (held, owning thread or 0) as the class's `lc_owner` reports it, or None
/// for classes whose state we cannot read (rm, lockmgr).
fn owner(class: u32, word: u64) -> Option<(bool, u64)> {
    match class {
        CLASS_MTX_SPIN | CLASS_MTX_SLEEP => Some((word != MTX_UNOWNED, word & !MTX_FLAGMASK)),
        CLASS_SX | CLASS_RW => {
            if word & SHARED_BIT != 0 {
                Some((word >> SHARERS_SHIFT != 0, 0))
            } else {
                let o = word & !RWSX_FLAGMASK;
                Some((o != 0, o))
            }
        }
        _ => None,
    }
}

pub(crate) fn query(m: &mut Machine<'_, '_>, id: u16, lock: u64) -> Result<u64, Fault> {
    let flags = u32::from_ne_bytes(m.load_n::<4>(false, lock.wrapping_add(LO_FLAGS_OFFSET))?);
    let word = m.load_u64(lock.wrapping_add(LOCK_WORD_OFFSET))?;
    if let Some(v) = m.ctx.hooks.lock_query(id, lock) {
        return Ok(v);
    }
    let class = (flags >> 24) & 0xf;
    let spin = class == CLASS_MTX_SPIN;
    let known = owner(class, word);
    let (held, who) = known.unwrap_or((false, 0));
    Ok(match id {
        s::MUTEX_OWNED => u64::from(held),
        s::MUTEX_OWNER => who,
        s::MUTEX_TYPE_ADAPTIVE => u64::from(class <= 6 && !spin),
        s::MUTEX_TYPE_SPIN => u64::from(spin),
        s::RW_READ_HELD | s::SX_SHARED_HELD => u64::from(held && who == 0),
        s::RW_WRITE_HELD | s::SX_EXCLUSIVE_HELD => u64::from(held && who != 0),
        _ => u64::from(known.is_some() && who == m.ctx.thread.curthread),
    })
}
