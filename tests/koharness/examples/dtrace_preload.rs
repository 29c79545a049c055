//! `LD_PRELOAD` shim that routes a process's `/dev/dtrace/dtrace` to the
//! harness: our unmodified `dtrace` command then drives the real rdtrace.ko
//! (loaded into its own address space on first use) instead of the hosted
//! kernel.
//!
//!     LD_PRELOAD=target/debug/examples/libdtrace_preload.so \
//!     RDTRACE_KO=build/amd64/rdtrace.ko target/debug/dtrace -n 'BEGIN { trace(1); exit(0); }'
//!
//! It interposes `statx`/`stat64` (so the node "exists", mode 0600 char
//! device), `open64`/`open`/`openat` (a placeholder descriptor from
//! `/dev/null` stands for the harness file, so descriptor numbers never
//! collide), `ioctl` (through the harness's generic ioctl layer, with the
//! process's memory as user space), `close`, and `sysconf` so that
//! `_SC_NPROCESSORS_CONF`/`_SC_NPROCESSORS_ONLN` answer the harness's CPU
//! count (`RDTRACE_KOHARNESS_NCPU`, default 4): off FreeBSD that is how the
//! consumer learns how many CPUs' buffers the device has. Everything else
//! goes to the C library (`dlsym(RTLD_NEXT)`).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::sync::Mutex;

use rdtrace_koharness::kernel::{devfs, uaccess};
use rdtrace_koharness::kld::Kld;

const NODE: &[u8] = b"/dev/dtrace/dtrace";

struct State {
    _kld: Kld,
    files: HashMap<c_int, devfs::DevFile>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn is_node(path: *const c_char) -> bool {
    // SAFETY: path arguments of the interposed calls are C strings (or NULL).
    !path.is_null() && unsafe { CStr::from_ptr(path) }.to_bytes() == NODE
}

fn set_errno(e: c_int) {
    // SAFETY: the C library's thread-local errno.
    unsafe { *libc::__errno_location() = e };
}

/// The C library's definition of `name`.
fn next<T>(name: &CStr) -> T {
    // SAFETY: RTLD_NEXT lookup of a C library function whose type the
    // caller states; these functions always exist in glibc.
    unsafe {
        let p = libc::dlsym(libc::RTLD_NEXT, name.as_ptr());
        assert!(!p.is_null(), "dlsym({name:?}) failed");
        std::mem::transmute_copy(&p)
    }
}

fn ensure_loaded() -> Result<(), c_int> {
    static LOADING: Mutex<()> = Mutex::new(());
    // Serialise loaders, but never hold STATE while loading: reading the
    // file goes through the interposed open64/close themselves.
    let _loading = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    if STATE.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
        return Ok(());
    }
    let path = std::env::var("RDTRACE_KO").unwrap_or_else(|_| "build/amd64/rdtrace.ko".into());
    let bytes = std::fs::read(&path).map_err(|_| libc::ENOENT)?;
    let kld = Kld::load("rdtrace.ko", bytes).map_err(|e| {
        eprintln!("koharness-preload: loading {path} failed: {e}");
        e.errno()
    })?;
    uaccess::set_process_user_space(true);
    eprintln!("koharness-preload: rdtrace.ko loaded into the harness");
    *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Some(State {
        _kld: kld,
        files: HashMap::new(),
    });
    Ok(())
}

fn open_node(flags: c_int) -> c_int {
    if let Err(e) = ensure_loaded() {
        set_errno(e);
        return -1;
    }
    let file = match devfs::open("/dev/dtrace/dtrace", flags) {
        Ok(f) => f,
        Err(e) => {
            set_errno(e);
            return -1;
        }
    };
    let real_open: extern "C" fn(*const c_char, c_int, c_int) -> c_int = next(c"open64");
    let fd = real_open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC, 0);
    if fd >= 0 {
        if let Some(st) = STATE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            st.files.insert(fd, file);
        }
    }
    fd
}

/// # Safety
/// C calling convention of `open64(path, flags, mode)`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_int) -> c_int {
    if is_node(path) {
        return open_node(flags);
    }
    next::<extern "C" fn(*const c_char, c_int, c_int) -> c_int>(c"open64")(path, flags, mode)
}

