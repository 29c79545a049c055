//! The typed data model the consumer hands to the output backends.
//!
//! Contract: the consumer decodes kernel buffers (using the EPROBE / AGGDESC
//! record descriptions) into these values; the backends never see raw buffer
//! offsets. Integers keep their record size and raw bits because libdtrace's
//! formatting is driven by record size, not by D type. Not probe context.

/// One record of a probe firing, of an aggregation key, or of a printf argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A scalar of 1, 2, 4 or 8 bytes. `bits` holds the value zero-extended
    /// from `size` bytes; `signed` is whether the D type is signed (only
    /// printf's `%d` family looks at it, exactly like libdtrace).
    Int { size: u8, bits: u64, signed: bool },
    /// A floating-point value (only printf's `%e %f %g` consume it); `size` is
    /// 4, 8 or 16 as in the record.
    Float { size: u8, value: f64 },
    /// Strings, structs, arrays, `tracemem()` data. `force_raw` makes the
    /// byte printer use the hex dump (tracemem/printm do this).
    Bytes { data: Vec<u8>, force_raw: bool },
    /// `stack()` / `ustack()` / `jstack()` frames, innermost first. Zero PCs
    /// end the stack (as in the record). `strtab` is a ustack helper string
    /// table (one NUL-terminated string per frame) when present.
    Stack {
        kind: StackKind,
        pcs: Vec<u64>,
        strtab: Option<Vec<u8>>,
    },
    /// `sym(addr)`: kernel symbol without offset.
    Sym(u64),
    /// `mod(addr)`: kernel module.
    Mod(u64),
    /// `usym(addr)`: user symbol without offset.
    USym { pid: u64, pc: u64 },
    /// `umod(addr)`: user object.
    UMod { pid: u64, pc: u64 },
    /// `uaddr(addr)`: user symbol with offset.
    UAddr { pid: u64, pc: u64 },
    /// `printf()` / `sprintf`-like action: the format string and its
    /// argument records in order (`*` width/precision arguments included).
    Printf { format: String, args: Vec<Record> },
    /// `exit(n)`: prints nothing; the consumer records the status.
    Exit(i32),
}

impl Record {
    /// Convenience constructor for an integer record of `size` bytes.
    pub fn int(size: u8, value: i64, signed: bool) -> Record {
        let bits = match size {
            1 => u64::from(value as u8),
            2 => u64::from(value as u16),
            4 => u64::from(value as u32),
            _ => value as u64,
        };
        Record::Int { size, bits, signed }
    }

    /// A D string as the kernel records it: the text, NUL-padded to `strsize`.
    pub fn string(text: &str, strsize: usize) -> Record {
        let mut data = text.as_bytes().to_vec();
        if data.len() < strsize {
            data.resize(strsize, 0);
        }
        Record::Bytes {
            data,
            force_raw: false,
        }
    }

    /// The value sign-extended from its record size (used for `*` widths,
    /// sorting signed values and key comparison).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Record::Int { size, bits, .. } => Some(sign_extend(size, bits)),
            _ => None,
        }
    }
}

/// Sign-extends the low `size` bytes of `bits`.
pub fn sign_extend(size: u8, bits: u64) -> i64 {
    match size {
        1 => i64::from(bits as u8 as i8),
        2 => i64::from(bits as u16 as i16),
        4 => i64::from(bits as u32 as i32),
        _ => bits as i64,
    }
}

/// Whose stack a [`Record::Stack`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackKind {
    Kernel,
    User { pid: u64 },
}

/// A probe firing as decoded from the principal buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeFiring {
    pub cpu: u32,
    /// Enabled probe id (EPID).
    pub epid: u32,
    /// Probe id.
    pub probe_id: u32,
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
    /// hrtime of the record header.
    pub timestamp: u64,
}

/// The aggregating function and its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggKind {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Stddev,
    Quantize,
    Lquantize {
        base: i32,
        step: u16,
        levels: u16,
    },
    Llquantize {
        factor: u16,
        low: u16,
        high: u16,
        nsteps: u16,
    },
}

impl AggKind {
    /// The libdtrace action code order used when comparing values of
    /// different kinds (DTRACEAGG_COUNT 0x701 … LLQUANTIZE 0x709).
    pub fn action_code(&self) -> u32 {
        match self {
            AggKind::Count => 0x701,
            AggKind::Min => 0x702,
            AggKind::Max => 0x703,
            AggKind::Avg => 0x704,
            AggKind::Sum => 0x705,
            AggKind::Stddev => 0x706,
            AggKind::Quantize => 0x707,
            AggKind::Lquantize { .. } => 0x708,
            AggKind::Llquantize { .. } => 0x709,
        }
    }

