//! sysctl(9): dynamic OIDs (`sysctl_ctx_init`, `sysctl_add_oid`,
//! `sysctl_ctx_free`), the `kern` and `debug` roots, and the standard
//! handlers `sysctl_handle_int`/`sysctl_handle_string`.
//!
//! An OID is a 128-byte fake `struct sysctl_oid` below 2 GiB (children head
//! @0, number @40, kind @44, arg1 @48, arg2 @56, name @64, handler @72); a
//! node's children list is its own head, and `oid_arg1` of a node created
//! without one points at it, so `SYSCTL_CHILDREN()` works either way. As in
//! FreeBSD, adding an existing node name re-uses that node (reference
//! counted), adding an existing leaf name fails (NULL, with the kernel's
//! message), and `sysctl_ctx_free` removes the context's OIDs in reverse
//! order, refusing (EBUSY) if a node would still have children. The harness
//! reads and writes OIDs through their handlers with an opaque request.
//! Not probe context.

use std::sync::Mutex;

use super::{kpanic, DataObject};
use crate::lowmem::LowRegion;

pub const CTLTYPE: u32 = 0xf;
pub const CTLTYPE_NODE: u32 = 1;
const EBUSY: i32 = 16;
const ENOENT: i32 = 2;
const EPERM: i32 = 1;
const EINVAL: i32 = 22;
const ENOMEM: i32 = 12;
const OID_SIZE: usize = 128;

struct Oid {
    /// Our own fake OID (dynamic ones); None for a module's static OID.
    _mem: Option<LowRegion>,
    /// Address of the `struct sysctl_oid` (ours or the module's).
    addr: u64,
    /// Registered from a module's `set_sysctl_set`.
    is_static: bool,
    path: String,
    parent_list: u64,
    kind: u32,
    arg1: u64,
    arg2: i64,
    handler: u64,
    refcount: u32,
}

#[derive(Default)]
struct Tree {
    oids: Vec<Oid>,
    /// Context address → OIDs added through it, in order.
    contexts: Vec<(u64, Vec<u64>)>,
}

static TREE: Mutex<Option<Tree>> = Mutex::new(None);

fn with_tree<R>(f: impl FnOnce(&mut Tree) -> R) -> R {
    let mut g = TREE.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Tree::default))
}

fn list_path(t: &Tree, list: u64) -> Option<String> {
    let img = super::image();
    if list == img.data("sysctl__kern_children") {
        return Some("kern".into());
    }
    if list == img.data("sysctl__debug_children") {
        return Some("debug".into());
    }
    if list == img.data("sysctl__security_children") {
        return Some("security".into());
    }
    t.oids
        .iter()
        .find(|o| o.addr == list)
        .map(|o| o.path.clone())
}

extern "C" fn kpi_sysctl_ctx_init(clist: *mut [u64; 2]) -> i32 {
    if clist.is_null() {
        return EINVAL;
    }
    // SAFETY: the caller's struct sysctl_ctx_list (two pointers).
    unsafe { *clist = [0, 0] };
    with_tree(|t| {
        t.contexts.retain(|(c, _)| *c != clist as u64);
        t.contexts.push((clist as u64, Vec::new()));
    });
    0
}

#[allow(clippy::too_many_arguments)]
extern "C" fn kpi_sysctl_add_oid(
    clist: u64,
    parent: u64,
    number: i32,
    name: u64,
    kind: i32,
    arg1: u64,
    arg2: i64,
    handler: u64,
    _fmt: u64,
    _descr: u64,
    _label: u64,
) -> u64 {
    // SAFETY: OID names are C strings.
    let leaf = unsafe { super::c_str(name, 128) };
    let kind = kind as u32;
    with_tree(|t| {
        let Some(parent_path) = list_path(t, parent) else {
            kpanic(&format!(
                "sysctl_add_oid({leaf}): unknown parent list {parent:#x}"
            ));
        };
        let path = format!("{parent_path}.{leaf}");
        if let Some(existing) = t.oids.iter_mut().find(|o| o.path == path) {
            if existing.kind & CTLTYPE == CTLTYPE_NODE && kind & CTLTYPE == CTLTYPE_NODE {
                existing.refcount += 1;
                let addr = existing.addr;
                if let Some((_, v)) = t.contexts.iter_mut().find(|(c, _)| *c == clist) {
                    v.push(addr);
                }
                return addr;
            }
            super::console_write(&format!("can't re-use a leaf ({leaf})!\n"));
            return 0;
        }
        if kind & CTLTYPE != CTLTYPE_NODE && handler == 0 {
            kpanic(&format!("sysctl_add_oid({path}): leaf without a handler"));
        }
        let mem = LowRegion::new(OID_SIZE).expect("mmap sysctl oid");
        let addr = mem.addr();
        let arg1 = if kind & CTLTYPE == CTLTYPE_NODE && arg1 == 0 {
            addr
        } else {
            arg1
        };
        // SAFETY: fields of our own fake struct sysctl_oid.
        unsafe {
            std::ptr::write((addr + 8) as *mut u64, parent);
            std::ptr::write((addr + 40) as *mut i32, number);
            std::ptr::write((addr + 44) as *mut u32, kind);
            std::ptr::write((addr + 48) as *mut u64, arg1);
            std::ptr::write((addr + 56) as *mut i64, arg2);
            std::ptr::write((addr + 64) as *mut u64, name);
            std::ptr::write((addr + 72) as *mut u64, handler);
            std::ptr::write((addr + 88) as *mut i32, 1);
        }
        t.oids.push(Oid {
            _mem: Some(mem),
            addr,
            is_static: false,
            path,
            parent_list: parent,
            kind,
            arg1,
            arg2,
            handler,
            refcount: 1,
        });
        if let Some((_, v)) = t.contexts.iter_mut().find(|(c, _)| *c == clist) {
            v.push(addr);
        }
        addr
    })
}

