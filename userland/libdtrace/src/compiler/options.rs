//! DTrace options (`-x name=value`, `#pragma D option`): the table of known options, value
//! validation with libdtrace's error texts, and conversion of run-time options to the kernel's
//! `DTRACEOPT_*` values for the DOF option section. Userland only.

/// How an option's value is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    /// Byte size with optional k/m/g/t suffix.
    Size,
    /// Rate/time: number with ns/us/ms/s/m/h/d/hz suffix (bare number = hz for rates).
    Rate,
    /// Non-negative integer.
    Count,
    /// Boolean flag (no value, or any value).
    Flag,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Free text.
    Text,
    /// Compile-time option only settable from the command line.
    CmdlineText,
    /// Register count: 1..=8.
    Regs,
    /// Integer, may be negative (cpu).
    Int,
}

/// Kernel option index for run-time options (`DTRACEOPT_*`), `None` for library options.
pub fn kernel_index(name: &str) -> Option<u32> {
    Some(match name {
        "bufsize" => 0,
        "bufpolicy" => 1,
        "dynvarsize" => 2,
        "aggsize" => 3,
        "specsize" => 4,
        "nspec" => 5,
        "strsize" => 6,
        "cleanrate" => 7,
        "cpu" => 8,
        "bufresize" => 9,
        "grabanon" => 10,
        "flowindent" => 11,
        "quiet" => 12,
        "stackframes" => 13,
        "ustackframes" => 14,
        "aggrate" => 15,
        "switchrate" => 16,
        "statusrate" => 17,
        "destructive" => 18,
        "stackindent" => 19,
        "rawbytes" => 20,
        "jstackframes" => 21,
        "jstackstrsize" => 22,
        "aggsortkey" => 23,
        "aggsortrev" => 24,
        "aggsortpos" => 25,
        "aggsortkeypos" => 26,
        "temporal" => 27,
        "agghist" => 28,
        "aggpack" => 29,
        "aggzoom" => 30,
        "zone" => 31,
        _ => return None,
    })
}

/// The kind of a known option.
pub fn option_kind(name: &str) -> Option<OptKind> {
    use OptKind::*;
    Some(match name {
        "bufsize" | "dynvarsize" | "aggsize" | "specsize" | "strsize" | "scratchsize"
        | "jstackstrsize" => Size,
        "cleanrate" | "aggrate" | "switchrate" | "statusrate" => Rate,
        "nspec" | "stackframes" | "ustackframes" | "jstackframes" | "aggsortpos"
        | "aggsortkeypos" => Count,
        "cpu" => Int,
        "bufpolicy" => Choice(&["ring", "fill", "switch"]),
        "bufresize" => Choice(&["auto", "manual"]),
        "grabanon" | "flowindent" | "quiet" | "destructive" | "stackindent" | "rawbytes"
        | "aggsortkey" | "aggsortrev" | "temporal" | "agghist" | "aggpack" | "aggzoom" => Flag,
        "zone" | "oformat" => Text,
        // Library (compile/consume) options.
        "defaultargs" | "nolibs" | "errtags" | "droptags" | "zdefs" | "pspec" | "argref"
        | "knodefs" | "unodefs" | "cpp" | "cpphdrs" | "strip" | "verbose" | "lazyload"
        | "debug" | "tree" | "nolibsx" | "evaltime" | "linkmode" | "linktype" | "encoding"
        | "late" | "disasm" | "amin" | "core" => Flag,
        "iregs" | "tregs" => Regs,
        "version" | "ctypes" | "dtypes" | "incdir" | "define" | "undef" | "libdir"
        | "syslibdir" | "modpath" => Text,
        "ld" | "ldpath" | "cpppath" => CmdlineText,
        "stdc" => Choice(&["a", "c", "s", "t"]),
        _ => return None,
    })
}

/// libdtrace's error texts for option failures.
pub const EDT_BADOPTNAME: &str = "Invalid option name";
pub const EDT_BADOPTVAL: &str = "Invalid value for specified option";
pub const EDT_BADOPTCTX: &str = "Option cannot be used from within a D program";

fn parse_size(v: &str) -> Option<i64> {
    let v = v.trim();
    let (digits, mult) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (v, 1i64),
        Some((i, _)) => {
            let m = match &v[i..] {
                "k" | "K" => 1i64 << 10,
                "m" | "M" => 1 << 20,
                "g" | "G" => 1 << 30,
                "t" | "T" => 1 << 40,
                _ => return None,
            };
            (&v[..i], m)
        }
    };
    if digits.is_empty() {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(mult)
}

