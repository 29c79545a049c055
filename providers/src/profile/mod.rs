//! The profile provider: `profile-<n>[unit]` probes fire on every CPU and
//! `tick-<n>[unit]` probes on one CPU, at a fixed interval, from the
//! platform's periodic timers (callouts on FreeBSD, threads on the hosted
//! kernel).
//!
//! Probes: module and function are empty; the name is the one asked for. The
//! provider pre-creates profile-97/199/499/997/1999/4001/4999 and
//! tick-1/10/100/500/1000/5000 when asked for all probes, and creates any other
//! valid name on demand (`provide` with a description), up to
//! [`MAX_PROBES`].
//!
//! Arguments: arg0 = kernel PC of the interrupted context, arg1 = user PC
//! (either 0 when the interrupted context was not in that mode; the hosted
//! kernel has no interrupted context and gives 0 for both), arg2 (profile
//! only) = how late this firing is relative to its schedule, in ns.
//!
//! Probe context: [`fire`] (the timer callback). Everything else runs in
//! ioctl/provider context.

pub mod name;

use crate::host::{ProviderHandle, ProviderHost, TimerId};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
pub use name::{parse, NameError, ProfileKind, MIN_INTERVAL_NS};

/// Rates (Hz) of the pre-created `profile-` probes.
pub const PROFILE_RATES: [u64; 7] = [97, 199, 499, 997, 1999, 4001, 4999];
/// Rates (Hz) of the pre-created `tick-` probes.
pub const TICK_RATES: [u64; 6] = [1, 10, 100, 500, 1000, 5000];
/// Most probes the provider will create.
pub const MAX_PROBES: usize = 1000;
/// Artificial frames of profile probes (amd64, arm64 and riscv64 alike):
/// FreeBSD's interrupt and callout frames between the interrupted code and
/// the provider.
pub const AFRAMES: i32 = 10;
/// Artificial frames on the hosted kernel, where a timer thread calls
/// [`fire`] directly: only the host's `probe` glue (the caller of
/// `dtrace_probe()`) is skipped, so `stack()` starts at [`fire`], the timer
/// thread's function that fired the probe.
pub const HOSTED_AFRAMES: i32 = 1;

/// One running timer of an enabled probe: the timer and the firing record
/// its callback receives (a `Box<Firing>` turned into an address).
struct Armed {
    timer: TimerId,
    firing: usize,
}

/// A probe this provider created.
struct ProfileProbe {
    kind: ProfileKind,
    interval_ns: u64,
    armed: Vec<Armed>,
}

/// What one timer callback needs; lives from enable until its timer is
/// destroyed.
struct Firing {
    host: &'static dyn ProviderHost,
    id: u32,
    kind: ProfileKind,
    interval_ns: u64,
    /// When this timer should fire next (monotonic ns).
    expected_ns: AtomicU64,
}

/// The profile provider's state.
pub struct ProfileProvider {
    host: &'static dyn ProviderHost,
    handle: AtomicUsize,
    /// Artificial frames given to probes created from now on.
    aframes: AtomicI32,
    probes: spin::Mutex<BTreeMap<u32, ProfileProbe>>,
}

