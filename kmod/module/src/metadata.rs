//! The module's metadata records and linker-set entries (what DECLARE_MODULE,
//! MODULE_VERSION and SYSINIT produce in C), emitted by Rust.
//!
//! The kernel linker reads the `set_modmetadata_set` section (pointers to
//! `struct mod_metadata`) to learn the module's name, its dependency on the
//! kernel and the interface version it provides, and runs the
//! `set_sysinit_set` entries (pointers to `struct sysinit`) when the file is
//! loaded; ours calls `module_register_init(&MODULE_DATA)`, which registers
//! the module and delivers MOD_LOAD to [`crate::module::rdtrace_modevent`].
//!
//! The record builders are `const fn`s so the host tests can check exactly
//! what goes into the kernel build. Not probe context.

use core::ffi::{c_char, c_void, CStr};

use rdtrace_ffi::kpi::{
    mod_depend, mod_metadata, mod_version, sysinit, MDT_DEPEND, MDT_STRUCT_VERSION, MDT_VERSION,
};

use crate::release::{FreeBsdRelease, TARGET_RELEASE};

/// The module's name (`kldstat`, `modfind`) and the interface it provides.
///
/// Deliberately not `dtrace`: stock `dtrace.ko` registers `dtrace` version 1,
/// and declaring the same interface would make the two unloadable side by
/// side for a confusing reason ("interface dtrace.1 already present") instead
/// of our own clear message about `/dev/dtrace/dtrace`.
pub const MODULE_NAME: &CStr = c"rdtrace";

/// Version of the `rdtrace` interface (MDT_VERSION).
pub const MODULE_INTERFACE_VERSION: i32 = 1;

/// Name of the kernel as a dependency.
pub const KERNEL_NAME: &CStr = c"kernel";

/// Where DECLARE_MODULE for a device driver registers: `SI_SUB_DRIVERS`,
/// `SI_ORDER_MIDDLE` (the same slot as DEV_MODULE).
pub const MODULE_SYSINIT_SUBSYSTEM: u32 = rdtrace_ffi::kpi::SI_SUB_DRIVERS;
pub const MODULE_SYSINIT_ORDER: u32 = rdtrace_ffi::kpi::SI_ORDER_MIDDLE;

/// A kernel structure shared with the kernel linker through a static.
///
/// The records hold raw pointers, so they are not `Sync` by themselves. The
/// kernel only reads them (and writes the sysinit list link before running
/// it, while no Rust code touches the record), so sharing them is sound.
#[repr(transparent)]
pub struct KernelRecord<T>(pub T);

// SAFETY: see the type's comment: Rust never mutates a KernelRecord after
// initialisation and the kernel accesses it only while loading the file.
unsafe impl<T> Sync for KernelRecord<T> {}

/// A kernel structure the kernel writes to after loading: 14+ kernels link
/// `struct sysinit` records into a list through their `next` field, so they
/// must live in writable data (loaded modules' read-only sections are
/// write-protected).
#[repr(transparent)]
pub struct WritableKernelRecord<T>(pub core::cell::UnsafeCell<T>);

// SAFETY: Rust never touches the record after initialisation; only the
// kernel writes it, while running the file's SYSINITs.
unsafe impl<T> Sync for WritableKernelRecord<T> {}

impl<T> WritableKernelRecord<T> {
    pub const fn new(value: T) -> Self {
        WritableKernelRecord(core::cell::UnsafeCell::new(value))
    }

    pub const fn as_ptr(&self) -> *const T {
        self.0.get() as *const T
    }
}

/// One slot of a linker set: the address of a record.
#[repr(transparent)]
pub struct SetEntry(pub *const c_void);

// SAFETY: a SetEntry is an immutable address; it is only read.
unsafe impl Sync for SetEntry {}

/// `struct mod_depend` accepting the kernels of `release`.
pub const fn kernel_dependency(release: FreeBsdRelease) -> mod_depend {
    let range = release.kernel_dependency();
    mod_depend {
        md_ver_minimum: range.minimum,
        md_ver_preferred: range.preferred,
        md_ver_maximum: range.maximum,
    }
}

/// A `struct mod_metadata` record of kind `md_type` naming `name`.
pub const fn metadata(md_type: u32, data: *const c_void, name: &'static CStr) -> mod_metadata {
    mod_metadata {
        md_version: MDT_STRUCT_VERSION as i32,
        md_type: md_type as i32,
        md_data: data,
        md_cval: name.as_ptr() as *const c_char,
    }
}

/// A `struct sysinit` that calls `func(udata)` at `subsystem`/`order`.
pub const fn sysinit_record(
    subsystem: u32,
    order: u32,
    func: unsafe extern "C" fn(*const c_void),
    udata: *const c_void,
) -> sysinit {
    sysinit {
        subsystem,
        order,
        next: core::ptr::null_mut(),
        func: Some(func),
        udata,
    }
}

/// The dependency on the kernel for this build's release.
pub static KERNEL_DEPEND: KernelRecord<mod_depend> =
    KernelRecord(kernel_dependency(TARGET_RELEASE));

