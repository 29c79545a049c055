//! The SDT provider family: probes compiled into code (`SDT_PROBE_DEFINE` in
//! the kernel, [`sdt_probe_define!`](crate::sdt_probe_define) in rdtrace's own
//! Rust), discovered from the linker sets of each loaded file.
//!
//! Naming: provider = the provider record's name (one DTrace provider per
//! distinct name); module = the probe's module, or the file name without
//! `.ko` when empty; function = the probe's function, or `none` when empty;
//! name = the probe's name with every `__` turned into `-`.
//!
//! Enabling stores the DTrace id in the probe record (call sites that test
//! it start firing) and patches each of the probe's tracepoints from a NOP to
//! a jump to its out-of-line block (FreeBSD 15 hot-patching); disabling
//! reverses both. parg = the probe record's address.
//!
//! Probe context: [`fire_own`], [`SdtProvider::arg_value`] and the
//! `sdt_probe!` call sites.

pub mod layout;
pub mod macros;
pub mod patch;
pub mod sixth_arg;

use crate::host::{ProviderHandle, ProviderHost};
use crate::text::TextWriter;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
pub use layout::{c_str, SdtArgType, SdtProbe, SdtProviderRecord, SdtTracepoint};
use patch::{Arch, PatchError};
use rdtrace_framework::platform::Errno;

/// Artificial frames of SDT probes (lockstat's are 2).
pub const AFRAMES: i32 = 1;

/// The linker sets of one loaded file.
#[derive(Clone, Copy)]
pub struct LinkerSets<'a> {
    /// The file's name (`kernel`, `foo.ko`, the test binary...).
    pub file_name: &'a str,
    pub providers: &'a [*const SdtProviderRecord],
    pub probes: &'a [*const SdtProbe],
    pub argtypes: &'a [*const SdtArgType],
    pub tracepoints: &'a [SdtTracepoint],
}

/// A probe found in a file's linker sets, with its DTrace names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredProbe {
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
    /// Address of the probe record (the DTrace parg).
    pub record: usize,
    pub n_args: i32,
}

/// `__` → `-`, as SDT probe names are spelt in DTrace.
pub fn dtrace_name(name: &str) -> String {
    name.replace("__", "-")
}

/// The module name for `file_name` (the file name without `.ko`).
pub fn module_of_file(file_name: &str) -> &str {
    file_name.strip_suffix(".ko").unwrap_or(file_name)
}

/// Every probe of `sets`, with its DTrace names. Null entries are skipped.
///
/// # Safety
/// Every non-null pointer in the sets points to a live record whose string
/// and provider pointers are null or valid, as the linker sets of a loaded
/// file guarantee.
pub unsafe fn discover(sets: &LinkerSets<'_>) -> Vec<DiscoveredProbe> {
    let mut out = Vec::new();
    for &record in sets.probes {
        // SAFETY: per the caller, non-null entries are live records.
        let Some(probe) = (unsafe { record.as_ref() }) else {
            continue;
        };
        // SAFETY: as above for the provider record.
        let Some(provider_record) = (unsafe { probe.provider.as_ref() }) else {
            continue;
        };
        // SAFETY: a live provider record's name is null or a C string.
        let provider = unsafe { c_str(provider_record.name) };
        // SAFETY: string fields of a live record.
        let (module, function, name) = unsafe {
            (
                c_str(probe.module),
                c_str(probe.function),
                c_str(probe.name),
            )
        };
        if provider.is_empty() || name.is_empty() {
            continue;
        }
        out.push(DiscoveredProbe {
            provider: provider.into(),
            module: if module.is_empty() {
                module_of_file(sets.file_name)
            } else {
                module
            }
            .into(),
            function: if function.is_empty() {
                "none"
            } else {
                function
            }
            .into(),
            name: dtrace_name(name),
            record: record as usize,
            n_args: probe.n_args,
        });
    }
    out
}

/// The argument type of `record`'s argument `index`: (native, translated).
///
/// # Safety
/// As for [`discover`].
pub unsafe fn argtype<'a>(
    sets: &LinkerSets<'a>,
    record: usize,
    index: i32,
) -> Option<(&'a str, &'a str)> {
    sets.argtypes.iter().find_map(|&a| {
        // SAFETY: per the caller, non-null entries are live records.
        let arg = unsafe { a.as_ref() }?;
        // SAFETY: string fields of a live record.
        (arg.probe as usize == record && arg.index == index)
            .then(|| unsafe { (c_str(arg.type_name), c_str(arg.translated_type)) })
    })
}

