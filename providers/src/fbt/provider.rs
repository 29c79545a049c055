//! The fbt provider proper, generic over the instruction set: enumerate the
//! functions of a module, create `entry`/`return` probes for those whose code
//! the [`Isa`] can instrument, write breakpoints on enable and restore the
//! original bytes on disable, and handle the breakpoint trap (fire, then
//! emulate the displaced instruction).
//!
//! Probes: provider `fbt`, module = the file's module name, function = the
//! symbol name, name `entry` (args = the argument registers) or `return`
//! (arg0 = offset of the return site in the function, arg1 = return value).
//! One return probe covers all of a function's return sites.
//!
//! The trap handler finds sites in an immutable, address-sorted snapshot
//! published through an atomic pointer: provide/destroy build a new snapshot,
//! publish it, `sync`, then free the old one, so the handler never locks.
//!
//! Probe context: [`FbtProvider::invop`] and [`FbtProvider::fire_site`].

use super::isa::{CodeValue, EmulationError, Isa, PatchSite, RegisterFile, SiteKind, StackMemory};
use crate::host::{ProviderHandle, ProviderHost};
use crate::text::TextWriter;
use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use rdtrace_framework::platform::Errno;

/// A function symbol of a module.
#[derive(Clone, Copy, Debug)]
pub struct FunctionSymbol<'a> {
    pub name: &'a str,
    pub addr: u64,
    pub size: u64,
}

/// Functions fbt must never instrument, whatever the module: the framework's
/// own (except the `dtrace_safe_*` helpers), the lock-owner helpers probe
/// context calls, fbt itself, and the trap paths of each architecture.
pub fn function_excluded(name: &str) -> bool {
    const EXACT: [&str; 10] = [
        "trap_check",
        "owner_mtx",
        "owner_rm",
        "owner_rw",
        "owner_sx",
        "unwind_frame",
        "handle_el1h_sync",
        "do_el1h_sync",
        "do_trap_supervisor",
        "cpu_exception_handler",
    ];
    (name.starts_with("dtrace_") && !name.starts_with("dtrace_safe_"))
        || name.starts_with("fbt_")
        || name.starts_with("cpu_exception_handler")
        || name.starts_with("rdtrace")
        || EXACT.contains(&name)
}

/// Modules fbt skips entirely: DTrace itself (stock or rdtrace).
pub fn module_excluded(file_name: &str) -> bool {
    file_name.starts_with("dtrace") || file_name.starts_with("rdtrace")
}

/// Write `value`'s `width` bytes at `addr`.
///
/// # Safety
/// As for [`TextWriter::write_text`].
unsafe fn write_value(text: &dyn TextWriter, addr: u64, value: &CodeValue) -> Result<(), Errno> {
    let bytes = value.bytes();
    let slice = bytes.get(..usize::from(value.width)).ok_or(Errno::EINVAL)?;
    // SAFETY: forwarded from the caller.
    unsafe { text.write_text(addr, slice) }
}

/// Upper bound on the bytes read for one function (larger ones are skipped).
pub const MAX_FUNCTION_BYTES: u64 = 1 << 20;

struct FbtProbe<E> {
    id: u32,
    /// Start address of the probed function.
    function: u64,
    sites: Vec<PatchSite<E>>,
    enabled: bool,
    /// Whether the breakpoints were ever written (only then can a trap
    /// handler still be looking at this probe's sites).
    ever_enabled: bool,
}

/// One patch site as the trap handler sees it.
#[derive(Clone, Copy)]
struct SiteEntry<E> {
    probe_id: u32,
    site: PatchSite<E>,
}

struct Snapshot<E> {
    /// Sorted by `site.addr`, addresses unique.
    sites: Vec<SiteEntry<E>>,
}

/// What the trap handler did with a breakpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invop {
    /// Not one of our sites: the kernel's normal breakpoint handling applies.
    NotOurs,
    /// Probe fired and the displaced instruction emulated.
    Emulated,
    /// Probe fired but emulation failed (bad stack); registers unchanged.
    Failed(EmulationError),
}

