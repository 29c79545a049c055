//! Property tests: validation never panics on arbitrary words, and any DIFO
//! that validates executes to a value or a fault without panicking.

use super::*;
use crate::dif::abi::var_desc::{KIND_ARRAY, KIND_SCALAR, SCOPE_GLOBAL, SCOPE_LOCAL, SCOPE_THREAD};
use crate::dif::bench_support::branch;
use proptest::prelude::*;

/// Opcodes the validator accepts (everything but the translator ones).
const VALID_OPS: &[u8] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 33, 34, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75,
    76, 77,
];

const VARS: [u16; 4] = [0x500, 0x501, 0x502, 0x503];

fn declared_vars() -> Vec<VarDesc> {
    let mut v = Vec::new();
    for scope in [SCOPE_GLOBAL, SCOPE_THREAD, SCOPE_LOCAL] {
        v.push(var(VARS[0], scope, KIND_SCALAR, ctf8()));
        v.push(var(VARS[1], scope, KIND_SCALAR, string_type(32)));
    }
    for scope in [SCOPE_GLOBAL, SCOPE_THREAD] {
        v.push(var(VARS[2], scope, KIND_ARRAY, ctf8()));
        v.push(var(VARS[3], scope, KIND_ARRAY, string_type(24)));
    }
    v
}

/// Turn raw random numbers into a mostly-valid instruction at `pc` of `len`.
fn shape(raw: (u8, u8, u8, u8, u16), pc: usize, len: usize, nints: usize, nstrs: usize) -> u32 {
    let (o, a, b, c, x) = raw;
    let opc = VALID_OPS[o as usize % VALID_OPS.len()];
    let reg = |v: u8| v % 8;
    let rd = |v: u8| 1 + v % 7;
    match opc {
        17..=27 => {
            let span = (len - 1 - pc).max(1);
            branch(opc, (pc + 1 + x as usize % span) as u32)
        }
        13 | 14 | 58 => instr(opc, reg(a), 0, rd(c)),
        15 | 39 => instr(opc, reg(a), reg(b), 0),
        16 => instr(opc, reg(a), 0, 0),
        // Loads mostly through the registers the prologue filled with
        // addresses (r1, r3, r4, r7), so programs get further.
        28..=34 | 64..=77 => instr(opc, [1, 3, 4, 7, reg(a)][a as usize % 5], 0, rd(c)),
        60..=63 => instr(opc, reg(a), 0, reg(c)),
        59 => instr(opc, reg(a), reg(b), reg(c)),
        36 | 50 | 51 => instr(opc, 0, 0, 0),
        37 => imm(opc, (x as usize % nints) as u16, rd(c)),
        38 => imm(opc, (x as usize % nstrs) as u16, rd(c)),
        40 | 43 => instr(opc, a % 3, reg(b), rd(c)),
        41 => {
            // Built-ins (some unknown) and declared globals.
            let id = if x % 3 == 0 {
                VARS[x as usize % 2]
            } else {
                0x100 + x % 0x130
            };
            imm(opc, id, rd(c))
        }
        44 | 56 | 42 | 45 | 57 => imm(
            opc,
            VARS[x as usize % 2],
            if opc == 44 || opc == 56 {
                rd(c)
            } else {
                reg(c)
            },
        ),
        52 | 53 => imm(opc, VARS[2 + x as usize % 2], rd(c)),
        54 | 55 => imm(opc, VARS[2 + x as usize % 2], reg(c)),
        47 => imm(opc, x % 54, rd(c)),
        48 => instr(
            opc,
            if a % 2 == 0 {
                type_kind::STRING
            } else {
                type_kind::CTF
            },
            reg(b),
            reg(c),
        ),
        49 => instr(opc, type_kind::CTF, reg(b), reg(c)),
        _ => instr(opc, reg(a), reg(b), rd(c)),
    }
}

fn ints() -> Vec<u64> {
    vec![
        0,
        1,
        8,
        u64::MAX,
        KMEM,
        KMEM + 0x80,
        UMEM,
        0x41,
        (-3i64) as u64,
        255,
        16,
        2,
    ]
}

fn strs() -> Vec<u8> {
    b"hello\0/a/../b\0{\"a\":[1,2]}\0a\0,\0".to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_words_never_panic_the_validator_or_vm(words in proptest::collection::vec(any::<u32>(), 1..24)) {
        let mut text = words;
        text.push(instr(op::RET, 0, 0, 1));
        if let Ok(d) = Difo::new(text, ints(), strs(), declared_vars(), ctf8()) {
            let mut h = Harness::new(&[&d]);
            let _ = h.run(&d);
        }
    }

    #[test]
    fn shaped_programs_validate_and_run_without_panicking(
        raw in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>()), 1..40),
        ret_reg in 0u8..8,
        strsize in prop_oneof![Just(1u64), Just(16u64), Just(256u64), Just(u64::MAX)],
    ) {
        // A prologue gives the registers useful values (strings, small
        // numbers, a kernel address) so random code gets past its first load.
        let prologue = [
            imm(op::SETS, 0, 1),
            imm(op::SETX, 6, 2),
            imm(op::SETX, 4, 3),
            imm(op::SETS, 14, 4),
            imm(op::SETX, 1, 5),
            imm(op::SETX, 11, 6),
            imm(op::SETS, 6, 7),
        ];
        let len = prologue.len() + raw.len() + 1;
        let ints = ints();
        let strs = strs();
        let mut text: Vec<u32> = prologue.to_vec();
        for (i, r) in raw.iter().enumerate() {
            let pc = prologue.len() + i;
            text.push(shape(*r, pc, len, ints.len(), strs.len()));
        }
        text.push(instr(op::RET, 0, 0, ret_reg));
        let d = Difo::new(text.clone(), ints, strs, declared_vars(), ctf8());
        let d = match d {
            Ok(d) => d,
            Err(e) => return Err(TestCaseError::fail(alloc::format!("shaped program rejected: {e} {text:x?}"))),
        };
        let mut h = Harness::new(&[&d]);
        h.strsize = strsize;
        // Twice: the second run sees variables the first one stored.
        let first = h.run(&d);
        let second = h.run(&d);
        if let Err(f) = first {
            prop_assert!(f.offset & 3 == 0 && (f.offset as usize) / 4 < len);
        }
        if let Err(f) = second {
            prop_assert!((f.offset as usize) / 4 < len);
        }
    }
}
