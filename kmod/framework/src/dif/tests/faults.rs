//! Every run-time fault the VM raises, with its code, address and offset.

use super::*;
use crate::dif::abi::subr;
use crate::dif::FaultCode;

#[test]
fn division_by_zero_in_every_form() {
    for opc in [op::SDIV, op::UDIV, op::SREM, op::UREM] {
        let mut asm = Asm::new();
        asm.set(1, 10).r3(opc, 1, 0, 2).ret(2);
        let f = eval(&asm).unwrap_err();
        assert_eq!(f.code, FaultCode::DivZero, "op {opc}");
        assert_eq!(f.offset, 4, "the divide is instruction 1 (byte offset 4)");
    }
}

#[test]
fn bad_address_load_reports_address_and_offset() {
    let mut asm = Asm::new();
    asm.set(1, 0xdead_0000)
        .i(instr(op::NOP, 0, 0, 0))
        .r3(op::LDX, 1, 0, 2)
        .ret(2);
    let f = eval(&asm).unwrap_err();
    assert_eq!(f.code, FaultCode::BadAddr);
    assert_eq!(f.addr, 0xdead_0000);
    assert_eq!(f.offset, 8);
    // A load running off the end of mapped memory faults too.
    let mut asm = Asm::new();
    asm.set(1, KMEM + 252).r3(op::LDX, 1, 0, 2).ret(2);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::BadAddr);
    // NULL.
    let mut asm = Asm::new();
    asm.r3(op::LDUB, 0, 0, 2).ret(2);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::BadAddr);
}

#[test]
fn misaligned_accesses() {
    // The platform reports misaligned loads in its strict window.
    let mut asm = Asm::new();
    asm.set(1, 0xa000_0001).r3(op::LDUW, 1, 0, 2).ret(2);
    let f = eval(&asm).unwrap_err();
    assert_eq!((f.code, f.addr), (FaultCode::BadAlign, 0xa000_0001));
    // Misaligned stores are refused by the VM itself.
    for (opc, off) in [(op::STH, 1u64), (op::STW, 2), (op::STX, 4)] {
        let mut asm = Asm::new();
        asm.set(2, 32)
            .r3(op::ALLOCS, 2, 0, 1)
            .set(3, off)
            .r3(op::ADD, 1, 3, 1)
            .r3(opc, 2, 0, 1)
            .ret(0);
        let f = eval(&asm).unwrap_err();
        assert_eq!(f.code, FaultCode::BadAlign, "op {opc}");
        assert_eq!(f.offset, 16);
    }
}

#[test]
fn stores_outside_owned_memory_are_bad_addresses() {
    // Kernel memory (even readable) is not writable by D.
    let mut asm = Asm::new();
    asm.set(1, KMEM).set(2, 5).r3(op::STX, 2, 0, 1).ret(0);
    let f = eval(&asm).unwrap_err();
    assert_eq!((f.code, f.addr), (FaultCode::BadAddr, KMEM));
    // Nor is the string table.
    let mut asm = Asm::new();
    asm.sets(1, "constant")
        .set(2, 5)
        .r3(op::STB, 2, 0, 1)
        .ret(0);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::BadAddr);
    // Nor scratch beyond what was allocated.
    let mut asm = Asm::new();
    asm.set(2, 8)
        .r3(op::ALLOCS, 2, 0, 1)
        .r3(op::ADD, 1, 2, 1)
        .r3(op::STX, 2, 0, 1)
        .ret(0);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::BadAddr);
    // COPYS into kernel memory.
    let mut asm = Asm::new();
    asm.sets(1, "abc")
        .set(2, 3)
        .set(3, KMEM)
        .r3(op::COPYS, 1, 2, 3)
        .ret(0);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::BadAddr);
}

#[test]
fn scratch_exhaustion() {
    let mut asm = Asm::new();
    asm.set(2, 1 << 20).r3(op::ALLOCS, 2, 0, 1).ret(1);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::NoScratch);
    // alloca(-1) must not wrap around.
    let mut asm = Asm::new();
    asm.set(1, u64::MAX).pushv(1).call(subr::ALLOCA, 2).ret(2);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::NoScratch);
    // A string result needs room for strsize bytes: with strsize larger
    // than the 8 KiB scratch region it cannot be built.
    let mut asm = Asm::new();
    asm.sets(1, "x");
    for _ in 0..3 {
        asm.flush().pushs(1).call(subr::TOUPPER, 2);
    }
    asm.ret(2);
    let d = asm.difo();
    let mut h = Harness::new(&[&d]);
    h.strsize = 16384;
    assert_eq!(h.run(&d).unwrap_err().code, FaultCode::NoScratch);
    h.strsize = 256;
    assert!(h.run(&d).is_ok());
}

