//! Language rules checked against libdtrace's behaviour: integer result types, floating point,
//! kernel symbol references, "syntax error near" quoting, and the `-S` listing layout.

use rdtrace_libdtrace::compiler::pdesc::{ProbeDesc, ProbeMatcher, StaticProbes, SymbolLookup};
use rdtrace_libdtrace::compiler::{compile, CompileOptions};

fn error(src: &str) -> (String, String) {
    match compile(src, &CompileOptions::default()) {
        Ok(_) => panic!("compiled but should not: {}", src),
        Err(e) => (e.tag.to_string(), e.message),
    }
}

/// The D type name recorded by the first action of the first ECB.
fn recorded_type(src: &str) -> (String, u32) {
    let p = compile(src, &CompileOptions::default()).expect("compiles");
    let t = p.ecbs[0].actions[0]
        .value_type
        .clone()
        .expect("a recorded value");
    (t.name, t.size)
}

#[test]
fn arithmetic_keeps_the_higher_ranked_operand_type_without_int_promotion() {
    // libdtrace ranks integer types by width plus unsignedness: unsigned short + unsigned short
    // stays unsigned short (C would give int), so the recorded value is 2 bytes wide.
    assert_eq!(
        recorded_type("unsigned short S; BEGIN { trace(S + S); }"),
        ("unsigned short".into(), 2)
    );
    assert_eq!(
        recorded_type("unsigned char C; signed char c; BEGIN { trace(C + c); }"),
        ("unsigned char".into(), 1)
    );
    assert_eq!(
        recorded_type("short s; BEGIN { trace(s * 2); }"),
        ("int".into(), 4)
    );
    assert_eq!(
        recorded_type("unsigned int I; long l; BEGIN { trace(I + l); }"),
        ("long".into(), 8)
    );
    // Unary operators and shifts keep their (left) operand's type.
    assert_eq!(
        recorded_type("signed char c; BEGIN { trace(-c); }"),
        ("char".into(), 1)
    );
    assert_eq!(
        recorded_type("unsigned short S; BEGIN { trace(S << 1); }"),
        ("unsigned short".into(), 2)
    );
}

#[test]
fn floating_point_constants_are_rejected_by_the_lexer() {
    for src in [
        "BEGIN { x = 1.5; }",
        "BEGIN { x = 1e5; }",
        "BEGIN { x = .5; }",
        "BEGIN { x = 2f; }",
    ] {
        assert_eq!(
            error(src),
            (
                "D_SYNTAX".into(),
                "floating-point constants are not permitted".into()
            ),
            "{src}"
        );
    }
    // Integer suffixes, hex digits and unit suffixes of probe names are not floats.
    compile(
        "BEGIN { x = 10ul + 0x1e5 + 1L; } tick-10ms { exit(0); }",
        &CompileOptions::default(),
    )
    .expect("integers compile");
}

#[test]
fn floating_point_values_are_recorded_but_not_computed_with() {
    compile(
        "float f; double d; BEGIN { trace(f); printf(\"%f %e\", f, d); }",
        &CompileOptions::default(),
    )
    .expect("declare, trace and printf");
    assert_eq!(error("float f; BEGIN { x = f + 1; }").0, "D_OP_INCOMPAT");
    assert_eq!(error("double d; BEGIN { x = d * 2; }").0, "D_OP_ARITH");
    assert_eq!(error("float f; BEGIN { x = -f; }").0, "D_OP_ARITH");
    assert_eq!(
        error("double d; BEGIN { x = (int)d; }"),
        (
            "D_CAST_INVAL".into(),
            "invalid cast expression: \"double\" to \"int\"".into()
        )
    );
}

#[test]
fn syntax_errors_quote_an_identifier_with_the_rest_of_its_line() {
    assert_eq!(
        error("typedef pint new_int;\nBEGIN { exit(0); }"),
        ("D_SYNTAX".into(), "syntax error near \"new_int;\"".into())
    );
    // Keywords and punctuation are quoted alone; the end of input has its own wording.
    assert_eq!(
        error("BEGIN\n{\n\ttypedef int new_int;\n}").1,
        "syntax error near \"typedef\""
    );
    assert_eq!(error("BEGIN { x = 1 +").1, "syntax error near end of input");
}

/// The hosted probes plus a symbol table with one untyped kernel symbol.
struct WithSymbols(StaticProbes);

