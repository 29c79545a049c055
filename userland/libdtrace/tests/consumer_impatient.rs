//! dtrace(1)'s impatient end on the hosted kernel: after a second interrupt
//! ([`StopRequest::Abandon`]) the session stops without printing the final
//! aggregations; one interrupt alone still prints them.

use std::cell::Cell;

mod common;

use rdtrace_libdtrace::consumer::session::StopRequest;
use rdtrace_libdtrace::output::stack::NoSymbols;

/// Runs a program that never exits by itself; `answers` are what the stop
/// callback says on successive calls (the last one repeats).
fn run_with(answers: &[StopRequest]) -> String {
    let program = common::compiled("BEGIN { @hits[\"begin\"] = count(); @total = sum(5); }");
    let mut session = common::enabled_session(&program);
    session.go().expect("GO");
    let symbols = NoSymbols;
    let mut sink = common::quiet_sink(&symbols);
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
