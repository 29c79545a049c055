//! One or more hand-assembled programs per opcode.

use super::*;
use crate::dif::abi::subr;
use crate::dif::bench_support::{arith_program, branch};

fn binop(opc: u8, a: u64, b: u64) -> u64 {
    let mut asm = Asm::new();
    asm.set(1, a).set(2, b).r3(opc, 1, 2, 3).ret(3);
    eval(&asm).unwrap()
}

#[test]
fn arithmetic_and_logic() {
    assert_eq!(binop(op::OR, 0b1100, 0b1010), 0b1110);
    assert_eq!(binop(op::XOR, 0b1100, 0b1010), 0b0110);
    assert_eq!(binop(op::AND, 0b1100, 0b1010), 0b1000);
    assert_eq!(binop(op::SLL, 1, 63), 1 << 63);
    assert_eq!(binop(op::SRL, 1 << 63, 63), 1);
    assert_eq!(binop(op::SRA, (-16i64) as u64, 2), (-4i64) as u64);
    assert_eq!(binop(op::SRL, (-16i64) as u64, 60), 0xf);
    assert_eq!(binop(op::SUB, 3, 5), (-2i64) as u64);
    assert_eq!(binop(op::ADD, u64::MAX, 2), 1);
    assert_eq!(binop(op::MUL, 1 << 32, 1 << 32), 0);
    assert_eq!(binop(op::MUL, 7, 6), 42);
    assert_eq!(binop(op::SDIV, (-7i64) as u64, 2), (-3i64) as u64);
    assert_eq!(binop(op::UDIV, (-7i64) as u64, 2), ((-7i64) as u64) / 2);
    assert_eq!(binop(op::SREM, (-7i64) as u64, 2), (-1i64) as u64);
    assert_eq!(binop(op::UREM, 7, 4), 3);
    assert_eq!(
        binop(op::SDIV, i64::MIN as u64, (-1i64) as u64),
        i64::MIN as u64
    );
}

#[test]
fn not_mov_nop() {
    let mut asm = Asm::new();
    asm.set(1, 0x0f)
        .r3(op::NOT, 1, 0, 2)
        .i(instr(op::NOP, 0, 0, 0))
        .r3(op::MOV, 2, 0, 3)
        .ret(3);
    assert_eq!(eval(&asm).unwrap(), !0x0fu64);
}

#[test]
fn r0_reads_as_zero_and_ret_r0() {
    let mut asm = Asm::new();
    asm.set(1, 9).r3(op::ADD, 0, 0, 2).ret(0);
    assert_eq!(eval(&asm).unwrap(), 0);
}

/// Run `cmp a, b; <br> taken; ret 0; taken: ret 1` (or `tst a` when `tst`).
fn branch_taken(br: u8, a: u64, b: u64, tst: bool) -> bool {
    let mut asm = Asm::new();
    asm.set(1, a).set(2, b).set(3, 1);
    if tst {
        asm.r3(op::TST, 1, 0, 0);
    } else {
        asm.r3(op::CMP, 1, 2, 0);
    }
    let target = asm.text.len() as u32 + 2;
    asm.i(branch(br, target)).ret(0).ret(3);
    eval(&asm).unwrap() == 1
}

#[test]
fn signed_and_unsigned_condition_codes() {
    let neg1 = (-1i64) as u64;
    // Equal.
    assert!(branch_taken(op::BE, 5, 5, false));
    assert!(!branch_taken(op::BNE, 5, 5, false));
    assert!(branch_taken(op::BNE, 5, 6, false));
    // -1 vs 1: signed less, unsigned greater.
    assert!(branch_taken(op::BL, neg1, 1, false));
    assert!(branch_taken(op::BLE, neg1, 1, false));
    assert!(!branch_taken(op::BG, neg1, 1, false));
    assert!(!branch_taken(op::BGE, neg1, 1, false));
    assert!(branch_taken(op::BGU, neg1, 1, false));
    assert!(branch_taken(op::BGEU, neg1, 1, false));
    assert!(!branch_taken(op::BLU, neg1, 1, false));
    assert!(!branch_taken(op::BLEU, neg1, 1, false));
    // Equal values: the "or equal" forms only.
    assert!(branch_taken(op::BGE, 4, 4, false));
    assert!(branch_taken(op::BLE, 4, 4, false));
    assert!(branch_taken(op::BGEU, 4, 4, false));
    assert!(branch_taken(op::BLEU, 4, 4, false));
    assert!(!branch_taken(op::BG, 4, 4, false));
    assert!(!branch_taken(op::BGU, 4, 4, false));
    assert!(!branch_taken(op::BL, 4, 4, false));
    assert!(!branch_taken(op::BLU, 4, 4, false));
    // Extremes: INT64_MIN < 1 signed (subtraction would overflow).
    assert!(branch_taken(op::BL, i64::MIN as u64, 1, false));
    assert!(branch_taken(op::BG, i64::MAX as u64, neg1, false));
    // TST sets z only.
    assert!(branch_taken(op::BE, 0, 0, true));
    assert!(branch_taken(op::BNE, 3, 0, true));
    assert!(!branch_taken(op::BL, neg1, 0, true));
    // BA is unconditional.
    assert!(branch_taken(op::BA, 1, 2, false));
}

