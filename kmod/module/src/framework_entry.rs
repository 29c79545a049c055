//! The framework entry points the module's event handler and devices call.
//!
//! The consumer and helper entry points are the framework's own
//! (`rdtrace_framework::{consumer_open, consumer_ioctl, consumer_close,
//! helper_ioctl}`); [`attach`] and [`detach`] bind the framework to the
//! FreeBSD platform at MOD_LOAD and release it at MOD_UNLOAD. Not probe
//! context: everything here runs in the sleepable context of kldload,
//! kldunload, open(2), ioctl(2) and close(2).

pub use rdtrace_framework::{
    consumer_close, consumer_ioctl, consumer_open, helper_ioctl, ConsumerHandle,
};

use rdtrace_framework::platform::Errno;

/// MOD_LOAD: bind the framework to the FreeBSD platform and register the
/// dtrace provider (BEGIN, END, ERROR).
#[cfg(target_os = "none")]
pub fn attach() -> Result<(), Errno> {
    rdtrace_framework::attach(&crate::platform::PLATFORM)
}

/// MOD_UNLOAD: EBUSY while consumers are open or other providers are still
/// registered; otherwise the framework frees everything it allocated.
pub fn detach() -> Result<(), Errno> {
    rdtrace_framework::detach()
}
