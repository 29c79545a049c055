//! The character devices: /dev/dtrace/dtrace (consumers, 0600 root:wheel) and
//! /dev/dtrace/helper (USDT helpers, 0660 root:wheel).
//!
//! Every open of /dev/dtrace/dtrace gets its own consumer state, attached to
//! the open file with devfs_set_cdevpriv(9); ioctls find it again with
//! devfs_get_cdevpriv(9), and the cdevpriv destructor (last close of that
//! file, or destroy_dev at unload) tears it down. No device cloning is used,
//! exactly like stock FreeBSD dtrace. The helper device has no per-open state.
//!
//! The generic ioctl layer has already copied the `_IOC` argument block in
//! (and copies it out afterwards), so handlers get a kernel slice of exactly
//! the encoded parameter length.
//!
//! These entry points run in a sleepable thread context, never in probe
//! context. Creation fails with EEXIST, and a console message naming the
//! likely cause, when /dev/dtrace/dtrace already exists (stock dtrace.ko).

use core::sync::atomic::{AtomicUsize, Ordering};

/// `IOCPARM_MASK`: the 13-bit parameter-length field of an ioctl command.
pub const IOCPARM_MASK: u32 = 0x1fff;

/// Length of the argument block the kernel copied for ioctl `cmd`.
pub const fn ioctl_arg_len(cmd: u32) -> usize {
    ((cmd >> 16) & IOCPARM_MASK) as usize
}

/// Device names below /dev and their permissions.
pub const DTRACE_DEVICE_NAME: &core::ffi::CStr = c"dtrace/dtrace";
pub const DTRACE_DEVICE_MODE: i32 = 0o600;
pub const HELPER_DEVICE_NAME: &core::ffi::CStr = c"dtrace/helper";
pub const HELPER_DEVICE_MODE: i32 = 0o660;

/// Number of consumer states alive (open files of /dev/dtrace/dtrace whose
/// destructor has not run). MOD_UNLOAD refuses with EBUSY while non-zero.
pub struct OpenConsumers(AtomicUsize);

impl OpenConsumers {
    pub const fn new() -> Self {
        OpenConsumers(AtomicUsize::new(0))
    }

