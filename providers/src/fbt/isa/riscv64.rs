//! riscv64 (RV64GC) fbt: instructions are 4 bytes, or 2 bytes when the low two
//! bits are not `11` (the C extension). The breakpoint is `ebreak`
//! (0x00100073) over a 4-byte instruction and `c.ebreak` (0x9002) over a
//! 2-byte one, so a patch never spills into the next instruction.
//!
//! Entry site: the first of `sd ra, off(sp)`, `c.sdsp ra, off(sp)`,
//! `addi sp, sp, -N`, `c.addi16sp sp, -N`, `c.addi sp, -N` before any
//! control transfer.
//! Return sites: `jalr x0, 0(ra)` (`ret`) and `c.jr ra`, plus tail calls:
//! `jal x0` / `c.j` to a target outside the function, and `auipc rX, hi`
//! followed by `jalr x0, lo(rX)` whose computed target is outside it.
//!
//! Decoding is not probe context; [`Riscv64::emulate`] is.

use super::{
    make_site, outside_function, CodeValue, EmulationError, Isa, PatchSite, RegisterFile, SiteKind,
    StackMemory,
};

/// `ebreak`.
pub const EBREAK: CodeValue = CodeValue {
    bits: 0x0010_0073,
    width: 4,
};
/// `c.ebreak`.
pub const C_EBREAK: CodeValue = CodeValue {
    bits: 0x9002,
    width: 2,
};

const RA: u8 = 1;
const SP: u8 = 2;

/// riscv64 registers: `X(1..=31)` and the program counter (`x0` reads as 0
/// and is never written; the emulator handles that).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RvReg {
    X(u8),
    Pc,
}

/// What a riscv64 breakpoint stands in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RvEmulation {
    /// `sd rs2, offset(sp)` or `c.sdsp rs2, offset(sp)`.
    StoreToStack { rs2: u8, offset: i32 },
    /// `addi sp, sp, imm`, `c.addi16sp sp, imm` or `c.addi sp, imm`.
    AdjustSp { imm: i32 },
    /// `jalr x0, offset(rs1)` or `c.jr rs1` (a return when rs1 is ra).
    JumpRegister { rs1: u8, offset: i32 },
    /// `jal x0, target` or `c.j target` (a tail call).
    Jump { target: u64 },
}

impl RvEmulation {
    /// FreeBSD's `DTRACE_INVOP_*` code for this emulation given the displaced
    /// instruction's width (abi-facts §6.3), where the stock handler has one.
    pub fn freebsd_invop_code(&self, width: u8) -> Option<i32> {
        match (self, width) {
            (RvEmulation::StoreToStack { .. }, 4) => Some(1),
            (RvEmulation::StoreToStack { .. }, 2) => Some(2),
            (RvEmulation::JumpRegister { rs1: RA, offset: 0 }, 4) => Some(3),
            (RvEmulation::JumpRegister { rs1: RA, offset: 0 }, 2) => Some(4),
            _ => None,
        }
    }
}

/// Length of the instruction whose first halfword is `low`.
pub fn instruction_len(low: u16) -> usize {
    if low & 0b11 == 0b11 {
        4
    } else {
        2
    }
}

fn sign_extend(value: u32, bits: u32) -> i32 {
    let shift = 32u32.saturating_sub(bits);
    ((value << shift) as i32) >> shift
}

/// Bits `hi..=lo` of `insn`, shifted down.
fn bits(insn: u32, hi: u32, lo: u32) -> u32 {
    let width = hi.saturating_sub(lo).saturating_add(1);
    let mask = 1u32
        .checked_shl(width)
        .map_or(u32::MAX, |bit| bit.wrapping_sub(1));
    insn.checked_shr(lo).unwrap_or(0) & mask
}

