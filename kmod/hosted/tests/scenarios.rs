//! Ioctl-driven scenarios over the hosted kernel with hand-built DOF.
mod common;

use common::dof_builder::*;
use common::*;
use rdtrace_framework::abi::*;
use rdtrace_hosted::Errno;

#[test]
fn begin_trace_and_exit() {
    let c = open();
    let d = dof(
        &[Clause::new(
            "dtrace:::BEGIN",
            vec![Act::trace(Dif::constant(42)), Act::exit(3)],
        )],
        &[(DTRACEOPT_BUFSIZE as u32, 64 * 1024)],
    );
    assert_eq!(enable(&c, &d).unwrap(), 1);
    let (probe, size, recs) = eprobe(&c, 1).unwrap();
    assert_eq!(probe, 1, "BEGIN is probe 1");
    assert_eq!(recs.len(), 2);
    assert_eq!(
        (
            recs[0].action,
            recs[0].offset,
            recs[0].size,
            recs[0].alignment
        ),
        (DTRACEACT_DIFEXPR, 16, 8, 8)
    );
    assert_eq!(
        (recs[1].action, recs[1].offset, recs[1].size),
        (DTRACEACT_EXIT, 24, 4)
    );
    assert_eq!(size, 28);
    go(&c).unwrap();
    let st = status(&c).unwrap();
    assert!(st.exiting, "exit() moves the state to DRAINING");
    stop(&c).unwrap();
    let recs = all_records(&c);
    assert_eq!(recs.len(), 1);
    assert_eq!(u64_at(&recs[0].bytes, 16), 42);
    assert_eq!(u32_at(&recs[0].bytes, 24), 3);
}

