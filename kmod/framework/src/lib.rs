//! The DTrace framework: everything between a provider calling `dtrace_probe()`
//! and a consumer issuing `DTRACEIOC_*` ioctls.
//!
//! Entry points (re-exported here, used by the FreeBSD cdev in `kmod/module`
//! and by the hosted device in `kmod/hosted`): [`attach`], [`detach`],
//! [`consumer_open`], [`consumer_ioctl`], [`consumer_close`],
//! [`helper_ioctl`]; providers use [`registry`] (`register`, `probe_create`,
//! ...) and [`dtrace_probe`]. See docs/architecture.md for the probe-context
//! rules and the lock order.
#![no_std]
extern crate alloc;

pub mod abi;
pub mod agg;
pub mod buffer;
pub mod bytes;
pub mod cabi;
pub mod consumer;
pub mod dif;
pub mod dof;
pub mod dtrace_provider;
pub mod ecb;
pub mod firing;
pub mod glob;
pub mod ioctl;
pub mod platform;
pub mod provider;
pub mod registry;
pub mod run;
pub mod spec;
pub mod stack;
pub mod state;

pub use firing::dtrace_probe;
pub use platform::{Errno, Platform, PlatformTimers, ThreadIdentity};
pub use provider::{
    ArgDesc, Attribute, ProbeDescription, ProviderAttributes, ProviderId, ProviderOps,
};

use core::sync::atomic::Ordering;

/// Attaches the framework to `platform` (MOD_LOAD / hosted start) and
/// registers the dtrace provider (BEGIN=1, END=2, ERROR=3).
pub fn attach(platform: &'static dyn Platform) -> Result<(), Errno> {
    let fw = registry::install(platform)?;
    if let Err(e) = dtrace_provider::register(fw) {
        registry::uninstall();
        return Err(e);
    }
    Ok(())
}

/// Detaches the framework: EBUSY while consumers are open or providers
/// other than dtrace are still registered.
pub fn detach() -> Result<(), Errno> {
    let fw = registry::get().ok_or(Errno::ENXIO)?;
    if fw.opens.load(Ordering::Acquire) != 0 {
        return Err(Errno::EBUSY);
    }
    let dtrace = fw.dtrace_provider.load(Ordering::Acquire);
    {
        let core = fw.lock.lock();
        if core.providers.iter().any(|&p| p as usize != dtrace) {
            return Err(Errno::EBUSY);
        }
    }
    registry::unregister(ProviderId(dtrace))?;
    registry::uninstall();
    Ok(())
}

/// One open of `/dev/dtrace/dtrace`: owns a consumer state.
pub struct ConsumerHandle {
    state: *const state::ConsumerState,
}

// SAFETY: the state is internally synchronised (see state.rs).
unsafe impl Send for ConsumerHandle {}
// SAFETY: as above.
unsafe impl Sync for ConsumerHandle {}

impl ConsumerHandle {
    /// The raw pointer to keep in `devfs_set_cdevpriv`.
    pub fn into_raw(self) -> *mut core::ffi::c_void {
        let p = self.state as *mut core::ffi::c_void;
        core::mem::forget(self);
        p
    }

    /// Rebuilds the handle from `into_raw`'s pointer.
    ///
    /// # Safety
    /// `p` must come from `into_raw` and not have been rebuilt before (the
    /// rebuilt handle owns the state; close it exactly once).
    pub unsafe fn from_raw(p: *mut core::ffi::c_void) -> ConsumerHandle {
        ConsumerHandle {
            state: p as *const state::ConsumerState,
        }
    }

    fn state(&self) -> &state::ConsumerState {
        // SAFETY: the handle owns a live state until `consumer_close`.
        unsafe { &*self.state }
    }

    /// The message explaining why the last DOF was rejected ("" if none).
    pub fn last_dof_error(&self) -> alloc::string::String {
        self.state().inner.lock().last_error.clone()
    }
}

/// Opens a consumer (`dtrace_open`).
pub fn consumer_open(caller: &ThreadIdentity) -> Result<ConsumerHandle, Errno> {
    let fw = registry::get().ok_or(Errno::ENXIO)?;
    let state = consumer::open(fw, caller)?;
    Ok(ConsumerHandle { state })
}

/// One `DTRACEIOC_*` ioctl: `arg` is the `_IOC_SIZE(cmd)` argument bytes.
pub fn consumer_ioctl(
    handle: &ConsumerHandle,
    cmd: u32,
    arg: &mut [u8],
    caller: &ThreadIdentity,
) -> Result<(), Errno> {
    let fw = registry::get().ok_or(Errno::ENXIO)?;
    ioctl::consumer_ioctl(fw, handle.state(), cmd, arg, caller)
}

/// Closes a consumer: tears its state down.
pub fn consumer_close(handle: ConsumerHandle) {
    let p = handle.state;
    core::mem::forget(handle);
    if let Some(fw) = registry::get() {
        consumer::close(fw, p);
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        if let Some(fw) = registry::get() {
            consumer::close(fw, self.state);
        }
    }
}

/// One `DTRACEHIOC_*` ioctl on `/dev/dtrace/helper`.
pub fn helper_ioctl(cmd: u32, arg: &mut [u8], caller: &ThreadIdentity) -> Result<(), Errno> {
    let fw = registry::get().ok_or(Errno::ENXIO)?;
    ioctl::helper_ioctl(fw, cmd, arg, caller)
}