/// One DTrace provider of the SDT family (all probes of one provider name).
pub struct SdtProvider {
    host: &'static dyn ProviderHost,
    text: &'static dyn TextWriter,
    arch: Arch,
    pub name: String,
    handle: AtomicUsize,
    /// (record address, patchpoint, out-of-line target) of every tracepoint.
    tracepoints: spin::Mutex<Vec<(usize, u64, u64)>>,
    /// Probe records this provider created probes for.
    records: spin::Mutex<BTreeSet<usize>>,
    /// `module:function:name` of every probe created, by record address
    /// (forgotten again when the probe is destroyed, so a reloaded file's
    /// probes are created anew).
    names: spin::Mutex<BTreeMap<String, usize>>,
}

impl SdtProvider {
    pub fn new(
        name: &str,
        host: &'static dyn ProviderHost,
        text: &'static dyn TextWriter,
        arch: Arch,
    ) -> Self {
        SdtProvider {
            host,
            text,
            arch,
            name: name.into(),
            handle: AtomicUsize::new(0),
            tracepoints: spin::Mutex::new(Vec::new()),
            records: spin::Mutex::new(BTreeSet::new()),
            names: spin::Mutex::new(BTreeMap::new()),
        }
    }

    /// `getargval`: the sixth argument (argno 5) of the SDT probe firing on
    /// this CPU, which the kernel hook published with
    /// [`sixth_arg::with_sixth_arg`]. *Probe context.*
    pub fn arg_value(&self, argno: i32) -> Option<u64> {
        sixth_arg::getargval(self.host.cpu_id(), argno)
    }

    pub fn set_handle(&self, handle: ProviderHandle) {
        self.handle.store(handle, Ordering::Release);
    }

    /// Create the probes of this provider found in `sets` (those not created
    /// yet), and remember their tracepoints. Returns how many were created.
    ///
    /// # Safety
    /// As for [`discover`]; the records must stay loaded while probes exist.
    pub unsafe fn provide_file(&self, sets: &LinkerSets<'_>) -> usize {
        let handle = self.handle.load(Ordering::Acquire);
        let mut created = 0;
        // SAFETY: forwarded from the caller.
        for p in unsafe { discover(sets) }
            .into_iter()
            .filter(|p| p.provider == self.name)
        {
            // Own bookkeeping instead of dtrace_probe_lookup (a scan of every
            // probe): one probe per record and per full name.
            let full_name = alloc::format!("{}:{}:{}", p.module, p.function, p.name);
            if self.records.lock().contains(&p.record) {
                continue;
            }
            {
                let mut names = self.names.lock();
                if names.contains_key(&full_name) {
                    continue;
                }
                names.insert(full_name, p.record);
            }
            if self
                .host
                .probe_create(handle, &p.module, &p.function, &p.name, AFRAMES, p.record)
                != 0
            {
                created += 1;
                self.records.lock().insert(p.record);
                let mut tps = self.tracepoints.lock();
                for tp in sets
                    .tracepoints
                    .iter()
                    .filter(|tp| tp.probe as usize == p.record)
                {
                    tps.push((p.record, tp.patchpoint as u64, tp.target as u64));
                }
            }
        }
        created
    }

    fn record(&self, parg: usize) -> Option<&SdtProbe> {
        if !self.records.lock().contains(&parg) {
            return None;
        }
        // SAFETY: `parg` is one of the records `provide_file` created a probe
        // for; the caller of `provide_file` keeps them loaded.
        unsafe { (parg as *const SdtProbe).as_ref() }
    }

    /// `enable`: publish the id and patch the probe's tracepoints in.
    pub fn enable(&self, id: u32, parg: usize) -> Result<(), Errno> {
        let Some(record) = self.record(parg) else {
            return Err(Errno::EINVAL);
        };
        if record.id.swap(u64::from(id), Ordering::AcqRel) == 0 {
            gate_probe_enabled();
        }
        let sites: Vec<(u64, u64)> = self
            .tracepoints
            .lock()
            .iter()
            .filter(|t| t.0 == parg)
            .map(|t| (t.1, t.2))
            .collect();
        for (site, target) in sites {
            let bytes = patch::enabled(self.arch, site, target).map_err(|e| match e {
                PatchError::OutOfRange | PatchError::Misaligned => Errno::EINVAL,
            })?;
            // SAFETY: `site` is a tracepoint the linker set declared for this
            // probe; a jump to its own out-of-line block is the enabled form.
            unsafe { self.text.write_text(site, bytes.as_slice()) }?;
        }
        Ok(())
    }

