//! ioctl command numbers: FreeBSD's `<sys/ioccom.h>` encoding as `const fn`s,
//! every `DTRACEIOC_*` command of `/dev/dtrace/dtrace`, the `DTRACEHIOC_*`
//! commands of `/dev/dtrace/helper`, and kinst's `KINSTIOC_MAKEPROBE`.
//!
//! A command word is: direction in bits 31..29, argument length in 28..16,
//! group character in 15..8, number in 7..0. The generic ioctl layer copies
//! `length` bytes in (IN) and/or out (OUT) around the driver call.
//!
//! Several DTrace commands use FreeBSD's pointer-to-pointer convention: the
//! encoded argument is only a user pointer (8 bytes) to the real descriptor,
//! which the driver copies itself ([`DtraceIoctl::is_indirect`]).
//!
//! Probe context: no; constants and pure functions only.

use core::mem::size_of;

use crate::consumer::{Conf, EnableIo, Status};
use crate::helper::DofHelper;
use crate::probe::{ArgDesc, KinstProbeDesc, ProbeDesc, ProviderDesc, ReplDesc};
use crate::record::{EprobeDesc, FmtDesc};
use crate::types::ProcessorId;
use crate::UnknownValue;

/// Width of the length field (`IOCPARM_SHIFT`).
pub const IOCPARM_SHIFT: u32 = 13;
/// Mask of the length field after shifting (`IOCPARM_MASK`).
pub const IOCPARM_MASK: u32 = (1 << IOCPARM_SHIFT) - 1;
/// Largest encodable argument length (`IOCPARM_MAX`).
pub const IOCPARM_MAX: usize = 1 << IOCPARM_SHIFT;
/// No argument (`IOC_VOID`).
pub const IOC_VOID: u32 = 0x2000_0000;
/// The kernel copies the argument out to user space (`IOC_OUT`).
pub const IOC_OUT: u32 = 0x4000_0000;
/// The kernel copies the argument in from user space (`IOC_IN`).
pub const IOC_IN: u32 = 0x8000_0000;
/// Both directions (`IOC_INOUT`).
pub const IOC_INOUT: u32 = IOC_IN | IOC_OUT;
/// All direction bits (`IOC_DIRMASK`).
pub const IOC_DIRMASK: u32 = IOC_VOID | IOC_OUT | IOC_IN;

/// Builds a command word (`_IOC`). The length is masked to 13 bits as in C;
/// every length used in this crate is checked at compile time to fit.
pub const fn ioc(direction: u32, group: u8, num: u8, len: usize) -> u32 {
    direction | (((len as u32) & IOCPARM_MASK) << 16) | ((group as u32) << 8) | num as u32
}
/// `_IO`: no argument.
pub const fn io(group: u8, num: u8) -> u32 {
    ioc(IOC_VOID, group, num, 0)
}
/// `_IOR`: the kernel writes `len` bytes back to the caller.
pub const fn ior(group: u8, num: u8, len: usize) -> u32 {
    ioc(IOC_OUT, group, num, len)
}
/// `_IOW`: the kernel reads `len` bytes from the caller.
pub const fn iow(group: u8, num: u8, len: usize) -> u32 {
    ioc(IOC_IN, group, num, len)
}
/// `_IOWR`: both.
pub const fn iowr(group: u8, num: u8, len: usize) -> u32 {
    ioc(IOC_INOUT, group, num, len)
}

/// Direction bits of a command (`cmd & IOC_DIRMASK`).
pub const fn ioc_dir(cmd: u32) -> u32 {
    cmd & IOC_DIRMASK
}
/// Argument length of a command (`IOCPARM_LEN`).
pub const fn ioc_len(cmd: u32) -> usize {
    ((cmd >> 16) & IOCPARM_MASK) as usize
}
/// Group character of a command (`IOCGROUP`).
pub const fn ioc_group(cmd: u32) -> u8 {
    (cmd >> 8) as u8
}
/// Number within the group (`cmd & 0xff`).
pub const fn ioc_num(cmd: u32) -> u8 {
    cmd as u8
}