extern "C" fn kpi_sysctl_ctx_free(clist: u64) -> i32 {
    with_tree(|t| {
        let Some(pos) = t.contexts.iter().position(|(c, _)| *c == clist) else {
            return EINVAL;
        };
        let members = t.contexts[pos].1.clone();
        // Would removing these leave a node with children from elsewhere?
        for &oid in &members {
            let has_foreign_child = t
                .oids
                .iter()
                .any(|o| o.parent_list == oid && !members.contains(&o.addr));
            let last_ref = t
                .oids
                .iter()
                .find(|o| o.addr == oid)
                .is_some_and(|o| o.refcount == 1);
            if has_foreign_child && last_ref {
                return EBUSY;
            }
        }
        for &oid in members.iter().rev() {
            if let Some(i) = t.oids.iter().position(|o| o.addr == oid) {
                t.oids[i].refcount -= 1;
                if t.oids[i].refcount == 0 {
                    t.oids.remove(i);
                }
            }
        }
        t.contexts.remove(pos);
        0
    })
}

/// The harness's `struct sysctl_req`: opaque to module code.
#[repr(C)]
struct Request {
    old: Vec<u8>,
    new: Option<Vec<u8>>,
    new_taken: bool,
}

fn req_out(req: *mut Request, bytes: &[u8]) {
    // SAFETY: `req` is the Request the harness passed to the handler.
    unsafe { (*req).old.extend_from_slice(bytes) };
}

fn req_in(req: *mut Request) -> Option<Vec<u8>> {
    // SAFETY: as above.
    unsafe {
        if (*req).new_taken {
            return None;
        }
        (*req).new_taken = true;
        (*req).new.clone()
    }
}

