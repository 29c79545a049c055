//! End to end: DOF enablings on the hosted kernel's real framework, probes
//! of the syscall and profile providers firing, records read back.
mod common;

use common::dof_builder::*;
use common::*;
use rdtrace_hosted::providers;

#[test]
fn syscall_and_tick_records_reach_the_buffers() {
    let k = kernel();
    let p = providers::registered(k.platform()).expect("providers");
    let c = open();
    let d = dof(
        &[
            Clause::new(
                "syscall:freebsd:write:entry",
                vec![Act::trace(Dif::var(0x107))],
            ),
            Clause::new(
                "syscall:freebsd:write:return",
                vec![Act::trace(Dif::var(0x106))],
            ),
            Clause::new("profile:::tick-1000", vec![Act::trace(Dif::var(0x106))]),
            Clause::new(
                "rdtrace:hosted:syscall:dispatch",
                vec![Act::trace(Dif::var(0x106))],
            ),
        ],
        &[],
    );
    let n = enable(&c, &d).expect("enable");
    assert!(n >= 0);
    go(&c).expect("go");
    let write = p.syscall_table.number("write").unwrap();
    for i in 0..10u64 {
        providers::syscall::syscall(p.syscall.1, write, &[1, 0xab00 + i, 5], Ok(5 + i as i64))
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop(&c).expect("stop");
    let recs = all_records(&c);
    let mut by_probe: std::collections::HashMap<u32, Vec<u64>> = Default::default();
    for r in &recs {
        let (probe, _, layout) = eprobe(&c, r.epid).unwrap();
        by_probe
            .entry(probe)
            .or_default()
            .push(u64_at(&r.bytes, layout[0].offset));
    }
    let id = |m: &str, f: &str, n: &str, prov: rdtrace_framework::ProviderId| {
        rdtrace_framework::registry::probe_lookup(prov, m, f, n)
    };
    let entry = id("freebsd", "write", "entry", p.syscall.0);
    let ret = id("freebsd", "write", "return", p.syscall.0);
    let tick = id("", "", "tick-1000", p.profile.0);
    let rdtrace = p.sdt.iter().find(|(_, s)| s.name == "rdtrace").unwrap().0;
    let dispatch = id("hosted", "syscall", "dispatch", rdtrace);
    assert_eq!(
        by_probe[&entry],
        (0..10).map(|i| 0xab00 + i).collect::<Vec<_>>()
    );
    assert_eq!(by_probe[&ret], (0..10).map(|i| 5 + i).collect::<Vec<_>>());
    assert_eq!(by_probe[&dispatch], vec![write as u64; 10]);
    let ticks = by_probe.get(&tick).map_or(0, Vec::len);
    eprintln!(
        "tick-1000 fired {ticks} times in ~100 ms; arg0 (kernel pc) on the hosted kernel = {:?}",
        by_probe.get(&tick).and_then(|v| v.first())
    );
    assert!(ticks >= 20, "tick-1000 fired {ticks} times in 100 ms");
    assert!(
        by_probe[&tick].iter().all(|pc| *pc == 0),
        "hosted kernel PC is 0"
    );
}