/// Group of the `/dev/dtrace/dtrace` commands (`DTRACEIOC`, `'x'`).
pub const DTRACEIOC: u8 = b'x';
/// Group of the `/dev/dtrace/helper` commands (`DTRACEHIOC`, `'z'`).
pub const DTRACEHIOC: u8 = b'z';
/// Group of the kinst commands (`'k'`).
pub const KINSTIOC: u8 = b'k';

/// Size of a user pointer (every supported target is LP64).
const PTR: usize = size_of::<u64>();

/// Provider attributes by name (`_IOWR('x', 1, dtrace_providerdesc_t)`).
pub const DTRACEIOC_PROVIDER: u32 = iowr(DTRACEIOC, 1, size_of::<ProviderDesc>());
/// Next probe by id (`_IOWR('x', 2, dtrace_probedesc_t)`).
pub const DTRACEIOC_PROBES: u32 = iowr(DTRACEIOC, 2, size_of::<ProbeDesc>());
/// Snapshot a principal buffer (`_IOW('x', 4, dtrace_bufdesc_t *)`).
pub const DTRACEIOC_BUFSNAP: u32 = iow(DTRACEIOC, 4, PTR);
/// Next probe matching a pattern (`_IOWR('x', 5, dtrace_probedesc_t)`).
pub const DTRACEIOC_PROBEMATCH: u32 = iowr(DTRACEIOC, 5, size_of::<ProbeDesc>());
/// Enable DOF (`_IOWR('x', 6, dtrace_enable_io_t)`).
pub const DTRACEIOC_ENABLE: u32 = iowr(DTRACEIOC, 6, size_of::<EnableIo>());
/// Snapshot an aggregation buffer (`_IOW('x', 7, dtrace_bufdesc_t *)`).
pub const DTRACEIOC_AGGSNAP: u32 = iow(DTRACEIOC, 7, PTR);
/// Enabled-probe layout (`_IOW('x', 8, dtrace_eprobedesc_t)`; the argument
/// is a pointer although the encoded size is the struct's).
pub const DTRACEIOC_EPROBE: u32 = iow(DTRACEIOC, 8, size_of::<EprobeDesc>());
/// Probe argument types (`_IOWR('x', 9, dtrace_argdesc_t)`).
pub const DTRACEIOC_PROBEARG: u32 = iowr(DTRACEIOC, 9, size_of::<ArgDesc>());
/// DIF configuration (`_IOR('x', 10, dtrace_conf_t)`).
pub const DTRACEIOC_CONF: u32 = ior(DTRACEIOC, 10, size_of::<Conf>());
/// Consumer status (`_IOR('x', 11, dtrace_status_t)`).
pub const DTRACEIOC_STATUS: u32 = ior(DTRACEIOC, 11, size_of::<Status>());
/// Start tracing (`_IOR('x', 12, processorid_t)`).
pub const DTRACEIOC_GO: u32 = ior(DTRACEIOC, 12, size_of::<ProcessorId>());
/// Stop tracing (`_IOWR('x', 13, processorid_t)`).
pub const DTRACEIOC_STOP: u32 = iowr(DTRACEIOC, 13, size_of::<ProcessorId>());
/// Aggregation layout (`_IOW('x', 15, dtrace_aggdesc_t *)`).
pub const DTRACEIOC_AGGDESC: u32 = iow(DTRACEIOC, 15, PTR);
/// Format string by id (`_IOWR('x', 16, dtrace_fmtdesc_t)`).
pub const DTRACEIOC_FORMAT: u32 = iowr(DTRACEIOC, 16, size_of::<FmtDesc>());
/// Option values as DOF (`_IOW('x', 17, dof_hdr_t *)`).
pub const DTRACEIOC_DOFGET: u32 = iow(DTRACEIOC, 17, PTR);
/// Replicate enablings (`_IOW('x', 18, dtrace_repldesc_t)`).
pub const DTRACEIOC_REPLICATE: u32 = iow(DTRACEIOC, 18, size_of::<ReplDesc>());

/// Remove a helper generation (`_IOW('z', 2, int)`).
pub const DTRACEHIOC_REMOVE: u32 = iow(DTRACEHIOC, 2, size_of::<i32>());
/// Add helper DOF (`_IOWR('z', 3, dof_helper_t)`).
pub const DTRACEHIOC_ADDDOF: u32 = iowr(DTRACEHIOC, 3, size_of::<DofHelper>());

