//! The framework singleton, the probe table and the provider registry
//! (`dtrace_register`, `dtrace_unregister`, `dtrace_invalidate`,
//! `dtrace_condense`, `dtrace_probe_create`, `dtrace_probe_lookup`,
//! `dtrace_probe_arg`), in their safe Rust form.
//!
//! Locks, in the only order they may be taken:
//! 1. `Framework::provider_lock` — serialises provider registration and the
//!    calls to `provide`/`provide_module` (which create probes, so they run
//!    *without* lock 2 held);
//! 2. `Framework::lock` (`dtrace_lock`) — the probe table's mutations, ECB
//!    chains, consumer states, ids.
//! 3. a state's `StateInner` mutex.
//!
//! Probe context takes none of them: it reads the probe table and ECB chains
//! through atomics; removals unlink first, `Platform::sync` second, free last.
//!
//! Probe context: only `Framework::probe_by_id` and `get()`.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use crate::abi::{DTRACE_PRIV_ALL, DTRACE_PRIV_KERNEL, DTRACE_PRIV_OWNER, DTRACE_PRIV_USER};
use crate::ecb::Ecb;
use crate::glob;
use crate::platform::{Errno, Platform};
use crate::provider::{ProbeDescription, ProviderAttributes, ProviderId, ProviderOps};
use crate::state::ConsumerState;

/// Probe-table geometry: `CHUNKS` lazily allocated chunks of `CHUNK` slots.
const CHUNK: usize = 1024;
const CHUNKS: usize = 4096;
/// Highest probe id the table can hold.
pub const MAX_PROBE_ID: u32 = (CHUNK * CHUNKS) as u32;

/// A registered provider.
pub struct Provider {
    pub name: Box<str>,
    pub attr: ProviderAttributes,
    pub privilege: u32,
    pub uid: u32,
    pub zoneid: u32,
    pub ops: Box<dyn ProviderOps>,
    /// Set by `dtrace_invalidate`: no new probes, enablings do not match.
    pub defunct: AtomicBool,
}

/// A probe. Immutable after creation except for its ECB chain.
pub struct Probe {
    pub id: u32,
    pub provider: *const Provider,
    pub module: Box<str>,
    pub function: Box<str>,
    pub name: Box<str>,
    pub aframes: i32,
    pub parg: usize,
    /// Head of this probe's ECB chain (all consumers), read in probe context.
    pub ecbs: AtomicPtr<Ecb>,
    /// Number of ECBs on the chain (modified under `Framework::lock`).
    pub necbs: AtomicU32,
    /// Creation generation (retained enablings only re-match newer probes).
    pub gen: u64,
    /// Predicate-cache id of the probe's only ECB (0 = none).
    pub predcache: AtomicU32,
}

impl Probe {
    /// The provider record (valid as long as the probe is).
    pub fn provider(&self) -> &Provider {
        // SAFETY: a provider outlives all its probes: unregister removes and
        // frees the probes (after a sync) before freeing the provider.
        unsafe { &*self.provider }
    }

    /// Whether the probe matches a description (empty fields match all).
    pub fn matches(&self, d: &ProbeDescription<'_>) -> bool {
        glob::field_matches(d.provider, &self.provider().name)
            && glob::field_matches(d.module, &self.module)
            && glob::field_matches(d.function, &self.function)
            && glob::field_matches(d.name, &self.name)
    }
}

/// State guarded by `Framework::lock`.
pub struct Core {
    pub providers: Vec<*mut Provider>,
    pub states: Vec<*const ConsumerState>,
    free_ids: BTreeSet<u32>,
    next_id: u32,
    pub nprobes: usize,
    /// Bumped for every probe created.
    pub probegen: u64,
    /// Exact-name index for `dtrace_probe_lookup`: (provider, "mod\0func\0name").
    by_name: BTreeMap<(usize, String), u32>,
}

fn name_key(provider: usize, module: &str, function: &str, name: &str) -> (usize, String) {
    (provider, alloc::format!("{module}\0{function}\0{name}"))
}

/// The framework singleton.
pub struct Framework {
    pub platform: &'static dyn Platform,
    pub ncpu: usize,
    pub provider_lock: spin::Mutex<()>,
    pub lock: spin::Mutex<Core>,
    chunks: Box<[AtomicPtr<[AtomicPtr<Probe>; CHUNK]>]>,
    pub opens: AtomicUsize,
    pub dtrace_provider: AtomicUsize,
    pub probe_begin: AtomicU32,
    pub probe_end: AtomicU32,
    pub probe_error: AtomicU32,
    /// Where each CPU's current firing entered the framework (`stack.rs`).
    pub entry_marks: crate::stack::EntryMarks,
}