/// # Safety
/// C calling convention of `open(path, flags, mode)`.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_int) -> c_int {
    if is_node(path) {
        return open_node(flags);
    }
    next::<extern "C" fn(*const c_char, c_int, c_int) -> c_int>(c"open")(path, flags, mode)
}

/// # Safety
/// C calling convention of `openat(dirfd, path, flags, mode)`.
#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_int,
) -> c_int {
    if is_node(path) {
        return open_node(flags);
    }
    next::<extern "C" fn(c_int, *const c_char, c_int, c_int) -> c_int>(c"openat")(
        dirfd, path, flags, mode,
    )
}

/// # Safety
/// C calling convention of `ioctl(fd, request, arg)`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let routed = {
        let g = STATE.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref().is_some_and(|st| st.files.contains_key(&fd))
    };
    if !routed {
        return next::<extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int>(c"ioctl")(
            fd, request, arg,
        );
    }
    // Issue the ioctl without holding the table lock (it may run for long).
    let file = STATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .and_then(|st| st.files.remove(&fd));
    let Some(file) = file else {
        set_errno(libc::EBADF);
        return -1;
    };
    let e = file.ioctl(request, arg as u64);
    if std::env::var_os("RDTRACE_KOHARNESS_VERBOSE").is_some() {
        eprintln!(
            "koharness-preload: ioctl {request:#x} -> {e} ({} callout handler calls so far, uptime {} ms)",
            rdtrace_koharness::kernel::callout::total_fired(),
            rdtrace_koharness::kernel::time::uptime_ns() / 1_000_000
        );
    }
    if let Some(st) = STATE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        st.files.insert(fd, file);
    }
    if e != 0 {
        set_errno(e);
        return -1;
    }
    0
}

/// # Safety
/// C calling convention of `close(fd)`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    let file = STATE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .and_then(|st| st.files.remove(&fd));
    drop(file);
    next::<extern "C" fn(c_int) -> c_int>(c"close")(fd)
}

/// # Safety
/// C calling convention of `statx(dirfd, path, flags, mask, buf)`.
#[no_mangle]
pub unsafe extern "C" fn statx(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mask: u32,
    buf: *mut libc::statx,
) -> c_int {
    if is_node(path) {
        // SAFETY: the caller's statx buffer.
        unsafe {
            std::ptr::write_bytes(buf, 0, 1);
            (*buf).stx_mask = libc::STATX_TYPE | libc::STATX_MODE;
            (*buf).stx_mode = (libc::S_IFCHR | 0o600) as u16;
        }
        return 0;
    }
    next::<extern "C" fn(c_int, *const c_char, c_int, u32, *mut libc::statx) -> c_int>(c"statx")(
        dirfd, path, flags, mask, buf,
    )
}

/// # Safety
/// C calling convention of `stat64(path, buf)`.
#[no_mangle]
pub unsafe extern "C" fn stat64(path: *const c_char, buf: *mut libc::stat64) -> c_int {
    if is_node(path) {
        // SAFETY: the caller's stat buffer.
        unsafe {
            std::ptr::write_bytes(buf, 0, 1);
            (*buf).st_mode = libc::S_IFCHR | 0o600;
        }
        return 0;
    }
    next::<extern "C" fn(*const c_char, *mut libc::stat64) -> c_int>(c"stat64")(path, buf)
}

/// # Safety
/// C calling convention of `sysconf(name)`.
#[no_mangle]
pub unsafe extern "C" fn sysconf(name: c_int) -> libc::c_long {
    if name == libc::_SC_NPROCESSORS_CONF || name == libc::_SC_NPROCESSORS_ONLN {
        // The CPUs of the kernel behind the routed device node (the harness
        // fixes its count at first use, from the environment).
        return libc::c_long::try_from(rdtrace_koharness::kernel::cpu::ncpu())
            .unwrap_or(libc::c_long::MAX);
    }
    next::<extern "C" fn(c_int) -> libc::c_long>(c"sysconf")(name)
}
