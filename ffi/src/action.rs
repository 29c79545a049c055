//! Action kinds (`DTRACEACT_*`, `DTRACEAGG_*`), their classes, and the
//! packing of the 64-bit action arguments of `quantize()`, `lquantize()`,
//! `llquantize()` and `ustack()`/`jstack()`.
//!
//! Probe context: yes (const helpers, no allocation, no panics).

use crate::UnknownValue;

macro_rules! action_kinds {
    ($( $variant:ident = $num:literal, $cname:literal, $name:literal; )+) => {
        /// An action kind (`dtrace_actkind_t`, a `u16`): the class is the high
        /// byte (see [`ActionClass`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum ActionKind {
            $(
                #[doc = concat!("`", $cname, "` (", stringify!($num), ").")]
                $variant = $num,
            )+
        }

        impl ActionKind {
            /// Every action kind, in numeric order.
            pub const ALL: &'static [ActionKind] = &[$(ActionKind::$variant),+];

            /// The kind for a raw value, if known.
            pub const fn from_raw(raw: u16) -> Option<ActionKind> {
                match raw {
                    $($num => Some(ActionKind::$variant),)+
                    _ => None,
                }
            }

            /// The C macro name (`DTRACEACT_*` or `DTRACEAGG_*`).
            pub const fn c_name(self) -> &'static str {
                match self { $(ActionKind::$variant => $cname,)+ }
            }

            /// A short unique lower-case name: the D function for most kinds
            /// (`"printf"`, `"quantize"`); `"difexpr"` for `trace()` and
            /// `"tracemem_dynsize"` for the dynamic-size form of `tracemem()`.
            pub const fn name(self) -> &'static str {
                match self { $(ActionKind::$variant => $name,)+ }
            }

            /// Looks a kind up by [`ActionKind::name`].
            pub fn from_name(name: &str) -> Option<ActionKind> {
                Self::ALL.iter().copied().find(|k| k.name() == name)
            }
        }
    };
}

action_kinds! {
    None = 0x0000, "DTRACEACT_NONE", "none";
    DifExpr = 0x0001, "DTRACEACT_DIFEXPR", "difexpr";
    Exit = 0x0002, "DTRACEACT_EXIT", "exit";
    Printf = 0x0003, "DTRACEACT_PRINTF", "printf";
    Printa = 0x0004, "DTRACEACT_PRINTA", "printa";
    LibAct = 0x0005, "DTRACEACT_LIBACT", "libact";
    Tracemem = 0x0006, "DTRACEACT_TRACEMEM", "tracemem";
    TracememDynsize = 0x0007, "DTRACEACT_TRACEMEM_DYNSIZE", "tracemem_dynsize";
    Printm = 0x0008, "DTRACEACT_PRINTM", "printm";
    Ustack = 0x0101, "DTRACEACT_USTACK", "ustack";
    Jstack = 0x0102, "DTRACEACT_JSTACK", "jstack";
    Usym = 0x0103, "DTRACEACT_USYM", "usym";
    Umod = 0x0104, "DTRACEACT_UMOD", "umod";
    Uaddr = 0x0105, "DTRACEACT_UADDR", "uaddr";
    Stop = 0x0201, "DTRACEACT_STOP", "stop";
    Raise = 0x0202, "DTRACEACT_RAISE", "raise";
    System = 0x0203, "DTRACEACT_SYSTEM", "system";
    Freopen = 0x0204, "DTRACEACT_FREOPEN", "freopen";
    Stack = 0x0401, "DTRACEACT_STACK", "stack";
    Sym = 0x0402, "DTRACEACT_SYM", "sym";
    Mod = 0x0403, "DTRACEACT_MOD", "mod";
    Breakpoint = 0x0501, "DTRACEACT_BREAKPOINT", "breakpoint";
    Panic = 0x0502, "DTRACEACT_PANIC", "panic";
    Chill = 0x0503, "DTRACEACT_CHILL", "chill";
    Speculate = 0x0601, "DTRACEACT_SPECULATE", "speculate";
    Commit = 0x0602, "DTRACEACT_COMMIT", "commit";
    Discard = 0x0603, "DTRACEACT_DISCARD", "discard";
    Count = 0x0701, "DTRACEAGG_COUNT", "count";
    Min = 0x0702, "DTRACEAGG_MIN", "min";
    Max = 0x0703, "DTRACEAGG_MAX", "max";
    Avg = 0x0704, "DTRACEAGG_AVG", "avg";
    Sum = 0x0705, "DTRACEAGG_SUM", "sum";
    Stddev = 0x0706, "DTRACEAGG_STDDEV", "stddev";
    Quantize = 0x0707, "DTRACEAGG_QUANTIZE", "quantize";
    Lquantize = 0x0708, "DTRACEAGG_LQUANTIZE", "lquantize";
    Llquantize = 0x0709, "DTRACEAGG_LLQUANTIZE", "llquantize";
}

