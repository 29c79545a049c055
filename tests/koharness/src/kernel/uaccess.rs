//! copy(9) and fetch(9): user-space access with EFAULT on bad addresses.
//!
//! By default the harness's "user address space" is the set of
//! [`UserBuf`]s tests create; any other address — a kernel address, an
//! unmapped one, a range running past the end of a buffer — is a fault:
//! `copyin`/`copyout` return EFAULT, `copyinstr` EFAULT (or ENAMETOOLONG
//! when no NUL fits in `len`), `fubyte`/`fuword16` -1 and `fueword*` -1.
//! With [`set_process_user_space`] a consumer library running in this
//! process can pass its own heap pointers (as libdtrace does inside ioctl
//! arguments): then every mapped address that is not kernel memory (below
//! 2 GiB, where the fake kernel, modules, pcpu and threads live, or a live
//! kernel `malloc` allocation) is user memory, accessed with
//! `process_vm_readv`/`process_vm_writev` so an unmapped address is EFAULT,
//! never a crash. No access ever traps, so these are safe to call in probe
//! context (they take a host lock that is never held across module code).

use std::sync::Mutex;

pub const EFAULT: i32 = 14;
pub const ENAMETOOLONG: i32 = 63;

static USER_RANGES: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
static PROCESS_USER_SPACE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Treat every mapped non-kernel address of this process as user memory
/// (for an in-process consumer library), or only [`UserBuf`]s (default).
pub fn set_process_user_space(on: bool) {
    PROCESS_USER_SPACE.store(on, std::sync::atomic::Ordering::SeqCst);
}

fn is_kernel_range(addr: u64, len: u64) -> bool {
    addr < 0x8000_0000 || super::malloc::overlaps_live(addr, len)
}

/// Copy between this process's "user" memory and kernel memory without
/// ever faulting: `process_vm_readv`/`writev` on ourselves.
fn process_copy(user: u64, kernel: u64, len: usize, to_kernel: bool) -> bool {
    if len == 0 {
        return true;
    }
    if is_kernel_range(user, len as u64) {
        return false;
    }
    let local = libc::iovec {
        iov_base: kernel as *mut libc::c_void,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: user as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: the local iovec is kernel memory the caller owns; the remote
    // side is checked by the host kernel, which returns EFAULT for unmapped
    // addresses instead of faulting us.
    let n = unsafe {
        if to_kernel {
            libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0)
        } else {
            libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0)
        }
    };
    n == len as isize
}

fn process_mode() -> bool {
    PROCESS_USER_SPACE.load(std::sync::atomic::Ordering::SeqCst)
}

/// A buffer in the fake user address space.
pub struct UserBuf {
    data: Box<[u8]>,
}

impl UserBuf {
    /// A zeroed user buffer of `len` bytes.
    pub fn new(len: usize) -> UserBuf {
        UserBuf::from_bytes(&vec![0u8; len])
    }

    /// A user buffer holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> UserBuf {
        let data: Box<[u8]> = bytes.to_vec().into_boxed_slice();
        let lo = data.as_ptr() as u64;
        USER_RANGES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((lo, lo + data.len() as u64));
        UserBuf { data }
    }

    /// The user address of the buffer.
    pub fn addr(&self) -> u64 {
        self.data.as_ptr() as u64
    }

    /// Current contents.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl Drop for UserBuf {
    fn drop(&mut self) {
        let lo = self.data.as_ptr() as u64;
        let mut r = USER_RANGES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = r.iter().position(|(a, _)| *a == lo) {
            r.swap_remove(i);
        }
    }
}

/// Run `f` if `[addr, addr+len)` is user memory; the range stays valid for
/// the duration of `f`.
fn with_user_range<R>(addr: u64, len: u64, f: impl FnOnce() -> R) -> Option<R> {
    let r = USER_RANGES.lock().unwrap_or_else(|e| e.into_inner());
    let end = addr.checked_add(len)?;
    if len == 0 || r.iter().any(|(lo, hi)| addr >= *lo && end <= *hi) {
        Some(f())
    } else {
        None
    }
}

/// Length of the user range starting at `addr` (0 if `addr` is not user memory).
fn user_extent(addr: u64) -> u64 {
    let r = USER_RANGES.lock().unwrap_or_else(|e| e.into_inner());
    r.iter()
        .find(|(lo, hi)| addr >= *lo && addr < *hi)
        .map(|(_, hi)| hi - addr)
        .unwrap_or(0)
}

extern "C" fn kpi_copyin(uaddr: u64, kaddr: u64, len: usize) -> i32 {
    if process_mode() && user_extent(uaddr) == 0 {
        return if process_copy(uaddr, kaddr, len, true) {
            0
        } else {
            EFAULT
        };
    }
    // SAFETY: the user range was checked; `kaddr` is kernel memory the caller owns.
    with_user_range(uaddr, len as u64, || unsafe {
        std::ptr::copy(uaddr as *const u8, kaddr as *mut u8, len)
    })
    .map_or(EFAULT, |_| 0)
}

