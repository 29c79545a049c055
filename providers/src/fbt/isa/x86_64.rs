//! x86_64 fbt: instruction boundaries come from the `iced-x86` decoder, the
//! breakpoint is `int3` (0xCC) over the first byte of the displaced
//! instruction, and the trap handler emulates that instruction.
//!
//! Entry site: the first instruction after an optional `endbr64`, if it is one
//! we can emulate: `push %reg` (the `push %rbp` of a frame-pointer prologue, or
//! a callee-saved push without one), `mov %rsp,%rbp`, `sub $imm,%rsp`, a NOP,
//! or `call rel32` (e.g. `__fentry__`).
//! Return sites: every `ret`/`ret $imm16` (so `leave; ret` and `pop %rbp; ret`
//! epilogues are instrumented at their `ret`), and every `jmp rel` whose target
//! is outside the function (a tail call). `leave` and `pop %rbp` can be
//! emulated too, for callers that patch an epilogue's first instruction.
//! Jump-table heuristic: the linear walk stops at the first byte sequence that
//! does not decode, or that decodes as `add %al,(%rax)` (`00 00`), which
//! compilers do not emit but zero-filled data is full of.
//!
//! Decoding is not probe context; [`X86_64::emulate`] is.

use super::{
    make_site, outside_function, CodeValue, EmulationError, Isa, PatchSite, RegisterFile, SiteKind,
    StackMemory,
};
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Register};

/// `int3`.
pub const BREAKPOINT: CodeValue = CodeValue {
    bits: 0xCC,
    width: 1,
};

/// x86_64 registers, numbered as in instruction encodings (rax = 0 … r15 = 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum X86Reg {
    Rax,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    Rip,
    Rflags,
}

impl X86Reg {
    /// The general-purpose registers in encoding order.
    pub const GPRS: [X86Reg; 16] = [
        X86Reg::Rax,
        X86Reg::Rcx,
        X86Reg::Rdx,
        X86Reg::Rbx,
        X86Reg::Rsp,
        X86Reg::Rbp,
        X86Reg::Rsi,
        X86Reg::Rdi,
        X86Reg::R8,
        X86Reg::R9,
        X86Reg::R10,
        X86Reg::R11,
        X86Reg::R12,
        X86Reg::R13,
        X86Reg::R14,
        X86Reg::R15,
    ];

    fn from_iced(reg: Register) -> Option<X86Reg> {
        let gpr = match reg {
            Register::RAX => X86Reg::Rax,
            Register::RCX => X86Reg::Rcx,
            Register::RDX => X86Reg::Rdx,
            Register::RBX => X86Reg::Rbx,
            Register::RSP => X86Reg::Rsp,
            Register::RBP => X86Reg::Rbp,
            Register::RSI => X86Reg::Rsi,
            Register::RDI => X86Reg::Rdi,
            Register::R8 => X86Reg::R8,
            Register::R9 => X86Reg::R9,
            Register::R10 => X86Reg::R10,
            Register::R11 => X86Reg::R11,
            Register::R12 => X86Reg::R12,
            Register::R13 => X86Reg::R13,
            Register::R14 => X86Reg::R14,
            Register::R15 => X86Reg::R15,
            _ => return None,
        };
        Some(gpr)
    }
}

/// What an x86_64 breakpoint stands in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum X86Emulation {
    /// `push %reg`.
    Push(X86Reg),
    /// `mov %rsp,%rbp`.
    MovRspRbp,
    /// `sub $imm,%rsp` (sets the arithmetic flags like the real instruction).
    SubRsp(i32),
    /// Any NOP form.
    Nop,
    /// `ret` (pops `imm` extra bytes for `ret $imm16`).
    Ret(u16),
    /// `leave`.
    Leave,
    /// `pop %rbp`.
    PopRbp,
    /// `call rel32` to this absolute target.
    Call(u64),
    /// `jmp rel8/rel32` to this absolute target (a tail call).
    Jmp(u64),
}

impl X86Emulation {
    /// The `DTRACE_INVOP_*` code FreeBSD's amd64 trap stub uses for this
    /// emulation (abi-facts §6.3), or `None` where the stock stub has none
    /// (rdtrace's own stub emulates those in Rust).
    pub fn freebsd_invop_code(&self) -> Option<i32> {
        match self {
            X86Emulation::Push(X86Reg::Rbp) => Some(1),
            X86Emulation::PopRbp => Some(2),
            X86Emulation::Leave => Some(3),
            X86Emulation::Nop => Some(4),
            X86Emulation::Ret(0) => Some(5),
            X86Emulation::Call(_) => Some(6),
            _ => None,
        }
    }
}

