//! dtrace(1)'s impatient end on the hosted kernel: after a second interrupt
//! ([`StopRequest::Abandon`]) the session stops without printing the final
//! aggregations; one interrupt alone still prints them.

use std::cell::Cell;

use rdtrace_libdtrace::compiler::{compile, CompileOptions};
use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::device::HostedDevice;
use rdtrace_libdtrace::consumer::session::{RunConfig, Session, StopRequest};
use rdtrace_libdtrace::output::stack::NoSymbols;
use rdtrace_libdtrace::output::text::TextOutput;
use rdtrace_libdtrace::output::OutputOptions;

/// Runs a program that never exits by itself; `answers` are what the stop
/// callback says on successive calls (the last one repeats).
fn run_with(answers: &[StopRequest]) -> String {
    let program = compile(
        "BEGIN { @hits[\"begin\"] = count(); @total = sum(5); }",
        &CompileOptions::default(),
    )
    .expect("compiles");
    let names = program
        .aggregations
        .iter()
        .map(|a| (u64::from(a.varid), a.name.clone()))
        .collect();
    let client = Client::new(Box::new(HostedDevice::open().expect("hosted kernel")));
    let mut session = Session::new(client, RunConfig::default(), names);
    session.set_aggregation_kinds(
        program
            .aggregations
            .iter()
            .filter_map(|a| {
                let kind = rdtrace_libdtrace::consumer::decode::agg_kind_for(
                    a.func.action_kind(),
                    a.param,
                )?;
                Some((u64::from(a.varid), kind))
            })
            .collect(),
    );
    session.enable(&program.dof).expect("enables");
    session.go().expect("GO");
    let symbols = NoSymbols;
    let options = OutputOptions {
        quiet: true,
        ..OutputOptions::default()
    };
    let mut sink = TextOutput::new(Vec::new(), Vec::new(), options, &symbols);
    let calls = Cell::new(0usize);
    let stop = || {
        let i = calls.get();
        calls.set(i + 1);
        answers[i.min(answers.len() - 1)]
    };
    session.run_until(&mut sink, &stop).expect("runs");
    let (out, _) = sink.into_inner();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn one_interrupt_prints_the_aggregations() {
    let out = run_with(&[StopRequest::Continue, StopRequest::Interrupted]);
    assert!(out.contains("begin"), "{out:?}");
    assert!(out.contains('5'), "{out:?}");
}

#[test]
fn a_second_interrupt_before_the_end_skips_them() {
    // Both signals seen at once.
    let out = run_with(&[StopRequest::Continue, StopRequest::Abandon]);
    assert_eq!(out, "\n\n");
    // The second arrives while the session is stopping.
    let out = run_with(&[
        StopRequest::Continue,
        StopRequest::Interrupted,
        StopRequest::Abandon,
    ]);
    assert_eq!(out, "\n\n");
}