extern "C" fn kpi_copyout(kaddr: u64, uaddr: u64, len: usize) -> i32 {
    if process_mode() && user_extent(uaddr) == 0 {
        return if process_copy(uaddr, kaddr, len, false) {
            0
        } else {
            EFAULT
        };
    }
    // SAFETY: as for copyin, in the other direction.
    with_user_range(uaddr, len as u64, || unsafe {
        std::ptr::copy(kaddr as *const u8, uaddr as *mut u8, len)
    })
    .map_or(EFAULT, |_| 0)
}

extern "C" fn kpi_copyinstr(uaddr: u64, kaddr: u64, len: usize, done: *mut usize) -> i32 {
    let extent = user_extent(uaddr) as usize;
    let process = process_mode() && extent == 0;
    let mut copied = 0usize;
    let mut result = ENAMETOOLONG;
    while copied < len {
        let mut c = 0u8;
        if process {
            if !process_copy(uaddr + copied as u64, &mut c as *mut u8 as u64, 1, true) {
                result = EFAULT;
                break;
            }
        } else if copied >= extent {
            result = EFAULT;
            break;
        } else {
            // SAFETY: `uaddr + copied` is inside the user range (extent).
            c = unsafe { *((uaddr + copied as u64) as *const u8) };
        }
        // SAFETY: `kaddr` has room for `len` bytes by copyinstr's contract.
        unsafe { *((kaddr + copied as u64) as *mut u8) = c };
        copied += 1;
        if c == 0 {
            result = 0;
            break;
        }
    }
    if !done.is_null() {
        // SAFETY: `done` is the caller's size_t out-parameter.
        unsafe { *done = copied };
    }
    result
}

fn fetch<const N: usize>(addr: u64) -> Option<[u8; N]> {
    if process_mode() && user_extent(addr) == 0 {
        let mut out = [0u8; N];
        return process_copy(addr, out.as_mut_ptr() as u64, N, true).then_some(out);
    }
    // SAFETY: the range was checked to be user memory.
    with_user_range(addr, N as u64, || unsafe {
        std::ptr::read_unaligned(addr as *const [u8; N])
    })
}

extern "C" fn kpi_fubyte(addr: u64) -> i32 {
    fetch::<1>(addr).map_or(-1, |b| i32::from(b[0]))
}

extern "C" fn kpi_fuword16(addr: u64) -> i32 {
    fetch::<2>(addr).map_or(-1, |b| i32::from(u16::from_le_bytes(b)))
}

extern "C" fn kpi_fueword(addr: u64, val: *mut i64) -> i32 {
    kpi_fueword64(addr, val)
}

extern "C" fn kpi_fueword32(addr: u64, val: *mut i32) -> i32 {
    match fetch::<4>(addr) {
        // SAFETY: `val` is the caller's out-parameter.
        Some(b) => unsafe {
            *val = i32::from_le_bytes(b);
            0
        },
        None => -1,
    }
}

extern "C" fn kpi_fueword64(addr: u64, val: *mut i64) -> i32 {
    match fetch::<8>(addr) {
        // SAFETY: `val` is the caller's out-parameter.
        Some(b) => unsafe {
            *val = i64::from_le_bytes(b);
            0
        },
        None => -1,
    }
}

/// `pmap_kextract(va)`: the "physical address" of a mapped kernel page, 0
/// if the page is not mapped. The harness has no physical memory, so the
/// answer is the page's own address (identity) when the page is readable —
/// probed with `process_vm_readv`, which cannot fault — and 0 otherwise.
extern "C" fn kpi_pmap_kextract(va: u64) -> u64 {
    let page = va & !0xfff;
    if page == 0 {
        return 0;
    }
    let mut byte = 0u8;
    let local = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    let remote = libc::iovec {
        iov_base: page as *mut libc::c_void,
        iov_len: 1,
    };
    // SAFETY: reading one byte of our own address space through the host
    // kernel, which returns EFAULT for an unmapped or unreadable page.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == 1 {
        va
    } else {
        0
    }
}

/// copyin for harness-side callers (the generic ioctl layer).
pub fn copyin(uaddr: u64, kaddr: u64, len: usize) -> i32 {
    kpi_copyin(uaddr, kaddr, len)
}

/// copyout for harness-side callers.
pub fn copyout(kaddr: u64, uaddr: u64, len: usize) -> i32 {
    kpi_copyout(kaddr, uaddr, len)
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("copyin", kpi_copyin as *const () as usize),
        ("copyout", kpi_copyout as *const () as usize),
        ("copyinstr", kpi_copyinstr as *const () as usize),
        ("fubyte", kpi_fubyte as *const () as usize),
        ("fuword16", kpi_fuword16 as *const () as usize),
        ("fueword", kpi_fueword as *const () as usize),
        ("fueword32", kpi_fueword32 as *const () as usize),
        ("fueword64", kpi_fueword64 as *const () as usize),
        ("pmap_kextract", kpi_pmap_kextract as *const () as usize),
    ]
}