extern "C" fn kpi_sysctl_handle_int(_oid: u64, arg1: u64, arg2: i64, req: *mut Request) -> i32 {
    let value = if arg1 != 0 {
        // SAFETY: arg1 of an int OID points at the int.
        unsafe { std::ptr::read_volatile(arg1 as *const i32) }
    } else {
        arg2 as i32
    };
    req_out(req, &value.to_le_bytes());
    if let Some(new) = req_in(req) {
        if arg1 == 0 {
            return EPERM;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(new.as_slice()) else {
            return EINVAL;
        };
        // SAFETY: as above.
        unsafe { std::ptr::write_volatile(arg1 as *mut i32, i32::from_le_bytes(bytes)) };
    }
    0
}

/// `sysctl_handle_long` / `sysctl_handle_64`: like the int handler, 8 bytes.
extern "C" fn kpi_sysctl_handle_64(_oid: u64, arg1: u64, arg2: i64, req: *mut Request) -> i32 {
    let value = if arg1 != 0 {
        // SAFETY: arg1 of a long/64-bit OID points at the value.
        unsafe { std::ptr::read_volatile(arg1 as *const i64) }
    } else {
        arg2
    };
    req_out(req, &value.to_le_bytes());
    if let Some(new) = req_in(req) {
        if arg1 == 0 {
            return EPERM;
        }
        let Ok(bytes) = <[u8; 8]>::try_from(new.as_slice()) else {
            return EINVAL;
        };
        // SAFETY: as above.
        unsafe { std::ptr::write_volatile(arg1 as *mut i64, i64::from_le_bytes(bytes)) };
    }
    0
}

extern "C" fn kpi_sysctl_handle_string(_oid: u64, arg1: u64, arg2: i64, req: *mut Request) -> i32 {
    let max = if arg2 > 0 { arg2 as usize } else { 4096 };
    // SAFETY: arg1 of a string OID is a C string buffer of arg2 bytes.
    let s = unsafe { super::c_str(arg1, max) };
    let mut bytes = s.into_bytes();
    bytes.push(0);
    req_out(req, &bytes);
    if let Some(new) = req_in(req) {
        if arg2 <= 0 || new.len() >= arg2 as usize {
            return ENOMEM;
        }
        // SAFETY: fits in the arg2-byte buffer (checked).
        unsafe {
            std::ptr::copy_nonoverlapping(new.as_ptr(), arg1 as *mut u8, new.len());
            *((arg1 + new.len() as u64) as *mut u8) = 0;
        }
    }
    0
}

/// Read (and optionally write) the OID at `path` through its handler.
/// Must be called from inside the kernel when the handler is module code.
pub fn sysctl(path: &str, new: Option<Vec<u8>>) -> Result<Vec<u8>, i32> {
    let found = with_tree(|t| {
        t.oids
            .iter()
            .find(|o| o.path == path)
            .map(|o| (o.addr, o.kind, o.arg1, o.arg2, o.handler))
    });
    let Some((oid, kind, arg1, arg2, handler)) = found else {
        return Err(ENOENT);
    };
    if kind & CTLTYPE == CTLTYPE_NODE || handler == 0 {
        return Err(ENOENT);
    }
    let mut req = Request {
        old: Vec::new(),
        new,
        new_taken: false,
    };
    // SAFETY: `handler` has the sysctl handler signature.
    let f: extern "C" fn(u64, u64, i64, *mut Request) -> i32 =
        unsafe { std::mem::transmute(handler) };
    super::cpu::enter_kernel(super::cpu::home_cpu());
    let e = f(oid, arg1, arg2, &mut req);
    super::cpu::leave_kernel();
    if e != 0 {
        return Err(e);
    }
    Ok(req.old)
}

/// Register a module's static OID (an entry of its `set_sysctl_set`, laid
/// out like FreeBSD's `struct sysctl_oid`: parent list @8, number @40,
/// kind @44, arg1 @48, arg2 @56, name @64, handler @72). Fails while its
/// parent list is not (yet) registered, or if the name is taken.
pub fn register_static(oid: u64) -> Result<(), String> {
    // SAFETY: `oid` is a static struct sysctl_oid inside a loaded module.
    let (parent, kind, arg1, arg2, name, handler) = unsafe {
        (
            std::ptr::read_volatile((oid + 8) as *const u64),
            std::ptr::read_volatile((oid + 44) as *const u32),
            std::ptr::read_volatile((oid + 48) as *const u64),
            std::ptr::read_volatile((oid + 56) as *const i64),
            super::c_str(std::ptr::read_volatile((oid + 64) as *const u64), 128),
            std::ptr::read_volatile((oid + 72) as *const u64),
        )
    };
    with_tree(|t| {
        let Some(parent_path) = list_path(t, parent) else {
            return Err(format!(
                "sysctl OID {name}: parent list {parent:#x} is not registered"
            ));
        };
        let path = format!("{parent_path}.{name}");
        if t.oids.iter().any(|o| o.path == path) {
            return Err(format!("sysctl {path}: name already in use"));
        }
        let arg1 = if kind & CTLTYPE == CTLTYPE_NODE && arg1 == 0 {
            oid
        } else {
            arg1
        };
        t.oids.push(Oid {
            _mem: None,
            addr: oid,
            is_static: true,
            path,
            parent_list: parent,
            kind,
            arg1,
            arg2,
            handler,
            refcount: 1,
        });
        Ok(())
    })
}

/// Unregister the static OIDs lying in `[lo, hi)` (a module being unloaded).
pub fn unregister_static_in(lo: u64, hi: u64) {
    with_tree(|t| {
        t.oids
            .retain(|o| !(o.is_static && o.addr >= lo && o.addr < hi))
    });
}

/// Paths of every registered OID.
pub fn paths() -> Vec<String> {
    with_tree(|t| t.oids.iter().map(|o| o.path.clone()).collect())
}

/// OIDs whose handler, arg1 or name lies in `[lo, hi)`.
pub fn registered_in(lo: u64, hi: u64) -> Vec<String> {
    with_tree(|t| {
        t.oids
            .iter()
            .filter(|o| (o.handler >= lo && o.handler < hi) || (o.arg1 >= lo && o.arg1 < hi))
            .map(|o| format!("sysctl {}", o.path))
            .collect()
    })
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("sysctl_ctx_init", kpi_sysctl_ctx_init as *const () as usize),
        ("sysctl_ctx_free", kpi_sysctl_ctx_free as *const () as usize),
        ("sysctl_add_oid", kpi_sysctl_add_oid as *const () as usize),
        (
            "sysctl_handle_int",
            kpi_sysctl_handle_int as *const () as usize,
        ),
        (
            "sysctl_handle_string",
            kpi_sysctl_handle_string as *const () as usize,
        ),
        (
            "sysctl_handle_long",
            kpi_sysctl_handle_64 as *const () as usize,
        ),
        (
            "sysctl_handle_64",
            kpi_sysctl_handle_64 as *const () as usize,
        ),
    ]
}

pub(super) fn data() -> Vec<DataObject> {
    vec![
        DataObject::zeroed("sysctl__kern_children", 8),
        DataObject::zeroed("sysctl__debug_children", 8),
        DataObject::zeroed("sysctl__security_children", 8),
    ]
}