    pub fn opened(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Record a close; never goes below zero.
    pub fn closed(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Default for OpenConsumers {
    fn default() -> Self {
        Self::new()
    }
}

/// Consumer states currently alive.
pub static OPEN_CONSUMERS: OpenConsumers = OpenConsumers::new();

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::*;
    use core::cell::UnsafeCell;
    use core::ffi::{c_char, c_int, c_ulong, c_void, CStr};
    use core::mem::ManuallyDrop;
    use core::ptr;
    use core::sync::atomic::AtomicPtr;

    use rdtrace_ffi::kpi;
    use rdtrace_framework::platform::{Errno, ThreadIdentity};

    use crate::console::console;
    use crate::framework_entry::{self as framework, ConsumerHandle};
    use crate::malloc::SleepableScope;

    const EEXIST: i32 = 17;
    const ENXIO: i32 = 6;

    /// A cdevsw the kernel writes to after make_dev (its private tail and
    /// D_INIT flag), hence interior mutability.
    #[repr(transparent)]
    pub struct DeviceSwitch(UnsafeCell<kpi::cdevsw>);

    // SAFETY: Rust code never touches the cdevsw after creating the devices;
    // the kernel serialises its own updates under its device lock.
    unsafe impl Sync for DeviceSwitch {}

    impl DeviceSwitch {
        const fn new(
            name: &'static CStr,
            open: Option<
                unsafe extern "C" fn(*mut kpi::cdev, c_int, c_int, *mut kpi::thread) -> c_int,
            >,
            ioctl: unsafe extern "C" fn(
                *mut kpi::cdev,
                c_ulong,
                kpi::caddr_t,
                c_int,
                *mut kpi::thread,
            ) -> c_int,
        ) -> Self {
            DeviceSwitch(UnsafeCell::new(kpi::cdevsw {
                d_version: kpi::D_VERSION as i32,
                d_flags: 0,
                d_name: name.as_ptr(),
                d_open: open,
                d_fdopen: None,
                d_close: None,
                d_read: None,
                d_write: None,
                d_ioctl: Some(ioctl),
                d_poll: None,
                d_mmap: None,
                d_strategy: None,
                d_spare0: ptr::null_mut(),
                d_kqfilter: None,
                d_purge: None,
                d_mmap_single: None,
                d_spare1: [0; 3],
                d_spare2: [ptr::null_mut(); 3],
                d_devs_first: ptr::null_mut(),
                d_spare3: 0,
                d_giant_or_postfree: ptr::null_mut(),
            }))
        }

        fn get(&self) -> *mut kpi::cdevsw {
            self.0.get()
        }
    }

    static DTRACE_SWITCH: DeviceSwitch =
        DeviceSwitch::new(c"dtrace", Some(dtrace_open), dtrace_ioctl);
    static HELPER_SWITCH: DeviceSwitch = DeviceSwitch::new(c"helper", None, helper_ioctl);

    static DTRACE_DEVICE: AtomicPtr<kpi::cdev> = AtomicPtr::new(ptr::null_mut());
    static HELPER_DEVICE: AtomicPtr<kpi::cdev> = AtomicPtr::new(ptr::null_mut());

    fn identity_of(td: *mut kpi::thread) -> ThreadIdentity {
        ThreadIdentity {
            curthread: td as u64,
            ..ThreadIdentity::default()
        }
    }

    fn errno(result: Result<(), Errno>) -> c_int {
        match result {
            Ok(()) => 0,
            Err(Errno(e)) => e,
        }
    }

    /// The kernel copy of the ioctl argument as a slice (empty if none).
    ///
    /// # Safety
    /// `data` must be the argument buffer the ioctl layer passed for `cmd`.
    unsafe fn ioctl_arg<'a>(cmd: u32, data: kpi::caddr_t) -> &'a mut [u8] {
        let len = ioctl_arg_len(cmd);
        if data.is_null() || len == 0 {
            return &mut [];
        }
        // SAFETY: the generic ioctl layer allocated `len` bytes at `data`
        // for this call (IOCPARM_LEN(cmd)) and nobody else uses them now.
        unsafe { core::slice::from_raw_parts_mut(data as *mut u8, len) }
    }

    unsafe extern "C" fn consumer_dtor(state: *mut c_void) {
        let _sleepable = SleepableScope::enter();
        // SAFETY: devfs calls the destructor once with the pointer that
        // dtrace_open registered, which came from ConsumerHandle::into_raw.
        framework::consumer_close(unsafe { ConsumerHandle::from_raw(state) });
        OPEN_CONSUMERS.closed();
    }

    unsafe extern "C" fn dtrace_open(
        _dev: *mut kpi::cdev,
        _oflags: c_int,
        _devtype: c_int,
        td: *mut kpi::thread,
    ) -> c_int {
        let _sleepable = SleepableScope::enter();
        let handle = match framework::consumer_open(&identity_of(td)) {
            Ok(handle) => handle,
            Err(Errno(e)) => return e,
        };
        let raw = handle.into_raw();
        OPEN_CONSUMERS.opened();
        // SAFETY: we are in d_open, where devfs_set_cdevpriv(9) attaches data
        // to the file being opened; consumer_dtor matches d_priv_dtor_t.
        let error = unsafe { kpi::devfs_set_cdevpriv(raw, Some(consumer_dtor)) };
        if error != 0 {
            // Not attached: the destructor will never run, so close here.
            // SAFETY: raw came from into_raw just above and was not attached.
            framework::consumer_close(unsafe { ConsumerHandle::from_raw(raw) });
            OPEN_CONSUMERS.closed();
        }
        error
    }

    unsafe extern "C" fn dtrace_ioctl(
        _dev: *mut kpi::cdev,
        cmd: c_ulong,
        data: kpi::caddr_t,
        _fflag: c_int,
        td: *mut kpi::thread,
    ) -> c_int {
        let _sleepable = SleepableScope::enter();
        let mut state: *mut c_void = ptr::null_mut();
        // SAFETY: inside a cdev method devfs_get_cdevpriv(9) returns the data
        // attached to the calling file.
        let error = unsafe { kpi::devfs_get_cdevpriv(&mut state) };
        if error != 0 || state.is_null() {
            return if error != 0 { error } else { ENXIO };
        }
        // The file keeps owning the state; borrow it for this call only.
        // SAFETY: state came from ConsumerHandle::into_raw in dtrace_open and
        // stays alive until the destructor, which cannot run during this call.
        let handle = ManuallyDrop::new(unsafe { ConsumerHandle::from_raw(state) });
        // libdtrace masks commands to 32 bits too.
        let cmd = cmd as u32;
        // SAFETY: data is this ioctl's argument buffer.
        let arg = unsafe { ioctl_arg(cmd, data) };
        errno(framework::consumer_ioctl(
            &handle,
            cmd,
            arg,
            &identity_of(td),
        ))
    }

    unsafe extern "C" fn helper_ioctl(
        _dev: *mut kpi::cdev,
        cmd: c_ulong,
        data: kpi::caddr_t,
        _fflag: c_int,
        td: *mut kpi::thread,
    ) -> c_int {
        let _sleepable = SleepableScope::enter();
        let cmd = cmd as u32;
        // SAFETY: data is this ioctl's argument buffer.
        let arg = unsafe { ioctl_arg(cmd, data) };
        errno(framework::helper_ioctl(cmd, arg, &identity_of(td)))
    }

    fn make_device(
        switch: &DeviceSwitch,
        mode: i32,
        name: &CStr,
        slot: &AtomicPtr<kpi::cdev>,
    ) -> Result<(), i32> {
        let mut args = kpi::make_dev_args::default();
        // SAFETY: initialises args for this kernel's struct size.
        unsafe { kpi::rdtrace_shim_make_dev_args_init(&mut args) };
        args.mda_flags = (kpi::MAKEDEV_CHECKNAME | kpi::MAKEDEV_WAITOK) as i32;
        args.mda_devsw = switch.get();
        args.mda_uid = kpi::UID_ROOT;
        args.mda_gid = kpi::GID_WHEEL;
        args.mda_mode = mode;
        let mut dev: *mut kpi::cdev = ptr::null_mut();
        // SAFETY: make_dev_s(9) with a static cdevsw and a constant "%s"
        // format; MAKEDEV_CHECKNAME makes a duplicate name an error, not a panic.
        let error = unsafe {
            kpi::make_dev_s(
                &mut args,
                &mut dev,
                c"%s".as_ptr(),
                name.as_ptr() as *const c_char,
            )
        };
        if error != 0 {
            return Err(error);
        }
        slot.store(dev, Ordering::Release);
        Ok(())
    }

    fn destroy_device(slot: &AtomicPtr<kpi::cdev>) {
        let dev = slot.swap(ptr::null_mut(), Ordering::AcqRel);
        if !dev.is_null() {
            // SAFETY: dev came from make_dev_s and is destroyed once; destroy_dev
            // waits for threads inside our methods and runs open files'
            // cdevpriv destructors.
            unsafe { kpi::destroy_dev(dev) };
        }
    }

    /// Create both devices (MOD_LOAD). On EEXIST for /dev/dtrace/dtrace, says
    /// on the console that another DTrace (stock dtrace.ko) owns it.
    pub fn create_devices() -> Result<(), i32> {
        if let Err(error) = make_device(
            &DTRACE_SWITCH,
            DTRACE_DEVICE_MODE,
            DTRACE_DEVICE_NAME,
            &DTRACE_DEVICE,
        ) {
            if error == EEXIST {
                console(format_args!(
                    "/dev/dtrace/dtrace already exists: another DTrace (the stock \
                     dtrace.ko) is loaded; unload it first (kldunload dtraceall dtrace)"
                ));
            } else {
                console(format_args!(
                    "cannot create /dev/dtrace/dtrace (error {error})"
                ));
            }
            return Err(error);
        }
        if let Err(error) = make_device(
            &HELPER_SWITCH,
            HELPER_DEVICE_MODE,
            HELPER_DEVICE_NAME,
            &HELPER_DEVICE,
        ) {
            console(format_args!(
                "cannot create /dev/dtrace/helper (error {error})"
            ));
            destroy_device(&DTRACE_DEVICE);
            return Err(error);
        }
        Ok(())
    }

    /// Destroy both devices (MOD_UNLOAD, or a failed MOD_LOAD).
    pub fn destroy_devices() {
        destroy_device(&HELPER_DEVICE);
        destroy_device(&DTRACE_DEVICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_lengths_follow_the_encoding() {
        // abi-facts §1.3: DTRACEIOC_PROBES = 0xc1847802 carries 388 bytes.
        assert_eq!(ioctl_arg_len(0xc184_7802), 388);
        // DTRACEIOC_CONF = 0x4030780a: 48 bytes.
        assert_eq!(ioctl_arg_len(0x4030_780a), 48);
        // DTRACEHIOC_ADDDOF = 0xc0587a03: 88 bytes.
        assert_eq!(ioctl_arg_len(0xc058_7a03), 88);
        // _IO with no argument.
        assert_eq!(ioctl_arg_len(0x2000_7801), 0);
    }

    #[test]
    fn device_modes_are_the_stock_ones() {
        assert_eq!(DTRACE_DEVICE_MODE, 0o600);
        assert_eq!(HELPER_DEVICE_MODE, 0o660);
        assert_eq!(DTRACE_DEVICE_NAME.to_bytes(), b"dtrace/dtrace");
        assert_eq!(HELPER_DEVICE_NAME.to_bytes(), b"dtrace/helper");
    }

    #[test]
    fn open_counter_never_underflows() {
        let open = OpenConsumers::new();
        open.opened();
        open.opened();
        assert_eq!(open.count(), 2);
        open.closed();
        open.closed();
        open.closed();
        assert_eq!(open.count(), 0);
    }
}
