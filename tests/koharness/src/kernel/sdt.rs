//! A statically defined tracing (SDT) probe in the fake kernel, the way a
//! FreeBSD 15 kernel file carries one: a `struct sdt_provider` ("harness"),
//! a `struct sdt_probe` (harness:kernel:harness_sdt:fire, 2 arguments), one
//! 32-byte tracepoint record (probe, patch point, out-of-line target) and
//! the `sdt_providers_set`/`sdt_probes_set`/`sdt_argtypes_set`/
//! `sdt_tracepoint_set` linker sets of the "kernel" file that an SDT
//! provider walks with `linker_file_lookup_set`. The probe site is the
//! kernel function `harness_sdt_site` (ktext.rs): a 5-byte NOP the provider
//! patches into a jump to the out-of-line block, which calls
//! `sdt_probe_func(probe->id, args…)` when the id is non-zero.
//! A second probe, harness:kernel:harness_sdt:fire6 (6 arguments, no
//! tracepoint), is fired the way `sdt_probe6` does it: [`fire6`] calls
//! `sdt_probe_func` with six values when its id is non-zero.
//! [`fire`] and [`fire6`] run module probe-context code; tests call them
//! inside the kernel.

use super::DataObject;

/// `sizeof(struct sdt_probe)` (also its version field).
pub const SDT_PROBE_SIZE: usize = 112;
pub const SDT_PROVIDER_SIZE: usize = 40;
pub const SDT_PROBE_ID_OFFSET: u64 = 88;

pub(super) fn data() -> Vec<DataObject> {
    let cstr = super::leak_c_string;
    let mut provider = vec![0u8; SDT_PROVIDER_SIZE];
    provider[0..8].copy_from_slice(&cstr("harness").to_le_bytes());
    let mut probe = vec![0u8; SDT_PROBE_SIZE];
    probe[0..8].copy_from_slice(&(SDT_PROBE_SIZE as u64).to_le_bytes());
    probe[64..72].copy_from_slice(&cstr("kernel").to_le_bytes());
    probe[72..80].copy_from_slice(&cstr("harness_sdt").to_le_bytes());
    probe[80..88].copy_from_slice(&cstr("fire").to_le_bytes());
    probe[96..100].copy_from_slice(&2i32.to_le_bytes());
    let mut probe6 = probe.clone();
    probe6[80..88].copy_from_slice(&cstr("fire6").to_le_bytes());
    probe6[96..100].copy_from_slice(&6i32.to_le_bytes());
    vec![
        DataObject {
            name: "sdt_harness_provider",
            size: SDT_PROVIDER_SIZE,
            align: 8,
            init: provider,
        },
        DataObject {
            name: "sdt_harness_fire_probe",
            size: SDT_PROBE_SIZE,
            align: 8,
            init: probe,
        },
        DataObject {
            name: "sdt_harness_fire6_probe",
            size: SDT_PROBE_SIZE,
            align: 8,
            init: probe6,
        },
        DataObject::zeroed("sdt_harness_tracepoint", 32),
        DataObject::zeroed("__set_sdt_providers_set_harness", 8),
        DataObject::zeroed("__set_sdt_probes_set_harness", 16),
    ]
}

/// Pointer fix-ups: (object, offset, target symbol).
pub(super) fn fixups() -> Vec<(&'static str, u64, &'static str)> {
    vec![
        ("sdt_harness_fire_probe", 8, "sdt_harness_provider"),
        ("sdt_harness_fire6_probe", 8, "sdt_harness_provider"),
        ("__set_sdt_probes_set_harness", 8, "sdt_harness_fire6_probe"),
        ("__set_sdt_providers_set_harness", 0, "sdt_harness_provider"),
        ("__set_sdt_probes_set_harness", 0, "sdt_harness_fire_probe"),
        ("sdt_harness_tracepoint", 0, "sdt_harness_fire_probe"),
        ("sdt_harness_tracepoint", 8, "harness_sdt_site"),
        ("sdt_harness_tracepoint", 16, "harness_sdt_site_ool"),
    ]
}

