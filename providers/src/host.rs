//! The seam between rdtrace's providers and what they run on: the framework's
//! probe registry and firing entry point, and the platform's services.
//!
//! Providers are written against these traits instead of calling the
//! framework directly so each provider's logic is unit-testable with a
//! recording host, and so the same provider code serves the FreeBSD module
//! and the hosted kernel. The adapter to the real framework
//! (`registry::probe_create`, `dtrace_probe`, the `Platform`) is one impl of
//! [`ProviderHost`].
//!
//! Probe context: [`ProviderHost::probe`], [`ProviderHost::monotonic_ns`] and
//! [`ProviderHost::cpu_id`] are called from timers and traps; implementations
//! must not allocate, sleep or panic there.

pub use rdtrace_framework::platform::TimerId;

/// A registered provider as the framework identifies it (`dtrace_provider_id_t`).
pub type ProviderHandle = usize;

/// What a provider needs from the framework and the platform.
pub trait ProviderHost: Sync + 'static {
    /// `dtrace_probe_create`: returns the new probe's id, or 0 on failure.
    fn probe_create(
        &self,
        provider: ProviderHandle,
        module: &str,
        function: &str,
        name: &str,
        aframes: i32,
        parg: usize,
    ) -> u32;

    /// `dtrace_probe_lookup`: the id of an existing probe, or 0.
    fn probe_lookup(
        &self,
        provider: ProviderHandle,
        module: &str,
        function: &str,
        name: &str,
    ) -> u32;

    /// `dtrace_probe(id, args...)`. *Probe context.*
    fn probe(&self, id: u32, args: [u64; 5]);

    /// Number of CPUs that can run probes (`mp_maxid + 1`).
    fn cpu_count(&self) -> usize;

    /// The CPU the caller runs on. *Probe context.*
    fn cpu_id(&self) -> usize;

    /// Wait until every CPU has left probe context once (`dtrace_sync`), so
    /// data unpublished before the call can be freed after it.
    fn sync(&self);

    /// Monotonic time in nanoseconds. *Probe context.*
    fn monotonic_ns(&self) -> u64;

    /// Start a periodic timer (see `PlatformTimers::timer_create`).
    fn timer_create(
        &self,
        cpu: Option<usize>,
        interval_ns: u64,
        func: fn(usize),
        arg: usize,
    ) -> Option<TimerId>;

    /// Stop a timer and wait for a running callback to return.
    fn timer_destroy(&self, id: TimerId);

    /// The program counters of the context a timer interrupted: (kernel PC,
    /// user PC), each 0 if the interrupted context was not in that mode. The
    /// hosted kernel has no interrupted context and reports (0, 0).
    /// *Probe context.*
    fn interrupted_pcs(&self) -> (u64, u64) {
        (0, 0)
    }
}
