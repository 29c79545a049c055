//! Seed corpus for the `enable_dof` fuzz target (kmod/hosted/fuzz): valid
//! DOF images built by hand, so the fuzzer starts past the header checks and
//! mutates real sections, DIFOs and actions.
//!
//! `RDTRACE_WRITE_FUZZ_SEEDS=1 cargo test -p rdtrace-hosted --test fuzz_seeds
//! -- --ignored` rewrites kmod/hosted/fuzz/seeds/enable_dof/; the normal test
//! checks that every committed seed is still a DOF the kernel accepts.
mod common;

use std::path::PathBuf;

use common::dof_builder::*;
use common::*;
use rdtrace_framework::abi::*;

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/enable_dof")
}

fn call(subr: u32) -> Dif {
    Dif {
        text: vec![imm(op::CALL, subr, 1), ret(1)],
        rtype: ctf_type(8),
        ..Default::default()
    }
}

/// One DOF per feature family the kernel validates differently.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut stack = Act::new(DTRACEACT_STACK, None);
    stack.arg = 4;
    let mut ustack = Act::new(DTRACEACT_USTACK, None);
    ustack.arg = 4;
    vec![
        (
            "begin-trace-exit",
            dof(
                &[Clause::new(
                    "dtrace:::BEGIN",
                    vec![Act::trace(Dif::constant(1)), Act::exit(0)],
                )],
                &[(0, 4096)],
            ),
        ),
        (
            "printf-predicate",
            dof(
                &[Clause::new(
                    "dtrace:::END",
                    Act::printf("%d %s\n", vec![Dif::var(0x106), Dif::string("x")]),
                )
                .when(Dif::arg0_equals(0))],
                &[(0, 8192), (DTRACEOPT_STRSIZE as u32, 32)],
            ),
        ),
        (
            "quantize",
            dof(
                &[Clause::new(
                    "dtrace:::BEGIN",
                    Act::aggregation(
                        DTRACEAGG_QUANTIZE,
                        1,
                        vec![Dif::var(0x106)],
                        Some(Dif::constant(3)),
                        0,
                    ),
                )],
                &[(0, 4096), (3, 4096)],
            ),
        ),
        (
            "count-by-string",
            dof(
                &[Clause::new(
                    "dtrace:::BEGIN",
                    Act::aggregation(DTRACEAGG_COUNT, 2, vec![Dif::string("key")], None, 0),
                )],
                &[(0, 4096), (3, 4096)],
            ),
        ),
        (
            "speculation",
            dof(
                &[
                    Clause::new("dtrace:::BEGIN", vec![Act::trace(call(10))]),
                    Clause::new(
                        "dtrace:::BEGIN",
                        vec![
                            Act::new(DTRACEACT_SPECULATE, Some(Dif::constant(1))),
                            Act::trace(Dif::var(0x106)),
                        ],
                    ),
                    Clause::new(
                        "dtrace:::END",
                        vec![Act::new(DTRACEACT_COMMIT, Some(Dif::constant(1)))],
                    ),
                ],
                &[(0, 8192), (DTRACEOPT_NSPEC as u32, 2)],
            ),
        ),
        (
            "stacks-and-error",
            dof(
                &[
                    Clause::new("dtrace:::BEGIN", vec![stack, ustack]),
                    Clause::new("dtrace:::ERROR", vec![Act::trace(Dif::var(0x108))]),
                    Clause::new("dtrace:::BEGIN", vec![Act::trace(Dif::divzero())]),
                ],
                &[(0, 8192)],
            ),
        ),
    ]
}

#[test]
#[ignore = "writes the seed corpus; run with RDTRACE_WRITE_FUZZ_SEEDS=1"]
fn write_fuzz_seeds() {
    if std::env::var_os("RDTRACE_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = seed_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, image) in seeds() {
        std::fs::write(dir.join(format!("{name}.dof")), image).unwrap();
    }
}

#[test]
fn every_committed_seed_is_an_accepted_enabling() {
    let dir = seed_dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus exists") {
        let path = entry.unwrap().path();
        let image = std::fs::read(&path).unwrap();
        let c = open();
        let matched = enable(&c, &image)
            .unwrap_or_else(|e| panic!("{}: {e:?}: {}", path.display(), c.last_dof_error()));
        assert!(matched >= 1, "{} matches a probe", path.display());
        n += 1;
    }
    assert!(n >= seeds().len(), "{n} seeds in {}", dir.display());
}
