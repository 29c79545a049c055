//! C `printf(3)` primitives on byte strings: padding, integer, string,
//! character and floating-point conversions with the flags `- + space 0 #`,
//! width and precision, producing exactly what FreeBSD's libc produces for
//! the same conversion. Everything in `output` formats through these so the
//! byte-exact rules live in one place. Not probe context.

/// Flags, width and precision of one conversion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    pub left: bool,
    pub plus: bool,
    pub space: bool,
    pub zero: bool,
    pub alt: bool,
    pub width: usize,
    pub prec: Option<usize>,
}

impl Spec {
    /// A plain width, right-aligned (`%Ns`).
    pub fn right(width: usize) -> Spec {
        Spec {
            width,
            ..Spec::default()
        }
    }

    /// A plain width, left-aligned (`%-Ns`).
    pub fn left(width: usize) -> Spec {
        Spec {
            width,
            left: true,
            ..Spec::default()
        }
    }

    /// A C `*` width: negative means left-aligned.
    pub fn star(width: i64) -> Spec {
        Spec {
            width: usize::try_from(width.unsigned_abs()).unwrap_or(usize::MAX),
            left: width < 0,
            ..Spec::default()
        }
    }
}

/// Appends `body` padded with blanks to the spec's width.
pub fn pad(out: &mut Vec<u8>, body: &[u8], spec: &Spec) {
    let fill = spec.width.saturating_sub(body.len());
    if spec.left {
        out.extend_from_slice(body);
        out.resize(out.len() + fill, b' ');
    } else {
        out.resize(out.len() + fill, b' ');
        out.extend_from_slice(body);
    }
}

/// `%s`: the bytes up to the first NUL, cut to the precision, padded.
pub fn fmt_str(out: &mut Vec<u8>, s: &[u8], spec: &Spec) {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    let mut body = &s[..end];
    if let Some(p) = spec.prec {
        body = &body[..p.min(body.len())];
    }
    pad(out, body, spec);
}

/// `%c`: one byte, padded.
pub fn fmt_char(out: &mut Vec<u8>, c: u8, spec: &Spec) {
    pad(out, &[c], spec);
}

/// Integer radix of a conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Radix {
    Dec,
    Oct,
    Hex,
    HexUpper,
}

fn digits(mut mag: u64, radix: Radix) -> Vec<u8> {
    let (base, table): (u64, &[u8; 16]) = match radix {
        Radix::Dec => (10, b"0123456789abcdef"),
        Radix::Oct => (8, b"0123456789abcdef"),
        Radix::Hex => (16, b"0123456789abcdef"),
        Radix::HexUpper => (16, b"0123456789ABCDEF"),
    };
    let mut v = Vec::new();
    loop {
        v.push(table[(mag % base) as usize]);
        mag /= base;
        if mag == 0 {
            break;
        }
    }
    v.reverse();
    v
}

/// Signed decimal conversion (`%d`, `%i`).
pub fn fmt_signed(out: &mut Vec<u8>, value: i64, spec: &Spec) {
    let sign: &[u8] = if value < 0 {
        b"-"
    } else if spec.plus {
        b"+"
    } else if spec.space {
        b" "
    } else {
        b""
    };
    emit_int(out, sign, b"", value.unsigned_abs(), Radix::Dec, spec);
}

/// Unsigned conversion (`%u %o %x %X`).
pub fn fmt_unsigned(out: &mut Vec<u8>, value: u64, radix: Radix, spec: &Spec) {
    let prefix: &[u8] = match radix {
        Radix::Hex if spec.alt && value != 0 => b"0x",
        Radix::HexUpper if spec.alt && value != 0 => b"0X",
        _ => b"",
    };
    emit_int(out, b"", prefix, value, radix, spec);
}

fn emit_int(out: &mut Vec<u8>, sign: &[u8], prefix: &[u8], mag: u64, radix: Radix, spec: &Spec) {
    let mut body = if spec.prec == Some(0) && mag == 0 {
        Vec::new()
    } else {
        digits(mag, radix)
    };
    if let Some(p) = spec.prec {
        if body.len() < p {
            let mut z = vec![b'0'; p - body.len()];
            z.extend_from_slice(&body);
            body = z;
        }
    }
    if radix == Radix::Oct && spec.alt && body.first() != Some(&b'0') {
        body.insert(0, b'0');
    }
    let head_len = sign.len() + prefix.len();
    if spec.zero && !spec.left && spec.prec.is_none() && spec.width > head_len + body.len() {
        let zeros = spec.width - head_len - body.len();
        let mut z = vec![b'0'; zeros];
        z.extend_from_slice(&body);
        body = z;
    }
    let mut all = Vec::with_capacity(head_len + body.len());
    all.extend_from_slice(sign);
    all.extend_from_slice(prefix);
    all.extend_from_slice(&body);
    pad(out, &all, spec);
}

