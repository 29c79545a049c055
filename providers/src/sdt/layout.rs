//! The in-memory records of FreeBSD's statically defined tracing (SDT), as
//! `sys/sys/sdt.h` lays them out on LP64 (abi-facts §6.5). Objects that define
//! probes put *pointers* to these records in the linker sets
//! `set_sdt_providers_set`, `set_sdt_probes_set`, `set_sdt_argtypes_set`, and
//! 32-byte [`SdtTracepoint`] records in `set_sdt_tracepoint_set`.
//!
//! The kernel's SDT code links these records into lists, so every field it
//! writes is interior-mutable here; rdtrace only reads the names and writes
//! the probe id. Not probe context except [`SdtProbe::id`].

use core::cell::UnsafeCell;
use core::ffi::{c_char, CStr};
use core::sync::atomic::{AtomicU64, Ordering};

/// Section names of the SDT linker sets.
pub const PROVIDERS_SET: &str = "set_sdt_providers_set";
pub const PROBES_SET: &str = "set_sdt_probes_set";
pub const ARGTYPES_SET: &str = "set_sdt_argtypes_set";
pub const TRACEPOINTS_SET: &str = "set_sdt_tracepoint_set";

/// A list link or head the kernel maintains: two pointers, opaque to us.
#[repr(C)]
#[derive(Debug)]
pub struct ListSlot(pub UnsafeCell<[usize; 2]>);

impl ListSlot {
    pub const fn new() -> Self {
        ListSlot(UnsafeCell::new([0; 2]))
    }
}

impl Default for ListSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// `struct sdt_provider` (40 bytes).
#[repr(C)]
#[derive(Debug)]
pub struct SdtProviderRecord {
    pub name: *const c_char,
    pub list: ListSlot,
    pub id: UnsafeCell<usize>,
    pub refcount: UnsafeCell<u64>,
}

/// `struct sdt_probe` (112 bytes).
#[repr(C)]
#[derive(Debug)]
pub struct SdtProbe {
    /// `sizeof(struct sdt_probe)`, a version check.
    pub version: u64,
    pub provider: *const SdtProviderRecord,
    pub list: ListSlot,
    pub argtypes: ListSlot,
    pub tracepoints: ListSlot,
    pub module: *const c_char,
    pub function: *const c_char,
    pub name: *const c_char,
    /// The DTrace probe id while enabled, 0 otherwise.
    pub id: AtomicU64,
    pub n_args: i32,
    pub linker_file: UnsafeCell<usize>,
}

/// `struct sdt_argtype` (48 bytes).
#[repr(C)]
#[derive(Debug)]
pub struct SdtArgType {
    pub index: i32,
    pub type_name: *const c_char,
    pub translated_type: *const c_char,
    pub list: ListSlot,
    pub probe: *const SdtProbe,
}

/// One record of `set_sdt_tracepoint_set` (32 bytes): a patch site of a
/// probe and the out-of-line block an enabled site jumps to.
#[repr(C)]
#[derive(Debug)]
pub struct SdtTracepoint {
    pub probe: *const SdtProbe,
    pub patchpoint: usize,
    pub target: usize,
    pub link: UnsafeCell<usize>,
}

// SAFETY: the records are immutable except through their UnsafeCell/atomic
// fields, which only the SDT registration code (serialised by the provider
// lock) and `id` (atomic) touch; the raw pointers point at other 'static records.
unsafe impl Sync for SdtProviderRecord {}
// SAFETY: as above.
unsafe impl Sync for SdtProbe {}
// SAFETY: as above.
unsafe impl Sync for SdtArgType {}
// SAFETY: as above.
unsafe impl Sync for SdtTracepoint {}

const _: () = {
    assert!(core::mem::size_of::<SdtProviderRecord>() == 40);
    assert!(core::mem::size_of::<SdtProbe>() == 112);
    assert!(core::mem::offset_of!(SdtProbe, module) == 64);
    assert!(core::mem::offset_of!(SdtProbe, id) == 88);
    assert!(core::mem::offset_of!(SdtProbe, n_args) == 96);
    assert!(core::mem::offset_of!(SdtProbe, linker_file) == 104);
    assert!(core::mem::size_of::<SdtArgType>() == 48);
    assert!(core::mem::offset_of!(SdtArgType, probe) == 40);
    assert!(core::mem::size_of::<SdtTracepoint>() == 32);
};

/// A C string field as UTF-8 (empty when null or not UTF-8).
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn c_str<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        return "";
    }
    // SAFETY: the caller guarantees a live NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
}

impl SdtProbe {
    /// The enabled DTrace probe id, 0 when disabled. *Probe context.*
    #[inline]
    pub fn enabled_id(&self) -> u32 {
        self.id.load(Ordering::Acquire) as u32
    }
}
