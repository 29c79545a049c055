//! Fault-tolerant loads for probe context (amd64).
//!
//! A D program may dereference any address. The platform reads such memory
//! one byte at a time through `rdtrace_shim_nofault_load_byte` (C shim), and
//! this module installs the kernel's `dtrace_trap_func` hook: a page fault or
//! protection fault whose instruction pointer is exactly the shim's load
//! instruction is resumed at the shim's recovery label, which reports the
//! failure; every other trap is left to the kernel. So a bad address costs a
//! trap and an error code, never a sleep (the fault is not handled by the VM
//! system) and never a panic.
//!
//! arm64 and riscv64 do not have the shim's load sequence yet; there the
//! platform refuses user loads (see `platform`).
//!
//! [`trap_resume_pc`] (the decision) is host-tested; the hook itself, in
//! probe/trap context, only reads and writes the trap frame.

/// amd64 trap numbers (`T_PROTFLT`, `T_PAGEFLT` in machine/trap.h).
pub const T_PROTFLT: u32 = 9;
pub const T_PAGEFLT: u32 = 12;

/// Offset of `tf_rip` in the amd64 `struct trapframe` (abi-facts §6.2).
pub const TF_RIP_OFFSET: usize = 152;

/// The instruction pointer to resume at, if this trap is a fault of the
/// nofault load instruction; `None` leaves the trap to the kernel.
pub const fn trap_resume_pc(trap_type: u32, rip: u64, load_pc: u64, resume_pc: u64) -> Option<u64> {
    if (trap_type == T_PAGEFLT || trap_type == T_PROTFLT) && rip == load_pc && load_pc != 0 {
        Some(resume_pc)
    } else {
        None
    }
}

/// Highest user address (exclusive) rdtrace reads: the amd64 48-bit user
/// address space. Addresses above it (or LA57 user space) are refused.
pub const USER_ADDRESS_LIMIT: u64 = 0x0000_8000_0000_0000;

/// Whether `[addr, addr + len)` lies inside the user address space.
pub const fn is_user_range(addr: u64, len: usize) -> bool {
    match addr.checked_add(len as u64) {
        Some(end) => end <= USER_ADDRESS_LIMIT,
        None => false,
    }
}

#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub use kernel::*;

#[cfg(all(target_os = "none", target_arch = "x86_64"))]
mod kernel {
    use super::*;
    use core::ffi::{c_int, c_uint, c_void};
    use core::ptr::{addr_of, addr_of_mut};
    use core::sync::atomic::{AtomicBool, Ordering};

    use rdtrace_ffi::kpi;
    use rdtrace_framework::platform::Errno;

    static INSTALLED: AtomicBool = AtomicBool::new(false);

    fn load_pc() -> u64 {
        addr_of!(kpi::rdtrace_shim_nofault_load_pc) as u64
    }

    fn resume_pc() -> u64 {
        addr_of!(kpi::rdtrace_shim_nofault_resume_pc) as u64
    }

    /// The `dtrace_trap_func` hook. Trap context: reads and at most rewrites
    /// the saved instruction pointer.
    unsafe extern "C" fn rdtrace_trap(frame: *mut kpi::trapframe, trap_type: c_uint) -> c_int {
        if frame.is_null() {
            return 0;
        }
        let rip = (frame as *mut u8).wrapping_add(TF_RIP_OFFSET) as *mut u64;
        // SAFETY: the kernel passes the trap frame of the faulting context;
        // tf_rip lies at TF_RIP_OFFSET in every supported release.
        let current = unsafe { core::ptr::read_volatile(rip) };
        match trap_resume_pc(trap_type, current, load_pc(), resume_pc()) {
            Some(resume) => {
                // SAFETY: as above; resuming at the shim's recovery label,
                // which belongs to the same function and frame.
                unsafe { core::ptr::write_volatile(rip, resume) };
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

    /// Whether user accesses need stac/clac (the CPU enforces SMAP).
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
        let user_access = c_int::from(user && smap_enabled());
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
    fn only_faults_of_the_load_instruction_are_taken() {
        let load = 0xffff_ffff_8123_4000;
        let resume = 0xffff_ffff_8123_4010;
        assert_eq!(trap_resume_pc(T_PAGEFLT, load, load, resume), Some(resume));
        assert_eq!(trap_resume_pc(T_PROTFLT, load, load, resume), Some(resume));
        // Another instruction faulting: the kernel's business.
        assert_eq!(trap_resume_pc(T_PAGEFLT, load + 1, load, resume), None);
        // Another trap at the load (e.g. a breakpoint, 3): not ours.
        assert_eq!(trap_resume_pc(3, load, load, resume), None);
        // Hook not initialised: never claims anything.
        assert_eq!(trap_resume_pc(T_PAGEFLT, 0, 0, resume), None);
    }

    #[test]
    fn user_ranges_stay_below_the_limit() {
        assert!(is_user_range(0x1000, 16));
        assert!(is_user_range(USER_ADDRESS_LIMIT - 8, 8));
        assert!(!is_user_range(USER_ADDRESS_LIMIT - 8, 9));
        assert!(!is_user_range(0xffff_8000_0000_0000, 1));
        assert!(!is_user_range(u64::MAX, 2));
    }
}
