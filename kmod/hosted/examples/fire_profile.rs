//! Times the pieces of the hosted firing path (a development aid for the
//! benchmarks in benches/probe.rs): `cargo run --release --example fire_profile`.
use std::time::Instant;

use rdtrace_framework::Platform;
use rdtrace_hosted::HostedKernel;

fn time(name: &str, n: u32, mut f: impl FnMut()) {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{name:<28} {:>8.1} ns",
        t.elapsed().as_nanos() as f64 / f64::from(n)
    );
}

fn main() {
    let k = HostedKernel::get().unwrap();
    let p = k.platform();
    rdtrace_hosted::platform::bind_cpu(Some(0));
    let n = 2_000_000;
    time("monotonic_ns", n, || {
        std::hint::black_box(p.monotonic_ns());
    });
    time("interrupts disable+restore", n, || {
        let c = p.interrupts_disable();
        p.interrupts_restore(c);
    });
    time("current_thread", n, || {
        std::hint::black_box(p.current_thread());
    });
    time("dtrace_probe(no such probe)", n, || {
        rdtrace_framework::dtrace_probe(999_999, 0, 0, 0, 0, 0)
    });
}
