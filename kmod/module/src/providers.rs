//! The providers rdtrace.ko registers with its framework at MOD_LOAD and
//! removes at MOD_UNLOAD.
//!
//! Registered:
//! * `profile`: profile-N/tick-N probes on the platform's callout timers;
//! * `syscall`: entry/return probes for every named entry of the native
//!   `sysent[]`, fired through `systrace_probe_func` (see `systrace`);
//! * the SDT providers (`proc`, `sched`, `vfs`, … — one per provider name in
//!   the kernel's and modules' SDT linker sets), hot-patched tracepoints and
//!   `sdt_probe_func`, following module loads (see `sdt_kernel`);
//! * `fbt`: entry/return probes for the functions of the kernel and every
//!   module (rdtrace and DTrace excluded), breakpoints and the
//!   `dtrace_invop_jump_addr` trap hook (see `fbt_kernel`). Left out, with a
//!   console message, when another DTrace owns the hook.
//!
//! A provider whose kernel objects cannot be found is left out with a
//! console message; the others still load. Each provider is registered only
//! if it is not registered already, so a failed unload (EBUSY from one
//! provider with enabled probes) can re-register the ones it removed.
//!
//! The providers crate hands out leaked (`'static`) provider objects; after
//! a provider is unregistered and its hook removed nothing refers to them
//! any more, so unload reclaims them and the module leaves no allocation
//! behind.
//!
//! Module load/unload context only, never probe context.

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use alloc::boxed::Box;

    use rdtrace_framework::platform::{Errno, Platform};
    use rdtrace_framework::provider::ProviderId;
    use rdtrace_framework::registry;
    use rdtrace_providers::glue::{self, FrameworkHost};
    use rdtrace_providers::profile::ProfileProvider;
    use rdtrace_providers::syscall::freebsd::{
        clear_kernel_provider, set_kernel_provider, SysentTable,
    };
    use rdtrace_providers::syscall::SyscallProvider;

    use crate::console::console;
    use crate::fbt_kernel::{attach_fbt, detach_fbt, fbt_attached};
    use crate::platform::{FreeBsdPlatform, PLATFORM};
    use crate::sdt_kernel::{attach_sdt, detach_sdt, sdt_attached};
    use crate::systrace;

    type Host = FrameworkHost<FreeBsdPlatform>;

    struct SyscallRegistration {
        id: ProviderId,
        provider: &'static SyscallProvider,
        table: &'static SysentTable,
    }

    /// What MOD_LOAD registered.
    struct Registered {
        host: Option<&'static Host>,
        profile: Option<(ProviderId, &'static ProfileProvider)>,
        syscall: Option<SyscallRegistration>,
        /// Whether the syscall provider could be set up at all (false: the
        /// kernel's tables were not found; not "missing" after unload).
        syscall_available: bool,
        /// Whether fbt could install its trap hook (false: another owner).
        fbt_available: bool,
    }

    static REGISTERED: spin::Mutex<Registered> = spin::Mutex::new(Registered {
        host: None,
        profile: None,
        syscall: None,
        syscall_available: true,
        fbt_available: true,
    });

    fn register_syscall(registered: &mut Registered, host: &'static Host) -> Result<(), Errno> {
        if registered.syscall.is_some() || !registered.syscall_available {
            return Ok(());
        }
        let table = match systrace::sysent_table() {
            Ok(table) => table,
            Err(Errno(error)) => {
                console(format_args!(
                    "syscall provider not registered: the kernel's sysent/syscallnames \
                     sizes are unknown (error {error})"
                ));
                registered.syscall_available = false;
                return Ok(());
            }
        };
        match glue::register_syscall(host, table) {
            Ok((id, provider)) => {
                set_kernel_provider(provider);
                registered.syscall = Some(SyscallRegistration {
                    id,
                    provider,
                    table,
                });
                Ok(())
            }
            Err(e) => {
                // SAFETY: nothing else has seen the table.
                unsafe { systrace::free_sysent_table(table) };
                Err(e)
            }
        }
    }

    fn attach_locked(registered: &mut Registered) -> Result<(), Errno> {
        let host = match registered.host {
            Some(host) => host,
            None => {
                let host = FrameworkHost::leaked(&PLATFORM);
                registered.host = Some(host);
                host
            }
        };
        if registered.profile.is_none() {
            registered.profile = Some(glue::register_profile(host)?);
        }
        register_syscall(registered, host)?;
        attach_sdt(host)?;
        if registered.fbt_available && !fbt_attached() {
            match attach_fbt(host) {
                Ok(()) => {}
                Err(Errno::EBUSY) => {
                    console(format_args!(
                        "fbt provider not registered: dtrace_invop_jump_addr is owned \
                         by another DTrace"
                    ));
                    registered.fbt_available = false;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Register the providers (after the framework is attached). On failure
    /// everything registered so far is removed again.
    pub fn attach_providers() -> Result<(), Errno> {
        let mut registered = REGISTERED.lock();
        match attach_locked(&mut registered) {
            Ok(()) => Ok(()),
            Err(e) => {
                drop(registered);
                let _ = detach_providers();
                Err(e)
            }
        }
    }

    /// Whether a provider is not registered, e.g. after a failed unload
    /// unregistered some of them but the framework stayed attached.
    pub fn registered_providers_missing() -> bool {
        let registered = REGISTERED.lock();
        registered.profile.is_none()
            || (registered.syscall.is_none() && registered.syscall_available)
            || !sdt_attached()
            || (registered.fbt_available && !fbt_attached())
    }

    fn detach_syscall(registered: &mut Registered) -> Result<(), Errno> {
        let Some(syscall) = registered.syscall.as_ref() else {
            return Ok(());
        };
        registry::unregister(syscall.id)?;
        let syscall = registered.syscall.take();
        systrace::clear_hook();
        clear_kernel_provider();
        // A hook call that loaded the provider before the clear is inside
        // dtrace_probe or about to return; let it finish.
        PLATFORM.sync();
        if let Some(SyscallRegistration {
            provider, table, ..
        }) = syscall
        {
            // SAFETY: leaked by glue::register_syscall; unregistered, and the
            // hook no longer reaches it, so this is the last reference.
            drop(unsafe {
                Box::from_raw(provider as *const SyscallProvider as *mut SyscallProvider)
            });
            // SAFETY: only the provider just freed used the table.
            unsafe { systrace::free_sysent_table(table) };
        }
        Ok(())
    }

    fn detach_profile(registered: &mut Registered) -> Result<(), Errno> {
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
        Ok(())
    }

    /// Unregister the providers and free them. EBUSY (and that provider
    /// stays registered) while one of its probes is still enabled.
    pub fn detach_providers() -> Result<(), Errno> {
        let mut registered = REGISTERED.lock();
        detach_fbt()?;
        detach_sdt()?;
        detach_syscall(&mut registered)?;
        detach_profile(&mut registered)?;
        if let Some(host) = registered.host.take() {
            // SAFETY: `host` was leaked by FrameworkHost::leaked from a Box and
            // every provider using it has been freed above.
            drop(unsafe { Box::from_raw(host as *const Host as *mut Host) });
        }
        registered.syscall_available = true;
        registered.fbt_available = true;
        Ok(())
    }
}