/// The raw `dtrace_actkind_t` type.
pub type ActKindRaw = u16;

/// An action class (`DTRACEACT_CLASS(kind)`, the high byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ActionClass {
    /// No class: may record process or kernel data (trace, printf, exit...).
    None = 0x0000,
    /// `DTRACEACT_PROC`: records process data only (ustack, usym...).
    Proc = 0x0100,
    /// `DTRACEACT_PROC_DESTRUCTIVE`: may disturb a process (stop, raise, system).
    ProcDestructive = 0x0200,
    /// `DTRACEACT_PROC_CONTROL`: process control (no members defined).
    ProcControl = 0x0300,
    /// `DTRACEACT_KERNEL`: records kernel data only (stack, sym, mod).
    Kernel = 0x0400,
    /// `DTRACEACT_KERNEL_DESTRUCTIVE`: may disturb the kernel (panic, chill...).
    KernelDestructive = 0x0500,
    /// `DTRACEACT_SPECULATIVE`: speculate, commit, discard.
    Speculative = 0x0600,
    /// `DTRACEACT_AGGREGATION`: aggregating functions.
    Aggregation = 0x0700,
}

impl ActionClass {
    /// The class of a raw kind value (`DTRACEACT_CLASS`), if defined.
    pub const fn of_raw(kind: u16) -> Option<ActionClass> {
        Some(match kind & 0xff00 {
            0x0000 => ActionClass::None,
            0x0100 => ActionClass::Proc,
            0x0200 => ActionClass::ProcDestructive,
            0x0300 => ActionClass::ProcControl,
            0x0400 => ActionClass::Kernel,
            0x0500 => ActionClass::KernelDestructive,
            0x0600 => ActionClass::Speculative,
            0x0700 => ActionClass::Aggregation,
            _ => return None,
        })
    }
}

impl ActionKind {
    /// The raw `dtrace_actkind_t` value.
    pub const fn raw(self) -> u16 {
        self as u16
    }

    /// The kind's class.
    pub const fn class(self) -> ActionClass {
        match ActionClass::of_raw(self as u16) {
            Some(c) => c,
            // Every defined kind has a defined class (checked by a test).
            None => ActionClass::None,
        }
    }

    /// `DTRACEACT_ISDESTRUCTIVE`: process- or kernel-destructive class.
    pub const fn is_destructive(self) -> bool {
        matches!(
            self.class(),
            ActionClass::ProcDestructive | ActionClass::KernelDestructive
        )
    }

    /// `DTRACEACT_ISAGG`: an aggregating function.
    pub const fn is_aggregation(self) -> bool {
        matches!(self.class(), ActionClass::Aggregation)
    }

    /// `DTRACEACT_ISSPECULATIVE`: speculate/commit/discard.
    pub const fn is_speculative(self) -> bool {
        matches!(self.class(), ActionClass::Speculative)
    }

    /// `DTRACEACT_ISPRINTFLIKE`: the argument names a format string
    /// (printf, printa, system, freopen).
    pub const fn is_printf_like(self) -> bool {
        matches!(
            self,
            ActionKind::Printf | ActionKind::Printa | ActionKind::System | ActionKind::Freopen
        )
    }
}

impl TryFrom<u16> for ActionKind {
    type Error = UnknownValue;
    fn try_from(raw: u16) -> Result<Self, UnknownValue> {
        ActionKind::from_raw(raw).ok_or(UnknownValue(raw as u64))
    }
}

impl TryFrom<u32> for ActionKind {
    type Error = UnknownValue;
    /// DOF stores kinds in a `u32` (`dofa_kind`); values above `u16::MAX`
    /// are rejected rather than truncated.
    fn try_from(raw: u32) -> Result<Self, UnknownValue> {
        u16::try_from(raw)
            .ok()
            .and_then(ActionKind::from_raw)
            .ok_or(UnknownValue(raw as u64))
    }
}

// ---------------------------------------------------------------------------
// quantize()
// ---------------------------------------------------------------------------

