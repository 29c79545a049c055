//! A recording [`ProviderHost`] for provider tests: probes are kept in a
//! table, firings are recorded, time is set by the test, and timers are
//! only run when the test calls [`MockHost::run_timers`].
#![allow(dead_code)]

use rdtrace_providers::host::{ProviderHandle, ProviderHost, TimerId};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq)]
pub struct CreatedProbe {
    pub provider: ProviderHandle,
    pub module: String,
    pub function: String,
    pub name: String,
    pub aframes: i32,
    pub parg: usize,
}

#[derive(Clone, Copy, Debug)]
pub struct MockTimer {
    pub cpu: Option<usize>,
    pub interval_ns: u64,
    pub func: fn(usize),
    pub arg: usize,
    pub live: bool,
}

pub struct MockHost {
    pub cpus: usize,
    pub now: AtomicU64,
    pub current_cpu: AtomicUsize,
    pub probes: Mutex<Vec<CreatedProbe>>,
    pub fired: Mutex<Vec<(u32, [u64; 5], usize)>>,
    pub timers: Mutex<Vec<MockTimer>>,
    pub pcs: (u64, u64),
    pub syncs: AtomicUsize,
}

impl MockHost {
    pub fn leaked(cpus: usize) -> &'static MockHost {
        Box::leak(Box::new(MockHost {
            cpus,
            now: AtomicU64::new(1_000_000),
            current_cpu: AtomicUsize::new(0),
            probes: Mutex::new(Vec::new()),
            fired: Mutex::new(Vec::new()),
            timers: Mutex::new(Vec::new()),
            pcs: (0xffff_ffff_8012_3456, 0x40_1000),
            syncs: AtomicUsize::new(0),
        }))
    }

    pub fn id_of(&self, name: &str) -> u32 {
        let probes = self.probes.lock().unwrap();
        probes
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as u32 + 1)
            .unwrap_or(0)
    }

    pub fn probe(&self, id: u32) -> CreatedProbe {
        self.probes.lock().unwrap()[id as usize - 1].clone()
    }

    pub fn live_timers(&self) -> Vec<MockTimer> {
        self.timers
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.live)
            .copied()
            .collect()
    }

    /// Run every live timer's callback once, "on" its CPU.
    pub fn run_timers(&self) {
        for t in self.live_timers() {
            self.current_cpu.store(t.cpu.unwrap_or(0), Ordering::SeqCst);
            (t.func)(t.arg);
        }
    }

    pub fn take_fired(&self) -> Vec<(u32, [u64; 5], usize)> {
        std::mem::take(&mut *self.fired.lock().unwrap())
    }
}

impl ProviderHost for MockHost {
    fn probe_create(
        &self,
        provider: ProviderHandle,
        module: &str,
        function: &str,
        name: &str,
        aframes: i32,
        parg: usize,
    ) -> u32 {
        let mut probes = self.probes.lock().unwrap();
        probes.push(CreatedProbe {
            provider,
            module: module.into(),
            function: function.into(),
            name: name.into(),
            aframes,
            parg,
        });
        probes.len() as u32
    }

    fn probe_lookup(
        &self,
        provider: ProviderHandle,
        module: &str,
        function: &str,
        name: &str,
    ) -> u32 {
        let probes = self.probes.lock().unwrap();
        probes
            .iter()
            .position(|p| {
                p.provider == provider
                    && p.module == module
                    && p.function == function
                    && p.name == name
            })
            .map(|i| i as u32 + 1)
            .unwrap_or(0)
    }

    fn probe(&self, id: u32, args: [u64; 5]) {
        let cpu = self.current_cpu.load(Ordering::SeqCst);
        self.fired.lock().unwrap().push((id, args, cpu));
    }

    fn cpu_count(&self) -> usize {
        self.cpus
    }

    fn cpu_id(&self) -> usize {
        self.current_cpu.load(Ordering::SeqCst)
    }

    fn sync(&self) {
        self.syncs.fetch_add(1, Ordering::SeqCst);
    }

    fn monotonic_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn timer_create(
        &self,
        cpu: Option<usize>,
        interval_ns: u64,
        func: fn(usize),
        arg: usize,
    ) -> Option<TimerId> {
        let mut timers = self.timers.lock().unwrap();
        timers.push(MockTimer {
            cpu,
            interval_ns,
            func,
            arg,
            live: true,
        });
        Some(TimerId(timers.len() - 1))
    }

    fn timer_destroy(&self, id: TimerId) {
        self.timers.lock().unwrap()[id.0].live = false;
    }

    fn interrupted_pcs(&self) -> (u64, u64) {
        self.pcs
    }
}