/// The x86_64 implementation of [`Isa`].
#[derive(Clone, Copy, Debug, Default)]
pub struct X86_64;

/// Walk the instruction boundaries of `code` (loaded at `addr`) from its start,
/// calling `visit(offset, instruction)` for each, until the end of `code` or
/// until the jump-table heuristic says the rest is data. Returns the number of
/// bytes walked. Not probe context.
pub fn walk_instructions(
    code: &[u8],
    addr: u64,
    visit: &mut dyn FnMut(usize, &Instruction) -> bool,
) -> usize {
    let Ok(mut decoder) = Decoder::try_with_ip(64, code, addr, DecoderOptions::NONE) else {
        return 0;
    };
    let mut instruction = Instruction::default();
    let mut offset = 0usize;
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        if instruction.is_invalid() || looks_like_data(code, offset) {
            break;
        }
        if !visit(offset, &instruction) {
            break;
        }
        offset = offset.saturating_add(instruction.len());
    }
    offset
}

/// `00 00` is `add %al,(%rax)`: valid, but never compiler output, and the
/// usual sign of zero-filled data in the text.
fn looks_like_data(code: &[u8], offset: usize) -> bool {
    matches!(code.get(offset..offset.saturating_add(2)), Some([0, 0]))
}

/// The emulation for an instruction, if it is one fbt can stand in for.
fn emulation_of(instruction: &Instruction) -> Option<X86Emulation> {
    let op0 = instruction.op0_register();
    match instruction.code() {
        Code::Push_r64 => X86Reg::from_iced(op0).map(X86Emulation::Push),
        Code::Mov_rm64_r64 | Code::Mov_r64_rm64
            if op0 == Register::RBP && instruction.op1_register() == Register::RSP =>
        {
            Some(X86Emulation::MovRspRbp)
        }
        Code::Sub_rm64_imm8 if op0 == Register::RSP => i32::try_from(instruction.immediate8to64())
            .ok()
            .map(X86Emulation::SubRsp),
        Code::Sub_rm64_imm32 if op0 == Register::RSP => {
            i32::try_from(instruction.immediate32to64())
                .ok()
                .map(X86Emulation::SubRsp)
        }
        Code::Nopw | Code::Nopd | Code::Nopq | Code::Nop_rm16 | Code::Nop_rm32 | Code::Nop_rm64 => {
            Some(X86Emulation::Nop)
        }
        Code::Retnq => Some(X86Emulation::Ret(0)),
        Code::Retnq_imm16 => Some(X86Emulation::Ret(instruction.immediate16())),
        Code::Leaveq => Some(X86Emulation::Leave),
        Code::Pop_r64 if op0 == Register::RBP => Some(X86Emulation::PopRbp),
        Code::Call_rel32_64 => Some(X86Emulation::Call(instruction.near_branch_target())),
        Code::Jmp_rel32_64 | Code::Jmp_rel8_64 => {
            Some(X86Emulation::Jmp(instruction.near_branch_target()))
        }
        _ => None,
    }
}

fn site_for(
    kind: SiteKind,
    code: &[u8],
    addr: u64,
    offset: usize,
    instruction: &Instruction,
    emulation: X86Emulation,
) -> Option<PatchSite<X86Emulation>> {
    let len = u8::try_from(instruction.len()).ok()?;
    let original = CodeValue::read(code, offset, 1)?;
    make_site(kind, addr, offset, len, original, BREAKPOINT, emulation)
}

/// Flags `sub` defines: CF, PF, AF, ZF, SF, OF.
const ARITH_FLAGS: u64 = (1 << 0) | (1 << 2) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 11);

/// The arithmetic flags of the 64-bit subtraction `a - b`.
fn sub_flags(a: u64, b: u64) -> u64 {
    let result = a.wrapping_sub(b);
    let mut flags = 0u64;
    if a < b {
        flags |= 1 << 0;
    }
    if (result as u8).count_ones() % 2 == 0 {
        flags |= 1 << 2;
    }
    if (a ^ b ^ result) & 0x10 != 0 {
        flags |= 1 << 4;
    }
    if result == 0 {
        flags |= 1 << 6;
    }
    if result >> 63 != 0 {
        flags |= 1 << 7;
    }
    if ((a ^ b) & (a ^ result)) >> 63 != 0 {
        flags |= 1 << 11;
    }
    flags
}