#[test]
fn tuple_stack_overflow() {
    let mut asm = Asm::new();
    for _ in 0..9 {
        asm.pushv(0);
    }
    asm.ret(0);
    let f = eval(&asm).unwrap_err();
    assert_eq!(f.code, FaultCode::TupOflow);
    assert_eq!(f.offset, 8 * 4);
    // Eight is fine.
    let mut asm = Asm::new();
    for _ in 0..8 {
        asm.pushv(0);
    }
    asm.ret(0);
    assert!(eval(&asm).is_ok());
}

#[test]
fn illegal_operations() {
    // By-reference tuple entry larger than LONG_MAX.
    let mut asm = Asm::new();
    asm.set(2, u64::MAX)
        .i(instr(op::PUSHTR, type_kind::CTF, 2, 1))
        .ret(0);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::IllOp);
    // lltostr with a base out of range.
    for base in [0u64, 1, 37] {
        let mut asm = Asm::new();
        asm.set(1, 5)
            .set(2, base)
            .pushv(1)
            .pushv(2)
            .call(subr::LLTOSTR, 3)
            .ret(3);
        assert_eq!(
            eval(&asm).unwrap_err().code,
            FaultCode::IllOp,
            "base {base}"
        );
    }
    // inet_ntop with an unknown address family.
    let mut asm = Asm::new();
    asm.set(1, 99)
        .set(2, KMEM)
        .pushv(1)
        .pushv(2)
        .call(subr::INET_NTOP, 3)
        .ret(3);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::IllOp);
    // memstr beyond memstr_max.
    let mut asm = Asm::new();
    asm.set(1, KMEM)
        .set(2, 5000)
        .pushv(1)
        .pushv(0)
        .pushv(2)
        .call(subr::MEMSTR, 3)
        .ret(3);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::IllOp);
    // illumos-only subroutines.
    let mut asm = Asm::new();
    asm.pushv(0).call(subr::MSGSIZE, 3).ret(3);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::IllOp);
}

#[test]
fn copy_destinations_must_be_scratch() {
    // copyinto into kernel memory.
    let mut asm = Asm::new();
    asm.set(1, UMEM)
        .set(2, 4)
        .set(3, KMEM)
        .pushv(1)
        .pushv(2)
        .pushv(3)
        .call(subr::COPYINTO, 4)
        .ret(0);
    let f = eval(&asm).unwrap_err();
    assert_eq!((f.code, f.addr), (FaultCode::BadAddr, KMEM));
    // bcopy into the string table.
    let mut asm = Asm::new();
    asm.set(1, KMEM)
        .sets(2, "dst")
        .set(3, 2)
        .pushv(1)
        .pushv(2)
        .pushv(3)
        .call(subr::BCOPY, 4)
        .ret(0);
    assert_eq!(eval(&asm).unwrap_err().code, FaultCode::BadAddr);
    // copyin from an unmapped user address.
    let mut asm = Asm::new();
    asm.set(1, 0x1000)
        .set(2, 4)
        .pushv(1)
        .pushv(2)
        .call(subr::COPYIN, 4)
        .ret(4);
    let f = eval(&asm).unwrap_err();
    assert_eq!((f.code, f.addr), (FaultCode::BadAddr, 0x1000));
}

#[test]
fn kernel_privilege() {
    let mut asm = Asm::new();
    asm.set(1, KMEM).r3(op::RLDX, 1, 0, 2).ret(2);
    let d = asm.difo();
    let mut h = Harness::new(&[&d]);
    assert!(h.run(&d).is_ok());
    let mut ctx = ExecContext::new(
        h.platform,
        &h.globals,
        &h.locals,
        &h.arena,
        &mut h.scratch,
        &mut h.hooks,
    );
    ctx.kernel_visible = false;
    let f = execute(&d, &mut ctx).unwrap_err();
    assert_eq!((f.code, f.addr), (FaultCode::KPriv, KMEM));
    // Owned memory (the string table) stays readable.
    let mut asm = Asm::new();
    asm.sets(1, "own").r3(op::RLDUB, 1, 0, 2).ret(2);
    let d = asm.difo();
    let mut h = Harness::new(&[&d]);
    let mut ctx = ExecContext::new(
        h.platform,
        &h.globals,
        &h.locals,
        &h.arena,
        &mut h.scratch,
        &mut h.hooks,
    );
    ctx.kernel_visible = false;
    assert_eq!(execute(&d, &mut ctx).unwrap(), u64::from(b'o'));
}
