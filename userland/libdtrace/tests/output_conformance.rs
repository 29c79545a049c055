//! Output checked against the conformance suite's expected-output files.
//!
//! Each test builds, by hand, the model values the D program in the suite
//! would produce (the program text is quoted in a comment), drives the text
//! backend exactly as the consumer will, and compares with the `.r` file
//! read at run time from /work/shared/conformance (never copied into the
//! project). When the suite is absent the tests skip with a message.

use std::path::PathBuf;

use rdtrace_libdtrace::output::model::{
    AggEntry, AggKind, Aggregation, ProbeFiring, Record, QUANTIZE_NBUCKETS,
};
use rdtrace_libdtrace::output::stack::NoSymbols;
use rdtrace_libdtrace::output::text::TextOutput;
use rdtrace_libdtrace::output::{OutputOptions, OutputSink};

mod common;

fn suite_root() -> PathBuf {
    common::conformance_root()
        .map(|root| root.join("suite/test/unittest"))
        .unwrap_or_default()
}

/// The stdout part of a `.r` file, or None (skip) when the suite is absent.
fn expected(rel: &str) -> Option<String> {
    let path = suite_root().join(rel);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(match text.split_once("-- @@stderr --\n") {
            Some((out, _)) => out.to_string(),
            None => text,
        }),
        Err(_) => {
            eprintln!(
                "skipping: conformance file {} not available",
                path.display()
            );
            None
        }
    }
}

fn begin(probe_id: u32) -> ProbeFiring {
    ProbeFiring {
        cpu: 0,
        epid: probe_id,
        probe_id: 1,
        provider: "dtrace".into(),
        module: String::new(),
        function: String::new(),
        name: "BEGIN".into(),
        timestamp: 0,
    }
}

fn quiet() -> OutputOptions {
    OutputOptions {
        quiet: true,
        ..OutputOptions::default()
    }
}

/// Runs `script` against a text sink and returns stdout.
fn run(opts: OutputOptions, script: impl FnOnce(&mut dyn OutputSink)) -> String {
    let mut sink = TextOutput::new(Vec::new(), Vec::new(), opts, &NoSymbols);
    script(&mut sink);
    sink.finish().unwrap();
    let (out, _) = sink.into_inner();
    String::from_utf8(out).unwrap()
}

fn int(v: i64) -> Record {
    Record::int(4, v, true)
}

fn printf(fmt: &str, args: Vec<Record>) -> Record {
    Record::Printf {
        format: fmt.into(),
        args,
    }
}

fn agg(id: u32, name: &str, kind: AggKind, entries: Vec<(Vec<Record>, Vec<i64>)>) -> Aggregation {
    Aggregation {
        id,
        name: name.into(),
        kind,
        normal: 1,
        entries: entries
            .into_iter()
            .map(|(key, value)| AggEntry { key, value })
            .collect(),
    }
}

/// quantize() bucket index of `v` (the kernel's bucketing).
fn qbucket(v: i64) -> usize {
    if v == 0 {
        return 63;
    }
    let log = 63 - v.unsigned_abs().leading_zeros() as usize;
    if v > 0 {
        64 + log
    } else {
        62 - log
    }
}

fn quantize(pairs: &[(i64, i64)]) -> Vec<i64> {
    let mut d = vec![0i64; QUANTIZE_NBUCKETS];
    for &(v, n) in pairs {
        d[qbucket(v)] = d[qbucket(v)].wrapping_add(n);
    }
    d
}

