//! Where a consumer's ioctls go: the kernel's `/dev/dtrace/dtrace` or the
//! hosted kernel inside this process.
//!
//! Both speak exactly the same ABI: a command word and the `_IOC_SIZE(cmd)`
//! argument bytes, with pointer-to-pointer commands carrying addresses of
//! this process's memory. The rest of the consumer never knows which one it
//! talks to.

use std::fmt;
use std::io;

/// The path of the DTrace control device on FreeBSD.
pub const DTRACE_DEVICE_PATH: &str = "/dev/dtrace/dtrace";

/// An errno returned by an ioctl, with the command that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlError {
    pub cmd: u32,
    pub errno: i32,
}

impl IoctlError {
    /// The errno as an `io::Error`, whose Display is the C library's text
    /// (`Device busy`, `Invalid argument`, …) as libdtrace prints it.
    pub fn as_io_error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

impl fmt::Display for IoctlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", errno_text(self.errno))
    }
}

impl std::error::Error for IoctlError {}

/// The C library's message for `errno`, without the " (os error N)" suffix
/// Rust's `io::Error` appends.
pub fn errno_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// A DTrace control device: one consumer state, driven by ioctls.
pub trait Device {
    /// Issue `cmd` with its argument bytes (exactly `ioc_len(cmd)` long).
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), IoctlError>;

    /// How to name this device in messages (`/dev/dtrace/dtrace`, `hosted kernel`).
    fn describe(&self) -> &str;

    /// Whether this is the in-process hosted kernel.
    fn is_hosted(&self) -> bool;

    /// How many CPU buffers the kernel behind this device has: its highest
    /// CPU id plus one. The consumer snapshots CPUs `0..cpu_count()`
    /// (absent ones answer `ENOENT` and are skipped). The default asks the
    /// system the device node belongs to ([`system_cpu_count`]).
    fn cpu_count(&self) -> u32 {
        system_cpu_count()
    }
}

/// The running system's CPU count as libdtrace derives it: on FreeBSD
/// `kern.smp.maxid + 1` (CPU ids may be sparse; absent ones are skipped);
/// elsewhere `sysconf(_SC_NPROCESSORS_CONF)` — a `/dev/dtrace/dtrace` on a
/// non-FreeBSD host only exists under an interposing shim (the KPI
/// harness), which answers that call with its own CPU count.
pub fn system_cpu_count() -> u32 {
    #[cfg(target_os = "freebsd")]
    {
        let mut maxid: libc::c_int = 0;
        let mut len = core::mem::size_of::<libc::c_int>();
        // SAFETY: the name is a NUL-terminated C string; `maxid`/`len`
        // describe a writable int-sized buffer, the sysctl's type.
        let rc = unsafe {
            libc::sysctlbyname(
                c"kern.smp.maxid".as_ptr(),
                (&mut maxid as *mut libc::c_int).cast(),
                &mut len,
                core::ptr::null(),
                0,
            )
        };
        if rc == 0 && maxid >= 0 {
            return (maxid as u32).saturating_add(1);
        }
    }
    // SAFETY: sysconf takes a plain integer name and has no preconditions.
    let configured = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    u32::try_from(configured)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// `/dev/dtrace/dtrace`, opened read-write; closing the descriptor destroys
/// the consumer state in the kernel.
pub struct KernelDevice {
    file: std::fs::File,
}

impl KernelDevice {
    /// Open the control device. `ENOENT` means no DTrace kernel module is loaded.
    pub fn open() -> io::Result<KernelDevice> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(DTRACE_DEVICE_PATH)?;
        Ok(KernelDevice { file })
    }

    /// Whether the node exists at all (the FreeBSD/hosted decision).
    pub fn exists() -> bool {
        std::path::Path::new(DTRACE_DEVICE_PATH).exists()
    }
}

impl Device for KernelDevice {
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), IoctlError> {
        use std::os::fd::AsRawFd;
        debug_assert_eq!(arg.len(), rdtrace_ffi::ioctl::ioc_len(cmd));
        // FreeBSD's generic ioctl layer copies ioc_len(cmd) bytes in and out
        // of the pointer we pass; `arg` is exactly that long. libdtrace
        // passes the command as a 32-bit value widened to u_long.
        // SAFETY: the descriptor is open for the life of `self`, and `arg`
        // is a valid writable buffer of the length the command encodes.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                cmd as _,
                arg.as_mut_ptr().cast::<libc::c_void>(),
            )
        };
        if rc == -1 {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            return Err(IoctlError { cmd, errno });
        }
        Ok(())
    }

    fn describe(&self) -> &str {
        DTRACE_DEVICE_PATH
    }

    fn is_hosted(&self) -> bool {
        false
    }
}

/// The hosted kernel: rdtrace's framework and providers inside this process,
/// for hosts without `/dev/dtrace/dtrace`.
pub struct HostedDevice {
    consumer: rdtrace_hosted::HostedConsumer,
}

impl HostedDevice {
    /// Start (once per process) the hosted kernel and open a consumer on it.
    pub fn open() -> Result<HostedDevice, IoctlError> {
        let fail = |e: rdtrace_hosted::Errno| IoctlError { cmd: 0, errno: e.0 };
        let kernel = rdtrace_hosted::HostedKernel::get().map_err(fail)?;
        Ok(HostedDevice {
            consumer: kernel.open().map_err(fail)?,
        })
    }

    /// Why the hosted kernel rejected the last DOF it was given.
    pub fn last_dof_error(&self) -> String {
        self.consumer.last_dof_error()
    }
}

impl Device for HostedDevice {
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<(), IoctlError> {
        self.consumer
            .ioctl(cmd, arg)
            .map_err(|e| IoctlError { cmd, errno: e.0 })
    }

    fn describe(&self) -> &str {
        "hosted kernel"
    }

    fn is_hosted(&self) -> bool {
        true
    }

    /// The hosted kernel's virtual CPUs (one buffer each).
    fn cpu_count(&self) -> u32 {
        use rdtrace_framework::platform::Platform;
        rdtrace_hosted::HostedKernel::get()
            .map(|k| u32::try_from(k.platform().cpu_count()).unwrap_or(u32::MAX))
            .unwrap_or(1)
    }
}

/// Open the device a consumer should use: `/dev/dtrace/dtrace` when it
/// exists (never silently replaced on FreeBSD), otherwise the hosted kernel.
pub fn open_default() -> Result<Box<dyn Device>, String> {
    if KernelDevice::exists() {
        return KernelDevice::open()
            .map(|d| Box::new(d) as Box<dyn Device>)
            .map_err(|e| {
                format!(
                    "failed to initialize dtrace: {DTRACE_DEVICE_PATH}: {}",
                    errno_text(e.raw_os_error().unwrap_or(libc::EIO))
                )
            });
    }
    HostedDevice::open()
        .map(|d| Box::new(d) as Box<dyn Device>)
        .map_err(|e| format!("failed to initialize dtrace: hosted kernel: {e}"))
}
