//! malloc(9): `malloc`, `malloc_aligned`, `free`, `malloc_init`/`malloc_uninit`
//! and the kernel's `M_DEVBUF` type, with every allocation tracked per type.
//!
//! Semantics kept from FreeBSD: exactly one of `M_WAITOK`/`M_NOWAIT`;
//! `M_WAITOK` never fails and must not be used where sleeping is forbidden
//! (critical section, spin or sleep mutex held) — that panics, as WITNESS
//! would; `M_ZERO` zeroes, otherwise memory is filled with junk (0xde
//! bytes) like an INVARIANTS kernel; `free(NULL)` is a no-op; freeing an unknown
//! pointer or with the wrong type panics. Allocations are aligned to the
//! smaller of the size's power of two and a page (at least 16 bytes).
//! Probe context: only `M_NOWAIT` allocations are legal there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{kpanic, DataObject};

pub const M_NOWAIT: i32 = 0x0001;
pub const M_WAITOK: i32 = 0x0002;
pub const M_ZERO: i32 = 0x0100;
/// `ks_version` of a current `struct malloc_type`.
pub const M_VERSION: u64 = 2020110501;
/// `sizeof(struct malloc_type)`: ks_next, ks_version, ks_shortdesc, ks_handle.
pub const MALLOC_TYPE_SIZE: usize = 32;

/// Counters for one malloc type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeStats {
    pub name: String,
    pub allocations: u64,
    pub frees: u64,
    pub live: u64,
    pub live_bytes: u64,
}

struct Allocation {
    mtype: u64,
    size: usize,
    layout: std::alloc::Layout,
}

#[derive(Default)]
struct Heap {
    live: HashMap<u64, Allocation>,
    types: BTreeMap<u64, TypeStats>,
    registered: BTreeMap<u64, String>,
    /// Warnings FreeBSD would print (leaks at malloc_uninit).
    warnings: Vec<String>,
}

static HEAP: Mutex<Option<Heap>> = Mutex::new(None);

fn with_heap<R>(f: impl FnOnce(&mut Heap) -> R) -> R {
    let mut g = HEAP.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Heap::default))
}

fn type_name(mtype: u64) -> String {
    if mtype == 0 {
        kpanic("malloc: NULL malloc type");
    }
    // SAFETY: a malloc type is a 32-byte object; ks_shortdesc at +16 points
    // to a C string (module rodata or our leaked string).
    unsafe { super::c_str(std::ptr::read_volatile((mtype + 16) as *const u64), 64) }
}

fn check_flags(flags: i32, what: &str) {
    let wait = flags & M_WAITOK != 0;
    let nowait = flags & M_NOWAIT != 0;
    if wait == nowait {
        kpanic(&format!(
            "{what}: flags {flags:#x} must have exactly one of M_WAITOK and M_NOWAIT"
        ));
    }
    if wait && !super::cpu::may_sleep() {
        kpanic(&format!(
            "{what}(M_WAITOK) in a critical section or with a non-sleepable lock held"
        ));
    }
}

fn allocate(size: usize, align: usize, mtype: u64, flags: i32, what: &str) -> u64 {
    check_flags(flags, what);
    let name = type_name(mtype);
    let layout = match std::alloc::Layout::from_size_align(size.max(1), align) {
        Ok(l) => l,
        Err(_) => kpanic(&format!("{what}: bad size {size} / alignment {align}")),
    };
    // SAFETY: the layout has non-zero size.
    let ptr = unsafe { std::alloc::alloc(layout) };
    if ptr.is_null() {
        if flags & M_NOWAIT != 0 {
            return 0;
        }
        kpanic(&format!(
            "{what}(M_WAITOK) of {size} bytes could not be satisfied"
        ));
    }
    // M_ZERO zeroes; otherwise junk-fill like an INVARIANTS kernel (a
    // byte pattern, so the fill is a plain memset even for big buffers).
    let fill = if flags & M_ZERO != 0 { 0 } else { 0xde };
    // SAFETY: `ptr` is a fresh allocation of `layout.size()` bytes.
    unsafe { std::ptr::write_bytes(ptr, fill, layout.size()) };
    with_heap(|h| {
        h.live.insert(
            ptr as u64,
            Allocation {
                mtype,
                size,
                layout,
            },
        );
        let st = h.types.entry(mtype).or_default();
        st.name = name;
        st.allocations += 1;
        st.live += 1;
        st.live_bytes += size as u64;
    });
    ptr as u64
}

fn natural_align(size: usize) -> usize {
    size.max(16).next_power_of_two().min(4096)
}

