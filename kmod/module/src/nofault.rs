//! Fault-tolerant loads for probe context.
//!
//! A D program may dereference any address. The platform reads such memory
//! one byte at a time through `rdtrace_shim_nofault_load_byte` (C shim), and
//! this module installs the kernel's `dtrace_trap_func` hook: a data fault
//! whose program counter is exactly one of the shim's load instructions is
//! resumed at the shim's recovery label, which reports the failure; every
//! other trap is left to the kernel. So a bad address costs a trap and an
//! error code, never a sleep (the fault never reaches the VM system) and
//! never a panic.
//!
//! What the hook sees per architecture (the kernel calls it first thing for
//! kernel-mode traps): amd64 passes the trap number (`T_PAGEFLT` 12,
//! `T_PROTFLT` 9) and keeps the PC at `tf_rip` (offset 152); arm64 passes the
//! ESR exception class (data abort from EL1, 0x25) with the PC at `tf_elr`
//! (16); riscv64 passes the `scause` code (load access fault 5, load page
//! fault 13) with the PC at `tf_sepc` (248).
//!
//! The decision ([`trap_resume_pc`]) and the address-range rules are
//! host-tested; the hook itself, in trap context, only reads and rewrites the
//! saved PC.

/// Trap codes the hook claims (when the PC is a nofault load), per arch.
pub const fn is_data_fault(arch: &str, trap_type: u32) -> bool {
    match arch.as_bytes() {
        b"aarch64" => trap_type == 0x25,
        b"riscv64" => trap_type == 5 || trap_type == 13,
        _ => trap_type == 9 || trap_type == 12,
    }
}

/// Offset of the saved program counter in `struct trapframe`, per arch.
pub const fn trapframe_pc_offset(arch: &str) -> usize {
    match arch.as_bytes() {
        b"aarch64" => 16,
        b"riscv64" => 248,
        _ => 152,
    }
}

/// The program counter to resume at, if this trap is a data fault of one of
/// the nofault load instructions; `None` leaves the trap to the kernel.
pub fn trap_resume_pc(
    arch: &str,
    trap_type: u32,
    pc: u64,
    load_pcs: [u64; 2],
    resume_pc: u64,
) -> Option<u64> {
    let ours = pc != 0 && load_pcs.contains(&pc);
    (ours && is_data_fault(arch, trap_type)).then_some(resume_pc)
}

/// First address above the user address space rdtrace reads, per arch:
/// amd64 48-bit, arm64 48-bit (TTBR0), riscv64 Sv48 (an Sv39 kernel simply
/// faults on the part it lacks, which the hook absorbs).
pub const fn user_address_limit(arch: &str) -> u64 {
    match arch.as_bytes() {
        b"aarch64" => 0x0001_0000_0000_0000,
        _ => 0x0000_8000_0000_0000,
    }
}

/// Whether `[addr, addr + len)` lies inside the user address space.
pub const fn is_user_range(arch: &str, addr: u64, len: usize) -> bool {
    match addr.checked_add(len as u64) {
        Some(end) => end <= user_address_limit(arch),
        None => false,
    }
}

#[cfg(target_os = "none")]
pub use kernel::*;

#[cfg(target_os = "none")]
mod kernel {
    use super::*;
    use core::ffi::{c_int, c_uint, c_void};
    use core::ptr::{addr_of, addr_of_mut};
    use core::sync::atomic::{AtomicBool, Ordering};

    use rdtrace_ffi::kpi;
    use rdtrace_framework::platform::Errno;

    static INSTALLED: AtomicBool = AtomicBool::new(false);

    use crate::platform::TARGET_ARCH;

    fn load_pcs() -> [u64; 2] {
        [
            addr_of!(kpi::rdtrace_shim_nofault_load_pc) as u64,
            addr_of!(kpi::rdtrace_shim_nofault_user_load_pc) as u64,
        ]
    }

    fn resume_pc() -> u64 {
        addr_of!(kpi::rdtrace_shim_nofault_resume_pc) as u64
    }

    /// The `dtrace_trap_func` hook. Trap context: reads and at most rewrites
    /// the saved program counter.
    unsafe extern "C" fn rdtrace_trap(frame: *mut kpi::trapframe, trap_type: c_uint) -> c_int {
        if frame.is_null() {
            return 0;
        }
        let pc = (frame as *mut u8).wrapping_add(trapframe_pc_offset(TARGET_ARCH)) as *mut u64;
        // SAFETY: the kernel passes the trap frame of the faulting context;
        // the saved PC lies at this architecture's offset (module comment).
        let current = unsafe { core::ptr::read_volatile(pc) };
        match trap_resume_pc(TARGET_ARCH, trap_type, current, load_pcs(), resume_pc()) {
            Some(resume) => {
                // SAFETY: as above; resuming at the shim's recovery label,
                // which belongs to the same function and frame.
                unsafe { core::ptr::write_volatile(pc, resume) };
                1
            }
            None => 0,
        }
    }

