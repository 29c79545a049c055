//! Turning snapshot bytes into the output model.
//!
//! Principal buffers hold back-to-back ECB records (a 12-byte header, then
//! the payloads at the offsets EPROBE reports) separated by 4-byte EPID-0
//! padding words. Aggregation buffers hold entries (aggregation id, key
//! records, value words) laid out as AGGDESC reports. As in libdtrace, the
//! *record size and action kind* decide how a payload prints, never a D
//! type: 1/2/4/8-byte results are integers, anything else is a byte array.

use std::collections::HashMap;

use rdtrace_ffi::action::{ActionKind, LlquantizeArg, LquantizeArg};
use rdtrace_ffi::buffer::RecHdr;
use rdtrace_ffi::pod::Pod;
use rdtrace_ffi::record::RecDesc;

use crate::output::model::{AggEntry, AggKind, Aggregation, Record, StackKind};
use crate::output::printf::Format;

use super::client::{AggregationInfo, EnabledProbeInfo};

/// Size of the record header every ECB record starts with.
pub const RECORD_HEADER_SIZE: usize = core::mem::size_of::<RecHdr>();

/// Something wrong with a snapshot (an unknown EPID, a record that does not
/// fit): libdtrace reports these as a corrupt buffer and stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One action's output as the consumer must act on it.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Something to print through `OutputSink::record` (trace, printf,
    /// stack, sym, …).
    Record(Record),
    /// `printa()`: the format (if any) and the aggregation variable ids.
    Printa {
        format: Option<String>,
        variables: Vec<u64>,
    },
    /// `exit(status)`.
    Exit(i32),
    /// `system()`/`freopen()`: a formatted command or path.
    System {
        format: String,
        args: Vec<Record>,
    },
    Freopen {
        format: String,
        args: Vec<Record>,
    },
    /// A libdtrace-side action (`clear`, `trunc`, `normalize`,
    /// `denormalize`, `setopt`, `ftruncate`): its code and argument records
    /// (for the aggregation ones, the first is the variable id).
    Library {
        code: u64,
        args: Vec<Record>,
    },
}

/// One ECB record from a principal buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct FiredRecord {
    pub epid: u32,
    pub timestamp: u64,
    pub actions: Vec<Action>,
}

fn read_uint(data: &[u8], offset: usize, size: usize) -> Option<u64> {
    let bytes = data.get(offset..offset.checked_add(size)?)?;
    Some(match size {
        1 => u64::from(bytes[0]),
        2 => u64::from(u16::from_ne_bytes(bytes.try_into().ok()?)),
        4 => u64::from(u32::from_ne_bytes(bytes.try_into().ok()?)),
        8 => u64::from_ne_bytes(bytes.try_into().ok()?),
        _ => return None,
    })
}

fn payload<'a>(data: &'a [u8], base: usize, rec: &RecDesc) -> Result<&'a [u8], DecodeError> {
    let start = base.checked_add(rec.offset as usize);
    let end = start.and_then(|s| s.checked_add(rec.size as usize));
    match (start, end) {
        (Some(s), Some(e)) => data.get(s..e).ok_or_else(|| {
            DecodeError(format!(
                "record at offset {s} of size {} overruns the buffer",
                rec.size
            ))
        }),
        _ => Err(DecodeError("record offset overflows".into())),
    }
}

/// A plain data record by size, as trace() and aggregation keys print.
pub fn data_record(bytes: &[u8], kind: ActionKind, signed: bool) -> Record {
    let raw = matches!(
        kind,
        ActionKind::Tracemem | ActionKind::TracememDynsize | ActionKind::Printm
    );
    match (bytes.len(), raw) {
        (1 | 2 | 4 | 8, false) => {
            let bits = read_uint(bytes, 0, bytes.len()).unwrap_or(0);
            Record::Int {
                size: bytes.len() as u8,
                bits,
                signed,
            }
        }
        _ => Record::Bytes {
            data: bytes.to_vec(),
            force_raw: raw,
        },
    }
}

fn words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
}

