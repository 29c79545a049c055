//! DOF produced by the compiler, loaded back by the framework's DOF loader (the same code the
//! kernel's `DTRACEIOC_ENABLE` runs, including DIF validation), and checked against what the
//! program says.

use rdtrace_libdtrace::compiler::{compile, CompileOptions, CompiledProgram};

fn build(src: &str) -> CompiledProgram {
    compile(src, &CompileOptions::default()).unwrap_or_else(|e| panic!("{}: {}", src, e))
}

fn load(p: &CompiledProgram) -> rdtrace_framework::dof::Enabling {
    let mut bytes = p.dof.clone();
    rdtrace_framework::dof::load(&mut bytes, true, 0, 0, 256)
        .unwrap_or_else(|e| panic!("DOF rejected: {:?}", e))
}

#[test]
fn printf_clause_with_predicate() {
    let p = build("#pragma D option quiet\nBEGIN /pid != 0/ { printf(\"%d %s\\n\", pid, execname); exit(0); }");
    let e = load(&p);
    assert_eq!(e.ecbs.len(), 1);
    let ecb = &e.ecbs[0];
    assert_eq!(ecb.probe.name, "BEGIN");
    assert!(ecb.predicate.is_some());
    let kinds: Vec<u16> = ecb.actions.iter().map(|a| a.kind).collect();
    // printf (first argument), DIFEXPR (second argument), exit
    assert_eq!(kinds, vec![3, 1, 2]);
    // The kernel keeps the format with its terminating NUL.
    assert_eq!(ecb.actions[0].format.as_deref(), Some(&b"%d %s\n\0"[..]));
    // quiet goes to the kernel as option 12
    assert!(e.options.contains(&(12, 1)));
}

#[test]
fn several_descriptions_share_actions() {
    let p = build("BEGIN, END { trace(1); }");
    let e = load(&p);
    assert_eq!(e.ecbs.len(), 2);
    assert_eq!(e.ecbs[0].probe.name, "BEGIN");
    assert_eq!(e.ecbs[1].probe.name, "END");
}

#[test]
fn aggregations_have_varid_tuple() {
    let p = build("BEGIN { @a[probename, 1] = count(); @q = lquantize(2, 0, 10, 2); }");
    let e = load(&p);
    let acts = &e.ecbs[0].actions;
    // @a: varid, 2 keys, count(ntuple 3); @q: varid, lquantize(ntuple 1)
    assert_eq!(acts.len(), 6);
    assert_eq!(acts[3].kind, 0x701);
    assert_eq!(acts[3].ntuple, 3);
    assert_eq!(acts[5].kind, 0x708);
    assert_eq!(acts[5].ntuple, 1);
    // lquantize packing: step 2, levels 5, base 0
    assert_eq!(acts[5].arg, (2u64 << 48) | (5u64 << 32));
    assert_eq!(p.aggregations.len(), 2);
    assert_eq!(
        p.aggregations[0].keys,
        vec!["string".to_string(), "int".to_string()]
    );
}

#[test]
fn variables_strings_and_control_flow_validate() {
    let p = build(
        "int g; self int t; string s[int];\n\
         BEGIN { g = 1; self->t = timestamp; s[3] = \"x\"; this->v = g > 0 ? g * 2 : -g; }\n\
         BEGIN /s[3] == \"x\" && self->t != 0/ { g++; trace(strjoin(s[3], probename)); trace(this->v << 2); }\n\
         END { if (g > 1) { printf(\"%d\\n\", g); } else { trace(g); } exit(0); }",
    );
    let e = load(&p);
    // 2 plain clauses + the if clause split (reset, predicate, if-before, then, else) = 7
    assert!(e.ecbs.len() >= 5, "{}", e.ecbs.len());
    // Every ECB of the split if/else clause probes END.
    assert!(e.ecbs.iter().filter(|c| c.probe.name == "END").count() >= 4);
}

#[test]
fn speculation_and_stack_actions() {
    let p = build("BEGIN { s = speculation(); } BEGIN { speculate(s); trace(1); } END { commit(s); } END { stack(); ustack(5); }");
    let e = load(&p);
    let kinds: Vec<u16> = e
        .ecbs
        .iter()
        .flat_map(|c| c.actions.iter().map(|a| a.kind))
        .collect();
    assert!(kinds.contains(&0x601));
    assert!(kinds.contains(&0x602));
    assert!(kinds.contains(&0x401));
    assert!(kinds.contains(&0x101));
}

#[test]
fn struct_member_copy_uses_copys_and_validates() {
    let p = build(
        "struct c { int x; int y; }; struct p { struct c a; struct c b; }; struct p P;\n\
         BEGIN { P.a.x = 1; P.b = P.a; trace(P.b.x); }",
    );
    load(&p);
    let copys = p.ecbs[0]
        .actions
        .iter()
        .filter_map(|a| a.difo.as_ref())
        .flat_map(|d| d.text.iter())
        .any(|w| (w >> 24) == 59);
    assert!(copys, "a struct store must copy with COPYS");
}

#[test]
fn nested_calls_fit_in_registers() {
    // Eight nested strjoin()s need more than 7 registers unless arguments are ordered well.
    let p = build(
        "BEGIN { trace(strjoin(\"a\", strjoin(\"b\", strjoin(\"c\", strjoin(\"d\", strjoin(\"e\", \
         strjoin(\"f\", strjoin(\"g\", strjoin(\"h\", \"i\"))))))))); }",
    );
    load(&p);
}