static FRAMEWORK: AtomicPtr<Framework> = AtomicPtr::new(ptr::null_mut());

/// The attached framework, if any. *Probe context.*
#[inline]
pub fn get() -> Option<&'static Framework> {
    let p = FRAMEWORK.load(Ordering::Acquire);
    // SAFETY: the pointer is either null or the leaked `Box<Framework>` from
    // `install`, which is only freed by `uninstall` after it is unpublished
    // and every CPU has left probe context (see `uninstall`).
    unsafe { p.as_ref() }
}

/// Publishes `p` as the framework without any other effect. Only for the
/// link-time probe-context check (`tests/nopanic`), which must keep the
/// optimiser from proving the framework pointer always null.
///
/// # Safety
/// `p` must be null or point to a live `Framework` for as long as probes fire.
#[doc(hidden)]
pub unsafe fn publish_for_checks(p: *mut Framework) {
    FRAMEWORK.store(p, Ordering::Release);
}

/// Publishes a new framework; `EEXIST` if one is attached.
pub fn install(platform: &'static dyn Platform) -> Result<&'static Framework, Errno> {
    let mut chunks = Vec::new();
    chunks.resize_with(CHUNKS, || AtomicPtr::new(ptr::null_mut()));
    let fw = Box::new(Framework {
        platform,
        ncpu: platform.cpu_count().max(1),
        provider_lock: spin::Mutex::new(()),
        lock: spin::Mutex::new(Core {
            providers: Vec::new(),
            states: Vec::new(),
            free_ids: BTreeSet::new(),
            next_id: 1,
            nprobes: 0,
            probegen: 0,
            by_name: BTreeMap::new(),
        }),
        chunks: chunks.into_boxed_slice(),
        opens: AtomicUsize::new(0),
        dtrace_provider: AtomicUsize::new(0),
        probe_begin: AtomicU32::new(0),
        probe_end: AtomicU32::new(0),
        probe_error: AtomicU32::new(0),
        entry_marks: crate::stack::EntryMarks::new(platform.cpu_count()),
    });
    let raw = Box::into_raw(fw);
    if FRAMEWORK
        .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // SAFETY: `raw` came from `Box::into_raw` just above and was never published.
        drop(unsafe { Box::from_raw(raw) });
        return Err(Errno::EEXIST);
    }
    // SAFETY: just published; freed only by `uninstall`.
    Ok(unsafe { &*raw })
}

/// Unpublishes and frees the framework. The caller has checked there are no
/// consumers and no providers left.
pub fn uninstall() {
    let p = FRAMEWORK.swap(ptr::null_mut(), Ordering::AcqRel);
    if p.is_null() {
        return;
    }
    // SAFETY: `p` is the pointer `install` leaked; it is unpublished now.
    let fw = unsafe { Box::from_raw(p) };
    // Wait until no CPU can still be inside probe context holding `p`.
    fw.platform.sync();
    for c in fw.chunks.iter() {
        let chunk = c.swap(ptr::null_mut(), Ordering::AcqRel);
        if !chunk.is_null() {
            // SAFETY: chunks are allocated by `Box::into_raw` in `set_slot`.
            drop(unsafe { Box::from_raw(chunk) });
        }
    }
}

impl Framework {
    /// Probe `id`, if it exists. *Probe context* (lock-free, panic-free).
    #[inline]
    pub fn probe_by_id(&self, id: u32) -> Option<&Probe> {
        let idx = (id as usize).checked_sub(1)?;
        let chunk = self.chunks.get(idx / CHUNK)?.load(Ordering::Acquire);
        // SAFETY: a published chunk is never freed before `uninstall`.
        let chunk = unsafe { chunk.as_ref() }?;
        let p = chunk.get(idx % CHUNK)?.load(Ordering::Acquire);
        // SAFETY: a probe is freed only after being unpublished from its slot
        // and a `sync`, so a pointer read here stays valid for this probe
        // context / for the duration of the framework lock hold.
        unsafe { p.as_ref() }
    }

