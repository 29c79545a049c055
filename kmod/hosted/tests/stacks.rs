//! stack(), ustack(), stackdepth, caller and ucaller on the hosted kernel:
//! the records hold the real return addresses of the probe site's callers,
//! starting at the function that called dtrace_probe().
mod common;

use common::dof_builder::*;
use common::*;
use rdtrace_framework::abi::*;

const NFRAMES: u64 = 12;

/// How far into a function a return address after its first call may lie
/// (these functions are a call and a few moves).
const BODY: u64 = 512;

fn addr_of(f: fn(u32)) -> u64 {
    f as *const () as u64
}

/// Fires `id` from a function of its own (the probe site).
#[inline(never)]
fn site(id: u32) {
    rdtrace_framework::dtrace_probe(id, 0, 0, 0, 0, 0);
    std::hint::black_box(id);
}

/// Calls `site` (the site's caller).
#[inline(never)]
fn site_caller(id: u32) {
    site(std::hint::black_box(id));
    std::hint::black_box(id);
}

fn stack_clause(probe: &str) -> Clause {
    let mut st = Act::new(DTRACEACT_STACK, None);
    st.arg = NFRAMES;
    let mut ust = Act::new(DTRACEACT_USTACK, None);
    ust.arg = NFRAMES;
    Clause::new(
        probe,
        vec![
            st,
            ust,
            Act::trace(Dif::var(0x110)), // stackdepth
            Act::trace(Dif::var(0x111)), // caller
            Act::trace(Dif::var(0x11b)), // ustackdepth
            Act::trace(Dif::var(0x11c)), // ucaller
        ],
    )
}

fn in_body(pc: u64, f: fn(u32)) -> bool {
    pc.wrapping_sub(addr_of(f)) < BODY
}

#[test]
fn stack_records_the_probe_sites_callers() {
    let ids = test_provider("tstack", &["p"]);
    eprintln!(
        "stack walk through {}",
        if kernel().platform().walks_frame_pointers() {
            "frame pointers"
        } else {
            "the unwinder"
        }
    );
    let c = open();
    let d = dof(&[stack_clause("tstack:::p")], &[(0, 1 << 20)]);
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    site_caller(ids[0]);
    stop(&c).unwrap();
    let recs: Vec<Record> = all_records(&c)
        .into_iter()
        .filter(|r| r.epid == 1)
        .collect();
    assert_eq!(recs.len(), 1);
    let (_, _, layout) = eprobe(&c, 1).unwrap();
    let r = &recs[0].bytes;
    let kstack: Vec<u64> = (0..NFRAMES as u32)
        .map(|i| u64_at(r, layout[0].offset + 8 * i))
        .collect();
    let live: Vec<u64> = kstack.iter().copied().take_while(|&pc| pc != 0).collect();
    assert!(live.len() >= 3, "a real stack has frames: {kstack:x?}");
    // Innermost first: a PC in `site`, then one in `site_caller`.
    assert!(
        in_body(live[0], site),
        "first frame {:#x} is in site() at {:#x}",
        live[0],
        addr_of(site)
    );
    assert!(
        in_body(live[1], site_caller),
        "second frame {:#x} is in site_caller() at {:#x}",
        live[1],
        addr_of(site_caller)
    );
    // Distinct, non-zero return addresses; the tail is zero-filled.
    let mut sorted = live.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), live.len(), "distinct PCs: {live:x?}");
    assert!(kstack[live.len()..].iter().all(|&pc| pc == 0));

    // ustack(): pid, then the same walk on the hosted kernel.
    let upid = u64_at(r, layout[1].offset);
    assert_eq!(upid, std::process::id() as u64);
    let u0 = u64_at(r, layout[1].offset + 8);
    let u1 = u64_at(r, layout[1].offset + 16);
    assert!(
        in_body(u0, site) && in_body(u1, site_caller),
        "{u0:#x} {u1:#x}"
    );

    // stackdepth counts what stack() walks; caller is its first PC.
    let depth = u64_at(r, layout[2].offset);
    let caller = u64_at(r, layout[3].offset);
    let udepth = u64_at(r, layout[4].offset);
    let ucaller = u64_at(r, layout[5].offset);
    assert!(
        depth >= live.len() as u64 || live.len() == NFRAMES as usize,
        "stackdepth {depth} vs {} frames recorded",
        live.len()
    );
    assert!(depth >= 3);
    assert!(in_body(caller, site), "caller {caller:#x}");
    assert_eq!(udepth, depth, "hosted ustackdepth walks the same stack");
    assert!(in_body(ucaller, site_caller), "ucaller {ucaller:#x}");
}

#[test]
fn aframes_skip_provider_frames() {
    // A provider declaring one artificial frame: the first recorded PC is
    // then the site's caller.
    kernel();
    let prov = rdtrace_framework::registry::register(
        "tstackaf",
        &rdtrace_framework::ProviderAttributes::uniform(
            rdtrace_framework::Attribute::STABLE_COMMON,
        ),
        0,
        None,
        Box::new(TestProvider {
            enabled: std::sync::atomic::AtomicUsize::new(0),
        }),
    )
    .unwrap();
    let id = rdtrace_framework::registry::probe_create(prov, "mod", "func", "p", 1, 0);
    let c = open();
    let d = dof(&[stack_clause("tstackaf:::p")], &[(0, 1 << 20)]);
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    site_caller(id);
    stop(&c).unwrap();
    let recs: Vec<Record> = all_records(&c)
        .into_iter()
        .filter(|r| r.epid == 1)
        .collect();
    assert_eq!(recs.len(), 1);
    let (_, _, layout) = eprobe(&c, 1).unwrap();
    let first = u64_at(&recs[0].bytes, layout[0].offset);
    assert!(in_body(first, site_caller), "{first:#x}");
    let caller = u64_at(&recs[0].bytes, layout[3].offset);
    assert_eq!(caller, first);
}

#[test]
fn stacks_from_another_thread_are_that_threads() {
    let ids = test_provider("tstackthr", &["p"]);
    let c = open();
    let d = dof(&[stack_clause("tstackthr:::p")], &[(0, 1 << 20)]);
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    let id = ids[0];
    std::thread::spawn(move || site_caller(id)).join().unwrap();
    stop(&c).unwrap();
    let recs: Vec<Record> = all_records(&c)
        .into_iter()
        .filter(|r| r.epid == 1)
        .collect();
    assert_eq!(recs.len(), 1);
    let (_, _, layout) = eprobe(&c, 1).unwrap();
    let first = u64_at(&recs[0].bytes, layout[0].offset);
    let second = u64_at(&recs[0].bytes, layout[0].offset + 8);
    assert!(in_body(first, site) && in_body(second, site_caller));
}
