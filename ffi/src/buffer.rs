//! Buffer-related ABI: `dtrace_bufdesc_t` (the BUFSNAP/AGGSNAP argument),
//! `dtrace_rechdr_t` (the header of every principal-buffer record), the
//! kernel buffer flags (`DTRACEBUF_*`) and the per-CPU DTrace flag word
//! (`CPU_DTRACE_*`) used to report faults out of probe context.
//!
//! Probe context: yes (plain data, const helpers).

// The C type names are kept as aliases so the ABI names stay searchable.
#![allow(non_camel_case_types)]

use crate::pod::abi_struct;

/// `dtrace_bufdesc_t`: describes one per-CPU buffer snapshot. 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct BufDesc {
    /// `dtbd_size`: in: ignored (the user buffer must be big enough for the
    /// whole kernel buffer); out: bytes copied.
    pub size: u64,
    /// `dtbd_cpu`: which CPU's buffer to snapshot.
    pub cpu: u32,
    /// `dtbd_errors`: out: faults counted in this buffer.
    pub errors: u32,
    /// `dtbd_drops`: out: records dropped for lack of space.
    pub drops: u64,
    /// `dtbd_data`: user address of the destination buffer.
    pub data: u64,
    /// `dtbd_oldest`: out: ring policy: offset of the oldest record.
    pub oldest: u64,
    /// `dtbd_timestamp`: out: hrtime of the snapshot (buffer switch).
    pub timestamp: u64,
}
/// C name of [`BufDesc`].
pub type dtrace_bufdesc_t = BufDesc;
abi_struct!(BufDesc, size = 48, align = 8, {
    size @ 0, cpu @ 8, errors @ 12, drops @ 16, data @ 24, oldest @ 32, timestamp @ 40,
});

/// `dtrace_rechdr_t`: the 12-byte header written before each ECB record:
/// the EPID and the firing time split in two 32-bit halves so records need
/// only 4-byte alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct RecHdr {
    /// `dtrh_epid`: enabled-probe id; 0 marks a 4-byte padding word.
    pub epid: u32,
    /// `dtrh_timestamp[0]`: high 32 bits of the timestamp.
    pub timestamp_hi: u32,
    /// `dtrh_timestamp[1]`: low 32 bits of the timestamp.
    pub timestamp_lo: u32,
}
/// C name of [`RecHdr`].
pub type dtrace_rechdr_t = RecHdr;
abi_struct!(RecHdr, size = 12, align = 4, { epid @ 0, timestamp_hi @ 4, timestamp_lo @ 8 });

/// The EPID of a padding word (`DTRACE_EPIDNONE`).
pub const DTRACE_EPIDNONE: u32 = 0;
/// Timestamp of a speculative record that has not been committed yet.
pub const DTRACE_SPECULATIVE_TIMESTAMP: u64 = u64::MAX;

impl RecHdr {
    /// A header for `epid` at `timestamp` (`DTRACE_RECORD_STORE_TIMESTAMP`).
    pub const fn new(epid: u32, timestamp: u64) -> Self {
        RecHdr {
            epid,
            timestamp_hi: (timestamp >> 32) as u32,
            timestamp_lo: timestamp as u32,
        }
    }

    /// The full 64-bit timestamp (`DTRACE_RECORD_LOAD_TIMESTAMP`).
    pub const fn timestamp(&self) -> u64 {
        ((self.timestamp_hi as u64) << 32) | self.timestamp_lo as u64
    }

    /// Replaces the timestamp (used when committing speculative records).
    pub fn set_timestamp(&mut self, timestamp: u64) {
        *self = RecHdr::new(self.epid, timestamp);
    }
}

bitflags::bitflags! {
    /// Kernel buffer state flags (`DTRACEBUF_*`, `dtb_flags`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct BufFlags: u32 {
        /// `DTRACEBUF_RING`: ring policy.
        const RING = 0x001;
        /// `DTRACEBUF_FILL`: fill policy.
        const FILL = 0x002;
        /// `DTRACEBUF_NOSWITCH`: never switched (speculation buffers).
        const NOSWITCH = 0x004;
        /// `DTRACEBUF_WRAPPED`: a ring buffer has wrapped.
        const WRAPPED = 0x008;
        /// `DTRACEBUF_DROPPED`: records were dropped.
        const DROPPED = 0x010;
        /// `DTRACEBUF_ERROR`: faults were recorded.
        const ERROR = 0x020;
        /// `DTRACEBUF_FULL`: a fill buffer is full.
        const FULL = 0x040;
        /// `DTRACEBUF_CONSUMED`: a ring buffer was already snapshotted.
        const CONSUMED = 0x080;
        /// `DTRACEBUF_INACTIVE`: not yet activated on its CPU.
        const INACTIVE = 0x100;
    }
}

