//! Consumer options (`DTRACEOPT_*`): the 32 option indices the kernel keeps
//! per consumer state, their names, the "unset" sentinel, the values of the
//! enumerated options (`bufpolicy`, `bufresize`) and the kernel defaults.
//!
//! Probe context: yes (const tables, no allocation, no panics).

use crate::UnknownValue;

/// An option value (`dtrace_optval_t`).
pub type OptVal = i64;

/// The value of an option that was never set (`DTRACEOPT_UNSET`); DOF option
/// sections may not carry it.
pub const DTRACEOPT_UNSET: OptVal = -2;

/// Number of kernel options (`DTRACEOPT_MAX`).
pub const DTRACEOPT_MAX: usize = 32;

macro_rules! options {
    ($( $variant:ident = $num:literal, $cname:literal, $name:literal; )+) => {
        /// A kernel option index (`DTRACEOPT_*`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum DtraceOption {
            $(
                #[doc = concat!("`", $cname, "` (", stringify!($num), "): `-x ", $name, "`.")]
                $variant = $num,
            )+
        }

        impl DtraceOption {
            /// Every option, in index order (index == position).
            pub const ALL: &'static [DtraceOption] = &[$(DtraceOption::$variant),+];

            /// The option for a raw index.
            pub const fn from_index(raw: u32) -> Option<DtraceOption> {
                match raw {
                    $($num => Some(DtraceOption::$variant),)+
                    _ => None,
                }
            }

            /// The name used with `dtrace -x` and `#pragma D option`.
            pub const fn name(self) -> &'static str {
                match self { $(DtraceOption::$variant => $name,)+ }
            }

            /// The C macro name.
            pub const fn c_name(self) -> &'static str {
                match self { $(DtraceOption::$variant => $cname,)+ }
            }

            /// Looks an option up by name.
            pub fn from_name(name: &str) -> Option<DtraceOption> {
                Self::ALL.iter().copied().find(|o| o.name() == name)
            }
        }
    };
}

options! {
    BufSize = 0, "DTRACEOPT_BUFSIZE", "bufsize";
    BufPolicy = 1, "DTRACEOPT_BUFPOLICY", "bufpolicy";
    DynVarSize = 2, "DTRACEOPT_DYNVARSIZE", "dynvarsize";
    AggSize = 3, "DTRACEOPT_AGGSIZE", "aggsize";
    SpecSize = 4, "DTRACEOPT_SPECSIZE", "specsize";
    NSpec = 5, "DTRACEOPT_NSPEC", "nspec";
    StrSize = 6, "DTRACEOPT_STRSIZE", "strsize";
    CleanRate = 7, "DTRACEOPT_CLEANRATE", "cleanrate";
    Cpu = 8, "DTRACEOPT_CPU", "cpu";
    BufResize = 9, "DTRACEOPT_BUFRESIZE", "bufresize";
    GrabAnon = 10, "DTRACEOPT_GRABANON", "grabanon";
    FlowIndent = 11, "DTRACEOPT_FLOWINDENT", "flowindent";
    Quiet = 12, "DTRACEOPT_QUIET", "quiet";
    StackFrames = 13, "DTRACEOPT_STACKFRAMES", "stackframes";
    UstackFrames = 14, "DTRACEOPT_USTACKFRAMES", "ustackframes";
    AggRate = 15, "DTRACEOPT_AGGRATE", "aggrate";
    SwitchRate = 16, "DTRACEOPT_SWITCHRATE", "switchrate";
    StatusRate = 17, "DTRACEOPT_STATUSRATE", "statusrate";
    Destructive = 18, "DTRACEOPT_DESTRUCTIVE", "destructive";
    StackIndent = 19, "DTRACEOPT_STACKINDENT", "stackindent";
    RawBytes = 20, "DTRACEOPT_RAWBYTES", "rawbytes";
    JstackFrames = 21, "DTRACEOPT_JSTACKFRAMES", "jstackframes";
    JstackStrSize = 22, "DTRACEOPT_JSTACKSTRSIZE", "jstackstrsize";
    AggSortKey = 23, "DTRACEOPT_AGGSORTKEY", "aggsortkey";
    AggSortRev = 24, "DTRACEOPT_AGGSORTREV", "aggsortrev";
    AggSortPos = 25, "DTRACEOPT_AGGSORTPOS", "aggsortpos";
    AggSortKeyPos = 26, "DTRACEOPT_AGGSORTKEYPOS", "aggsortkeypos";
    Temporal = 27, "DTRACEOPT_TEMPORAL", "temporal";
    AggHist = 28, "DTRACEOPT_AGGHIST", "agghist";
    AggPack = 29, "DTRACEOPT_AGGPACK", "aggpack";
    AggZoom = 30, "DTRACEOPT_AGGZOOM", "aggzoom";
    Zone = 31, "DTRACEOPT_ZONE", "zone";
}

