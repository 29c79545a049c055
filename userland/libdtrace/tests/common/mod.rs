//! Helpers shared by the integration tests that run compiled programs on the hosted kernel.

#![allow(dead_code)] // each test binary uses its own subset

use rdtrace_libdtrace::compiler::{compile, CompileOptions, CompiledProgram};
use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::decode::agg_kind_for;
use rdtrace_libdtrace::consumer::device::HostedDevice;
use rdtrace_libdtrace::consumer::session::{RunConfig, Session};
use rdtrace_libdtrace::output::stack::NoSymbols;
use rdtrace_libdtrace::output::text::TextOutput;
use rdtrace_libdtrace::output::OutputOptions;

/// Compiles `source` with default options.
pub fn compiled(source: &str) -> CompiledProgram {
    compile(source, &CompileOptions::default()).expect("compiles")
}

/// A session on a fresh hosted-kernel consumer with `program` enabled, set up as dtrace(1) sets
/// it up: aggregation names and kinds known, records typed by the compiler's signedness.
pub fn enabled_session(program: &CompiledProgram) -> Session {
    let client = Client::new(Box::new(HostedDevice::open().expect("hosted kernel opens")));
    let names = program
        .aggregations
        .iter()
        .map(|a| (u64::from(a.varid), a.name.clone()))
        .collect();
    let mut session = Session::new(client, RunConfig::default(), names);
    session.set_aggregation_kinds(
        program
            .aggregations
            .iter()
            .filter_map(|a| {
                Some((
                    u64::from(a.varid),
                    agg_kind_for(a.func.action_kind(), a.param)?,
                ))
            })
            .collect(),
    );
    let signedness = program
        .ecbs
        .iter()
        .map(|e| e.recorded_signedness())
        .collect();
    session
        .enable_typed(&program.dof, signedness)
        .expect("enables");
    session
}

/// A quiet text sink writing to memory, as `dtrace -q` prints.
pub fn quiet_sink(symbols: &NoSymbols) -> TextOutput<'_, Vec<u8>, Vec<u8>> {
    let options = OutputOptions {
        quiet: true,
        ..OutputOptions::default()
    };
    TextOutput::new(Vec::new(), Vec::new(), options, symbols)
}

/// Compiles `source`, runs it to completion on the hosted kernel and returns (stdout, stderr,
/// exit status) as `dtrace -q` would produce them.
pub fn run_quiet(source: &str) -> (String, String, Option<i32>) {
    let mut session = enabled_session(&compiled(source));
    let symbols = NoSymbols;
    let mut sink = quiet_sink(&symbols);
    let status = session.run(&mut sink, &|| false).expect("runs");
    let (out, err) = sink.into_inner();
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        status,
    )
}

/// [`run_quiet`] for programs that must exit(0) without writing to stderr: their stdout.
pub fn run_ok(source: &str) -> String {
    let (out, err, status) = run_quiet(source);
    assert!(err.is_empty(), "stderr: {err}");
    assert_eq!(status, Some(0));
    out
}

/// The conformance suite directory (holding `open.txt` and `suite/`): `RDTRACE_CONFORMANCE`, or
/// `../shared/conformance` beside the repository, as the Makefile assumes. None when absent, so
/// the tests that read it skip with a message on machines without it.
pub fn conformance_root() -> Option<std::path::PathBuf> {
    let root = std::env::var_os("RDTRACE_CONFORMANCE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    if root.join("open.txt").is_file() {
        Some(root)
    } else {
        eprintln!(
            "skipping: the conformance suite is not at {} (set RDTRACE_CONFORMANCE)",
            root.display()
        );
        None
    }
}
