//! Record layout descriptors: `dtrace_recdesc_t` (one action's payload
//! within an ECB record), `dtrace_eprobedesc_t` (EPROBE: an enabled probe's
//! record layout), `dtrace_aggdesc_t` (AGGDESC: an aggregation's key/value
//! layout) and `dtrace_fmtdesc_t` (FORMAT: a printf format string by id).
//!
//! EPROBE and AGGDESC descriptors are variable-length: a fixed header then
//! `nrecs` record descriptors. The structs here mirror the C declarations
//! (header plus one record); [`EprobeDesc::size_for`] / [`AggDesc::size_for`]
//! give the byte size for `n` records and the `rec_*` helpers read and write
//! records inside such a buffer.
//!
//! Probe context: not used there; nothing allocates or panics.

// The C type names are kept as aliases so the ABI names stay searchable.
#![allow(non_camel_case_types)]

use crate::action::ActionKind;
use crate::pod::{abi_struct, Pod};
use crate::types::{AggId, AggVarId, DtraceId, EpId};
use crate::UnknownValue;

/// `dtrace_recdesc_t`: where one action's data lies in an ECB record. 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct RecDesc {
    /// `dtrd_action`: the `DTRACEACT_*` kind that produced the data.
    pub action: u16,
    /// Implicit C padding, kept zero.
    pub pad: u16,
    /// `dtrd_size`: payload size in bytes.
    pub size: u32,
    /// `dtrd_offset`: offset from the start of the record (header included).
    pub offset: u32,
    /// `dtrd_alignment`: payload alignment.
    pub alignment: u16,
    /// `dtrd_format`: 1-based format-string id, or 0.
    pub format: u16,
    /// `dtrd_arg`: the action's argument (see `DofActDesc::arg`).
    pub arg: u64,
    /// `dtrd_uarg`: the consumer's opaque value for the action.
    pub uarg: u64,
}
/// C name of [`RecDesc`].
pub type dtrace_recdesc_t = RecDesc;
abi_struct!(RecDesc, size = 32, align = 8, {
    action @ 0, pad @ 2, size @ 4, offset @ 8, alignment @ 12, format @ 14, arg @ 16, uarg @ 24,
});

impl RecDesc {
    /// The typed action kind.
    pub fn kind(&self) -> Result<ActionKind, UnknownValue> {
        ActionKind::try_from(self.action)
    }
}

/// Reads record `index` from a variable-length descriptor whose records
/// start at `first`.
fn rec_at(bytes: &[u8], first: usize, index: usize) -> Option<RecDesc> {
    let off = index
        .checked_mul(core::mem::size_of::<RecDesc>())?
        .checked_add(first)?;
    RecDesc::read_at(bytes, off)
}

/// Writes record `index`; `false` if it does not fit in `bytes`.
fn write_rec_at(bytes: &mut [u8], first: usize, index: usize, rec: &RecDesc) -> bool {
    match index
        .checked_mul(core::mem::size_of::<RecDesc>())
        .and_then(|o| o.checked_add(first))
    {
        Some(off) => rec.write_at(bytes, off),
        None => false,
    }
}

/// Bytes of a descriptor with a `header`-byte head and `nrecs` records (the C
/// struct always holds at least one).
const fn var_size(header: usize, nrecs: usize) -> Option<usize> {
    let n = if nrecs == 0 { 1 } else { nrecs };
    match n.checked_mul(core::mem::size_of::<RecDesc>()) {
        Some(r) => header.checked_add(r),
        None => None,
    }
}