/// Decode one record's payload for a non-printf action.
fn simple_record(kind: ActionKind, bytes: &[u8], rec: &RecDesc, signed: bool) -> Record {
    match kind {
        ActionKind::Stack => Record::Stack {
            kind: StackKind::Kernel,
            pcs: words(bytes).collect(),
            strtab: None,
        },
        ActionKind::Ustack | ActionKind::Jstack => {
            let nframes = rdtrace_ffi::action::ustack_nframes(rec.arg) as usize;
            let mut all = words(bytes);
            let pid = all.next().unwrap_or(0);
            let pcs: Vec<u64> = all.take(nframes).collect();
            let strtab_start = 8usize.saturating_mul(nframes.saturating_add(1));
            let strtab = bytes
                .get(strtab_start..)
                .filter(|s| s.iter().any(|&b| b != 0))
                .map(<[u8]>::to_vec);
            Record::Stack {
                kind: StackKind::User { pid },
                pcs,
                strtab,
            }
        }
        ActionKind::Sym => Record::Sym(read_uint(bytes, 0, 8).unwrap_or(0)),
        ActionKind::Mod => Record::Mod(read_uint(bytes, 0, 8).unwrap_or(0)),
        ActionKind::Usym | ActionKind::Umod | ActionKind::Uaddr => {
            let pid = read_uint(bytes, 0, 8).unwrap_or(0);
            let pc = read_uint(bytes, 8, 8).unwrap_or(0);
            match kind {
                ActionKind::Usym => Record::USym { pid, pc },
                ActionKind::Umod => Record::UMod { pid, pc },
                _ => Record::UAddr { pid, pc },
            }
        }
        _ => data_record(bytes, kind, signed),
    }
}

/// Decodes principal-buffer snapshots, fetching what it does not know
/// (record layouts, format strings) through the callbacks.
pub struct RecordDecoder<'a> {
    pub eprobe: &'a mut dyn FnMut(u32) -> Result<EnabledProbeInfo, DecodeError>,
    pub format: &'a mut dyn FnMut(u16) -> Result<String, DecodeError>,
    /// Whether each record of an enabled probe holds a signed value (from the
    /// compiler's D types); `None` when unknown (treated as signed).
    pub signedness: &'a mut dyn FnMut(&EnabledProbeInfo) -> Option<Vec<bool>>,
}

