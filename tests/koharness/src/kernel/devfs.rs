//! make_dev(9), destroy_dev(9), devfs_set_cdevpriv(9) and a fake devfs with
//! the generic ioctl layer, through which tests open, ioctl and close the
//! module's devices.
//!
//! FreeBSD semantics kept: `make_dev_s` needs `mda_size` equal to the
//! 64-byte LP64 `struct make_dev_args`, a cdevsw of the current `D_VERSION`
//! (else the device is created "dead" and every operation fails with ENXIO,
//! after the kernel's warning), and marks the cdevsw initialised by writing
//! `D_INIT` into `d_flags` (so a cdevsw in read-only memory faults here as in
//! the kernel); a duplicate name is EEXIST with `MAKEDEV_CHECKNAME` and a
//! panic without. Open attaches per-file private data through
//! `devfs_set_cdevpriv` (EBUSY if already set; ENOENT outside a file
//! operation); a failed open runs the destructor. `d_close` runs only on the
//! last close of a device unless the cdevsw has `D_TRACKCLOSE`; the
//! cdevpriv destructor runs after `d_close` when the file is released.
//! `destroy_dev` removes the node, waits for threads inside the driver,
//! runs the destructors of every file still open on it, and later file
//! operations get ENXIO. ioctl goes through the generic layer: the command
//! is truncated to 32 bits, the `_IOC` parameter block (at most 8191 bytes)
//! is copied in for IOC_IN (EFAULT if it cannot be) and zeroed otherwise,
//! and copied out after success for IOC_OUT. Not probe context.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

use super::cpu;
use super::kpanic;
use super::uaccess;
use crate::lowmem::LowRegion;

pub const D_VERSION: u32 = 0x5c48c353;
pub const D_TRACKCLOSE: u32 = 0x0008_0000;
pub const D_INIT: u32 = 0x8000_0000;
pub const MAKEDEV_CHECKNAME: i32 = 0x20;
pub const MAKE_DEV_ARGS_SIZE: u64 = 64;
pub const S_IFCHR: i32 = 0o020000;
pub const FREAD: i32 = 0x1;
pub const FWRITE: i32 = 0x2;
pub const IOC_VOID: u32 = 0x2000_0000;
pub const IOC_OUT: u32 = 0x4000_0000;
pub const IOC_IN: u32 = 0x8000_0000;
const ENOENT: i32 = 2;
const ENXIO: i32 = 6;
const EBADF: i32 = 9;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;
const ENOTTY: i32 = 25;
/// Offsets in the fake `struct cdev` (FreeBSD 14/15 amd64 layout).
const CDEV_SIZE: usize = 512;
const SI_DRV1: u64 = 168;
const SI_DRV2: u64 = 176;
const SI_DEVSW: u64 = 184;
const SI_NAME: u64 = 224;

/// A node of the fake devfs, as `ls -l /dev` would show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub path: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

struct Cdev {
    name: String,
    mem: LowRegion,
    devsw: u64,
    uid: u32,
    gid: u32,
    mode: u32,
    dead: bool,
    destroyed: bool,
    threads_inside: u32,
    open_files: u32,
}

struct OpenFile {
    cdev: u64,
    fflag: i32,
    privdata: Option<(u64, u64)>,
}

#[derive(Default)]
struct Devfs {
    cdevs: BTreeMap<u64, Cdev>,
    files: BTreeMap<u64, OpenFile>,
    next_file: u64,
    /// Destroyed cdevs kept until their last file closes.
    graveyard: Vec<Cdev>,
}

static DEVFS: Mutex<Option<Devfs>> = Mutex::new(None);
static CHANGED: Condvar = Condvar::new();

fn devfs() -> std::sync::MutexGuard<'static, Option<Devfs>> {
    DEVFS.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_devfs<R>(f: impl FnOnce(&mut Devfs) -> R) -> R {
    let mut g = devfs();
    f(g.get_or_insert_with(Devfs::default))
}

fn rd<T: Copy>(addr: u64) -> T {
    // SAFETY: callers read fields of module structures (cdevsw,
    // make_dev_args) at their documented offsets.
    unsafe { std::ptr::read_unaligned(addr as *const T) }
}

fn normalize_name(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    Some(parts.join("/"))
}

