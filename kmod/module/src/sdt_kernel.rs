//! The SDT providers' FreeBSD glue.
//!
//! * At MOD_LOAD: walk the SDT linker sets (`sdt_providers_set`,
//!   `sdt_probes_set`, `sdt_argtypes_set`, `sdt_tracepoint_set`) of the
//!   kernel and every loaded module, register one DTrace provider per
//!   distinct SDT provider name, point `sdt_probe_func` at
//!   [`rdtrace_sdt_probe`] (keeping the previous value to put back), and
//!   let the providers' gate hook drive `sdt_probes_enabled`. The hook's
//!   sixth argument (`sdt_probe6`) is kept per CPU while the probe fires
//!   (`rdtrace_providers::sdt::sixth_arg`) for `getargval(5)`.
//! * `kld_load` handler: create the probes of the newly loaded file
//!   (registering providers for new names). The kernel linker's lock is held
//!   there, so only that file is read (`linker_file_lookup_set`).
//! * `kld_unload_try` handler: EBUSY while a probe whose record lies in the
//!   file is enabled; otherwise the SDT providers are condensed (probes with
//!   no enabling are removed, so none points into the departing file; the
//!   remaining files' probes are created again by the next `provide`).
//! * `kld_unload` handler (the file is gone): condense once more, since a
//!   `provide` in between may have re-created the departing file's probes.
//! * Enabling stores the id in the probe record and hot-patches the probe's
//!   tracepoints through `kernel_text` (NOP ⇄ jump to the out-of-line block).
//!
//! Load/unload context, except [`rdtrace_sdt_probe`] (probe context).

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use alloc::boxed::Box;
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::ffi::{c_int, c_void};
    use core::sync::atomic::{AtomicUsize, Ordering};

    use rdtrace_ffi::kpi;
    use rdtrace_framework::platform::{Errno, Platform};
    use rdtrace_framework::provider::ProviderId;
    use rdtrace_framework::registry;
    use rdtrace_providers::glue::{self, SdtSource};
    use rdtrace_providers::host::ProviderHost;
    use rdtrace_providers::linker_files::{with_file_sets, KernelFiles, LinkerFile};
    use rdtrace_providers::sdt::{self, SdtProvider};

    use crate::kernel_files::{file_range, KpiLinkerFiles};
    use crate::kernel_text::KERNEL_TEXT;
    use crate::platform::PLATFORM;

    const EBUSY: c_int = 16;
    const ENOMEM: c_int = 12;

    type Source = KernelFiles<KpiLinkerFiles>;

    struct SdtState {
        host: &'static dyn ProviderHost,
        source: &'static Source,
        providers: Vec<(ProviderId, &'static SdtProvider)>,
        /// Provider names the framework refused (e.g. taken by another provider).
        refused: Vec<String>,
        previous_probe_func: usize,
        load_tag: kpi::eventhandler_tag,
        unload_try_tag: kpi::eventhandler_tag,
        unload_tag: kpi::eventhandler_tag,
    }

    // SAFETY: the raw eventhandler tags are opaque handles only passed back
    // to eventhandler_deregister; everything else is Sync.
    unsafe impl Send for SdtState {}

    static STATE: spin::Mutex<Option<SdtState>> = spin::Mutex::new(None);

    /// `sdt_probe_func`: fire DTrace probe `id`; the sixth argument is
    /// parked for `getargval(5)` on this CPU while it fires (the critical
    /// section keeps the thread there). *Probe context.*
    unsafe extern "C" fn rdtrace_sdt_probe(
        id: u32,
        a0: usize,
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
    ) {
        // SAFETY: critical sections nest and may be entered from any kernel
        // context; the exit below pairs with this enter.
        unsafe { kpi::rdtrace_shim_critical_enter() };
        sdt::sixth_arg::with_sixth_arg(PLATFORM.cpu_id(), a5 as u64, || {
            rdtrace_framework::dtrace_probe(
                id, a0 as u64, a1 as u64, a2 as u64, a3 as u64, a4 as u64,
            )
        });
        // SAFETY: pairs with the enter above.
        unsafe { kpi::rdtrace_shim_critical_exit() };
    }

    fn probe_func_slot() -> &'static AtomicUsize {
        // SAFETY: the kernel's pointer-sized hook variable, read racily by
        // probe sites by design.
        unsafe { &*(core::ptr::addr_of_mut!(kpi::sdt_probe_func) as *const AtomicUsize) }
    }

    /// The providers' gate: `sdt_probes_enabled` follows "any SDT probe enabled".
    fn gate(open: bool) {
        // SAFETY: the kernel's bool; a byte store.
        unsafe {
            core::ptr::write_volatile(core::ptr::addr_of_mut!(kpi::sdt_probes_enabled), open)
        };
    }

    /// Register providers for the names in `sets` not registered yet, then
    /// create the file's probes in every provider.
    fn provide_sets(state: &mut SdtState, sets: &sdt::LinkerSets<'_>) -> Result<(), Errno> {
        // SAFETY: the sets of a loaded file (see provide_file).
        let names: Vec<String> = unsafe { sdt::discover(sets) }
            .into_iter()
            .map(|p| p.provider)
            .collect();
        for name in names {
            if state.providers.iter().any(|(_, p)| p.name == name) || state.refused.contains(&name)
            {
                continue;
            }
            match glue::register_sdt(&name, state.host, &KERNEL_TEXT, state.source) {
                Ok(registered) => state.providers.push(registered),
                // A name another provider already has (or the framework
                // refuses): leave those probes out, keep the rest.
                Err(Errno(error)) if error != ENOMEM => {
                    crate::console::console(format_args!(
                        "sdt: provider {name} not registered (error {error}); its probes are left out"
                    ));
                    state.refused.push(name);
                }
                Err(e) => return Err(e),
            }
        }
        for (_, provider) in &state.providers {
            // SAFETY: the sets belong to a loaded file; its probes are
            // removed (condensed) before it unloads (kld_unload_try).
            unsafe { provider.provide_file(sets) };
        }
        Ok(())
    }

    unsafe extern "C" fn on_kld_load(_arg: *mut c_void, lf: kpi::linker_file_t) {
        let mut guard = STATE.lock();
        let Some(state) = guard.as_mut() else {
            return;
        };
        let source = state.source;
        let mut result = Ok(());
        with_file_sets(&source.linker, LinkerFile(lf as usize), &mut |sets| {
            result = provide_sets(state, sets);
        });
        if let Err(Errno(error)) = result {
            crate::console::console(format_args!(
                "sdt: probes of a loaded module not created (error {error})"
            ));
        }
    }

    unsafe extern "C" fn on_kld_unload_try(
        _arg: *mut c_void,
        lf: kpi::linker_file_t,
        error: *mut c_int,
    ) {
        // SAFETY: the kernel passes its error accumulator.
        if error.is_null() || unsafe { *error } != 0 {
            return;
        }
        let guard = STATE.lock();
        let Some(state) = guard.as_ref() else {
            return;
        };
        let (start, size) = file_range(LinkerFile(lf as usize));
        let end = start.saturating_add(size);
        if state
            .providers
            .iter()
            .any(|(_, p)| p.enabled_in(start, end))
        {
            // SAFETY: checked non-null above.
            unsafe { *error = EBUSY };
            return;
        }
        for (id, _) in &state.providers {
            let _ = registry::condense(*id);
        }
    }

    /// `kld_unload` (the file is gone): condense again, in case a
    /// `provide` between `kld_unload_try` and the unload re-created probes
    /// for the departing file.
    unsafe extern "C" fn on_kld_unload(
        _arg: *mut c_void,
        _filename: *const core::ffi::c_char,
        _address: *mut c_void,
        _size: usize,
    ) {
        let guard = STATE.lock();
        if let Some(state) = guard.as_ref() {
            for (id, _) in &state.providers {
                let _ = registry::condense(*id);
            }
        }
    }

    /// `EVENTHANDLER_REGISTER(name, func, NULL, EVENTHANDLER_PRI_ANY)`.
    pub fn register_handler(name: &core::ffi::CStr, func: *const ()) -> kpi::eventhandler_tag {
        // SAFETY: `name` is NUL-terminated; `func` has the event's handler
        // shape (checked by the callers' signatures).
        unsafe {
            kpi::eventhandler_register(
                core::ptr::null_mut(),
                name.as_ptr(),
                func as *mut c_void,
                core::ptr::null_mut(),
                kpi::EVENTHANDLER_PRI_ANY as c_int,
            )
        }
    }

    /// `EVENTHANDLER_DEREGISTER(name, tag)` (a null tag is ignored).
    pub fn deregister_handler(name: &core::ffi::CStr, tag: kpi::eventhandler_tag) {
        if tag.is_null() {
            return;
        }
        // SAFETY: `name` is NUL-terminated; the list lookup is what
        // EVENTHANDLER_DEREGISTER does before deregistering `tag`.
        unsafe {
            let list = kpi::eventhandler_find_list(name.as_ptr());
            if !list.is_null() {
                kpi::eventhandler_deregister(list, tag);
            }
        }
    }

    /// Register the SDT providers of every loaded file and install the hooks.
    pub fn attach_sdt(host: &'static dyn ProviderHost) -> Result<(), Errno> {
        let mut guard = STATE.lock();
        if guard.is_some() {
            return Ok(());
        }
        let source: &'static Source = Box::leak(Box::new(KernelFiles {
            linker: KpiLinkerFiles,
        }));
        let mut state = SdtState {
            host,
            source,
            providers: Vec::new(),
            refused: Vec::new(),
            previous_probe_func: 0,
            load_tag: core::ptr::null_mut(),
            unload_try_tag: core::ptr::null_mut(),
            unload_tag: core::ptr::null_mut(),
        };
        let mut result = Ok(());
        source.for_each_file(&mut |sets| {
            if result.is_ok() {
                result = provide_sets(&mut state, sets);
            }
        });
        if let Err(e) = result {
            free_state(state);
            return Err(e);
        }
        sdt::set_gate_hook(Some(gate));
        state.previous_probe_func =
            probe_func_slot().swap(rdtrace_sdt_probe as *const () as usize, Ordering::AcqRel);
        state.load_tag = register_handler(c"kld_load", on_kld_load as *const ());
        state.unload_try_tag = register_handler(c"kld_unload_try", on_kld_unload_try as *const ());
        state.unload_tag = register_handler(c"kld_unload", on_kld_unload as *const ());
        *guard = Some(state);
        Ok(())
    }

    fn free_state(state: SdtState) {
        for (_, provider) in state.providers {
            // SAFETY: leaked by glue::register_sdt; unregistered by the caller
            // (or never registered), so this is the last reference.
            drop(unsafe { Box::from_raw(provider as *const SdtProvider as *mut SdtProvider) });
        }
        // SAFETY: leaked in attach_sdt; no provider uses it any more.
        drop(unsafe { Box::from_raw(state.source as *const Source as *mut Source) });
    }

    /// Unregister the SDT providers (EBUSY, nothing changed, while one of
    /// their probes is enabled) and remove the hooks.
    pub fn detach_sdt() -> Result<(), Errno> {
        let mut guard = STATE.lock();
        let Some(state) = guard.as_mut() else {
            return Ok(());
        };
        if sdt::enabled_probe_count() != 0 {
            return Err(Errno::EBUSY);
        }
        while let Some((id, provider)) = state.providers.pop() {
            if let Err(e) = registry::unregister(id) {
                state.providers.push((id, provider));
                return Err(e);
            }
            // SAFETY: leaked by glue::register_sdt and now unregistered.
            drop(unsafe { Box::from_raw(provider as *const SdtProvider as *mut SdtProvider) });
        }
        deregister_handler(c"kld_load", state.load_tag);
        deregister_handler(c"kld_unload_try", state.unload_try_tag);
        deregister_handler(c"kld_unload", state.unload_tag);
        state.load_tag = core::ptr::null_mut();
        state.unload_try_tag = core::ptr::null_mut();
        state.unload_tag = core::ptr::null_mut();
        let ours = rdtrace_sdt_probe as *const () as usize;
        let _ = probe_func_slot().compare_exchange(
            ours,
            state.previous_probe_func,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        sdt::set_gate_hook(None);
        gate(false);
        // Let a probe site that loaded the hook before the swap finish.
        PLATFORM.sync();
        if let Some(state) = guard.take() {
            free_state(state);
        }
        Ok(())
    }

    /// Whether the SDT providers are registered.
    pub fn sdt_attached() -> bool {
        STATE.lock().is_some()
    }
}