#[test]
fn aggs_count_quiet() {
    // BEGIN { @a = count(); @a = count(); exit(0); }  (quiet)
    let Some(want) = expected("aggs/tst.count.r") else {
        return;
    };
    let a = agg(1, "a", AggKind::Count, vec![(vec![], vec![2])]);
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.record(&Record::Exit(0)).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&a]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn aggs_count_notquiet_oracle_columns() {
    // 3 empty BEGINs, trace("hello world"), 10 × @a = count(), exit(0).
    let Some(want) = expected("aggs/tst.count_notquiet.r") else {
        return;
    };
    let a = agg(1, "a", AggKind::Count, vec![(vec![], vec![10])]);
    let opts = OutputOptions {
        oracle_testing_columns: true,
        ..OutputOptions::default()
    };
    let got = run(opts, |s| {
        for epid in 1..=3 {
            s.begin_probe(&begin(epid), None).unwrap();
            s.end_probe().unwrap();
        }
        s.begin_probe(&begin(4), None).unwrap();
        s.record(&Record::string("hello world", 256)).unwrap();
        s.end_probe().unwrap();
        s.begin_probe(&begin(15), None).unwrap();
        s.record(&Record::Exit(0)).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&a]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn trace_strings_with_percent_and_newlines() {
    let Some(want) = expected("trace/tst.string.r") else {
        return;
    };
    let opts = OutputOptions {
        oracle_testing_columns: true,
        ..OutputOptions::default()
    };
    let got = run(opts, |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.record(&Record::string("this", 256)).unwrap();
        s.record(&Record::string(" %should work.\n", 256)).unwrap();
        s.record(&Record::string(
            "%don't w%orry -- this won't cause a %segfault.\n",
            256,
        ))
        .unwrap();
        s.record(&Record::Exit(0)).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn trace_uint8_quiet() {
    let Some(want) = expected("actions/trace/tst.uint8_t-quiet.r") else {
        return;
    };
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.record(&Record::int(1, -1, false)).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn rawbytes_hex_dump() {
    // rawbytes, strsize=10: trace(strjoin("dtrace", "BEGIN")) = "dtraceBEGI\0".
    let Some(want) = expected("funcs/strjoin/tst.strjoin-capped-size.r") else {
        return;
    };
    let opts = OutputOptions {
        quiet: true,
        rawbytes: true,
        ..OutputOptions::default()
    };
    let got = run(opts, |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.record(&Record::Bytes {
            data: b"dtraceBEGI\0".to_vec(),
            force_raw: false,
        })
        .unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn quantize_rounding() {
    let Some(want) = expected("aggs/tst.quantround.r") else {
        return;
    };
    let a = agg(
        1,
        "_",
        AggKind::Quantize,
        vec![(vec![], quantize(&[(0, 2), (1, 6), (2, 19)]))],
    );
    let got = run(quiet(), |s| s.end_of_run(&[&a]).unwrap());
    // The suite's file starts with the newline of the ^C-less exit path.
    assert_eq!(got, want);
}

#[test]
fn multiple_aggregations_at_end() {
    let Some(want) = expected("aggs/tst.multiaggs2.r") else {
        return;
    };
    let values: Vec<i64> = (0..10).map(|i| i * 100).collect();
    let sum: i64 = values.iter().sum();
    let q = quantize(&values.iter().map(|&v| (v, 1)).collect::<Vec<_>>());
    let mut l = vec![0i64; 12];
    for &v in &values {
        l[(v / 100 + 1) as usize] += 1;
    }
    let aggs = [
        agg(1, "a", AggKind::Avg, vec![(vec![], vec![10, sum])]),
        agg(2, "b", AggKind::Sum, vec![(vec![], vec![sum])]),
        agg(3, "c", AggKind::Min, vec![(vec![], vec![0])]),
        agg(4, "d", AggKind::Max, vec![(vec![], vec![900])]),
        agg(5, "e", AggKind::Quantize, vec![(vec![], q)]),
        agg(
            6,
            "f",
            AggKind::Lquantize {
                base: 0,
                step: 100,
                levels: 10,
            },
            vec![(vec![], l)],
        ),
    ];
    let refs: Vec<&Aggregation> = aggs.iter().collect();
    let got = run(quiet(), |s| s.end_of_run(&refs).unwrap());
    assert_eq!(got, want);
}

#[test]
fn lquantize_ranges_and_negative_bars() {
    let Some(want) = expected("aggs/tst.lquantrange.r") else {
        return;
    };
    let kind = AggKind::Lquantize {
        base: -10,
        step: 1,
        levels: 20,
    };
    let bins = |idx: usize, n: i64| {
        let mut d = vec![0i64; 22];
        d[idx] = n;
        d
    };
    let key = |s: &str| vec![Record::string(s, 256)];
    let a = agg(
        1,
        "_",
        kind,
        vec![
            (key("Nixon"), bins(0, 25)),
            (key("Hoover"), bins(21, -100)),
            (key("Harding"), bins(1, 15)),
            (key("Bush"), bins(21, 150)),
        ],
    );
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.printa(None, &[&a]).unwrap();
        s.record(&Record::Exit(0)).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&a]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn negative_quantize_values_and_order() {
    let Some(want) = expected("aggs/tst.negquant.r") else {
        return;
    };
    let key = |s: &str| vec![Record::string(s, 256)];
    let max = i64::MAX;
    let a = agg(
        1,
        "_",
        AggKind::Quantize,
        vec![
            (key("j-church"), quantize(&[(1, 100), (1, -99), (1, -1)])),
            (key("k-ingleside"), quantize(&[(1, -123)])),
            (
                key("l-taraval"),
                quantize(&[(0, -123), (-1, -123), (1, 123), (1, 123)]),
            ),
            (
                key("m-oceanview"),
                quantize(&[(1, max), (1, 1), (2, max), (8, 400000)]),
            ),
            (
                key("n-judah"),
                quantize(&[(1, 123), (2, 123), (2, 123), (2, 1)]),
            ),
            (
                key("f-market"),
                quantize(&[(1, max), (2, max >> 1), (4, max >> 2), (8, max >> 3)]),
            ),
            (
                key("s-castro"),
                quantize(&[
                    (1, max - 3),
                    (2, (max - 3) >> 1),
                    (4, (max - 3) >> 2),
                    (8, (max - 3) >> 3),
                ]),
            ),
        ],
    );
    let got = run(quiet(), |s| s.end_of_run(&[&a]).unwrap());
    assert_eq!(got, want);
}

#[test]
fn stddev_of_large_values() {
    let Some(want) = expected("aggs/tst.stddev.r") else {
        return;
    };
    let words = |sign: i64| {
        let vals: Vec<i64> = (0..10).map(|i| sign * (5_000_000_000 + 100 * i)).collect();
        let sumsq: u128 = vals.iter().map(|v| (v.unsigned_abs() as u128).pow(2)).sum();
        vec![
            10,
            vals.iter().sum(),
            sumsq as u64 as i64,
            (sumsq >> 64) as u64 as i64,
        ]
    };
    let a = agg(1, "a", AggKind::Stddev, vec![(vec![], words(1))]);
    let b = agg(2, "b", AggKind::Stddev, vec![(vec![], words(-1))]);
    let got = run(quiet(), |s| s.end_of_run(&[&a, &b]).unwrap());
    assert_eq!(got, want);
}

#[test]
fn normalize_divides_printed_value() {
    let Some(want) = expected("aggs/tst.normalize.r") else {
        return;
    };
    let total: i64 = (0..20).map(|i| i * 100).sum();
    let mut a = agg(1, "a", AggKind::Sum, vec![(vec![], vec![total])]);
    a.normal = 5;
    let b = agg(2, "b", AggKind::Sum, vec![(vec![], vec![total])]);
    let got = run(quiet(), |s| s.end_of_run(&[&a, &b]).unwrap());
    assert_eq!(got, want);
}

#[test]
fn keysort_options() {
    let Some(want) = expected("aggs/tst.keysort.r") else {
        return;
    };
    let cities = [
        ("Ghent", 0),
        ("Berlin", 1),
        ("London", 2),
        ("Dublin", 2),
        ("Shanghai", 3),
        ("Zurich", 4),
        ("Regina", 5),
        ("Winnipeg", 5),
        ("Edmonton", 5),
        ("Calgary", 5),
        ("Vancouver", 5),
        ("Victoria", 5),
        ("Prague", 6),
        ("London", 6),
        ("Brisbane", 7),
        ("Sydney", 7),
        ("Melbourne", 7),
        ("Amsterdam", 8),
    ];
    let entries = cities
        .iter()
        .enumerate()
        .map(|(i, &(name, j))| {
            (
                vec![Record::string(name, 256), int(i as i64), int(j)],
                vec![5 - j],
            )
        })
        .collect();
    let tour = agg(1, "tour", AggKind::Sum, entries);
    let fmt = "%20s %8d %8d %8@d\n";
    let mut sink = TextOutput::new(Vec::new(), Vec::new(), quiet(), &NoSymbols);
    let sections: [(&str, bool, bool, usize); 8] = [
        ("By value:\n", false, false, 0),
        ("\nBy key, position 0:\n", true, false, 0),
        ("\nBy key, position 1:\n", true, false, 1),
        ("\nBy key, position 2:\n", true, false, 2),
        ("\nReversed by value:\n", false, true, 0),
        ("\nReversed by key, position 0:\n", true, true, 0),
        ("\nReversed by key, position 1:\n", true, true, 1),
        ("\nReversed by key, position 2:\n", true, true, 2),
    ];
    sink.begin_probe(&begin(1), None).unwrap();
    for (title, key, rev, pos) in sections {
        sink.set_options(OutputOptions {
            aggsortkey: key,
            aggsortrev: rev,
            aggsortkeypos: pos,
            ..quiet()
        });
        sink.record(&printf(title, vec![])).unwrap();
        sink.printa(Some(fmt), &[&tour]).unwrap();
    }
    sink.end_probe().unwrap();
    sink.end_of_run(&[&tour]).unwrap();
    let (out, _) = sink.into_inner();
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn printf_ints_sizes_and_signedness() {
    let Some(want) = expected("printf/tst.ints.r") else {
        return;
    };
    let v: i64 = 0x1234567890abcdef;
    // (char), (short), (int), (long long) then the unsigned variants.
    let typed = |signed: bool| {
        vec![
            Record::int(1, v, signed),
            Record::int(2, v, signed),
            Record::int(4, v, signed),
            Record::int(8, v, signed),
        ]
    };
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        for (conv, signed_first) in [("d", true), ("d", false), ("u", true), ("u", false)] {
            let args = typed(signed_first);
            for (i, a) in args.into_iter().enumerate() {
                let lead = if i == 0 { "\n" } else { "" };
                s.record(&printf(&format!("{lead}%{conv}\n"), vec![a]))
                    .unwrap();
            }
        }
        for signed in [false, true] {
            for (i, a) in typed(signed).into_iter().enumerate() {
                let lead = if i == 0 { "\n" } else { "" };
                s.record(&printf(&format!("{lead}%x\n"), vec![a])).unwrap();
            }
        }
        for signed in [false, true] {
            for (i, a) in typed(signed).into_iter().enumerate() {
                let lead = if i == 0 { "\n" } else { "" };
                s.record(&printf(&format!("{lead}%o\n"), vec![a])).unwrap();
            }
        }
        s.record(&printf("\n%p\n", vec![Record::int(8, 0x12345678, false)]))
            .unwrap();
        s.record(&printf("%p\n", vec![Record::int(8, 0x90abcdef, false)]))
            .unwrap();
        s.record(&printf("%p\n", vec![Record::int(8, 0x67890abc, false)]))
            .unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn printf_flags() {
    let Some(want) = expected("printf/tst.flags.r") else {
        return;
    };
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.record(&printf("\n", vec![])).unwrap();
        s.record(&printf("# %#8x\n", vec![int(0x123)])).unwrap();
        s.record(&printf("0 %08x\n", vec![int(0x123)])).unwrap();
        s.record(&printf("- %-8x\n", vec![int(0x123)])).unwrap();
        s.record(&printf("+ %+8d\n", vec![int(123)])).unwrap();
        s.record(&printf("  % 8d\n", vec![int(123)])).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[]).unwrap();
    });
    // The runner rewrites every 0x<hex> as {ptr}.
    let got = got.replace("0x123", "{ptr}");
    assert_eq!(got, want);
}

#[test]
fn printf_widths_static_and_dynamic() {
    let Some(want) = expected("printf/tst.widths.r") else {
        return;
    };
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.record(&printf("\n", vec![])).unwrap();
        for w in 0..6 {
            s.record(&printf(&format!("%{w}d\n"), vec![int(1)]))
                .unwrap();
        }
        for x in 0..6 {
            s.record(&printf("%*d\n", vec![Record::int(8, x, true), int(1)]))
                .unwrap();
        }
        s.end_probe().unwrap();
        s.end_of_run(&[]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn printa_dynamic_width_from_key() {
    let Some(want) = expected("printa/tst.dynwidth.r") else {
        return;
    };
    let a = agg(
        1,
        "_",
        AggKind::Sum,
        vec![
            (vec![int(10), int(100)], vec![1]),
            (vec![int(-10), int(200)], vec![2]),
        ],
    );
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.printa(Some("-->%-*d<--\n"), &[&a]).unwrap();
        s.printa(Some("-->%*d<--\n"), &[&a]).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&a]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn printa_tuple_prefixes() {
    let Some(want) = expected("printa/tst.tuple.r") else {
        return;
    };
    let a = agg(
        1,
        "a",
        AggKind::Count,
        vec![((1..=5).map(int).collect(), vec![1])],
    );
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.record(&printf("\n", vec![])).unwrap();
        for n in 0..=5 {
            let fmt = if n == 0 {
                "%@u: -\n".to_string()
            } else {
                format!("%@u:{}\n", " %d".repeat(n))
            };
            s.printa(Some(&fmt), &[&a]).unwrap();
        }
        s.end_probe().unwrap();
        s.end_of_run(&[&a]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn printa_format_without_newline() {
    let Some(want) = expected("printa/tst.fmt.r") else {
        return;
    };
    let a = agg(1, "a", AggKind::Count, vec![(vec![], vec![1])]);
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.printa(Some("%@u"), &[&a]).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&a]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn printa_basics_every_function() {
    // @h (llquantize) follows Oracle's re-implementation in the suite
    // (output-formats.md §12); its block is left out of the comparison.
    let Some(full) = expected("printa/tst.basics.r") else {
        return;
    };
    let mut want = String::new();
    let mut skipping = false;
    for line in full.split_inclusive('\n') {
        if line.starts_with("@h = ") {
            skipping = true;
        } else if skipping && line.starts_with('@') {
            skipping = false;
        }
        if !skipping {
            want.push_str(line);
        }
    }
    let mut l = vec![0i64; 11];
    l[1] = 1;
    let aggs = [
        agg(1, "a", AggKind::Avg, vec![(vec![], vec![1, 1])]),
        agg(2, "b", AggKind::Count, vec![(vec![], vec![1])]),
        agg(
            3,
            "c",
            AggKind::Lquantize {
                base: 1,
                step: 1,
                levels: 9,
            },
            vec![(vec![], l)],
        ),
        agg(4, "d", AggKind::Max, vec![(vec![], vec![1])]),
        agg(5, "e", AggKind::Min, vec![(vec![], vec![1])]),
        agg(6, "f", AggKind::Sum, vec![(vec![], vec![1])]),
        agg(
            7,
            "g",
            AggKind::Quantize,
            vec![(vec![], quantize(&[(1, 1)]))],
        ),
        agg(9, "i", AggKind::Stddev, vec![(vec![], vec![2, 30, 500, 0])]),
    ];
    let fmts = [
        "@a = %@u\n",
        "@b = %@u\n",
        "@c = %@d\n",
        "@d = %@u\n",
        "@e = %@u\n",
        "@f = %@u\n",
        "@g = %@d\n",
        "@i = %@d\n",
    ];
    let refs: Vec<&Aggregation> = aggs.iter().collect();
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        for (a, f) in aggs.iter().zip(fmts) {
            s.printa(Some(f), &[a]).unwrap();
        }
        s.end_probe().unwrap();
        s.end_of_run(&refs).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn avg_of_negative_values() {
    let Some(want) = expected("aggs/tst.avg_neg.r") else {
        return;
    };
    let a = agg(1, "_", AggKind::Avg, vec![(vec![], vec![2, -900])]);
    let got = run(quiet(), |s| s.end_of_run(&[&a]).unwrap());
    assert_eq!(got, want);
}

#[test]
fn printa_orders_ties_by_key() {
    let Some(want) = expected("aggs/tst.order.r") else {
        return;
    };
    let one = |keys: Vec<Record>| (keys, vec![1]);
    let nums = agg(
        1,
        "_",
        AggKind::Sum,
        [8, 6, 7, 5, 3, 0, 9]
            .iter()
            .map(|&k| one(vec![int(k)]))
            .collect(),
    );
    let cities = [
        "Ghent", "Berlin", "London", "Dublin", "Shanghai", "Zurich", "Regina", "Winnipeg",
        "Edmonton", "Calgary",
    ];
    let tour = agg(
        2,
        "tour",
        AggKind::Sum,
        cities
            .iter()
            .map(|c| one(vec![Record::string(c, 256)]))
            .collect(),
    );
    let food = [
        "Rice",
        "Oatmeal",
        "Barley",
        "Carrots",
        "Sweet potato",
        "Asparagus",
        "Squash",
    ];
    let ate = agg(
        3,
        "ate",
        AggKind::Sum,
        food.iter()
            .map(|f| one(vec![int(8), Record::string(f, 256)]))
            .collect(),
    );
    let chars = agg(
        4,
        "chars",
        AggKind::Sum,
        "asdf"
            .bytes()
            .map(|c| one(vec![Record::int(1, i64::from(c), true)]))
            .collect(),
    );
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        for (fmt, a) in [
            ("%d\n", &nums),
            ("%s\n", &tour),
            ("%d %s\n", &ate),
            ("%c\n", &chars),
        ] {
            s.printa(Some(fmt), &[a]).unwrap();
            s.record(&printf("\n", vec![])).unwrap();
        }
        s.end_probe().unwrap();
        s.end_of_run(&[&nums, &tour, &ate, &chars]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn joined_printa_with_missing_keys_and_histograms() {
    let Some(want) = expected("multiaggs/tst.zero2.r") else {
        return;
    };
    let k = |v| vec![int(v)];
    let bop = agg(
        1,
        "bop",
        AggKind::Quantize,
        vec![(k(345), vec![0; QUANTIZE_NBUCKETS])],
    );
    let baz = agg(
        2,
        "baz",
        AggKind::Lquantize {
            base: -10,
            step: 1,
            levels: 20,
        },
        vec![(k(345), vec![0; 22])],
    );
    let foo = agg(
        3,
        "foo",
        AggKind::Sum,
        vec![(k(123), vec![123]), (k(789), vec![789])],
    );
    let bar = agg(
        4,
        "bar",
        AggKind::Sum,
        vec![(k(456), vec![456]), (k(789), vec![789])],
    );
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.printa(Some("%10d %@10d %@10d\n"), &[&foo, &bar]).unwrap();
        s.printa(Some("%10d %@10d %@10d %@10d\n"), &[&foo, &bar, &bop])
            .unwrap();
        s.printa(
            Some("%10d %@10d %@10d %@10d %@10d\n"),
            &[&foo, &bar, &bop, &baz],
        )
        .unwrap();
        s.record(&Record::Exit(0)).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&bop, &baz, &foo, &bar]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn printa_of_empty_aggregations() {
    let Some(want) = expected("multiaggs/tst.zero3.r") else {
        return;
    };
    let bop = agg(1, "bop", AggKind::Quantize, vec![]);
    let baz = agg(
        2,
        "baz",
        AggKind::Lquantize {
            base: -10,
            step: 1,
            levels: 20,
        },
        vec![],
    );
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.printa(None, &[&bop]).unwrap();
        s.printa(None, &[&baz]).unwrap();
        s.printa(Some("%@10d %@10d\n"), &[&bop, &baz]).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&bop, &baz]).unwrap();
    });
    assert_eq!(got, want);
}

/// The whole `.r` (stdout, the stderr marker, stderr).
fn expected_full(rel: &str) -> Option<String> {
    let path = suite_root().join(rel);
    std::fs::read_to_string(&path).ok().or_else(|| {
        eprintln!(
            "skipping: conformance file {} not available",
            path.display()
        );
        None
    })
}

fn run_both(opts: OutputOptions, script: impl FnOnce(&mut dyn OutputSink)) -> (String, String) {
    let mut sink = TextOutput::new(Vec::new(), Vec::new(), opts, &NoSymbols);
    script(&mut sink);
    sink.finish().unwrap();
    let (o, e) = sink.into_inner();
    (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
}

#[test]
fn drop_messages_with_droptags() {
    use rdtrace_libdtrace::output::messages;
    use rdtrace_libdtrace::output::model::{DropEvent, DropKind};
    let cases = [
        ("drops/drp.DTRACEDROP_SPEC", 3, DropKind::Spec, 1),
        ("drops/drp.DTRACEDROP_DYNAMIC", 2, DropKind::Dynamic, 1),
        (
            "drops/drp.DTRACEDROP_SPECUNAVAIL",
            5,
            DropKind::SpecUnavail,
            3,
        ),
    ];
    for (name, matched, kind, count) in cases {
        let Some(want) = expected_full(&format!("{name}.r")) else {
            return;
        };
        let opts = OutputOptions {
            droptags: true,
            oracle_testing_columns: true,
            ..OutputOptions::default()
        };
        let (out, err) = run_both(opts, |s| {
            // Only the exit(0) clause leaves a record in the principal buffer.
            s.begin_probe(&begin(matched), None).unwrap();
            s.record(&Record::Exit(0)).unwrap();
            s.end_probe().unwrap();
            s.drop_event(&DropEvent {
                kind,
                cpu: None,
                count,
                total: count,
            })
            .unwrap();
            s.end_of_run(&[]).unwrap();
        });
        let notice =
            messages::matched_notice("script", &format!("test/unittest/{name}.d"), matched);
        let got = format!("{out}-- @@stderr --\ndtrace: {notice}{err}");
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn aggregation_drop_message() {
    use rdtrace_libdtrace::output::model::{DropEvent, DropKind};
    let Some(want) = expected_full("drops/drp.DTRACEDROP_AGGREGATION.r") else {
        return;
    };
    let a = agg(
        1,
        "_",
        AggKind::Count,
        vec![(vec![Record::string("Harding", 512)], vec![1])],
    );
    let opts = OutputOptions {
        droptags: true,
        ..quiet()
    };
    let (out, err) = run_both(opts, |s| {
        s.begin_probe(&begin(2), None).unwrap();
        s.record(&Record::Exit(0)).unwrap();
        s.end_probe().unwrap();
        s.drop_event(&DropEvent {
            kind: DropKind::Aggregation,
            cpu: Some(5),
            count: 3,
            total: 3,
        })
        .unwrap();
        s.end_of_run(&[&a]).unwrap();
    });
    // The suite's .r.p filter rewrites CPU numbers as "CPU #".
    let err = err.replace("CPU 5", "CPU #");
    assert_eq!(format!("{out}-- @@stderr --\n{err}"), want);
}

#[test]
fn quantize_zero_bucket_breaks_ties() {
    let Some(want) = expected("aggs/tst.quantzero.r") else {
        return;
    };
    // Replays the script: a = 7, b = 13, val = -84; every tick
    // incr = val % b; val += a (skipping 0); @[++i] = quantize(0, incr).
    let (a, b) = (7i64, 13i64);
    let mut val = -a * b + a;
    let mut entries = Vec::new();
    let mut i = 0;
    loop {
        let incr = val % b;
        val += a;
        if val == 0 {
            val += a;
        }
        if incr == 0 {
            break;
        }
        i += 1;
        // `i` is an implicitly declared D global: a 64-bit integer.
        entries.push((vec![Record::int(8, i, true)], quantize(&[(0, incr)])));
    }
    let q = agg(1, "_", AggKind::Quantize, entries);
    let got = run(quiet(), |s| {
        s.begin_probe(&begin(1), None).unwrap();
        s.printa(None, &[&q]).unwrap();
        s.end_probe().unwrap();
        s.end_of_run(&[&q]).unwrap();
    });
    assert_eq!(got, want);
}

#[test]
fn lquantize_entries_by_weighted_value() {
    let Some(want) = expected("aggs/tst.lquantize.r") else {
        return;
    };
    let kind = AggKind::Lquantize {
        base: -100,
        step: 100,
        levels: 12,
    };
    let entries = (0..10)
        .map(|n| {
            let mut d = vec![0i64; 14];
            d[n + 2] = 1; // value n*100 lands in bin (n*100 - base) / step + 1
            (vec![int(n as i64 * 100)], d)
        })
        .collect();
    let a = agg(1, "a", kind, entries);
    let got = run(quiet(), |s| s.end_of_run(&[&a]).unwrap());
    assert_eq!(got, want);
}

#[test]
fn quantize_last_bucket() {
    let Some(want) = expected("aggs/tst.quantlast.r") else {
        return;
    };
    let q = agg(
        1,
        "_",
        AggKind::Quantize,
        vec![(vec![], quantize(&[(0x4000_0000_0000_0000, 1234)]))],
    );
    let got = run(quiet(), |s| s.end_of_run(&[&q]).unwrap());
    assert_eq!(got, want);
}

fn oracle() -> OutputOptions {
    OutputOptions {
        oracle_testing_columns: true,
        oracle_trace_integers: true,
        ..OutputOptions::default()
    }
}

#[test]
fn oracle_compat_trace_integers() {
    // trace((int8_t)-1), trace((int16_t)-1), trace((int32_t)-1), trace(self->x++)
    let cases = [
        ("actions/trace/tst.int8_t.r", Record::int(1, -1, true)),
        ("actions/trace/tst.int16_t.r", Record::int(2, -1, true)),
        ("actions/trace/tst.int32_t.r", Record::int(4, -1, true)),
        ("codegen/tst.post_inc_tvar_val.r", Record::int(8, 0, true)),
    ];
    for (file, rec) in cases {
        let Some(want) = expected(file) else { return };
        let got = run(oracle(), |s| {
            s.begin_probe(&begin(1), None).unwrap();
            s.record(&rec).unwrap();
            s.record(&Record::Exit(0)).unwrap();
            s.end_probe().unwrap();
            s.end_of_run(&[]).unwrap();
        });
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn signed_keys_sort_unsigned() {
    // The aggregation part of aggs/tst.signedkeys.r (aggsortkey): 1- and
    // 2-byte keys print unsigned, and keys sort as unsigned values.
    let Some(full) = expected("aggs/tst.signedkeys.r") else {
        return;
    };
    let start = full
        .find("\n   0                0\n")
        .expect("aggregation section");
    let want = &full[start..];
    let vals = [-2i64, -1, 0, 1, 2];
    let mk = |id, size| {
        agg(
            id,
            "a",
            AggKind::Sum,
            vals.iter()
                .map(|&v| (vec![Record::int(size, v, true)], vec![v]))
                .collect(),
        )
    };
    let aggs = [mk(1, 1), mk(2, 2), mk(3, 4), mk(4, 8)];
    let refs: Vec<&Aggregation> = aggs.iter().collect();
    let opts = OutputOptions {
        aggsortkey: true,
        ..quiet()
    };
    let got = run(opts, |s| s.end_of_run(&refs).unwrap());
    assert_eq!(got, want);
}
