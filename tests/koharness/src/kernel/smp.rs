//! CPUs as module code sees them: `mp_maxid`, `mp_ncpus`, `cpuid_to_pcpu[]`,
//! `pcpu_find()` and smp_rendezvous(9) across the harness CPUs.
//!
//! `smp_rendezvous(setup, action, teardown, arg)` runs the three functions on
//! every harness CPU — the caller's own part inline, the others as interrupt
//! work on that CPU (a helper thread occupies a free CPU; a busy CPU's
//! occupant is interrupted with SIGUSR2 and runs its part in the handler,
//! like an IPI) — with a barrier after setup and after
//! action unless the corresponding function is `smp_no_rendezvous_barrier`
//! (a NULL function still gets its barrier, as in FreeBSD). Rendezvous are
//! serialised; a thread waiting for another one's rendezvous leaves its CPU
//! open to that rendezvous (FreeBSD spins for its IPI lock with interrupts
//! enabled), so both complete. Not probe context.

use std::sync::{Barrier, Mutex};

use super::cpu::{self, cpus, ncpu, MAXCPU};
use super::{kpanic, DataObject};

static RENDEZVOUS: Mutex<()> = Mutex::new(());

extern "C" fn kpi_smp_no_rendezvous_barrier(_arg: u64) {}

extern "C" fn kpi_pcpu_find(cpuid: u32) -> u64 {
    if cpuid as usize >= ncpu() {
        kpanic(&format!(
            "pcpu_find: CPU {cpuid} is not present (mp_maxid {})",
            ncpu() - 1
        ));
    }
    cpus().pcpu_addr(cpuid as usize)
}

fn call(f: u64, arg: u64) {
    if f != 0 && f != no_barrier_trampoline() {
        // SAFETY: `f` is a module function of type `void (*)(void *)`.
        let func: extern "C" fn(u64) = unsafe { std::mem::transmute(f) };
        func(arg);
    }
}

fn no_barrier_trampoline() -> u64 {
    super::image()
        .symbol("smp_no_rendezvous_barrier")
        .map(|s| s.addr)
        .unwrap_or(0)
}

fn is_no_barrier(f: u64) -> bool {
    f == no_barrier_trampoline()
}

/// `cpuset_t` as passed by value: MAXCPU bits.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CpuSet([u64; MAXCPU / 64]);

/// Run `setup`/`action`/`teardown` on every CPU (see the module docs).
pub fn rendezvous(setup: u64, action: u64, teardown: u64, arg: u64) {
    rendezvous_on(&[u64::MAX; MAXCPU / 64], setup, action, teardown, arg);
}

/// `smp_rendezvous_cpus(map, …)`: only the CPUs in `map` take part (and only
/// they meet at the barriers); the caller takes part only if it is in `map`.
extern "C" fn kpi_smp_rendezvous_cpus(
    map: CpuSet,
    setup: u64,
    action: u64,
    teardown: u64,
    arg: u64,
) {
    rendezvous_on(&map.0, setup, action, teardown, arg);
}

fn rendezvous_on(map: &[u64], setup: u64, action: u64, teardown: u64, arg: u64) {
    let in_map = |c: usize| map.get(c / 64).is_some_and(|w| w & (1 << (c % 64)) != 0);
    let cpus: Vec<usize> = (0..ncpu()).filter(|c| in_map(*c)).collect();
    let me = cpu::with_thread(|t| t.cpu)
        .unwrap_or_else(|| kpanic("smp_rendezvous called outside of the kernel"));
    let _guard = match RENDEZVOUS.try_lock() {
        Ok(g) => g,
        Err(_) => {
            cpu::spin_wait_interruptible(|| RENDEZVOUS.lock().unwrap_or_else(|e| e.into_inner()))
        }
    };
    if cpus.is_empty() {
        return;
    }
    let barrier = Barrier::new(cpus.len());
    let part = |_cpu: usize| {
        call(setup, arg);
        if !is_no_barrier(setup) {
            barrier.wait();
        }
        call(action, arg);
        if !is_no_barrier(teardown) {
            barrier.wait();
        }
        call(teardown, arg);
    };
    std::thread::scope(|s| {
        for &other in cpus.iter().filter(|c| **c != me) {
            let part = &part;
            s.spawn(move || cpu::run_as_interrupt(other, &|| part(other)));
        }
        if cpus.contains(&me) {
            part(me);
        }
    });
}

extern "C" fn kpi_smp_rendezvous(setup: u64, action: u64, teardown: u64, arg: u64) {
    rendezvous(setup, action, teardown, arg);
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("smp_rendezvous", kpi_smp_rendezvous as *const () as usize),
        (
            "smp_rendezvous_cpus",
            kpi_smp_rendezvous_cpus as *const () as usize,
        ),
        (
            "smp_no_rendezvous_barrier",
            kpi_smp_no_rendezvous_barrier as *const () as usize,
        ),
        ("pcpu_find", kpi_pcpu_find as *const () as usize),
    ]
}

pub(super) fn data() -> Vec<DataObject> {
    let mut table = vec![0u8; MAXCPU * 8];
    for c in 0..ncpu() {
        table[c * 8..c * 8 + 8].copy_from_slice(&cpus().pcpu_addr(c).to_le_bytes());
    }
    let mut all = vec![0u8; MAXCPU / 8];
    for c in 0..ncpu() {
        all[c / 8] |= 1 << (c % 8);
    }
    vec![
        DataObject::int("mp_maxid", (ncpu() - 1) as i32),
        DataObject::int("mp_ncpus", ncpu() as i32),
        // CPUID leaf 7 EBX as the kernel caches it: the harness CPU has SMAP
        // (bit 20), so module code brackets user accesses with stac/clac
        // (emulated as no-ops, trap.rs).
        DataObject::int("cpu_stdext_feature", 0x0010_0000),
        DataObject {
            name: "cpuid_to_pcpu",
            size: MAXCPU * 8,
            align: 8,
            init: table,
        },
        DataObject {
            name: "all_cpus",
            size: MAXCPU / 8,
            align: 8,
            init: all,
        },
    ]
}