/// Statistics of one `provide_module` call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProvideStats {
    pub functions: usize,
    pub excluded: usize,
    /// Functions skipped because another symbol at the same address was
    /// instrumented already (or this module was provided before).
    pub aliases: usize,
    pub entry_probes: usize,
    pub return_probes: usize,
    pub return_sites: usize,
}

/// The fbt provider for instruction set `I`.
pub struct FbtProvider<I: Isa> {
    host: &'static dyn ProviderHost,
    text: &'static dyn TextWriter,
    handle: AtomicUsize,
    /// Probe records; a probe's parg is its index here.
    probes: spin::Mutex<Vec<Option<FbtProbe<I::Emulation>>>>,
    snapshot: AtomicPtr<Snapshot<I::Emulation>>,
    /// Start addresses of functions already instrumented, so aliases (two
    /// symbols for one function) never get a second set of sites.
    functions_seen: spin::Mutex<BTreeSet<u64>>,
}

impl<I: Isa> FbtProvider<I>
where
    I::Emulation: Send + Sync,
{
    pub fn new(host: &'static dyn ProviderHost, text: &'static dyn TextWriter) -> Self {
        FbtProvider {
            host,
            text,
            handle: AtomicUsize::new(0),
            probes: spin::Mutex::new(Vec::new()),
            snapshot: AtomicPtr::new(ptr::null_mut()),
            functions_seen: spin::Mutex::new(BTreeSet::new()),
        }
    }

    pub fn set_handle(&self, handle: ProviderHandle) {
        self.handle.store(handle, Ordering::Release);
    }

    /// Create the probes of one module's functions (those not created yet).
    pub fn provide_module<'a>(
        &self,
        module: &str,
        functions: impl IntoIterator<Item = FunctionSymbol<'a>>,
    ) -> ProvideStats {
        let mut stats = ProvideStats::default();
        let handle = self.handle.load(Ordering::Acquire);
        let mut code = Vec::new();
        for f in functions {
            stats.functions += 1;
            if function_excluded(f.name) || f.size == 0 || f.size > MAX_FUNCTION_BYTES {
                stats.excluded += 1;
                continue;
            }
            if !self.functions_seen.lock().insert(f.addr) {
                stats.aliases += 1;
                continue;
            }
            code.clear();
            code.resize(f.size as usize, 0);
            if self.text.read_text(f.addr, &mut code).is_err() {
                stats.excluded += 1;
                continue;
            }
            let entry = I::find_entry(&code, f.addr);
            let mut returns = Vec::new();
            I::find_returns(&code, f.addr, &mut |s| {
                if entry.is_none_or(|e| e.addr != s.addr) {
                    returns.push(s)
                }
            });
            // No dtrace_probe_lookup here: it scans every probe, and
            // `functions_seen` already keeps a function from being provided twice.
            if let Some(entry) = entry {
                if self.create(handle, module, f, "entry", vec![entry]) {
                    stats.entry_probes += 1;
                }
            }
            if !returns.is_empty() {
                let n = returns.len();
                if self.create(handle, module, f, "return", returns) {
                    stats.return_probes += 1;
                    stats.return_sites += n;
                }
            }
        }
        self.publish();
        stats
    }

    fn create(
        &self,
        handle: ProviderHandle,
        module: &str,
        function: FunctionSymbol<'_>,
        name: &str,
        sites: Vec<PatchSite<I::Emulation>>,
    ) -> bool {
        let parg = self.probes.lock().len();
        let id =
            self.host
                .probe_create(handle, module, function.name, name, I::AFRAMES as i32, parg);
        if id == 0 {
            return false;
        }
        let mut probes = self.probes.lock();
        // The index was reserved above; creation is serialised by the
        // framework's provider lock, so nobody else pushed meanwhile, but
        // place by index anyway to be robust.
        if probes.len() <= parg {
            probes.resize_with(parg + 1, || None);
        }
        if let Some(slot) = probes.get_mut(parg) {
            *slot = Some(FbtProbe {
                id,
                function: function.addr,
                sites,
                enabled: false,
                ever_enabled: false,
            });
        }
        true
    }

    /// Rebuild and publish the trap handler's snapshot; free the old one
    /// after a sync.
    fn publish(&self) {
        let mut sites: Vec<SiteEntry<I::Emulation>> = Vec::new();
        for probe in self.probes.lock().iter().flatten() {
            sites.extend(probe.sites.iter().map(|s| SiteEntry {
                probe_id: probe.id,
                site: *s,
            }));
        }
        sites.sort_by_key(|e| e.site.addr);
        sites.dedup_by_key(|e| e.site.addr);
        let fresh = Box::into_raw(Box::new(Snapshot { sites }));
        let old = self.snapshot.swap(fresh, Ordering::AcqRel);
        if !old.is_null() {
            self.host.sync();
            // SAFETY: `old` was published by a previous `publish` from
            // Box::into_raw; it is unpublished and, after the sync, no trap
            // handler still reads it.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// Number of patch sites the trap handler knows.
    pub fn site_count(&self) -> usize {
        // SAFETY: see `lookup`.
        unsafe { self.snapshot.load(Ordering::Acquire).as_ref() }.map_or(0, |s| s.sites.len())
    }

    /// `enable`: write the breakpoints of probe `parg`. Refuses (EBUSY) if a
    /// site no longer holds the bytes seen when the probe was created.
    pub fn enable(&self, _id: u32, parg: usize) -> Result<(), Errno> {
        let mut probes = self.probes.lock();
        let probe = probes
            .get_mut(parg)
            .and_then(Option::as_mut)
            .ok_or(Errno::EINVAL)?;
        if probe.enabled {
            return Ok(());
        }
        for site in &probe.sites {
            let mut now = [0u8; 4];
            let width = usize::from(site.original.width);
            let current = now.get_mut(..width).ok_or(Errno::EINVAL)?;
            self.text.read_text(site.addr, current)?;
            if site.original.bytes().get(..width) != Some(&*current) {
                return Err(Errno::EBUSY);
            }
        }
        for (done, site) in probe.sites.iter().enumerate() {
            // SAFETY: `site` was decoded from this function's code and the
            // breakpoint is no wider than the displaced instruction.
            if let Err(e) = unsafe { write_value(self.text, site.addr, &site.patch) } {
                for undo in probe.sites.iter().take(done) {
                    // SAFETY: restoring the bytes that were there before.
                    let _ = unsafe { write_value(self.text, undo.addr, &undo.original) };
                }
                return Err(e);
            }
        }
        probe.enabled = true;
        probe.ever_enabled = true;
        Ok(())
    }

    /// `disable`: restore the original bytes of probe `parg`'s sites.
    pub fn disable(&self, _id: u32, parg: usize) {
        let mut probes = self.probes.lock();
        let Some(probe) = probes.get_mut(parg).and_then(Option::as_mut) else {
            return;
        };
        if !probe.enabled {
            return;
        }
        for site in &probe.sites {
            // SAFETY: writing back exactly the bytes the breakpoint replaced.
            let _ = unsafe { write_value(self.text, site.addr, &site.original) };
        }
        probe.enabled = false;
    }

    /// `destroy`: forget probe `parg` (already disabled by the framework).
    /// The trap handler's snapshot is rebuilt (one sync) only if the probe's
    /// breakpoints were ever written: sites that never held a breakpoint
    /// cannot trap, so removing thousands of never-enabled probes (a
    /// condense after a module unload) costs no sync each.
    pub fn destroy(&self, id: u32, parg: usize) {
        self.disable(id, parg);
        let was_patched = match self.probes.lock().get_mut(parg) {
            Some(slot) => slot.take().is_some_and(|p| p.ever_enabled),
            None => false,
        };
        if was_patched {
            self.publish();
        }
    }

    /// Whether an enabled probe belongs to a function starting in
    /// `[start, end)` (a loaded file's range: it must not unload).
    pub fn enabled_in(&self, start: u64, end: u64) -> bool {
        self.probes
            .lock()
            .iter()
            .flatten()
            .any(|p| p.enabled && p.function >= start && p.function < end)
    }

    /// Forget which functions were decoded, except those that still have
    /// probes, so the next `provide_module` instruments them again (after
    /// probes were removed because a module unloaded).
    pub fn forget_unprobed_functions(&self) {
        let live: BTreeSet<u64> = self
            .probes
            .lock()
            .iter()
            .flatten()
            .map(|p| p.function)
            .collect();
        self.functions_seen.lock().retain(|f| live.contains(f));
    }

    fn lookup(&self, addr: u64) -> Option<&SiteEntry<I::Emulation>> {
        // SAFETY: the snapshot is null or published by `publish`, and freed
        // only after it is replaced and every CPU has left probe context.
        let snapshot = unsafe { self.snapshot.load(Ordering::Acquire).as_ref() }?;
        let index = snapshot
            .sites
            .binary_search_by_key(&addr, |e| e.site.addr)
            .ok()?;
        snapshot.sites.get(index)
    }

    /// Fire the probe of the site at `addr`, if it is ours, and return the
    /// site for the caller to emulate (the FreeBSD amd64 stub emulates
    /// `push %rbp` itself). *Probe context.*
    pub fn fire_site<R: RegisterFile<I::Reg>>(
        &self,
        addr: u64,
        regs: &R,
    ) -> Option<PatchSite<I::Emulation>> {
        let entry = self.lookup(addr)?;
        let args = match entry.site.kind {
            SiteKind::Entry => I::ARG_REGS.map(|r| regs.get(r)),
            SiteKind::Return => [
                u64::from(entry.site.offset),
                regs.get(I::RETVAL_REG),
                0,
                0,
                0,
            ],
        };
        self.host.probe(entry.probe_id, args);
        Some(entry.site)
    }

    /// The whole breakpoint handler: fire the probe of the site at `addr`
    /// and emulate its displaced instruction. *Probe context.*
    pub fn invop<R: RegisterFile<I::Reg>, M: StackMemory>(
        &self,
        addr: u64,
        regs: &mut R,
        mem: &mut M,
    ) -> Invop {
        let Some(site) = self.fire_site(addr, regs) else {
            return Invop::NotOurs;
        };
        match I::emulate(&site, regs, mem) {
            Ok(()) => Invop::Emulated,
            Err(e) => Invop::Failed(e),
        }
    }

    /// The probes created so far: (id, parg, is_entry, number of sites).
    pub fn probe_list(&self) -> Vec<(u32, usize, bool, usize)> {
        self.probes
            .lock()
            .iter()
            .enumerate()
            .filter_map(|(parg, p)| {
                p.as_ref().map(|p| {
                    (
                        p.id,
                        parg,
                        p.sites.first().is_some_and(|s| s.kind == SiteKind::Entry),
                        p.sites.len(),
                    )
                })
            })
            .collect()
    }

    /// Number of live probes.
    pub fn probe_count(&self) -> usize {
        self.probes.lock().iter().flatten().count()
    }
}

impl<I: Isa> Drop for FbtProvider<I> {
    fn drop(&mut self) {
        let probes = core::mem::take(&mut *self.probes.lock());
        for probe in probes.into_iter().flatten().filter(|p| p.enabled) {
            for site in &probe.sites {
                // SAFETY: restoring the bytes the breakpoint replaced.
                let _ = unsafe { write_value(self.text, site.addr, &site.original) };
            }
        }
        let old = self.snapshot.swap(ptr::null_mut(), Ordering::AcqRel);
        if !old.is_null() {
            self.host.sync();
            // SAFETY: unpublished and synced, as in `publish`.
            drop(unsafe { Box::from_raw(old) });
        }
    }
}