impl ProfileProvider {
    /// A provider with no probes yet; call [`ProfileProvider::set_handle`]
    /// once the framework has registered it.
    pub fn new(host: &'static dyn ProviderHost) -> Self {
        ProfileProvider {
            host,
            handle: AtomicUsize::new(0),
            aframes: AtomicI32::new(AFRAMES),
            probes: spin::Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets the artificial frames of probes created from now on (default
    /// [`AFRAMES`]; the hosted kernel uses [`HOSTED_AFRAMES`]). Call before
    /// the first `provide`.
    pub fn set_aframes(&self, aframes: i32) {
        self.aframes.store(aframes, Ordering::Relaxed);
    }

    /// The artificial frames probes are created with.
    pub fn aframes(&self) -> i32 {
        self.aframes.load(Ordering::Relaxed)
    }

    /// Record the framework's id for this provider.
    pub fn set_handle(&self, handle: ProviderHandle) {
        self.handle.store(handle, Ordering::Release);
    }

    /// `provide`: with no name, create the standard probes; with a name,
    /// create that probe if it is a valid profile/tick name and not there yet.
    pub fn provide(&self, name: Option<&str>) {
        match name {
            Some(name) => {
                if let Ok((kind, interval)) = parse(name) {
                    self.create(name, kind, interval);
                }
            }
            None => {
                for rate in PROFILE_RATES {
                    self.create(
                        &format!("profile-{rate}"),
                        ProfileKind::Profile,
                        1_000_000_000 / rate,
                    );
                }
                for rate in TICK_RATES {
                    self.create(
                        &format!("tick-{rate}"),
                        ProfileKind::Tick,
                        1_000_000_000 / rate,
                    );
                }
            }
        }
    }

    fn create(&self, name: &str, kind: ProfileKind, interval_ns: u64) -> u32 {
        let handle = self.handle.load(Ordering::Acquire);
        let existing = self.host.probe_lookup(handle, "", "", name);
        if existing != 0 {
            return existing;
        }
        if self.probes.lock().len() >= MAX_PROBES {
            return 0;
        }
        let id = self
            .host
            .probe_create(handle, "", "", name, self.aframes(), 0);
        if id != 0 {
            self.probes.lock().insert(
                id,
                ProfileProbe {
                    kind,
                    interval_ns,
                    armed: Vec::new(),
                },
            );
        }
        id
    }

    /// Number of probes this provider has created and not destroyed.
    pub fn probe_count(&self) -> usize {
        self.probes.lock().len()
    }

    /// `enable`: start the probe's timers (one per CPU for profile-, one for
    /// tick-). Enabling an enabled or unknown probe does nothing.
    pub fn enable(&self, id: u32) {
        let mut probes = self.probes.lock();
        let Some(probe) = probes.get_mut(&id) else {
            return;
        };
        if !probe.armed.is_empty() {
            return;
        }
        let cpus: Vec<Option<usize>> = match probe.kind {
            ProfileKind::Profile => (0..self.host.cpu_count().max(1)).map(Some).collect(),
            ProfileKind::Tick => alloc::vec![None],
        };
        let start = self.host.monotonic_ns();
        for cpu in cpus {
            let firing = Box::into_raw(Box::new(Firing {
                host: self.host,
                id,
                kind: probe.kind,
                interval_ns: probe.interval_ns,
                expected_ns: AtomicU64::new(start.saturating_add(probe.interval_ns)),
            })) as usize;
            match self.host.timer_create(cpu, probe.interval_ns, fire, firing) {
                Some(timer) => probe.armed.push(Armed { timer, firing }),
                None => {
                    // SAFETY: `firing` came from Box::into_raw above and no
                    // timer was created with it, so nothing else holds it.
                    drop(unsafe { Box::from_raw(firing as *mut Firing) });
                }
            }
        }
    }

    /// `disable`: stop the probe's timers and wait for running callbacks.
    pub fn disable(&self, id: u32) {
        let armed = {
            let mut probes = self.probes.lock();
            match probes.get_mut(&id) {
                Some(probe) => core::mem::take(&mut probe.armed),
                None => return,
            }
        };
        for Armed { timer, firing } in armed {
            self.host.timer_destroy(timer);
            // SAFETY: the timer that received `firing` is destroyed and its
            // callback has returned (timer_destroy drains), so this is the
            // only owner of the Box made in `enable`.
            drop(unsafe { Box::from_raw(firing as *mut Firing) });
        }
    }

    /// `destroy`: forget the probe (disabling it first if needed).
    pub fn destroy(&self, id: u32) {
        self.disable(id);
        self.probes.lock().remove(&id);
    }

    /// Whether probe `id` currently has running timers, and how many.
    pub fn armed_timers(&self, id: u32) -> usize {
        self.probes.lock().get(&id).map_or(0, |p| p.armed.len())
    }
}

impl Drop for ProfileProvider {
    fn drop(&mut self) {
        let ids: Vec<u32> = self.probes.lock().keys().copied().collect();
        for id in ids {
            self.disable(id);
        }
    }
}

/// The timer callback: fire the probe with the interrupted PCs and, for
/// profile probes, the lateness. *Probe context*: no allocation, no locks.
pub fn fire(arg: usize) {
    // SAFETY: `arg` is the address of a `Firing` made in `enable`; it is
    // freed only after the timer that calls us is destroyed and drained.
    let Some(firing) = (unsafe { (arg as *const Firing).as_ref() }) else {
        return;
    };
    let now = firing.host.monotonic_ns();
    let expected = firing.expected_ns.load(Ordering::Relaxed);
    let late = now.saturating_sub(expected);
    // Next expected time: the first schedule point after now, so a stall
    // does not make every later firing look late.
    let interval = firing.interval_ns.max(1);
    let periods = (late / interval).saturating_add(1);
    firing.expected_ns.store(
        expected.saturating_add(periods.saturating_mul(interval)),
        Ordering::Relaxed,
    );
    let (kernel_pc, user_pc) = firing.host.interrupted_pcs();
    let lateness = match firing.kind {
        ProfileKind::Profile => late,
        ProfileKind::Tick => 0,
    };
    firing
        .host
        .probe(firing.id, [kernel_pc, user_pc, lateness, 0, 0]);
}
