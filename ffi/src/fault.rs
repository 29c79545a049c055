//! Run-time fault codes (`DTRACEFLT_*`) reported through the ERROR probe,
//! the text libdtrace prints for each, and the mapping from the per-CPU
//! DTrace flag word (see [`crate::buffer::CpuFlags`]) to the reported code.
//!
//! Probe context: yes (const lookups, no allocation, no panics).

use crate::buffer::CpuFlags;
use crate::UnknownValue;

/// A DTrace run-time fault (`DTRACEFLT_*`), passed as arg4 of `dtrace:::ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Fault {
    /// `DTRACEFLT_UNKNOWN` (0): unclassified.
    Unknown = 0,
    /// `DTRACEFLT_BADADDR` (1): load from an unmapped or forbidden address.
    BadAddr = 1,
    /// `DTRACEFLT_BADALIGN` (2): misaligned access.
    BadAlign = 2,
    /// `DTRACEFLT_ILLOP` (3): illegal operation.
    IllOp = 3,
    /// `DTRACEFLT_DIVZERO` (4): division or remainder by zero.
    DivZero = 4,
    /// `DTRACEFLT_NOSCRATCH` (5): scratch space exhausted.
    NoScratch = 5,
    /// `DTRACEFLT_KPRIV` (6): kernel access the consumer may not make.
    KPriv = 6,
    /// `DTRACEFLT_UPRIV` (7): user access the consumer may not make.
    UPriv = 7,
    /// `DTRACEFLT_TUPOFLOW` (8): tuple stack overflow.
    TupOflow = 8,
    /// `DTRACEFLT_BADSTACK` (9): bad stack pointer while walking a stack.
    BadStack = 9,
    /// `DTRACEFLT_LIBRARY` (1000): first of the faults libdtrace raises itself.
    Library = 1000,
}

impl Fault {
    /// Every fault code.
    pub const ALL: &'static [Fault] = &[
        Fault::Unknown,
        Fault::BadAddr,
        Fault::BadAlign,
        Fault::IllOp,
        Fault::DivZero,
        Fault::NoScratch,
        Fault::KPriv,
        Fault::UPriv,
        Fault::TupOflow,
        Fault::BadStack,
        Fault::Library,
    ];

    /// The raw code.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The C macro name.
    pub const fn c_name(self) -> &'static str {
        match self {
            Fault::Unknown => "DTRACEFLT_UNKNOWN",
            Fault::BadAddr => "DTRACEFLT_BADADDR",
            Fault::BadAlign => "DTRACEFLT_BADALIGN",
            Fault::IllOp => "DTRACEFLT_ILLOP",
            Fault::DivZero => "DTRACEFLT_DIVZERO",
            Fault::NoScratch => "DTRACEFLT_NOSCRATCH",
            Fault::KPriv => "DTRACEFLT_KPRIV",
            Fault::UPriv => "DTRACEFLT_UPRIV",
            Fault::TupOflow => "DTRACEFLT_TUPOFLOW",
            Fault::BadStack => "DTRACEFLT_BADSTACK",
            Fault::Library => "DTRACEFLT_LIBRARY",
        }
    }

    /// The phrase libdtrace prints in "error on enabled probe ID ..." messages
    /// (`dtrace_faultstr`); `"unknown fault"` for [`Fault::Unknown`].
    pub const fn description(self) -> &'static str {
        match self {
            Fault::Unknown => "unknown fault",
            Fault::BadAddr => "invalid address",
            Fault::BadAlign => "invalid alignment",
            Fault::IllOp => "illegal operation",
            Fault::DivZero => "divide-by-zero",
            Fault::NoScratch => "out of scratch space",
            Fault::KPriv => "invalid kernel access",
            Fault::UPriv => "invalid user access",
            Fault::TupOflow => "tuple stack overflow",
            Fault::BadStack => "bad stack",
            Fault::Library => "library-level fault",
        }
    }

    /// Whether libdtrace appends the faulting address, ` (0x...)`, to the
    /// message for this fault.
    pub const fn reports_address(self) -> bool {
        matches!(self, Fault::BadAddr | Fault::BadAlign | Fault::BadStack)
    }

    /// The per-CPU flag bit that records this fault, if it has one.
    pub const fn cpu_flag(self) -> Option<CpuFlags> {
        Some(match self {
            Fault::BadAddr => CpuFlags::BADADDR,
            Fault::BadAlign => CpuFlags::BADALIGN,
            Fault::IllOp => CpuFlags::ILLOP,
            Fault::DivZero => CpuFlags::DIVZERO,
            Fault::NoScratch => CpuFlags::NOSCRATCH,
            Fault::KPriv => CpuFlags::KPRIV,
            Fault::UPriv => CpuFlags::UPRIV,
            Fault::TupOflow => CpuFlags::TUPOFLOW,
            Fault::BadStack => CpuFlags::BADSTACK,
            Fault::Unknown | Fault::Library => return None,
        })
    }

    /// The fault code to report for a per-CPU flag word after a DIF program
    /// stopped: the first set fault bit in the kernel's priority order
    /// BADADDR > ILLOP > DIVZERO > KPRIV > UPRIV > TUPOFLOW > BADALIGN >
    /// NOSCRATCH > BADSTACK, else UNKNOWN. `None` if no fault bit is set.
    pub const fn from_cpu_flags(flags: CpuFlags) -> Option<Fault> {
        if !flags.intersects(CpuFlags::FAULT) {
            return None;
        }
        const ORDER: [Fault; 9] = [
            Fault::BadAddr,
            Fault::IllOp,
            Fault::DivZero,
            Fault::KPriv,
            Fault::UPriv,
            Fault::TupOflow,
            Fault::BadAlign,
            Fault::NoScratch,
            Fault::BadStack,
        ];
        let mut i = 0;
        while i < ORDER.len() {
            if let Some(bit) = ORDER[i].cpu_flag() {
                if flags.contains(bit) {
                    return Some(ORDER[i]);
                }
            }
            i += 1;
        }
        Some(Fault::Unknown)
    }
}

