//! Golden tests of the text backend, derived from the rules in
//! output-formats.md (§1–§5, §7): probe line prefixes, quiet mode, trace()
//! of every size, the hex dump, stacks, symbols, flowindent, printa layouts,
//! end-of-run semantics and the stderr messages.

use rdtrace_libdtrace::output::model::{
    AggEntry, AggKind, Aggregation, DropEvent, DropKind, ErrorEvent, ProbeFiring, Record, StackKind,
};
use rdtrace_libdtrace::output::stack::{SymbolInfo, Symbolizer};
use rdtrace_libdtrace::output::text::TextOutput;
use rdtrace_libdtrace::output::{OutputOptions, OutputSink};

struct Syms;

impl Symbolizer for Syms {
    fn lookup_kernel(&self, pc: u64) -> Option<SymbolInfo> {
        match pc {
            0xffff_0000..=0xffff_00ff => Some(SymbolInfo {
                object: "kernel".into(),
                symbol: Some(("amd64_syscall".into(), 0xffff_0000)),
            }),
            0xffff_1000..=0xffff_10ff => Some(SymbolInfo {
                object: "kernel".into(),
                symbol: Some(("sys_read".into(), 0xffff_1000)),
            }),
            _ => None,
        }
    }
    fn lookup_user(&self, _pid: u64, pc: u64) -> Option<SymbolInfo> {
        (0x1000..0x2000).contains(&pc).then(|| SymbolInfo {
            object: "/usr/lib/libc.so.7".into(),
            symbol: Some(("_read".into(), 0x1000)),
        })
    }
}

fn probe(cpu: u32, id: u32, func: &str, name: &str) -> ProbeFiring {
    ProbeFiring {
        cpu,
        epid: id,
        probe_id: id,
        provider: "fbt".into(),
        module: "kernel".into(),
        function: func.into(),
        name: name.into(),
        timestamp: 1,
    }
}

fn run(opts: OutputOptions, script: impl FnOnce(&mut dyn OutputSink)) -> (String, String) {
    let mut sink = TextOutput::new(Vec::new(), Vec::new(), opts, &Syms);
    script(&mut sink);
    sink.finish().unwrap();
    let (o, e) = sink.into_inner();
    (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
}

fn one_record(opts: OutputOptions, rec: Record) -> String {
    run(opts, |s| {
        s.begin_probe(&probe(0, 1, "f", "entry"), None).unwrap();
        s.record(&rec).unwrap();
        s.end_probe().unwrap();
    })
    .0
}

fn quiet() -> OutputOptions {
    OutputOptions {
        quiet: true,
        ..OutputOptions::default()
    }
}

#[test]
fn heading_and_probe_prefix() {
    let (out, _) = run(OutputOptions::default(), |s| {
        s.begin_probe(&probe(2, 42, "read", "entry"), None).unwrap();
        s.record(&Record::int(8, 7, true)).unwrap();
        s.end_probe().unwrap();
        s.begin_probe(
            &probe(13, 123456, "a_very_long_function_name_exceeding", "return"),
            None,
        )
        .unwrap();
        s.end_probe().unwrap();
    });
    let expect = concat!(
        "CPU     ID                    FUNCTION:NAME\n",
        "  2     42                       read:entry                 7\n",
        " 13 123456 a_very_long_function_name_exceeding:return \n",
    );
    assert_eq!(out, expect);
}

#[test]
fn quiet_prints_only_explicit_output() {
    let (out, _) = run(quiet(), |s| {
        s.begin_probe(&probe(0, 1, "f", "entry"), None).unwrap();
        s.record(&Record::Printf {
            format: "x=%d\n".into(),
            args: vec![Record::int(4, 5, true)],
        })
        .unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[]).unwrap();
    });
    assert_eq!(out, "x=5\n\n");
}

#[test]
fn trace_integers_by_size() {
    let pre = "  0      1                          f:entry";
    let cases = [
        (Record::int(8, -1, true), "               -1", "-1"),
        (Record::int(4, -1, true), "       -1", "-1"),
        (Record::int(2, -1, true), " 65535", "65535"),
        (Record::int(1, -1, true), " 255", "255"),
    ];
    for (rec, loud, q) in cases {
        let out = one_record(OutputOptions::default(), rec.clone());
        assert_eq!(
            out,
            format!("CPU     ID                    FUNCTION:NAME\n{pre} {loud}\n")
        );
        assert_eq!(one_record(quiet(), rec), q);
    }
}