/// Create a kinst probe (`_IOW('k', 1, struct kinst_probedesc)`).
pub const KINSTIOC_MAKEPROBE: u32 = iow(KINSTIOC, 1, size_of::<KinstProbeDesc>());

static_assertions::const_assert!(size_of::<ReplDesc>() < IOCPARM_MAX);
static_assertions::const_assert!(size_of::<ProbeDesc>() < IOCPARM_MAX);

/// A `/dev/dtrace/dtrace` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtraceIoctl {
    /// `DTRACEIOC_PROVIDER`.
    Provider,
    /// `DTRACEIOC_PROBES`.
    Probes,
    /// `DTRACEIOC_BUFSNAP`.
    BufSnap,
    /// `DTRACEIOC_PROBEMATCH`.
    ProbeMatch,
    /// `DTRACEIOC_ENABLE`.
    Enable,
    /// `DTRACEIOC_AGGSNAP`.
    AggSnap,
    /// `DTRACEIOC_EPROBE`.
    Eprobe,
    /// `DTRACEIOC_PROBEARG`.
    ProbeArg,
    /// `DTRACEIOC_CONF`.
    Conf,
    /// `DTRACEIOC_STATUS`.
    Status,
    /// `DTRACEIOC_GO`.
    Go,
    /// `DTRACEIOC_STOP`.
    Stop,
    /// `DTRACEIOC_AGGDESC`.
    AggDesc,
    /// `DTRACEIOC_FORMAT`.
    Format,
    /// `DTRACEIOC_DOFGET`.
    DofGet,
    /// `DTRACEIOC_REPLICATE`.
    Replicate,
}

impl DtraceIoctl {
    /// Every command, in number order.
    pub const ALL: &'static [DtraceIoctl] = &[
        DtraceIoctl::Provider,
        DtraceIoctl::Probes,
        DtraceIoctl::BufSnap,
        DtraceIoctl::ProbeMatch,
        DtraceIoctl::Enable,
        DtraceIoctl::AggSnap,
        DtraceIoctl::Eprobe,
        DtraceIoctl::ProbeArg,
        DtraceIoctl::Conf,
        DtraceIoctl::Status,
        DtraceIoctl::Go,
        DtraceIoctl::Stop,
        DtraceIoctl::AggDesc,
        DtraceIoctl::Format,
        DtraceIoctl::DofGet,
        DtraceIoctl::Replicate,
    ];

    /// The command word.
    pub const fn cmd(self) -> u32 {
        match self {
            DtraceIoctl::Provider => DTRACEIOC_PROVIDER,
            DtraceIoctl::Probes => DTRACEIOC_PROBES,
            DtraceIoctl::BufSnap => DTRACEIOC_BUFSNAP,
            DtraceIoctl::ProbeMatch => DTRACEIOC_PROBEMATCH,
            DtraceIoctl::Enable => DTRACEIOC_ENABLE,
            DtraceIoctl::AggSnap => DTRACEIOC_AGGSNAP,
            DtraceIoctl::Eprobe => DTRACEIOC_EPROBE,
            DtraceIoctl::ProbeArg => DTRACEIOC_PROBEARG,
            DtraceIoctl::Conf => DTRACEIOC_CONF,
            DtraceIoctl::Status => DTRACEIOC_STATUS,
            DtraceIoctl::Go => DTRACEIOC_GO,
            DtraceIoctl::Stop => DTRACEIOC_STOP,
            DtraceIoctl::AggDesc => DTRACEIOC_AGGDESC,
            DtraceIoctl::Format => DTRACEIOC_FORMAT,
            DtraceIoctl::DofGet => DTRACEIOC_DOFGET,
            DtraceIoctl::Replicate => DTRACEIOC_REPLICATE,
        }
    }

    /// The C macro name.
    pub const fn c_name(self) -> &'static str {
        match self {
            DtraceIoctl::Provider => "DTRACEIOC_PROVIDER",
            DtraceIoctl::Probes => "DTRACEIOC_PROBES",
            DtraceIoctl::BufSnap => "DTRACEIOC_BUFSNAP",
            DtraceIoctl::ProbeMatch => "DTRACEIOC_PROBEMATCH",
            DtraceIoctl::Enable => "DTRACEIOC_ENABLE",
            DtraceIoctl::AggSnap => "DTRACEIOC_AGGSNAP",
            DtraceIoctl::Eprobe => "DTRACEIOC_EPROBE",
            DtraceIoctl::ProbeArg => "DTRACEIOC_PROBEARG",
            DtraceIoctl::Conf => "DTRACEIOC_CONF",
            DtraceIoctl::Status => "DTRACEIOC_STATUS",
            DtraceIoctl::Go => "DTRACEIOC_GO",
            DtraceIoctl::Stop => "DTRACEIOC_STOP",
            DtraceIoctl::AggDesc => "DTRACEIOC_AGGDESC",
            DtraceIoctl::Format => "DTRACEIOC_FORMAT",
            DtraceIoctl::DofGet => "DTRACEIOC_DOFGET",
            DtraceIoctl::Replicate => "DTRACEIOC_REPLICATE",
        }
    }

    /// Whether the ioctl argument is a user pointer to the real descriptor
    /// (BUFSNAP, AGGSNAP, EPROBE, AGGDESC, DOFGET), which the driver must
    /// copy in/out itself; the first 8 bytes of the argument block hold it.
    pub const fn is_indirect(self) -> bool {
        matches!(
            self,
            DtraceIoctl::BufSnap
                | DtraceIoctl::AggSnap
                | DtraceIoctl::Eprobe
                | DtraceIoctl::AggDesc
                | DtraceIoctl::DofGet
        )
    }

    /// Bytes the generic ioctl layer copies for this command.
    pub const fn arg_len(self) -> usize {
        ioc_len(self.cmd())
    }

    /// The command for a raw word, if it is one of ours.
    pub const fn from_cmd(cmd: u32) -> Option<DtraceIoctl> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i].cmd() == cmd {
                return Some(Self::ALL[i]);
            }
            i += 1;
        }
        None
    }
}