impl DtraceOption {
    /// The raw index into the option array.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The value the kernel installs when a consumer state is created, or
    /// [`DTRACEOPT_UNSET`] for options left unset (sizes the kernel sizes
    /// itself at GO time, and the boolean options).
    pub const fn kernel_default(self) -> OptVal {
        match self {
            DtraceOption::NSpec => 1,
            DtraceOption::SpecSize => 32 * 1024,
            DtraceOption::Cpu => -1,
            DtraceOption::StrSize => 256,
            DtraceOption::StackFrames => 20,
            DtraceOption::UstackFrames => 20,
            DtraceOption::CleanRate => 9_900_990,
            DtraceOption::AggRate => 1_000_000_000,
            DtraceOption::SwitchRate => 1_000_000_000,
            DtraceOption::StatusRate => 1_000_000_000,
            DtraceOption::JstackFrames => 50,
            DtraceOption::JstackStrSize => 512,
            _ => DTRACEOPT_UNSET,
        }
    }

    /// The whole default option array of a new consumer state.
    pub const fn kernel_defaults() -> [OptVal; DTRACEOPT_MAX] {
        let mut out = [DTRACEOPT_UNSET; DTRACEOPT_MAX];
        let mut i = 0;
        while i < DTRACEOPT_MAX {
            if let Some(opt) = DtraceOption::from_index(i as u32) {
                out[i] = opt.kernel_default();
            }
            i += 1;
        }
        out
    }
}

impl TryFrom<u32> for DtraceOption {
    type Error = UnknownValue;
    fn try_from(raw: u32) -> Result<Self, UnknownValue> {
        DtraceOption::from_index(raw).ok_or(UnknownValue(raw as u64))
    }
}

/// Default dynamic-variable space when `dynvarsize` is unset (1 MiB).
pub const DTRACE_DYNVAR_DEFAULT_SIZE: OptVal = 1024 * 1024;
/// Lower clamp of `cleanrate` (200 µs).
pub const DTRACE_CLEANRATE_MIN: OptVal = 200_000;
/// Upper clamp of `cleanrate` (60 s).
pub const DTRACE_CLEANRATE_MAX: OptVal = 60_000_000_000;
/// Upper clamp of `statusrate` (10 s).
pub const DTRACE_STATUSRATE_MAX: OptVal = 10_000_000_000;

/// Values of the `bufpolicy` option (`DTRACEOPT_BUFPOLICY_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i64)]
pub enum BufPolicy {
    /// Ring buffer: keep the newest data (`DTRACEOPT_BUFPOLICY_RING`).
    Ring = 0,
    /// Stop recording when full (`DTRACEOPT_BUFPOLICY_FILL`).
    Fill = 1,
    /// Double buffering with periodic switches, the default
    /// (`DTRACEOPT_BUFPOLICY_SWITCH`).
    #[default]
    Switch = 2,
}

