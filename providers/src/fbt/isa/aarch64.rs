//! aarch64 fbt: fixed 4-byte instructions; the breakpoint is `brk #0x40d`
//! (0xD42081A0), which the kernel's EL1 synchronous-exception path hands to
//! the invop hook.
//!
//! Entry site: after an optional BTI / PACIASP / PACIBSP landing pad, the
//! first `stp xA, xB, [sp, #-N]!` (64-bit pre-index on sp),
//! `str xA, [sp, #-N]!` or `sub sp, sp, #N` before any branch. A function whose first real
//! instruction is a NOP is hand-written assembly and gets no entry probe.
//! Return sites: every `ret` (any register), and every `b` whose target is
//! outside the function (a tail call).
//!
//! Decoding is not probe context; [`Aarch64::emulate`] is.

use super::{
    make_site, outside_function, CodeValue, EmulationError, Isa, PatchSite, RegisterFile, SiteKind,
    StackMemory,
};

/// `brk #0x40d`.
pub const BREAKPOINT: CodeValue = CodeValue {
    bits: 0xD420_81A0,
    width: 4,
};

const NOP: u32 = 0xd503_201f;
const PACIASP: u32 = 0xd503_233f;
const PACIBSP: u32 = 0xd503_237f;

fn is_bti(insn: u32) -> bool {
    insn & 0xffff_ff3f == 0xd503_241f
}

/// aarch64 registers: `X(0..=30)`, the stack pointer and the program counter.
/// (Register number 31 means `xzr` or `sp` depending on the instruction; the
/// emulator resolves that, so it never appears as `X(31)`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum A64Reg {
    X(u8),
    Sp,
    Pc,
}

/// What an aarch64 breakpoint stands in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum A64Emulation {
    /// `stp xA, xB, [sp, #offset]!` (register 31 in a data position is xzr).
    StpPreIndex { rt: u8, rt2: u8, offset: i32 },
    /// `str xT, [sp, #offset]!` (a single-register push; register 31 is xzr).
    StrPreIndex { rt: u8, offset: i32 },
    /// `sub sp, sp, #amount`.
    SubSp { amount: u32 },
    /// `ret xN`.
    Ret { rn: u8 },
    /// `b target` (a tail call).
    B { target: u64 },
}

impl A64Emulation {
    /// FreeBSD's `DTRACE_INVOP_*` code for this emulation (abi-facts §6.3).
    /// `None` for `str` pre-index, which the stock handler lacks.
    pub fn freebsd_invop_code(&self) -> Option<i32> {
        match self {
            A64Emulation::StpPreIndex { .. } => Some(1),
            A64Emulation::Ret { .. } => Some(2),
            A64Emulation::B { .. } => Some(3),
            A64Emulation::SubSp { .. } => Some(4),
            A64Emulation::StrPreIndex { .. } => None,
        }
    }
}

/// Decode the entry-site instructions.
fn decode_prologue(insn: u32) -> Option<A64Emulation> {
    // stp (64-bit, pre-index): opc=10 101 0 011 L=0; base register sp.
    if insn & 0xffc0_0000 == 0xa980_0000 && (insn >> 5) & 0x1f == 31 {
        let imm7 = ((insn >> 15) & 0x7f) as i32;
        let signed = (imm7 << 25) >> 25;
        return Some(A64Emulation::StpPreIndex {
            rt: (insn & 0x1f) as u8,
            rt2: ((insn >> 10) & 0x1f) as u8,
            offset: signed.wrapping_mul(8),
        });
    }
    // str (64-bit register, immediate, pre-index): size=11 111 0 00 0 0 imm9 11; base sp.
    if insn & 0xffe0_0c00 == 0xf800_0c00 && (insn >> 5) & 0x1f == 31 {
        let imm9 = ((insn >> 12) & 0x1ff) as i32;
        return Some(A64Emulation::StrPreIndex {
            rt: (insn & 0x1f) as u8,
            offset: (imm9 << 23) >> 23,
        });
    }
    // sub sp, sp, #imm12{, lsl #12}: sf=1 op=1 S=0 100010 sh.
    if insn & 0xff80_0000 == 0xd100_0000 && insn & 0x1f == 31 && (insn >> 5) & 0x1f == 31 {
        let imm12 = (insn >> 10) & 0xfff;
        let shifted = insn & (1 << 22) != 0;
        let amount = if shifted { imm12 << 12 } else { imm12 };
        return Some(A64Emulation::SubSp { amount });
    }
    None
}

/// Whether the instruction transfers control (the branch/exception/system
/// encoding group, op0 = x101x, minus the hint space that holds NOP/BTI/PAC).
fn is_branch_class(insn: u32) -> bool {
    let group = (insn >> 25) & 0xf;
    let is_hint = insn & 0xffff_f01f == 0xd503_201f;
    (group == 0b1010 || group == 0b1011) && !is_hint
}