impl RecordDecoder<'_> {
    /// Decode `data` (one CPU's snapshot) into records in buffer order.
    /// `start` is where decoding begins (the ring buffer's oldest record).
    pub fn decode(&mut self, data: &[u8], start: usize) -> Result<Vec<FiredRecord>, DecodeError> {
        let mut out = Vec::new();
        let mut offset = start;
        let mut wrapped = start == 0;
        loop {
            if offset >= data.len() || data.len() - offset < 4 {
                if wrapped {
                    break;
                }
                wrapped = true;
                offset = 0;
                continue;
            }
            if !wrapped && offset < start {
                break;
            }
            if wrapped && start != 0 && offset >= start {
                break;
            }
            let epid = read_uint(data, offset, 4).unwrap_or(0) as u32;
            if epid == rdtrace_ffi::buffer::DTRACE_EPIDNONE {
                offset += 4;
                continue;
            }
            let info = (self.eprobe)(epid)?;
            let size = info.size as usize;
            if size < RECORD_HEADER_SIZE || offset + size > data.len() {
                return Err(DecodeError(format!("enabled probe ID {epid} has a record of size {size} at offset {offset} that does not fit")));
            }
            let header = RecHdr::read_at(data, offset).unwrap_or_default();
            let actions = self.actions(data, offset, &info)?;
            out.push(FiredRecord {
                epid,
                timestamp: header.timestamp(),
                actions,
            });
            offset += size;
        }
        Ok(out)
    }

    fn actions(
        &mut self,
        data: &[u8],
        base: usize,
        info: &EnabledProbeInfo,
    ) -> Result<Vec<Action>, DecodeError> {
        let mut actions = Vec::new();
        let signs = (self.signedness)(info).unwrap_or_default();
        let signed = |i: usize| signs.get(i).copied().unwrap_or(true);
        let mut index = 0;
        while let Some(rec) = info.recs.get(index) {
            index += 1;
            let Some(kind) = ActionKind::from_raw(rec.action) else {
                return Err(DecodeError(format!(
                    "unknown action kind {:#x}",
                    rec.action
                )));
            };
            let bytes = payload(data, base, rec)?;
            match kind {
                ActionKind::Printf | ActionKind::System | ActionKind::Freopen => {
                    let format = (self.format)(rec.format)?;
                    let parsed = Format::parse(&format).map_err(DecodeError)?;
                    let count = parsed.arg_count();
                    let mut args = Vec::with_capacity(count);
                    if count > 0 {
                        args.push(data_record(bytes, ActionKind::DifExpr, signed(index - 1)));
                        for _ in 1..count {
                            let Some(next) = info.recs.get(index) else {
                                break;
                            };
                            index += 1;
                            let next_kind =
                                ActionKind::from_raw(next.action).unwrap_or(ActionKind::DifExpr);
                            args.push(simple_record(
                                next_kind,
                                payload(data, base, next)?,
                                next,
                                signed(index - 1),
                            ));
                        }
                    }
                    actions.push(match kind {
                        ActionKind::Printf => Action::Record(Record::Printf { format, args }),
                        ActionKind::System => Action::System { format, args },
                        _ => Action::Freopen { format, args },
                    });
                }
                ActionKind::Printa => {
                    let format = if rec.format == 0 {
                        None
                    } else {
                        Some((self.format)(rec.format)?)
                    };
                    let mut variables = vec![read_uint(bytes, 0, bytes.len()).unwrap_or(0)];
                    // Further aggregations of the same printa() follow as
                    // PRINTA records carrying the same non-zero uarg.
                    while let Some(next) = info.recs.get(index) {
                        if next.action != rec.action || rec.uarg == 0 || next.uarg != rec.uarg {
                            break;
                        }
                        index += 1;
                        let b = payload(data, base, next)?;
                        variables.push(read_uint(b, 0, b.len()).unwrap_or(0));
                    }
                    actions.push(Action::Printa { format, variables });
                }
                ActionKind::Exit => {
                    let status = read_uint(bytes, 0, bytes.len()).unwrap_or(0) as u32 as i32;
                    actions.push(Action::Exit(status));
                }
                ActionKind::LibAct => {
                    let mut args = vec![data_record(bytes, ActionKind::DifExpr, true)];
                    while let Some(next) = info.recs.get(index) {
                        if next.action != rec.action || rec.uarg == 0 || next.uarg != rec.uarg {
                            break;
                        }
                        index += 1;
                        args.push(data_record(
                            payload(data, base, next)?,
                            ActionKind::DifExpr,
                            true,
                        ));
                    }
                    actions.push(Action::Library {
                        code: rec.arg,
                        args,
                    });
                }
                ActionKind::Speculate
                | ActionKind::Commit
                | ActionKind::Discard
                | ActionKind::Chill
                | ActionKind::Breakpoint
                | ActionKind::Panic
                | ActionKind::Stop
                | ActionKind::Raise
                | ActionKind::None => {}
                _ if kind.is_aggregation() => {}
                _ => actions.push(Action::Record(simple_record(
                    kind,
                    bytes,
                    rec,
                    signed(index - 1),
                ))),
            }
        }
        Ok(actions)
    }
}

/// A key's identity for merging entries: the raw bytes of its records.
fn key_identity(key: &[Record]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for record in key {
        match record {
            Record::Int { size, bits, .. } => {
                bytes.extend_from_slice(&bits.to_ne_bytes()[..usize::from(*size).min(8)])
            }
            Record::Bytes { data, .. } => bytes.extend_from_slice(data),
            Record::Stack { pcs, .. } => pcs
                .iter()
                .for_each(|pc| bytes.extend_from_slice(&pc.to_ne_bytes())),
            Record::Sym(a) | Record::Mod(a) => bytes.extend_from_slice(&a.to_ne_bytes()),
            Record::USym { pid, pc } | Record::UMod { pid, pc } | Record::UAddr { pid, pc } => {
                bytes.extend_from_slice(&pid.to_ne_bytes());
                bytes.extend_from_slice(&pc.to_ne_bytes());
            }
            other => bytes.extend_from_slice(format!("{other:?}").as_bytes()),
        }
        // A separator so (ab, c) and (a, bc) differ.
        bytes.push(0xff);
    }
    bytes
}