/// Decode a 2-byte instruction into what fbt cares about.
fn decode_compressed(insn: u32, pc: u64) -> Option<RvEmulation> {
    let quadrant = insn & 0b11;
    let funct3 = bits(insn, 15, 13);
    let rd = bits(insn, 11, 7) as u8;
    match (quadrant, funct3) {
        // c.sdsp rs2, uimm(sp): uimm[5:3] = insn[12:10], uimm[8:6] = insn[9:7].
        (0b10, 0b111) => {
            let offset = (bits(insn, 12, 10) << 3) | (bits(insn, 9, 7) << 6);
            Some(RvEmulation::StoreToStack {
                rs2: bits(insn, 6, 2) as u8,
                offset: offset as i32,
            })
        }
        // c.addi16sp: rd = sp; nzimm[9|4|6|8:7|5] = insn[12|6|5|4:3|2].
        (0b01, 0b011) if rd == SP => {
            let imm = (bits(insn, 12, 12) << 9)
                | (bits(insn, 6, 6) << 4)
                | (bits(insn, 5, 5) << 6)
                | (bits(insn, 4, 3) << 7)
                | (bits(insn, 2, 2) << 5);
            let imm = sign_extend(imm, 10);
            (imm != 0).then_some(RvEmulation::AdjustSp { imm })
        }
        // c.addi sp, nzimm[5|4:0] = insn[12|6:2].
        (0b01, 0b000) if rd == SP => {
            let imm = sign_extend((bits(insn, 12, 12) << 5) | bits(insn, 6, 2), 6);
            (imm != 0).then_some(RvEmulation::AdjustSp { imm })
        }
        // c.jr rs1: funct4 = 1000, rs1 != 0, rs2 = 0.
        (0b10, 0b100) if bits(insn, 12, 12) == 0 && rd != 0 && bits(insn, 6, 2) == 0 => {
            Some(RvEmulation::JumpRegister { rs1: rd, offset: 0 })
        }
        // c.j: offset[11|4|9:8|10|6|7|3:1|5] = insn[12|11|10:9|8|7|6|5:3|2].
        (0b01, 0b101) => {
            let imm = (bits(insn, 12, 12) << 11)
                | (bits(insn, 11, 11) << 4)
                | (bits(insn, 10, 9) << 8)
                | (bits(insn, 8, 8) << 10)
                | (bits(insn, 7, 7) << 6)
                | (bits(insn, 6, 6) << 7)
                | (bits(insn, 5, 3) << 1)
                | (bits(insn, 2, 2) << 5);
            let offset = sign_extend(imm, 12);
            Some(RvEmulation::Jump {
                target: pc.wrapping_add(i64::from(offset) as u64),
            })
        }
        _ => None,
    }
}

/// Decode a 4-byte instruction into what fbt cares about.
fn decode_full(insn: u32, pc: u64) -> Option<RvEmulation> {
    let opcode = insn & 0x7f;
    let rd = bits(insn, 11, 7) as u8;
    let funct3 = bits(insn, 14, 12);
    let rs1 = bits(insn, 19, 15) as u8;
    match opcode {
        // sd rs2, imm(rs1): S-type.
        0x23 if funct3 == 0b011 && rs1 == SP => {
            let imm = (bits(insn, 31, 25) << 5) | bits(insn, 11, 7);
            Some(RvEmulation::StoreToStack {
                rs2: bits(insn, 24, 20) as u8,
                offset: sign_extend(imm, 12),
            })
        }
        // addi sp, sp, imm.
        0x13 if funct3 == 0 && rd == SP && rs1 == SP => {
            let imm = sign_extend(bits(insn, 31, 20), 12);
            (imm != 0).then_some(RvEmulation::AdjustSp { imm })
        }
        // jalr x0, imm(rs1).
        0x67 if funct3 == 0 && rd == 0 => Some(RvEmulation::JumpRegister {
            rs1,
            offset: sign_extend(bits(insn, 31, 20), 12),
        }),
        // jal x0, imm: imm[20|10:1|11|19:12] = insn[31|30:21|20|19:12].
        0x6f if rd == 0 => {
            let imm = (bits(insn, 31, 31) << 20)
                | (bits(insn, 30, 21) << 1)
                | (bits(insn, 20, 20) << 11)
                | (bits(insn, 19, 12) << 12);
            let offset = sign_extend(imm, 21);
            Some(RvEmulation::Jump {
                target: pc.wrapping_add(i64::from(offset) as u64),
            })
        }
        _ => None,
    }
}

/// Whether the instruction may transfer control (branches, jumps, calls,
/// traps), which ends the prologue search.
fn is_control_transfer(insn: u32, len: usize) -> bool {
    if len == 4 {
        matches!(insn & 0x7f, 0x63 | 0x6f | 0x67 | 0x73)
    } else {
        let quadrant = insn & 0b11;
        let funct3 = bits(insn, 15, 13);
        match (quadrant, funct3) {
            // c.j, c.beqz, c.bnez
            (0b01, 0b101..=0b111) => true,
            // c.jr / c.jalr / c.ebreak (funct4 100x, rs2 = 0)
            (0b10, 0b100) => {
                bits(insn, 6, 2) == 0 && (bits(insn, 11, 7) != 0 || bits(insn, 12, 12) == 1)
            }
            _ => false,
        }
    }
}

/// Walk `code` instruction by instruction, calling `visit(offset, len, bits)`;
/// stops at a truncated instruction or when `visit` returns false.
pub fn walk_instructions(code: &[u8], visit: &mut dyn FnMut(usize, usize, u32) -> bool) {
    let mut offset = 0usize;
    while let Some(low) = CodeValue::read(code, offset, 2) {
        let len = instruction_len(low.bits as u16);
        let Some(value) = CodeValue::read(code, offset, len as u8) else {
            return;
        };
        if !visit(offset, len, value.bits) {
            return;
        }
        offset = offset.saturating_add(len);
    }
}

fn decode(insn: u32, len: usize, pc: u64) -> Option<RvEmulation> {
    if len == 4 {
        decode_full(insn, pc)
    } else {
        decode_compressed(insn, pc)
    }
}

