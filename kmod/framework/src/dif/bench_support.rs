//! Program builders for benchmarks (not probe context; allocates).
//!
//! [`arith_program`] returns a valid DIFO of about `n` instructions that
//! mixes arithmetic, compares and taken/untaken forward branches, and the
//! value it must return, so a benchmark can check it ran the whole thing.

use alloc::vec::Vec;

use super::abi::op;
use super::difo::{Difo, TypeDesc};

/// Encode a register-form instruction.
pub const fn instr(opcode: u8, r1: u8, r2: u8, rd: u8) -> u32 {
    ((opcode as u32) << 24) | ((r1 as u32) << 16) | ((r2 as u32) << 8) | rd as u32
}

/// Encode a branch to instruction `label`.
pub const fn branch(opcode: u8, label: u32) -> u32 {
    ((opcode as u32) << 24) | (label & 0x00ff_ffff)
}

/// Encode an instruction with a 16-bit immediate (table index, variable or
/// subroutine id) and a destination/source register.
pub const fn imm(opcode: u8, value: u16, rd: u8) -> u32 {
    ((opcode as u32) << 24) | ((value as u32) << 8) | rd as u32
}

/// A DIFO of at most `max(n, 10)` instructions (3 + 7k, k ≥ 1) and its
/// expected result.
///
/// Loop body (7 instructions): r3 = r3 + r1; r4 = r4 ^ r3; r5 = r3 * r2;
/// cmp r5, r1; bgu +2 (always taken: skips one add); add r3, r3, r1 (skipped);
/// tst r4. Ends with `ret %r3`.
pub fn arith_program(n: usize) -> (Difo, u64) {
    let mut text: Vec<u32> = Vec::with_capacity(n + 4);
    // r1 = 3, r2 = 5 (from the integer table).
    text.push(imm(op::SETX, 0, 1));
    text.push(imm(op::SETX, 1, 2));
    let mut expect: u64 = 0;
    let (r1, r2) = (3u64, 5u64);
    let mut r3: u64 = 0;
    let mut r4: u64 = 0;
    let bodies = (n.saturating_sub(3) / 7).max(1);
    for _ in 0..bodies {
        let base = text.len() as u32;
        text.push(instr(op::ADD, 3, 1, 3));
        text.push(instr(op::XOR, 4, 3, 4));
        text.push(instr(op::MUL, 3, 2, 5));
        text.push(instr(op::CMP, 5, 1, 0));
        text.push(branch(op::BGU, base + 6));
        text.push(instr(op::ADD, 3, 1, 3));
        text.push(instr(op::TST, 4, 0, 0));
        r3 = r3.wrapping_add(r1);
        r4 ^= r3;
        let r5 = r3.wrapping_mul(r2);
        if r5 <= r1 {
            r3 = r3.wrapping_add(r1);
        }
        expect = r3;
    }
    let _ = r4;
    text.push(instr(op::RET, 0, 0, 3));
    let difo = Difo::from_parts(
        text,
        alloc::vec![r1, r2],
        Vec::new(),
        &[],
        TypeDesc::ctf(0, 8),
    );
    match difo {
        Ok(d) => (d, expect),
        // The program above is valid by construction; a bare RET keeps
        // this function panic-free should that ever change.
        Err(_) => (Difo::bare_ret(), 0),
    }
}