    fn set_slot(&self, id: u32, probe: *mut Probe) -> Result<(), Errno> {
        let idx = (id as usize).checked_sub(1).ok_or(Errno::EINVAL)?;
        let slot = self.chunks.get(idx / CHUNK).ok_or(Errno::ENOMEM)?;
        let mut chunk = slot.load(Ordering::Acquire);
        if chunk.is_null() {
            let fresh: Box<[AtomicPtr<Probe>; CHUNK]> =
                Box::new(core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())));
            chunk = Box::into_raw(fresh);
            slot.store(chunk, Ordering::Release);
        }
        // SAFETY: `chunk` is a live chunk (just created or previously published).
        let chunk = unsafe { &*chunk };
        chunk
            .get(idx % CHUNK)
            .ok_or(Errno::EINVAL)?
            .store(probe, Ordering::Release);
        Ok(())
    }

    /// Every live probe id, in order (ioctl context, under `lock`).
    pub fn for_each_probe(&self, _core: &Core, mut f: impl FnMut(&Probe) -> bool) {
        for c in self.chunks.iter() {
            let chunk = c.load(Ordering::Acquire);
            // SAFETY: see `probe_by_id`.
            let Some(chunk) = (unsafe { chunk.as_ref() }) else {
                continue;
            };
            for s in chunk.iter() {
                // SAFETY: see `probe_by_id`; the caller holds `lock`, so no
                // probe is freed meanwhile.
                if let Some(p) = unsafe { s.load(Ordering::Acquire).as_ref() } {
                    if !f(p) {
                        return;
                    }
                }
            }
        }
    }

    /// The first probe with id ≥ `id` (ioctl context, under `lock`).
    pub fn probe_at_or_after(
        &self,
        _core: &Core,
        id: u32,
        mut pred: impl FnMut(&Probe) -> bool,
    ) -> Option<&Probe> {
        let mut i = id.max(1);
        let hi = _core.next_id;
        while i < hi {
            if let Some(p) = self.probe_by_id(i) {
                if pred(p) {
                    return Some(p);
                }
            }
            i += 1;
        }
        None
    }

    /// Asks every provider (or the matching ones) to provide probes. Takes the
    /// provider lock; must be called without `lock` held.
    pub fn provide_all(&self, desc: Option<&ProbeDescription<'_>>) {
        let _pl = self.provider_lock.lock();
        let provs: Vec<*mut Provider> = self.lock.lock().providers.clone();
        for p in provs {
            // SAFETY: providers are only freed under `provider_lock`, which we hold.
            let prov = unsafe { &*p };
            if let Some(d) = desc {
                if !glob::field_matches(d.provider, &prov.name) {
                    continue;
                }
            }
            prov.ops.provide(ProviderId(p as usize), desc);
        }
    }

    /// Looks a provider up by exact name (under `lock`).
    pub fn provider_by_name<'a>(&self, core: &'a Core, name: &str) -> Option<&'a Provider> {
        core.providers
            .iter()
            // SAFETY: providers in the list are live while `lock` is held.
            .map(|&p| unsafe { &*p })
            .find(|p| &*p.name == name)
    }
}

fn provider_from_id<'a>(core: &Core, id: ProviderId) -> Option<&'a Provider> {
    let p = id.0 as *mut Provider;
    if core.providers.contains(&p) {
        // SAFETY: it is in the registry, hence live while the caller holds
        // `lock` (and in practice until unregister, which the owner calls).
        Some(unsafe { &*p })
    } else {
        None
    }
}

/// `dtrace_register`: registers a provider, validating it as FreeBSD does.
pub fn register(
    name: &str,
    attr: &ProviderAttributes,
    privilege: u32,
    owner: Option<(u32, u32)>,
    ops: Box<dyn ProviderOps>,
) -> Result<ProviderId, Errno> {
    let fw = get().ok_or(Errno::ENXIO)?;
    if name.is_empty() || name.len() >= crate::abi::DTRACE_PROVNAMELEN {
        return Err(Errno::EINVAL);
    }
    if !attr.is_valid() {
        return Err(Errno::EINVAL);
    }
    if privilege & !DTRACE_PRIV_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if privilege & DTRACE_PRIV_KERNEL != 0
        && privilege & (DTRACE_PRIV_USER | DTRACE_PRIV_OWNER) != 0
        && !ops.has_usermode()
    {
        return Err(Errno::EINVAL);
    }
    let (uid, zoneid) = owner.unwrap_or((0, 0));
    let prov = Box::into_raw(Box::new(Provider {
        name: name.into(),
        attr: *attr,
        privilege,
        uid,
        zoneid,
        ops,
        defunct: AtomicBool::new(false),
    }));
    let _pl = fw.provider_lock.lock();
    let mut core = fw.lock.lock();
    let taken = core.providers.iter().any(|&p| {
        // SAFETY: providers in the list are live under `lock`.
        let existing = unsafe { &*p };
        existing.name.as_ref() == name
    });
    if taken {
        drop(core);
        // SAFETY: `prov` was never published.
        drop(unsafe { Box::from_raw(prov) });
        return Err(Errno::EEXIST);
    }
    core.providers.push(prov);
    Ok(ProviderId(prov as usize))
}

