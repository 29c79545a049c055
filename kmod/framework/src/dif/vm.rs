//! The DIF interpreter (probe context).
//!
//! [`execute`] runs a validated [`Difo`] to its RET and returns the value of
//! the returned register (an address for by-reference return types), or the
//! first fault with its `DTRACEFLT_*` code, the offending address and the
//! byte offset of the faulting instruction. It never allocates, never
//! panics (indexing is checked), and terminates because validation only
//! admits forward branches.

use super::abi::{op, type_kind, var as varid, FaultCode};
use super::builtins::builtin;
use super::difo::{decode, Decoded, Difo, VarInfo, VarScope, TUPLE_DEPTH};
use super::dynvar::{DynOp, KeyEntry};
use super::memory::{fault, Machine};
use super::subr;
use super::{ExecContext, Fault};

/// Condition codes set by CMP/TST/SCMP.
#[derive(Clone, Copy, Default)]
struct Cc {
    n: bool,
    z: bool,
    v: bool,
    c: bool,
}

/// Register file and tuple stack of one execution.
pub(crate) struct Regs {
    r: [u64; 8],
    pub tuple: [KeyEntry; TUPLE_DEPTH],
    pub ntuple: usize,
}

impl Regs {
    #[inline(always)]
    fn get(&self, i: u8) -> u64 {
        self.r.get(usize::from(i & 7)).copied().unwrap_or(0)
    }
    #[inline(always)]
    fn set(&mut self, i: u8, v: u64) {
        // %r0 stays zero; validation already refuses rd == 0.
        if i != 0 {
            if let Some(slot) = self.r.get_mut(usize::from(i & 7)) {
                *slot = v;
            }
        }
    }
    /// The subroutine arguments on the tuple stack.
    pub fn args(&self) -> &[KeyEntry] {
        self.tuple.get(..self.ntuple).unwrap_or(&[])
    }
}

fn var_info(difo: &Difo, id: u16, scope: VarScope) -> Option<&VarInfo> {
    difo.vars().iter().find(|v| v.id == id && v.scope == scope)
}

/// Run `difo` in `ctx`. See the module comment.
pub fn execute(difo: &Difo, ctx: &mut ExecContext<'_>) -> Result<u64, Fault> {
    let mut m = Machine {
        ctx,
        strtab: difo.strtab(),
    };
    let result = run(difo, &mut m);
    m.ctx.last_fault = result.err();
    result
}