/// The aggregating function `action` (a `DTRACEAGG_*` kind) with its
/// action argument (lquantize/llquantize parameters), as the compiler
/// describes an aggregation before the kernel has any data for it.
pub fn agg_kind_for(action: u16, arg: u64) -> Option<AggKind> {
    let mut rec = <RecDesc as rdtrace_ffi::pod::Pod>::zeroed();
    rec.action = action;
    rec.arg = arg;
    agg_kind(&rec)
}

/// The aggregating function of an AGGDESC's last record.
pub fn agg_kind(rec: &RecDesc) -> Option<AggKind> {
    Some(match ActionKind::from_raw(rec.action)? {
        ActionKind::Count => AggKind::Count,
        ActionKind::Sum => AggKind::Sum,
        ActionKind::Avg => AggKind::Avg,
        ActionKind::Min => AggKind::Min,
        ActionKind::Max => AggKind::Max,
        ActionKind::Stddev => AggKind::Stddev,
        ActionKind::Quantize => AggKind::Quantize,
        ActionKind::Lquantize => {
            let a = LquantizeArg::unpack(rec.arg);
            AggKind::Lquantize {
                base: a.base,
                step: a.step,
                levels: a.levels,
            }
        }
        ActionKind::Llquantize => {
            let a = LlquantizeArg::unpack(rec.arg);
            AggKind::Llquantize {
                factor: a.factor,
                low: a.low,
                high: a.high,
                nsteps: a.nsteps,
            }
        }
        _ => return None,
    })
}

/// Aggregation data merged across CPUs and across snapshots, one
/// aggregation per variable. AGGSNAP is switch-style: each snapshot holds
/// only what was aggregated since the previous one, so like libdtrace the
/// consumer keeps the running totals.
#[derive(Default)]
pub struct AggregationMerger {
    /// Keyed by aggregation variable id.
    aggregations: HashMap<u64, Aggregation>,
    /// Raw key bytes → entry index, per variable, for merging across CPUs.
    index: HashMap<(u64, Vec<u8>), usize>,
}

impl AggregationMerger {
    /// Add one CPU's AGGSNAP data. `describe` returns the layout of an
    /// aggregation id; `name_of` maps a variable id to its name.
    pub fn add_snapshot(
        &mut self,
        data: &[u8],
        describe: &mut dyn FnMut(u32) -> Result<AggregationInfo, DecodeError>,
        name_of: &dyn Fn(u64) -> String,
    ) -> Result<(), DecodeError> {
        let mut offset = 0usize;
        while offset + 4 <= data.len() {
            let aggid = read_uint(data, offset, 4).unwrap_or(0) as u32;
            if aggid == 0 {
                offset += 4;
                continue;
            }
            let info = describe(aggid)?;
            let size = info.size as usize;
            if size == 0 || offset + size > data.len() {
                return Err(DecodeError(format!(
                    "aggregation {aggid} entry of size {size} at offset {offset} does not fit"
                )));
            }
            self.add_entry(&data[offset..offset + size], &info, name_of)?;
            offset += size;
        }
        Ok(())
    }