impl Isa for X86_64 {
    type Reg = X86Reg;
    type Emulation = X86Emulation;

    const NAME: &'static str = "x86_64";
    const AFRAMES: u32 = 3;
    const PC: X86Reg = X86Reg::Rip;
    const ARG_REGS: [X86Reg; 5] = [
        X86Reg::Rdi,
        X86Reg::Rsi,
        X86Reg::Rdx,
        X86Reg::Rcx,
        X86Reg::R8,
    ];
    const RETVAL_REG: X86Reg = X86Reg::Rax;

    fn find_entry(code: &[u8], addr: u64) -> Option<PatchSite<X86Emulation>> {
        let mut found = None;
        walk_instructions(code, addr, &mut |offset, instruction| {
            if instruction.code() == Code::Endbr64 {
                return true;
            }
            found = match emulation_of(instruction) {
                Some(
                    emulation @ (X86Emulation::Push(_)
                    | X86Emulation::MovRspRbp
                    | X86Emulation::SubRsp(_)
                    | X86Emulation::Nop
                    | X86Emulation::Call(_)),
                ) => site_for(SiteKind::Entry, code, addr, offset, instruction, emulation),
                _ => None,
            };
            false
        });
        found
    }

    fn find_returns(
        code: &[u8],
        addr: u64,
        sink: &mut dyn FnMut(PatchSite<X86Emulation>),
    ) -> usize {
        let mut count = 0usize;
        walk_instructions(code, addr, &mut |offset, instruction| {
            let emulation = match emulation_of(instruction) {
                Some(ret @ X86Emulation::Ret(_)) => ret,
                Some(jmp @ X86Emulation::Jmp(target))
                    if outside_function(target, addr, code.len()) =>
                {
                    jmp
                }
                _ => return true,
            };
            if let Some(site) =
                site_for(SiteKind::Return, code, addr, offset, instruction, emulation)
            {
                sink(site);
                count = count.saturating_add(1);
            }
            true
        });
        count
    }

    fn emulate<R: RegisterFile<X86Reg>, M: StackMemory>(
        site: &PatchSite<X86Emulation>,
        regs: &mut R,
        mem: &mut M,
    ) -> Result<(), EmulationError> {
        let next = site.addr.wrapping_add(u64::from(site.len));
        let rsp = regs.get(X86Reg::Rsp);
        match site.emulation {
            X86Emulation::Push(reg) => {
                let value = regs.get(reg);
                let new_rsp = rsp.wrapping_sub(8);
                mem.store_u64(new_rsp, value)?;
                regs.set(X86Reg::Rsp, new_rsp);
                regs.set(X86Reg::Rip, next);
            }
            X86Emulation::MovRspRbp => {
                regs.set(X86Reg::Rbp, rsp);
                regs.set(X86Reg::Rip, next);
            }
            X86Emulation::SubRsp(imm) => {
                let operand = i64::from(imm) as u64;
                let flags = (regs.get(X86Reg::Rflags) & !ARITH_FLAGS) | sub_flags(rsp, operand);
                regs.set(X86Reg::Rsp, rsp.wrapping_sub(operand));
                regs.set(X86Reg::Rflags, flags);
                regs.set(X86Reg::Rip, next);
            }
            X86Emulation::Nop => regs.set(X86Reg::Rip, next),
            X86Emulation::Ret(extra) => {
                let target = mem.load_u64(rsp)?;
                regs.set(
                    X86Reg::Rsp,
                    rsp.wrapping_add(8).wrapping_add(u64::from(extra)),
                );
                regs.set(X86Reg::Rip, target);
            }
            X86Emulation::Leave => {
                let frame = regs.get(X86Reg::Rbp);
                let saved = mem.load_u64(frame)?;
                regs.set(X86Reg::Rbp, saved);
                regs.set(X86Reg::Rsp, frame.wrapping_add(8));
                regs.set(X86Reg::Rip, next);
            }
            X86Emulation::PopRbp => {
                let saved = mem.load_u64(rsp)?;
                regs.set(X86Reg::Rbp, saved);
                regs.set(X86Reg::Rsp, rsp.wrapping_add(8));
                regs.set(X86Reg::Rip, next);
            }
            X86Emulation::Call(target) => {
                let new_rsp = rsp.wrapping_sub(8);
                mem.store_u64(new_rsp, next)?;
                regs.set(X86Reg::Rsp, new_rsp);
                regs.set(X86Reg::Rip, target);
            }
            X86Emulation::Jmp(target) => regs.set(X86Reg::Rip, target),
        }
        Ok(())
    }
}