/// Removes `probes` from the table, syncs, calls destroy and frees them.
/// Called with `lock` held (released for nothing; the sync needs no lock).
fn remove_probes(fw: &Framework, core: &mut Core, prov: &Provider, probes: Vec<*mut Probe>) {
    for &p in &probes {
        // SAFETY: live probe owned by the table.
        let probe = unsafe { &*p };
        let id = probe.id;
        core.by_name.remove(&name_key(
            probe.provider as usize,
            &probe.module,
            &probe.function,
            &probe.name,
        ));
        let _ = fw.set_slot(id, ptr::null_mut());
        core.free_ids.insert(id);
        core.nprobes = core.nprobes.saturating_sub(1);
    }
    fw.platform.sync();
    for p in probes {
        // SAFETY: unpublished and synced: no probe context can see it now.
        let probe = unsafe { Box::from_raw(p) };
        prov.ops.destroy(probe.id, probe.parg);
    }
}

fn probes_of(fw: &Framework, core: &Core, prov: *const Provider) -> Vec<*mut Probe> {
    let mut v = Vec::new();
    fw.for_each_probe(core, |p| {
        if p.provider == prov {
            v.push(p as *const Probe as *mut Probe);
        }
        true
    });
    v
}

/// `dtrace_unregister`: EBUSY while consumers are open and one of the
/// provider's probes has ECBs; otherwise removes its probes (destroy is called
/// for each) and the provider.
pub fn unregister(id: ProviderId) -> Result<(), Errno> {
    let fw = get().ok_or(Errno::ENXIO)?;
    let _pl = fw.provider_lock.lock();
    let mut core = fw.lock.lock();
    let prov = provider_from_id(&core, id).ok_or(Errno::EINVAL)?;
    let provp = prov as *const Provider;
    let probes = probes_of(fw, &core, provp);
    // SAFETY: live probes under `lock`.
    let busy = probes
        .iter()
        .any(|&p| unsafe { &*p }.necbs.load(Ordering::Relaxed) > 0);
    if busy {
        return Err(Errno::EBUSY);
    }
    remove_probes(fw, &mut core, prov, probes);
    core.providers.retain(|&p| !core::ptr::eq(p, provp));
    drop(core);
    // SAFETY: removed from the registry under both locks; its probes are gone.
    drop(unsafe { Box::from_raw(provp as *mut Provider) });
    Ok(())
}

/// `dtrace_invalidate`: marks the provider defunct.
pub fn invalidate(id: ProviderId) {
    if let Some(fw) = get() {
        let core = fw.lock.lock();
        if let Some(p) = provider_from_id(&core, id) {
            p.defunct.store(true, Ordering::Release);
        }
    }
}

/// `dtrace_condense`: removes the provider's probes that have no ECBs.
pub fn condense(id: ProviderId) -> Result<(), Errno> {
    let fw = get().ok_or(Errno::ENXIO)?;
    let mut core = fw.lock.lock();
    let prov = provider_from_id(&core, id).ok_or(Errno::EINVAL)?;
    let mut probes = probes_of(fw, &core, prov);
    // SAFETY: live probes under `lock`.
    probes.retain(|&p| unsafe { &*p }.necbs.load(Ordering::Relaxed) == 0);
    remove_probes(fw, &mut core, prov, probes);
    Ok(())
}

/// Like [`condense`], but only the provider's probes in `module`: what a
/// provider calls when that module goes away, so the unenabled probes of
/// other modules survive. Returns how many probes were removed.
pub fn condense_module(id: ProviderId, module: &str) -> Result<usize, Errno> {
    let fw = get().ok_or(Errno::ENXIO)?;
    let mut core = fw.lock.lock();
    let prov = provider_from_id(&core, id).ok_or(Errno::EINVAL)?;
    let mut probes = probes_of(fw, &core, prov);
    probes.retain(|&p| {
        // SAFETY: live probes under `lock`.
        let probe = unsafe { &*p };
        &*probe.module == module && probe.necbs.load(Ordering::Relaxed) == 0
    });
    let n = probes.len();
    remove_probes(fw, &mut core, prov, probes);
    Ok(n)
}