/// Number of power-of-two buckets of `quantize()` (`DTRACE_QUANTIZE_NBUCKETS`).
pub const QUANTIZE_NBUCKETS: usize = 127;
/// Index of the bucket holding zero (`DTRACE_QUANTIZE_ZEROBUCKET`).
pub const QUANTIZE_ZEROBUCKET: usize = 63;

/// The value that labels `quantize()` bucket `bucket`
/// (`DTRACE_QUANTIZE_BUCKETVAL`): −2^(62−i) below the zero bucket, 0 for it,
/// 2^(i−64) above. `None` for an index ≥ 127.
pub const fn quantize_bucket_value(bucket: usize) -> Option<i64> {
    if bucket >= QUANTIZE_NBUCKETS {
        None
    } else if bucket < QUANTIZE_ZEROBUCKET {
        Some(-(1i64 << (QUANTIZE_ZEROBUCKET - 1 - bucket)))
    } else if bucket == QUANTIZE_ZEROBUCKET {
        Some(0)
    } else {
        Some(1i64 << (bucket - QUANTIZE_ZEROBUCKET - 1))
    }
}

/// The `quantize()` bucket a value falls into, as the kernel files it: a
/// negative value goes to the first bucket whose label is ≥ the value
/// (bucket i < 63 holds (−2^(63−i), −2^(62−i)]; bucket 0 also takes everything
/// below); zero and positive values go to the last bucket whose label is ≤
/// the value (bucket i > 63 holds [2^(i−64), 2^(i−63)); bucket 126 also takes
/// everything above).
pub const fn quantize_bucket(value: i64) -> usize {
    if value == 0 {
        QUANTIZE_ZEROBUCKET
    } else if value > 0 {
        // 2^k ≤ value < 2^(k+1) ⇒ bucket 64 + k.
        let k = 63 - value.leading_zeros() as usize;
        QUANTIZE_ZEROBUCKET + 1 + k
    } else {
        // −2^(k+1) < value ≤ −2^k ⇒ bucket 62 − k, with k = floor(log2 |value|).
        let magnitude = value.unsigned_abs();
        let k = 63 - magnitude.leading_zeros() as usize;
        // Everything at or below −2^62 (k ≥ 62) lands in bucket 0.
        (QUANTIZE_ZEROBUCKET - 1).saturating_sub(k)
    }
}

// ---------------------------------------------------------------------------
// lquantize() / llquantize() / ustack() argument packing
// ---------------------------------------------------------------------------

/// Bit position of the step in an `lquantize()` argument.
pub const LQUANTIZE_STEPSHIFT: u32 = 48;
/// Bit position of the number of levels.
pub const LQUANTIZE_LEVELSHIFT: u32 = 32;
/// Bit position of the (signed 32-bit) base.
pub const LQUANTIZE_BASESHIFT: u32 = 0;

/// The parameters of `lquantize(value, base, limit, step)` as packed into the
/// action argument: step in bits 63..48, number of levels in 47..32, the
/// signed base in 31..0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LquantizeArg {
    /// Bucket width.
    pub step: u16,
    /// Number of buckets between the underflow and overflow buckets.
    pub levels: u16,
    /// Lower bound of the first bucket.
    pub base: i32,
}

impl LquantizeArg {
    /// Packs into the 64-bit action argument.
    pub const fn pack(self) -> u64 {
        ((self.step as u64) << LQUANTIZE_STEPSHIFT)
            | ((self.levels as u64) << LQUANTIZE_LEVELSHIFT)
            | (self.base as u32 as u64)
    }

    /// Unpacks a 64-bit action argument.
    pub const fn unpack(arg: u64) -> Self {
        LquantizeArg {
            step: (arg >> LQUANTIZE_STEPSHIFT) as u16,
            levels: (arg >> LQUANTIZE_LEVELSHIFT) as u16,
            base: arg as u32 as i32,
        }
    }

    /// Number of u64 words of the aggregation value: the packed argument,
    /// the underflow bucket, `levels` buckets and the overflow bucket.
    pub const fn value_words(self) -> usize {
        self.levels as usize + 3
    }
}

impl LquantizeArg {
    /// Whether the kernel accepts these parameters (non-zero step and levels).
    pub const fn is_valid(self) -> bool {
        self.step != 0 && self.levels != 0
    }

