//! Compile errors: each construct must give libdtrace's D_* tag and wording.

use rdtrace_libdtrace::compiler::{compile, CompileOptions};

fn error(src: &str) -> (String, u32, String) {
    match compile(src, &CompileOptions::default()) {
        Ok(_) => panic!("compiled but should not: {}", src),
        Err(e) => (e.tag.to_string(), e.line, e.message),
    }
}

fn tag(src: &str) -> String {
    error(src).0
}

#[test]
fn syntax_errors() {
    assert_eq!(
        error("BEGIN\n{\n\ti *+= 1;\n}\n"),
        ("D_SYNTAX".into(), 3, "syntax error near \"+=\"".into())
    );
    assert_eq!(tag("BEGIN { trace(1)) }"), "D_SYNTAX");
    assert_eq!(
        error("BEGIN\n/x[0/\n{ }").2,
        "closing ] expected in predicate before /"
    );
}

#[test]
fn probe_descriptions() {
    assert_eq!(
        error("BEGIN::read:entry { }").2,
        "probe description BEGIN::read:entry does not match any probes"
    );
    assert_eq!(tag("a:b:c:d:e { }"), "D_PDESC_INVAL");
    assert_eq!(tag("profile-1ns { }"), "D_PDESC_ZERO");
    let z = CompileOptions {
        zdefs: true,
        ..Default::default()
    };
    assert!(compile("nosuch:::probe { trace(1); } BEGIN { exit(0); }", &z).is_ok());
}

#[test]
fn prototypes() {
    assert_eq!(
        error("BEGIN { exit(); }").2,
        "exit( ) prototype mismatch: 0 args passed, 1 expected"
    );
    assert_eq!(
        error("BEGIN { substr(\"a\", 1, 2, 3); }").2,
        "substr( ) prototype mismatch: 4 args passed, at most 3 expected"
    );
    assert_eq!(
        error("BEGIN { strtok(1234, \"abc\"); }").2,
        "strtok( ) argument #1 is incompatible with prototype:\n\tprototype: char *\n\t argument: int"
    );
}

#[test]
fn printf_checks() {
    assert_eq!(tag("BEGIN { printf(\"%d\"); }"), "D_PRINTF_ARG_PROTO");
    assert_eq!(tag("BEGIN { printf(\"%d\", \"s\"); }"), "D_PRINTF_ARG_TYPE");
    assert_eq!(tag("BEGIN { printf(\"%d\", 1, 2); }"), "D_PRINTF_ARG_EXTRA");
    assert_eq!(tag("BEGIN { printf(\"%z\"); }"), "D_SYNTAX");
    assert_eq!(tag("BEGIN { printf(\"\"); }"), "D_PRINTF_FMT_EMPTY");
    assert_eq!(tag("BEGIN { printf(\"%@d\", 1); }"), "D_PRINTF_AGG_CONV");
}

#[test]
fn types_and_operators() {
    assert_eq!(
        error("BEGIN { c = 1 / 0; }").2,
        "expression contains division by zero"
    );
    assert_eq!(tag("BEGIN { x = 1; x += \"s\"; }"), "D_OP_INCOMPAT");
    assert_eq!(tag("BEGIN { trace(y); }"), "D_IDENT_UNDEF");
    assert_eq!(tag("BEGIN { p -= 1; }"), "D_VAR_UNDEF");
    assert_eq!(tag("int a[5]; BEGIN { trace(a[5]); }"), "D_ARR_BOUNDS");
    assert_eq!(tag("struct s { int a : 65; };"), "D_DECL_BFSIZE");
    assert_eq!(tag("enum e { A = \"x\" };"), "D_DECL_ENCONST");
    assert_eq!(tag("BEGIN { timestamp = 1; }"), "D_OP_WRITE");
    assert_eq!(tag("BEGIN { trace(-\"s\"); }"), "D_OP_ARITH");
}

#[test]
fn aggregations_and_speculation() {
    assert_eq!(
        tag("BEGIN { @a = count(); } END { @a = max(1); }"),
        "D_AGG_REDEF"
    );
    assert_eq!(tag("BEGIN { @ = sum(\"\"); }"), "D_AGG_SCALAR");
    assert_eq!(
        tag("BEGIN { @ = lquantize(1, 10, 10); }"),
        "D_LQUANT_MISMATCH"
    );
    assert_eq!(
        tag("BEGIN { @ = llquantize(1, 10, 0, 6, 30); }"),
        "D_LLQUANT_STEPVAL"
    );
    assert_eq!(tag("BEGIN { @a = count(); trace(@a); }"), "D_TRACE_DYN");
    assert_eq!(tag("BEGIN { speculate(1); @a = count(); }"), "D_AGG_SPEC");
    assert_eq!(tag("BEGIN { commit(1); trace(1); }"), "D_DREC_COMM");
}

#[test]
fn pragmas_and_macros() {
    assert_eq!(
        tag("#pragma D option nosuchopt\nBEGIN { }"),
        "D_PRAGMA_OPTSET"
    );
    assert_eq!(
        tag("#pragma D option nspec=24 * 44\nBEGIN { }"),
        "D_PRAGMA_MALFORM"
    );
    assert_eq!(tag("BEGIN { trace($3); }"), "D_MACRO_UNDEF");
    let with_args = CompileOptions {
        macro_args: vec!["x.d".into(), "5".into()],
        ..Default::default()
    };
    assert!(compile("tick-$1s { trace($1); }", &with_args).is_ok());
    assert_eq!(
        compile("BEGIN { }", &with_args).unwrap_err().tag,
        "D_MACRO_UNUSED"
    );
}

#[test]
fn valid_programs_compile() {
    for src in [
        "BEGIN { x = 1; } BEGIN /x == 1/ { trace(x); exit(0); }",
        "typedef struct { int a; char b; } foo_t; foo_t v; BEGIN { v.a = 1; trace(v.a); }",
        "inline int TWO = 2; BEGIN { trace(TWO * EINVAL); }",
        "BEGIN { s = \"abc\"; trace(strlen(s) + index(s, \"b\")); trace(s[1]); }",
        "self int ts; BEGIN { self->ts = timestamp; } END /self->ts/ { @d = quantize(timestamp - self->ts); }",
        "BEGIN { printa(\"%s %@d\\n\", @x); @x[\"k\"] = sum(1); }",
    ] {
        if let Err(e) = compile(src, &CompileOptions::default()) {
            panic!("{}: {}", src, e);
        }
    }
}