fn load(opc: u8, addr: u64) -> Result<u64, Fault> {
    let mut asm = Asm::new();
    asm.set(1, addr).r3(opc, 1, 0, 2).ret(2);
    eval(&asm)
}

#[test]
fn kernel_loads_sign_and_zero_extend() {
    // Simulated kernel memory holds byte i at KMEM + i.
    let at = KMEM + 0xf0; // bytes f0 f1 f2 f3 ...
    assert_eq!(load(op::LDUB, at).unwrap(), 0xf0);
    assert_eq!(load(op::LDSB, at).unwrap(), 0xffff_ffff_ffff_fff0);
    assert_eq!(load(op::LDUH, at).unwrap(), 0xf1f0);
    assert_eq!(load(op::LDSH, at).unwrap(), 0xffff_ffff_ffff_f1f0);
    assert_eq!(load(op::LDUW, at).unwrap(), 0xf3f2_f1f0);
    assert_eq!(load(op::LDSW, at).unwrap(), 0xffff_ffff_f3f2_f1f0);
    assert_eq!(load(op::LDX, at).unwrap(), 0xf7f6_f5f4_f3f2_f1f0);
    assert_eq!(load(op::LDX, KMEM + 8).unwrap(), 0x0f0e_0d0c_0b0a_0908);
    // The checked (RLD*) forms read the same memory.
    assert_eq!(load(op::RLDUB, at).unwrap(), 0xf0);
    assert_eq!(load(op::RLDSB, at).unwrap(), 0xffff_ffff_ffff_fff0);
    assert_eq!(load(op::RLDUH, at).unwrap(), 0xf1f0);
    assert_eq!(load(op::RLDSH, at).unwrap(), 0xffff_ffff_ffff_f1f0);
    assert_eq!(load(op::RLDUW, at).unwrap(), 0xf3f2_f1f0);
    assert_eq!(load(op::RLDSW, at).unwrap(), 0xffff_ffff_f3f2_f1f0);
    assert_eq!(load(op::RLDX, at).unwrap(), 0xf7f6_f5f4_f3f2_f1f0);
}

#[test]
fn user_loads_use_user_space() {
    let at = UMEM + 64; // bytes 0x40, 0x41, ...
    assert_eq!(load(op::ULDUB, at).unwrap(), 0x40);
    assert_eq!(load(op::ULDSB, at).unwrap(), 0x40);
    assert_eq!(load(op::ULDUH, at).unwrap(), 0x4140);
    assert_eq!(load(op::ULDSH, at).unwrap(), 0x4140);
    assert_eq!(load(op::ULDUW, at).unwrap(), 0x4342_4140);
    assert_eq!(load(op::ULDSW, at).unwrap(), 0x4342_4140);
    assert_eq!(load(op::ULDX, at).unwrap(), 0x4746_4544_4342_4140);
    // The same address is not kernel memory.
    assert_eq!(load(op::LDUB, at).unwrap_err().code, FaultCode::BadAddr);
    // And a kernel address is not user memory.
    assert_eq!(load(op::ULDUB, KMEM).unwrap_err().code, FaultCode::BadAddr);
}

use crate::dif::FaultCode;

#[test]
fn setx_sets_and_scmp() {
    // SCMP: "abc" vs "abd" is less; equal strings set z.
    let mut asm = Asm::new();
    asm.sets(1, "abc")
        .sets(2, "abd")
        .set(3, 1)
        .r3(op::SCMP, 1, 2, 0);
    let t = asm.text.len() as u32 + 2;
    asm.i(branch(op::BL, t)).ret(0).ret(3);
    assert_eq!(eval(&asm).unwrap(), 1);

    let mut asm = Asm::new();
    asm.sets(1, "same")
        .sets(2, "same")
        .set(3, 1)
        .r3(op::SCMP, 1, 2, 0);
    let t = asm.text.len() as u32 + 2;
    asm.i(branch(op::BE, t)).ret(0).ret(3);
    assert_eq!(eval(&asm).unwrap(), 1);

    // A NULL string compares equal to "".
    let mut asm = Asm::new();
    asm.sets(1, "").set(3, 1).r3(op::SCMP, 1, 0, 0);
    let t = asm.text.len() as u32 + 2;
    asm.i(branch(op::BE, t)).ret(0).ret(3);
    assert_eq!(eval(&asm).unwrap(), 1);

    // SETX of a 64-bit constant.
    let mut asm = Asm::new();
    asm.set(4, 0xdead_beef_cafe_f00d).ret(4);
    assert_eq!(eval(&asm).unwrap(), 0xdead_beef_cafe_f00d);
}