bitflags::bitflags! {
    /// The per-CPU DTrace flag word (`cpuc_dtrace_flags`, `CPU_DTRACE_*`):
    /// set by fault-checked loads and trap handlers while a DIF program runs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct CpuFlags: u16 {
        /// `CPU_DTRACE_NOFAULT`: a trap now means a DTrace fault, not a panic.
        const NOFAULT = 0x0001;
        /// `CPU_DTRACE_DROP`: abandon the current record.
        const DROP = 0x0002;
        /// `CPU_DTRACE_BADADDR`: bad address (illval holds it).
        const BADADDR = 0x0004;
        /// `CPU_DTRACE_BADALIGN`: misaligned access.
        const BADALIGN = 0x0008;
        /// `CPU_DTRACE_DIVZERO`: division by zero.
        const DIVZERO = 0x0010;
        /// `CPU_DTRACE_ILLOP`: illegal operation.
        const ILLOP = 0x0020;
        /// `CPU_DTRACE_NOSCRATCH`: scratch exhausted.
        const NOSCRATCH = 0x0040;
        /// `CPU_DTRACE_KPRIV`: kernel privilege violation.
        const KPRIV = 0x0080;
        /// `CPU_DTRACE_UPRIV`: user privilege violation.
        const UPRIV = 0x0100;
        /// `CPU_DTRACE_TUPOFLOW`: tuple stack overflow.
        const TUPOFLOW = 0x0200;
        /// `CPU_DTRACE_FAKERESTORE`: used by the SPARC-era stack walker.
        const FAKERESTORE = 0x0400;
        /// `CPU_DTRACE_ENTRY`: the probe fired at function entry.
        const ENTRY = 0x0800;
        /// `CPU_DTRACE_BADSTACK`: bad stack while walking.
        const BADSTACK = 0x1000;

        /// `CPU_DTRACE_FAULT`: every fault bit.
        const FAULT = Self::BADADDR.bits() | Self::BADALIGN.bits() | Self::DIVZERO.bits()
            | Self::ILLOP.bits() | Self::NOSCRATCH.bits() | Self::KPRIV.bits()
            | Self::UPRIV.bits() | Self::TUPOFLOW.bits() | Self::BADSTACK.bits();
        /// `CPU_DTRACE_ERROR`: a fault or a drop.
        const ERROR = Self::FAULT.bits() | Self::DROP.bits();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::Pod;

    #[test]
    fn rechdr_timestamp_split() {
        let h = RecHdr::new(7, 0x0123_4567_89ab_cdef);
        assert_eq!(
            h.as_bytes(),
            &[7, 0, 0, 0, 0x67, 0x45, 0x23, 0x01, 0xef, 0xcd, 0xab, 0x89]
        );
        assert_eq!(h.timestamp(), 0x0123_4567_89ab_cdef);
        let mut h2 = h;
        h2.set_timestamp(DTRACE_SPECULATIVE_TIMESTAMP);
        assert_eq!((h2.epid, h2.timestamp()), (7, u64::MAX));
    }

    #[test]
    fn flag_groups() {
        assert_eq!(CpuFlags::FAULT.bits(), 0x13fc);
        assert_eq!(CpuFlags::ERROR.bits(), 0x13fe);
        assert!(!CpuFlags::FAULT.contains(CpuFlags::NOFAULT));
        assert_eq!(BufFlags::all().bits(), 0x1ff);
    }

    #[test]
    fn bufdesc_bytes() {
        let d = BufDesc {
            size: 1,
            cpu: 2,
            errors: 3,
            drops: 4,
            data: 5,
            oldest: 6,
            timestamp: 7,
        };
        let b = d.as_bytes();
        assert_eq!(
            (b[0], b[8], b[12], b[16], b[24], b[32], b[40]),
            (1, 2, 3, 4, 5, 6, 7)
        );
        assert_eq!(BufDesc::from_bytes(b), Some(d));
    }
}