impl TryFrom<u32> for DtraceIoctl {
    type Error = UnknownValue;
    fn try_from(cmd: u32) -> Result<Self, UnknownValue> {
        DtraceIoctl::from_cmd(cmd).ok_or(UnknownValue(cmd as u64))
    }
}

/// A `/dev/dtrace/helper` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HelperIoctl {
    /// `DTRACEHIOC_REMOVE`.
    Remove,
    /// `DTRACEHIOC_ADDDOF`.
    AddDof,
}

impl HelperIoctl {
    /// The command word.
    pub const fn cmd(self) -> u32 {
        match self {
            HelperIoctl::Remove => DTRACEHIOC_REMOVE,
            HelperIoctl::AddDof => DTRACEHIOC_ADDDOF,
        }
    }
}

impl TryFrom<u32> for HelperIoctl {
    type Error = UnknownValue;
    fn try_from(cmd: u32) -> Result<Self, UnknownValue> {
        match cmd {
            DTRACEHIOC_REMOVE => Ok(HelperIoctl::Remove),
            DTRACEHIOC_ADDDOF => Ok(HelperIoctl::AddDof),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The LP64 values recorded in abi-facts.md §1.3 (computed there by a C
    /// program over mirror structs), independent of this module's arithmetic.
    const EXPECTED: &[(u32, &str, u32, u8, u8, usize)] = &[
        // (literal, name, direction, group, number, argument length)
        (0xc05c_7801, "DTRACEIOC_PROVIDER", IOC_INOUT, b'x', 1, 92),
        (0xc184_7802, "DTRACEIOC_PROBES", IOC_INOUT, b'x', 2, 388),
        (0x8008_7804, "DTRACEIOC_BUFSNAP", IOC_IN, b'x', 4, 8),
        (0xc184_7805, "DTRACEIOC_PROBEMATCH", IOC_INOUT, b'x', 5, 388),
        (0xc010_7806, "DTRACEIOC_ENABLE", IOC_INOUT, b'x', 6, 16),
        (0x8008_7807, "DTRACEIOC_AGGSNAP", IOC_IN, b'x', 7, 8),
        (0x8038_7808, "DTRACEIOC_EPROBE", IOC_IN, b'x', 8, 56),
        (0xc10c_7809, "DTRACEIOC_PROBEARG", IOC_INOUT, b'x', 9, 268),
        (0x4030_780a, "DTRACEIOC_CONF", IOC_OUT, b'x', 10, 48),
        (0x4058_780b, "DTRACEIOC_STATUS", IOC_OUT, b'x', 11, 88),
        (0x4004_780c, "DTRACEIOC_GO", IOC_OUT, b'x', 12, 4),
        (0xc004_780d, "DTRACEIOC_STOP", IOC_INOUT, b'x', 13, 4),
        (0x8008_780f, "DTRACEIOC_AGGDESC", IOC_IN, b'x', 15, 8),
        (0xc010_7810, "DTRACEIOC_FORMAT", IOC_INOUT, b'x', 16, 16),
        (0x8008_7811, "DTRACEIOC_DOFGET", IOC_IN, b'x', 17, 8),
        (0x8308_7812, "DTRACEIOC_REPLICATE", IOC_IN, b'x', 18, 776),
    ];

    #[test]
    fn dtrace_ioctls_match_recorded_values() {
        assert_eq!(EXPECTED.len(), DtraceIoctl::ALL.len());
        for (&(literal, name, dir, group, num, len), ioctl) in EXPECTED.iter().zip(DtraceIoctl::ALL)
        {
            // Recompute from the parts, independently of `ioc`.
            let recomputed = dir | ((len as u32) << 16) | ((group as u32) << 8) | num as u32;
            assert_eq!(recomputed, literal, "{name} parts");
            assert_eq!(ioctl.cmd(), literal, "{name}");
            assert_eq!(ioctl.c_name(), name);
            assert_eq!(ioc_dir(literal), dir);
            assert_eq!(ioc_group(literal), group);
            assert_eq!(ioc_num(literal), num);
            assert_eq!(ioc_len(literal), len);
            assert_eq!(ioctl.arg_len(), len);
            assert_eq!(DtraceIoctl::try_from(literal), Ok(*ioctl));
        }
    }

    #[test]
    fn helper_and_kinst_ioctls() {
        assert_eq!(DTRACEHIOC_REMOVE, 0x8004_7a02);
        assert_eq!(DTRACEHIOC_ADDDOF, 0xc058_7a03);
        assert_eq!(KINSTIOC_MAKEPROBE, 0x8104_6b01);
        assert_eq!(HelperIoctl::try_from(0xc058_7a03), Ok(HelperIoctl::AddDof));
        assert_eq!(HelperIoctl::Remove.cmd(), 0x8004_7a02);
        assert!(HelperIoctl::try_from(DTRACEIOC_GO).is_err());
        // Helper commands are not /dev/dtrace commands and vice versa.
        assert!(DtraceIoctl::try_from(DTRACEHIOC_ADDDOF).is_err());
    }

    #[test]
    fn unknown_commands_rejected() {
        // Unused numbers 3 and 14, a wrong direction, a wrong size.
        assert!(DtraceIoctl::try_from(iowr(b'x', 3, 8)).is_err());
        assert!(DtraceIoctl::try_from(iowr(b'x', 14, 8)).is_err());
        assert!(DtraceIoctl::try_from(ior(b'x', 1, 92)).is_err());
        // The old-FreeBSD PROVIDER value (96-byte descriptor).
        assert_eq!(
            DtraceIoctl::try_from(0xc060_7801),
            Err(UnknownValue(0xc060_7801))
        );
        assert!(DtraceIoctl::try_from(0).is_err());
    }

    #[test]
    fn indirect_commands() {
        let indirect: std::vec::Vec<_> = DtraceIoctl::ALL
            .iter()
            .filter(|c| c.is_indirect())
            .map(|c| c.c_name())
            .collect();
        assert_eq!(
            indirect,
            [
                "DTRACEIOC_BUFSNAP",
                "DTRACEIOC_AGGSNAP",
                "DTRACEIOC_EPROBE",
                "DTRACEIOC_AGGDESC",
                "DTRACEIOC_DOFGET"
            ]
        );
        assert_eq!(io(b'x', 1), 0x2000_7801);
        assert_eq!(ioc_len(iow(b'x', 1, IOCPARM_MAX)), 0);
    }
}