    /// Install the hook (MOD_LOAD). EBUSY if another DTrace owns it.
    pub fn install() -> Result<(), Errno> {
        let slot = addr_of_mut!(kpi::dtrace_trap_func);
        // SAFETY: dtrace_trap_func is a kernel global function pointer; we
        // only replace a null pointer, during MOD_LOAD.
        unsafe {
            if core::ptr::read_volatile(slot).is_some() {
                return Err(Errno::EBUSY);
            }
            core::ptr::write_volatile(slot, Some(rdtrace_trap));
        }
        INSTALLED.store(true, Ordering::Release);
        Ok(())
    }

    /// Remove the hook (MOD_UNLOAD) and wait until no CPU can still be
    /// running it.
    pub fn uninstall() {
        if !INSTALLED.swap(false, Ordering::AcqRel) {
            return;
        }
        let slot = addr_of_mut!(kpi::dtrace_trap_func);
        // SAFETY: we installed the hook; put the null pointer back.
        unsafe { core::ptr::write_volatile(slot, None) };
        fn nothing(_: usize) {}
        use rdtrace_framework::platform::Platform;
        crate::platform::PLATFORM.xcall(None, nothing, 0);
    }

    /// Whether fault-tolerant loads are available now.
    pub fn available() -> bool {
        INSTALLED.load(Ordering::Acquire)
    }

    /// amd64: whether user accesses need stac/clac (the CPU enforces SMAP).
    pub fn smap_enabled() -> bool {
        // SAFETY: reads the kernel's cpu_stdext_feature (weakly referenced).
        unsafe { kpi::rdtrace_shim_smap_enabled() != 0 }
    }

    /// Copy `buf.len()` bytes from `addr` without ever taking a fault the
    /// kernel would handle. `user` selects user-space access (SMAP).
    /// Probe context.
    pub fn load(addr: u64, buf: &mut [u8], user: bool) -> Result<(), u64> {
        if !available() {
            return Err(addr);
        }
        // amd64 brackets user loads with stac/clac only under SMAP (the
        // instructions fault on CPUs without it); the other ports always
        // need their user-access form.
        let user_access = if cfg!(target_arch = "x86_64") {
            c_int::from(user && smap_enabled())
        } else {
            c_int::from(user)
        };
        for (i, byte) in buf.iter_mut().enumerate() {
            let at = addr.wrapping_add(i as u64);
            // SAFETY: the shim's load either completes or, if it faults, is
            // resumed by our trap hook, which is installed (checked above).
            let value = unsafe {
                kpi::rdtrace_shim_nofault_load_byte(at as usize as *const c_void, user_access)
            };
            if value == kpi::RDTRACE_NOFAULT_FAILED {
                return Err(at);
            }
            *byte = value as u8;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_faults_of_the_load_instructions_are_taken() {
        let loads = [0xffff_ffff_8123_4000, 0xffff_ffff_8123_4008];
        let resume = 0xffff_ffff_8123_4010;
        for pc in loads {
            assert_eq!(
                trap_resume_pc("x86_64", 12, pc, loads, resume),
                Some(resume)
            );
            assert_eq!(trap_resume_pc("x86_64", 9, pc, loads, resume), Some(resume));
            assert_eq!(
                trap_resume_pc("aarch64", 0x25, pc, loads, resume),
                Some(resume)
            );
            assert_eq!(
                trap_resume_pc("riscv64", 13, pc, loads, resume),
                Some(resume)
            );
            assert_eq!(
                trap_resume_pc("riscv64", 5, pc, loads, resume),
                Some(resume)
            );
        }
        // Another instruction faulting: the kernel's business.
        assert_eq!(
            trap_resume_pc("x86_64", 12, loads[0] + 1, loads, resume),
            None
        );
        // Other traps at a load (breakpoint, an arm64 instruction abort,
        // a riscv store fault): not ours.
        assert_eq!(trap_resume_pc("x86_64", 3, loads[0], loads, resume), None);
        assert_eq!(
            trap_resume_pc("aarch64", 0x21, loads[0], loads, resume),
            None
        );
        assert_eq!(trap_resume_pc("riscv64", 15, loads[0], loads, resume), None);
        // Hook not initialised: never claims anything.
        assert_eq!(trap_resume_pc("x86_64", 12, 0, [0, 0], resume), None);
    }

    #[test]
    fn trap_frame_offsets_follow_abi_facts() {
        assert_eq!(trapframe_pc_offset("x86_64"), 152);
        assert_eq!(trapframe_pc_offset("aarch64"), 16);
        assert_eq!(trapframe_pc_offset("riscv64"), 248);
    }

    #[test]
    fn user_ranges_stay_below_the_limit() {
        let limit = user_address_limit("x86_64");
        assert!(is_user_range("x86_64", 0x1000, 16));
        assert!(is_user_range("x86_64", limit - 8, 8));
        assert!(!is_user_range("x86_64", limit - 8, 9));
        assert!(!is_user_range("x86_64", 0xffff_8000_0000_0000, 1));
        assert!(!is_user_range("x86_64", u64::MAX, 2));
        assert!(is_user_range("aarch64", 0x0000_ffff_ffff_0000, 16));
        assert!(!is_user_range("aarch64", 0xffff_0000_0000_0000, 1));
    }
}
