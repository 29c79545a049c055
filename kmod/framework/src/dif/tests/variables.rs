//! Global, clause-local and thread-local scalar variables.

use super::*;
use crate::dif::abi::subr;
use crate::dif::abi::var_desc::{KIND_SCALAR, SCOPE_GLOBAL, SCOPE_LOCAL, SCOPE_THREAD};

const X: u16 = 0x500;
const S: u16 = 0x501;

/// x = x + 1; return x (global by-value).
fn incr_global() -> Difo {
    let mut asm = Asm::new();
    asm.i(imm(op::LDGS, X, 1))
        .set(2, 1)
        .r3(op::ADD, 1, 2, 1)
        .i(imm(op::STGS, X, 1))
        .i(imm(op::LDGS, X, 3))
        .ret(3)
        .var(scalar(X, SCOPE_GLOBAL));
    asm.difo()
}

#[test]
fn global_scalars_persist_between_firings() {
    let d = incr_global();
    let mut h = Harness::new(&[&d]);
    assert_eq!(h.ok(&d), 1);
    assert_eq!(h.ok(&d), 2);
    assert_eq!(h.ok(&d), 3);
}

#[test]
fn global_strings_are_copied_into_storage() {
    // s = strjoin("ab", "cd"); then, in a later firing, return s.
    let strvar = var(S, SCOPE_GLOBAL, KIND_SCALAR, string_type(16));
    let mut store = Asm::new();
    store
        .sets(1, "ab")
        .sets(2, "cd")
        .flush()
        .pushs(1)
        .pushs(2)
        .call(subr::STRJOIN, 3)
        .i(imm(op::STGS, S, 3))
        .ret(0)
        .var(strvar);
    let store = store.difo();
    let mut load = Asm::new();
    load.i(imm(op::LDGS, S, 1))
        .ret(1)
        .var(strvar)
        .returns(string_type(16));
    let load = load.difo();
    let mut h = Harness::new(&[&store, &load]);
    assert_eq!(h.string(&load), "", "an unset string is empty");
    h.ok(&store);
    // Scratch is overwritten: the value must live in variable storage.
    h.scratch.fill(0x55);
    assert_eq!(h.string(&load), "abcd");

    // Storing NULL makes the variable read as NULL (0).
    let mut null = Asm::new();
    null.i(imm(op::STGS, S, 0))
        .i(imm(op::LDGS, S, 1))
        .ret(1)
        .var(strvar);
    let null = null.difo();
    let mut h = Harness::new(&[&store, &null]);
    h.ok(&store);
    assert_eq!(h.ok(&null), 0);
}

#[test]
fn global_strings_truncate_to_their_size() {
    let strvar = var(S, SCOPE_GLOBAL, KIND_SCALAR, string_type(4));
    let mut asm = Asm::new();
    asm.sets(1, "abcdefgh")
        .i(imm(op::STGS, S, 1))
        .i(imm(op::LDGS, S, 2))
        .ret(2)
        .var(strvar)
        .returns(string_type(4));
    let d = asm.difo();
    assert_eq!(Harness::new(&[&d]).string(&d), "abc");
}

#[test]
fn clause_locals() {
    let mut asm = Asm::new();
    asm.set(1, 41)
        .i(imm(op::STLS, X, 1))
        .i(imm(op::LDLS, X, 2))
        .set(3, 1)
        .r3(op::ADD, 2, 3, 2)
        .ret(2)
        .var(scalar(X, SCOPE_LOCAL));
    let d = asm.difo();
    let mut h = Harness::new(&[&d]);
    assert_eq!(h.ok(&d), 42);
    // A global with the same id is a different variable.
    let mut g = Asm::new();
    g.i(imm(op::LDGS, X, 1)).ret(1).var(scalar(X, SCOPE_GLOBAL));
    let g = g.difo();
    let mut h = Harness::new(&[&d, &g]);
    h.ok(&d);
    assert_eq!(h.ok(&g), 0);
}

#[test]
fn thread_locals_are_per_thread() {
    // self->x = self->x + arg0(=10).
    let mut asm = Asm::new();
    asm.i(imm(op::LDTS, X, 1))
        .i(imm(op::LDGS, crate::dif::abi::var::ARG0, 2))
        .r3(op::ADD, 1, 2, 1)
        .i(imm(op::STTS, X, 1))
        .i(imm(op::LDTS, X, 3))
        .ret(3)
        .var(scalar(X, SCOPE_THREAD));
    let d = asm.difo();
    assert!(d.uses_dynvars());
    let mut h = Harness::new(&[&d]);
    assert_eq!(h.ok(&d), 10);
    assert!(h.thread_local_stored);
    assert_eq!(h.ok(&d), 20);
    h.tid = 200;
    assert_eq!(h.ok(&d), 10, "another thread starts from zero");
    h.tid = 100;
    assert_eq!(h.ok(&d), 30);

    // Assigning 0 frees the variable (and it reads back as 0).
    let mut clear = Asm::new();
    clear
        .i(imm(op::STTS, X, 0))
        .i(imm(op::LDTS, X, 1))
        .ret(1)
        .var(scalar(X, SCOPE_THREAD));
    let clear = clear.difo();
    let before = h.arena.list_lengths();
    assert_eq!(h.ok(&clear), 0);
    let after = h.arena.list_lengths();
    assert_eq!(after.1, before.1 + 1, "the chunk went to a dirty list");
    assert_eq!(h.ok(&d), 10);
}

#[test]
fn thread_local_strings() {
    let tvar = var(S, SCOPE_THREAD, KIND_SCALAR, string_type(32));
    let mut asm = Asm::new();
    asm.sets(1, "thread value")
        .i(imm(op::STTS, S, 1))
        .i(imm(op::LDTS, S, 2))
        .ret(2)
        .var(tvar)
        .returns(string_type(32));
    let d = asm.difo();
    assert_eq!(Harness::new(&[&d]).string(&d), "thread value");
}
