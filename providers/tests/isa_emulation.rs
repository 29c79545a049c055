//! Emulation of displaced instructions: sites are decoded from hand-assembled
//! machine code, then emulated against register files and a stack window, and
//! the results are checked against the architecture's semantics (and, for
//! x86_64 `sub`'s flags, against the host CPU itself).

use rdtrace_providers::fbt::isa::aarch64::{A64Emulation, A64Reg, Aarch64};
use rdtrace_providers::fbt::isa::riscv64::{Riscv64, RvEmulation, RvReg};
use rdtrace_providers::fbt::isa::x86_64::{X86Emulation, X86Reg, X86_64};
use rdtrace_providers::fbt::isa::{EmulationError, Isa, PatchSite, RegisterFile, SliceMemory};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
struct Regs<R: std::hash::Hash + Eq>(HashMap<R, u64>);

impl<R: std::hash::Hash + Eq> Default for Regs<R> {
    fn default() -> Self {
        Regs(HashMap::new())
    }
}

impl<R: Copy + std::hash::Hash + Eq> RegisterFile<R> for Regs<R> {
    fn get(&self, reg: R) -> u64 {
        self.0.get(&reg).copied().unwrap_or(0)
    }
    fn set(&mut self, reg: R, value: u64) {
        self.0.insert(reg, value);
    }
}

const STACK_BASE: u64 = 0x7000_0000;

fn stack() -> Vec<u8> {
    vec![0u8; 256]
}

fn read_u64(stack: &[u8], addr: u64) -> u64 {
    let off = (addr - STACK_BASE) as usize;
    u64::from_le_bytes(stack[off..off + 8].try_into().unwrap())
}

fn write_u64(stack: &mut [u8], addr: u64, v: u64) {
    let off = (addr - STACK_BASE) as usize;
    stack[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

// ------------------------------------------------------------------ x86_64

const FN: u64 = 0x40_1000;

fn x86_entry(code: &[u8]) -> PatchSite<X86Emulation> {
    X86_64::find_entry(code, FN).expect("entry site")
}

fn x86_returns(code: &[u8]) -> Vec<PatchSite<X86Emulation>> {
    let mut v = Vec::new();
    X86_64::find_returns(code, FN, &mut |s| v.push(s));
    v
}

#[test]
fn x86_push_rbp_and_push_r15() {
    // push %rbp; mov %rsp,%rbp; ret
    let site = x86_entry(&[0x55, 0x48, 0x89, 0xe5, 0xc3]);
    assert_eq!(site.emulation, X86Emulation::Push(X86Reg::Rbp));
    assert_eq!((site.offset, site.len, site.original.bits), (0, 1, 0x55));
    let mut regs = Regs::default();
    regs.set(X86Reg::Rsp, STACK_BASE + 0x80);
    regs.set(X86Reg::Rbp, 0xdead_beef_1234);
    regs.set(X86Reg::Rip, FN + 1);
    let mut mem = stack();
    X86_64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(X86Reg::Rsp), STACK_BASE + 0x78);
    assert_eq!(read_u64(&mem, STACK_BASE + 0x78), 0xdead_beef_1234);
    assert_eq!(regs.get(X86Reg::Rip), FN + 1);

    // endbr64; push %r15 (41 57): the entry skips the landing pad.
    let site = x86_entry(&[0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x57, 0xc3]);
    assert_eq!((site.offset, site.len), (4, 2));
    assert_eq!(site.emulation, X86Emulation::Push(X86Reg::R15));
    regs.set(X86Reg::R15, 77);
    X86_64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(X86Reg::Rsp), STACK_BASE + 0x70);
    assert_eq!(read_u64(&mem, STACK_BASE + 0x70), 77);
    assert_eq!(regs.get(X86Reg::Rip), FN + 6);
}