#[test]
fn struct_bytes_print_as_hex_dump() {
    let out = one_record(
        quiet(),
        Record::Bytes {
            data: vec![1, 2, 0x41, 0],
            force_raw: false,
        },
    );
    let expect = concat!(
        "\n",
        "             0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f  0123456789abcdef\n",
        "         0: 01 02 41 00                                      ..A.\n",
    );
    assert_eq!(out, expect);
    // tracemem forces the dump even for text.
    let raw = one_record(
        quiet(),
        Record::Bytes {
            data: b"hi\0".to_vec(),
            force_raw: true,
        },
    );
    assert!(
        raw.ends_with("         0: 68 69 00                                         hi.\n"),
        "{raw:?}"
    );
}

#[test]
fn kernel_stack_is_followed_by_blank_line() {
    let out = one_record(
        OutputOptions::default(),
        Record::Stack {
            kind: StackKind::Kernel,
            pcs: vec![0xffff_1010, 0xffff_0000, 0xdead, 0],
            strtab: None,
        },
    );
    let expect = concat!(
        "CPU     ID                    FUNCTION:NAME\n",
        "  0      1                          f:entry \n",
        "              kernel`sys_read+0x10\n",
        "              kernel`amd64_syscall\n",
        "              0xdead\n",
        "\n",
    );
    assert_eq!(out, expect);
}

#[test]
fn stackindent_option_and_ustack() {
    let opts = OutputOptions {
        quiet: true,
        stackindent: 4,
        ..OutputOptions::default()
    };
    let out = one_record(
        opts,
        Record::Stack {
            kind: StackKind::User { pid: 9 },
            pcs: vec![0x1004, 0x9999],
            strtab: None,
        },
    );
    assert_eq!(out, "\n    libc.so.7`_read+0x4\n    0x9999\n");
}

#[test]
fn symbol_actions_are_padded_to_fifty() {
    let out = one_record(quiet(), Record::Sym(0xffff_1010));
    assert_eq!(out, format!("  {:<50}", "kernel`sys_read"));
    let out = one_record(quiet(), Record::Mod(0xffff_1010));
    assert_eq!(out, format!("  {:<50}", "kernel"));
    let out = one_record(quiet(), Record::UAddr { pid: 1, pc: 0x1010 });
    assert_eq!(out, format!("  {:<50}", "libc.so.7`_read+0x10"));
    let out = one_record(quiet(), Record::USym { pid: 1, pc: 0x1010 });
    assert_eq!(out, format!("  {:<50}", "libc.so.7`_read"));
    let out = one_record(quiet(), Record::UMod { pid: 1, pc: 0x5 });
    assert_eq!(out, format!("  {:<50}", "0x5"));
}

#[test]
fn flowindent_layout() {
    let opts = OutputOptions {
        flowindent: true,
        ..OutputOptions::default()
    };
    let (out, _) = run(opts, |s| {
        s.begin_probe(&probe(0, 10, "open", "entry"), None).unwrap();
        s.end_probe().unwrap();
        s.begin_probe(&probe(0, 11, "namei", "entry"), None)
            .unwrap();
        s.end_probe().unwrap();
        s.begin_probe(&probe(0, 12, "namei", "return"), None)
            .unwrap();
        s.record(&Record::int(8, 0, true)).unwrap();
        s.end_probe().unwrap();
        s.begin_probe(&probe(0, 13, "open", "return"), None)
            .unwrap();
        s.end_probe().unwrap();
    });
    let expect = format!(
        "CPU FUNCTION                                 \n{}\n{}\n{}\n{}\n",
        format_args!("  0 {:<41} ", " -> open"),
        format_args!("  0 {:<41} ", "   -> namei"),
        format_args!("  0 {:<41}                 0", "   <- namei"),
        format_args!("  0 {:<41} ", " <- open"),
    );
    assert_eq!(out, expect);
}

fn agg(id: u32, kind: AggKind, entries: Vec<(Vec<Record>, Vec<i64>)>) -> Aggregation {
    Aggregation {
        id,
        name: format!("a{id}"),
        kind,
        normal: 1,
        entries: entries
            .into_iter()
            .map(|(key, value)| AggEntry { key, value })
            .collect(),
    }
}

#[test]
fn default_printa_layout_and_printed_flag() {
    let a = agg(
        1,
        AggKind::Count,
        vec![
            (
                vec![Record::string("sshd", 16), Record::int(4, 3, true)],
                vec![2],
            ),
            (
                vec![Record::string("cron", 16), Record::int(4, 1, true)],
                vec![1],
            ),
        ],
    );
    let b = agg(2, AggKind::Sum, vec![(vec![], vec![-7])]);
    let (out, _) = run(quiet(), |s| {
        s.begin_probe(&probe(0, 1, "f", "entry"), None).unwrap();
        s.printa(None, &[&a]).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&a, &b]).unwrap();
    });
    let expect = format!(
        "\n  {:<50} {:>8} {:>16}\n  {:<50} {:>8} {:>16}\n\n {:>16}\n",
        "cron", 1, 1, "sshd", 3, 2, -7
    );
    assert_eq!(out, expect);
}

