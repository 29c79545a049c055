//! The compiler's stability pass (`CompiledProgram::stability`) and the program minimums
//! `dtrace -v` prints, with provider attributes supplied by the test.

use rdtrace_ffi::attr::{Attribute, DepClass, PAttr, Stability};
use rdtrace_libdtrace::compiler::attrs::{
    program_stability, ContextUse, ProgramStability, DEFAULT_ATTR, KERNEL_SYMBOL_ATTR,
    UNSPECIFIED_PROVIDER,
};
use rdtrace_libdtrace::compiler::{compile, CompileOptions, CompiledProgram};

fn build(src: &str) -> CompiledProgram {
    compile(src, &CompileOptions::default()).unwrap_or_else(|e| panic!("{}", e.render(false)))
}

fn a(n: Stability, d: Stability, c: DepClass) -> Attribute {
    Attribute::new(n, d, c)
}

/// The dtrace provider's attributes as FreeBSD's kernel declares them.
fn dtrace_provider() -> PAttr {
    PAttr {
        provider: DEFAULT_ATTR,
        module: KERNEL_SYMBOL_ATTR,
        function: KERNEL_SYMBOL_ATTR,
        name: DEFAULT_ATTR,
        args: DEFAULT_ATTR,
    }
}

fn minimums(p: &CompiledProgram, provider: Option<PAttr>) -> ProgramStability {
    program_stability(&p.stability, &mut |_| provider)
}

#[test]
fn every_clause_and_description_is_recorded() {
    let p = build("BEGIN, END { trace(1); } dtrace:::ERROR { }");
    assert_eq!(p.stability.len(), 2);
    assert_eq!(p.stability[0].descs.len(), 2);
    assert!(p.stability[0].has_actions);
    assert!(!p.stability[1].has_actions);
    assert_eq!(p.stability[1].descs[0].provider, "dtrace");
}

#[test]
fn stable_builtins_keep_statements_stable() {
    let p = build("BEGIN { trace(pid); printf(\"%s\", execname); @c[tid] = count(); }");
    let m = minimums(&p, Some(dtrace_provider()));
    assert_eq!(m.statement, DEFAULT_ATTR);
    // BEGIN names no provider: Unstable description attributes.
    assert_eq!(m.description, UNSPECIFIED_PROVIDER.provider);
}

#[test]
fn curthread_has_private_data() {
    let p = build("dtrace:::BEGIN { trace(curthread); }");
    let m = minimums(&p, Some(dtrace_provider()));
    assert_eq!(
        m.statement,
        a(Stability::Stable, Stability::Private, DepClass::Common)
    );
    assert_eq!(m.description, DEFAULT_ATTR);
}

#[test]
fn predicates_count_and_evolving_subroutines_lower() {
    let p = build("dtrace:::BEGIN /htons(1) == 256/ { trace(1); }");
    let m = minimums(&p, Some(dtrace_provider()));
    assert_eq!(
        m.statement,
        a(Stability::Evolving, Stability::Evolving, DepClass::Common)
    );
}

#[test]
fn context_variables_follow_the_provider() {
    let p = build("dtrace:::BEGIN { trace(probefunc); }");
    assert_eq!(
        p.stability[0].context,
        ContextUse {
            probefunc: true,
            ..ContextUse::default()
        }
    );
    let m = minimums(&p, Some(dtrace_provider()));
    assert_eq!(m.statement, KERNEL_SYMBOL_ATTR);
    // Without a representative probe the default Unstable bundle applies.
    let unknown = minimums(&p, None);
    assert_eq!(unknown.statement, UNSPECIFIED_PROVIDER.function);
    assert_eq!(unknown.description, UNSPECIFIED_PROVIDER.provider);
}

#[test]
fn clauses_without_actions_have_default_statement_attributes() {
    // The predicate of an action-less clause does not count.
    let p = build("dtrace:::BEGIN /curthread != 0/ { }");
    let m = minimums(&p, Some(dtrace_provider()));
    assert_eq!(m.statement, DEFAULT_ATTR);
}

#[test]
fn pragma_attributes_override_user_identifiers() {
    let p = build(
        "int lim;\n#pragma D attributes Evolving/Unstable/ISA lim\n\
         dtrace:::BEGIN { lim = 1; }\ndtrace:::END { trace(2); }\n",
    );
    let m = minimums(&p, Some(dtrace_provider()));
    assert_eq!(
        m.statement,
        a(Stability::Evolving, Stability::Unstable, DepClass::Isa)
    );
}

#[test]
fn a_program_of_declarations_only_reports_the_defaults() {
    let p = build("int x;");
    let m = minimums(&p, None);
    assert_eq!(m.description, DEFAULT_ATTR);
    assert_eq!(m.statement, DEFAULT_ATTR);
}