#[test]
fn x86_mov_nop_call() {
    let site = x86_entry(&[0x48, 0x8b, 0xec, 0xc3]); // mov %rsp,%rbp (8B form)
    assert_eq!(site.emulation, X86Emulation::MovRspRbp);
    let mut regs = Regs::default();
    regs.set(X86Reg::Rsp, 0x1234);
    let mut mem = stack();
    X86_64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(
        (regs.get(X86Reg::Rbp), regs.get(X86Reg::Rip)),
        (0x1234, FN + 3)
    );

    let site = x86_entry(&[0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3]); // 5-byte nop
    assert_eq!((site.emulation, site.len), (X86Emulation::Nop, 5));
    X86_64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(X86Reg::Rip), FN + 5);

    // call rel32 +0x100: pushes FN+5 and jumps to FN+5+0x100.
    let site = x86_entry(&[0xe8, 0x00, 0x01, 0x00, 0x00, 0xc3]);
    assert_eq!(site.emulation, X86Emulation::Call(FN + 5 + 0x100));
    regs.set(X86Reg::Rsp, STACK_BASE + 0x40);
    X86_64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(X86Reg::Rip), FN + 0x105);
    assert_eq!(regs.get(X86Reg::Rsp), STACK_BASE + 0x38);
    assert_eq!(read_u64(&mem, STACK_BASE + 0x38), FN + 5);
}

