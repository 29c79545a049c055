//! Register files over FreeBSD's `struct trapframe` for the three
//! architectures, and the kernel-stack memory the invop handler emulates
//! against. The module's trap glue casts the frame pointer the kernel hands
//! `dtrace_invop_jump_addr`'s handler to the matching word array.
//!
//! Layouts (LP64, 8-byte words):
//! * amd64 (192 B, abi-facts §6.2): rdi 0, rsi 1, rdx 2, rcx 3, r8 4, r9 5,
//!   rax 6, rbx 7, rbp 8, r10 9, r11 10, r12 11, r13 12, r14 13, r15 14,
//!   (trapno/fs/gs 15, addr 16, flags/es/ds 17, err 18), rip 19, cs 20,
//!   rflags 21, rsp 22, ss 23.
//! * arm64 (288 B): sp 0, lr 1, elr 2, spsr 3, esr 4, far 5, x0..x29 6..35.
//! * riscv64 (280 B, `sys/riscv/include/frame.h`): ra 0, sp 1, gp 2, tp 3,
//!   t0..t6 4..10, s0..s11 11..22, a0..a7 23..30, sepc 31, sstatus 32,
//!   stval 33, scause 34.
//!
//! On amd64 the kernel pushes the trap frame on the interrupted stack, right
//! where `push %rbp` stores, so the amd64 trap stub must emulate that
//! instruction itself (FreeBSD's invop code 1, see `X86Emulation::freebsd_invop_code`);
//! [`KernelStack`] refuses stores into the frame so the Rust emulator can
//! never corrupt it. Probe context: everything here.

use super::isa::aarch64::A64Reg;
use super::isa::riscv64::RvReg;
use super::isa::x86_64::X86Reg;
use super::isa::{EmulationError, RegisterFile, StackMemory};

/// `struct trapframe` on amd64, as 24 words.
pub struct Amd64TrapFrame<'a>(pub &'a mut [u64; 24]);

fn amd64_index(reg: X86Reg) -> usize {
    match reg {
        X86Reg::Rdi => 0,
        X86Reg::Rsi => 1,
        X86Reg::Rdx => 2,
        X86Reg::Rcx => 3,
        X86Reg::R8 => 4,
        X86Reg::R9 => 5,
        X86Reg::Rax => 6,
        X86Reg::Rbx => 7,
        X86Reg::Rbp => 8,
        X86Reg::R10 => 9,
        X86Reg::R11 => 10,
        X86Reg::R12 => 11,
        X86Reg::R13 => 12,
        X86Reg::R14 => 13,
        X86Reg::R15 => 14,
        X86Reg::Rip => 19,
        X86Reg::Rflags => 21,
        X86Reg::Rsp => 22,
    }
}

impl RegisterFile<X86Reg> for Amd64TrapFrame<'_> {
    fn get(&self, reg: X86Reg) -> u64 {
        self.0.get(amd64_index(reg)).copied().unwrap_or(0)
    }
    fn set(&mut self, reg: X86Reg, value: u64) {
        if let Some(slot) = self.0.get_mut(amd64_index(reg)) {
            *slot = value;
        }
    }
}

/// `struct trapframe` on arm64, as 36 words.
pub struct Arm64TrapFrame<'a>(pub &'a mut [u64; 36]);

fn arm64_index(reg: A64Reg) -> Option<usize> {
    match reg {
        A64Reg::Sp => Some(0),
        A64Reg::X(30) => Some(1),
        A64Reg::Pc => Some(2),
        A64Reg::X(n) if n < 30 => Some(6 + usize::from(n)),
        A64Reg::X(_) => None,
    }
}

impl RegisterFile<A64Reg> for Arm64TrapFrame<'_> {
    fn get(&self, reg: A64Reg) -> u64 {
        arm64_index(reg)
            .and_then(|i| self.0.get(i))
            .copied()
            .unwrap_or(0)
    }
    fn set(&mut self, reg: A64Reg, value: u64) {
        if let Some(slot) = arm64_index(reg).and_then(|i| self.0.get_mut(i)) {
            *slot = value;
        }
    }
}

/// `struct trapframe` on riscv64, as 35 words.
pub struct RiscvTrapFrame<'a>(pub &'a mut [u64; 35]);

fn riscv_index(reg: RvReg) -> Option<usize> {
    let index = match reg {
        RvReg::Pc => 31,
        RvReg::X(n @ 1..=4) => usize::from(n) - 1,
        RvReg::X(n @ 5..=7) => 4 + usize::from(n - 5),
        RvReg::X(n @ 8..=9) => 11 + usize::from(n - 8),
        RvReg::X(n @ 10..=17) => 23 + usize::from(n - 10),
        RvReg::X(n @ 18..=27) => 13 + usize::from(n - 18),
        RvReg::X(n @ 28..=31) => 7 + usize::from(n - 28),
        RvReg::X(_) => return None,
    };
    Some(index)
}