/// Floating-point conversion: `conv` is one of `e E f F g G`.
pub fn fmt_float(out: &mut Vec<u8>, value: f64, conv: u8, spec: &Spec) {
    let upper = conv.is_ascii_uppercase();
    let sign: &[u8] = if value.is_sign_negative() && !value.is_nan() {
        b"-"
    } else if spec.plus {
        b"+"
    } else if spec.space {
        b" "
    } else {
        b""
    };
    let mag = value.abs();
    if !mag.is_finite() {
        let text: &[u8] = match (mag.is_nan(), upper) {
            (true, false) => b"nan",
            (true, true) => b"NAN",
            (false, false) => b"inf",
            (false, true) => b"INF",
        };
        let mut all = sign.to_vec();
        all.extend_from_slice(text);
        pad(out, &all, spec);
        return;
    }
    let prec = spec.prec.unwrap_or(6);
    let body = match conv.to_ascii_lowercase() {
        b'e' => exp_form(mag, prec, spec.alt, upper),
        b'g' => general_form(mag, prec, spec.alt, upper),
        _ => fixed_form(mag, prec, spec.alt),
    };
    let mut body = body.into_bytes();
    if spec.zero && !spec.left && spec.width > sign.len() + body.len() {
        let zeros = spec.width - sign.len() - body.len();
        let mut z = vec![b'0'; zeros];
        z.extend_from_slice(&body);
        body = z;
    }
    let mut all = sign.to_vec();
    all.extend_from_slice(&body);
    pad(out, &all, spec);
}

fn fixed_form(mag: f64, prec: usize, alt: bool) -> String {
    let mut s = format!("{mag:.prec$}");
    if alt && prec == 0 {
        s.push('.');
    }
    s
}

/// Splits Rust's `{:e}` output into mantissa and exponent.
fn rust_exp(mag: f64, prec: usize) -> (String, i32) {
    let s = format!("{mag:.prec$e}");
    match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse().unwrap_or(0)),
        None => (s, 0),
    }
}

fn exp_form(mag: f64, prec: usize, alt: bool, upper: bool) -> String {
    let (mut mant, exp) = rust_exp(mag, prec);
    if alt && prec == 0 {
        mant.push('.');
    }
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{mant}{e}{sign}{:02}", exp.unsigned_abs())
}

fn general_form(mag: f64, prec: usize, alt: bool, upper: bool) -> String {
    let p = if prec == 0 { 1 } else { prec };
    let (_, x) = rust_exp(mag, p - 1);
    let mut s = if x < -4 || x >= p as i32 {
        exp_form(mag, p - 1, alt, upper)
    } else {
        let fprec = usize::try_from(p as i32 - 1 - x).unwrap_or(0);
        fixed_form(mag, fprec, alt)
    };
    if !alt {
        // Strip trailing zeros of the fraction (and a bare point).
        let (num, exp) = match s.find(['e', 'E']) {
            Some(i) => (s[..i].to_string(), s[i..].to_string()),
            None => (s.clone(), String::new()),
        };
        let num = if num.contains('.') {
            num.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            num
        };
        s = num + &exp;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn integers_match_c() {
        let s = |w, z, l, p| Spec {
            width: w,
            zero: z,
            left: l,
            prec: p,
            ..Spec::default()
        };
        assert_eq!(
            run(|o| fmt_signed(o, -42, &s(6, true, false, None))),
            "-00042"
        );
        assert_eq!(
            run(|o| fmt_signed(o, 42, &s(6, false, true, None))),
            "42    "
        );
        assert_eq!(
            run(|o| fmt_signed(o, 7, &s(5, false, false, Some(3)))),
            "  007"
        );
        assert_eq!(run(|o| fmt_signed(o, 0, &s(0, false, false, Some(0)))), "");
        let alt = Spec {
            alt: true,
            ..Spec::default()
        };
        assert_eq!(run(|o| fmt_unsigned(o, 255, Radix::Hex, &alt)), "0xff");
        assert_eq!(run(|o| fmt_unsigned(o, 0, Radix::Hex, &alt)), "0");
        assert_eq!(run(|o| fmt_unsigned(o, 8, Radix::Oct, &alt)), "010");
        let plus = Spec {
            plus: true,
            ..Spec::default()
        };
        assert_eq!(run(|o| fmt_signed(o, 3, &plus)), "+3");
    }

    #[test]
    fn floats_match_c() {
        let d = Spec::default();
        assert_eq!(run(|o| fmt_float(o, 1.5, b'f', &d)), "1.500000");
        assert_eq!(run(|o| fmt_float(o, 12345.678, b'e', &d)), "1.234568e+04");
        assert_eq!(run(|o| fmt_float(o, 0.0001, b'g', &d)), "0.0001");
        assert_eq!(run(|o| fmt_float(o, 0.00001, b'g', &d)), "1e-05");
        assert_eq!(run(|o| fmt_float(o, 123456789.0, b'G', &d)), "1.23457E+08");
        assert_eq!(run(|o| fmt_float(o, 100.0, b'g', &d)), "100");
        let w = Spec {
            width: 8,
            prec: Some(2),
            zero: true,
            ..Spec::default()
        };
        assert_eq!(run(|o| fmt_float(o, -2.71523, b'f', &w)), "-0002.72");
    }
}
