//! Memory below 2 GiB for module images, trampolines and kernel data objects.
//!
//! An amd64 FreeBSD module is compiled with the kernel code model: it reaches
//! every symbol through 32-bit sign-extended absolute (`R_X86_64_32S`) or
//! PC-relative (`PC32`/`PLT32`) relocations. In a Linux process that only works
//! if the module, the trampolines to the harness's functions and the kernel
//! data objects all live in the low 2 GiB, which `MAP_32BIT` provides.
//! Not probe context: these functions call mmap/mprotect/munmap.

use std::io;

/// The page size the harness assumes (amd64).
pub const PAGE_SIZE: usize = 4096;

/// Round `value` up to a multiple of `align` (a power of two).
pub fn align_up(value: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    (value + align - 1) & !(align - 1)
}

/// An anonymous mapping inside the low 2 GiB, unmapped on drop.
#[derive(Debug)]
pub struct LowRegion {
    base: *mut u8,
    len: usize,
}

// SAFETY: the region is plain memory; synchronisation of its contents is the
// job of whoever writes into it (the loader before publishing the image, the
// fake kernel's own locks afterwards).
unsafe impl Send for LowRegion {}
// SAFETY: as above; `LowRegion` itself holds no interior state.
unsafe impl Sync for LowRegion {}

impl LowRegion {
    /// Map `len` bytes (rounded up to whole pages) of zeroed, read-write memory
    /// below 2 GiB.
    pub fn new(len: usize) -> io::Result<LowRegion> {
        let len = align_up(len.max(1), PAGE_SIZE);
        // SAFETY: an anonymous private mapping at a kernel-chosen address has
        // no preconditions; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let region = LowRegion {
            base: base.cast(),
            len,
        };
        if region.end() > 0x8000_0000 {
            return Err(io::Error::other("MAP_32BIT mapping ended above 2 GiB"));
        }
        Ok(region)
    }

    /// First address of the region.
    pub fn addr(&self) -> u64 {
        self.base as u64
    }

    /// One past the last address of the region.
    pub fn end(&self) -> u64 {
        self.addr() + self.len as u64
    }

    /// Length in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (never true: regions have at least one page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Raw pointer to the start of the region.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base
    }

    /// Change the protection of `[offset, offset + len)` (page-aligned).
    pub fn protect(&self, offset: usize, len: usize, prot: i32) -> io::Result<()> {
        if offset % PAGE_SIZE != 0 || offset + len > self.len {
            return Err(io::Error::other(
                "protect: range not page-aligned or out of region",
            ));
        }
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range lies inside our own mapping (checked above).
        let rc = unsafe { libc::mprotect(self.base.add(offset).cast(), len, prot) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether `[addr, addr + len)` lies inside the region.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.addr() && addr.checked_add(len).is_some_and(|end| end <= self.end())
    }
}

impl Drop for LowRegion {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe a mapping we created and nobody else
        // unmaps; after drop no pointer into it is used by the harness.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

/// Size of one trampoline: `movabs $target, %rax; jmp *%rax`, padded to 16.
pub const TRAMPOLINE_SIZE: usize = 16;

/// Encode a trampoline that jumps to `target`. `%rax` is free to clobber at a
/// call boundary in the SysV ABI except for variadic calls, where `%al` carries
/// the vector register count — the kernel never uses vector registers, and
/// the variadic shims ignore `%al`.
pub fn encode_trampoline(target: u64) -> [u8; TRAMPOLINE_SIZE] {
    let mut code = [0xccu8; TRAMPOLINE_SIZE];
    code[0] = 0x48; // REX.W
    code[1] = 0xb8; // mov imm64, %rax
    code[2..10].copy_from_slice(&target.to_le_bytes());
    code[10] = 0xff; // jmp *%rax
    code[11] = 0xe0;
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn add(a: u64, b: u64) -> u64 {
        a + b
    }

    #[test]
    fn regions_are_below_2_gib_and_trampolines_jump() {
        let r = LowRegion::new(100).expect("map");
        assert!(r.end() <= 0x8000_0000);
        assert_eq!(r.len(), PAGE_SIZE);
        let code = encode_trampoline(add as *const () as u64);
        // SAFETY: the region is ours and writable; then made executable.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), r.as_ptr(), code.len()) };
        r.protect(0, PAGE_SIZE, libc::PROT_READ | libc::PROT_EXEC)
            .expect("mprotect");
        // SAFETY: the trampoline jumps to `add`, which has this signature.
        let f: extern "C" fn(u64, u64) -> u64 = unsafe { std::mem::transmute(r.addr()) };
        assert_eq!(f(40, 2), 42);
        assert!(
            r.protect(1, 10, libc::PROT_READ).is_err(),
            "unaligned protect refused"
        );
    }

    #[test]
    fn align_up_rounds_to_powers_of_two() {
        assert_eq!(align_up(0, 16), 0);
        assert_eq!(align_up(1, 16), 16);
        assert_eq!(align_up(4096, 4096), 4096);
        assert_eq!(align_up(4097, 4096), 8192);
    }
}
