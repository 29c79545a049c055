//! The JSON backend (FreeBSD oformat/libxo key names) and the folded-stack
//! backend for flame graphs.

use rdtrace_libdtrace::output::folded::FoldedOutput;
use rdtrace_libdtrace::output::json::JsonOutput;
use rdtrace_libdtrace::output::model::{
    AggEntry, AggKind, Aggregation, DropEvent, DropKind, ProbeFiring, Record, StackKind,
    QUANTIZE_NBUCKETS,
};
use rdtrace_libdtrace::output::stack::{SymbolInfo, Symbolizer};
use rdtrace_libdtrace::output::{OutputOptions, OutputSink};
use serde_json::{json, Value};

struct Syms;

impl Symbolizer for Syms {
    fn lookup_kernel(&self, pc: u64) -> Option<SymbolInfo> {
        let (name, start) = match pc {
            0x100..=0x1ff => ("fork_exit", 0x100),
            0x200..=0x2ff => ("amd64_syscall", 0x200),
            0x300..=0x3ff => ("sys_read", 0x300),
            _ => return None,
        };
        Some(SymbolInfo {
            object: "kernel".into(),
            symbol: Some((name.into(), start)),
        })
    }
    fn lookup_user(&self, _pid: u64, _pc: u64) -> Option<SymbolInfo> {
        None
    }
}

fn begin() -> ProbeFiring {
    ProbeFiring {
        cpu: 1,
        epid: 3,
        probe_id: 9,
        provider: "dtrace".into(),
        module: String::new(),
        function: String::new(),
        name: "BEGIN".into(),
        timestamp: 1234,
    }
}

fn json_of(script: impl FnOnce(&mut dyn OutputSink)) -> Value {
    let mut sink = JsonOutput::new(
        Vec::new(),
        Vec::new(),
        OutputOptions::default(),
        &Syms,
        false,
    );
    script(&mut sink);
    sink.finish().unwrap();
    let (out, _) = sink.into_inner();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn probe_records_in_output_list() {
    let doc = json_of(|s| {
        s.begin_probe(&begin(), None).unwrap();
        s.record(&Record::int(8, -3, true)).unwrap();
        s.record(&Record::Printf {
            format: "n=%d %s".into(),
            args: vec![Record::int(4, 5, true), Record::string("x", 8)],
        })
        .unwrap();
        s.record(&Record::Printf {
            format: "plain".into(),
            args: vec![],
        })
        .unwrap();
        s.record(&Record::Sym(0x310)).unwrap();
        s.record(&Record::Stack {
            kind: StackKind::Kernel,
            pcs: vec![0x310, 0x200, 0],
            strtab: None,
        })
        .unwrap();
        s.end_probe().unwrap();
    });
    let probe = &doc["dtrace"]["probes"][0];
    assert_eq!(probe["timestamp"], 1234);
    assert_eq!(probe["cpu"], 1);
    assert_eq!(probe["id"], 9);
    assert_eq!(probe["provider"], "dtrace");
    assert_eq!(probe["module"], "");
    assert_eq!(probe["name"], "BEGIN");
    let out = probe["output"].as_array().unwrap();
    assert_eq!(out[0], json!({"value": -3}));
    assert_eq!(out[1], json!({"message": "n=5 x"}));
    assert_eq!(out[2], json!({"value": 5}));
    assert_eq!(out[3], json!({"value": "x"}));
    assert_eq!(out[4], json!({"message": "plain"}));
    assert_eq!(out[5], json!({"value": 0}));
    assert_eq!(
        out[6],
        json!({"sym": "kernel`sys_read", "object": "kernel", "name": "sys_read"})
    );
    assert_eq!(
        out[7],
        json!({"stack-frames": [
            {"symbol": "kernel`sys_read+0x10", "module": "kernel", "name": "sys_read", "offset": "0x10"},
            {"symbol": "kernel`amd64_syscall", "module": "kernel", "name": "amd64_syscall"}
        ]})
    );
}

#[test]
fn aggregations_with_keys_and_buckets() {
    let mut q = vec![0i64; QUANTIZE_NBUCKETS];
    q[64 + 5] = 17; // 32..63
    let hist = Aggregation {
        id: 1,
        name: "lat".into(),
        kind: AggKind::Quantize,
        normal: 1,
        entries: vec![AggEntry {
            key: vec![Record::string("sshd", 16)],
            value: q,
        }],
    };
    let sd = Aggregation {
        id: 2,
        name: "sd".into(),
        kind: AggKind::Stddev,
        normal: 1,
        entries: vec![AggEntry {
            key: vec![],
            value: vec![2, 30, 500, 0],
        }],
    };
    let doc = json_of(|s| {
        s.begin_probe(&begin(), None).unwrap();
        s.printa(None, &[&hist]).unwrap();
        s.end_probe().unwrap();
        s.drop_event(&DropEvent {
            kind: DropKind::Dynamic,
            cpu: None,
            count: 4,
            total: 9,
        })
        .unwrap();
        s.end_of_run(&[&hist, &sd]).unwrap();
    });
    let printed = &doc["dtrace"]["probes"][0]["output"][0];
    assert_eq!(
        *printed,
        json!({"aggregation-name": "lat", "aggregation-data": [
            {"keys": [{"value": "sshd"}], "buckets": [{"value": 32, "count": 17}]}
        ]})
    );
    let drop = &doc["dtrace"]["probes"][1];
    assert_eq!(drop["provider"], "dtrace");
    assert_eq!(drop["module"], "INTERNAL");
    assert_eq!(drop["function"], "INTERNAL");
    assert_eq!(drop["name"], "DROP");
    assert_eq!(drop["cpu"], -1);
    assert_eq!(drop["id"], -1);
    assert_eq!(drop["count"], 4);
    assert_eq!(drop["total"], 9);
    assert_eq!(drop["kind"], 2);
    assert_eq!(drop["msg"], "4 dynamic variable drops\n");
    // @lat was printed by printa(); only @sd remains for the end of run.
    assert_eq!(
        doc["dtrace"]["aggregations"],
        json!([{"aggregation-name": "sd", "aggregation-data": [{"keys": [], "stddev": 5}]}])
    );
}

#[test]
fn folded_stacks_outermost_first() {
    let stack = |pcs: Vec<u64>| Record::Stack {
        kind: StackKind::Kernel,
        pcs,
        strtab: None,
    };
    let a = Aggregation {
        id: 1,
        name: "_".into(),
        kind: AggKind::Count,
        normal: 1,
        entries: vec![
            AggEntry {
                key: vec![
                    Record::string("cat", 16),
                    stack(vec![0x310, 0x220, 0x100, 0]),
                ],
                value: vec![7],
            },
            AggEntry {
                key: vec![Record::string("sh", 16), stack(vec![0x999])],
                value: vec![2],
            },
        ],
    };
    let mut sink = FoldedOutput::new(Vec::new(), Vec::new(), OutputOptions::default(), &Syms);
    sink.end_of_run(&[&a]).unwrap();
    sink.finish().unwrap();
    let (out, _) = sink.into_inner();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "sh;0x999 2\ncat;kernel`fork_exit;kernel`amd64_syscall;kernel`sys_read 7\n"
    );
}
