//! The profile provider against a recording host: probe creation (standard
//! set and on demand), timers per CPU / one for tick, firing arguments and
//! lateness, disable and destroy.

mod common;

use common::MockHost;
use rdtrace_providers::profile::{ProfileProvider, AFRAMES, MAX_PROBES, PROFILE_RATES, TICK_RATES};
use std::sync::atomic::Ordering;

#[test]
fn standard_probes_are_created_once() {
    let host = MockHost::leaked(4);
    let provider = ProfileProvider::new(host);
    provider.set_handle(77);
    provider.provide(None);
    provider.provide(None);
    let names: Vec<String> = host
        .probes
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut want: Vec<String> = PROFILE_RATES
        .iter()
        .map(|r| format!("profile-{r}"))
        .collect();
    want.extend(TICK_RATES.iter().map(|r| format!("tick-{r}")));
    assert_eq!(names, want);
    let p = host.probe(1);
    assert_eq!(
        (
            p.provider,
            p.module.as_str(),
            p.function.as_str(),
            p.aframes
        ),
        (77, "", "", AFRAMES)
    );
    assert_eq!(provider.probe_count(), 13);
}

#[test]
fn provide_creates_valid_names_on_demand_only() {
    let host = MockHost::leaked(2);
    let provider = ProfileProvider::new(host);
    provider.provide(Some("tick-250ms"));
    provider.provide(Some("tick-250ms"));
    provider.provide(Some("profile-1234"));
    provider.provide(Some("tick-100us")); // below the 200 µs minimum
    provider.provide(Some("tick-*"));
    provider.provide(Some("BEGIN"));
    let names: Vec<String> = host
        .probes
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(names, vec!["tick-250ms", "profile-1234"]);
}

#[test]
fn at_most_max_probes() {
    let host = MockHost::leaked(1);
    let provider = ProfileProvider::new(host);
    for i in 0..MAX_PROBES + 10 {
        provider.provide(Some(&format!("tick-{}ms", i + 1)));
    }
    assert_eq!(provider.probe_count(), MAX_PROBES);
    assert_eq!(host.probes.lock().unwrap().len(), MAX_PROBES);
}

#[test]
fn profile_fires_on_every_cpu_with_lateness() {
    let host = MockHost::leaked(3);
    let provider = ProfileProvider::new(host);
    provider.provide(Some("profile-1000")); // 1 ms
    let id = host.id_of("profile-1000");
    provider.enable(id);
    provider.enable(id); // idempotent
    let timers = host.live_timers();
    assert_eq!(timers.len(), 3);
    assert_eq!(
        timers.iter().map(|t| t.cpu).collect::<Vec<_>>(),
        vec![Some(0), Some(1), Some(2)]
    );
    assert!(timers.iter().all(|t| t.interval_ns == 1_000_000));

    // Fire 250 µs late: lateness is reported, per CPU.
    host.now.fetch_add(1_250_000, Ordering::SeqCst);
    host.run_timers();
    let fired = host.take_fired();
    assert_eq!(fired.len(), 3);
    for (i, (fid, args, cpu)) in fired.iter().enumerate() {
        assert_eq!(*fid, id);
        assert_eq!(*cpu, i);
        assert_eq!(args[0..2], [host.pcs.0, host.pcs.1]);
        assert_eq!(args[2], 250_000);
    }
    // Exactly on schedule next time: lateness 0.
    host.now.fetch_add(750_000, Ordering::SeqCst);
    host.run_timers();
    assert!(host.take_fired().iter().all(|(_, a, _)| a[2] == 0));
    // After a 5.5 ms stall the lateness is measured against the last missed
    // schedule point, not accumulated.
    host.now.fetch_add(5_500_000, Ordering::SeqCst);
    host.run_timers();
    host.now.fetch_add(500_000, Ordering::SeqCst);
    host.run_timers();
    let fired = host.take_fired();
    assert_eq!(fired[0].1[2], 4_500_000);
    assert_eq!(fired[3].1[2], 0);

    provider.disable(id);
    assert!(host.live_timers().is_empty());
    assert_eq!(provider.armed_timers(id), 0);
    host.run_timers();
    assert!(host.take_fired().is_empty());
}

#[test]
fn tick_uses_one_timer_and_no_lateness() {
    let host = MockHost::leaked(8);
    let provider = ProfileProvider::new(host);
    provider.provide(None);
    let id = host.id_of("tick-10");
    provider.enable(id);
    let timers = host.live_timers();
    assert_eq!(timers.len(), 1);
    assert_eq!((timers[0].cpu, timers[0].interval_ns), (None, 100_000_000));
    host.now.fetch_add(100_000_123, Ordering::SeqCst);
    host.run_timers();
    assert_eq!(
        host.take_fired(),
        vec![(id, [host.pcs.0, host.pcs.1, 0, 0, 0], 0)]
    );
    provider.destroy(id);
    assert!(host.live_timers().is_empty());
    assert_eq!(provider.probe_count(), 12);
    // Enabling a destroyed probe is ignored.
    provider.enable(id);
    assert!(host.live_timers().is_empty());
}

#[test]
fn dropping_the_provider_stops_its_timers() {
    let host = MockHost::leaked(2);
    let provider = ProfileProvider::new(host);
    provider.provide(None);
    provider.enable(host.id_of("profile-97"));
    provider.enable(host.id_of("tick-1"));
    assert_eq!(host.live_timers().len(), 3);
    drop(provider);
    assert!(host.live_timers().is_empty());
}