fn ret_register(insn: u32) -> Option<u8> {
    (insn & 0xffff_fc1f == 0xd65f_0000).then_some(((insn >> 5) & 0x1f) as u8)
}

fn b_target(insn: u32, pc: u64) -> Option<u64> {
    if insn & 0xfc00_0000 != 0x1400_0000 {
        return None;
    }
    let imm26 = (insn & 0x03ff_ffff) as i32;
    let offset = i64::from((imm26 << 6) >> 6).wrapping_mul(4);
    Some(pc.wrapping_add(offset as u64))
}

fn words(code: &[u8]) -> impl Iterator<Item = (usize, u32)> + '_ {
    code.chunks_exact(4).enumerate().map(|(index, word)| {
        let mut le = [0u8; 4];
        le.copy_from_slice(word);
        (index.wrapping_mul(4), u32::from_le_bytes(le))
    })
}

/// The aarch64 implementation of [`Isa`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Aarch64;

impl Isa for Aarch64 {
    type Reg = A64Reg;
    type Emulation = A64Emulation;

    const NAME: &'static str = "aarch64";
    const AFRAMES: u32 = 4;
    const PC: A64Reg = A64Reg::Pc;
    const ARG_REGS: [A64Reg; 5] = [
        A64Reg::X(0),
        A64Reg::X(1),
        A64Reg::X(2),
        A64Reg::X(3),
        A64Reg::X(4),
    ];
    const RETVAL_REG: A64Reg = A64Reg::X(0);

    fn find_entry(code: &[u8], addr: u64) -> Option<PatchSite<A64Emulation>> {
        let mut first_real = true;
        for (offset, insn) in words(code) {
            if first_real && (is_bti(insn) || insn == PACIASP || insn == PACIBSP) {
                continue;
            }
            if first_real && insn == NOP {
                return None;
            }
            first_real = false;
            if let Some(emulation) = decode_prologue(insn) {
                let original = CodeValue::read(code, offset, 4)?;
                return make_site(
                    SiteKind::Entry,
                    addr,
                    offset,
                    4,
                    original,
                    BREAKPOINT,
                    emulation,
                );
            }
            if is_branch_class(insn) {
                return None;
            }
        }
        None
    }

    fn find_returns(
        code: &[u8],
        addr: u64,
        sink: &mut dyn FnMut(PatchSite<A64Emulation>),
    ) -> usize {
        let mut count = 0usize;
        for (offset, insn) in words(code) {
            let pc = addr.wrapping_add(offset as u64);
            let emulation = if let Some(rn) = ret_register(insn) {
                A64Emulation::Ret { rn }
            } else if let Some(target) =
                b_target(insn, pc).filter(|t| outside_function(*t, addr, code.len()))
            {
                A64Emulation::B { target }
            } else {
                continue;
            };
            let Some(original) = CodeValue::read(code, offset, 4) else {
                continue;
            };
            if let Some(site) = make_site(
                SiteKind::Return,
                addr,
                offset,
                4,
                original,
                BREAKPOINT,
                emulation,
            ) {
                sink(site);
                count = count.saturating_add(1);
            }
        }
        count
    }

    fn emulate<R: RegisterFile<A64Reg>, M: StackMemory>(
        site: &PatchSite<A64Emulation>,
        regs: &mut R,
        mem: &mut M,
    ) -> Result<(), EmulationError> {
        let next = site.addr.wrapping_add(4);
        match site.emulation {
            A64Emulation::StpPreIndex { rt, rt2, offset } => {
                let data = |r: u8| if r >= 31 { 0 } else { regs.get(A64Reg::X(r)) };
                let (first, second) = (data(rt), data(rt2));
                let new_sp = regs.get(A64Reg::Sp).wrapping_add(i64::from(offset) as u64);
                mem.store_u64(new_sp, first)?;
                mem.store_u64(new_sp.wrapping_add(8), second)?;
                regs.set(A64Reg::Sp, new_sp);
                regs.set(A64Reg::Pc, next);
            }
            A64Emulation::StrPreIndex { rt, offset } => {
                let value = if rt >= 31 { 0 } else { regs.get(A64Reg::X(rt)) };
                let new_sp = regs.get(A64Reg::Sp).wrapping_add(i64::from(offset) as u64);
                mem.store_u64(new_sp, value)?;
                regs.set(A64Reg::Sp, new_sp);
                regs.set(A64Reg::Pc, next);
            }
            A64Emulation::SubSp { amount } => {
                let sp = regs.get(A64Reg::Sp);
                regs.set(A64Reg::Sp, sp.wrapping_sub(u64::from(amount)));
                regs.set(A64Reg::Pc, next);
            }
            A64Emulation::Ret { rn } => {
                if rn >= 31 {
                    return Err(EmulationError::Unsupported);
                }
                let target = regs.get(A64Reg::X(rn));
                regs.set(A64Reg::Pc, target);
            }
            A64Emulation::B { target } => regs.set(A64Reg::Pc, target),
        }
        Ok(())
    }
}
