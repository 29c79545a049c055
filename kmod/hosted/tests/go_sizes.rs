//! GO's buffer sizing and refusals, driven through the ioctls: FreeBSD's
//! dtrace_state_go / dtrace_state_buffer rules (ENOSPC for a needed buffer
//! set below 8 bytes, E2BIG when a buffer cannot hold the fill policy's END
//! reserve, ENOMEM when manual resizing cannot allocate, sizes rounded down
//! to 8 and written back), and that a record larger than the buffer is a
//! drop at probe time rather than a refusal, as on FreeBSD.

mod common;

use common::dof_builder::*;
use common::*;
use rdtrace_framework::abi::*;
use rdtrace_hosted::{Errno, HostedConsumer};

/// The option array as DOFGET reports it (GO writes the sizes it used back).
fn options(c: &HostedConsumer) -> Vec<i64> {
    let mut out = vec![0u8; 4096];
    out[40..48].copy_from_slice(&4096u64.to_ne_bytes());
    let mut arg = (out.as_mut_ptr() as u64).to_ne_bytes();
    c.ioctl(DTRACEIOC_DOFGET, &mut arg).unwrap();
    (0..DTRACEOPT_MAX)
        .map(|i| {
            let at = 96 + 16 * i + 8;
            i64::from_ne_bytes(out[at..at + 8].try_into().unwrap())
        })
        .collect()
}

fn begin_exit() -> Clause {
    Clause::new("dtrace:::BEGIN", vec![Act::exit(0)])
}

fn begin_count() -> Clause {
    Clause::new(
        "dtrace:::BEGIN",
        Act::aggregation(DTRACEAGG_COUNT, 1, vec![], None, 0),
    )
}

fn go_with(clauses: &[Clause], opts: &[(u32, i64)]) -> (HostedConsumer, Result<i32, Errno>) {
    let c = open();
    enable(&c, &dof(clauses, opts)).unwrap();
    let r = go(&c);
    (c, r)
}

#[test]
fn small_principal_buffer_is_rounded_down_and_accepted() {
    // `dtrace -b59`: FreeBSD allocates 56 bytes; BEGIN's 12-byte record fits.
    let (c, r) = go_with(&[begin_exit()], &[(DTRACEOPT_BUFSIZE as u32, 59)]);
    r.unwrap();
    assert_eq!(options(&c)[DTRACEOPT_BUFSIZE], 56);
    let total: usize = (0..ncpu())
        .map(|cpu| bufsnap(&c, cpu, 4096).map_or(0, |s| s.data.len()))
        .sum();
    assert!(total > 0, "BEGIN's record was kept");
    stop(&c).unwrap();
}

#[test]
fn needed_buffer_below_eight_bytes_is_enospc() {
    for size in [0, 1, 7] {
        let (_c, r) = go_with(&[begin_exit()], &[(DTRACEOPT_BUFSIZE as u32, size)]);
        assert_eq!(r.unwrap_err(), Errno::ENOSPC, "bufsize={size}");
    }
    let (_c, r) = go_with(&[begin_exit()], &[(DTRACEOPT_BUFSIZE as u32, 8)]);
    assert!(r.is_ok(), "8 bytes is the minimum, not below it");
}

#[test]
fn aggregation_buffer_below_eight_bytes_is_enospc() {
    for size in [0, 4] {
        let (_c, r) = go_with(&[begin_count()], &[(DTRACEOPT_AGGSIZE as u32, size)]);
        assert_eq!(r.unwrap_err(), Errno::ENOSPC, "aggsize={size}");
    }
    // Without an aggregation the aggregation size does not matter.
    let (c, r) = go_with(&[begin_exit()], &[(DTRACEOPT_AGGSIZE as u32, 0)]);
    r.unwrap();
    assert_eq!(options(&c)[DTRACEOPT_AGGSIZE], 0);
}

#[test]
fn tiny_aggregation_buffer_is_a_drop_not_a_refusal() {
    // aggs/err.aggsize-too-small.d: FreeBSD accepts aggsize=8 and drops.
    let (c, r) = go_with(&[begin_count()], &[(DTRACEOPT_AGGSIZE as u32, 8)]);
    r.unwrap();
    let drops: u64 = (0..ncpu())
        .map(|cpu| aggsnap(&c, cpu, 4096).map_or(0, |s| s.drops))
        .sum();
    assert_eq!(
        drops, 1,
        "the count() that did not fit is one aggregation drop"
    );
    stop(&c).unwrap();
}