    fn add_entry(
        &mut self,
        entry: &[u8],
        info: &AggregationInfo,
        name_of: &dyn Fn(u64) -> String,
    ) -> Result<(), DecodeError> {
        let Some((agg_rec, key_recs)) = info.recs.split_last() else {
            return Err(DecodeError(format!(
                "aggregation {} has no records",
                info.aggid
            )));
        };
        let kind = agg_kind(agg_rec).ok_or_else(|| {
            DecodeError(format!(
                "aggregation {} ends in action {:#x}",
                info.aggid, agg_rec.action
            ))
        })?;
        // Record 0 is the compiler's hidden aggregation-variable-id member.
        let (varid, keys) = match key_recs.split_first() {
            Some((first, rest)) => (
                read_uint(payload(entry, 0, first)?, 0, first.size as usize).unwrap_or(0),
                rest,
            ),
            None => (u64::from(info.aggid), key_recs),
        };
        let mut key = Vec::with_capacity(keys.len());
        for rec in keys {
            let bytes = payload(entry, 0, rec)?;
            let kind = ActionKind::from_raw(rec.action).unwrap_or(ActionKind::DifExpr);
            key.push(simple_record(kind, bytes, rec, true));
        }
        let key_bytes = key_identity(&key);
        let mut value: Vec<i64> = words(payload(entry, 0, agg_rec)?)
            .map(|w| w as i64)
            .collect();
        if matches!(kind, AggKind::Lquantize { .. } | AggKind::Llquantize { .. })
            && !value.is_empty()
        {
            value.remove(0); // the packed parameters precede the buckets
        }
        let aggregation = self
            .aggregations
            .entry(varid)
            .or_insert_with(|| Aggregation {
                id: varid as u32,
                name: name_of(varid),
                kind,
                normal: 1,
                entries: Vec::new(),
            });
        match self.index.get(&(varid, key_bytes.clone())) {
            Some(&i) => {
                crate::output::merge::combine(kind, &mut aggregation.entries[i].value, &value)
            }
            None => {
                self.index
                    .insert((varid, key_bytes), aggregation.entries.len());
                aggregation.entries.push(AggEntry { key, value });
            }
        }
        Ok(())
    }

    /// `clear(@a)`: every value back to its initial state, keys kept.
    pub fn clear(&mut self, varid: u64) {
        if let Some(agg) = self.aggregations.get_mut(&varid) {
            let initial = match agg.kind {
                AggKind::Min => i64::MAX,
                AggKind::Max => i64::MIN,
                _ => 0,
            };
            for entry in &mut agg.entries {
                entry.value.iter_mut().for_each(|w| *w = initial);
            }
        }
    }

    /// `trunc(@a, n)`: keep the `n` largest entries (the `-n` smallest when
    /// negative); `trunc(@a)` removes every entry.
    pub fn truncate(&mut self, varid: u64, keep: Option<i64>) {
        let Some(agg) = self.aggregations.get_mut(&varid) else {
            return;
        };
        let kind = agg.kind;
        match keep {
            None | Some(0) => agg.entries.clear(),
            Some(n) => {
                agg.entries.sort_by(|a, b| {
                    crate::output::aggregate::value_cmp(kind, &a.value, kind, &b.value)
                });
                let count = n.unsigned_abs() as usize;
                if n > 0 {
                    let surplus = agg.entries.len().saturating_sub(count);
                    agg.entries.drain(..surplus);
                } else {
                    agg.entries.truncate(count);
                }
            }
        }
        // Entry positions changed: rebuild this variable's key index.
        self.index.retain(|(v, _), _| *v != varid);
        for (i, entry) in agg.entries.iter().enumerate() {
            self.index.insert((varid, key_identity(&entry.key)), i);
        }
    }

    /// `normalize(@a, n)`, and `denormalize(@a)` as n = 1.
    pub fn set_normal(&mut self, varid: u64, normal: u64) {
        if let Some(agg) = self.aggregations.get_mut(&varid) {
            agg.normal = normal.max(1);
        }
    }

    /// The merged aggregations, by variable id.
    pub fn aggregations(&self) -> &HashMap<u64, Aggregation> {
        &self.aggregations
    }