    /// Index of the bucket `value` is counted in, among the
    /// [`value_words`](Self::value_words)` - 1` counters that follow the packed
    /// argument: 0 = underflow, 1..=levels, levels+1 = overflow. Like the
    /// kernel, only the low 32 bits of `value` are used (as a signed value).
    /// Invalid parameters put everything in the underflow bucket.
    pub const fn bucket(self, value: i64) -> usize {
        if !self.is_valid() {
            return 0;
        }
        let val = value as i32 as i64;
        let base = self.base as i64;
        if val < base {
            return 0;
        }
        let level = (val - base) / self.step as i64;
        if level < self.levels as i64 {
            level as usize + 1
        } else {
            self.levels as usize + 1
        }
    }
}

/// Bit position of the factor in an `llquantize()` argument.
pub const LLQUANTIZE_FACTORSHIFT: u32 = 48;
/// Bit position of the low magnitude.
pub const LLQUANTIZE_LOWSHIFT: u32 = 32;
/// Bit position of the high magnitude.
pub const LLQUANTIZE_HIGHSHIFT: u32 = 16;
/// Bit position of the steps per magnitude.
pub const LLQUANTIZE_NSTEPSHIFT: u32 = 0;

/// The parameters of `llquantize(value, factor, low, high, nsteps)` as packed
/// into the action argument: factor 63..48, low 47..32, high 31..16,
/// nsteps 15..0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LlquantizeArg {
    /// The base of the logarithm.
    pub factor: u16,
    /// The lowest order of magnitude.
    pub low: u16,
    /// The highest order of magnitude.
    pub high: u16,
    /// Linear steps per order of magnitude.
    pub nsteps: u16,
}

impl LlquantizeArg {
    /// Packs into the 64-bit action argument.
    pub const fn pack(self) -> u64 {
        ((self.factor as u64) << LLQUANTIZE_FACTORSHIFT)
            | ((self.low as u64) << LLQUANTIZE_LOWSHIFT)
            | ((self.high as u64) << LLQUANTIZE_HIGHSHIFT)
            | ((self.nsteps as u64) << LLQUANTIZE_NSTEPSHIFT)
    }

    /// Unpacks a 64-bit action argument.
    pub const fn unpack(arg: u64) -> Self {
        LlquantizeArg {
            factor: (arg >> LLQUANTIZE_FACTORSHIFT) as u16,
            low: (arg >> LLQUANTIZE_LOWSHIFT) as u16,
            high: (arg >> LLQUANTIZE_HIGHSHIFT) as u16,
            nsteps: (arg >> LLQUANTIZE_NSTEPSHIFT) as u16,
        }
    }
}

impl LlquantizeArg {
    /// Whether the kernel accepts these parameters: factor ≥ 2, low < high,
    /// nsteps ≥ factor, nsteps a multiple of factor, and nsteps dividing some
    /// power of factor.
    pub const fn is_valid(self) -> bool {
        let (factor, nsteps) = (self.factor as u64, self.nsteps as u64);
        if factor < 2 || self.low >= self.high || nsteps < factor {
            return false;
        }
        // Smallest power of factor that is ≥ nsteps; both are < 2^16, so
        // this stays below 2^32.
        let mut power = factor;
        while power < nsteps {
            power *= factor;
        }
        power % nsteps == 0 && nsteps % factor == 0
    }

    /// Index of the bucket `value` is counted in, among the counters that
    /// follow the packed argument: 0 holds everything below factor^low; each
    /// order of magnitude from low to high contributes its linear steps (the
    /// steps that would overlap the previous magnitude are not repeated);
    /// the last bucket holds everything ≥ factor^(high+1). Arithmetic that
    /// would overflow 64 bits clamps into the last reachable bucket, as the
    /// kernel does. Invalid parameters put everything in bucket 0.
    pub const fn bucket(self, value: i64) -> usize {
        if !self.is_valid() {
            return 0;
        }
        let factor = self.factor as i64;
        let nsteps = self.nsteps as i64;
        let mut this: i64 = 1;
        let mut order: u32 = 0;
        while order < self.low as u32 {
            this = match this.checked_mul(factor) {
                Some(t) => t,
                // factor^low exceeds every i64: nothing reaches the ladder.
                None => return 0,
            };
            order += 1;
        }
        if value < this {
            return 0;
        }
        let mut last = this;
        this = match this.checked_mul(factor) {
            Some(t) => t,
            // The first magnitude is unbounded: one bucket above bucket 0.
            None => return 1,
        };
        let mut value = value;
        let mut base: i64 = 1;
        while order <= self.high as u32 {
            let nbuckets = if this > nsteps { nsteps } else { this };
            let next = this.checked_mul(factor);
            if next.is_none() {
                value = this - 1;
            }
            if value < this {
                return (base + (value - last) / (this / nbuckets)) as usize;
            }
            base += nbuckets - nbuckets / factor;
            last = this;
            this = match next {
                Some(n) => n,
                None => return base as usize,
            };
            order += 1;
        }
        base as usize
    }

