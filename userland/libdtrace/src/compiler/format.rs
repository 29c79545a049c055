//! printf-style format strings: parsing into conversions and the D rules for them.
//!
//! The parser validates a format the way libdtrace does at compile time (unknown conversions,
//! doubled `*`, positional `%n$`, flags on `%%`) and records for every conversion what kind of
//! argument it takes, so the type checker can match the arguments. The consumer re-uses
//! [`parse_format`] to print. Userland only.

/// What a conversion accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgClass {
    /// `%d %i %o %u %x %X %c`: integers.
    Int,
    /// `%p %a %A`: pointer or integer.
    PtrOrInt,
    /// `%s %S`: strings or char arrays.
    Str,
    /// `%e %f %g ...`: floating point (D accepts integers too).
    Float,
    /// `%Y %T`: time stamps (integers).
    Time,
    /// `%k`: a stack.
    Stack,
    /// `%%`: no argument.
    None,
}

/// One conversion of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// Flags as written (`-`, `+`, ` `, `#`, `0`, `'`).
    pub flags: String,
    /// Width digits, or `None`.
    pub width: Option<u32>,
    pub width_star: bool,
    /// Precision digits, or `None`.
    pub prec: Option<u32>,
    pub prec_star: bool,
    /// Length modifier (`h`, `hh`, `l`, `ll`, `L`, `w`).
    pub length: String,
    /// The conversion character.
    pub conv: char,
    /// `%@`: applies to an aggregation value.
    pub agg: bool,
    pub class: ArgClass,
}

impl Conversion {
    /// The conversion as libdtrace names it in prototype messages (`%d`, `% * d`).
    pub fn display(&self) -> String {
        let mut s = String::from("%");
        if self.width_star {
            s.push_str(" * ");
        }
        if self.prec_star {
            s.push_str(" .* ");
        }
        s.push_str(&self.length);
        s.push(self.conv);
        s
    }

    /// `%` followed by the conversion name only (for "missing argument" messages).
    pub fn short(&self) -> String {
        format!("%{}{}", self.length, self.conv)
    }
}

/// A piece of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Conv(Conversion),
}