/// Parses a rate/interval to nanoseconds.
fn parse_rate(v: &str) -> Option<i64> {
    let v = v.trim();
    let i = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    if i == 0 {
        return None;
    }
    let n: i64 = v[..i].parse().ok()?;
    let ns = match &v[i..] {
        "" | "hz" => {
            if n == 0 {
                return None;
            }
            1_000_000_000 / n
        }
        "ns" | "nsec" => n,
        "us" | "usec" => n * 1_000,
        "ms" | "msec" => n * 1_000_000,
        "s" | "sec" => n * 1_000_000_000,
        "m" | "min" => n * 60_000_000_000,
        "h" | "hour" => n * 3_600_000_000_000,
        "d" | "day" => n * 86_400_000_000_000,
        _ => return None,
    };
    Some(ns)
}

/// Validates an option setting. Returns the kernel value for run-time options (or 0 for flags).
pub fn validate(name: &str, value: Option<&str>, from_program: bool) -> Result<i64, &'static str> {
    let Some(kind) = option_kind(name) else {
        return Err(EDT_BADOPTNAME);
    };
    match kind {
        OptKind::CmdlineText => {
            if from_program {
                Err(EDT_BADOPTCTX)
            } else {
                Ok(0)
            }
        }
        OptKind::Flag => match value {
            None => Ok(1),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "" | "1" | "yes" | "true" | "on" | "set" | "enable" | "enabled" => Ok(1),
                "0" | "no" | "false" | "off" | "unset" | "disable" | "disabled" => Ok(0),
                _ => Err(EDT_BADOPTVAL),
            },
        },
        OptKind::Size => {
            let v = value.ok_or(EDT_BADOPTVAL)?;
            let n = parse_size(v).ok_or(EDT_BADOPTVAL)?;
            if n < 0 || (name == "strsize" && n == 0) {
                return Err(EDT_BADOPTVAL);
            }
            Ok(n)
        }
        OptKind::Rate => parse_rate(value.ok_or(EDT_BADOPTVAL)?).ok_or(EDT_BADOPTVAL),
        OptKind::Count => {
            let v = value.ok_or(EDT_BADOPTVAL)?;
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or(EDT_BADOPTVAL)
        }
        OptKind::Int => value
            .ok_or(EDT_BADOPTVAL)?
            .trim()
            .parse::<i64>()
            .map_err(|_| EDT_BADOPTVAL),
        OptKind::Regs => {
            let n = value
                .ok_or(EDT_BADOPTVAL)?
                .trim()
                .parse::<i64>()
                .map_err(|_| EDT_BADOPTVAL)?;
            if (1..=8).contains(&n) {
                Ok(n)
            } else {
                Err(EDT_BADOPTVAL)
            }
        }
        OptKind::Choice(words) => {
            let v = value.ok_or(EDT_BADOPTVAL)?;
            words
                .iter()
                .position(|w| *w == v)
                .map(|i| i as i64)
                .ok_or(EDT_BADOPTVAL)
        }
        OptKind::Text => value.map(|_| 0).ok_or(EDT_BADOPTVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates() {
        assert_eq!(validate("bufsize", Some("4m"), false), Ok(4 << 20));
        assert_eq!(validate("specsize", Some("1b"), true), Err(EDT_BADOPTVAL));
        assert_eq!(validate("specsize", Some("-40"), true), Err(EDT_BADOPTVAL));
        assert_eq!(validate("switchrate", Some("10hz"), false), Ok(100_000_000));
        assert_eq!(validate("cleanrate", Some("3000hz"), true), Ok(333_333));
    }

    #[test]
    fn names_context_and_registers() {
        assert_eq!(validate("nosuch", None, false), Err(EDT_BADOPTNAME));
        assert_eq!(validate("ldpath", Some("/x"), true), Err(EDT_BADOPTCTX));
        assert_eq!(validate("iregs", Some("9"), true), Err(EDT_BADOPTVAL));
        assert_eq!(validate("quiet", None, true), Ok(1));
        assert_eq!(validate("bufpolicy", Some("ring"), true), Ok(0));
        assert_eq!(kernel_index("quiet"), Some(12));
    }
}