#[test]
fn errno_refusals() {
    let c = open();
    assert_eq!(
        status(&c).unwrap_err(),
        Errno::ENOENT,
        "STATUS while INACTIVE"
    );
    assert_eq!(stop(&c).unwrap_err(), Errno::EINVAL, "STOP while INACTIVE");
    let d = dof(
        &[Clause::new(
            "dtrace:::END",
            vec![Act::trace(Dif::constant(1))],
        )],
        &[(0, 4096)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    assert_eq!(go(&c).unwrap_err(), Errno::EBUSY, "GO twice");
    assert_eq!(enable(&c, &d).unwrap_err(), Errno::EBUSY, "ENABLE after GO");
    stop(&c).unwrap();
    assert_eq!(stop(&c).unwrap_err(), Errno::EINVAL, "STOP twice");
    let recs = all_records(&c);
    assert_eq!(recs.len(), 1, "END fired once");
    let mut bad = [0u8; 4];
    assert_eq!(c.ioctl(0xc0047899, &mut bad).unwrap_err(), Errno::ENOTTY);
}

fn bind0() {
    rdtrace_hosted::platform::bind_cpu(Some(0));
}

#[test]
fn printf_records_and_format() {
    let ids = test_provider("tprintf", &["p"]);
    let c = open();
    let d = dof(
        &[Clause::new(
            "tprintf:::p",
            Act::printf("%d and %d\n", vec![Dif::var(0x106), Dif::var(0x107)]),
        )],
        &[(0, 64 * 1024)],
    );
    assert_eq!(enable(&c, &d).unwrap(), 1);
    let (_, _, recs) = eprobe(&c, 1).unwrap();
    assert_eq!(recs.len(), 2);
    assert!(recs[0].format != 0 && recs[1].format != 0);
    assert_eq!(format(&c, recs[1].format).unwrap(), "%d and %d\n");
    assert_eq!(format(&c, recs[0].format).unwrap(), "%d and %d\n");
    go(&c).unwrap();
    fire(ids[0], [5, 6, 0, 0, 0]);
    fire(ids[0], [7, 8, 0, 0, 0]);
    stop(&c).unwrap();
    let r = all_records(&c);
    let vals: Vec<(u64, u64)> = r
        .iter()
        .map(|x| (u64_at(&x.bytes, 16), u64_at(&x.bytes, 24)))
        .collect();
    assert_eq!(vals, vec![(5, 6), (7, 8)]);
    assert!(r[0].timestamp <= r[1].timestamp && r[0].timestamp > 0);
}

#[test]
fn predicate_filters_and_string_trace() {
    let ids = test_provider("tpred", &["p"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tpred:::p", vec![Act::trace(Dif::string("hello"))])
                .when(Dif::arg0_equals(3)),
        ],
        &[(0, 64 * 1024), (DTRACEOPT_STRSIZE as u32, 16)],
    );
    enable(&c, &d).unwrap();
    let (_, size, recs) = eprobe(&c, 1).unwrap();
    assert_eq!(recs[0].size, 16, "string records are strsize bytes");
    assert_eq!((recs[0].offset, recs[0].alignment), (16, 8));
    assert_eq!(size, 32);
    go(&c).unwrap();
    for a in 0..6 {
        fire(ids[0], [a, 0, 0, 0, 0]);
    }
    stop(&c).unwrap();
    let r = all_records(&c);
    assert_eq!(r.len(), 1, "only arg0 == 3 passes");
    assert_eq!(&r[0].bytes[16..32], b"hello\0\0\0\0\0\0\0\0\0\0\0");
}

#[test]
fn provider_probes_and_probematch() {
    let ids = test_provider("tlist", &["alpha", "beta"]);
    let c = open();
    // PROVIDER
    let mut pd = [0u8; 92];
    pd[..5].copy_from_slice(b"tlist");
    c.ioctl(DTRACEIOC_PROVIDER, &mut pd).unwrap();
    assert_eq!(&pd[64..67], &[6, 6, 5]);
    let mut pd = [0u8; 92];
    pd[..7].copy_from_slice(b"nothere");
    assert_eq!(
        c.ioctl(DTRACEIOC_PROVIDER, &mut pd).unwrap_err(),
        Errno::ESRCH
    );
    // PROBES from id 1: BEGIN, END, ERROR are 1, 2, 3.
    let mut desc = [0u8; 388];
    desc[0..4].copy_from_slice(&1u32.to_ne_bytes());
    c.ioctl(DTRACEIOC_PROBES, &mut desc).unwrap();
    assert_eq!(u32::from_ne_bytes(desc[0..4].try_into().unwrap()), 1);
    assert_eq!(&desc[324..330], b"BEGIN\0");
    // PROBEMATCH with a glob
    let mut desc = [0u8; 388];
    desc[4..9].copy_from_slice(b"tlist");
    desc[324..327].copy_from_slice(b"b*a");
    c.ioctl(DTRACEIOC_PROBEMATCH, &mut desc).unwrap();
    assert_eq!(u32::from_ne_bytes(desc[0..4].try_into().unwrap()), ids[1]);
    let next = ids[1] + 1;
    desc[0..4].copy_from_slice(&next.to_ne_bytes());
    assert_eq!(
        c.ioctl(DTRACEIOC_PROBEMATCH, &mut desc).unwrap_err(),
        Errno::ESRCH
    );
    desc[324..328].copy_from_slice(b"[ab\0");
    desc[0..4].copy_from_slice(&0u32.to_ne_bytes());
    assert_eq!(
        c.ioctl(DTRACEIOC_PROBEMATCH, &mut desc).unwrap_err(),
        Errno::EINVAL
    );
    // CONF
    let mut conf = [0u8; 48];
    c.ioctl(DTRACEIOC_CONF, &mut conf).unwrap();
    assert_eq!(
        &conf[0..16],
        &[2, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0]
    );
    // PROBEARG: the test provider has no argument descriptions.
    let mut ad = [0u8; 268];
    ad[0..4].copy_from_slice(&ids[0].to_ne_bytes());
    c.ioctl(DTRACEIOC_PROBEARG, &mut ad).unwrap();
    assert_eq!(i32::from_ne_bytes(ad[4..8].try_into().unwrap()), -1);
}

#[test]
fn dof_rejections_have_messages() {
    let c = open();
    let good = dof(
        &[Clause::new(
            "dtrace:::BEGIN",
            vec![Act::trace(Dif::constant(1))],
        )],
        &[],
    );
    let mut bad = good.clone();
    bad[1] = b'X';
    assert_eq!(enable(&c, &bad).unwrap_err(), Errno::EINVAL);
    assert!(
        c.last_dof_error().contains("magic"),
        "{}",
        c.last_dof_error()
    );
    // A backward branch is refused by the DIF validator.
    let mut loopy = Dif::constant(1);
    loopy.text = vec![br(dof_builder::op::BE, 0), ret(1)];
    let d = dof(
        &[Clause::new("dtrace:::BEGIN", vec![Act::trace(loopy)])],
        &[],
    );
    assert_eq!(enable(&c, &d).unwrap_err(), Errno::EINVAL);
    assert!(c.last_dof_error().contains("DIF"), "{}", c.last_dof_error());
    // Bad options: index out of range, negative size.
    let d = dof(&[], &[(40, 1)]);
    assert_eq!(enable(&c, &d).unwrap_err(), Errno::EINVAL);
    let d = dof(&[], &[(0, -5)]);
    assert_eq!(enable(&c, &d).unwrap_err(), Errno::EINVAL);
    // An unmapped DOF pointer.
    let mut arg = [0u8; 16];
    arg[0..8].copy_from_slice(&16u64.to_ne_bytes());
    assert_eq!(
        c.ioctl(DTRACEIOC_ENABLE, &mut arg).unwrap_err(),
        Errno::EINVAL
    );
    // The good one still works afterwards.
    assert_eq!(enable(&c, &good).unwrap(), 1);
    assert_eq!(c.last_dof_error(), "");
}

#[test]
fn switch_policy_counts_drops() {
    bind0();
    let ids = test_provider("tdrops", &["p"]);
    let c = open();
    let d = dof(
        &[Clause::new("tdrops:::p", vec![Act::trace(Dif::var(0x106))])],
        &[(0, 64)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    for i in 0..10 {
        fire(ids[0], [i, 0, 0, 0, 0]);
    }
    let s = bufsnap(&c, 0, 4096).unwrap();
    assert_eq!(s.data.len(), 48, "two 24-byte records fit in 64 bytes");
    assert_eq!(s.drops, 8);
    let r = records(&c, &s.data);
    assert_eq!(
        r.iter().map(|x| u64_at(&x.bytes, 16)).collect::<Vec<_>>(),
        vec![0, 1]
    );
    // After the switch the other half is live and empty.
    fire(ids[0], [99, 0, 0, 0, 0]);
    let s = bufsnap(&c, 0, 4096).unwrap();
    assert_eq!((s.data.len(), s.drops), (24, 0));
    stop(&c).unwrap();
    assert_eq!(bufsnap(&c, 9999, 16).unwrap_err(), Errno::ENOENT);
}

#[test]
fn ring_policy_wraps_keeping_newest() {
    bind0();
    let ids = test_provider("tring", &["p"]);
    let c = open();
    let d = dof(
        &[Clause::new("tring:::p", vec![Act::trace(Dif::var(0x106))])],
        &[
            (0, 24 * 5),
            (DTRACEOPT_BUFPOLICY as u32, DTRACEOPT_BUFPOLICY_RING),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    for i in 0..13 {
        fire(ids[0], [i, 0, 0, 0, 0]);
    }
    assert_eq!(
        bufsnap(&c, 0, 4096).unwrap_err(),
        Errno::EBUSY,
        "ring snapshots need STOPPED"
    );
    stop(&c).unwrap();
    let s = bufsnap(&c, 0, 4096).unwrap();
    assert_eq!(s.data.len(), 120);
    let o = s.oldest as usize;
    let mut ordered = s.data[o..].to_vec();
    ordered.extend_from_slice(&s.data[..o]);
    let vals: Vec<u64> = records(&c, &ordered)
        .iter()
        .map(|x| u64_at(&x.bytes, 16))
        .collect();
    assert_eq!(
        vals,
        vec![8, 9, 10, 11, 12],
        "the five newest, oldest first"
    );
    let again = bufsnap(&c, 0, 4096).unwrap();
    assert_eq!(again.data.len(), 0, "a ring is consumed once");
}

#[test]
fn fill_policy_keeps_end_reserve() {
    bind0();
    let ids = test_provider("tfill", &["p"]);
    let c = open();
    let d = dof(
        &[
            Clause::new("tfill:::p", vec![Act::trace(Dif::var(0x106))]),
            Clause::new("dtrace:::END", vec![Act::trace(Dif::constant(777))]),
        ],
        &[
            (0, 24 * 6),
            (DTRACEOPT_BUFPOLICY as u32, DTRACEOPT_BUFPOLICY_FILL),
        ],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    for i in 0..20 {
        fire(ids[0], [i, 0, 0, 0, 0]);
    }
    let st = status(&c).unwrap();
    assert_eq!(st.filled(), 1, "one CPU buffer is full");
    stop(&c).unwrap();
    let s = bufsnap(&c, 0, 4096).unwrap();
    let vals: Vec<u64> = records(&c, &s.data)
        .iter()
        .map(|x| u64_at(&x.bytes, 16))
        .collect();
    // END needs 24 + 8 (alignment) reserved: 144 - 32 = 112 → 4 records.
    assert_eq!(vals, vec![0, 1, 2, 3, 777]);
}

#[test]
fn dofget_returns_all_options() {
    let c = open();
    let d = dof(
        &[],
        &[(DTRACEOPT_STRSIZE as u32, 77), (DTRACEOPT_NSPEC as u32, 4)],
    );
    enable(&c, &d).unwrap();
    let mut out = vec![0u8; 2048];
    out[40..48].copy_from_slice(&2048u64.to_ne_bytes());
    let mut arg = [0u8; 8];
    arg.copy_from_slice(&(out.as_mut_ptr() as u64).to_ne_bytes());
    c.ioctl(DTRACEIOC_DOFGET, &mut arg).unwrap();
    assert_eq!(&out[0..4], b"\x7fDOF");
    let loadsz = u64::from_ne_bytes(out[40..48].try_into().unwrap()) as usize;
    assert_eq!(loadsz, 64 + 32 + 16 * 32);
    let opt =
        |i: usize| i64::from_ne_bytes(out[96 + 16 * i + 8..96 + 16 * i + 16].try_into().unwrap());
    assert_eq!(opt(DTRACEOPT_STRSIZE), 77);
    assert_eq!(opt(DTRACEOPT_NSPEC), 4);
    assert_eq!(opt(DTRACEOPT_CPU), -1);
    assert_eq!(opt(DTRACEOPT_BUFSIZE), DTRACEOPT_UNSET);
    // It is well-formed DOF, but (as on FreeBSD) an OPTDESC holding the
    // "unset" sentinel is refused when loaded back.
    assert_eq!(enable(&c, &out[..loadsz]).unwrap_err(), Errno::EINVAL);
    assert!(
        c.last_dof_error().contains("unset option"),
        "{}",
        c.last_dof_error()
    );
    // An unmapped destination is EFAULT.
    arg.copy_from_slice(&8u64.to_ne_bytes());
    assert_eq!(
        c.ioctl(DTRACEIOC_DOFGET, &mut arg).unwrap_err(),
        Errno::EFAULT
    );
}

#[test]
fn enable_null_rematches_new_probes() {
    let c = open();
    let d = dof(
        &[Clause::new("tlate:::p", vec![Act::trace(Dif::constant(5))])],
        &[(0, 4096)],
    );
    assert_eq!(
        enable(&c, &d).unwrap(),
        0,
        "the provider does not exist yet"
    );
    let ids = test_provider("tlate", &["p"]);
    let mut arg = [0u8; 16];
    c.ioctl(DTRACEIOC_ENABLE, &mut arg).unwrap();
    go(&c).unwrap();
    fire(ids[0], [0; 5]);
    stop(&c).unwrap();
    assert_eq!(
        all_records(&c).len(),
        1,
        "ENABLE(NULL) created the ECB for the new probe"
    );
}

#[test]
fn c_abi_provider_registers_and_fires() {
    use rdtrace_framework::cabi::*;
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicU32, Ordering};
    static ENABLED: AtomicU32 = AtomicU32::new(0);
    unsafe extern "C" fn provide(_: *mut c_void, _: *mut u8) {}
    unsafe extern "C" fn enable_op(_: *mut c_void, id: u32, _: *mut c_void) {
        ENABLED.store(id, Ordering::SeqCst);
    }
    unsafe extern "C" fn nop(_: *mut c_void, _: u32, _: *mut c_void) {}
    kernel();
    let pops = DtracePops {
        dtps_provide: Some(provide),
        dtps_provide_module: None,
        dtps_enable: Some(enable_op),
        dtps_disable: Some(nop),
        dtps_suspend: None,
        dtps_resume: None,
        dtps_getargdesc: None,
        dtps_getargval: None,
        dtps_usermode: None,
        dtps_destroy: Some(nop),
    };
    let attr = [6u8, 6, 5, 6, 6, 5, 6, 6, 5, 6, 6, 5, 6, 6, 5];
    let mut id: DtraceProviderId = 0;
    // SAFETY: valid pointers for the duration of the call.
    let rc = unsafe {
        dtrace_register(
            c"tcabi".as_ptr(),
            &attr,
            0,
            std::ptr::null_mut(),
            &pops,
            std::ptr::null_mut(),
            &mut id,
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: NUL-terminated strings.
    let pid = unsafe {
        dtrace_probe_create(
            id,
            c"m".as_ptr(),
            c"f".as_ptr(),
            c"n".as_ptr(),
            0,
            std::ptr::null_mut(),
        )
    };
    assert!(pid > 3);
    // SAFETY: as above.
    let found = unsafe { dtrace_probe_lookup(id, c"m".as_ptr(), c"f".as_ptr(), c"n".as_ptr()) };
    assert_eq!(found, pid);
    let bad = DtracePops {
        dtps_disable: None,
        ..pops
    };
    let mut id2: DtraceProviderId = 0;
    // SAFETY: as above.
    let rc = unsafe {
        dtrace_register(
            c"tcabi2".as_ptr(),
            &attr,
            0,
            std::ptr::null_mut(),
            &bad,
            std::ptr::null_mut(),
            &mut id2,
        )
    };
    assert_eq!(rc, Errno::EINVAL.0, "disable is mandatory");
    let c = open();
    let d = dof(
        &[Clause::new(
            "tcabi:m:f:n",
            vec![Act::trace(Dif::var(0x106))],
        )],
        &[(0, 4096)],
    );
    assert_eq!(enable(&c, &d).unwrap(), 1);
    assert_eq!(
        ENABLED.load(Ordering::SeqCst),
        pid,
        "enable op called for the first ECB"
    );
    assert_eq!(
        dtrace_unregister(id),
        Errno::EBUSY.0,
        "busy while an ECB is attached"
    );
    go(&c).unwrap();
    dtrace_probe(pid, 31, 0, 0, 0, 0);
    stop(&c).unwrap();
    let r = all_records(&c);
    assert_eq!(u64_at(&r[0].bytes, 16), 31);
    drop(c);
    assert_eq!(dtrace_unregister(id), 0);
}

#[test]
fn tracemem_copies_dynsize_bytes() {
    let c = open();
    let mut mem = Dif::string("abcdefgh");
    mem.rtype = [0, 0, 1, 0, 8, 0, 0, 0]; // CTF, by reference, 8 bytes
    let d = dof(
        &[Clause::new(
            "dtrace:::BEGIN",
            vec![
                Act::new(DTRACEACT_TRACEMEM_DYNSIZE, Some(Dif::constant(3))),
                Act::new(DTRACEACT_TRACEMEM, Some(mem)),
            ],
        )],
        &[(0, 4096)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    stop(&c).unwrap();
    let r = all_records(&c);
    assert_eq!(r.len(), 1);
    assert_eq!(u64_at(&r[0].bytes, 16), 3);
    assert_eq!(&r[0].bytes[24..32], b"abc\0\0\0\0\0");
}

#[test]
fn other_actions_record_their_layouts() {
    let c = open();
    let mut printa = Act::new(DTRACEACT_PRINTA, Some(Dif::constant(1)));
    printa.format = Some("%@d\n".into());
    let mut system = Act::new(DTRACEACT_SYSTEM, Some(Dif::constant(5)));
    system.format = Some("echo %d".into());
    let mut stack = Act::new(DTRACEACT_STACK, None);
    stack.arg = 4;
    let d = dof(
        &[Clause::new(
            "dtrace:::BEGIN",
            vec![
                Act::new(DTRACEACT_USYM, Some(Dif::constant(0x1234))),
                stack,
                printa,
                system,
            ],
        )],
        &[(0, 4096), (DTRACEOPT_DESTRUCTIVE as u32, 0)],
    );
    enable(&c, &d).unwrap();
    let (_, size, recs) = eprobe(&c, 1).unwrap();
    let layout: Vec<(u16, u32, u32)> = recs.iter().map(|r| (r.action, r.offset, r.size)).collect();
    assert_eq!(
        layout,
        vec![
            (DTRACEACT_USYM, 16, 16),
            (DTRACEACT_STACK, 32, 32),
            (DTRACEACT_PRINTA, 64, 8),
            (DTRACEACT_SYSTEM, 72, 8)
        ]
    );
    assert_eq!(size, 80);
    assert_eq!(format(&c, recs[2].format).unwrap(), "%@d\n");
    assert_eq!(format(&c, recs[3].format).unwrap(), "echo %d");
    go(&c).unwrap();
    stop(&c).unwrap();
    let r = all_records(&c);
    assert_eq!(
        u64_at(&r[0].bytes, 16),
        std::process::id() as u64,
        "usym records the pid"
    );
    assert_eq!(u64_at(&r[0].bytes, 24), 0x1234);
    assert_eq!(u64_at(&r[0].bytes, 72), 5);
}

#[test]
fn invalidate_and_condense() {
    use rdtrace_framework::provider::ProviderId;
    kernel();
    let id: ProviderId = rdtrace_framework::registry::register(
        "tcond",
        &rdtrace_framework::ProviderAttributes::uniform(
            rdtrace_framework::Attribute::STABLE_COMMON,
        ),
        0,
        None,
        Box::new(common::TestProvider {
            enabled: Default::default(),
        }),
    )
    .unwrap();
    let keep = rdtrace_framework::registry::probe_create(id, "m", "f", "keep", 0, 0);
    let drop_me = rdtrace_framework::registry::probe_create(id, "m", "f", "drop", 0, 0);
    let c = open();
    let d = dof(
        &[Clause::new(
            "tcond:::keep",
            vec![Act::trace(Dif::constant(1))],
        )],
        &[(0, 4096)],
    );
    assert_eq!(enable(&c, &d).unwrap(), 1);
    // condense removes only probes without ECBs
    rdtrace_framework::registry::condense(id).unwrap();
    let mut desc = [0u8; 388];
    desc[4..9].copy_from_slice(b"tcond");
    c.ioctl(DTRACEIOC_PROBEMATCH, &mut desc).unwrap();
    assert_eq!(u32::from_ne_bytes(desc[0..4].try_into().unwrap()), keep);
    desc[0..4].copy_from_slice(&(keep + 1).to_ne_bytes());
    assert_eq!(
        c.ioctl(DTRACEIOC_PROBEMATCH, &mut desc).unwrap_err(),
        Errno::ESRCH,
        "{drop_me} is gone"
    );
    // invalidate: no new probes, no new matches
    rdtrace_framework::registry::invalidate(id);
    assert_eq!(
        rdtrace_framework::registry::probe_create(id, "m", "f", "late", 0, 0),
        0
    );
    let c2 = open();
    assert_eq!(
        enable(&c2, &d).unwrap(),
        0,
        "a defunct provider's probes do not match"
    );
    drop(c);
    drop(c2);
    rdtrace_framework::registry::unregister(id).unwrap();
}

#[test]
fn replicate_clones_retained_enablings() {
    let c = open();
    let d = dof(
        &[Clause::new(
            "trepl_a:::p",
            vec![Act::trace(Dif::constant(9))],
        )],
        &[(0, 4096)],
    );
    assert_eq!(enable(&c, &d).unwrap(), 0);
    let ids = test_provider("trepl_b", &["p"]);
    let mut rd = [0u8; 776];
    rd[4..11].copy_from_slice(b"trepl_a");
    rd[324..325].copy_from_slice(b"p");
    rd[388 + 4..388 + 11].copy_from_slice(b"trepl_b");
    rd[388 + 324..388 + 325].copy_from_slice(b"p");
    c.ioctl(DTRACEIOC_REPLICATE, &mut rd).unwrap();
    let mut arg = [0u8; 16];
    c.ioctl(DTRACEIOC_ENABLE, &mut arg).unwrap();
    go(&c).unwrap();
    fire(ids[0], [0; 5]);
    stop(&c).unwrap();
    let r = all_records(&c);
    assert_eq!(r.len(), 1);
    assert_eq!(u64_at(&r[0].bytes, 16), 9);
}
