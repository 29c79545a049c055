//! The framework entry points the module's event handler and devices call.
//!
//! This is the agreed interface of `rdtrace_framework` (attach/detach,
//! consumer open/ioctl/close, helper ioctl). Until the framework publishes it,
//! these module-local stand-ins refuse everything with ENXIO ("device not
//! configured"), so the module loads, creates its devices and unloads, but
//! every open of /dev/dtrace/dtrace fails cleanly. Not probe context.

use core::ffi::c_void;

use rdtrace_framework::platform::{Errno, ThreadIdentity};

/// errno 6: the framework behind the device is not there yet.
pub const ENXIO: Errno = Errno(6);

/// One consumer's state, owned by the open file (devfs cdevpriv).
pub struct ConsumerHandle {
    raw: *mut c_void,
}

impl ConsumerHandle {
    /// Give up ownership, for devfs_set_cdevpriv().
    pub fn into_raw(self) -> *mut c_void {
        self.raw
    }

    /// Take back ownership of a pointer made by [`ConsumerHandle::into_raw`].
    ///
    /// # Safety
    /// `raw` must come from `into_raw` and be taken back at most once.
    pub unsafe fn from_raw(raw: *mut c_void) -> ConsumerHandle {
        ConsumerHandle { raw }
    }
}

/// MOD_LOAD: register the dtrace provider and get ready for consumers.
pub fn attach() -> Result<(), Errno> {
    Ok(())
}

/// MOD_UNLOAD: EBUSY while any consumer state exists.
pub fn detach() -> Result<(), Errno> {
    Ok(())
}

/// A new open of /dev/dtrace/dtrace.
pub fn consumer_open(_caller: &ThreadIdentity) -> Result<ConsumerHandle, Errno> {
    Err(ENXIO)
}

/// A DTRACEIOC_* ioctl; `arg` is the kernel copy of the ioctl argument.
pub fn consumer_ioctl(
    _handle: &ConsumerHandle,
    _cmd: u32,
    _arg: &mut [u8],
    _caller: &ThreadIdentity,
) -> Result<(), Errno> {
    Err(ENXIO)
}

/// The last close of a consumer's file.
pub fn consumer_close(_handle: ConsumerHandle) {}

/// A DTRACEHIOC_* ioctl on /dev/dtrace/helper.
pub fn helper_ioctl(_cmd: u32, _arg: &mut [u8], _caller: &ThreadIdentity) -> Result<(), Errno> {
    Err(ENXIO)
}