impl TryFrom<u32> for Fault {
    type Error = UnknownValue;
    fn try_from(raw: u32) -> Result<Self, UnknownValue> {
        Ok(match raw {
            0 => Fault::Unknown,
            1 => Fault::BadAddr,
            2 => Fault::BadAlign,
            3 => Fault::IllOp,
            4 => Fault::DivZero,
            5 => Fault::NoScratch,
            6 => Fault::KPriv,
            7 => Fault::UPriv,
            8 => Fault::TupOflow,
            9 => Fault::BadStack,
            1000 => Fault::Library,
            other => return Err(UnknownValue(other as u64)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for f in Fault::ALL {
            assert_eq!(Fault::try_from(f.code()), Ok(*f));
        }
        assert_eq!(Fault::try_from(10), Err(UnknownValue(10)));
        assert_eq!(Fault::try_from(1001), Err(UnknownValue(1001)));
        assert_eq!(Fault::Library.code(), 1000);
        assert_eq!(Fault::DivZero.description(), "divide-by-zero");
        assert!(Fault::BadStack.reports_address() && !Fault::IllOp.reports_address());
    }

    #[test]
    fn flag_priority() {
        assert_eq!(
            Fault::from_cpu_flags(CpuFlags::NOFAULT | CpuFlags::DROP),
            None
        );
        assert_eq!(
            Fault::from_cpu_flags(CpuFlags::BADALIGN | CpuFlags::ILLOP),
            Some(Fault::IllOp)
        );
        assert_eq!(
            Fault::from_cpu_flags(CpuFlags::BADADDR | CpuFlags::ILLOP | CpuFlags::DIVZERO),
            Some(Fault::BadAddr)
        );
        assert_eq!(
            Fault::from_cpu_flags(CpuFlags::NOSCRATCH | CpuFlags::BADSTACK),
            Some(Fault::NoScratch)
        );
        // Every fault with a flag maps back to itself when alone.
        for f in Fault::ALL {
            if let Some(bit) = f.cpu_flag() {
                assert_eq!(Fault::from_cpu_flags(bit), Some(*f));
            }
        }
    }
}