/// Parses a format. Errors carry the message text (tag `D_SYNTAX`).
pub fn parse_format(fmt: &str) -> Result<Vec<Piece>, String> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let mut n = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            lit.push(chars[i]);
            i += 1;
            continue;
        }
        n += 1;
        i += 1;
        let mut c = Conversion {
            flags: String::new(),
            width: None,
            width_star: false,
            prec: None,
            prec_star: false,
            length: String::new(),
            conv: '\0',
            agg: false,
            class: ArgClass::None,
        };
        let mut digits = String::new();
        let mut in_prec = false;
        loop {
            let Some(&ch) = chars.get(i) else {
                return Err(format!(
                    "format conversion #{} name expected before end of format string",
                    n
                ));
            };
            match ch {
                '-' | '+' | ' ' | '#' | '\'' if digits.is_empty() && !in_prec => c.flags.push(ch),
                '0' if digits.is_empty() && !in_prec && c.width.is_none() => c.flags.push(ch),
                '@' => c.agg = true,
                '?' => {}
                '0'..='9' => digits.push(ch),
                '$' => {
                    return Err(format!(
                        "format conversion #{} uses unsupported positional format (%n$)",
                        n
                    ));
                }
                '*' => {
                    if !digits.is_empty() {
                        // `%*1$d`-style: a digit string then `$` follows; treat as positional
                        if chars.get(i + 1) == Some(&'$') {
                            return Err(format!(
                                "format conversion #{} uses unsupported positional format (%n$)",
                                n
                            ));
                        }
                    }
                    if in_prec {
                        if c.prec_star {
                            return Err(format!(
                                "format conversion #{} has more than one '*' specified for the output precision",
                                n
                            ));
                        }
                        c.prec_star = true;
                    } else {
                        if c.width_star {
                            return Err(format!(
                                "format conversion #{} has more than one '*' specified for the output width",
                                n
                            ));
                        }
                        c.width_star = true;
                    }
                }
                '.' => {
                    if !digits.is_empty() {
                        c.width = digits.parse().ok();
                        digits.clear();
                    }
                    in_prec = true;
                }
                'h' | 'l' | 'L' | 'w' => c.length.push(ch),
                _ => {
                    if !digits.is_empty() {
                        if in_prec {
                            c.prec = digits.parse().ok();
                        } else {
                            c.width = digits.parse().ok();
                        }
                    }
                    if in_prec && c.prec.is_none() && !c.prec_star {
                        c.prec = Some(0);
                    }
                    c.conv = ch;
                    i += 1;
                    break;
                }
            }
            i += 1;
        }
        let class = match c.conv {
            '%' => {
                if !c.flags.is_empty() || c.width.is_some() || c.width_star || c.prec_star || c.agg
                {
                    return Err(format!(
                        "format conversion #{} cannot be combined with other format flags: %%",
                        n
                    ));
                }
                lit.push('%');
                continue;
            }
            'd' | 'i' | 'o' | 'u' | 'x' | 'X' | 'c' | 'C' => ArgClass::Int,
            'p' | 'a' | 'A' | 'P' => ArgClass::PtrOrInt,
            's' | 'S' => ArgClass::Str,
            'e' | 'E' | 'f' | 'g' | 'G' => ArgClass::Float,
            'Y' | 'T' => ArgClass::Time,
            'k' => ArgClass::Stack,
            other => {
                let spec = format!("%{}{}", c.length, other);
                return Err(format!("format conversion #{} is undefined: {}", n, spec));
            }
        };
        if !matches!(c.length.as_str(), "" | "h" | "hh" | "l" | "ll" | "L" | "w") {
            return Err(format!(
                "format conversion #{} is undefined: %{}{}",
                n, c.length, c.conv
            ));
        }
        c.class = class;
        if !lit.is_empty() {
            out.push(Piece::Literal(std::mem::take(&mut lit)));
        }
        out.push(Piece::Conv(c));
    }
    if !lit.is_empty() {
        out.push(Piece::Literal(lit));
    }
    Ok(out)
}

/// The prototype text for a class, as libdtrace prints it.
pub fn class_prototype(class: ArgClass) -> &'static str {
    match class {
        ArgClass::Int | ArgClass::Time => "char, short, int, long, or long long",
        ArgClass::PtrOrInt => "pointer or integer",
        ArgClass::Str => "char [] or string (or use stringof)",
        ArgClass::Float => "double, long double, or integer",
        ArgClass::Stack => "stack",
        ArgClass::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convs(f: &str) -> Vec<Conversion> {
        parse_format(f)
            .unwrap()
            .into_iter()
            .filter_map(|p| {
                if let Piece::Conv(c) = p {
                    Some(c)
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn basic_conversions() {
        let c = convs("a %-8s %*.*lld %@u %%\n");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].flags, "-");
        assert_eq!(c[0].width, Some(8));
        assert!(c[1].width_star && c[1].prec_star);
        assert_eq!(c[1].length, "ll");
        assert!(c[2].agg);
        assert_eq!(convs("%*d")[0].display(), "% * d");
        assert_eq!(convs("%.*d")[0].display(), "% .* d");
    }

    #[test]
    fn errors_use_libdtrace_wording() {
        assert_eq!(
            parse_format("%z").unwrap_err(),
            "format conversion #1 is undefined: %z"
        );
        assert_eq!(
            parse_format("%**d").unwrap_err(),
            "format conversion #1 has more than one '*' specified for the output width"
        );
        assert_eq!(
            parse_format("%1$d").unwrap_err(),
            "format conversion #1 uses unsupported positional format (%n$)"
        );
        assert_eq!(
            parse_format("%-%").unwrap_err(),
            "format conversion #1 cannot be combined with other format flags: %%"
        );
        assert_eq!(
            parse_format("%.*").unwrap_err(),
            "format conversion #1 name expected before end of format string"
        );
    }
}
