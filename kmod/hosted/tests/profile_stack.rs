//! stack() in a hosted profile probe starts at the timer thread's function
//! that fired the probe (`rdtrace_providers::profile::fire`), not FreeBSD's
//! ten interrupt frames further out.
mod common;

use common::dof_builder::*;
use common::*;
use rdtrace_framework::abi::*;

const NFRAMES: u64 = 8;

#[test]
fn hosted_profile_stack_starts_in_the_provider_fire_function() {
    let c = open();
    let mut st = Act::new(DTRACEACT_STACK, None);
    st.arg = NFRAMES;
    let d = dof(
        &[Clause::new("profile:::tick-1000", vec![st])],
        &[(0, 1 << 20)],
    );
    enable(&c, &d).unwrap();
    go(&c).unwrap();
    let mut recs = Vec::new();
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        recs = all_records(&c);
        if !recs.is_empty() {
            break;
        }
    }
    stop(&c).unwrap();
    if recs.is_empty() {
        recs = all_records(&c);
    }
    let rec = recs.first().expect("tick-1000 fired within a second");
    let (_, _, layout) = eprobe(&c, rec.epid).unwrap();
    let first = u64_at(&rec.bytes, layout[0].offset);
    let fire = rdtrace_providers::profile::fire as fn(usize) as *const () as u64;
    // `fire` is a few hundred bytes of code; its call to the host's probe
    // glue is inside it.
    assert!(
        first.wrapping_sub(fire) < 4096,
        "first frame {first:#x} is in profile::fire at {fire:#x}"
    );
}