/// The `rdtrace` interface version this module provides.
pub static MODULE_VERSION: KernelRecord<mod_version> = KernelRecord(mod_version {
    mv_version: MODULE_INTERFACE_VERSION,
});

/// MDT_DEPEND record: `rdtrace` needs `kernel` in [`KERNEL_DEPEND`]'s range.
pub static MDT_KERNEL_DEPEND: KernelRecord<mod_metadata> = KernelRecord(metadata(
    MDT_DEPEND,
    &KERNEL_DEPEND as *const KernelRecord<mod_depend> as *const c_void,
    KERNEL_NAME,
));

/// MDT_VERSION record: this file provides interface `rdtrace` version 1.
pub static MDT_MODULE_VERSION: KernelRecord<mod_metadata> = KernelRecord(metadata(
    MDT_VERSION,
    &MODULE_VERSION as *const KernelRecord<mod_version> as *const c_void,
    MODULE_NAME,
));

/// Kernel-only parts: the module record (it points at the event handler,
/// which calls kernel functions) and the linker-set slots.
#[cfg(target_os = "none")]
mod kernel_sets {
    use super::*;
    use crate::module::MODULE_DATA;
    use rdtrace_ffi::kpi::{module_register_init, moduledata_t, MDT_MODULE};

    /// MDT_MODULE record: the module `rdtrace` and its moduledata.
    pub static MDT_MODULE_RECORD: KernelRecord<mod_metadata> = KernelRecord(metadata(
        MDT_MODULE,
        &MODULE_DATA as *const KernelRecord<moduledata_t> as *const c_void,
        MODULE_NAME,
    ));

    /// The SYSINIT that registers the module (DECLARE_MODULE's).
    pub static MODULE_SYSINIT: WritableKernelRecord<sysinit> =
        WritableKernelRecord::new(sysinit_record(
            MODULE_SYSINIT_SUBSYSTEM,
            MODULE_SYSINIT_ORDER,
            module_register_init,
            &MODULE_DATA as *const KernelRecord<moduledata_t> as *const c_void,
        ));

    #[used]
    #[link_section = "set_modmetadata_set"]
    static SET_KERNEL_DEPEND: SetEntry =
        SetEntry(&MDT_KERNEL_DEPEND as *const KernelRecord<mod_metadata> as *const c_void);

    #[used]
    #[link_section = "set_modmetadata_set"]
    static SET_MODULE: SetEntry =
        SetEntry(&MDT_MODULE_RECORD as *const KernelRecord<mod_metadata> as *const c_void);

    #[used]
    #[link_section = "set_modmetadata_set"]
    static SET_MODULE_VERSION: SetEntry =
        SetEntry(&MDT_MODULE_VERSION as *const KernelRecord<mod_metadata> as *const c_void);

    #[used]
    #[link_section = "set_sysinit_set"]
    static SET_MODULE_SYSINIT: SetEntry = SetEntry(MODULE_SYSINIT.as_ptr() as *const c_void);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(record: &mod_metadata) -> &'static str {
        // SAFETY: every record in this module names a 'static C string literal.
        unsafe { CStr::from_ptr(record.md_cval) }.to_str().unwrap()
    }

    #[test]
    fn kernel_dependency_record_carries_the_release_range() {
        let record = &MDT_KERNEL_DEPEND.0;
        assert_eq!(record.md_version, 1);
        assert_eq!(record.md_type, 1);
        assert_eq!(name_of(record), "kernel");
        // SAFETY: md_data points at KERNEL_DEPEND (a static mod_depend).
        let depend = unsafe { &*(record.md_data as *const mod_depend) };
        let range = TARGET_RELEASE.kernel_dependency();
        assert_eq!(depend.md_ver_minimum, range.minimum);
        assert_eq!(depend.md_ver_preferred, range.preferred);
        assert_eq!(depend.md_ver_maximum, range.maximum);
        assert!(depend.md_ver_minimum <= depend.md_ver_maximum);
    }

    #[test]
    fn version_record_provides_rdtrace_1_not_dtrace() {
        let record = &MDT_MODULE_VERSION.0;
        assert_eq!(record.md_type, 3);
        assert_eq!(name_of(record), "rdtrace");
        // SAFETY: md_data points at MODULE_VERSION (a static mod_version).
        let version = unsafe { &*(record.md_data as *const mod_version) };
        assert_eq!(version.mv_version, 1);
    }

    #[test]
    fn sysinit_record_layout_is_the_14_plus_one() {
        unsafe extern "C" fn target(_: *const c_void) {}
        let udata = 0x1234usize as *const c_void;
        let record = sysinit_record(0x3100000, 0x1000000, target, udata);
        assert_eq!(record.subsystem, 0x3100000);
        assert_eq!(record.order, 0x1000000);
        assert!(record.next.is_null());
        assert_eq!(record.udata, udata);
        assert_eq!(core::mem::size_of_val(&record), 32);
        assert_eq!(MODULE_SYSINIT_SUBSYSTEM, 0x3100000);
        assert_eq!(MODULE_SYSINIT_ORDER, 0x1000000);
    }
}