    /// The merged aggregations, by variable id.
    pub fn into_aggregations(self) -> HashMap<u64, Aggregation> {
        self.aggregations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(action: ActionKind, offset: u32, size: u32) -> RecDesc {
        RecDesc {
            action: action as u16,
            size,
            offset,
            alignment: size.min(8) as u16,
            ..RecDesc::default()
        }
    }

    #[test]
    fn principal_records_skip_padding_and_decode_by_size() {
        let info = EnabledProbeInfo {
            epid: 3,
            probe_id: 1,
            uarg: 0,
            size: 24,
            recs: vec![
                rec(ActionKind::DifExpr, 12, 4),
                rec(ActionKind::DifExpr, 16, 8),
            ],
        };
        let mut data = vec![0u8; 4]; // one padding word
        let mut record = vec![0u8; 24];
        RecHdr::new(3, 0x1122_3344_5566_7788).write_at(&mut record, 0);
        record[12..16].copy_from_slice(&(-5i32).to_ne_bytes());
        record[16..24].copy_from_slice(&42u64.to_ne_bytes());
        data.extend_from_slice(&record);
        let mut eprobe = |epid: u32| {
            if epid == 3 {
                Ok(info.clone())
            } else {
                Err(DecodeError("no".into()))
            }
        };
        let mut format = |_: u16| Err(DecodeError("no formats".into()));
        let mut decoder = RecordDecoder {
            eprobe: &mut eprobe,
            format: &mut format,
            signedness: &mut |_: &EnabledProbeInfo| None,
        };
        let out = decoder.decode(&data, 0).expect("decodes");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp, 0x1122_3344_5566_7788);
        assert_eq!(
            out[0].actions[0],
            Action::Record(Record::Int {
                size: 4,
                bits: (-5i32) as u32 as u64,
                signed: true
            })
        );
        assert_eq!(
            out[0].actions[1],
            Action::Record(Record::Int {
                size: 8,
                bits: 42,
                signed: true
            })
        );
    }

    #[test]
    fn unknown_epid_is_an_error_not_a_panic() {
        let mut data = vec![0u8; 16];
        data[0..4].copy_from_slice(&9u32.to_ne_bytes());
        let mut eprobe = |_: u32| Err(DecodeError("unknown".into()));
        let mut format = |_: u16| Err(DecodeError("unknown".into()));
        let mut decoder = RecordDecoder {
            eprobe: &mut eprobe,
            format: &mut format,
            signedness: &mut |_: &EnabledProbeInfo| None,
        };
        assert!(decoder.decode(&data, 0).is_err());
    }

    #[test]
    fn oversized_record_is_rejected() {
        let info = EnabledProbeInfo {
            epid: 1,
            probe_id: 1,
            uarg: 0,
            size: 64,
            recs: vec![],
        };
        let mut data = vec![0u8; 16];
        data[0..4].copy_from_slice(&1u32.to_ne_bytes());
        let mut eprobe = |_: u32| Ok(info.clone());
        let mut format = |_: u16| Err(DecodeError("unknown".into()));
        let mut decoder = RecordDecoder {
            eprobe: &mut eprobe,
            format: &mut format,
            signedness: &mut |_: &EnabledProbeInfo| None,
        };
        assert!(decoder.decode(&data, 0).is_err());
    }

    #[test]
    fn printf_groups_its_arguments() {
        let info = EnabledProbeInfo {
            epid: 1,
            probe_id: 1,
            uarg: 0,
            size: 32,
            recs: vec![
                RecDesc {
                    format: 1,
                    ..rec(ActionKind::Printf, 16, 8)
                },
                rec(ActionKind::DifExpr, 24, 8),
                rec(ActionKind::Exit, 12, 4),
            ],
        };
        let mut record = vec![0u8; 32];
        RecHdr::new(1, 0).write_at(&mut record, 0);
        record[12..16].copy_from_slice(&7u32.to_ne_bytes());
        record[16..24].copy_from_slice(&1u64.to_ne_bytes());
        record[24..32].copy_from_slice(&2u64.to_ne_bytes());
        let mut eprobe = |_: u32| Ok(info.clone());
        let mut format = |id: u16| {
            if id == 1 {
                Ok("%d and %d\n".to_string())
            } else {
                Err(DecodeError("no".into()))
            }
        };
        let mut decoder = RecordDecoder {
            eprobe: &mut eprobe,
            format: &mut format,
            signedness: &mut |_: &EnabledProbeInfo| None,
        };
        let out = decoder.decode(&record, 0).expect("decodes");
        let Action::Record(Record::Printf { format, args }) = &out[0].actions[0] else {
            panic!("not printf")
        };
        assert_eq!(format, "%d and %d\n");
        assert_eq!(args.len(), 2);
        assert_eq!(args[1].as_i64(), Some(2));
        assert_eq!(out[0].actions[1], Action::Exit(7));
    }

