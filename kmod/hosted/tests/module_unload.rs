//! Per-module probe removal: `registry::condense_module` (one provider's
//! unenabled probes of one module) and `registry::module_unloaded`
//! (FreeBSD's dtrace_module_unloaded: every provider's probes of the module,
//! refused with EBUSY while one of them is enabled).
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::dof_builder::*;
use common::*;
use rdtrace_framework::provider::{ProviderAttributes, ProviderOps};
use rdtrace_framework::registry;
use rdtrace_hosted::Errno;

/// Counts destroy calls.
struct Counting(&'static AtomicUsize);

impl ProviderOps for Counting {
    fn enable(&self, _id: u32, _parg: usize) {}
    fn disable(&self, _id: u32, _parg: usize) {}
    fn destroy(&self, _id: u32, _parg: usize) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn provider(
    name: &str,
) -> (
    rdtrace_framework::provider::ProviderId,
    &'static AtomicUsize,
) {
    kernel();
    let destroyed: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let id = registry::register(
        name,
        &ProviderAttributes::uniform(rdtrace_framework::Attribute::STABLE_COMMON),
        0,
        None,
        Box::new(Counting(destroyed)),
    )
    .expect("register");
    (id, destroyed)
}

fn exists(id: rdtrace_framework::provider::ProviderId, module: &str, name: &str) -> bool {
    registry::probe_lookup(id, module, "f", name) != 0
}

#[test]
fn condense_module_keeps_other_modules_and_enabled_probes() {
    let (p, destroyed) = provider("tmodcond");
    for (m, n) in [("ma", "x"), ("ma", "y"), ("ma", "z"), ("mb", "x")] {
        assert_ne!(registry::probe_create(p, m, "f", n, 0, 0), 0);
    }
    let c = open();
    enable(
        &c,
        &dof(&[Clause::new("tmodcond:ma:f:z", vec![Act::exit(0)])], &[]),
    )
    .unwrap();
    assert_eq!(registry::condense_module(p, "ma"), Ok(2));
    assert_eq!(destroyed.load(Ordering::SeqCst), 2);
    assert!(!exists(p, "ma", "x") && !exists(p, "ma", "y"));
    assert!(exists(p, "ma", "z"), "the enabled probe stays");
    assert!(exists(p, "mb", "x"), "another module's probe stays");
    drop(c);
    // Once the consumer is gone the last one goes too.
    assert_eq!(registry::condense_module(p, "ma"), Ok(1));
    assert_eq!(registry::condense_module(p, "nosuch"), Ok(0));
    assert!(exists(p, "mb", "x"));
}

#[test]
fn module_unloaded_removes_every_providers_probes_of_the_module() {
    let (p1, d1) = provider("tmodunl1");
    let (p2, d2) = provider("tmodunl2");
    registry::probe_create(p1, "kmodx", "f", "a", 0, 0);
    registry::probe_create(p1, "kmody", "f", "a", 0, 0);
    registry::probe_create(p2, "kmodx", "f", "b", 0, 0);
    // ".ko" is ignored, as FreeBSD strips it from the file name.
    assert_eq!(registry::module_unloaded("kmodx.ko"), Ok(2));
    assert_eq!(
        (d1.load(Ordering::SeqCst), d2.load(Ordering::SeqCst)),
        (1, 1)
    );
    assert!(!exists(p1, "kmodx", "a") && !exists(p2, "kmodx", "b"));
    assert!(exists(p1, "kmody", "a"));
}

#[test]
fn module_unloaded_refuses_while_a_probe_of_the_module_is_enabled() {
    let (p, destroyed) = provider("tmodbusy");
    registry::probe_create(p, "kmodz", "f", "a", 0, 0);
    registry::probe_create(p, "kmodz", "f", "b", 0, 0);
    let c = open();
    enable(
        &c,
        &dof(
            &[Clause::new("tmodbusy:kmodz:f:a", vec![Act::exit(0)])],
            &[],
        ),
    )
    .unwrap();
    assert_eq!(registry::module_unloaded("kmodz"), Err(Errno::EBUSY));
    assert_eq!(destroyed.load(Ordering::SeqCst), 0, "nothing removed");
    assert!(exists(p, "kmodz", "a") && exists(p, "kmodz", "b"));
    drop(c);
    assert_eq!(registry::module_unloaded("kmodz"), Ok(2));
    assert_eq!(destroyed.load(Ordering::SeqCst), 2);
}