fn run(difo: &Difo, m: &mut Machine<'_, '_>) -> Result<u64, Fault> {
    let text = difo.text();
    let inttab = difo.inttab();
    let mut regs = Regs {
        r: [0; 8],
        tuple: [KeyEntry::default(); TUPLE_DEPTH],
        ntuple: 0,
    };
    let mut cc = Cc::default();
    let mut pc: usize = 0;
    let at = |code: FaultCode, pc: usize| Fault {
        code,
        addr: 0,
        offset: (pc as u32).wrapping_mul(4),
    };
    // The hot loop handles register arithmetic, compares, branches and
    // constants inline; everything touching memory, variables or
    // subroutines goes through `step_slow`.
    loop {
        let Some(&word) = text.get(pc) else {
            return Err(at(FaultCode::IllOp, pc));
        };
        let d = decode(word);
        let a = regs.get(d.r1);
        let b = regs.get(d.r2);
        match d.op {
            op::OR => regs.set(d.rd, a | b),
            op::XOR => regs.set(d.rd, a ^ b),
            op::AND => regs.set(d.rd, a & b),
            op::SLL => regs.set(d.rd, a.wrapping_shl(b as u32)),
            op::SRL => regs.set(d.rd, a.wrapping_shr(b as u32)),
            op::SRA => regs.set(d.rd, (a as i64).wrapping_shr(b as u32) as u64),
            op::SUB => regs.set(d.rd, a.wrapping_sub(b)),
            op::ADD => regs.set(d.rd, a.wrapping_add(b)),
            op::MUL => regs.set(d.rd, a.wrapping_mul(b)),
            op::SDIV | op::UDIV | op::SREM | op::UREM => {
                if b == 0 {
                    return Err(at(FaultCode::DivZero, pc));
                }
                let v = match d.op {
                    op::SDIV => (a as i64).wrapping_div(b as i64) as u64,
                    op::UDIV => a / b,
                    op::SREM => (a as i64).wrapping_rem(b as i64) as u64,
                    _ => a % b,
                };
                regs.set(d.rd, v);
            }
            op::NOT => regs.set(d.rd, !a),
            op::MOV => regs.set(d.rd, a),
            op::CMP => {
                // n reflects the true signed order (v stays 0), c the
                // unsigned one.
                cc = Cc {
                    n: (a as i64) < (b as i64),
                    z: a == b,
                    v: false,
                    c: a < b,
                };
            }
            op::TST => {
                cc = Cc {
                    n: false,
                    z: a == 0,
                    v: false,
                    c: false,
                };
            }
            op::BA => {
                pc = d.label as usize;
                continue;
            }
            op::BE
            | op::BNE
            | op::BG
            | op::BGU
            | op::BGE
            | op::BGEU
            | op::BL
            | op::BLU
            | op::BLE
            | op::BLEU => {
                let nv = cc.n ^ cc.v;
                let taken = match d.op {
                    op::BE => cc.z,
                    op::BNE => !cc.z,
                    op::BG => !(cc.z | nv),
                    op::BGU => !(cc.c | cc.z),
                    op::BGE => !nv,
                    op::BGEU => !cc.c,
                    op::BL => nv,
                    op::BLU => cc.c,
                    op::BLE => cc.z | nv,
                    _ => cc.c | cc.z,
                };
                if taken {
                    pc = d.label as usize;
                    continue;
                }
            }
            op::RET => return Ok(regs.get(d.rd)),
            op::NOP => {}
            op::SETX => match inttab.get(usize::from(d.imm16)) {
                Some(v) => regs.set(d.rd, *v),
                None => return Err(at(FaultCode::IllOp, pc)),
            },
            op::SETS => regs.set(d.rd, m.strtab.as_ptr() as u64 + u64::from(d.imm16)),
            // arg0..arg4 (predicates and keys use them constantly): straight
            // from the probe facts, without the general built-in lookup.
            op::LDGS if (varid::ARG0..varid::ARG0 + 5).contains(&d.imm16) => {
                let i = usize::from(d.imm16.wrapping_sub(varid::ARG0));
                regs.set(d.rd, m.ctx.probe.args.get(i).copied().unwrap_or(0));
            }
            // `timestamp` as the firing read it (0: not read yet, the
            // general path reads the clock).
            op::LDGS if d.imm16 == varid::TIMESTAMP && m.ctx.timestamp != 0 => {
                regs.set(d.rd, m.ctx.timestamp);
            }
            op::SCMP => match subr::strings::compare(m, a, b, m.ctx.strsize) {
                Ok(r) => {
                    cc = Cc {
                        n: r < 0,
                        z: r == 0,
                        v: false,
                        c: false,
                    }
                }
                Err(mut f) => {
                    f.offset = (pc as u32).wrapping_mul(4);
                    return Err(f);
                }
            },
            _ => {
                if let Err(mut f) = step_slow(difo, m, &mut regs, d, a, b) {
                    f.offset = (pc as u32).wrapping_mul(4);
                    return Err(f);
                }
            }
        }
        pc += 1;
    }
}