    #[test]
    fn aggregations_merge_across_cpus_by_key() {
        // entry: aggid u32 @0, varid u32 @4, key u64 @8, count u64 @16
        let info = AggregationInfo {
            aggid: 1,
            epid: 1,
            size: 24,
            recs: vec![
                rec(ActionKind::DifExpr, 4, 4),
                rec(ActionKind::DifExpr, 8, 8),
                rec(ActionKind::Count, 16, 8),
            ],
        };
        let entry = |key: u64, count: u64| {
            let mut e = vec![0u8; 24];
            e[0..4].copy_from_slice(&1u32.to_ne_bytes());
            e[4..8].copy_from_slice(&5u32.to_ne_bytes());
            e[8..16].copy_from_slice(&key.to_ne_bytes());
            e[16..24].copy_from_slice(&count.to_ne_bytes());
            e
        };
        let mut merger = AggregationMerger::default();
        let mut describe = |_: u32| Ok(info.clone());
        let names = |varid: u64| format!("agg{varid}");
        let cpu0 = [entry(10, 2), entry(11, 1)].concat();
        let cpu1 = [vec![0u8; 8], entry(10, 3)].concat();
        merger
            .add_snapshot(&cpu0, &mut describe, &names)
            .expect("cpu0");
        merger
            .add_snapshot(&cpu1, &mut describe, &names)
            .expect("cpu1");
        let aggs = merger.into_aggregations();
        let agg = &aggs[&5];
        assert_eq!(agg.name, "agg5");
        assert_eq!(agg.kind, AggKind::Count);
        let ten = agg
            .entries
            .iter()
            .find(|e| e.key[0].as_i64() == Some(10))
            .expect("key 10");
        assert_eq!(ten.value, vec![5]);
        assert_eq!(agg.entries.len(), 2);
    }

    #[test]
    fn running_totals_wrap_like_a_64_bit_kernel_counter() {
        // quantize with an increment: aggid u32 @0, varid u32 @4, then the
        // 127 buckets (bucket 63 is value 0, 64 is 1, 65 is 2).
        let size = 8 + 127 * 8;
        let info = AggregationInfo {
            aggid: 1,
            epid: 1,
            size: size as u32,
            recs: vec![
                rec(ActionKind::DifExpr, 4, 4),
                rec(ActionKind::Quantize, 8, 127 * 8),
            ],
        };
        let entry = |bucket: usize, n: i64| {
            let mut e = vec![0u8; size];
            e[0..4].copy_from_slice(&1u32.to_ne_bytes());
            e[4..8].copy_from_slice(&3u32.to_ne_bytes());
            let at = 8 + bucket * 8;
            e[at..at + 8].copy_from_slice(&n.to_ne_bytes());
            e
        };
        let mut merger = AggregationMerger::default();
        let mut describe = |_: u32| Ok(info.clone());
        let names = |varid: u64| format!("agg{varid}");
        // Three snapshots (AGGSNAP is switch-style): INT64_MAX, then 1 more
        // in bucket 1, and INT64_MAX twice in bucket 2.
        for (bucket, n) in [(64, i64::MAX), (64, 1), (65, i64::MAX), (65, i64::MAX)] {
            merger
                .add_snapshot(&entry(bucket, n), &mut describe, &names)
                .expect("snapshot");
        }
        let aggs = merger.into_aggregations();
        let value = &aggs[&3].entries[0].value;
        assert_eq!(value[64], i64::MIN, "INT64_MAX + 1 wraps to INT64_MIN");
        assert_eq!(value[65], -2, "2 * INT64_MAX wraps to -2");
        assert_eq!(value[63], 0);
    }
}
