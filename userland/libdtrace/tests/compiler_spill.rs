//! Register spilling: expressions with more simultaneously live values than DIF's seven
//! allocatable registers compile (held values go to hidden clause-local variables) and compute
//! the right values when run on the hosted kernel.

mod common;

use rdtrace_libdtrace::compiler::{compile, CompileOptions};

/// Compiles `source`, runs it on the hosted kernel until it exits and returns its quiet output.
fn run(source: &str) -> String {
    common::run_ok(source)
}

/// Opcode byte of every instruction of every DIFO of a compiled program.
fn opcodes(source: &str) -> Vec<u8> {
    let program = compile(source, &CompileOptions::default()).expect("compiles");
    program
        .ecbs
        .iter()
        .flat_map(|e| {
            e.predicate
                .iter()
                .chain(e.actions.iter().flat_map(|a| &a.difo))
        })
        .flat_map(|d| d.text.iter().map(|w| (w >> 24) as u8))
        .collect()
}

/// `DIF_OP_LDLS` and `DIF_OP_STLS`.
const LDLS: u8 = 0x38;
const STLS: u8 = 0x39;

const NINE: &str = "a = 1; b = 2; c = 3; d = 4; e = 5; f = 6; g = 7; h = 8; i = 9;";

#[test]
fn right_nested_sum_of_nine_side_effects_is_spilled_and_correct() {
    // Post-increments have side effects, so the operands cannot be reordered: every left
    // operand stays live while the right one is evaluated, nine levels deep.
    let out = run(&format!(
        "BEGIN {{ {NINE} trace(a++ + (b++ + (c++ + (d++ + (e++ + (f++ + (g++ + (h++ + i++))))))));
           printf(\" %d %d\\n\", a, i); exit(0); }}"
    ));
    assert_eq!(out, "45 2 10\n\n");
}

#[test]
fn function_calls_inside_a_deep_expression_keep_outer_values() {
    // strlen(lltostr(...)) nested in the middle: its tuple push happens while seven values
    // are held further out.
    let inner = "a++ + (b++ + (c++ + (d++ + (e++ + (f++ + (g++ + h++))))))";
    let src = format!(
        "BEGIN {{ {NINE}
           x = a++ + (b++ * (c++ - (d++ + (e++ ^ (f++ + (g++ + (h++ + (i++ +
               (int)strlen(lltostr({inner}))))))))));
           printf(\"%d %d %d %d\\n\", x, a, h, i); exit(0); }}"
    );
    // The outer operands see 1..9; the inner sum sees 2..9 = 44, two digits.
    let (a, b, c, d, e, f, g, h, i) = (1i64, 2i64, 3i64, 4i64, 5i64, 6i64, 7i64, 8i64, 9i64);
    let expected = a + (b * (c - (d + (e ^ (f + (g + (h + (i + 2))))))));
    assert_eq!(run(&src), format!("{expected} 3 10 10\n\n"));
}

#[test]
fn associative_array_keys_and_compound_assignment_survive_spilling() {
    let deep = "a++ + (b++ + (c++ + (d++ + (e++ + (f++ + (g++ + h++))))))";
    let src = format!(
        "BEGIN {{ {NINE}
           x[a, b, c, d, e, f, g, h] = 5;
           x[a, b, c, d, e, f, g, h] += {deep};
           printf(\"%d %d\\n\", x[2, 3, 4, 5, 6, 7, 8, 9], x[1, 2, 3, 4, 5, 6, 7, 8]);
           exit(0); }}"
    );
    // Keys are evaluated before the right-hand side (1..8); the sum sees 1..8 = 36.
    assert_eq!(run(&src), "0 41\n\n");
}

#[test]
fn deep_ternaries_and_comparisons_compile_and_run() {
    let src = format!(
        "BEGIN {{ {NINE}
           y = (a++ < (b++ + (c++ + (d++ + (e++ + (f++ + (g++ + (h++ + i++))))))))
               ? a++ * (b++ + (c++ + (d++ + (e++ + (f++ + (g++ + h++)))))) : 0;
           printf(\"%d\\n\", y); exit(0); }}"
    );
    // Condition: 1 < 2+3+...+9 = 44; then a = 2 and b..h = 3..9: 2 * 42 = 84.
    assert_eq!(run(&src), "84\n\n");
}

#[test]
fn spilling_is_used_only_when_registers_run_out() {
    let shallow = opcodes("BEGIN { a = 1; b = 2; trace(a++ + (b++ + (a++ + b++))); }");
    assert!(!shallow.contains(&STLS), "no spill needed: {shallow:x?}");
    let deep = opcodes(&format!(
        "BEGIN {{ {NINE} trace(a++ + (b++ + (c++ + (d++ + (e++ + (f++ + (g++ + (h++ + i++))))))));}}"
    ));
    assert!(deep.contains(&STLS) && deep.contains(&LDLS), "{deep:x?}");
}

#[test]
fn nesting_beyond_the_spill_slots_is_libdtraces_register_error() {
    let mut e = String::from("a");
    for _ in 0..45 {
        e = format!("a++ + ({e})");
    }
    let err = compile(
        &format!("BEGIN {{ a = 1; trace({e}); }}"),
        &CompileOptions::default(),
    )
    .expect_err("too deep");
    // An error number in libdtrace (EDT_NOREG), not a compiler diagnostic: no tag, no line.
    assert_eq!(err.render(true), "Insufficient registers to generate code");
}

/// A tiny deterministic generator (64-bit LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Generates a random D expression over the variables `a`..`i` (with post-increments, so
/// evaluation order is observable) and computes its value the way D defines it: operands left
/// to right, 64-bit wrapping arithmetic.
fn gen(rng: &mut Lcg, depth: u32, vars: &mut [i64; 9]) -> (String, i64) {
    if depth == 0 || rng.next(4) == 0 {
        let v = rng.next(9) as usize;
        let name = (b'a' + v as u8) as char;
        return match rng.next(3) {
            0 => {
                let old = vars[v];
                vars[v] += 1;
                (format!("{name}++"), old)
            }
            1 => {
                let c = rng.next(50) as i64;
                (c.to_string(), c)
            }
            _ => (name.to_string(), vars[v]),
        };
    }
    if rng.next(6) == 0 {
        // A subroutine call in the middle: strlen(lltostr(x)) is the number of characters of x.
        let (s, x) = gen(rng, depth - 1, vars);
        return (
            format!("(int)strlen(lltostr({s}))"),
            x.to_string().len() as i64,
        );
    }
    let (ls, lv) = gen(rng, depth - 1, vars);
    let (rs, rv) = gen(rng, depth - 1, vars);
    let (op, v) = match rng.next(5) {
        0 => ("+", lv.wrapping_add(rv)),
        1 => ("-", lv.wrapping_sub(rv)),
        2 => ("^", lv ^ rv),
        3 => ("|", lv | rv),
        _ => ("&", lv & rv),
    };
    (format!("({ls} {op} {rs})"), v)
}

#[test]
fn random_deep_expressions_match_a_reference_evaluator() {
    let mut rng = Lcg(0x5eed);
    let mut spilled = 0;
    for round in 0..24 {
        let mut vars = [1i64, 2, 3, 4, 5, 6, 7, 8, 9];
        let (expr, value) = gen(&mut rng, 9, &mut vars);
        let src = format!(
            "BEGIN {{ {NINE} x = (long)({expr});
               printf(\"%d %d %d %d\\n\", x, a, e, i); exit(0); }}"
        );
        let want = format!("{} {} {} {}\n\n", value, vars[0], vars[4], vars[8]);
        assert_eq!(run(&src), want, "round {round}: {expr}");
        if opcodes(&src).contains(&STLS) {
            spilled += 1;
        }
    }
    // The generator must actually exercise spilling, not only shallow expressions.
    assert!(spilled >= 5, "only {spilled} programs spilled");
}