impl BufPolicy {
    /// The option-value spelling (`-x bufpolicy=ring`).
    pub const fn name(self) -> &'static str {
        match self {
            BufPolicy::Ring => "ring",
            BufPolicy::Fill => "fill",
            BufPolicy::Switch => "switch",
        }
    }

    /// Parses the option-value spelling.
    pub fn from_name(name: &str) -> Option<BufPolicy> {
        [BufPolicy::Ring, BufPolicy::Fill, BufPolicy::Switch]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

impl TryFrom<OptVal> for BufPolicy {
    type Error = UnknownValue;
    fn try_from(raw: OptVal) -> Result<Self, UnknownValue> {
        match raw {
            0 => Ok(BufPolicy::Ring),
            1 => Ok(BufPolicy::Fill),
            2 => Ok(BufPolicy::Switch),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

/// Values of the `bufresize` option (`DTRACEOPT_BUFRESIZE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i64)]
pub enum BufResize {
    /// Halve the size on allocation failure, the default
    /// (`DTRACEOPT_BUFRESIZE_AUTO`).
    #[default]
    Auto = 0,
    /// Fail instead of shrinking (`DTRACEOPT_BUFRESIZE_MANUAL`).
    Manual = 1,
}

impl BufResize {
    /// The option-value spelling (`-x bufresize=manual`).
    pub const fn name(self) -> &'static str {
        match self {
            BufResize::Auto => "auto",
            BufResize::Manual => "manual",
        }
    }

    /// Parses the option-value spelling.
    pub fn from_name(name: &str) -> Option<BufResize> {
        [BufResize::Auto, BufResize::Manual]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

impl TryFrom<OptVal> for BufResize {
    type Error = UnknownValue;
    fn try_from(raw: OptVal) -> Result<Self, UnknownValue> {
        match raw {
            0 => Ok(BufResize::Auto),
            1 => Ok(BufResize::Manual),
            other => Err(UnknownValue(other as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_table() {
        assert_eq!(DtraceOption::ALL.len(), DTRACEOPT_MAX);
        for (i, o) in DtraceOption::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
            assert_eq!(DtraceOption::try_from(i as u32), Ok(*o));
            assert_eq!(DtraceOption::from_name(o.name()), Some(*o));
            assert_eq!(
                o.c_name(),
                std::format!("DTRACEOPT_{}", o.name().to_uppercase())
            );
        }
        assert_eq!(DtraceOption::try_from(32), Err(UnknownValue(32)));
        assert_eq!(
            DtraceOption::from_name("switchrate"),
            Some(DtraceOption::SwitchRate)
        );
        assert_eq!(DtraceOption::SwitchRate.index(), 16);
        assert_eq!(DtraceOption::Zone.index(), 31);
    }

    #[test]
    fn defaults() {
        let d = DtraceOption::kernel_defaults();
        assert_eq!(d[DtraceOption::Cpu.index()], -1);
        assert_eq!(d[DtraceOption::StrSize.index()], 256);
        assert_eq!(d[DtraceOption::BufSize.index()], DTRACEOPT_UNSET);
        assert_eq!(d[DtraceOption::JstackStrSize.index()], 512);
        assert_eq!(d.iter().filter(|v| **v != DTRACEOPT_UNSET).count(), 12);
    }

    #[test]
    fn enumerated_values() {
        assert_eq!(BufPolicy::default(), BufPolicy::Switch);
        assert_eq!(BufPolicy::try_from(0), Ok(BufPolicy::Ring));
        assert!(BufPolicy::try_from(3).is_err());
        assert!(BufPolicy::try_from(DTRACEOPT_UNSET).is_err());
        assert_eq!(BufPolicy::from_name("fill"), Some(BufPolicy::Fill));
        assert_eq!(BufResize::try_from(1), Ok(BufResize::Manual));
        assert!(BufResize::try_from(2).is_err());
        assert_eq!(BufResize::from_name("auto"), Some(BufResize::Auto));
        assert_eq!(BufResize::from_name("bogus"), None);
    }
}