impl ProbeMatcher for WithSymbols {
    fn count_matches(&self, desc: &ProbeDesc) -> usize {
        self.0.count_matches(desc)
    }
    fn kernel_symbol(&self, module: Option<&str>, name: &str) -> SymbolLookup {
        match (module, name) {
            (None | Some("kernel"), "hz") => SymbolLookup::Found {
                object: "kernel".into(),
                name: "hz".into(),
                addr: 0xffff_ffff_8100_0000,
                size: 4,
            },
            (None | Some("kernel"), _) => SymbolLookup::NoSymbol,
            _ => SymbolLookup::NoModule,
        }
    }
}

#[test]
fn kernel_symbols_resolve_through_the_matcher() {
    let opts = || CompileOptions {
        matcher: Some(Box::new(WithSymbols(StaticProbes::hosted()))),
        ..CompileOptions::default()
    };
    let err = |src: &str| {
        let e = compile(src, &opts()).expect_err("no CTF for kernel symbols yet");
        (e.tag.to_string(), e.message)
    };
    assert_eq!(
        err("BEGIN { trace(`nosuch); }"),
        (
            "D_IDENT_UNDEF".into(),
            "failed to resolve `nosuch: Unknown symbol name".into()
        )
    );
    assert_eq!(
        err("BEGIN { trace(nomod`hz); }"),
        (
            "D_IDENT_UNDEF".into(),
            "failed to resolve nomod`hz: Unknown module name".into()
        )
    );
    assert_eq!(err("BEGIN { trace(kernel`hz); }").0, "D_SYM_NOTYPES");
    assert!(err("BEGIN { trace(`hz); }").1.contains("kernel`hz"));
    // The hosted kernel has no symbol table at all.
    assert_eq!(
        error("BEGIN { trace(`hz); }").1,
        "failed to resolve `hz: Unknown symbol name"
    );
}

#[test]
fn dif_listing_heads_each_object_with_its_address_and_type() {
    let p =
        compile("BEGIN { x = \"a\"; trace(1); }", &CompileOptions::default()).expect("compiles");
    let listing = p.disassembly();
    let headers: Vec<&str> = listing.lines().filter(|l| l.starts_with("DIFO ")).collect();
    assert_eq!(headers.len(), 2, "{listing}");
    for h in &headers {
        let addr = h
            .strip_prefix("DIFO 0x")
            .and_then(|r| r.split(' ').next())
            .expect("DIFO 0x<address>");
        assert!(u64::from_str_radix(addr, 16).is_ok(), "{h}");
    }
    assert!(
        headers[1].ends_with(" returns D type (integer) (size 4)"),
        "{listing}"
    );
    assert!(
        listing.contains("x                500  scl glb w    string (unknown) by ref (size 256)"),
        "{listing}"
    );
}

#[test]
fn a_string_is_not_a_destination_buffer() {
    let (tag, msg) = error("BEGIN { copyinto(1, 2, \"\"); }");
    assert_eq!(tag, "D_PROTO_ARG");
    assert!(
        msg.starts_with("copyinto( ) argument #3 is incompatible with prototype:"),
        "{msg}"
    );
    compile(
        "BEGIN { p = alloca(2); copyinto(1, 2, p); }",
        &CompileOptions::default(),
    )
    .expect("an alloca buffer is fine");
}

#[test]
fn a_bare_probe_id_is_resolved_through_the_matcher() {
    // The default matcher knows the dtrace provider's ids 1-3 (BEGIN, END, ERROR).
    let p = compile("2 { trace(1); }", &CompileOptions::default()).expect("compiles");
    assert_eq!(p.ecbs[0].descs[0].full(), "dtrace:::END");
    let (tag, msg) = error("4242 { trace(1); }");
    assert_eq!(tag, "D_PDESC_INVAL");
    assert_eq!(
        msg,
        "invalid probe identifier 4242: Unknown probe identifier"
    );
    // Digits followed by other description characters are not a probe id.
    assert_eq!(error("12ab { trace(1); }").0, "D_SYNTAX");
}

#[test]
fn folded_constants_keep_their_64_bit_value() {
    // libdtrace folds in 64 bits and does not cut the result to the (int) node type, so the
    // quantize() argument is INT64_MAX, not -1.
    let p = compile(
        "BEGIN { @ = quantize((1 << 63) - 1); }",
        &CompileOptions::default(),
    )
    .expect("compiles");
    let listing = p.disassembly();
    assert!(listing.contains("0x7fffffffffffffff"), "{listing}");
}