/// `dtrace_module_unloaded`: removes every probe of every provider whose
/// module is `module` (a trailing ".ko" is ignored, as FreeBSD strips it
/// from the file name), calling each provider's destroy. If any of those
/// probes has ECBs nothing is removed and the answer is EBUSY (FreeBSD
/// refuses the unload then). Returns how many probes were removed.
pub fn module_unloaded(module: &str) -> Result<usize, Errno> {
    let module = module.strip_suffix(".ko").unwrap_or(module);
    let fw = get().ok_or(Errno::ENXIO)?;
    let _pl = fw.provider_lock.lock();
    let mut core = fw.lock.lock();
    let mut doomed: Vec<*mut Probe> = Vec::new();
    fw.for_each_probe(&core, |p| {
        if &*p.module == module {
            doomed.push(p as *const Probe as *mut Probe);
        }
        true
    });
    let enabled = doomed.iter().any(|&p| {
        // SAFETY: live probes under `lock`.
        unsafe { &*p }.necbs.load(Ordering::Relaxed) > 0
    });
    if enabled {
        return Err(Errno::EBUSY);
    }
    let n = doomed.len();
    let providers: Vec<*mut Provider> = core.providers.clone();
    for prov in providers {
        let (mine, rest): (Vec<_>, Vec<_>) = doomed
            .into_iter()
            // SAFETY: as above.
            .partition(|&p| core::ptr::eq(unsafe { &*p }.provider, prov));
        doomed = rest;
        if !mine.is_empty() {
            // SAFETY: registered providers stay alive while `lock` is held.
            remove_probes(fw, &mut core, unsafe { &*prov }, mine);
        }
    }
    Ok(n)
}

/// `dtrace_probe_create`: creates a probe, returns its id (lowest free id
/// first), or 0 if the provider is unknown/defunct or the table is full.
pub fn probe_create(
    id: ProviderId,
    module: &str,
    function: &str,
    name: &str,
    aframes: i32,
    parg: usize,
) -> u32 {
    let Some(fw) = get() else { return 0 };
    let mut core = fw.lock.lock();
    let Some(prov) = provider_from_id(&core, id) else {
        return 0;
    };
    if prov.defunct.load(Ordering::Acquire) {
        return 0;
    }
    let pid = match core.free_ids.pop_first() {
        Some(i) => i,
        None => {
            let i = core.next_id;
            if i > MAX_PROBE_ID {
                return 0;
            }
            core.next_id = i + 1;
            i
        }
    };
    let trunc = |s: &str, max: usize| -> Box<str> {
        let mut n = s.len().min(max - 1);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.get(..n).unwrap_or("").into()
    };
    let probe = Box::into_raw(Box::new(Probe {
        id: pid,
        provider: prov,
        module: trunc(module, crate::abi::DTRACE_MODNAMELEN),
        function: trunc(function, crate::abi::DTRACE_FUNCNAMELEN),
        name: trunc(name, crate::abi::DTRACE_NAMELEN),
        aframes,
        parg,
        ecbs: AtomicPtr::new(ptr::null_mut()),
        necbs: AtomicU32::new(0),
        gen: core.probegen,
        predcache: AtomicU32::new(0),
    }));
    if fw.set_slot(pid, probe).is_err() {
        // SAFETY: never published.
        drop(unsafe { Box::from_raw(probe) });
        core.free_ids.insert(pid);
        return 0;
    }
    core.nprobes += 1;
    core.probegen += 1;
    // SAFETY: just published; we hold the lock.
    let created = unsafe { &*probe };
    let key = name_key(id.0, &created.module, &created.function, &created.name);
    core.by_name.insert(key, pid);
    // Newly created probes may match retained enablings; the consumer
    // re-matches on ENABLE(NULL) as FreeBSD does (no implicit re-match here).
    pid
}

/// `dtrace_probe_lookup`: exact-name lookup within a provider; 0 if none.
pub fn probe_lookup(id: ProviderId, module: &str, function: &str, name: &str) -> u32 {
    let Some(fw) = get() else { return 0 };
    let core = fw.lock.lock();
    core.by_name
        .get(&name_key(id.0, module, function, name))
        .copied()
        .unwrap_or(0)
}

/// `dtrace_probe_arg`: the provider argument of probe `probe` (0 if unknown).
pub fn probe_arg(id: ProviderId, probe: u32) -> usize {
    let Some(fw) = get() else { return 0 };
    let _core = fw.lock.lock();
    match fw.probe_by_id(probe) {
        Some(p) if p.provider as usize == id.0 => p.parg,
        _ => 0,
    }
}

/// The probe's full name `provider:module:function:name` (diagnostics).
pub fn probe_full_name(p: &Probe) -> String {
    alloc::format!(
        "{}:{}:{}:{}",
        p.provider().name,
        p.module,
        p.function,
        p.name
    )
}