/// `dtrace_eprobedesc_t`: EPROBE's argument — an enabled probe's record
/// layout. Header of 24 bytes, then `nrecs` [`RecDesc`]s (56 bytes with one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct EprobeDesc {
    /// `dtepd_epid`: in: the EPID asked about.
    pub epid: EpId,
    /// `dtepd_probeid`: out: the probe it is enabled on.
    pub probeid: DtraceId,
    /// `dtepd_uarg`: out: the ECB's user argument (`dofe_uarg`).
    pub uarg: u64,
    /// `dtepd_size`: out: total record size, header included.
    pub size: u32,
    /// `dtepd_nrecs`: in: capacity of `rec`; out: the true record count.
    pub nrecs: i32,
    /// `dtepd_rec[1]`: the first record descriptor; more follow in memory.
    pub rec: [RecDesc; 1],
}
/// C name of [`EprobeDesc`].
pub type dtrace_eprobedesc_t = EprobeDesc;
abi_struct!(EprobeDesc, size = 56, align = 8, {
    epid @ 0, probeid @ 4, uarg @ 8, size @ 16, nrecs @ 20, rec @ 24,
});

impl EprobeDesc {
    /// Offset of the first record descriptor.
    pub const RECS_OFFSET: usize = 24;

    /// Size in bytes of a descriptor holding `nrecs` records
    /// (`offsetof(rec) + max(nrecs, 1) * 32`); `None` on overflow.
    pub const fn size_for(nrecs: usize) -> Option<usize> {
        var_size(Self::RECS_OFFSET, nrecs)
    }

    /// Reads record `index` from a descriptor buffer.
    pub fn rec_in(bytes: &[u8], index: usize) -> Option<RecDesc> {
        rec_at(bytes, Self::RECS_OFFSET, index)
    }

    /// Writes record `index` into a descriptor buffer; `false` if it does
    /// not fit.
    pub fn write_rec_in(bytes: &mut [u8], index: usize, rec: &RecDesc) -> bool {
        write_rec_at(bytes, Self::RECS_OFFSET, index, rec)
    }
}

/// `dtrace_aggdesc_t`: AGGDESC's argument — an aggregation's layout. Header
/// of 40 bytes, then `nrecs` [`RecDesc`]s (72 bytes with one). The first
/// three fields belong to libdtrace; the kernel ignores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct AggDesc {
    /// `dtagd_name`: user-space pointer to the aggregation's name.
    pub name: u64,
    /// `dtagd_varid`: libdtrace's variable id.
    pub varid: AggVarId,
    /// `dtagd_flags`: libdtrace's `DTRACE_A_*` flags.
    pub flags: i32,
    /// `dtagd_id`: in: the aggregation id asked about.
    pub id: AggId,
    /// `dtagd_epid`: out: the EPID of the ECB the aggregation belongs to.
    pub epid: EpId,
    /// `dtagd_size`: out: size of a key+value entry.
    pub size: u32,
    /// `dtagd_nrecs`: in: capacity; out: the true record count.
    pub nrecs: i32,
    /// `dtagd_pad`: reserved.
    pub pad: u32,
    /// `dtagd_rec[1]`: the first record descriptor; more follow in memory.
    pub rec: [RecDesc; 1],
}
/// C name of [`AggDesc`].
pub type dtrace_aggdesc_t = AggDesc;
abi_struct!(AggDesc, size = 72, align = 8, {
    name @ 0, varid @ 8, flags @ 16, id @ 20, epid @ 24, size @ 28, nrecs @ 32, pad @ 36, rec @ 40,
});

impl AggDesc {
    /// Offset of the first record descriptor.
    pub const RECS_OFFSET: usize = 40;

    /// Size in bytes of a descriptor holding `nrecs` records; `None` on overflow.
    pub const fn size_for(nrecs: usize) -> Option<usize> {
        var_size(Self::RECS_OFFSET, nrecs)
    }

    /// Reads record `index` from a descriptor buffer.
    pub fn rec_in(bytes: &[u8], index: usize) -> Option<RecDesc> {
        rec_at(bytes, Self::RECS_OFFSET, index)
    }

    /// Writes record `index` into a descriptor buffer; `false` if it does
    /// not fit.
    pub fn write_rec_in(bytes: &mut [u8], index: usize, rec: &RecDesc) -> bool {
        write_rec_at(bytes, Self::RECS_OFFSET, index, rec)
    }
}