/// `make_dev_s(args, &cdev, name)` after the shim formatted the name.
pub fn make_dev_s(args: u64, cdevp: u64, raw_name: &str) -> i32 {
    let size: u64 = rd(args);
    if size != MAKE_DEV_ARGS_SIZE {
        super::console_write(&format!(
            "make_dev_s: mda_size {size} is not sizeof(struct make_dev_args) = {MAKE_DEV_ARGS_SIZE}\n"
        ));
        return EINVAL;
    }
    let flags: i32 = rd(args + 8);
    let devsw: u64 = rd(args + 16);
    let uid: u32 = rd(args + 32);
    let gid: u32 = rd(args + 36);
    let mode: i32 = rd(args + 40);
    let drv1: u64 = rd(args + 48);
    let drv2: u64 = rd(args + 56);
    if devsw == 0 {
        kpanic("make_dev_s: NULL cdevsw");
    }
    let Some(name) = normalize_name(raw_name) else {
        return EINVAL;
    };
    let version: u32 = rd(devsw);
    let dead = version != D_VERSION;
    if dead {
        // SAFETY: d_name at +8 is a C string.
        let dname = unsafe { super::c_str(rd(devsw + 8), 64) };
        super::console_write(&format!(
            "WARNING: Device driver \"{dname}\" has wrong version.\n"
        ));
    }
    let d_flags: u32 = rd(devsw + 4);
    // SAFETY: the kernel marks the module's cdevsw initialised in place; if
    // the module put it in read-only memory this faults, as it would in FreeBSD.
    unsafe { std::ptr::write_volatile((devsw + 4) as *mut u32, d_flags | D_INIT) };

    let mem = LowRegion::new(CDEV_SIZE).expect("mmap struct cdev");
    let addr = mem.addr();
    // SAFETY: fields of our own fake struct cdev.
    unsafe {
        std::ptr::write((addr + SI_DRV1) as *mut u64, drv1);
        std::ptr::write((addr + SI_DRV2) as *mut u64, drv2);
        std::ptr::write((addr + SI_DEVSW) as *mut u64, devsw);
        let n = name.as_bytes();
        std::ptr::copy_nonoverlapping(n.as_ptr(), (addr + SI_NAME) as *mut u8, n.len().min(255));
    }
    let err = with_devfs(|d| {
        if d.cdevs.values().any(|c| c.name == name) {
            if flags & MAKEDEV_CHECKNAME != 0 {
                return EEXIST;
            }
            kpanic(&format!("make_dev_s: device /dev/{name} already exists"));
        }
        d.cdevs.insert(
            addr,
            Cdev {
                name: name.clone(),
                mem,
                devsw,
                uid,
                gid,
                mode: (mode & 0o7777) as u32,
                dead,
                destroyed: false,
                threads_inside: 0,
                open_files: 0,
            },
        );
        0
    });
    if err == 0 {
        // SAFETY: `cdevp` is the caller's `struct cdev **`.
        unsafe { std::ptr::write_unaligned(cdevp as *mut u64, addr) };
    }
    err
}

extern "C" fn kpi_make_dev_args_init_impl(args: u64, size: usize) {
    // SAFETY: the caller passes its struct make_dev_args of `size` bytes.
    unsafe {
        std::ptr::write_bytes(args as *mut u8, 0, size);
        std::ptr::write_unaligned(args as *mut u64, size as u64);
    }
}