extern "C" fn kpi_malloc(size: usize, mtype: u64, flags: i32) -> u64 {
    allocate(size, natural_align(size), mtype, flags, "malloc")
}

extern "C" fn kpi_malloc_aligned(size: usize, align: usize, mtype: u64, flags: i32) -> u64 {
    if !align.is_power_of_two() {
        kpanic(&format!(
            "malloc_aligned: alignment {align} is not a power of two"
        ));
    }
    allocate(
        size,
        align.max(natural_align(size)),
        mtype,
        flags,
        "malloc_aligned",
    )
}

extern "C" fn kpi_free(addr: u64, mtype: u64) {
    if addr == 0 {
        return;
    }
    let found = with_heap(|h| h.live.remove(&addr));
    let Some(a) = found else {
        kpanic(&format!(
            "free: {addr:#x} was not allocated by malloc (double free?)"
        ));
    };
    if a.mtype != mtype {
        kpanic(&format!(
            "free: {addr:#x} allocated with type {} but freed with type {}",
            type_name(a.mtype),
            type_name(mtype)
        ));
    }
    // SAFETY: `addr` came from `std::alloc::alloc(a.layout)` and was live.
    unsafe { std::alloc::dealloc(addr as *mut u8, a.layout) };
    with_heap(|h| {
        let st = h.types.entry(mtype).or_default();
        st.frees += 1;
        st.live -= 1;
        st.live_bytes -= a.size as u64;
    });
}

/// `malloc_init(void *type)`: the SYSINIT of `MALLOC_DEFINE`.
extern "C" fn kpi_malloc_init(mtype: u64) {
    let name = type_name(mtype);
    // SAFETY: ks_version at +8 of the module's malloc type.
    let version = unsafe { std::ptr::read_volatile((mtype + 8) as *const u64) };
    if version != M_VERSION {
        kpanic(&format!(
            "malloc_init: type {name} has version {version}, kernel expects {M_VERSION}"
        ));
    }
    with_heap(|h| {
        h.registered.insert(mtype, name.clone());
        h.types.entry(mtype).or_default().name = name;
    });
}

/// `malloc_uninit(void *type)`: warns about (and records) memory still live.
extern "C" fn kpi_malloc_uninit(mtype: u64) {
    let name = type_name(mtype);
    with_heap(|h| {
        h.registered.remove(&mtype);
        let st = h.types.get(&mtype).cloned().unwrap_or_default();
        if st.live != 0 {
            let w = format!(
                "Warning: memory type {name} leaked memory on destroy ({} allocations, {} bytes leaked).",
                st.live, st.live_bytes
            );
            h.warnings.push(w.clone());
            super::console_write(&format!("{w}\n"));
        }
    });
}

/// Per-type counters, by type name.
pub fn stats() -> BTreeMap<String, TypeStats> {
    with_heap(|h| {
        h.types
            .values()
            .map(|s| (s.name.clone(), s.clone()))
            .collect()
    })
}

/// Total live allocations over all types.
pub fn live_total() -> u64 {
    with_heap(|h| h.live.len() as u64)
}

/// Whether `[addr, addr + len)` lies inside one live allocation.
pub fn is_live_range(addr: u64, len: u64) -> bool {
    with_heap(|h| {
        h.live
            .iter()
            .any(|(base, a)| addr >= *base && addr.saturating_add(len) <= base + a.size as u64)
    })
}

/// Whether `[addr, addr + len)` overlaps any live allocation.
pub fn overlaps_live(addr: u64, len: u64) -> bool {
    let end = addr.saturating_add(len.max(1));
    with_heap(|h| {
        h.live
            .iter()
            .any(|(base, a)| addr < base + a.size.max(1) as u64 && *base < end)
    })
}

/// Leak warnings printed by `malloc_uninit`.
pub fn warnings() -> Vec<String> {
    with_heap(|h| h.warnings.clone())
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("malloc", kpi_malloc as *const () as usize),
        ("malloc_aligned", kpi_malloc_aligned as *const () as usize),
        ("free", kpi_free as *const () as usize),
        ("malloc_init", kpi_malloc_init as *const () as usize),
        ("malloc_uninit", kpi_malloc_uninit as *const () as usize),
    ]
}

pub(super) fn data() -> Vec<DataObject> {
    let mut init = vec![0u8; MALLOC_TYPE_SIZE];
    init[8..16].copy_from_slice(&M_VERSION.to_le_bytes());
    init[16..24].copy_from_slice(&super::leak_c_string("devbuf").to_le_bytes());
    vec![DataObject {
        name: "M_DEVBUF",
        size: MALLOC_TYPE_SIZE,
        align: 16,
        init,
    }]
}