/// The kernel file's linker sets: (section name, start, stop).
pub fn kernel_sets() -> Vec<(String, u64, u64)> {
    let img = super::image();
    let set = |sec: &str, sym: &str| {
        let a = img.data(sym);
        let len = img.symbol(sym).map_or(8, |s| s.size);
        (sec.to_string(), a, a + len)
    };
    let empty = img.data("__set_sdt_probes_set_harness");
    vec![
        set("set_sdt_providers_set", "__set_sdt_providers_set_harness"),
        set("set_sdt_probes_set", "__set_sdt_probes_set_harness"),
        ("set_sdt_argtypes_set".to_string(), empty, empty),
        {
            let t = img.data("sdt_harness_tracepoint");
            ("set_sdt_tracepoint_set".to_string(), t, t + 32)
        },
    ]
}

/// Record the kernel's linker file in the probe (`sdtp_lf`, offset 104).
pub(super) fn set_linker_file(lf: u64) {
    for probe in ["sdt_harness_fire_probe", "sdt_harness_fire6_probe"] {
        let p = super::image().data(probe);
        // SAFETY: inside a probe object of the fake kernel image.
        unsafe { std::ptr::write_volatile((p + 104) as *mut u64, lf) };
    }
}

/// The DTrace probe id the provider stored in the harness probe (0 = not enabled).
pub fn probe_id() -> u64 {
    probe_id_of("sdt_harness_fire_probe")
}

fn probe_id_of(probe: &str) -> u64 {
    let p = super::image().data(probe);
    // SAFETY: inside the probe object of the fake kernel image.
    unsafe { std::ptr::read_volatile((p + SDT_PROBE_ID_OFFSET) as *const u64) }
}

static HOOK_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The out-of-line block's body: `sdt_probe(probe->id, a0, a1)`.
pub(super) extern "C" fn out_of_line(arg0: u64, arg1: u64) {
    let id = probe_id();
    if id != 0 && super::hooks::fire_sdt(id as u32, [arg0, arg1, 0, 0, 0, 0]) {
        HOOK_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Whether the tracepoint is patched: neither the compiler's 5-byte NOP nor
/// the five one-byte NOPs FreeBSD's amd64 `sdt_tracepoint_restore` writes.
pub fn site_patched() -> bool {
    let site = super::image()
        .symbol("harness_sdt_site")
        .expect("kernel function")
        .addr;
    // SAFETY: reading 5 bytes of kernel text.
    let bytes = unsafe { std::ptr::read_volatile(site as *const [u8; 5]) };
    bytes != super::ktext::SDT_NOP5 && bytes != [0x90; 5]
}

/// Run the probe site `harness_sdt_site(arg0, arg1)` (the caller must be
/// inside the kernel). Returns whether `sdt_probe_func` was called.
pub fn fire(arg0: u64, arg1: u64) -> bool {
    let site = super::image()
        .symbol("harness_sdt_site")
        .expect("kernel function")
        .addr;
    // SAFETY: the site is a SysV function in kernel text.
    let f: extern "C" fn(u64, u64) = unsafe { std::mem::transmute(site) };
    let before = HOOK_CALLS.load(std::sync::atomic::Ordering::SeqCst);
    f(arg0, arg1);
    HOOK_CALLS.load(std::sync::atomic::Ordering::SeqCst) > before
}

/// The DTrace probe id stored in the six-argument probe (0 = not enabled).
pub fn probe6_id() -> u64 {
    probe_id_of("sdt_harness_fire6_probe")
}

/// What `sdt_probe6(harness_sdt_fire6, args…)` does in the kernel: call
/// `sdt_probe_func` with all six values if the probe is enabled. Returns
/// whether the hook was called (the caller must be inside the kernel).
pub fn fire6(args: [u64; 6]) -> bool {
    let id = probe6_id();
    id != 0 && super::hooks::fire_sdt(id as u32, args)
}
