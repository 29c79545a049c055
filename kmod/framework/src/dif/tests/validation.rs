//! DIFO validation: what is rejected, with which message, and what passes.

use super::*;
use crate::dif::abi::{subr, var as v};
use crate::dif::bench_support::branch;

fn reject(asm: &Asm) -> DifoError {
    match asm.build() {
        Ok(_) => panic!("program accepted: {:x?}", asm.text),
        Err(e) => e,
    }
}

fn text(words: &[u32]) -> Asm {
    let mut a = Asm::new();
    for w in words {
        a.i(*w);
    }
    a
}

#[test]
fn accepts_a_plain_program() {
    let mut asm = Asm::new();
    asm.set(1, 1).sets(2, "s").r3(op::ADD, 1, 1, 3).ret(3);
    let d = asm.build().unwrap();
    assert_eq!(d.text_len(), 4);
    assert!(!d.is_destructive());
    assert!(!d.uses_dynvars());
    assert_eq!(d.dynvar_chunk_size(256), 0);
}

#[test]
fn branches_must_go_forward_inside_the_text() {
    let e = reject(&text(&[
        instr(op::NOP, 0, 0, 0),
        branch(op::BA, 0),
        instr(op::RET, 0, 0, 0),
    ]));
    assert_eq!(e.instruction, Some(1));
    assert!(e.message.contains("backward branch"), "{e}");
    let e = reject(&text(&[branch(op::BE, 0), instr(op::RET, 0, 0, 0)]));
    assert!(
        e.message.contains("backward"),
        "a branch to itself is a loop: {e}"
    );
    let e = reject(&text(&[branch(op::BNE, 5), instr(op::RET, 0, 0, 0)]));
    assert!(e.message.contains("invalid branch target 5"), "{e}");
    assert!(text(&[branch(op::BA, 1), instr(op::RET, 0, 0, 0)])
        .build()
        .is_ok());
}

#[test]
fn registers_must_exist_and_r0_is_read_only() {
    let e = reject(&text(&[instr(op::ADD, 9, 1, 2), instr(op::RET, 0, 0, 2)]));
    assert_eq!(e.to_string(), "DIF instruction 0: invalid register r1 9");
    let e = reject(&text(&[instr(op::ADD, 1, 8, 2), instr(op::RET, 0, 0, 2)]));
    assert!(e.message.contains("r2 8"), "{e}");
    let e = reject(&text(&[instr(op::ADD, 1, 1, 200), instr(op::RET, 0, 0, 2)]));
    assert!(e.message.contains("rd 200"), "{e}");
    let e = reject(&text(&[instr(op::ADD, 1, 1, 0), instr(op::RET, 0, 0, 0)]));
    assert!(e.message.contains("%r0"), "{e}");
    let e = reject(&text(&[instr(op::LDX, 1, 0, 0), instr(op::RET, 0, 0, 0)]));
    assert!(e.message.contains("%r0"), "{e}");
    let e = reject(&text(&[instr(op::RET, 0, 0, 8)]));
    assert!(e.message.contains("rd 8"), "{e}");
}

#[test]
fn reserved_fields_must_be_zero() {
    for w in [
        instr(op::NOT, 1, 1, 2),
        instr(op::MOV, 1, 3, 2),
        instr(op::CMP, 1, 2, 3),
        instr(op::TST, 1, 2, 0),
        instr(op::TST, 1, 0, 2),
        instr(op::NOP, 1, 0, 0),
        instr(op::POPTS, 0, 1, 0),
        instr(op::FLUSHTS, 0, 0, 1),
        instr(op::LDUB, 1, 1, 2),
        instr(op::STX, 1, 1, 2),
    ] {
        let e = reject(&text(&[w, instr(op::RET, 0, 0, 0)]));
        assert!(e.message.contains("reserved"), "{w:#x}: {e}");
    }
    let e = reject(&text(&[instr(op::RET, 1, 0, 0)]));
    assert!(e.message.contains("reserved"), "{e}");
}

#[test]
fn unknown_and_translator_opcodes_are_rejected() {
    for opc in [0u8, op::XLATE, op::XLARG, 80, 0xff] {
        let e = reject(&text(&[instr(opc, 0, 0, 1), instr(op::RET, 0, 0, 0)]));
        assert_eq!(
            e.to_string(),
            alloc::format!("DIF instruction 0: invalid opcode {opc}")
        );
    }
}

#[test]
fn must_end_with_ret() {
    let e = reject(&text(&[instr(op::NOP, 0, 0, 0)]));
    assert!(e.message.contains("end with ret"), "{e}");
    let e = reject(&text(&[]));
    assert!(e.message.contains("no instructions"), "{e}");
}

