//! Per-consumer ioctl arguments: `dtrace_conf_t` (CONF), `dtrace_status_t`
//! (STATUS) and FreeBSD's `dtrace_enable_io_t` (ENABLE).
//!
//! Probe context: not used there; plain data.

// The C type names are kept as aliases so the ABI names stay searchable.
#![allow(non_camel_case_types)]

use crate::pod::abi_struct;

/// `dtrace_conf_t`: CONF's result — what the kernel's DIF machine offers.
/// 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Conf {
    /// `dtc_difversion`: supported DIF version (2).
    pub difversion: u32,
    /// `dtc_difintregs`: integer registers (8).
    pub difintregs: u32,
    /// `dtc_diftupregs`: tuple-stack slots (8).
    pub diftupregs: u32,
    /// `dtc_ctfmodel`: `DTRACE_CTFMODEL_*` of the kernel (LP64 = 2).
    pub ctfmodel: u32,
    /// `dtc_pad`: reserved, zero.
    pub pad: [u32; 8],
}
/// C name of [`Conf`].
pub type dtrace_conf_t = Conf;
abi_struct!(Conf, size = 48, align = 4, {
    difversion @ 0, difintregs @ 4, diftupregs @ 8, ctfmodel @ 12, pad @ 16,
});

impl Conf {
    /// The configuration every rdtrace kernel reports.
    pub const fn native() -> Self {
        Conf {
            difversion: crate::dif::DIF_VERSION as u32,
            difintregs: crate::dif::DIF_DIR_NREGS as u32,
            diftupregs: crate::dif::DIF_DTR_NREGS as u32,
            ctfmodel: crate::types::DTRACE_CTFMODEL_NATIVE,
            pad: [0; 8],
        }
    }
}

/// `dtrace_status_t`: STATUS's result — drop/error counters summed over
/// CPUs and the consumer's liveness. 88 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Status {
    /// `dtst_dyndrops`: dynamic-variable drops (no free chunk).
    pub dyndrops: u64,
    /// `dtst_dyndrops_rinsing`: drops while chunks were rinsing.
    pub dyndrops_rinsing: u64,
    /// `dtst_dyndrops_dirty`: drops while chunks were dirty.
    pub dyndrops_dirty: u64,
    /// `dtst_specdrops`: speculative records dropped (buffer full).
    pub specdrops: u64,
    /// `dtst_specdrops_busy`: `speculation()` failed, one still busy.
    pub specdrops_busy: u64,
    /// `dtst_specdrops_unavail`: `speculation()` failed, none free.
    pub specdrops_unavail: u64,
    /// `dtst_errors`: run-time faults.
    pub errors: u64,
    /// `dtst_filled`: CPUs whose fill-policy buffer is full.
    pub filled: u64,
    /// `dtst_stkstroverflows`: stack-string table overflows.
    pub stkstroverflows: u64,
    /// `dtst_dblerrors`: faults inside ERROR-probe clauses.
    pub dblerrors: u64,
    /// `dtst_killed`: non-zero if the deadman killed the consumer.
    pub killed: u8,
    /// `dtst_exiting`: non-zero once `exit()` was called (DRAINING).
    pub exiting: u8,
    /// `dtst_pad`: reserved.
    pub pad: [u8; 6],
}
/// C name of [`Status`].
pub type dtrace_status_t = Status;
abi_struct!(Status, size = 88, align = 8, {
    dyndrops @ 0, dyndrops_rinsing @ 8, dyndrops_dirty @ 16, specdrops @ 24,
    specdrops_busy @ 32, specdrops_unavail @ 40, errors @ 48, filled @ 56,
    stkstroverflows @ 64, dblerrors @ 72, killed @ 80, exiting @ 81, pad @ 82,
});

/// `dtrace_enable_io_t` (FreeBSD): ENABLE's argument. 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct EnableIo {
    /// `dof`: user address of the DOF image; 0 means "re-match retained
    /// enablings".
    pub dof: u64,
    /// `n_matched`: out: number of probes matched.
    pub n_matched: i32,
    /// Implicit C padding, kept zero.
    pub pad: u32,
}
/// C name of [`EnableIo`].
pub type dtrace_enable_io_t = EnableIo;
abi_struct!(EnableIo, size = 16, align = 8, { dof @ 0, n_matched @ 8, pad @ 12 });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Pod;

    #[test]
    fn conf_native() {
        let c = Conf::native();
        assert_eq!(
            (c.difversion, c.difintregs, c.diftupregs, c.ctfmodel),
            (2, 8, 8, 2)
        );
        assert!(c.as_bytes()[16..].iter().all(|&b| b == 0));
    }

    #[test]
    fn status_bytes() {
        let s = Status {
            errors: 3,
            dblerrors: 4,
            killed: 1,
            exiting: 1,
            ..Default::default()
        };
        let b = s.as_bytes();
        assert_eq!((b[48], b[72], b[80], b[81]), (3, 4, 1, 1));
        assert_eq!(Status::from_bytes(b), Some(s));
        assert_eq!(Status::from_bytes(&b[..87]), None);
    }
}
