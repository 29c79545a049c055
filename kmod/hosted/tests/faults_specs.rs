//! Faults and the ERROR probe, speculations, dynamic variables, and several
//! threads firing at once.
mod common;

use common::dof_builder::*;
use common::*;
use rdtrace_framework::abi::*;

fn error_clause() -> Clause {
    Clause::new(
        "dtrace:::ERROR",
        (0x107..=0x10b).map(|v| Act::trace(Dif::var(v))).collect(),
    )
}

fn error_args(c: &rdtrace_hosted::HostedConsumer) -> Vec<[u64; 5]> {
    all_records(c)
        .iter()
        .filter(|r| eprobe(c, r.epid).unwrap().0 == 3)
        .map(|r| {
            let mut a = [0u64; 5];
            for (i, x) in a.iter_mut().enumerate() {
                *x = u64_at(&r.bytes, 16 + 8 * i as u32);
            }
            a
        })
        .collect()
}

#[test]
fn divzero_and_badaddr_fire_error_with_details() {
    let ids = test_provider("tfault", &["div", "bad"]);
    let c = open();
    let d = dof(
        &[
            Clause::new(
                "tfault:::div",
                vec![Act::trace(Dif::constant(1)), Act::trace(Dif::divzero())],
            ),
            Clause::new("tfault:::bad", vec![Act::trace(Dif::load(0x10))]).when(Dif::constant(1)),
            error_clause(),
        ],
        &[(0, 64 * 1024)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    fire(ids[0], [0; 5]);
    fire(ids[1], [0; 5]);
    let st = status(&c).unwrap();
    assert_eq!(st.errors(), 2);
    stop(&c).unwrap();
    let errs = error_args(&c);
    assert_eq!(errs.len(), 2);
    // epid, action index (1-based), DIF offset, fault, address
    assert_eq!(errs[0], [1, 2, 4, DTRACEFLT_DIVZERO, 0]);
    assert_eq!(errs[1], [2, 1, 4, DTRACEFLT_BADADDR, 0x10]);
    // The faulting records themselves were abandoned.
    let kept = all_records(&c).iter().filter(|r| r.epid == 1).count();
    assert_eq!(kept, 0);
}

#[test]
fn fault_in_error_clause_counts_dblerrors() {
    let ids = test_provider("tdbl", &["p"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tdbl:::p", vec![Act::trace(Dif::divzero())]),
            Clause::new("dtrace:::ERROR", vec![Act::trace(Dif::divzero())]),
        ],
        &[(0, 64 * 1024)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    fire(ids[0], [0; 5]);
    let st = status(&c).unwrap();
    assert_eq!(st.dblerrors(), 1);
    stop(&c).unwrap();
}

fn call(subr: u32) -> Dif {
    Dif {
        text: vec![imm(dof_builder::op::CALL, subr, 1), ret(1)],
        rtype: ctf_type(8),
        ..Default::default()
    }
}

#[test]
fn speculation_commit_discard_and_drops() {
    rdtrace_hosted::platform::bind_cpu(Some(0));
    let ids = test_provider("tspec", &["new", "spec", "commit", "discard"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tspec:::new", vec![Act::trace(call(10))]),
            Clause::new(
                "tspec:::spec",
                vec![
                    Act::new(DTRACEACT_SPECULATE, Some(Dif::constant(1))),
                    Act::trace(Dif::var(0x106)),
                ],
            ),
            Clause::new(
                "tspec:::commit",
                vec![Act::new(DTRACEACT_COMMIT, Some(Dif::constant(1)))],
            ),
            Clause::new(
                "tspec:::discard",
                vec![Act::new(DTRACEACT_DISCARD, Some(Dif::constant(1)))],
            ),
        ],
        &[
            (0, 64 * 1024),
            (DTRACEOPT_NSPEC as u32, 1),
            (DTRACEOPT_SPECSIZE as u32, 48),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    fire(ids[0], [0; 5]); // speculation() -> 1
    fire(ids[0], [0; 5]); // none left -> 0, unavail
    fire(ids[1], [7, 0, 0, 0, 0]);
    fire(ids[1], [8, 0, 0, 0, 0]);
    fire(ids[1], [9, 0, 0, 0, 0]); // 48-byte buffer holds two 24-byte records
    fire(ids[2], [0; 5]); // commit
    fire(ids[0], [0; 5]); // speculation() -> 1 again
    fire(ids[1], [10, 0, 0, 0, 0]);
    fire(ids[3], [0; 5]); // discard
    let st = status(&c).unwrap();
    assert_eq!(st.specdrops_unavail(), 1);
    assert_eq!(st.specdrops(), 1);
    stop(&c).unwrap();
    let recs = all_records(&c);
    let ids_traced: Vec<u64> = recs
        .iter()
        .filter(|r| r.epid == 1)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    assert_eq!(ids_traced, vec![1, 0, 1]);
    let committed: Vec<u64> = recs
        .iter()
        .filter(|r| r.epid == 2)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    assert_eq!(
        committed,
        vec![7, 8],
        "committed in order; 9 dropped; 10 discarded"
    );
    assert!(
        recs.iter().all(|r| r.timestamp != u64::MAX),
        "commit rewrites the timestamps"
    );
}

/// `a[arg0] = arg1; return arg1` with `a` a global associative array.
fn assoc_store() -> Dif {
    let mut var = [0u8; 20];
    var[4..8].copy_from_slice(&0x500u32.to_ne_bytes());
    var[8] = 0; // array
    var[9] = 0; // global
    var[10..12].copy_from_slice(&2u16.to_ne_bytes());
    var[12..20].copy_from_slice(&ctf_type(8));
    Dif {
        text: vec![
            imm(dof_builder::op::LDGS, 0x106, 1),
            r3(49, 0, 0, 1), // pushtv (CTF, by value) r1
            imm(dof_builder::op::LDGS, 0x107, 2),
            imm(54, 0x500, 2), // stgaa a[..] = r2
            ret(2),
        ],
        strtab: b"a\0".to_vec(),
        vars: vec![var],
        rtype: ctf_type(8),
        ..Default::default()
    }
}

#[test]
fn dynamic_variables_exhaust_and_clean() {
    let ids = test_provider("tdyn", &["p"]);
    let c = open();
    let d = dof(
        &[Clause::new("tdyn:::p", vec![Act::trace(assoc_store())])],
        &[
            (0, 1 << 20),
            (DTRACEOPT_DYNVARSIZE as u32, 1024),
            (DTRACEOPT_CLEANRATE as u32, 1_000_000),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    for k in 0..200 {
        fire(ids[0], [k, 1, 0, 0, 0]);
    }
    let drops = status(&c).unwrap().dyndrops();
    assert!(drops > 0, "a 1 KiB arena cannot hold 200 keys");
    let stored = 200 - drops;
    // Storing 0 frees; after cleaning the chunks are reusable.
    for k in 0..200 {
        fire(ids[0], [k, 0, 0, 0, 0]);
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    for k in 1000..1000 + stored {
        fire(ids[0], [k, 1, 0, 0, 0]);
    }
    assert_eq!(
        status(&c).unwrap().dyndrops(),
        drops,
        "cleaned chunks were reused without new drops"
    );
    stop(&c).unwrap();
}

#[test]
fn several_threads_fire_at_once() {
    let ids = test_provider("tthreads", &["p"]);
    let c = open();
    let d = dof(
        &[
            Clause::new(
                "tthreads:::p",
                Act::aggregation(DTRACEAGG_COUNT, 1, vec![], None, 0),
            ),
            Clause::new("tthreads:::p", vec![Act::trace(Dif::var(0x106))]),
        ],
        &[(0, 4 << 20), (DTRACEOPT_AGGSIZE as u32, 4096)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    let per = 5000u64;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let id = ids[0];
            std::thread::spawn(move || {
                for i in 0..per {
                    fire(id, [t * per + i, 0, 0, 0, 0]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    stop(&c).unwrap();
    let mut total = 0u64;
    for cpu in 0..ncpu() {
        if let Ok(s) = aggsnap(&c, cpu, 1 << 16) {
            if s.data.len() >= 24 {
                total += u64_at(&s.data, 16);
            }
        }
    }
    assert_eq!(total, 4 * per);
    let mut seen: Vec<u64> = all_records(&c)
        .iter()
        .filter(|r| r.epid == 2)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        (0..4 * per).collect::<Vec<_>>(),
        "every firing recorded exactly once"
    );
}

#[test]
fn chill_spins_within_its_budget() {
    let ids = test_provider("tchill", &["short", "long"]);
    let c = open();
    let d = dof(
        &[
            Clause::new(
                "tchill:::short",
                vec![Act::new(DTRACEACT_CHILL, Some(Dif::constant(2_000_000)))],
            ),
            Clause::new(
                "tchill:::long",
                vec![Act::new(DTRACEACT_CHILL, Some(Dif::constant(600_000_000)))],
            ),
            error_clause(),
        ],
        &[(0, 64 * 1024), (DTRACEOPT_DESTRUCTIVE as u32, 0)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    let t = std::time::Instant::now();
    fire(ids[0], [0; 5]);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(2),
        "chill(2ms) waited"
    );
    let t = std::time::Instant::now();
    fire(ids[1], [0; 5]);
    assert!(
        t.elapsed() < std::time::Duration::from_millis(300),
        "over-budget chill does not spin"
    );
    stop(&c).unwrap();
    let errs = error_args(&c);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0][3], DTRACEFLT_ILLOP);
}

#[test]
fn destructive_actions_need_the_option() {
    let c = open();
    let d = dof(
        &[Clause::new(
            "dtrace:::BEGIN",
            vec![Act::new(DTRACEACT_CHILL, Some(Dif::constant(1)))],
        )],
        &[(0, 4096)],
    );
    enable(&c, &d).unwrap();
    assert_eq!(go(&c).unwrap_err(), rdtrace_hosted::Errno::EACCES);
}

#[test]
fn more_fault_codes_reach_error() {
    let ids = test_provider("tfault2", &["noscratch", "tupoflow", "illop"]);
    let c = open();
    // alloca(1 GiB): NOSCRATCH (ALLOCS = op 58, r1 = size, rd).
    let noscratch = Dif {
        text: vec![imm(dof_builder::op::SETX, 0, 1), r3(58, 1, 0, 2), ret(2)],
        ints: vec![1 << 30],
        rtype: ctf_type(8),
        ..Default::default()
    };
    // Nine PUSHTV onto an eight-deep tuple stack: TUPOFLOW.
    let mut text: Vec<u32> = (0..9).map(|_| r3(49, 0, 0, 1)).collect();
    text.push(ret(1));
    let tupoflow = Dif {
        text,
        rtype: ctf_type(8),
        ..Default::default()
    };
    let d = dof(
        &[
            Clause::new("tfault2:::noscratch", vec![Act::trace(noscratch)]),
            Clause::new("tfault2:::tupoflow", vec![Act::trace(tupoflow)]),
            Clause::new(
                "tfault2:::illop",
                vec![
                    Act::new(DTRACEACT_SPECULATE, Some(Dif::constant(99))),
                    Act::trace(Dif::constant(1)),
                ],
            ),
            error_clause(),
        ],
        &[(0, 64 * 1024)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    for id in &ids {
        fire(*id, [0; 5]);
    }
    stop(&c).unwrap();
    let codes: Vec<u64> = error_args(&c).iter().map(|e| e[3]).collect();
    assert_eq!(
        codes,
        vec![DTRACEFLT_NOSCRATCH, DTRACEFLT_TUPOFLOW, DTRACEFLT_ILLOP]
    );
}

#[test]
fn two_consumers_share_a_probe() {
    let ids = test_provider("tshare", &["p"]);
    let a = open();
    let b = open();
    let da = dof(
        &[Clause::new(
            "tshare:::p",
            vec![Act::trace(Dif::constant(1))],
        )],
        &[(0, 4096)],
    );
    let db = dof(
        &[Clause::new(
            "tshare:::p",
            vec![Act::trace(Dif::constant(2))],
        )],
        &[(0, 4096)],
    );
    enable(&a, &da).unwrap();
    enable(&b, &db).unwrap();
    go(&a).unwrap();
    go(&b).unwrap();
    fire(ids[0], [0; 5]);
    stop(&a).unwrap();
    let ra = all_records(&a);
    assert_eq!(ra.len(), 1);
    assert_eq!(
        (ra[0].epid, u64_at(&ra[0].bytes, 16)),
        (1, 1),
        "EPIDs are per consumer"
    );
    drop(a);
    fire(ids[0], [0; 5]);
    stop(&b).unwrap();
    let rb: Vec<u64> = all_records(&b)
        .iter()
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    assert_eq!(
        rb,
        vec![2, 2],
        "closing one consumer leaves the other's ECB on the probe"
    );
}

#[test]
fn commit_from_another_cpu_is_finished_by_the_cleaner() {
    let ids = test_provider("tspec2", &["new", "spec", "commit"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tspec2:::new", vec![Act::trace(call(10))]),
            Clause::new(
                "tspec2:::spec",
                vec![
                    Act::new(DTRACEACT_SPECULATE, Some(Dif::constant(1))),
                    Act::trace(Dif::var(0x106)),
                ],
            ),
            Clause::new(
                "tspec2:::commit",
                vec![Act::new(DTRACEACT_COMMIT, Some(Dif::constant(1)))],
            ),
        ],
        &[
            (0, 64 * 1024),
            (DTRACEOPT_NSPEC as u32, 1),
            (DTRACEOPT_CLEANRATE as u32, 1_000_000),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    let on = |cpu: usize, id: u32, arg: u64| {
        std::thread::spawn(move || {
            rdtrace_hosted::platform::bind_cpu(Some(cpu));
            fire(id, [arg, 0, 0, 0, 0]);
        })
        .join()
        .unwrap();
    };
    if ncpu() < 2 {
        return;
    }
    on(0, ids[0], 0);
    on(0, ids[1], 10);
    on(1, ids[1], 11);
    on(0, ids[2], 0); // COMMITTINGMANY: CPU 1's part is left to the cleaner
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop(&c).unwrap();
    let mut vals: Vec<u64> = all_records(&c)
        .iter()
        .filter(|r| r.epid == 2)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    vals.sort();
    assert_eq!(vals, vec![10, 11]);
}

#[test]
fn predicate_fault_reports_action_index_zero() {
    let ids = test_provider("tpredfault", &["p"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tpredfault:::p", vec![Act::trace(Dif::constant(1))]).when(Dif::divzero()),
            error_clause(),
        ],
        &[(0, 64 * 1024)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    fire(ids[0], [0; 5]);
    stop(&c).unwrap();
    assert_eq!(error_args(&c), vec![[1, 0, 4, DTRACEFLT_DIVZERO, 0]]);
}

#[test]
fn speculation_ids_are_handed_out_without_any_speculate_action() {
    // FreeBSD creates `nspec` speculations at GO whether or not an ECB
    // speculates (only their buffers shrink to 0): speculation() must hand
    // out 1..=nspec and then 0, counting the failure as unavail.
    let ids = test_provider("tspecids", &["new"]);
    let c = open();
    let d = dof(
        &[Clause::new("tspecids:::new", vec![Act::trace(call(10))])],
        &[(0, 64 * 1024), (DTRACEOPT_NSPEC as u32, 2)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    for _ in 0..3 {
        fire(ids[0], [0; 5]);
    }
    let st = status(&c).unwrap();
    assert_eq!(st.specdrops_unavail(), 1);
    assert_eq!(st.specdrops_busy(), 0);
    stop(&c).unwrap();
    let got: Vec<u64> = all_records(&c)
        .iter()
        .filter(|r| r.epid == 1)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    assert_eq!(got, vec![1, 2, 0]);
}

#[test]
fn committingmany_speculation_is_busy_until_the_cleaner_runs() {
    if ncpu() < 2 {
        return;
    }
    let ids = test_provider("tspecreuse", &["new", "spec", "commit"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tspecreuse:::new", vec![Act::trace(call(10))]),
            Clause::new(
                "tspecreuse:::spec",
                vec![
                    Act::new(DTRACEACT_SPECULATE, Some(Dif::constant(1))),
                    Act::trace(Dif::var(0x106)),
                ],
            ),
            Clause::new(
                "tspecreuse:::commit",
                vec![Act::new(DTRACEACT_COMMIT, Some(Dif::constant(1)))],
            ),
        ],
        &[
            (0, 64 * 1024),
            (DTRACEOPT_NSPEC as u32, 1),
            // The slowest cleaner FreeBSD allows (60 s): nothing cleans
            // while the test looks at the COMMITTINGMANY state.
            (DTRACEOPT_CLEANRATE as u32, 60_000_000_000),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    let on = |cpu: usize, id: u32, arg: u64| {
        std::thread::spawn(move || {
            rdtrace_hosted::platform::bind_cpu(Some(cpu));
            fire(id, [arg, 0, 0, 0, 0]);
        })
        .join()
        .unwrap();
    };
    on(0, ids[0], 0); // speculation() -> 1 (ACTIVE)
    on(0, ids[1], 10); // ACTIVEONE
    on(1, ids[1], 11); // ACTIVEMANY
    on(0, ids[2], 0); // COMMITTINGMANY: not reusable until every CPU is cleaned
    on(0, ids[0], 0); // -> 0, counted busy
    let st = status(&c).unwrap();
    assert_eq!(st.specdrops_busy(), 1);
    assert_eq!(st.specdrops_unavail(), 0);
    stop(&c).unwrap();
    let firsts: Vec<u64> = all_records(&c)
        .iter()
        .filter(|r| r.epid == 1)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    assert_eq!(firsts, vec![1, 0]);
}

#[test]
fn committed_speculation_on_one_cpu_is_free_again_at_once() {
    rdtrace_hosted::platform::bind_cpu(Some(0));
    let ids = test_provider("tspecfree", &["new", "spec", "commit", "discard"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tspecfree:::new", vec![Act::trace(call(10))]),
            Clause::new(
                "tspecfree:::spec",
                vec![
                    Act::new(DTRACEACT_SPECULATE, Some(Dif::constant(1))),
                    Act::trace(Dif::var(0x106)),
                ],
            ),
            Clause::new(
                "tspecfree:::commit",
                vec![Act::new(DTRACEACT_COMMIT, Some(Dif::constant(1)))],
            ),
            Clause::new(
                "tspecfree:::discard",
                vec![Act::new(DTRACEACT_DISCARD, Some(Dif::constant(1)))],
            ),
        ],
        &[
            (0, 64 * 1024),
            (DTRACEOPT_NSPEC as u32, 1),
            (DTRACEOPT_CLEANRATE as u32, 60_000_000_000),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    // ACTIVE -> commit with no data: COMMITTING -> INACTIVE at once.
    fire(ids[0], [0; 5]);
    fire(ids[2], [0; 5]);
    // ACTIVEONE with this CPU's data -> commit: INACTIVE at once.
    fire(ids[0], [0; 5]);
    fire(ids[1], [5, 0, 0, 0, 0]);
    fire(ids[2], [0; 5]);
    // ACTIVEONE with data -> discard: INACTIVE at once.
    fire(ids[0], [0; 5]);
    fire(ids[1], [6, 0, 0, 0, 0]);
    fire(ids[3], [0; 5]);
    // ACTIVE -> discard: DISCARDING, busy until the cleaner runs.
    fire(ids[0], [0; 5]);
    fire(ids[3], [0; 5]);
    fire(ids[0], [0; 5]);
    let st = status(&c).unwrap();
    assert_eq!(st.specdrops_busy(), 1);
    assert_eq!(st.specdrops_unavail(), 0);
    stop(&c).unwrap();
    rdtrace_hosted::platform::bind_cpu(None);
    let recs = all_records(&c);
    let firsts: Vec<u64> = recs
        .iter()
        .filter(|r| r.epid == 1)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    assert_eq!(firsts, vec![1, 1, 1, 1, 0]);
    let committed: Vec<u64> = recs
        .iter()
        .filter(|r| r.epid == 2)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    assert_eq!(committed, vec![5]);
}

/// `a[<key_var>] = arg1; return arg1` with `a` a global associative array.
fn assoc_store_keyed(key_var: u32) -> Dif {
    let mut d = assoc_store();
    d.text[0] = imm(dof_builder::op::LDGS, key_var, 1);
    d
}

#[test]
fn a_dynamic_variable_drop_abandons_the_clause_like_cpu_dtrace_drop() {
    let ids = test_provider("tdyndrop", &["fill", "multi"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tdyndrop:::fill", vec![Act::trace(assoc_store())]),
            // Three stores of new keys (arg0, arg2, arg3), then a trace.
            Clause::new(
                "tdyndrop:::multi",
                vec![
                    Act::trace(assoc_store_keyed(0x106)),
                    Act::trace(assoc_store_keyed(0x108)),
                    Act::trace(assoc_store_keyed(0x109)),
                    Act::trace(Dif::constant(99)),
                ],
            ),
        ],
        &[
            (0, 1 << 20),
            (DTRACEOPT_DYNVARSIZE as u32, 1024),
            // No cleaning during the test.
            (DTRACEOPT_CLEANRATE as u32, 60_000_000_000),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    let mut k = 0;
    while status(&c).unwrap().dyndrops() == 0 {
        fire(ids[0], [k, 1, 0, 0, 0]);
        k += 1;
        assert!(k < 1000, "a 1 KiB arena fills up");
    }
    let before = status(&c).unwrap().dyndrops();
    fire(ids[1], [100_000, 1, 100_001, 100_002, 0]);
    fire(ids[1], [200_000, 1, 200_001, 200_002, 0]);
    let st = status(&c).unwrap();
    assert_eq!(
        st.dyndrops(),
        before + 2,
        "one drop per firing: the first failed store ends the clause"
    );
    assert_eq!(st.errors(), 0, "a drop is not an error");
    stop(&c).unwrap();
    let multi = all_records(&c).iter().filter(|r| r.epid == 2).count();
    assert_eq!(multi, 0, "the dropped clause's record is abandoned");
}

#[test]
fn an_absurd_nspec_fails_go_with_enomem() {
    // Found by the enable_dof fuzz target: speculations exist whether or not
    // an ECB speculates, so a huge nspec must be refused, not allocated.
    let ids = test_provider("tnspec", &["p"]);
    let _ = ids;
    let c = open();
    let d = dof(
        &[Clause::new("tnspec:::p", vec![Act::trace(call(10))])],
        &[(0, 4096), (DTRACEOPT_NSPEC as u32, 8_841_596_928)],
    );
    enable(&c, &d).unwrap();
    assert_eq!(go(&c), Err(rdtrace_hosted::Errno::ENOMEM));
    // A sane nspec still works on a fresh consumer.
    let c = open();
    let d = dof(
        &[Clause::new("tnspec:::p", vec![Act::trace(call(10))])],
        &[(0, 4096), (DTRACEOPT_NSPEC as u32, 64)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    stop(&c).unwrap();
}

#[test]
fn specdrops_count_only_committed_speculations() {
    // FreeBSD moves a speculation buffer's drops to its reported count on
    // commit() and forgets them on discard().
    rdtrace_hosted::platform::bind_cpu(Some(0));
    let ids = test_provider("tspecdrops", &["new", "spec", "commit", "discard"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tspecdrops:::new", vec![Act::trace(call(10))]),
            Clause::new(
                "tspecdrops:::spec",
                vec![
                    Act::new(DTRACEACT_SPECULATE, Some(Dif::constant(1))),
                    Act::trace(Dif::var(0x106)),
                ],
            ),
            Clause::new(
                "tspecdrops:::commit",
                vec![Act::new(DTRACEACT_COMMIT, Some(Dif::constant(1)))],
            ),
            Clause::new(
                "tspecdrops:::discard",
                vec![Act::new(DTRACEACT_DISCARD, Some(Dif::constant(1)))],
            ),
        ],
        &[
            (0, 64 * 1024),
            (DTRACEOPT_NSPEC as u32, 1),
            (DTRACEOPT_SPECSIZE as u32, 24),
            (DTRACEOPT_CLEANRATE as u32, 60_000_000_000),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    // Two records into a one-record buffer, then discard: nothing reported.
    fire(ids[0], [0; 5]);
    fire(ids[1], [1, 0, 0, 0, 0]);
    fire(ids[1], [2, 0, 0, 0, 0]);
    assert_eq!(status(&c).unwrap().specdrops(), 0, "not committed yet");
    fire(ids[3], [0; 5]);
    assert_eq!(
        status(&c).unwrap().specdrops(),
        0,
        "discarded drops are forgotten"
    );
    // The same, committed: the drop is reported.
    fire(ids[0], [0; 5]);
    fire(ids[1], [3, 0, 0, 0, 0]);
    fire(ids[1], [4, 0, 0, 0, 0]);
    fire(ids[2], [0; 5]);
    assert_eq!(status(&c).unwrap().specdrops(), 1);
    stop(&c).unwrap();
    rdtrace_hosted::platform::bind_cpu(None);
    let committed: Vec<u64> = all_records(&c)
        .iter()
        .filter(|r| r.epid == 2)
        .map(|r| u64_at(&r.bytes, 16))
        .collect();
    assert_eq!(committed, vec![3]);
}