#[test]
fn aggregations_raise_the_principal_buffer_to_the_largest_record() {
    let big = Clause::new(
        "dtrace:::BEGIN",
        vec![Act::trace(Dif::string("x")), Act::exit(0)],
    );
    let (c, r) = go_with(
        &[big, begin_count()],
        &[
            (DTRACEOPT_BUFSIZE as u32, 16),
            (DTRACEOPT_STRSIZE as u32, 200),
        ],
    );
    r.unwrap();
    let bufsize = options(&c)[DTRACEOPT_BUFSIZE];
    assert!(bufsize >= 8 + 200, "raised to the string record: {bufsize}");
    stop(&c).unwrap();
    // Without an aggregation the same record is simply dropped.
    let big = Clause::new("dtrace:::BEGIN", vec![Act::trace(Dif::string("x"))]);
    let (c, r) = go_with(
        &[big],
        &[
            (DTRACEOPT_BUFSIZE as u32, 16),
            (DTRACEOPT_STRSIZE as u32, 200),
        ],
    );
    r.unwrap();
    assert_eq!(options(&c)[DTRACEOPT_BUFSIZE], 16);
    let drops: u64 = (0..ncpu())
        .map(|cpu| bufsnap(&c, cpu, 4096).map_or(0, |s| s.drops))
        .sum();
    assert_eq!(drops, 1);
}

#[test]
fn speculation_buffer_below_eight_bytes_is_enospc_only_when_speculating() {
    let spec = Clause::new(
        "dtrace:::BEGIN",
        vec![Act::new(DTRACEACT_SPECULATE, Some(Dif::constant(1)))],
    );
    let (_c, r) = go_with(&[spec], &[(DTRACEOPT_SPECSIZE as u32, 4)]);
    assert_eq!(r.unwrap_err(), Errno::ENOSPC);
    let (_c, r) = go_with(&[begin_exit()], &[(DTRACEOPT_SPECSIZE as u32, 4)]);
    assert!(r.is_ok(), "no speculate(): the speculation size is unused");
}

#[test]
fn fill_buffer_smaller_than_the_end_reserve_is_e2big() {
    // buffering/err.end.d: fill policy, 32-byte buffer, END traces a 64-byte
    // string: the END reserve (8 + 64 + alignment) does not fit.
    let end = Clause::new("dtrace:::END", vec![Act::trace(Dif::string("e"))]);
    let opts = |bufsize: i64, policy: i64| {
        vec![
            (DTRACEOPT_BUFPOLICY as u32, policy),
            (DTRACEOPT_BUFSIZE as u32, bufsize),
            (DTRACEOPT_STRSIZE as u32, 64),
        ]
    };
    let fill = DTRACEOPT_BUFPOLICY_FILL;
    let (_c, r) = go_with(&[begin_exit(), end.clone()], &opts(32, fill));
    assert_eq!(r.unwrap_err(), Errno::E2BIG);
    // Big enough for the reserve: accepted.
    let (_c, r) = go_with(&[begin_exit(), end.clone()], &opts(4096, fill));
    assert!(r.is_ok());
    // The switch policy keeps no reserve.
    let (_c, r) = go_with(
        &[begin_exit(), end.clone()],
        &opts(32, DTRACEOPT_BUFPOLICY_SWITCH),
    );
    assert!(r.is_ok());
    // The reserve applies to the aggregation buffer too.
    let mut o = opts(4096, fill);
    o.push((DTRACEOPT_AGGSIZE as u32, 64));
    let (_c, r) = go_with(&[begin_count(), end], &o);
    assert_eq!(r.unwrap_err(), Errno::E2BIG);
}

#[test]
fn manual_resize_fails_where_auto_resize_halves() {
    let huge = 1i64 << 40;
    let (_c, r) = go_with(
        &[begin_exit()],
        &[
            (DTRACEOPT_BUFSIZE as u32, huge),
            (DTRACEOPT_BUFRESIZE as u32, DTRACEOPT_BUFRESIZE_MANUAL),
        ],
    );
    assert_eq!(r.unwrap_err(), Errno::ENOMEM);
    let (c, r) = go_with(&[begin_exit()], &[(DTRACEOPT_BUFSIZE as u32, huge)]);
    r.unwrap();
    let got = options(&c)[DTRACEOPT_BUFSIZE];
    assert!(got < huge && got >= 8, "halved: {got}");
    assert_eq!(huge % got, 0, "by powers of two: {got}");
    stop(&c).unwrap();
}

#[test]
fn without_ecbs_a_zero_principal_buffer_is_fine() {
    // FreeBSD allocates no buffer for a zero size when no ECB needs one.
    let (c, r) = go_with(&[], &[(DTRACEOPT_BUFSIZE as u32, 0)]);
    r.unwrap();
    assert_eq!(options(&c)[DTRACEOPT_BUFSIZE], 0);
    stop(&c).unwrap();
}