#[test]
fn allocs_stores_and_loads_round_trip() {
    // r1 = allocs(16); stx/stw/sth/stb into it; read back each.
    let mut asm = Asm::new();
    asm.set(2, 16)
        .r3(op::ALLOCS, 2, 0, 1)
        .set(3, 0x1122_3344_5566_7788)
        .r3(op::STX, 3, 0, 1)
        .r3(op::LDX, 1, 0, 4)
        .set(5, 8)
        .r3(op::ADD, 1, 5, 6) // r6 = r1 + 8
        .r3(op::STW, 3, 0, 6)
        .r3(op::LDUW, 6, 0, 7)
        .r3(op::ADD, 4, 7, 4)
        .r3(op::STH, 3, 0, 6)
        .r3(op::LDUW, 6, 0, 7) // 0x5566_7788 with low half replaced by 0x7788
        .r3(op::ADD, 4, 7, 4)
        .r3(op::STB, 3, 0, 6)
        .r3(op::LDUB, 6, 0, 7)
        .r3(op::ADD, 4, 7, 4)
        .ret(4);
    let expected = 0x1122_3344_5566_7788u64
        .wrapping_add(0x5566_7788)
        .wrapping_add(0x5566_7788)
        .wrapping_add(0x88);
    assert_eq!(eval(&asm).unwrap(), expected);
}

#[test]
fn copys_copies_between_scratch_blocks() {
    let mut asm = Asm::new();
    asm.set(2, 8)
        .r3(op::ALLOCS, 2, 0, 1)
        .r3(op::ALLOCS, 2, 0, 3)
        .set(4, 0x0102_0304_0506_0708)
        .r3(op::STX, 4, 0, 1)
        .r3(op::COPYS, 1, 2, 3)
        .r3(op::LDX, 3, 0, 5)
        .ret(5);
    assert_eq!(eval(&asm).unwrap(), 0x0102_0304_0506_0708);
}

#[test]
fn tuple_stack_push_pop_flush() {
    // strlen() takes the top-of-stack arguments from the bottom: push
    // "four", pop it, push "sixsix": strlen sees "sixsix".
    let mut asm = Asm::new();
    asm.sets(1, "four")
        .sets(2, "sixsix")
        .pushs(1)
        .i(instr(op::POPTS, 0, 0, 0))
        .pushs(2)
        .call(subr::STRLEN, 3)
        .flush()
        .pushs(1)
        .call(subr::STRLEN, 4)
        .r3(op::MUL, 3, 4, 5)
        .ret(5);
    assert_eq!(eval(&asm).unwrap(), 6 * 4);
}

#[test]
fn builtin_variables() {
    use crate::dif::abi::var as v;
    let get = |id: u16| {
        let mut asm = Asm::new();
        asm.i(imm(op::LDGS, id, 1)).ret(1);
        eval(&asm)
    };
    assert_eq!(get(v::ARG0).unwrap(), 10);
    assert_eq!(get(v::ARG0 + 4).unwrap(), 14);
    assert_eq!(
        get(v::ARG0 + 7).unwrap(),
        1007,
        "arg7 comes from the provider hook"
    );
    assert_eq!(get(v::EPID).unwrap(), 42);
    assert_eq!(get(v::ID).unwrap(), 4242);
    assert_eq!(get(v::PID).unwrap(), 77);
    assert_eq!(get(v::PPID).unwrap(), 1);
    assert_eq!(get(v::TID).unwrap(), 100);
    assert_eq!(get(v::UID).unwrap(), 1001);
    assert_eq!(get(v::GID).unwrap(), 20);
    assert_eq!(get(v::JID).unwrap(), 3);
    assert_eq!(get(v::ERRNO).unwrap(), 2);
    assert_eq!(get(v::CPU).unwrap(), 1);
    assert_eq!(get(v::CURTHREAD).unwrap(), 0xffff_f800_0000_0100);
    assert_eq!(get(v::TIMESTAMP).unwrap(), 123_456_789);
    assert_eq!(get(v::WALLTIMESTAMP).unwrap(), 1_700_000_000_000_000_000);
    assert_eq!(get(v::STACKDEPTH).unwrap(), 7);
    assert_eq!(get(v::CALLER).unwrap(), 0xffff_ffff_8000_1234);
    assert_eq!(get(v::IPL).unwrap(), 0);
    // Unknown built-in: illegal operation.
    assert_eq!(get(0x1ff).unwrap_err().code, FaultCode::IllOp);

    let s = |id: u16| {
        let mut asm = Asm::new();
        asm.i(imm(op::LDGS, id, 1)).ret(1);
        eval_str(&mut asm)
    };
    assert_eq!(s(v::PROBEPROV), "syscall");
    assert_eq!(s(v::PROBEMOD), "freebsd");
    assert_eq!(s(v::PROBEFUNC), "open");
    assert_eq!(s(v::PROBENAME), "entry");
    assert_eq!(s(v::EXECNAME), "sshd");
    assert_eq!(s(v::JAILNAME), "0");
}