    /// Name used by the structured output (`count`, `sum`, …).
    pub fn name(&self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum => "sum",
            AggKind::Avg => "avg",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::Stddev => "stddev",
            AggKind::Quantize => "quantize",
            AggKind::Lquantize { .. } => "lquantize",
            AggKind::Llquantize { .. } => "llquantize",
        }
    }

    /// Number of value words an entry of this kind carries (without the
    /// packed-argument word the kernel puts in front of (l)lquantize data).
    pub fn value_words(&self) -> usize {
        match *self {
            AggKind::Count | AggKind::Sum | AggKind::Min | AggKind::Max => 1,
            AggKind::Avg => 2,
            AggKind::Stddev => 4,
            AggKind::Quantize => QUANTIZE_NBUCKETS,
            AggKind::Lquantize { levels, .. } => usize::from(levels) + 2,
            AggKind::Llquantize { .. } => crate::output::histogram::llquantize_bins(*self),
        }
    }

    /// Whether this kind prints as a histogram.
    pub fn is_histogram(&self) -> bool {
        matches!(
            self,
            AggKind::Quantize | AggKind::Lquantize { .. } | AggKind::Llquantize { .. }
        )
    }
}

/// Number of quantize() buckets; bucket 63 holds zero.
pub const QUANTIZE_NBUCKETS: usize = 127;
/// Index of quantize()'s zero bucket.
pub const QUANTIZE_ZEROBUCKET: usize = 63;

/// One aggregation entry: its key records and value words.
///
/// Value words follow the kernel layout without (l)lquantize's leading
/// packed-argument word: count/sum/min/max `[v]`; avg `[count, total]`;
/// stddev `[count, sum, sumsq_lo, sumsq_hi]`; histograms one word per bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct AggEntry {
    pub key: Vec<Record>,
    pub value: Vec<i64>,
}

/// A snapshot of one aggregation variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregation {
    /// Aggregation variable id (sorting groups by it).
    pub id: u32,
    /// Name without the `@` (`_` for the anonymous aggregation).
    pub name: String,
    pub kind: AggKind,
    /// normalize() divisor (1 when not normalized).
    pub normal: u64,
    pub entries: Vec<AggEntry>,
}

/// Drop counters as reported by the kernel (per CPU buffers and STATUS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropKind {
    Principal,
    Aggregation,
    Dynamic,
    DynRinse,
    DynDirty,
    Spec,
    SpecBusy,
    SpecUnavail,
    StackStringOverflow,
    DoubleError,
}

impl DropKind {
    /// libdtrace's `dtrace_dropkind_t` numbering (used by the JSON "kind").
    pub fn code(&self) -> u32 {
        match self {
            DropKind::Principal => 0,
            DropKind::Aggregation => 1,
            DropKind::Dynamic => 2,
            DropKind::DynRinse => 3,
            DropKind::DynDirty => 4,
            DropKind::Spec => 5,
            DropKind::SpecBusy => 6,
            DropKind::SpecUnavail => 7,
            DropKind::StackStringOverflow => 8,
            DropKind::DoubleError => 9,
        }
    }

    /// The `-x droptags` tag (`DTRACEDROP_<KIND>`).
    pub fn tag(&self) -> &'static str {
        match self {
            DropKind::Principal => "DTRACEDROP_PRINCIPAL",
            DropKind::Aggregation => "DTRACEDROP_AGGREGATION",
            DropKind::Dynamic => "DTRACEDROP_DYNAMIC",
            DropKind::DynRinse => "DTRACEDROP_DYNRINSE",
            DropKind::DynDirty => "DTRACEDROP_DYNDIRTY",
            DropKind::Spec => "DTRACEDROP_SPEC",
            DropKind::SpecBusy => "DTRACEDROP_SPECBUSY",
            DropKind::SpecUnavail => "DTRACEDROP_SPECUNAVAIL",
            DropKind::StackStringOverflow => "DTRACEDROP_STKSTROVERFLOW",
            DropKind::DoubleError => "DTRACEDROP_DBLERROR",
        }
    }
}

/// A drop report: `cpu` is set for per-CPU (principal/aggregation) drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropEvent {
    pub kind: DropKind,
    pub cpu: Option<u32>,
    /// Drops since the previous report.
    pub count: u64,
    /// Running total of this kind.
    pub total: u64,
}

/// A run-time fault reported through the ERROR probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorEvent {
    pub epid: u32,
    pub probe_id: u32,
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
    /// 0 = predicate, n = action #n.
    pub action: u32,
    /// DIF byte offset, or None (-1).
    pub dif_offset: Option<i64>,
    /// `DTRACEFLT_*` code.
    pub fault: u32,
    /// Faulting address (`illval`).
    pub address: u64,
}