#[test]
fn joined_printa_with_format() {
    let k = |v| vec![Record::int(4, v, true)];
    let ops = agg(1, AggKind::Count, vec![(k(3), vec![8]), (k(1), vec![2])]);
    let bytes = agg(2, AggKind::Sum, vec![(k(3), vec![4096]), (k(7), vec![10])]);
    let (out, _) = run(quiet(), |s| {
        s.begin_probe(&probe(0, 1, "f", "entry"), None).unwrap();
        s.printa(Some("%3d %5@d %6@d\n"), &[&ops, &bytes]).unwrap();
        s.end_probe().unwrap();
    });
    // Sorted by @ops (7 has no count: 0), missing values are 0.
    assert_eq!(
        out,
        "  7     0     10\n  1     2      0\n  3     8   4096\n"
    );
}

#[test]
fn interrupted_and_end_of_run_newlines() {
    let (out, _) = run(quiet(), |s| {
        s.interrupted().unwrap();
        s.end_of_run(&[]).unwrap();
    });
    assert_eq!(out, "\n\n");
}

#[test]
fn drop_and_error_messages_go_to_stderr() {
    let opts = OutputOptions::default();
    let (out, err) = run(opts, |s| {
        s.drop_event(&DropEvent {
            kind: DropKind::Principal,
            cpu: Some(1),
            count: 12,
            total: 12,
        })
        .unwrap();
        s.drop_event(&DropEvent {
            kind: DropKind::DynDirty,
            cpu: None,
            count: 1,
            total: 1,
        })
        .unwrap();
        s.error_event(&ErrorEvent {
            epid: 3,
            probe_id: 78,
            provider: "syscall".into(),
            module: "".into(),
            function: "read".into(),
            name: "entry".into(),
            action: 1,
            dif_offset: Some(24),
            fault: 2,
            address: 0x197,
        })
        .unwrap();
    });
    assert_eq!(out, "");
    assert_eq!(
        err,
        concat!(
            "dtrace: 12 drops on CPU 1\n",
            "dtrace: 1 dynamic variable drop with non-empty dirty list\n",
            "dtrace: error on enabled probe ID 3 (ID 78: syscall::read:entry): invalid alignment (0x197) in action #1 at DIF offset 24\n",
        )
    );
}

#[test]
fn avg_and_stddev_values() {
    let a = agg(1, AggKind::Avg, vec![(vec![], vec![2, -900])]);
    let s = agg(2, AggKind::Stddev, vec![(vec![], vec![2, 30, 500, 0])]);
    let (out, _) = run(quiet(), |sink| sink.end_of_run(&[&a, &s]).unwrap());
    assert_eq!(out, format!("\n {:>16}\n {:>16}\n", -450, 5));
}

#[test]
fn agghist_draws_keys_as_histogram_rows() {
    let a = agg(
        1,
        AggKind::Count,
        vec![
            (vec![Record::string("sshd", 16)], vec![1]),
            (vec![Record::string("cron", 16)], vec![3]),
        ],
    );
    let opts = OutputOptions {
        agghist: true,
        ..quiet()
    };
    let (out, _) = run(opts, |s| s.end_of_run(&[&a]).unwrap());
    // key column = packed width 16 + 1; bars scaled to the total (4).
    let expect = format!(
        "\n\n{:>17} {:>41} {:<9}\n {:>16} |{}{} {:<9}\n {:>16} |{}{} {:<9}\n",
        "key",
        "------------- Distribution -------------",
        "count",
        "sshd",
        "@".repeat(10),
        " ".repeat(30),
        1,
        "cron",
        "@".repeat(30),
        " ".repeat(10),
        3
    );
    assert_eq!(out, expect);
}

#[test]
fn aggpack_packs_each_quantize_on_one_line() {
    let mut q1 = vec![0i64; 127];
    q1[64] = 4; // value 1
    let mut q2 = vec![0i64; 127];
    q2[65] = 2; // values 2..3
    let a = agg(
        1,
        AggKind::Quantize,
        vec![
            (vec![Record::int(4, 1, true)], q1),
            (vec![Record::int(4, 2, true)], q2),
        ],
    );
    let opts = OutputOptions {
        aggpack: true,
        ..quiet()
    };
    let (out, _) = run(opts, |s| s.end_of_run(&[&a]).unwrap());
    // Shared range: buckets 63 (0) to 66 (4); one cell per bucket.
    let expect = concat!(
        "\n",
        "\n      key  min .----. max  | count\n",
        "        1    0 : X  : 4    | 4\n",
        "        2    0 :  X : 4    | 2\n",
    );
    assert_eq!(out, expect);
}