bitflags::bitflags! {
    /// libdtrace's aggregation flags (`DTRACE_A_*`), kept in `dtagd_flags`;
    /// the kernel never looks at them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct AggFlags: i32 {
        /// `DTRACE_A_PERCPU`: data kept per CPU.
        const PERCPU = 0x0001;
        /// `DTRACE_A_KEEPDELTA`: keep the delta since the last snapshot.
        const KEEPDELTA = 0x0002;
        /// `DTRACE_A_ANONYMOUS`: belongs to anonymous tracing.
        const ANONYMOUS = 0x0004;
        /// `DTRACE_A_TOTAL`: a total over aggregations.
        const TOTAL = 0x0008;
        /// `DTRACE_A_MINMAXBIN`: min/max bins computed.
        const MINMAXBIN = 0x0010;
        /// `DTRACE_A_HASNEGATIVES`: some value is negative.
        const HASNEGATIVES = 0x0020;
        /// `DTRACE_A_HASPOSITIVES`: some value is positive.
        const HASPOSITIVES = 0x0040;
    }
}

/// `dtrace_fmtdesc_t`: FORMAT's argument — fetch format string `format`.
/// 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct FmtDesc {
    /// `dtfd_string`: user address to copy the string to.
    pub string: u64,
    /// `dtfd_length`: in: room at `string`; out (if too small): length needed
    /// including the NUL.
    pub length: i32,
    /// `dtfd_format`: 1-based format id.
    pub format: u16,
    /// Implicit C padding, kept zero.
    pub pad: u16,
}
/// C name of [`FmtDesc`].
pub type dtrace_fmtdesc_t = FmtDesc;
abi_struct!(FmtDesc, size = 16, align = 8, { string @ 0, length @ 8, format @ 12, pad @ 14 });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_sizes() {
        assert_eq!(EprobeDesc::size_for(0), Some(56));
        assert_eq!(EprobeDesc::size_for(1), Some(56));
        assert_eq!(EprobeDesc::size_for(3), Some(24 + 96));
        assert_eq!(AggDesc::size_for(1), Some(72));
        assert_eq!(AggDesc::size_for(4), Some(40 + 128));
        assert_eq!(EprobeDesc::size_for(usize::MAX), None);
    }

    #[test]
    fn records_in_buffer() {
        let mut buf = [0u8; 24 + 64];
        let r0 = RecDesc {
            action: 0x3,
            size: 8,
            offset: 12,
            alignment: 8,
            format: 1,
            ..Default::default()
        };
        let r1 = RecDesc {
            action: 0x701,
            size: 8,
            offset: 24,
            alignment: 8,
            ..Default::default()
        };
        assert!(EprobeDesc::write_rec_in(&mut buf, 0, &r0));
        assert!(EprobeDesc::write_rec_in(&mut buf, 1, &r1));
        assert!(!EprobeDesc::write_rec_in(&mut buf, 2, &r1));
        assert!(!EprobeDesc::write_rec_in(&mut buf, usize::MAX, &r1));
        assert_eq!(EprobeDesc::rec_in(&buf, 0), Some(r0));
        assert_eq!(EprobeDesc::rec_in(&buf, 1), Some(r1));
        assert_eq!(EprobeDesc::rec_in(&buf, 2), None);
        assert_eq!(
            EprobeDesc::rec_in(&buf, 1).unwrap().kind(),
            Ok(ActionKind::Count)
        );
        // The fixed struct sees the same first record.
        assert_eq!(EprobeDesc::from_bytes(&buf).unwrap().rec[0], r0);
        let mut abuf = [0u8; 72];
        assert!(AggDesc::write_rec_in(&mut abuf, 0, &r1));
        assert_eq!(AggDesc::from_bytes(&abuf).unwrap().rec[0], r1);
        assert_eq!(
            RecDesc {
                action: 9,
                ..Default::default()
            }
            .kind(),
            Err(UnknownValue(9))
        );
    }

    #[test]
    fn fmtdesc_bytes() {
        let f = FmtDesc {
            string: 0x1122,
            length: -1,
            format: 3,
            pad: 0,
        };
        let b = f.as_bytes();
        assert_eq!(
            (b[0], b[1], b[8], b[11], b[12]),
            (0x22, 0x11, 0xff, 0xff, 3)
        );
    }
}
