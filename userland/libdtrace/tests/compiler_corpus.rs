//! Corpus check (skipped with a message when the conformance suite is absent): every `tst.*.d` program of
//! the suite's list that compiles must produce DOF that the framework's loader accepts (DOF
//! structure and DIF validation as the kernel does them), and at least 380 of the 400 must
//! compile at all.
//!
//! `RDTRACE_CONFORMANCE` names the suite directory (default `../shared/conformance` beside the
//! repository).

mod common;

use rdtrace_libdtrace::compiler::{compile, preprocess::CppConfig, CompileOptions};

#[test]
fn tst_programs_compile_to_loadable_dof() {
    let Some(root) = common::conformance_root() else {
        return;
    };
    let root = root.display();
    let list = std::fs::read_to_string(format!("{}/open.txt", root)).expect("open.txt");
    let mut compiled = 0;
    let mut total = 0;
    for test in list.lines().filter(|l| l.contains("/tst.")) {
        total += 1;
        let path = format!("{}/suite/{}", root, test);
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        let uses_cpp = src.contains("#include") || src.contains("#define") || src.contains("#if");
        let opts = CompileOptions {
            macro_args: vec![test.to_string()],
            cpp: uses_cpp.then(|| CppConfig {
                program: None,
                args: vec!["-DARCH_x86_64".into()],
            }),
            zdefs: true,
            ..Default::default()
        };
        let Ok(p) = compile(&src, &opts) else {
            continue;
        };
        compiled += 1;
        let mut dof = p.dof.clone();
        if let Err(e) = rdtrace_framework::dof::load(&mut dof, true, 0, 0, 256) {
            panic!("{}: DOF rejected: {:?}", test, e);
        }
    }
    eprintln!(
        "{} of {} tst programs compiled; all their DOF loaded",
        compiled, total
    );
    assert!(compiled >= 380, "only {} of {} compiled", compiled, total);
}
