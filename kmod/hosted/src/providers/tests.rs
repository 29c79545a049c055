//! The hosted providers on the real framework: registration, probe creation
//! through `provide_all`, and enabling through the registered ops (the path
//! an ECB takes), observed on the hosted system call table and timers.

use super::*;
use crate::platform::HostedPlatform;
use rdtrace_framework::registry;
use rdtrace_framework::Platform;
use rdtrace_providers::syscall::Site;

fn hosted() -> &'static HostedProviders {
    let platform: &'static HostedPlatform = crate::HostedKernel::get()
        .expect("hosted kernel")
        .platform();
    registered(platform).expect("register the hosted providers")
}

/// Call the registered provider's enable/disable op, as the framework does
/// when the first ECB attaches / the last one leaves.
fn set_enabled(provider: ProviderId, id: u32, on: bool) {
    let fw = registry::get().unwrap();
    let parg = registry::probe_arg(provider, id);
    let probe = fw.probe_by_id(id).unwrap();
    let ops = &probe.provider().ops;
    if on {
        ops.enable(id, parg);
    } else {
        ops.disable(id, parg);
    }
}

#[test]
fn probes_are_created_with_freebsd_names() {
    let p = hosted();
    assert_ne!(registry::probe_lookup(p.profile.0, "", "", "profile-97"), 0);
    assert_ne!(registry::probe_lookup(p.profile.0, "", "", "tick-5000"), 0);
    assert_ne!(
        registry::probe_lookup(p.syscall.0, "freebsd", "write", "entry"),
        0
    );
    assert_ne!(
        registry::probe_lookup(p.syscall.0, "freebsd", "openat", "return"),
        0
    );
    let rdtrace = p
        .sdt
        .iter()
        .find(|(_, s)| s.name == "rdtrace")
        .expect("the rdtrace SDT provider");
    let dispatch = registry::probe_lookup(rdtrace.0, "hosted", "syscall", "dispatch");
    assert_ne!(dispatch, 0);
    // Argument types come from the argtypes linker set.
    let fw = registry::get().unwrap();
    let probe = fw.probe_by_id(dispatch).unwrap();
    let mut desc = rdtrace_framework::ArgDesc::new(0);
    assert!(probe
        .provider()
        .ops
        .getargdesc(dispatch, probe.parg, &mut desc));
    assert_eq!((desc.ndx, &desc.native[..4]), (0, &b"int\0"[..]));
    let mut none = rdtrace_framework::ArgDesc::new(1);
    probe
        .provider()
        .ops
        .getargdesc(dispatch, probe.parg, &mut none);
    assert_eq!(none.ndx, -1);
    // On-demand profile probe through a described provide.
    let desc = rdtrace_framework::ProbeDescription {
        provider: "profile",
        name: "tick-3ms",
        ..Default::default()
    };
    registry::get().unwrap().provide_all(Some(&desc));
    assert_ne!(registry::probe_lookup(p.profile.0, "", "", "tick-3ms"), 0);
}

#[test]
fn syscall_enable_fires_and_records_errno() {
    let p = hosted();
    let write = p.syscall_table.number("write").unwrap();
    let entry = registry::probe_lookup(p.syscall.0, "freebsd", "write", "entry");
    let ret = registry::probe_lookup(p.syscall.0, "freebsd", "write", "return");
    set_enabled(p.syscall.0, entry, true);
    set_enabled(p.syscall.0, ret, true);
    assert!(p.syscall_table.hook_installed());
    assert_eq!(p.syscall_table.probe_id(write, Site::Entry), entry);
    assert_eq!(p.syscall_table.probe_id(write, Site::Return), ret);
    assert_eq!(
        syscall::syscall(p.syscall.1, write, &[1, 0x1000, 5], Ok(5)),
        Ok(5)
    );
    assert_eq!(syscall::errno(), 0);
    assert_eq!(
        syscall::syscall(p.syscall.1, write, &[99, 0, 0], Err(9)),
        Err(9)
    );
    assert_eq!(syscall::errno(), 9);
    set_enabled(p.syscall.0, entry, false);
    set_enabled(p.syscall.0, ret, false);
    assert!(!p.syscall_table.hook_installed());
    assert_eq!(p.syscall_table.probe_id(write, Site::Entry), 0);
}

#[test]
fn profile_enable_runs_a_timer_per_cpu() {
    let p = hosted();
    let id = registry::probe_lookup(p.profile.0, "", "", "profile-997");
    set_enabled(p.profile.0, id, true);
    let cpus = crate::HostedKernel::get().unwrap().platform().cpu_count();
    assert_eq!(p.profile.1.armed_timers(id), cpus.max(1));
    std::thread::sleep(std::time::Duration::from_millis(20));
    set_enabled(p.profile.0, id, false);
    assert_eq!(p.profile.1.armed_timers(id), 0);
    let tick = registry::probe_lookup(p.profile.0, "", "", "tick-1000");
    set_enabled(p.profile.0, tick, true);
    assert_eq!(p.profile.1.armed_timers(tick), 1);
    set_enabled(p.profile.0, tick, false);
}
