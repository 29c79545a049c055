//! The module event handler: what happens on kldload and kldunload.
//!
//! * MOD_LOAD: verify the per-CPU layout the platform relies on, install the
//!   fault hook (EBUSY with a console message if another DTrace owns
//!   `dtrace_trap_func`), attach the
//!   framework (which registers the dtrace provider), register the module's
//!   providers (see `providers`), then create
//!   /dev/dtrace/dtrace and /dev/dtrace/helper. Any failure undoes the steps
//!   already taken and fails the load with that errno (EEXIST, with a console
//!   message, when stock dtrace.ko already owns /dev/dtrace/dtrace).
//! * MOD_QUIESCE / MOD_UNLOAD: EBUSY while a consumer holds
//!   /dev/dtrace/dtrace open; otherwise destroy the devices, unregister and
//!   free the providers and detach the framework, which frees everything it
//!   allocated.
//! * MOD_SHUTDOWN: nothing to do.
//!
//! Runs in the sleepable context of kldload/kldunload, never in probe context.

/// Decision for an unload request, given how many consumers are open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnloadDecision {
    /// Refuse with EBUSY.
    Busy,
    /// Go ahead.
    Proceed,
}

/// MOD_QUIESCE and MOD_UNLOAD are refused while consumers are open.
pub const fn unload_decision(open_consumers: usize) -> UnloadDecision {
    if open_consumers > 0 {
        UnloadDecision::Busy
    } else {
        UnloadDecision::Proceed
    }
}

/// errno values the handler returns.
pub const EBUSY: i32 = 16;
pub const EOPNOTSUPP: i32 = 45;

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::*;
    use core::ffi::{c_int, c_void};

    use rdtrace_ffi::kpi::{self, moduledata_t, MOD_LOAD, MOD_QUIESCE, MOD_SHUTDOWN, MOD_UNLOAD};
    use rdtrace_framework::platform::Errno;

    use crate::cdev::{create_devices, destroy_devices, OPEN_CONSUMERS};
    use crate::console::console;
    use crate::framework_entry as framework;
    use crate::malloc::SleepableScope;
    use crate::metadata::{KernelRecord, MODULE_NAME};
    use crate::platform::PLATFORM;
    use crate::providers::{attach_providers, detach_providers, registered_providers_missing};
    use crate::release::TARGET_RELEASE;

    /// The moduledata_t DECLARE_MODULE would define: name, handler, no argument.
    pub static MODULE_DATA: KernelRecord<moduledata_t> = KernelRecord(moduledata_t {
        name: MODULE_NAME.as_ptr(),
        evhand: Some(rdtrace_modevent),
        priv_: core::ptr::null_mut(),
    });

    /// Remove the fault hook.
    fn uninstall_trap_hook() {
        crate::nofault::uninstall();
    }

    fn load() -> c_int {
        if let Err(Errno(error)) = PLATFORM.init() {
            console(format_args!(
                "this kernel's struct pcpu layout is not one rdtrace knows \
                 (built for FreeBSD {}.{}); rebuild with the right FREEBSD_RELEASE",
                TARGET_RELEASE.major, TARGET_RELEASE.minor
            ));
            return error;
        }
        if let Err(Errno(error)) = crate::nofault::install() {
            console(format_args!(
                "dtrace_trap_func is already set: another DTrace (the stock \
                 dtrace.ko) is loaded; unload it first (kldunload dtraceall dtrace)"
            ));
            return error;
        }
        if let Err(Errno(error)) = framework::attach() {
            console(format_args!(
                "framework initialisation failed (error {error})"
            ));
            uninstall_trap_hook();
            return error;
        }
        if let Err(Errno(error)) = attach_providers() {
            console(format_args!(
                "registering the providers failed (error {error})"
            ));
            let _ = framework::detach();
            uninstall_trap_hook();
            crate::static_arena::release_arena();
            return error;
        }
        if let Err(error) = create_devices() {
            // Nothing can have opened the devices, so nothing is busy.
            let _ = detach_providers();
            let _ = framework::detach();
            uninstall_trap_hook();
            crate::static_arena::release_arena();
            return error;
        }
        0
    }

    fn unload() -> c_int {
        if unload_decision(OPEN_CONSUMERS.count()) == UnloadDecision::Busy {
            return EBUSY;
        }
        // No new opens after this; destroy_dev also runs the destructor of a
        // file opened since the check above, so no consumer state survives.
        destroy_devices();
        let detached = detach_providers().and_then(|()| framework::detach());
        match detached {
            Ok(()) => {
                uninstall_trap_hook();
                // Nothing refers to module-lifetime objects any more; their
                // statics vanish with the module's memory.
                crate::static_arena::release_arena();
                0
            }
            Err(Errno(error)) => {
                // Still in use (another module's provider is registered):
                // stay loaded and usable.
                if registered_providers_missing() {
                    let _ = attach_providers();
                }
                let _ = create_devices();
                error
            }
        }
    }

    /// The module event handler (moduledata_t.evhand).
    unsafe extern "C" fn rdtrace_modevent(
        _module: kpi::module_t,
        what: c_int,
        _arg: *mut c_void,
    ) -> c_int {
        let _sleepable = SleepableScope::enter();
        match what as u32 {
            MOD_LOAD => load(),
            MOD_QUIESCE => match unload_decision(OPEN_CONSUMERS.count()) {
                UnloadDecision::Busy => EBUSY,
                UnloadDecision::Proceed => 0,
            },
            MOD_UNLOAD => unload(),
            MOD_SHUTDOWN => 0,
            _ => EOPNOTSUPP,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unload_is_refused_while_consumers_are_open() {
        assert_eq!(unload_decision(0), UnloadDecision::Proceed);
        assert_eq!(unload_decision(1), UnloadDecision::Busy);
        assert_eq!(unload_decision(usize::MAX), UnloadDecision::Busy);
        assert_eq!(EBUSY, 16);
    }
}