/// Everything but register arithmetic and control flow: loads, stores,
/// variables, the tuple stack, scratch and subroutine calls.
#[inline(never)]
fn step_slow(
    difo: &Difo,
    m: &mut Machine<'_, '_>,
    regs: &mut Regs,
    d: Decoded,
    a: u64,
    b: u64,
) -> Result<(), Fault> {
    match d.op {
        op::LDSB | op::RLDSB | op::ULDSB => {
            let v = m.load_n::<1>(d.op == op::ULDSB, a)?;
            regs.set(d.rd, i8::from_ne_bytes(v) as i64 as u64);
        }
        op::LDSH | op::RLDSH | op::ULDSH => {
            let v = m.load_n::<2>(d.op == op::ULDSH, a)?;
            regs.set(d.rd, i16::from_ne_bytes(v) as i64 as u64);
        }
        op::LDSW | op::RLDSW | op::ULDSW => {
            let v = m.load_n::<4>(d.op == op::ULDSW, a)?;
            regs.set(d.rd, i32::from_ne_bytes(v) as i64 as u64);
        }
        op::LDUB | op::RLDUB | op::ULDUB => {
            let v = m.load_n::<1>(d.op == op::ULDUB, a)?;
            regs.set(d.rd, u64::from(v[0]));
        }
        op::LDUH | op::RLDUH | op::ULDUH => {
            let v = m.load_n::<2>(d.op == op::ULDUH, a)?;
            regs.set(d.rd, u64::from(u16::from_ne_bytes(v)));
        }
        op::LDUW | op::RLDUW | op::ULDUW => {
            let v = m.load_n::<4>(d.op == op::ULDUW, a)?;
            regs.set(d.rd, u64::from(u32::from_ne_bytes(v)));
        }
        op::LDX | op::RLDX | op::ULDX => {
            let v = m.load_n::<8>(d.op == op::ULDX, a)?;
            regs.set(d.rd, u64::from_ne_bytes(v));
        }
        op::LDGA => {
            let v = load_array(m, d.r1, b)?;
            regs.set(d.rd, v);
        }
        op::LDTA => return Err(fault(FaultCode::IllOp, 0)),
        op::LDGS => {
            let v = if d.imm16 < varid::UBASE {
                builtin(m, d.imm16)?
            } else {
                m.ctx
                    .globals
                    .load(d.imm16)
                    .ok_or_else(|| fault(FaultCode::IllOp, 0))?
            };
            regs.set(d.rd, v);
        }
        op::LDLS => {
            let v = m
                .ctx
                .locals
                .load(d.imm16)
                .ok_or_else(|| fault(FaultCode::IllOp, 0))?;
            regs.set(d.rd, v);
        }
        op::STGS | op::STLS => {
            let scope = if d.op == op::STGS {
                VarScope::Global
            } else {
                VarScope::Local
            };
            let v = *var_info(difo, d.imm16, scope).ok_or_else(|| fault(FaultCode::IllOp, 0))?;
            store_static(m, &v, regs.get(d.rd))?;
        }
        op::LDTS | op::STTS => {
            let v = *var_info(difo, d.imm16, VarScope::Thread)
                .ok_or_else(|| fault(FaultCode::IllOp, 0))?;
            let key = [
                KeyEntry {
                    value: u64::from(d.imm16),
                    size: 0,
                },
                KeyEntry {
                    value: m.ctx.thread_key(),
                    size: 0,
                },
            ];
            if d.op == op::LDTS {
                regs.set(d.rd, dyn_load(m, &v, &key)?);
            } else {
                m.ctx.thread_local_stored = true;
                dyn_store(m, &v, &key, regs.get(d.rd))?;
            }
        }
        op::LDGAA | op::LDTAA | op::STGAA | op::STTAA => {
            let thread = matches!(d.op, op::LDTAA | op::STTAA);
            let scope = if thread {
                VarScope::Thread
            } else {
                VarScope::Global
            };
            let v = *var_info(difo, d.imm16, scope).ok_or_else(|| fault(FaultCode::IllOp, 0))?;
            let mut key = [KeyEntry::default(); TUPLE_DEPTH + 2];
            let mut n = 0usize;
            for (slot, e) in key.iter_mut().zip(regs.args()) {
                *slot = *e;
                n += 1;
            }
            if let Some(slot) = key.get_mut(n) {
                *slot = KeyEntry {
                    value: u64::from(d.imm16),
                    size: 0,
                };
                n += 1;
            }
            if thread {
                if let Some(slot) = key.get_mut(n) {
                    *slot = KeyEntry {
                        value: m.ctx.thread_key(),
                        size: 0,
                    };
                    n += 1;
                }
            }
            let key = key.get(..n).unwrap_or(&[]);
            if matches!(d.op, op::LDGAA | op::LDTAA) {
                regs.set(d.rd, dyn_load(m, &v, key)?);
            } else {
                if thread {
                    m.ctx.thread_local_stored = true;
                }
                dyn_store(m, &v, key, regs.get(d.rd))?;
            }
        }
        op::CALL => {
            let v = subr::call(m, d.imm16, regs)?;
            regs.set(d.rd, v);
        }
        op::PUSHTR | op::PUSHTV => {
            if regs.ntuple >= TUPLE_DEPTH {
                return Err(fault(FaultCode::TupOflow, 0));
            }
            let value = regs.get(d.rd);
            let size = if d.op == op::PUSHTV {
                0
            } else if d.r1 == type_kind::STRING {
                let limit = if b != 0 { b } else { m.ctx.strsize };
                let limit = limit.min(m.ctx.strsize);
                m.strlen(false, value, limit)?.saturating_add(1)
            } else {
                if b > i64::MAX as u64 {
                    return Err(fault(FaultCode::IllOp, 0));
                }
                b
            };
            if let Some(slot) = regs.tuple.get_mut(regs.ntuple) {
                *slot = KeyEntry { value, size };
            }
            regs.ntuple += 1;
        }
        op::POPTS => regs.ntuple = regs.ntuple.saturating_sub(1),
        op::FLUSHTS => regs.ntuple = 0,
        op::ALLOCS => {
            let addr = m.scratch_alloc(a)?;
            regs.set(d.rd, addr);
        }
        op::COPYS => {
            let dst = regs.get(d.rd);
            m.copy(a, dst, b)?;
        }
        op::STB | op::STH | op::STW | op::STX => {
            let dst = regs.get(d.rd);
            let bytes = a.to_ne_bytes();
            let size: usize = match d.op {
                op::STB => 1,
                op::STH => 2,
                op::STW => 4,
                _ => 8,
            };
            if dst & (size as u64 - 1) != 0 {
                return Err(fault(FaultCode::BadAlign, dst));
            }
            // Native byte order: the low-order bytes come first on a
            // little-endian machine, last on a big-endian one.
            let part = if cfg!(target_endian = "little") {
                bytes.get(..size)
            } else {
                bytes.get(8 - size..)
            };
            m.write(dst, part.unwrap_or(&[]))?;
        }
        _ => return Err(fault(FaultCode::IllOp, 0)),
    }
    Ok(())
}