impl RegisterFile<RvReg> for RiscvTrapFrame<'_> {
    fn get(&self, reg: RvReg) -> u64 {
        riscv_index(reg)
            .and_then(|i| self.0.get(i))
            .copied()
            .unwrap_or(0)
    }
    fn set(&mut self, reg: RvReg, value: u64) {
        if let Some(slot) = riscv_index(reg).and_then(|i| self.0.get_mut(i)) {
            *slot = value;
        }
    }
}

/// The interrupted kernel stack. Accesses are made directly (the emulated
/// instruction would have made them), except that any access overlapping
/// `[frame_start, frame_end)` — the trap frame itself — is refused.
pub struct KernelStack {
    pub frame_start: u64,
    pub frame_end: u64,
}

impl KernelStack {
    fn check(&self, addr: u64) -> bool {
        let end = addr.wrapping_add(8);
        addr != 0 && end > addr && (end <= self.frame_start || addr >= self.frame_end)
    }
}

impl StackMemory for KernelStack {
    fn load_u64(&mut self, addr: u64) -> Result<u64, EmulationError> {
        if !self.check(addr) {
            return Err(EmulationError::Load(addr));
        }
        // SAFETY: an address the interrupted instruction itself reads (its
        // stack), outside the trap frame.
        Ok(unsafe { core::ptr::read_unaligned(addr as usize as *const u64) })
    }
    fn store_u64(&mut self, addr: u64, value: u64) -> Result<(), EmulationError> {
        if !self.check(addr) {
            return Err(EmulationError::Store(addr));
        }
        // SAFETY: as above, for the store the instruction makes.
        unsafe { core::ptr::write_unaligned(addr as usize as *mut u64, value) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amd64_indices() {
        let mut words = [0u64; 24];
        let mut frame = Amd64TrapFrame(&mut words);
        frame.set(X86Reg::Rip, 0x1234);
        frame.set(X86Reg::Rsp, 0x5678);
        frame.set(X86Reg::Rdi, 1);
        frame.set(X86Reg::R8, 5);
        assert_eq!(
            (words[19], words[22], words[0], words[4]),
            (0x1234, 0x5678, 1, 5)
        );
    }

    #[test]
    fn arm64_indices() {
        let mut words = [0u64; 36];
        let mut frame = Arm64TrapFrame(&mut words);
        frame.set(A64Reg::Pc, 0x40);
        frame.set(A64Reg::X(30), 0x30);
        frame.set(A64Reg::X(0), 7);
        frame.set(A64Reg::X(29), 29);
        frame.set(A64Reg::X(31), 99); // not a register here: ignored
        assert_eq!(
            (words[2], words[1], words[6], words[35]),
            (0x40, 0x30, 7, 29)
        );
        assert_eq!(words.iter().filter(|w| **w == 99).count(), 0);
    }

    #[test]
    fn riscv_indices_cover_every_register_once() {
        let mut seen = [false; 35];
        for n in 1..=31u8 {
            let i = riscv_index(RvReg::X(n)).unwrap();
            assert!(!seen[i], "x{n} collides");
            seen[i] = true;
        }
        assert_eq!(riscv_index(RvReg::X(10)), Some(23)); // a0
        assert_eq!(riscv_index(RvReg::X(8)), Some(11)); // s0
        assert_eq!(riscv_index(RvReg::X(18)), Some(13)); // s2
        assert_eq!(riscv_index(RvReg::X(28)), Some(7)); // t3
        assert_eq!(riscv_index(RvReg::Pc), Some(31));
        assert_eq!(riscv_index(RvReg::X(0)), None);
    }

    #[test]
    fn kernel_stack_refuses_the_frame() {
        let mut cell = [0u64; 4];
        let base = cell.as_mut_ptr() as u64;
        let mut stack = KernelStack {
            frame_start: base + 16,
            frame_end: base + 32,
        };
        stack.store_u64(base, 5).unwrap();
        stack.store_u64(base + 8, 6).unwrap();
        assert_eq!(
            stack.store_u64(base + 12, 1),
            Err(EmulationError::Store(base + 12))
        );
        assert_eq!(
            stack.load_u64(base + 16),
            Err(EmulationError::Load(base + 16))
        );
        assert_eq!(stack.load_u64(base + 8), Ok(6));
        assert_eq!(cell[..2], [5, 6]);
    }
}