/// `sub %rhs,%lhs` on the real CPU: (result, rflags & arithmetic flags).
#[cfg(target_arch = "x86_64")]
fn host_sub(lhs: u64, rhs: u64) -> (u64, u64) {
    let result: u64;
    let flags: u64;
    // SAFETY: plain register arithmetic; pushfq/pop use the stack balanced.
    unsafe {
        core::arch::asm!(
            "sub {a}, {b}",
            "pushfq",
            "pop {f}",
            a = inout(reg) lhs => result,
            b = in(reg) rhs,
            f = out(reg) flags,
        );
    }
    (result, flags & 0x8d5)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x86_sub_rsp_flags_match_the_cpu() {
    let cases: [(u64, i32); 8] = [
        (0x7fff_0000_0010, 0x10),
        (0x7fff_0000_0010, 0x18),
        (0x10, 0x20),
        (0x8000_0000_0000_0000, 1),
        (0, 8),
        (0x1000, -8),
        (0xffff_ffff_ffff_fff0, 0x7fff_ffff),
        (0x7fff_ffff_ffff_ffff, -1),
    ];
    for (rsp, imm) in cases {
        // sub $imm32,%rsp  (48 81 ec imm32)
        let mut code = vec![0x48, 0x81, 0xec];
        code.extend_from_slice(&imm.to_le_bytes());
        code.push(0xc3);
        let site = x86_entry(&code);
        assert_eq!(site.emulation, X86Emulation::SubRsp(imm));
        let mut regs = Regs::default();
        regs.set(X86Reg::Rsp, rsp);
        regs.set(X86Reg::Rflags, 0x202 | 0x8d5); // all arithmetic flags set beforehand
        let mut mem = stack();
        X86_64::emulate(
            &site,
            &mut regs,
            &mut SliceMemory {
                base: STACK_BASE,
                bytes: &mut mem,
            },
        )
        .unwrap();
        let (want_rsp, want_flags) = host_sub(rsp, i64::from(imm) as u64);
        assert_eq!(regs.get(X86Reg::Rsp), want_rsp);
        assert_eq!(
            regs.get(X86Reg::Rflags),
            0x202 | want_flags,
            "flags of {rsp:#x} - {imm:#x}"
        );
        assert_eq!(regs.get(X86Reg::Rip), FN + 7);
    }
    // The imm8 form: sub $0x28,%rsp (48 83 ec 28).
    assert_eq!(
        x86_entry(&[0x48, 0x83, 0xec, 0x28, 0xc3]).emulation,
        X86Emulation::SubRsp(0x28)
    );
}

#[test]
fn x86_ret_leave_pop_jmp() {
    // push %rbp; mov %rsp,%rbp; leave; ret; ret $16; pop %rbp; jmp -> outside
    let code = [
        0x55, 0x48, 0x89, 0xe5, 0xc9, 0xc3, 0xc2, 0x10, 0x00, 0x5d, 0xe9, 0x00, 0x10, 0x00, 0x00,
    ];
    let returns = x86_returns(&code);
    let kinds: Vec<_> = returns.iter().map(|s| (s.offset, s.emulation)).collect();
    assert_eq!(
        kinds,
        vec![
            (5, X86Emulation::Ret(0)),
            (6, X86Emulation::Ret(16)),
            (10, X86Emulation::Jmp(FN + 15 + 0x1000)),
        ]
    );
    let mut mem = stack();
    let mut regs = Regs::default();
    write_u64(&mut mem, STACK_BASE + 0x50, 0xabcdef);
    regs.set(X86Reg::Rsp, STACK_BASE + 0x50);
    X86_64::emulate(
        &returns[0],
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(
        (regs.get(X86Reg::Rip), regs.get(X86Reg::Rsp)),
        (0xabcdef, STACK_BASE + 0x58)
    );
    regs.set(X86Reg::Rsp, STACK_BASE + 0x50);
    X86_64::emulate(
        &returns[1],
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(
        (regs.get(X86Reg::Rip), regs.get(X86Reg::Rsp)),
        (0xabcdef, STACK_BASE + 0x68)
    );
    X86_64::emulate(
        &returns[2],
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(X86Reg::Rip), FN + 15 + 0x1000);

    // leave: rsp = rbp + 8, rbp = [rbp]
    let leave = PatchSite {
        emulation: X86Emulation::Leave,
        addr: FN + 4,
        offset: 4,
        len: 1,
        ..returns[0]
    };
    write_u64(&mut mem, STACK_BASE + 0x90, 0x5555);
    regs.set(X86Reg::Rbp, STACK_BASE + 0x90);
    regs.set(X86Reg::Rsp, STACK_BASE + 0x10);
    X86_64::emulate(
        &leave,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(X86Reg::Rbp), 0x5555);
    assert_eq!(regs.get(X86Reg::Rsp), STACK_BASE + 0x98);
    assert_eq!(regs.get(X86Reg::Rip), FN + 5);
    // pop %rbp
    let pop = PatchSite {
        emulation: X86Emulation::PopRbp,
        addr: FN + 9,
        offset: 9,
        len: 1,
        ..returns[0]
    };
    write_u64(&mut mem, STACK_BASE + 0x20, 0x6666);
    regs.set(X86Reg::Rsp, STACK_BASE + 0x20);
    X86_64::emulate(
        &pop,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(
        (
            regs.get(X86Reg::Rbp),
            regs.get(X86Reg::Rsp),
            regs.get(X86Reg::Rip)
        ),
        (0x6666, STACK_BASE + 0x28, FN + 10)
    );
}

#[test]
fn x86_bad_stack_is_an_error_and_changes_nothing() {
    let site = x86_entry(&[0x55, 0xc3]);
    let mut regs = Regs::default();
    regs.set(X86Reg::Rsp, 0x10); // far below the window
    let before = regs.clone();
    let mut mem = stack();
    let err = X86_64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    );
    assert_eq!(err, Err(EmulationError::Store(0x8)));
    assert_eq!(regs, before);
}

#[test]
fn x86_jump_table_data_stops_the_walk() {
    // ret, then zero-filled data with a 0xc3 byte inside: the walk must stop
    // at the data and not report a return there.
    let code = [0xc3, 0x00, 0x00, 0x00, 0xc3, 0x00];
    let returns = x86_returns(&code);
    assert_eq!(
        returns.iter().map(|s| s.offset).collect::<Vec<_>>(),
        vec![0]
    );
    // No entry site when the first instruction is not emulatable (lea).
    assert!(X86_64::find_entry(&[0x48, 0x8d, 0x04, 0x37, 0xc3], FN).is_none());
}

// ------------------------------------------------------------------ aarch64

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn aarch64_stp_sub_str_ret_b() {
    // bti c; stp x29, x30, [sp, #-32]!; mov x29, sp; ret; b +0x100 (outside)
    let code = words(&[0xd503245f, 0xa9be7bfd, 0x910003fd, 0xd65f03c0, 0x14000040]);
    let site = Aarch64::find_entry(&code, FN).unwrap();
    assert_eq!(site.offset, 4);
    assert_eq!(
        site.emulation,
        A64Emulation::StpPreIndex {
            rt: 29,
            rt2: 30,
            offset: -32
        }
    );
    assert_eq!(site.patch.bits, 0xD42081A0);
    let mut regs = Regs::default();
    regs.set(A64Reg::Sp, STACK_BASE + 0x80);
    regs.set(A64Reg::X(29), 0x2929);
    regs.set(A64Reg::X(30), 0x3030);
    let mut mem = stack();
    Aarch64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(A64Reg::Sp), STACK_BASE + 0x60);
    assert_eq!(read_u64(&mem, STACK_BASE + 0x60), 0x2929);
    assert_eq!(read_u64(&mem, STACK_BASE + 0x68), 0x3030);
    assert_eq!(regs.get(A64Reg::Pc), FN + 8);

    let mut returns = Vec::new();
    Aarch64::find_returns(&code, FN, &mut |s| returns.push(s));
    assert_eq!(
        returns
            .iter()
            .map(|s| (s.offset, s.emulation))
            .collect::<Vec<_>>(),
        vec![
            (12, A64Emulation::Ret { rn: 30 }),
            (
                16,
                A64Emulation::B {
                    target: FN + 16 + 0x100
                }
            )
        ]
    );
    Aarch64::emulate(
        &returns[0],
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(A64Reg::Pc), 0x3030);
    Aarch64::emulate(
        &returns[1],
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(A64Reg::Pc), FN + 0x110);

    // sub sp, sp, #1, lsl #12
    let site = Aarch64::find_entry(&words(&[0xd14007ff, 0xd65f03c0]), FN).unwrap();
    assert_eq!(site.emulation, A64Emulation::SubSp { amount: 4096 });
    regs.set(A64Reg::Sp, 0x10_0000);
    Aarch64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(
        (regs.get(A64Reg::Sp), regs.get(A64Reg::Pc)),
        (0x10_0000 - 4096, FN + 4)
    );

    // str x30, [sp, #-16]!
    let site = Aarch64::find_entry(&words(&[0xf81f0ffe, 0xd65f03c0]), FN).unwrap();
    assert_eq!(
        site.emulation,
        A64Emulation::StrPreIndex {
            rt: 30,
            offset: -16
        }
    );
    regs.set(A64Reg::Sp, STACK_BASE + 0x40);
    Aarch64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(A64Reg::Sp), STACK_BASE + 0x30);
    assert_eq!(read_u64(&mem, STACK_BASE + 0x30), 0x3030);

    // stp xzr stores zero.
    let site = PatchSite {
        emulation: A64Emulation::StpPreIndex {
            rt: 31,
            rt2: 30,
            offset: -16,
        },
        ..site
    };
    write_u64(&mut mem, STACK_BASE + 0x20, 0xffff);
    Aarch64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(read_u64(&mem, STACK_BASE + 0x20), 0);
}

#[test]
fn aarch64_nop_start_and_branch_before_prologue_mean_no_entry() {
    assert!(Aarch64::find_entry(&words(&[0xd503201f, 0xa9bf7bfd]), FN).is_none());
    // cbz x0, +8 before the stp: the stp is not on every path.
    assert!(Aarch64::find_entry(&words(&[0xb4000040, 0xa9bf7bfd, 0xd65f03c0]), FN).is_none());
}

// ------------------------------------------------------------------ riscv64

fn halves(hs: &[u16]) -> Vec<u8> {
    hs.iter().flat_map(|h| h.to_le_bytes()).collect()
}

#[test]
fn riscv_compressed_and_full_forms() {
    // c.addi sp,-32 (0x1101); c.sdsp ra,24(sp) (0xec06); c.jr ra (0x8082)
    let code = halves(&[0x1101, 0xec06, 0x8082]);
    let site = Riscv64::find_entry(&code, FN).unwrap();
    assert_eq!(site.emulation, RvEmulation::AdjustSp { imm: -32 });
    assert_eq!(
        (site.len, site.patch.bits, site.patch.width),
        (2, 0x9002, 2)
    );
    let mut regs = Regs::default();
    regs.set(RvReg::X(2), STACK_BASE + 0x80);
    regs.set(RvReg::X(1), 0x1111);
    let mut mem = stack();
    Riscv64::emulate(
        &site,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(
        (regs.get(RvReg::X(2)), regs.get(RvReg::Pc)),
        (STACK_BASE + 0x60, FN + 2)
    );

    let sdsp = PatchSite {
        emulation: RvEmulation::StoreToStack { rs2: 1, offset: 24 },
        addr: FN + 2,
        offset: 2,
        ..site
    };
    Riscv64::emulate(
        &sdsp,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(read_u64(&mem, STACK_BASE + 0x78), 0x1111);

    let mut returns = Vec::new();
    Riscv64::find_returns(&code, FN, &mut |s| returns.push(s));
    assert_eq!(returns.len(), 1);
    assert_eq!(
        (returns[0].offset, returns[0].emulation),
        (4, RvEmulation::JumpRegister { rs1: 1, offset: 0 })
    );
    Riscv64::emulate(
        &returns[0],
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(RvReg::Pc), 0x1110, "jalr clears bit 0");

    // sd ra,8(sp) = 0x00113423; addi sp,sp,-16 = 0xff010113; ret = 0x00008067
    let mut code = Vec::new();
    for w in [0xff010113u32, 0x00113423, 0x00008067] {
        code.extend_from_slice(&w.to_le_bytes());
    }
    let site = Riscv64::find_entry(&code, FN).unwrap();
    assert_eq!(
        (site.emulation, site.len),
        (RvEmulation::AdjustSp { imm: -16 }, 4)
    );
    assert_eq!(site.patch.bits, 0x0010_0073);
    let sd = Riscv64::find_entry(&code[4..], FN + 4).unwrap();
    assert_eq!(
        sd.emulation,
        RvEmulation::StoreToStack { rs2: 1, offset: 8 }
    );
    regs.set(RvReg::X(2), STACK_BASE + 0x40);
    Riscv64::emulate(
        &sd,
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(read_u64(&mem, STACK_BASE + 0x48), 0x1111);
    assert_eq!(regs.get(RvReg::Pc), FN + 8);
    let mut returns = Vec::new();
    Riscv64::find_returns(&code, FN, &mut |s| returns.push(s));
    assert_eq!(
        (returns[0].offset, returns[0].len, returns[0].patch.width),
        (8, 4, 4)
    );

    // tail call: auipc t1, 0x1 (0x00001317); jalr zero, 8(t1) (0x00830067)
    let mut code = Vec::new();
    for w in [0x00001317u32, 0x00830067] {
        code.extend_from_slice(&w.to_le_bytes());
    }
    let mut returns = Vec::new();
    Riscv64::find_returns(&code, FN, &mut |s| returns.push(s));
    assert_eq!(returns.len(), 1);
    assert_eq!(
        (returns[0].offset, returns[0].emulation),
        (4, RvEmulation::JumpRegister { rs1: 6, offset: 8 })
    );
    regs.set(RvReg::X(6), FN + 0x1000);
    Riscv64::emulate(
        &returns[0],
        &mut regs,
        &mut SliceMemory {
            base: STACK_BASE,
            bytes: &mut mem,
        },
    )
    .unwrap();
    assert_eq!(regs.get(RvReg::Pc), FN + 0x1008);
    // The same jalr without the auipc is an indirect jump, not a return.
    let mut none = Vec::new();
    Riscv64::find_returns(&code[4..], FN + 4, &mut |s| none.push(s));
    assert!(none.is_empty());
}
