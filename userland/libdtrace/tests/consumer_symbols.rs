//! stack()/ustack() printed with real symbols: the system symbolizer on the
//! hosted kernel resolves addresses of this test's own functions, and the
//! text and folded backends print them as libdtrace does.

use rdtrace_libdtrace::consumer::symbolizer::{KernelKind, SystemSymbols};
use rdtrace_libdtrace::output::folded::FoldedOutput;
use rdtrace_libdtrace::output::model::{
    AggEntry, AggKind, Aggregation, ProbeFiring, Record, StackKind,
};
use rdtrace_libdtrace::output::text::TextOutput;
use rdtrace_libdtrace::output::{OutputOptions, OutputSink};

#[inline(never)]
fn outer_frame() -> u64 {
    std::hint::black_box(1)
}

#[inline(never)]
fn inner_frame() -> u64 {
    std::hint::black_box(2)
}

fn address(f: fn() -> u64) -> u64 {
    assert!(f() > 0);
    f as usize as u64
}

/// The module name the hosted symbolizer gives this test binary.
fn module() -> String {
    std::env::current_exe()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn probe() -> ProbeFiring {
    ProbeFiring {
        cpu: 0,
        epid: 1,
        probe_id: 1,
        provider: "dtrace".into(),
        module: String::new(),
        function: String::new(),
        name: "BEGIN".into(),
        timestamp: 0,
    }
}

#[test]
fn stack_frames_print_module_function_and_offset() {
    let symbols = SystemSymbols::new(KernelKind::Hosted);
    let (inner, outer) = (address(inner_frame), address(outer_frame));
    let mut out = Vec::new();
    let mut sink = TextOutput::new(&mut out, Vec::new(), OutputOptions::default(), &symbols);
    sink.begin_probe(&probe(), None).unwrap();
    sink.record(&Record::Stack {
        kind: StackKind::Kernel,
        pcs: vec![inner + 0x4, outer, 0x10, 0],
        strtab: None,
    })
    .unwrap();
    sink.end_probe().unwrap();
    sink.finish().unwrap();
    drop(sink);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let m = module();
    let indent = " ".repeat(14);
    assert_eq!(lines[1], "  0      1                           :BEGIN ");
    assert!(
        lines[2].starts_with(&format!("{indent}{m}`")) && lines[2].ends_with("inner_frame+0x4"),
        "{text}"
    );
    assert!(
        lines[3].starts_with(&format!("{indent}{m}`")) && lines[3].ends_with("outer_frame"),
        "{text}"
    );
    // Nothing is mapped at 0x10: the bare address.
    assert_eq!(lines[4], format!("{indent}0x10"));
    // The blank line after the stack, then nothing (the zero PC ends it).
    assert_eq!(lines[5], "");
    assert_eq!(lines.len(), 6, "{text}");
}

#[test]
fn stack_keyed_aggregations_print_and_fold_symbolized() {
    let symbols = SystemSymbols::new(KernelKind::Hosted);
    let (inner, outer) = (address(inner_frame), address(outer_frame));
    let agg = Aggregation {
        id: 1,
        name: "_".into(),
        kind: AggKind::Count,
        normal: 1,
        entries: vec![AggEntry {
            key: vec![Record::Stack {
                kind: StackKind::Kernel,
                pcs: vec![inner + 2, outer + 1],
                strtab: None,
            }],
            value: vec![7],
        }],
    };

    let mut text = Vec::new();
    let mut sink = TextOutput::new(&mut text, Vec::new(), OutputOptions::default(), &symbols);
    sink.end_of_run(&[&agg]).unwrap();
    sink.finish().unwrap();
    drop(sink);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("inner_frame+0x2\n"), "{text}");
    assert!(text.contains("outer_frame+0x1\n"), "{text}");
    assert!(text.trim_end().ends_with('7'), "{text}");

    let mut folded = Vec::new();
    let mut sink = FoldedOutput::new(&mut folded, Vec::new(), OutputOptions::default(), &symbols);
    sink.end_of_run(&[&agg]).unwrap();
    sink.finish().unwrap();
    drop(sink);
    let folded = String::from_utf8(folded).unwrap();
    let m = module();
    // Outermost caller first, offsets dropped, one line per stack.
    let (frames, count) = folded
        .trim_end()
        .rsplit_once(' ')
        .expect("frames and count");
    assert_eq!(count, "7");
    let frames: Vec<&str> = frames.split(';').collect();
    assert_eq!(frames.len(), 2, "{folded}");
    assert!(frames[0].starts_with(&format!("{m}`")) && frames[0].ends_with("outer_frame"));
    assert!(frames[1].ends_with("inner_frame"), "{folded}");
}

/// The whole path on the hosted kernel: stack() records real PCs of the
/// firing thread and the session prints them through the symbolizer.
#[test]
fn hosted_stack_records_print_symbolized_frames() {
    use rdtrace_libdtrace::compiler::{compile, CompileOptions};
    use rdtrace_libdtrace::consumer::client::Client;
    use rdtrace_libdtrace::consumer::device::HostedDevice;
    use rdtrace_libdtrace::consumer::session::{RunConfig, Session};

    let program =
        compile("BEGIN { stack(); exit(0); }", &CompileOptions::default()).expect("compiles");
    let client = Client::new(Box::new(HostedDevice::open().expect("hosted kernel")));
    let mut session = Session::new(client, RunConfig::default(), Default::default());
    session.enable(&program.dof).expect("enables");
    let symbols = SystemSymbols::new(KernelKind::Hosted);
    let options = OutputOptions {
        quiet: true,
        ..OutputOptions::default()
    };
    let mut sink = TextOutput::new(Vec::new(), Vec::new(), options, &symbols);
    session.run(&mut sink, &|| false).expect("runs");
    let (out, _) = sink.into_inner();
    let out = String::from_utf8(out).unwrap();
    let frames: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("              "))
        .collect();
    assert!(!frames.is_empty(), "stack() printed no frames: {out:?}");
    let m = module();
    // GO fired BEGIN from this thread: the framework's code is on the stack,
    // named in this binary with demangled Rust paths and offsets.
    assert!(
        frames.iter().any(|f| f
            .trim_start()
            .starts_with(&format!("{m}`rdtrace_framework::"))),
        "{out}"
    );
    assert!(
        frames
            .iter()
            .all(|f| f.trim_start().contains('`') || f.trim_start().starts_with("0x")),
        "{out}"
    );
}