#[test]
fn table_indices_in_range() {
    let e = reject(&text(&[imm(op::SETX, 0, 1), instr(op::RET, 0, 0, 1)]));
    assert!(e.message.contains("integer table index 0"), "{e}");
    let mut a = text(&[imm(op::SETS, 3, 1), instr(op::RET, 0, 0, 1)]);
    a.strs = b"ab\0".to_vec();
    let e = reject(&a);
    assert!(e.message.contains("string table offset 3"), "{e}");
    a.strs = b"abc\0".to_vec();
    assert!(a.build().is_ok());
}

#[test]
fn return_type_size() {
    for size in [0u32, 1, 2, 4, 8] {
        let mut a = text(&[instr(op::RET, 0, 0, 0)]);
        a.returns(TypeDesc::ctf(0, size));
        assert!(a.build().is_ok(), "size {size}");
    }
    for size in [3u32, 16] {
        let mut a = text(&[instr(op::RET, 0, 0, 0)]);
        a.returns(TypeDesc::ctf(0, size));
        assert!(reject(&a).message.contains("return size"), "size {size}");
    }
    // By-reference results may be any size.
    let mut a = text(&[instr(op::RET, 0, 0, 0)]);
    a.returns(string_type(300));
    assert!(a.build().is_ok());
    let mut a = text(&[instr(op::RET, 0, 0, 0)]);
    a.returns(TypeDesc {
        kind: 7,
        ..TypeDesc::default()
    });
    assert!(reject(&a).message.contains("return type kind"));
}

#[test]
fn variable_ids_and_declarations() {
    // Loading a built-in through LDGS is fine; below 0x100 is not a scalar.
    assert!(text(&[imm(op::LDGS, v::PID, 1), instr(op::RET, 0, 0, 1)])
        .build()
        .is_ok());
    let e = reject(&text(&[imm(op::LDGS, 0x20, 1), instr(op::RET, 0, 0, 1)]));
    assert!(e.message.contains("invalid variable 0x20"), "{e}");
    // Built-ins cannot be stored to, or read as thread-locals.
    let e = reject(&text(&[imm(op::STGS, v::PID, 1), instr(op::RET, 0, 0, 0)]));
    assert!(e.message.contains("cannot store"), "{e}");
    let e = reject(&text(&[imm(op::LDTS, v::PID, 1), instr(op::RET, 0, 0, 1)]));
    assert!(e.message.contains("not a built-in"), "{e}");
    // A user variable must be declared with the matching scope and kind.
    let e = reject(&text(&[imm(op::LDGS, 0x500, 1), instr(op::RET, 0, 0, 1)]));
    assert!(e.message.contains("0x500 is not declared"), "{e}");
    let mut a = text(&[imm(op::LDGS, 0x500, 1), instr(op::RET, 0, 0, 1)]);
    a.var(scalar(0x500, var_desc::SCOPE_THREAD));
    assert!(reject(&a)
        .message
        .contains("not declared as a Global scalar"));
    let mut a = text(&[imm(op::LDGS, 0x500, 1), instr(op::RET, 0, 0, 1)]);
    a.var(scalar(0x500, var_desc::SCOPE_GLOBAL));
    assert!(a.build().is_ok());
    let mut a = text(&[imm(op::LDGAA, 0x500, 1), instr(op::RET, 0, 0, 1)]);
    a.var(scalar(0x500, var_desc::SCOPE_GLOBAL));
    assert!(reject(&a).message.contains("Global array"));
}

