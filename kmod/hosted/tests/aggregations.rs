//! Aggregation scenarios: every aggregating function, keyed tuples, AGGDESC
//! layout, AGGSNAP contents and aggregation drops.
mod common;

use common::dof_builder::*;
use common::*;
use rdtrace_framework::abi::*;

/// Sums the value words of every entry of aggregation `aggid` across CPUs,
/// keyed by the key bytes.
fn entries(c: &rdtrace_hosted::HostedConsumer, aggid: u32) -> Entries {
    let (_, size, recs) = aggdesc(c, aggid).unwrap();
    let value = recs.last().unwrap();
    let mut out: Entries = Vec::new();
    for cpu in 0..ncpu() {
        let Ok(s) = aggsnap(c, cpu, 1 << 20) else {
            continue;
        };
        let mut off = 0usize;
        while off + 4 <= s.data.len() {
            let id = u32_at(&s.data, off as u32);
            if id == 0 {
                off += 4;
                continue;
            }
            let e = &s.data[off..off + size as usize];
            if id == aggid {
                let key = e[8..value.offset as usize].to_vec();
                let vals: Vec<u64> = (0..value.size / 8)
                    .map(|i| u64_at(e, value.offset + 8 * i))
                    .collect();
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => {
                        // Merge per-CPU entries the way libdtrace does.
                        match value.action {
                            DTRACEAGG_MIN => v[0] = (v[0] as i64).min(vals[0] as i64) as u64,
                            DTRACEAGG_MAX => v[0] = (v[0] as i64).max(vals[0] as i64) as u64,
                            DTRACEAGG_LQUANTIZE | DTRACEAGG_LLQUANTIZE => {
                                // word 0 is the packed argument, not a count
                                for (a, b) in v.iter_mut().zip(vals).skip(1) {
                                    *a = a.wrapping_add(b);
                                }
                            }
                            _ => {
                                for (a, b) in v.iter_mut().zip(vals) {
                                    *a = a.wrapping_add(b);
                                }
                            }
                        }
                    }
                    None => out.push((key, vals)),
                }
            }
            off = (off + size as usize + 7) & !7;
        }
    }
    out.sort();
    out
}

type Entries = Vec<(Vec<u8>, Vec<u64>)>;

fn run(
    kind: u16,
    keys: Vec<Dif>,
    value: Option<Dif>,
    arg: u64,
    fires: &[u64],
) -> (rdtrace_hosted::HostedConsumer, Entries) {
    let name = format!("tagg{kind:x}_{}_{arg:x}", fires.len());
    let ids = test_provider(&name, &["p"]);
    let c = open();
    let d = dof(
        &[Clause::new(
            &format!("{name}:::p"),
            Act::aggregation(kind, 1, keys, value, arg),
        )],
        &[(0, 4096), (DTRACEOPT_AGGSIZE as u32, 64 * 1024)],
    );
    assert_eq!(enable(&c, &d).unwrap(), 1);
    go(&c).unwrap();
    for &v in fires {
        fire(ids[0], [v, v % 3, 0, 0, 0]);
    }
    stop(&c).unwrap();
    let e = entries(&c, 1);
    (c, e)
}

#[test]
fn count_keyed_by_arg1_and_aggdesc_layout() {
    let (c, e) = run(
        DTRACEAGG_COUNT,
        vec![Dif::var(0x107)],
        None,
        0,
        &[0, 1, 2, 3, 4, 5, 6],
    );
    let (epid, size, recs) = aggdesc(&c, 1).unwrap();
    assert_eq!(epid, 1);
    // aggid word, pad, varid (8), key (8), count (8)
    assert_eq!(size, 32);
    let layout: Vec<(u16, u32, u32)> = recs.iter().map(|r| (r.action, r.offset, r.size)).collect();
    assert_eq!(
        layout,
        vec![
            (DTRACEACT_DIFEXPR, 8, 8),
            (DTRACEACT_DIFEXPR, 16, 8),
            (DTRACEAGG_COUNT, 24, 8)
        ]
    );
    // EPROBE omits the in-tuple and aggregating records; nothing is recorded.
    let (_, esize, erecs) = eprobe(&c, 1).unwrap();
    assert_eq!((esize, erecs.len()), (0, 0));
    let counts: Vec<(u64, u64)> = e
        .iter()
        .map(|(k, v)| (u64::from_ne_bytes(k[8..16].try_into().unwrap()), v[0]))
        .collect();
    assert_eq!(counts, vec![(0, 3), (1, 2), (2, 2)]);
    assert!(
        e.iter()
            .all(|(k, _)| u64::from_ne_bytes(k[0..8].try_into().unwrap()) == 1),
        "varid key"
    );
}