extern "C" fn kpi_destroy_dev(cdev: u64) {
    let (inside_self, dtors) = with_devfs(|d| {
        let Some(c) = d.cdevs.get_mut(&cdev) else {
            kpanic(&format!("destroy_dev: {cdev:#x} is not a live cdev"));
        };
        c.destroyed = true;
        let fpop = cpu::with_thread(|t| t.fpop);
        let inside_self = fpop.is_some_and(|f| d.files.get(&f).is_some_and(|f| f.cdev == cdev));
        let mut dtors = Vec::new();
        for f in d.files.values_mut().filter(|f| f.cdev == cdev) {
            if let Some(p) = f.privdata.take() {
                dtors.push(p);
            }
        }
        (inside_self, dtors)
    });
    if inside_self {
        kpanic("destroy_dev: called from a method of the device being destroyed (would deadlock)");
    }
    cpu::blocking("destroy_dev", false, || {
        let mut g = devfs();
        while g
            .get_or_insert_with(Devfs::default)
            .cdevs
            .get(&cdev)
            .is_some_and(|c| c.threads_inside > 0)
        {
            g = CHANGED.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    });
    for (data, dtor) in dtors {
        call_dtor(dtor, data);
    }
    with_devfs(|d| {
        if let Some(c) = d.cdevs.remove(&cdev) {
            d.graveyard.push(c);
        }
    });
}

fn call_dtor(dtor: u64, data: u64) {
    if dtor != 0 {
        // SAFETY: `dtor` is the module's `d_priv_dtor_t`.
        let f: extern "C" fn(u64) = unsafe { std::mem::transmute(dtor) };
        f(data);
    }
}

extern "C" fn kpi_devfs_set_cdevpriv(data: u64, dtor: u64) -> i32 {
    let Some(fp) = cpu::with_thread(|t| t.fpop) else {
        return ENOENT;
    };
    with_devfs(|d| match d.files.get_mut(&fp) {
        None => ENOENT,
        Some(f) if f.privdata.is_some() => EBUSY,
        Some(f) => {
            f.privdata = Some((data, dtor));
            0
        }
    })
}

extern "C" fn kpi_devfs_get_cdevpriv(datap: *mut u64) -> i32 {
    let Some(fp) = cpu::with_thread(|t| t.fpop) else {
        return EBADF;
    };
    let found = with_devfs(|d| d.files.get(&fp).and_then(|f| f.privdata));
    match found {
        Some((data, _)) => {
            // SAFETY: `datap` is the caller's `void **`.
            unsafe { *datap = data };
            0
        }
        None => ENOENT,
    }
}

extern "C" fn kpi_devfs_clear_cdevpriv() {
    let Some(fp) = cpu::with_thread(|t| t.fpop) else {
        return;
    };
    let p = with_devfs(|d| d.files.get_mut(&fp).and_then(|f| f.privdata.take()));
    if let Some((data, dtor)) = p {
        call_dtor(dtor, data);
    }
}

/// Every node currently in the fake devfs.
pub fn nodes() -> Vec<NodeInfo> {
    with_devfs(|d| {
        d.cdevs
            .values()
            .filter(|c| !c.destroyed)
            .map(|c| NodeInfo {
                path: format!("/dev/{}", c.name),
                uid: c.uid,
                gid: c.gid,
                mode: c.mode,
            })
            .collect()
    })
}

/// Number of cdevs that still exist (created and not yet destroyed).
pub fn live_cdevs() -> usize {
    with_devfs(|d| d.cdevs.values().filter(|c| !c.destroyed).count())
}

/// An open file on a device node.
#[derive(Debug)]
pub struct DevFile {
    id: u64,
    closed: bool,
}

/// Call a cdevsw method with `td_fpop` set to `file` and the device's
/// thread count held, on the thread's current CPU (entering the kernel on
/// its home CPU if needed).
fn in_driver<R>(file: u64, cdev: u64, f: impl FnOnce() -> R) -> R {
    cpu::enter_kernel(cpu::home_cpu());
    with_devfs(|d| {
        if let Some(c) = d.cdevs.get_mut(&cdev) {
            c.threads_inside += 1;
        }
    });
    let saved = cpu::with_thread(|t| t.fpop.replace(file));
    let r = f();
    cpu::with_thread(|t| t.fpop = saved);
    with_devfs(|d| {
        if let Some(c) = d.cdevs.get_mut(&cdev) {
            c.threads_inside -= 1;
        }
    });
    CHANGED.notify_all();
    cpu::leave_kernel();
    r
}

fn method(devsw: u64, offset: u64) -> u64 {
    rd(devsw + offset)
}

/// Open `path` (e.g. "/dev/dtrace/dtrace") with open(2) flags `oflags`.
pub fn open(path: &str, oflags: i32) -> Result<DevFile, i32> {
    let name = path.strip_prefix("/dev/").unwrap_or(path);
    let fflag = match oflags & libc::O_ACCMODE {
        libc::O_RDONLY => FREAD,
        libc::O_WRONLY => FWRITE,
        _ => FREAD | FWRITE,
    };
    let found = with_devfs(|d| {
        let (addr, c) = d
            .cdevs
            .iter_mut()
            .find(|(_, c)| c.name == name && !c.destroyed)?;
        c.open_files += 1;
        let (addr, devsw, dead) = (*addr, c.devsw, c.dead);
        let id = d.next_file + 1;
        d.next_file = id;
        d.files.insert(
            id,
            OpenFile {
                cdev: addr,
                fflag,
                privdata: None,
            },
        );
        Some((id, addr, devsw, dead))
    });
    let Some((id, cdev, devsw, dead)) = found else {
        return Err(ENOENT);
    };
    let err = if dead {
        ENXIO
    } else {
        let d_open = method(devsw, 16);
        in_driver(id, cdev, || {
            if d_open == 0 {
                return 0;
            }
            // SAFETY: d_open has the d_open_t signature.
            let f: extern "C" fn(u64, i32, i32, u64) -> i32 =
                unsafe { std::mem::transmute(d_open) };
            let err = f(cdev, oflags & 0xffff | fflag, S_IFCHR, cpu::curthread());
            if err != 0 {
                kpi_devfs_clear_cdevpriv();
            }
            err
        })
    };
    if err != 0 {
        with_devfs(|d| {
            d.files.remove(&id);
            if let Some(c) = d.cdevs.get_mut(&cdev) {
                c.open_files -= 1;
            }
        });
        return Err(err);
    }
    Ok(DevFile { id, closed: false })
}

fn file_info(id: u64) -> Option<(u64, i32, Option<u64>, bool)> {
    with_devfs(|d| {
        let f = d.files.get(&id)?;
        let c = d.cdevs.get(&f.cdev);
        Some((
            f.cdev,
            f.fflag,
            c.map(|c| c.devsw),
            c.is_none_or(|c| c.destroyed || c.dead),
        ))
    })
}

impl DevFile {
    /// ioctl(2) through the generic layer. `arg` is the user address of the
    /// parameter block (or the value itself for IOC_VOID commands).
    /// Returns 0 or an errno.
    pub fn ioctl(&self, cmd: u64, arg: u64) -> i32 {
        let Some((cdev, fflag, devsw, gone)) = file_info(self.id) else {
            return EBADF;
        };
        let com = cmd as u32;
        let size = ((com >> 16) & 0x1fff) as usize;
        if com & (IOC_VOID | IOC_IN | IOC_OUT) == 0 {
            return ENOTTY;
        }
        if gone {
            return ENXIO;
        }
        let Some(devsw) = devsw else { return ENXIO };
        let mut buf = vec![0u8; size.max(8)];
        let data = if size > 0 {
            if com & IOC_IN != 0 {
                let e = uaccess::copyin(arg, buf.as_mut_ptr() as u64, size);
                if e != 0 {
                    return e;
                }
            }
            buf.as_mut_ptr() as u64
        } else if com & IOC_VOID != 0 {
            buf[..8].copy_from_slice(&arg.to_le_bytes());
            buf.as_mut_ptr() as u64
        } else {
            buf.as_mut_ptr() as u64
        };
        let d_ioctl = method(devsw, 56);
        let err = in_driver(self.id, cdev, || {
            if d_ioctl == 0 {
                return ENODEV;
            }
            // SAFETY: d_ioctl has the d_ioctl_t signature.
            let f: extern "C" fn(u64, u64, u64, i32, u64) -> i32 =
                unsafe { std::mem::transmute(d_ioctl) };
            f(cdev, u64::from(com), data, fflag, cpu::curthread())
        });
        if err == 0 && com & IOC_OUT != 0 && size > 0 {
            return uaccess::copyout(buf.as_ptr() as u64, arg, size);
        }
        err
    }

    /// close(2): `d_close` on the last close (or every close with
    /// D_TRACKCLOSE), then the cdevpriv destructor.
    pub fn close(mut self) -> i32 {
        self.do_close()
    }

    fn do_close(&mut self) -> i32 {
        if self.closed {
            return 0;
        }
        self.closed = true;
        let Some((cdev, fflag, devsw, gone)) = file_info(self.id) else {
            return EBADF;
        };
        let last = with_devfs(|d| d.cdevs.get(&cdev).is_none_or(|c| c.open_files == 1));
        let mut err = 0;
        if let (false, Some(devsw)) = (gone, devsw) {
            let d_flags: u32 = rd(devsw + 4);
            let d_close = method(devsw, 32);
            if d_close != 0 && (last || d_flags & D_TRACKCLOSE != 0) {
                err = in_driver(self.id, cdev, || {
                    // SAFETY: d_close has the d_close_t signature.
                    let f: extern "C" fn(u64, i32, i32, u64) -> i32 =
                        unsafe { std::mem::transmute(d_close) };
                    f(cdev, fflag, S_IFCHR, cpu::curthread())
                });
            }
        }
        let p = with_devfs(|d| d.files.get_mut(&self.id).and_then(|f| f.privdata.take()));
        if let Some((data, dtor)) = p {
            in_driver(self.id, cdev, || call_dtor(dtor, data));
        }
        with_devfs(|d| {
            d.files.remove(&self.id);
            if let Some(c) = d.cdevs.get_mut(&cdev) {
                c.open_files -= 1;
            }
            if !d.files.values().any(|f| f.cdev == cdev) {
                d.graveyard.retain(|c| c.mem.addr() != cdev);
            }
        });
        err
    }

    /// Whether the file has per-open private data attached.
    pub fn has_cdevpriv(&self) -> bool {
        with_devfs(|d| d.files.get(&self.id).is_some_and(|f| f.privdata.is_some()))
    }
}

impl Drop for DevFile {
    fn drop(&mut self) {
        self.do_close();
    }
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        (
            "make_dev_args_init_impl",
            kpi_make_dev_args_init_impl as *const () as usize,
        ),
        ("destroy_dev", kpi_destroy_dev as *const () as usize),
        (
            "devfs_set_cdevpriv",
            kpi_devfs_set_cdevpriv as *const () as usize,
        ),
        (
            "devfs_get_cdevpriv",
            kpi_devfs_get_cdevpriv as *const () as usize,
        ),
        (
            "devfs_clear_cdevpriv",
            kpi_devfs_clear_cdevpriv as *const () as usize,
        ),
    ]
}