/// `args[i]`, `regs[i]`, `uregs[i]`.
fn load_array(m: &mut Machine<'_, '_>, id: u8, index: u64) -> Result<u64, Fault> {
    match u16::from(id) {
        varid::ARGS => {
            if let Some(v) = usize::try_from(index)
                .ok()
                .and_then(|i| m.ctx.probe.args.get(i))
            {
                return Ok(*v);
            }
            Ok(m.ctx.hooks.probe_arg(index).unwrap_or(0))
        }
        varid::REGS | varid::UREGS => m
            .ctx
            .hooks
            .register(u16::from(id) == varid::UREGS, index)
            .ok_or_else(|| fault(FaultCode::IllOp, 0)),
        _ => Err(fault(FaultCode::IllOp, 0)),
    }
}

/// Store to a global or clause-local static variable.
fn store_static(m: &mut Machine<'_, '_>, v: &VarInfo, value: u64) -> Result<(), Fault> {
    let local = v.scope == VarScope::Local;
    let vars = if local { m.ctx.locals } else { m.ctx.globals };
    if !v.by_ref {
        return vars
            .store_value(v.id, value)
            .ok_or_else(|| fault(FaultCode::IllOp, 0));
    }
    let target = {
        let t = vars.byref_target(v.id, value == 0);
        t.map(|(off, size)| (vars.data_range().0 + off as u64, size as u64))
    };
    let (dst, size) = target.ok_or_else(|| fault(FaultCode::IllOp, 0))?;
    if value == 0 {
        return Ok(());
    }
    copy_value(m, v, value, dst, size)
}

/// Copy a by-reference value into variable storage (`dtrace_vcopy`):
/// strings stop at their NUL, other types copy `size` bytes.
fn copy_value(
    m: &mut Machine<'_, '_>,
    v: &VarInfo,
    src: u64,
    dst: u64,
    size: u64,
) -> Result<(), Fault> {
    if src == dst {
        return Ok(());
    }
    if v.is_string {
        m.copy_string(false, src, dst, size)
    } else {
        m.copy(src, dst, size)
    }
}

fn dyn_load(m: &mut Machine<'_, '_>, v: &VarInfo, key: &[KeyEntry]) -> Result<u64, Fault> {
    let size = v.size as usize;
    let found = find(m, key, size, DynOp::Lookup)?;
    match found {
        None => Ok(0),
        Some(addr) if v.by_ref => Ok(addr),
        Some(addr) => m.load_u64(addr),
    }
}

fn dyn_store(
    m: &mut Machine<'_, '_>,
    v: &VarInfo,
    key: &[KeyEntry],
    value: u64,
) -> Result<(), Fault> {
    let size = v.size as usize;
    if value == 0 {
        find(m, key, size, DynOp::Delete)?;
        return Ok(());
    }
    let Some(addr) = find(m, key, size, DynOp::Alloc)? else {
        // Dropped (counted by the arena); the core abandons the record.
        m.ctx.dyn_dropped = true;
        return Ok(());
    };
    if v.by_ref {
        copy_value(m, v, value, addr, u64::from(v.size))
    } else {
        m.write(addr, &value.to_ne_bytes())
    }
}

fn find(
    m: &mut Machine<'_, '_>,
    key: &[KeyEntry],
    size: usize,
    op: DynOp,
) -> Result<Option<u64>, Fault> {
    let cpu = m.ctx.cpu as usize;
    let dynvars = m.ctx.dynvars;
    let mm: &Machine<'_, '_> = m;
    let mut read = |addr: u64, buf: &mut [u8]| mm.load(addr, buf);
    dynvars.find(cpu, key, size, op, &mut read)
}
