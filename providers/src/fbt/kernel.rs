//! The fbt breakpoint handlers the FreeBSD module's trap glue calls, one per
//! architecture, over the kernel's trap frame (see `trapframe.rs`).
//!
//! * amd64: the trap stub calls [`amd64_invop`] with the breakpoint address
//!   and the frame. It returns 0 when the breakpoint is not fbt's, one of
//!   FreeBSD's `DTRACE_INVOP_*` codes (1 push %rbp, 2 pop %rbp, 3 leave,
//!   4 nop, 5 ret) for the stub to carry out — those touch the stack the
//!   frame lives on — or [`INVOP_EMULATED`] when the instruction was
//!   emulated on the frame's registers alone and the stub only has to return
//!   from the trap.
//! * arm64 and riscv64: `dtrace_invop_jump_addr(frame)` → [`arm64_invop`] /
//!   [`riscv64_invop`], which fire and emulate completely and return 0 when
//!   handled, non-zero to let the kernel's normal breakpoint handling run.
//!
//! Probe context: everything here.

use super::isa::aarch64::{A64Reg, Aarch64};
use super::isa::riscv64::{Riscv64, RvReg};
use super::isa::x86_64::{X86Emulation, X86_64};
use super::isa::{Isa, RegisterFile};
use super::provider::{FbtProvider, Invop};
use super::trapframe::{Amd64TrapFrame, Arm64TrapFrame, KernelStack, RiscvTrapFrame};

/// amd64 result: emulated on the frame; the stub just returns from the trap.
pub const INVOP_EMULATED: i32 = 0x100;

/// The amd64 handler (see the module comment). `addr` is the address of the
/// `int3` (the frame's rip minus one).
pub fn amd64_invop(
    provider: &FbtProvider<X86_64>,
    addr: u64,
    frame: &mut Amd64TrapFrame<'_>,
) -> i32 {
    let Some(site) = provider.fire_site(addr, frame) else {
        return 0;
    };
    match site.emulation {
        // Instructions that only change registers are emulated here.
        X86Emulation::MovRspRbp | X86Emulation::SubRsp(_) | X86Emulation::Jmp(_) => {
            // The trap frame is below rsp; these never touch memory, so a
            // refusing stack suffices.
            let mut no_memory = KernelStack {
                frame_start: 0,
                frame_end: u64::MAX,
            };
            match X86_64::emulate(&site, frame, &mut no_memory) {
                Ok(()) => INVOP_EMULATED,
                Err(_) => 0,
            }
        }
        other => other.freebsd_invop_code().unwrap_or(0),
    }
}

const ARM64_FRAME_BYTES: u64 = 36 * 8;
const RISCV_FRAME_BYTES: u64 = 35 * 8;

/// The arm64 handler: `frame_addr` is the trap frame's address.
pub fn arm64_invop(
    provider: &FbtProvider<Aarch64>,
    frame_addr: u64,
    frame: &mut Arm64TrapFrame<'_>,
) -> i32 {
    let addr = frame.get(A64Reg::Pc);
    let mut stack = KernelStack {
        frame_start: frame_addr,
        frame_end: frame_addr.wrapping_add(ARM64_FRAME_BYTES),
    };
    match provider.invop(addr, frame, &mut stack) {
        Invop::Emulated => 0,
        Invop::NotOurs | Invop::Failed(_) => 1,
    }
}

/// The riscv64 handler: `frame_addr` is the trap frame's address.
pub fn riscv64_invop(
    provider: &FbtProvider<Riscv64>,
    frame_addr: u64,
    frame: &mut RiscvTrapFrame<'_>,
) -> i32 {
    let addr = frame.get(RvReg::Pc);
    let mut stack = KernelStack {
        frame_start: frame_addr,
        frame_end: frame_addr.wrapping_add(RISCV_FRAME_BYTES),
    };
    match provider.invop(addr, frame, &mut stack) {
        Invop::Emulated => 0,
        Invop::NotOurs | Invop::Failed(_) => 1,
    }
}

/// Compile-time check that the frame sizes agree with the register files.
const _: () = {
    assert!(ARM64_FRAME_BYTES == 288);
    assert!(RISCV_FRAME_BYTES == 280);
    assert!(<Aarch64 as Isa>::AFRAMES == 4);
};