#[test]
fn vartab_entries_are_checked() {
    let base = || text(&[instr(op::RET, 0, 0, 0)]);
    let mut a = base();
    a.var(scalar(0x500, 7));
    assert!(reject(&a).message.contains("invalid scope 7"));
    let mut a = base();
    a.var(var(0x500, var_desc::SCOPE_GLOBAL, 9, ctf8()));
    assert!(reject(&a).message.contains("invalid kind 9"));
    let mut a = base();
    a.var(scalar(0x100, var_desc::SCOPE_GLOBAL));
    assert!(reject(&a).message.contains("below the user variable base"));
    let mut a = base();
    a.var(var(
        0x500,
        var_desc::SCOPE_GLOBAL,
        var_desc::KIND_SCALAR,
        string_type(0),
    ));
    assert!(reject(&a).message.contains("zero-sized"));
    let mut a = base();
    a.var(var(
        0x500,
        var_desc::SCOPE_GLOBAL,
        var_desc::KIND_SCALAR,
        string_type(20_000),
    ));
    assert!(reject(&a).message.contains("oversized"));
    // The same size is fine for a thread-local.
    let mut a = base();
    a.var(var(
        0x500,
        var_desc::SCOPE_THREAD,
        var_desc::KIND_SCALAR,
        string_type(20_000),
    ));
    assert!(a.build().is_ok());
    let mut a = base();
    a.var(scalar(0x500, var_desc::SCOPE_GLOBAL)).var(var(
        0x500,
        var_desc::SCOPE_GLOBAL,
        var_desc::KIND_SCALAR,
        string_type(32),
    ));
    assert!(reject(&a).message.contains("redeclaration"));
    let mut a = base();
    a.var(VarDesc {
        id: 0x1_0000,
        ..scalar(0x500, 0)
    });
    assert!(reject(&a).message.contains("invalid id"));
}

#[test]
fn calls_and_tuple_types() {
    let e = reject(&text(&[
        imm(op::CALL, subr::MAX + 1, 1),
        instr(op::RET, 0, 0, 1),
    ]));
    assert!(e.message.contains("invalid subroutine 54"), "{e}");
    let d = text(&[imm(op::CALL, subr::COPYOUT, 1), instr(op::RET, 0, 0, 1)])
        .build()
        .unwrap();
    assert!(d.is_destructive());
    let d = text(&[imm(op::CALL, subr::COPYOUTSTR, 1), instr(op::RET, 0, 0, 1)])
        .build()
        .unwrap();
    assert!(d.is_destructive());
    let e = reject(&text(&[
        instr(op::PUSHTR, 5, 0, 1),
        instr(op::RET, 0, 0, 0),
    ]));
    assert!(e.message.contains("invalid ref type"), "{e}");
    let e = reject(&text(&[
        instr(op::PUSHTV, type_kind::STRING, 0, 1),
        instr(op::RET, 0, 0, 0),
    ]));
    assert!(e.message.contains("invalid val type"), "{e}");
}

#[test]
fn oversized_difo() {
    let mut a = Asm::new();
    a.text = alloc::vec![instr(op::NOP, 0, 0, 0); 70_000];
    a.ret(0);
    assert!(reject(&a).message.contains("exceeds"));
}

#[test]
fn dynvar_chunk_size_covers_keys_and_value() {
    let mut a = Asm::new();
    a.sets(1, "k")
        .pushs(1)
        .pushv(1)
        .i(imm(op::LDGAA, 0x500, 2))
        .ret(2)
        .var(var(
            0x500,
            var_desc::SCOPE_GLOBAL,
            var_desc::KIND_ARRAY,
            ctf8(),
        ));
    let d = a.build().unwrap();
    assert!(d.uses_dynvars());
    assert_eq!(d.max_assoc_keys(), 2);
    // 4 key entries (2 pushed + id + thread key) of 16 bytes, one string key
    // of strsize (rounded to 8), and an 8-byte value.
    assert_eq!(d.dynvar_chunk_size(100), 4 * 16 + 104 + 8);
}

#[test]
fn bare_ret_is_what_the_validator_would_build() {
    let built = text(&[instr(op::RET, 0, 0, 0)]).build().unwrap();
    let bare = Difo::bare_ret();
    assert_eq!(bare.text(), built.text());
    assert_eq!(bare.rtype(), built.rtype());
    assert_eq!(Harness::new(&[&bare]).ok(&bare), 0);
}

#[test]
fn difos_of_one_consumer_must_agree_on_shared_variables() {
    let prog = |v: VarDesc| {
        let mut a = text(&[instr(op::RET, 0, 0, 0)]);
        a.var(v);
        a.build().unwrap()
    };
    let int_g = prog(scalar(0x500, var_desc::SCOPE_GLOBAL));
    let int_g2 = prog(scalar(0x500, var_desc::SCOPE_GLOBAL));
    let str_g = prog(var(
        0x500,
        var_desc::SCOPE_GLOBAL,
        var_desc::KIND_SCALAR,
        string_type(32),
    ));
    let str_t = prog(var(
        0x500,
        var_desc::SCOPE_THREAD,
        var_desc::KIND_SCALAR,
        string_type(32),
    ));
    assert!(crate::dif::check_consistency(&[&int_g, &int_g2, &str_t]).is_ok());
    let e = crate::dif::check_consistency(&[&int_g, &str_t, &str_g]).unwrap_err();
    assert!(e.message.contains("0x500"), "{e}");
}