    /// `disable`: NOP the tracepoints out and clear the id.
    pub fn disable(&self, _id: u32, parg: usize) {
        let Some(record) = self.record(parg) else {
            return;
        };
        let sites: Vec<u64> = self
            .tracepoints
            .lock()
            .iter()
            .filter(|t| t.0 == parg)
            .map(|t| t.1)
            .collect();
        let nop = patch::disabled(self.arch);
        for site in sites {
            // SAFETY: as in `enable`; the NOP is the disabled form.
            let _ = unsafe { self.text.write_text(site, nop.as_slice()) };
        }
        if record.id.swap(0, Ordering::AcqRel) != 0 {
            gate_probe_disabled();
        }
    }

    /// `destroy`: forget the probe's record and tracepoints.
    pub fn destroy(&self, _id: u32, parg: usize) {
        self.records.lock().remove(&parg);
        self.tracepoints.lock().retain(|t| t.0 != parg);
        self.names.lock().retain(|_, record| *record != parg);
    }

    /// Whether a probe whose record lies in `[start, end)` (a loaded file's
    /// memory) is enabled: that file must not be unloaded.
    pub fn enabled_in(&self, start: usize, end: usize) -> bool {
        self.records
            .lock()
            .range(start..end)
            .any(|&record| self.record_id(record) != 0)
    }

    fn record_id(&self, record: usize) -> u64 {
        // SAFETY: `record` is one of the records `provide_file` created a
        // probe for; the caller of `provide_file` keeps them loaded.
        unsafe { (record as *const SdtProbe).as_ref() }.map_or(0, |r| r.id.load(Ordering::Acquire))
    }
}

/// Number of SDT probes enabled across all SDT providers.
static ENABLED_PROBES: AtomicUsize = AtomicUsize::new(0);
/// Called with `true` when the first SDT probe is enabled and `false` when
/// the last is disabled (the kernel glue sets `sdt_probes_enabled` there).
static GATE_HOOK: spin::Mutex<Option<fn(bool)>> = spin::Mutex::new(None);

/// Install the global gate hook; `None` removes it. Not probe context.
pub fn set_gate_hook(hook: Option<fn(bool)>) {
    *GATE_HOOK.lock() = hook;
}

/// Number of SDT probes enabled across all providers.
pub fn enabled_probe_count() -> usize {
    ENABLED_PROBES.load(Ordering::Acquire)
}

fn call_gate(open: bool) {
    let hook = *GATE_HOOK.lock();
    if let Some(hook) = hook {
        hook(open);
    }
}

fn gate_probe_enabled() {
    if ENABLED_PROBES.fetch_add(1, Ordering::AcqRel) == 0 {
        call_gate(true);
    }
}

fn gate_probe_disabled() {
    if ENABLED_PROBES.fetch_sub(1, Ordering::AcqRel) == 1 {
        call_gate(false);
    }
}

/// Where rdtrace's own SDT probes fire to (a thin, 'static handle on a host).
pub struct OwnHost(pub &'static dyn ProviderHost);

static OWN_HOST: AtomicPtr<OwnHost> = AtomicPtr::new(ptr::null_mut());

/// Route rdtrace's own `sdt_probe!` sites to `host` (the framework adapter),
/// or nowhere with `None`. Returns the previous routing; the caller may free
/// it once a `sync` has let every site that could still use it finish.
pub fn set_own_host(host: Option<&'static OwnHost>) -> Option<&'static OwnHost> {
    let new = host.map_or(ptr::null_mut(), |h| h as *const OwnHost as *mut OwnHost);
    let old = OWN_HOST.swap(new, Ordering::AcqRel);
    // SAFETY: OWN_HOST only ever holds null or a 'static OwnHost given here.
    unsafe { old.as_ref() }
}

/// Fire one of rdtrace's own probes (called by `sdt_probe!` when enabled).
/// *Probe context.*
pub fn fire_own(id: u32, args: [u64; 5]) {
    // SAFETY: OWN_HOST is null or a 'static OwnHost (see `set_own_host`).
    if let Some(own) = unsafe { OWN_HOST.load(Ordering::Acquire).as_ref() } {
        own.0.probe(id, args);
    }
}

/// Up to five call-site arguments as the five probe arguments.
#[inline]
pub fn pad_args(args: &[u64]) -> [u64; 5] {
    let mut five = [0u64; 5];
    for (dst, src) in five.iter_mut().zip(args) {
        *dst = *src;
    }
    five
}
