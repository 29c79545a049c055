//! The providers rdtrace.ko registers with its framework at MOD_LOAD and
//! removes at MOD_UNLOAD.
//!
//! Registered today: `profile` (profile-N/tick-N probes, driven by the
//! platform's callout timers). Not yet registered in the kernel module
//! (each needs FreeBSD glue that does not exist yet): `syscall` (the
//! `sysent` table and `systrace_probe_func`), `sdt` (linker-file sets and
//! `sdt_probe_func`, plus text patching) and `fbt` (linker-file symbols, the
//! invalid-opcode hook and text patching).
//!
//! The providers crate hands out leaked (`'static`) provider objects; after
//! a provider is unregistered nothing refers to them any more, so unload
//! reclaims them and the module leaves no allocation behind.
//!
//! Module load/unload context only, never probe context.

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use alloc::boxed::Box;

    use rdtrace_framework::platform::Errno;
    use rdtrace_framework::provider::ProviderId;
    use rdtrace_framework::registry;
    use rdtrace_providers::glue::{self, FrameworkHost};
    use rdtrace_providers::profile::ProfileProvider;

    use crate::platform::{FreeBsdPlatform, PLATFORM};

    type Host = FrameworkHost<FreeBsdPlatform>;

    /// What MOD_LOAD registered.
    struct Registered {
        host: Option<&'static Host>,
        profile: Option<(ProviderId, &'static ProfileProvider)>,
    }

    static REGISTERED: spin::Mutex<Registered> = spin::Mutex::new(Registered {
        host: None,
        profile: None,
    });

    /// Register the providers (after the framework is attached).
    pub fn attach_providers() -> Result<(), Errno> {
        let mut registered = REGISTERED.lock();
        let host = FrameworkHost::leaked(&PLATFORM);
        registered.host = Some(host);
        match glue::register_profile(host) {
            Ok(profile) => {
                registered.profile = Some(profile);
                Ok(())
            }
            Err(e) => {
                drop(registered);
                let _ = detach_providers();
                Err(e)
            }
        }
    }

    /// Whether the providers are not (all) registered, e.g. after a failed
    /// unload unregistered them but the framework stayed attached.
    pub fn registered_providers_missing() -> bool {
        REGISTERED.lock().profile.is_none()
    }

    /// Unregister the providers and free them. EBUSY (and nothing changed for
    /// that provider) while one of its probes is still enabled.
    pub fn detach_providers() -> Result<(), Errno> {
        let mut registered = REGISTERED.lock();
        if let Some((id, provider)) = registered.profile {
            registry::unregister(id)?;
            registered.profile = None;
            // SAFETY: `provider` was leaked by register_profile from a Box;
            // unregistering destroyed its probes (stopping their timers) and
            // dropped the framework's ops, so this is the last reference.
            drop(unsafe {
                Box::from_raw(provider as *const ProfileProvider as *mut ProfileProvider)
            });
        }
        if let Some(host) = registered.host.take() {
            // SAFETY: `host` was leaked by FrameworkHost::leaked from a Box and
            // every provider using it has been freed above.
            drop(unsafe { Box::from_raw(host as *const Host as *mut Host) });
        }
        Ok(())
    }
}