#[test]
fn sum_min_max_avg_stddev() {
    let fires = [5u64, (-3i64) as u64, 10];
    let (_, e) = run(DTRACEAGG_SUM, vec![], Some(Dif::var(0x106)), 0, &fires);
    assert_eq!(e[0].1, vec![12]);
    let (_, e) = run(DTRACEAGG_MIN, vec![], Some(Dif::var(0x106)), 0, &fires);
    assert_eq!(e[0].1[0] as i64, -3);
    let (_, e) = run(DTRACEAGG_MAX, vec![], Some(Dif::var(0x106)), 0, &fires);
    assert_eq!(e[0].1[0], 10);
    let (_, e) = run(DTRACEAGG_AVG, vec![], Some(Dif::var(0x106)), 0, &fires);
    assert_eq!(e[0].1, vec![3, 12]);
    let (_, e) = run(DTRACEAGG_STDDEV, vec![], Some(Dif::var(0x106)), 0, &fires);
    assert_eq!(e[0].1, vec![3, 12, 25 + 9 + 100, 0]);
}

#[test]
fn quantize_lquantize_llquantize() {
    let fires = [0u64, 1, 2, 3, 1000, (-5i64) as u64];
    let (_, e) = run(DTRACEAGG_QUANTIZE, vec![], Some(Dif::var(0x106)), 0, &fires);
    let b = &e[0].1;
    assert_eq!(b.len(), 127);
    assert_eq!((b[63], b[64], b[65], b[73], b[60]), (1, 1, 2, 1, 1));
    // lquantize(x, 0, 100, 10): step 10, levels 10, base 0.
    let arg = (10u64 << 48) | (10u64 << 32);
    let (_, e) = run(
        DTRACEAGG_LQUANTIZE,
        vec![],
        Some(Dif::var(0x106)),
        arg,
        &fires,
    );
    let b = &e[0].1;
    assert_eq!(b.len(), 13);
    assert_eq!(b[0], arg, "first word is the packed argument");
    assert_eq!(
        (b[1], b[2], b[12]),
        (1, 4, 1),
        "underflow, [0,10), overflow"
    );
    // llquantize(x, 10, 0, 3, 10)
    let arg = (10u64 << 48) | (3u64 << 16) | 10;
    let (_, e) = run(
        DTRACEAGG_LLQUANTIZE,
        vec![],
        Some(Dif::var(0x106)),
        arg,
        &fires,
    );
    let b = &e[0].1;
    assert_eq!(b[0], arg);
    assert_eq!(
        b.iter().skip(1).sum::<u64>(),
        6,
        "every value lands in a bucket"
    );
    assert_eq!(b[1], 2, "0 and -5 are below 10^0");
}

#[test]
fn aggregation_drops_when_full() {
    let ids = test_provider("taggdrop", &["p"]);
    let c = open();
    let d = dof(
        &[Clause::new(
            "taggdrop:::p",
            Act::aggregation(DTRACEAGG_COUNT, 1, vec![Dif::var(0x106)], None, 0),
        )],
        &[(0, 4096), (DTRACEOPT_AGGSIZE as u32, 64)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    rdtrace_hosted::platform::bind_cpu(Some(0));
    for i in 0..10 {
        fire(ids[0], [i, 0, 0, 0, 0]);
    }
    let s = aggsnap(&c, 0, 4096).unwrap();
    assert_eq!(s.data.len(), 64, "two 32-byte entries fit");
    assert_eq!(s.drops, 8);
    stop(&c).unwrap();
}

#[test]
fn bad_aggregation_parameters_are_refused() {
    let c = open();
    // lquantize with step 0
    let d = dof(
        &[Clause::new(
            "dtrace:::BEGIN",
            Act::aggregation(
                DTRACEAGG_LQUANTIZE,
                1,
                vec![],
                Some(Dif::constant(1)),
                10u64 << 32,
            ),
        )],
        &[],
    );
    assert_eq!(enable(&c, &d).unwrap_err(), rdtrace_hosted::Errno::EINVAL);
    // ntuple 0
    let mut acts = Act::aggregation(DTRACEAGG_COUNT, 1, vec![], None, 0);
    acts.last_mut().unwrap().ntuple = 0;
    let d = dof(&[Clause::new("dtrace:::BEGIN", acts)], &[]);
    assert_eq!(enable(&c, &d).unwrap_err(), rdtrace_hosted::Errno::EINVAL);
}
