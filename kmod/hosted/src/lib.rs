//! The hosted kernel: the framework and providers running inside a process.
//!
//! [`HostedKernel::get`] attaches the framework once per process to a
//! [`platform::HostedPlatform`] (OS threads acting as CPUs). Userland opens
//! it like `/dev/dtrace/dtrace`: [`HostedKernel::open`] gives a
//! [`HostedConsumer`] whose [`HostedConsumer::ioctl`] takes exactly what the
//! FreeBSD cdev gets — the command word and its `_IOC_SIZE` argument bytes,
//! with pointer-to-pointer arguments carrying this process's own addresses
//! (copyin/copyout check them and return EFAULT for bad ones).
//!
//! Probe context: none here (see `platform.rs` for the platform methods).

pub mod platform;
pub mod providers;

use std::sync::OnceLock;

pub use rdtrace_framework::platform::{Errno, ThreadIdentity};
use rdtrace_framework::{ConsumerHandle, Platform};

/// The in-process kernel (one per process).
pub struct HostedKernel {
    platform: &'static platform::HostedPlatform,
}

static KERNEL: OnceLock<Result<HostedKernel, Errno>> = OnceLock::new();

fn caller() -> ThreadIdentity {
    HostedKernel::get()
        .map(|k| k.platform.current_thread())
        .unwrap_or_default()
}

impl HostedKernel {
    /// The process's hosted kernel, attaching the framework on first use.
    pub fn get() -> Result<&'static HostedKernel, Errno> {
        KERNEL
            .get_or_init(|| {
                let platform: &'static platform::HostedPlatform =
                    Box::leak(Box::new(platform::HostedPlatform::new()));
                rdtrace_framework::attach(platform)?;
                // The hosted providers (profile/tick, the hosted syscall
                // layer, sdt from this process's own linker sets).
                providers::registered(platform)?;
                Ok(HostedKernel { platform })
            })
            .as_ref()
            .map_err(|e| *e)
    }

    /// The platform (virtual CPUs, clocks).
    pub fn platform(&self) -> &'static platform::HostedPlatform {
        self.platform
    }

    /// `open("/dev/dtrace/dtrace")`: a new consumer.
    pub fn open(&self) -> Result<HostedConsumer, Errno> {
        let handle = rdtrace_framework::consumer_open(&self.platform.current_thread())?;
        Ok(HostedConsumer { handle })
    }

    /// An ioctl on `/dev/dtrace/helper`.
    pub fn helper_ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        rdtrace_framework::helper_ioctl(cmd, arg, &self.platform.current_thread())
    }
}

/// One open of the hosted `/dev/dtrace/dtrace`; closing = dropping it.
pub struct HostedConsumer {
    handle: ConsumerHandle,
}

impl HostedConsumer {
    /// `ioctl(fd, cmd, arg)`: `arg` holds the `_IOC_SIZE(cmd)` bytes (for
    /// pointer-to-pointer commands, the user address in the first 8 bytes).
    pub fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), Errno> {
        rdtrace_framework::consumer_ioctl(&self.handle, cmd, arg, &caller())
    }

    /// Like [`HostedConsumer::ioctl`] but with a raw argument pointer, as a
    /// C `ioctl(2)` call site has it.
    ///
    /// # Safety
    /// `arg` must point to `_IOC_SIZE(cmd)` readable and writable bytes.
    pub unsafe fn ioctl_raw(&self, cmd: u32, arg: *mut u8) -> Result<(), Errno> {
        let len = ((cmd >> 16) & 0x1fff) as usize;
        if arg.is_null() {
            return Err(Errno::EFAULT);
        }
        // SAFETY: the caller guarantees `len` valid bytes at `arg`.
        let slice = unsafe { std::slice::from_raw_parts_mut(arg, len) };
        self.ioctl(cmd, slice)
    }

    /// Why the last DOF given to ENABLE was rejected ("" if it was not).
    pub fn last_dof_error(&self) -> String {
        self.handle.last_dof_error()
    }
}