fn breakpoint_for(len: usize) -> CodeValue {
    if len == 4 {
        EBREAK
    } else {
        C_EBREAK
    }
}

/// The riscv64 implementation of [`Isa`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Riscv64;

impl Isa for Riscv64 {
    type Reg = RvReg;
    type Emulation = RvEmulation;

    const NAME: &'static str = "riscv64";
    const AFRAMES: u32 = 5;
    const PC: RvReg = RvReg::Pc;
    const ARG_REGS: [RvReg; 5] = [
        RvReg::X(10),
        RvReg::X(11),
        RvReg::X(12),
        RvReg::X(13),
        RvReg::X(14),
    ];
    const RETVAL_REG: RvReg = RvReg::X(10);

    fn find_entry(code: &[u8], addr: u64) -> Option<PatchSite<RvEmulation>> {
        let mut found = None;
        walk_instructions(code, &mut |offset, len, insn| {
            let pc = addr.wrapping_add(offset as u64);
            let emulation = match decode(insn, len, pc) {
                Some(store @ RvEmulation::StoreToStack { rs2: RA, .. }) => store,
                Some(adjust @ RvEmulation::AdjustSp { imm }) if imm < 0 => adjust,
                _ => return !is_control_transfer(insn, len),
            };
            let width = len as u8;
            found = CodeValue::read(code, offset, width).and_then(|original| {
                make_site(
                    SiteKind::Entry,
                    addr,
                    offset,
                    width,
                    original,
                    breakpoint_for(len),
                    emulation,
                )
            });
            false
        });
        found
    }

    fn find_returns(code: &[u8], addr: u64, sink: &mut dyn FnMut(PatchSite<RvEmulation>)) -> usize {
        let mut count = 0usize;
        // The previous instruction if it was `auipc rd, imm`: (rd, its pc + imm).
        let mut auipc: Option<(u8, u64)> = None;
        walk_instructions(code, &mut |offset, len, insn| {
            let pc = addr.wrapping_add(offset as u64);
            let previous_auipc = auipc.take();
            if len == 4 && insn & 0x7f == 0x17 {
                let upper = i64::from((insn & 0xffff_f000) as i32);
                auipc = Some((bits(insn, 11, 7) as u8, pc.wrapping_add(upper as u64)));
            }
            let emulation = match decode(insn, len, pc) {
                Some(ret @ RvEmulation::JumpRegister { rs1: RA, offset: 0 }) => ret,
                // `auipc rX, hi; jalr x0, lo(rX)`: a tail call (`tail sym`)
                // when the computed target lies outside the function.
                Some(far @ RvEmulation::JumpRegister { rs1, offset })
                    if previous_auipc.is_some_and(|(rd, base)| {
                        rd == rs1
                            && rd != 0
                            && outside_function(
                                base.wrapping_add(i64::from(offset) as u64) & !1,
                                addr,
                                code.len(),
                            )
                    }) =>
                {
                    far
                }
                Some(jump @ RvEmulation::Jump { target })
                    if outside_function(target, addr, code.len()) =>
                {
                    jump
                }
                _ => return true,
            };
            let width = len as u8;
            let site = CodeValue::read(code, offset, width).and_then(|original| {
                make_site(
                    SiteKind::Return,
                    addr,
                    offset,
                    width,
                    original,
                    breakpoint_for(len),
                    emulation,
                )
            });
            if let Some(site) = site {
                sink(site);
                count = count.saturating_add(1);
            }
            true
        });
        count
    }

    fn emulate<R: RegisterFile<RvReg>, M: StackMemory>(
        site: &PatchSite<RvEmulation>,
        regs: &mut R,
        mem: &mut M,
    ) -> Result<(), EmulationError> {
        let next = site.addr.wrapping_add(u64::from(site.len));
        let read = |regs: &R, r: u8| if r == 0 { 0 } else { regs.get(RvReg::X(r)) };
        match site.emulation {
            RvEmulation::StoreToStack { rs2, offset } => {
                if rs2 >= 32 {
                    return Err(EmulationError::Unsupported);
                }
                let address = read(regs, SP).wrapping_add(i64::from(offset) as u64);
                mem.store_u64(address, read(regs, rs2))?;
                regs.set(RvReg::Pc, next);
            }
            RvEmulation::AdjustSp { imm } => {
                let sp = read(regs, SP).wrapping_add(i64::from(imm) as u64);
                regs.set(RvReg::X(SP), sp);
                regs.set(RvReg::Pc, next);
            }
            RvEmulation::JumpRegister { rs1, offset } => {
                if rs1 >= 32 {
                    return Err(EmulationError::Unsupported);
                }
                let target = read(regs, rs1).wrapping_add(i64::from(offset) as u64) & !1;
                regs.set(RvReg::Pc, target);
            }
            RvEmulation::Jump { target } => regs.set(RvReg::Pc, target),
        }
        Ok(())
    }
}
