//! ENABLE and the helper device given DOF the kernel cannot copy in.
//!
//! FreeBSD's `dtrace_dof_copyin` copies the 64-byte header (unreadable:
//! EFAULT), checks the load size (`>= dof_maxsize`: E2BIG, `< 64`: EINVAL)
//! and then copies the whole image (unreadable: EFAULT). The helper device
//! returns that errno; `DTRACEIOC_ENABLE` discards it and answers EINVAL.
mod common;

use common::dof_builder::*;
use common::*;
use rdtrace_framework::abi::*;
use rdtrace_hosted::Errno;

/// A 64-byte DOF header (LP64, little-endian, DOF v2, DIF v2) whose load and
/// file sizes are `loadsz`.
fn header(loadsz: u64) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(&[0x7f, b'D', b'O', b'F']);
    h[4] = 2;
    h[5] = if cfg!(target_endian = "little") { 1 } else { 2 };
    h[6] = 2;
    h[7] = 2;
    h[8] = 8;
    h[9] = 8;
    h[20..24].copy_from_slice(&64u32.to_ne_bytes());
    h[24..28].copy_from_slice(&32u32.to_ne_bytes());
    h[32..40].copy_from_slice(&64u64.to_ne_bytes());
    h[40..48].copy_from_slice(&loadsz.to_ne_bytes());
    h[48..56].copy_from_slice(&loadsz.to_ne_bytes());
    h
}

/// Two anonymous pages, the second inaccessible: bytes placed at the end of
/// the first page are readable, anything past them faults.
struct GuardedPage {
    base: *mut u8,
}

impl GuardedPage {
    fn new() -> GuardedPage {
        // SAFETY: an anonymous private mapping with no address hint; the
        // result is checked against MAP_FAILED before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        // SAFETY: the second page lies inside the mapping just created.
        let rc =
            unsafe { libc::mprotect(base.cast::<u8>().add(4096).cast(), 4096, libc::PROT_NONE) };
        assert_eq!(rc, 0);
        GuardedPage { base: base.cast() }
    }

    /// Copies `bytes` so they end exactly at the guard page; returns their address.
    fn place_at_end(&self, bytes: &[u8]) -> u64 {
        assert!(bytes.len() <= 4096);
        // SAFETY: the destination range lies within the first (writable) page.
        unsafe {
            let dst = self.base.add(4096 - bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            dst as u64
        }
    }

    fn guard_address(&self) -> u64 {
        self.base as u64 + 4096
    }
}

impl Drop for GuardedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`.
        unsafe { libc::munmap(self.base.cast(), 8192) };
    }
}

fn enable_at(c: &rdtrace_hosted::HostedConsumer, addr: u64) -> Result<(), Errno> {
    let mut arg = [0u8; 16];
    arg[0..8].copy_from_slice(&addr.to_ne_bytes());
    c.ioctl(DTRACEIOC_ENABLE, &mut arg)
}

fn helper_adddof_at(addr: u64) -> Result<i32, Errno> {
    let mut arg = [0u8; 88];
    arg[72..80].copy_from_slice(&addr.to_ne_bytes());
    kernel().helper_ioctl(DTRACEHIOC_ADDDOF, &mut arg)?;
    Ok(i32::from_ne_bytes(arg[84..88].try_into().unwrap()))
}

#[test]
fn enable_answers_einval_for_every_dof_it_cannot_copy_in() {
    let c = open();
    let page = GuardedPage::new();

    // Unreadable header.
    assert_eq!(enable_at(&c, page.guard_address()), Err(Errno::EINVAL));
    assert!(
        c.last_dof_error().contains("header"),
        "{}",
        c.last_dof_error()
    );

    // Load size at the limit (dof_maxsize, 8 MiB): E2BIG inside, EINVAL out.
    let big = header(DOF_MAXSIZE);
    assert_eq!(enable_at(&c, big.as_ptr() as u64), Err(Errno::EINVAL));
    assert!(
        c.last_dof_error().contains("exceeds maximum"),
        "{}",
        c.last_dof_error()
    );

    // Header readable, the rest of the claimed image is not.
    let at = page.place_at_end(&header(4096));
    assert_eq!(enable_at(&c, at), Err(Errno::EINVAL));
    assert!(
        c.last_dof_error().contains("copyin"),
        "{}",
        c.last_dof_error()
    );

    // Load size smaller than the header.
    let small = header(32);
    assert_eq!(enable_at(&c, small.as_ptr() as u64), Err(Errno::EINVAL));
    assert!(
        c.last_dof_error().contains("invalid load size"),
        "{}",
        c.last_dof_error()
    );

    // The consumer still works: a valid enabling goes through afterwards.
    let ids = test_provider("tcopyin", &["p"]);
    let d = dof(
        &[Clause::new(
            "tcopyin:::p",
            vec![Act::trace(Dif::constant(7))],
        )],
        &[],
    );
    assert_eq!(enable(&c, &d), Ok(1));
    go(&c).unwrap();
    fire(ids[0], [0; 5]);
    stop(&c).unwrap();
    assert_eq!(all_records(&c).len(), 1);
}

#[test]
fn helper_adddof_returns_the_copyin_errno() {
    let page = GuardedPage::new();
    assert_eq!(helper_adddof_at(page.guard_address()), Err(Errno::EFAULT));
    let big = header(DOF_MAXSIZE);
    assert_eq!(helper_adddof_at(big.as_ptr() as u64), Err(Errno::E2BIG));
    let just_under = header(DOF_MAXSIZE - 1);
    // Under the limit the size is accepted and the (absent) image is what fails.
    let at = page.place_at_end(&just_under);
    assert_eq!(helper_adddof_at(at), Err(Errno::EFAULT));
    let small = header(8);
    assert_eq!(helper_adddof_at(small.as_ptr() as u64), Err(Errno::EINVAL));
    // A well-formed (empty) helper DOF is accepted and gets a generation.
    let ok = header(64);
    assert!(helper_adddof_at(ok.as_ptr() as u64).unwrap() > 0);
}