    /// Number of u64 words of the aggregation value: the packed argument
    /// plus buckets 0..=top, where top is the bucket of `i64::MAX`. `None`
    /// for parameters the kernel rejects.
    pub const fn value_words(self) -> Option<usize> {
        if self.is_valid() {
            Some(self.bucket(i64::MAX) + 2)
        } else {
            None
        }
    }
}

/// The `ustack()`/`jstack()` action argument: frame count in the low 32 bits,
/// string-space size in the high 32 (`DTRACE_USTACK_ARG`).
pub const fn ustack_arg(nframes: u32, strsize: u32) -> u64 {
    ((strsize as u64) << 32) | nframes as u64
}

/// Frame count of a `ustack()` argument (`DTRACE_USTACK_NFRAMES`).
pub const fn ustack_nframes(arg: u64) -> u32 {
    arg as u32
}

/// String-space size of a `ustack()` argument (`DTRACE_USTACK_STRSIZE`).
pub const fn ustack_strsize(arg: u64) -> u32 {
    (arg >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_table() {
        assert_eq!(ActionKind::ALL.len(), 36);
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::try_from(k.raw()), Ok(*k));
            assert_eq!(ActionKind::try_from(k.raw() as u32), Ok(*k));
            assert_eq!(ActionKind::from_name(k.name()), Some(*k));
            assert_eq!(ActionClass::of_raw(k.raw()), Some(k.class()));
        }
        // PRINTT (9) was removed in FreeBSD 12.
        assert!(ActionKind::try_from(9u16).is_err());
        assert!(ActionKind::try_from(0x0300u16).is_err());
        assert!(ActionKind::try_from(0x1_0001u32).is_err());
        assert_eq!(ActionKind::Llquantize.raw(), 0x709);
        assert_eq!(ActionKind::Printm.raw(), 8);
    }

    #[test]
    fn kind_predicates() {
        let destructive: std::vec::Vec<_> = ActionKind::ALL
            .iter()
            .filter(|k| k.is_destructive())
            .map(|k| k.name())
            .collect();
        assert_eq!(
            destructive,
            [
                "stop",
                "raise",
                "system",
                "freopen",
                "breakpoint",
                "panic",
                "chill"
            ]
        );
        assert_eq!(
            ActionKind::ALL
                .iter()
                .filter(|k| k.is_aggregation())
                .count(),
            9
        );
        assert!(ActionKind::Commit.is_speculative());
        assert!(!ActionKind::Exit.is_speculative());
        let printf_like = ActionKind::ALL
            .iter()
            .filter(|k| k.is_printf_like())
            .count();
        assert_eq!(printf_like, 4);
        assert!(ActionKind::Freopen.is_printf_like() && !ActionKind::Printm.is_printf_like());
    }

    #[test]
    fn quantize_buckets() {
        assert_eq!(quantize_bucket_value(0), Some(-(1i64 << 62)));
        assert_eq!(quantize_bucket_value(62), Some(-1));
        assert_eq!(quantize_bucket_value(63), Some(0));
        assert_eq!(quantize_bucket_value(64), Some(1));
        assert_eq!(quantize_bucket_value(126), Some(1 << 62));
        assert_eq!(quantize_bucket_value(127), None);
        // Negative buckets hold (bound(b-1), bound(b)]; the zero and positive
        // buckets hold [bound(b), bound(b+1)).
        for b in 0..QUANTIZE_NBUCKETS {
            let bound = quantize_bucket_value(b).unwrap();
            assert_eq!(quantize_bucket(bound), b, "bound of bucket {b}");
            if b < QUANTIZE_ZEROBUCKET {
                if let Some(prev) = b.checked_sub(1).and_then(quantize_bucket_value) {
                    assert_eq!(quantize_bucket(prev + 1), b, "far end of bucket {b}");
                }
            } else if let Some(next) = quantize_bucket_value(b + 1) {
                assert_eq!(quantize_bucket(next - 1), b, "far end of bucket {b}");
            }
        }
        assert_eq!(quantize_bucket(i64::MAX), 126);
        assert_eq!(quantize_bucket(i64::MIN), 0);
        assert_eq!(quantize_bucket(5), 66);
        assert_eq!(quantize_bucket(-5), 60);
        assert_eq!(quantize_bucket(-4), 60);
        assert_eq!(quantize_bucket(-3), 61);
    }

    #[test]
    fn lquantize_packing() {
        let a = LquantizeArg {
            step: 10,
            levels: 20,
            base: -100,
        };
        let packed = a.pack();
        assert_eq!(packed, 0x000a_0014_ffff_ff9c);
        assert_eq!(LquantizeArg::unpack(packed), a);
        assert_eq!(a.value_words(), 23);
    }

    #[test]
    fn lquantize_buckets() {
        let a = LquantizeArg {
            step: 10,
            levels: 5,
            base: 0,
        };
        assert_eq!(a.bucket(-1), 0);
        assert_eq!(a.bucket(0), 1);
        assert_eq!(a.bucket(9), 1);
        assert_eq!(a.bucket(10), 2);
        assert_eq!(a.bucket(49), 5);
        assert_eq!(a.bucket(50), 6);
        assert_eq!(a.bucket(1 << 40), 1); // only the low 32 bits count
        assert_eq!(a.bucket(i64::MAX), 0); // low 32 bits are -1
        assert!(!LquantizeArg {
            step: 0,
            levels: 5,
            base: 0
        }
        .is_valid());
    }

    #[test]
    fn llquantize_buckets() {
        // factor 10, magnitudes 10^0..10^2, 10 steps each.
        let a = LlquantizeArg {
            factor: 10,
            low: 0,
            high: 2,
            nsteps: 10,
        };
        assert!(a.is_valid());
        assert_eq!(a.bucket(0), 0);
        assert_eq!(a.bucket(-5), 0);
        assert_eq!(a.bucket(1), 1);
        assert_eq!(a.bucket(9), 9);
        assert_eq!(a.bucket(10), 10);
        assert_eq!(a.bucket(19), 10);
        assert_eq!(a.bucket(99), 18);
        assert_eq!(a.bucket(100), 19);
        assert_eq!(a.bucket(999), 27);
        assert_eq!(a.bucket(1000), 28);
        assert_eq!(a.bucket(i64::MAX), 28);
        assert_eq!(a.value_words(), Some(30));
        // Low magnitude 2: everything below 100 is bucket 0.
        let b = LlquantizeArg {
            factor: 10,
            low: 2,
            high: 3,
            nsteps: 20,
        };
        assert!(b.is_valid());
        assert_eq!(b.bucket(99), 0);
        assert_eq!(b.bucket(100), 1);
        // 100..1000 in 20 steps of 50 (10^3 / 20).
        assert_eq!(b.bucket(150), 2);
        // Magnitudes that reach 64-bit overflow clamp instead of wrapping.
        let c = LlquantizeArg {
            factor: 2,
            low: 0,
            high: 70,
            nsteps: 2,
        };
        assert!(c.is_valid());
        let top = c.bucket(i64::MAX);
        assert!(top > 0 && c.bucket(1 << 62) <= top);
        assert_eq!(c.value_words(), Some(top + 2));
    }

    #[test]
    fn llquantize_validation() {
        let ok = LlquantizeArg {
            factor: 10,
            low: 0,
            high: 6,
            nsteps: 20,
        };
        assert!(ok.is_valid());
        assert!(!LlquantizeArg { factor: 1, ..ok }.is_valid());
        assert!(!LlquantizeArg { low: 6, ..ok }.is_valid());
        assert!(!LlquantizeArg { nsteps: 5, ..ok }.is_valid()); // < factor
        assert!(!LlquantizeArg { nsteps: 30, ..ok }.is_valid()); // does not divide 100
        assert!(!LlquantizeArg {
            factor: 4,
            nsteps: 6,
            ..ok
        }
        .is_valid());
        assert_eq!(LlquantizeArg { factor: 1, ..ok }.value_words(), None);
        assert_eq!(LlquantizeArg { factor: 1, ..ok }.bucket(5), 0);
    }

    #[test]
    fn llquantize_and_ustack_packing() {
        let a = LlquantizeArg {
            factor: 10,
            low: 0,
            high: 6,
            nsteps: 20,
        };
        assert_eq!(a.pack(), 0x000a_0000_0006_0014);
        assert_eq!(LlquantizeArg::unpack(a.pack()), a);
        let u = ustack_arg(20, 512);
        assert_eq!(u, 0x0000_0200_0000_0014);
        assert_eq!((ustack_nframes(u), ustack_strsize(u)), (20, 512));
    }
}