#[test]
fn args_array() {
    let get = |index: u64| {
        let mut asm = Asm::new();
        asm.set(2, index).i(instr(op::LDGA, 0, 2, 1)).ret(1);
        eval(&asm)
    };
    assert_eq!(get(0).unwrap(), 10);
    assert_eq!(get(3).unwrap(), 13);
    assert_eq!(get(9).unwrap(), 1009);
    // regs[] without a trap frame is an illegal operation; so is LDTA.
    let mut asm = Asm::new();
    asm.i(instr(op::LDGA, 1, 0, 1)).ret(1);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::IllOp);
    let mut asm = Asm::new();
    asm.i(instr(op::LDTA, 0, 0, 1)).ret(1);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::IllOp);
}

#[test]
fn bench_program_computes_its_expected_value() {
    for n in [8usize, 9, 100, 1000] {
        let (d, expected) = arith_program(n);
        assert!(d.text_len() <= n.max(10), "n={n} len={}", d.text_len());
        if n >= 10 {
            assert!(d.text_len() + 7 > n, "n={n} len={}", d.text_len());
        }
        let mut h = Harness::new(&[&d]);
        assert_eq!(h.ok(&d), expected, "n={n}");
        assert_ne!(expected, 0);
    }
}

#[test]
fn foreign_loads_go_through_the_platform_and_owned_ones_do_not() {
    let p = default_platform();
    let count = || p.loads.load(std::sync::atomic::Ordering::Relaxed);
    // Kernel load: one platform access.
    let mut asm = Asm::new();
    asm.set(1, KMEM + 8).r3(op::LDX, 1, 0, 2).ret(2);
    let d = asm.difo();
    let mut h = Harness::with_platform(p, &[&d], 4096, 64);
    let before = count();
    assert_eq!(h.ok(&d), 0x0f0e_0d0c_0b0a_0908);
    assert_eq!(count(), before + 1);
    // User load: one platform access.
    let mut asm = Asm::new();
    asm.set(1, UMEM).r3(op::ULDUB, 1, 0, 2).ret(2);
    let d = asm.difo();
    let before = count();
    assert_eq!(
        Harness::with_platform(p, &[&d], 4096, 64).ok(&d),
        u64::from(b'h')
    );
    assert_eq!(count(), before + 1);
    // Loads of scratch and the string table never reach the platform.
    let mut asm = Asm::new();
    asm.set(2, 8)
        .r3(op::ALLOCS, 2, 0, 1)
        .r3(op::LDX, 1, 0, 3)
        .sets(4, "s")
        .r3(op::LDUB, 4, 0, 5)
        .r3(op::ADD, 3, 5, 3)
        .ret(3);
    let d = asm.difo();
    let before = count();
    assert_eq!(
        Harness::with_platform(p, &[&d], 4096, 64).ok(&d),
        u64::from(b's')
    );
    assert_eq!(count(), before);
}

#[test]
fn scratch_allocations_are_aligned_even_in_an_unaligned_region() {
    let mut asm = Asm::new();
    asm.set(2, 3)
        .r3(op::ALLOCS, 2, 0, 1)
        .set(7, 8)
        .r3(op::ALLOCS, 7, 0, 3)
        .set(4, 7)
        .r3(op::AND, 3, 4, 5)
        .set(6, 0x55)
        .r3(op::STX, 6, 0, 3)
        .ret(5);
    let d = asm.difo();
    let mut h = Harness::new(&[&d]);
    let mut backing = vec![0u8; 4096 + 8];
    for skew in 0..8 {
        let region = &mut backing[skew..skew + 4096];
        let mut ctx = ExecContext::new(
            h.platform,
            &h.globals,
            &h.locals,
            &h.arena,
            region,
            &mut h.hooks,
        );
        assert_eq!(
            execute(&d, &mut ctx),
            Ok(0),
            "skew {skew}: second block 8-aligned, STX allowed"
        );
    }
}
