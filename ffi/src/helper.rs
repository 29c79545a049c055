//! The helper device's argument `dof_helper_t` (`/dev/dtrace/helper`,
//! DTRACEHIOC_ADDDOF): how a process registers USDT/helper DOF.
//!
//! Probe context: not used there; plain data.

// The C type names are kept as aliases so the ABI names stay searchable.
#![allow(non_camel_case_types)]

use crate::pod::{abi_struct, cstr_str, set_cstr, CStrError};
use crate::types::DTRACE_MODNAMELEN;

/// `dof_helper_t` (FreeBSD layout): describes helper DOF in a process. 88 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct DofHelper {
    /// `dofhp_mod`: name of the object the DOF belongs to.
    pub module: [u8; DTRACE_MODNAMELEN],
    /// `dofhp_addr`: load base of that object (for SETX relocations).
    pub addr: u64,
    /// `dofhp_dof`: user address of the DOF image.
    pub dof: u64,
    /// `dofhp_pid`: target process (the caller, or a ptrace-stopped child).
    pub pid: i32,
    /// `dofhp_gen`: out: the helper generation assigned.
    pub generation: i32,
}
/// C name of [`DofHelper`].
pub type dof_helper_t = DofHelper;
abi_struct!(DofHelper, size = 88, align = 8, {
    module @ 0, addr @ 64, dof @ 72, pid @ 80, generation @ 84,
});

impl Default for DofHelper {
    fn default() -> Self {
        DofHelper {
            module: [0; DTRACE_MODNAMELEN],
            addr: 0,
            dof: 0,
            pid: 0,
            generation: 0,
        }
    }
}

impl DofHelper {
    /// Module name as UTF-8.
    pub fn module_str(&self) -> Option<&str> {
        cstr_str(&self.module)
    }
    /// Sets the module name.
    pub fn set_module(&mut self, s: &str) -> Result<(), CStrError> {
        set_cstr(&mut self.module, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Pod;

    #[test]
    fn helper_bytes() {
        let mut h = DofHelper {
            addr: 0x40_0000,
            dof: 0x40_1000,
            pid: 77,
            generation: 0,
            ..Default::default()
        };
        h.set_module("a.out").unwrap();
        let b = h.as_bytes();
        assert_eq!(&b[..6], b"a.out\0");
        assert_eq!((b[66], b[73], b[80]), (0x40, 0x10, 77));
        assert_eq!(
            DofHelper::from_bytes(b).unwrap().module_str(),
            Some("a.out")
        );
    }
}
