//! The D printf engine: a format string is parsed once into literal text and
//! conversions (the same grammar and conversion table as libdtrace's
//! `dt_printf_create`), then rendered for argument records the way
//! `dt_printf_format` renders them: values loaded by record size, `ll` for
//! 8-byte integers, `%d` printing through `i`/`u` by the argument's D
//! signedness, precision 0 ignored, `*` widths/precisions from extra integer
//! arguments, `%@` from aggregation values in `printa()`. Not probe context.

use super::cfmt::{self, Radix, Spec};
use super::histogram::{self, HistOptions};
use super::model::{sign_extend, AggKind, Record};
use super::stack::{self, Symbolizer};

/// What a conversion does with its argument (libdtrace's `pfc_print`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// `%a`: kernel address as ``module`func+0x<off>``.
    Addr,
    /// `%A`: user address.
    UAddr,
    /// Sign-extended integer with the given C conversion char.
    SInt(u8),
    /// Zero-extended integer with the given C conversion char.
    UInt(u8),
    /// `%d`: signed (`i`) or unsigned (`u`) by the argument's D type.
    DInt,
    /// `%C`: escaped character.
    EscChar,
    /// `%e %E %f %g %G` (and `L` forms).
    Float(u8),
    /// `%I`: IPv4/IPv6 address string.
    Inet,
    /// `%k`: a stack.
    Stack,
    /// `%lc %wc`: a wide character.
    WChar,
    /// `%ls %ws`: a wide string.
    WStr,
    /// `%P`: a port number.
    Port,
    /// `%s`.
    Str,
    /// `%S`: escaped string.
    EscStr,
    /// `%T`: RFC-822 time.
    Time822,
    /// `%Y`: `YYYY Mon DD HH:MM:SS`.
    Time,
    /// `%%`.
    Pct,
}

/// The conversion dictionary: name (with length modifiers) → kind.
fn lookup(name: &str) -> Option<ConvKind> {
    use ConvKind::*;
    Some(match name {
        "a" => Addr,
        "A" => UAddr,
        "c" => SInt(b'c'),
        "C" => EscChar,
        "d" => DInt,
        "e" | "Le" => Float(b'e'),
        "E" | "LE" => Float(b'E'),
        "f" | "Lf" => Float(b'f'),
        "g" | "Lg" => Float(b'g'),
        "G" | "LG" => Float(b'G'),
        "hd" | "ld" | "lld" => SInt(b'd'),
        "hi" | "i" | "li" | "lli" => SInt(b'i'),
        "ho" | "lo" | "llo" | "o" => UInt(b'o'),
        "hu" | "lu" | "llu" | "u" => UInt(b'u'),
        "hx" | "lx" | "llx" | "x" | "p" => UInt(b'x'),
        "hX" | "lX" | "llX" | "X" => UInt(b'X'),
        "I" => Inet,
        "k" => Stack,
        "lc" | "wc" => WChar,
        "ls" | "ws" => WStr,
        "P" => Port,
        "s" => Str,
        "S" => EscStr,
        "T" => Time822,
        "Y" => Time,
        "%" => Pct,
        _ => return None,
    })
}

/// One parsed conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    /// Conversion name including length modifiers (`lld`, `ws`, …).
    pub name: String,
    pub kind: ConvKind,
    pub left: bool,
    pub zero: bool,
    pub plus: bool,
    pub space: bool,
    pub alt: bool,
    pub width: usize,
    pub prec: usize,
    pub dyn_width: bool,
    pub dyn_prec: bool,
    /// `%@`: consumes the aggregation value.
    pub agg: bool,
}

/// A piece of a format: literal text or a conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(Vec<u8>),
    Conv(Conversion),
}

/// A parsed D format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub pieces: Vec<Piece>,
}

impl Format {
    /// Parses a format; errors carry libdtrace's wording.
    pub fn parse(format: &str) -> Result<Format, String> {
        let s = format.as_bytes();
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut i = 0;
        let mut nconv = 0u32;
        while i < s.len() {
            if s[i] != b'%' {
                text.push(s[i]);
                i += 1;
                continue;
            }
            nconv += 1;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            let mut c = Conversion {
                name: String::new(),
                kind: ConvKind::Pct,
                left: false,
                zero: false,
                plus: false,
                space: false,
                alt: false,
                width: 0,
                prec: 0,
                dyn_width: false,
                dyn_prec: false,
                agg: false,
            };
            let (mut dot, mut digits) = (false, 0);
            let start = i;
            i += 1;
            loop {
                let Some(&ch) = s.get(i) else {
                    return Err(format!(
                        "format conversion #{nconv} name expected before end of format string"
                    ));
                };
                match ch {
                    b'0'..=b'9' => {
                        if !dot && digits == 0 && ch == b'0' {
                            c.zero = true;
                            c.left = false;
                            i += 1;
                            continue;
                        }
                        let mut n: usize = 0;
                        while let Some(d @ b'0'..=b'9') = s.get(i) {
                            n = n.saturating_mul(10).saturating_add(usize::from(d - b'0'));
                            i += 1;
                        }
                        if dot {
                            c.prec = n;
                        } else {
                            c.width = n;
                        }
                        digits += 1;
                        continue;
                    }
                    b'#' => c.alt = true,
                    b'*' => {
                        let flag = if dot {
                            &mut c.dyn_prec
                        } else {
                            &mut c.dyn_width
                        };
                        if *flag {
                            return Err(format!(
                                "format conversion #{nconv} has more than one '*' specified for the output {}",
                                if dot { "precision" } else { "width" }
                            ));
                        }
                        *flag = true;
                    }
                    b'+' => c.plus = true,
                    b'-' => {
                        c.left = true;
                        c.zero = false;
                    }
                    b'.' => {
                        if dot {
                            return Err(format!(
                                "format conversion #{nconv} has more than one '.' specified"
                            ));
                        }
                        dot = true;
                        digits = 0;
                    }
                    b'?' => c.width = 16,
                    b'@' => c.agg = true,
                    b'\'' => {}
                    b' ' => c.space = true,
                    b'$' => {
                        return Err(format!(
                            "format conversion #{nconv} uses unsupported positional format (%n$)"
                        ));
                    }
                    b'%' if i == start + 1 => {
                        c.name.push('%');
                        i += 1;
                        break;
                    }
                    b'%' => {
                        return Err(format!("format conversion #{nconv} cannot be combined with other format flags: %%"));
                    }
                    b'h' | b'l' | b'L' | b'w' => {
                        if c.name.len() < 6 {
                            c.name.push(char::from(ch));
                        }
                    }
                    _ => {
                        c.name.push(char::from(ch));
                        i += 1;
                        break;
                    }
                }
                i += 1;
            }
            c.kind = lookup(&c.name)
                .ok_or_else(|| format!("format conversion #{nconv} is undefined: %{}", c.name))?;
            pieces.push(Piece::Conv(c));
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Format { pieces })
    }

    /// Number of argument records the format consumes (not counting `%@`).
    pub fn arg_count(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Conv(c) if c.kind != ConvKind::Pct => {
                    usize::from(c.dyn_width) + usize::from(c.dyn_prec) + usize::from(!c.agg)
                }
                _ => 0,
            })
            .sum()
    }
}

/// An aggregation value as `%@` sees it.
#[derive(Clone, Copy, Debug)]
pub struct AggValueRef<'a> {
    pub kind: AggKind,
    pub words: &'a [i64],
    pub normal: u64,
}

/// Context a rendering needs besides its arguments.
pub struct RenderCtx<'a> {
    pub symbols: &'a dyn Symbolizer,
    /// `stackindent` option (default 14).
    pub stackindent: usize,
    /// `$target` pid for `%A` of plain integers.
    pub target_pid: u64,
    pub hist: HistOptions,
}

/// Renders `format` with `args`; `aggs` are the aggregation values that
/// successive `%@` conversions consume (printa). Returns the number of
/// argument records consumed.
pub fn render(
    out: &mut Vec<u8>,
    format: &Format,
    args: &[Record],
    aggs: &[AggValueRef<'_>],
    ctx: &RenderCtx<'_>,
) -> Result<usize, String> {
    let mut next = 0usize;
    let mut curagg = if aggs.len() > 1 { 1 } else { 0 };
    let take = |next: &mut usize| -> Result<&Record, String> {
        let r = args
            .get(*next)
            .ok_or_else(|| "printf argument mismatch: too few arguments".to_string())?;
        *next += 1;
        Ok(r)
    };
    for piece in &format.pieces {
        let c = match piece {
            Piece::Text(t) => {
                out.extend_from_slice(t);
                continue;
            }
            Piece::Conv(c) => c,
        };
        if c.kind == ConvKind::Pct {
            out.push(b'%');
            continue;
        }
        let mut width = c.width as i64;
        let mut dyn_width = 0i64;
        if c.dyn_width {
            width = i64::from(int_arg(take(&mut next)?)? as i32);
            dyn_width = width;
        }
        let mut prec = c.prec as i64;
        if c.dyn_prec {
            prec = i64::from(int_arg(take(&mut next)?)? as i32);
        }
        let spec_for = |w: i64| Spec {
            left: w < 0 || c.left,
            zero: c.zero,
            plus: c.plus,
            space: c.space,
            alt: c.alt,
            width: usize::try_from(w.unsigned_abs()).unwrap_or(0),
            prec: usize::try_from(prec).ok().filter(|&p| p > 0),
        };
        if c.agg {
            let Some(agg) = aggs.get(curagg).or(aggs.last()) else {
                return Err("%@ conversion without an aggregation".into());
            };
            if curagg + 1 < aggs.len() {
                curagg += 1;
            }
            render_agg_value(out, c, agg, &spec_for(width), ctx);
            continue;
        }
        let arg = take(&mut next)?;
        if c.kind == ConvKind::Stack {
            let indent = if dyn_width < 0 {
                usize::try_from(dyn_width.unsigned_abs()).unwrap_or(0)
            } else if c.left {
                usize::try_from(if dyn_width != 0 {
                    dyn_width
                } else {
                    c.width as i64
                })
                .unwrap_or(0)
            } else {
                0
            };
            let mut spec = spec_for(width);
            if c.left {
                spec.width = 0;
            }
            match arg {
                Record::Stack { kind, pcs, strtab } => stack::print_stack(
                    out,
                    ctx.symbols,
                    *kind,
                    pcs,
                    strtab.as_deref(),
                    indent,
                    &spec,
                ),
                other => return Err(format!("%k argument is not a stack: {other:?}")),
            }
            continue;
        }
        render_one(out, c, arg, &spec_for(width), 1, ctx)?;
    }
    Ok(next)
}

fn int_arg(r: &Record) -> Result<i64, String> {
    r.as_i64()
        .ok_or_else(|| format!("expected an integer argument, found {r:?}"))
}

/// Formats an integer value loaded as libdtrace loads it: `value32` for
/// records of up to 4 bytes (C `int`/`unsigned`), 64-bit otherwise.
fn fmt_c_int(out: &mut Vec<u8>, conv: u8, bits: u64, wide: bool, spec: &Spec) {
    match conv {
        b'd' | b'i' => {
            let v = if wide {
                bits as i64
            } else {
                i64::from(bits as u32 as i32)
            };
            cfmt::fmt_signed(out, v, spec);
        }
        b'c' => cfmt::fmt_char(out, bits as u8, spec),
        _ => {
            let v = if wide { bits } else { u64::from(bits as u32) };
            let radix = match conv {
                b'o' => Radix::Oct,
                b'x' => Radix::Hex,
                b'X' => Radix::HexUpper,
                _ => Radix::Dec,
            };
            cfmt::fmt_unsigned(out, v, radix, spec);
        }
    }
}

fn render_one(
    out: &mut Vec<u8>,
    c: &Conversion,
    arg: &Record,
    spec: &Spec,
    normal: u64,
    ctx: &RenderCtx<'_>,
) -> Result<(), String> {
    let normal = normal.max(1);
    match (c.kind, arg) {
        (ConvKind::SInt(conv), Record::Int { size, bits, .. }) => {
            let v = sign_extend(*size, *bits);
            if *size == 8 {
                fmt_c_int(out, conv, (v / normal as i64) as u64, true, spec);
            } else {
                fmt_c_int(
                    out,
                    conv,
                    (v / i64::from(normal as i32).max(1)) as u64,
                    false,
                    spec,
                );
            }
        }
        (ConvKind::UInt(conv), Record::Int { size, bits, .. }) => {
            fmt_c_int(out, conv, *bits / normal, *size == 8, spec);
        }
        (ConvKind::DInt, Record::Int { size, bits, signed }) => {
            let conv = if *signed { b'i' } else { b'u' };
            fmt_c_int(out, conv, *bits / normal, *size == 8, spec);
        }
        (ConvKind::EscChar, Record::Int { size, bits, .. }) => {
            let ch = sign_extend(*size, *bits) as u8;
            cfmt::fmt_str(out, &escape(&[ch]), spec);
        }
        (ConvKind::WChar, Record::Int { bits, .. }) => {
            let ch = char::from_u32(*bits as u32).unwrap_or('\u{fffd}');
            let mut buf = [0u8; 4];
            cfmt::pad(out, ch.encode_utf8(&mut buf).as_bytes(), spec);
        }
        (ConvKind::Float(conv), Record::Float { value, .. }) => {
            cfmt::fmt_float(out, *value / normal as f64, conv, spec);
        }
        (ConvKind::Float(conv), Record::Int { size, bits, .. }) => {
            cfmt::fmt_float(out, sign_extend(*size, *bits) as f64, conv, spec);
        }
        (ConvKind::Str | ConvKind::Inet, Record::Bytes { data, .. }) => {
            cfmt::fmt_str(out, data, spec)
        }
        (ConvKind::Str, other) => {
            let text = record_text(other, ctx);
            cfmt::fmt_str(out, text.as_bytes(), spec);
        }
        (ConvKind::EscStr, Record::Bytes { data, .. }) => cfmt::fmt_str(out, &escape(data), spec),
        (ConvKind::WStr, Record::Bytes { data, .. }) => {
            let text: String = data
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .take_while(|&w| w != 0)
                .map(|w| char::from_u32(w).unwrap_or('\u{fffd}'))
                .collect();
            cfmt::fmt_str(out, text.as_bytes(), spec);
        }
        (ConvKind::Addr, Record::Int { bits, .. }) | (ConvKind::Addr, Record::Sym(bits)) => {
            cfmt::fmt_str(
                out,
                stack::kernel_addr_text(ctx.symbols, *bits).as_bytes(),
                spec,
            );
        }
        (ConvKind::Addr, Record::Mod(pc)) => {
            cfmt::fmt_str(
                out,
                stack::kernel_mod_text(ctx.symbols, *pc).as_bytes(),
                spec,
            );
        }
        (ConvKind::UAddr, Record::Int { bits, .. }) => {
            cfmt::fmt_str(
                out,
                stack::user_addr_text(ctx.symbols, ctx.target_pid, *bits).as_bytes(),
                spec,
            );
        }
        (ConvKind::UAddr, Record::UAddr { pid, pc })
        | (ConvKind::UAddr, Record::USym { pid, pc }) => {
            cfmt::fmt_str(
                out,
                stack::user_addr_text(ctx.symbols, *pid, *pc).as_bytes(),
                spec,
            );
        }
        (ConvKind::UAddr, Record::UMod { pid, pc }) => {
            cfmt::fmt_str(
                out,
                stack::user_mod_text(ctx.symbols, *pid, *pc).as_bytes(),
                spec,
            );
        }
        (ConvKind::Port, Record::Int { bits, .. }) => {
            cfmt::fmt_str(out, (*bits as u16).to_string().as_bytes(), spec);
        }
        (ConvKind::Time, Record::Int { bits, .. }) => {
            cfmt::fmt_str(out, ymd_time(*bits).as_bytes(), spec)
        }
        (ConvKind::Time822, Record::Int { bits, .. }) => {
            cfmt::fmt_str(out, rfc822_time(*bits).as_bytes(), spec)
        }
        (kind, other) => {
            return Err(format!(
                "printf conversion %{} ({kind:?}) does not accept {other:?}",
                c.name
            ))
        }
    }
    Ok(())
}

/// Text of a symbolic record when `%s` is applied to it.
fn record_text(r: &Record, ctx: &RenderCtx<'_>) -> String {
    match r {
        Record::Sym(pc) => stack::kernel_sym_text(ctx.symbols, *pc),
        Record::Mod(pc) => stack::kernel_mod_text(ctx.symbols, *pc),
        Record::USym { pid, pc } => stack::user_sym_text(ctx.symbols, *pid, *pc),
        Record::UMod { pid, pc } => stack::user_mod_text(ctx.symbols, *pid, *pc),
        Record::UAddr { pid, pc } => stack::user_addr_text(ctx.symbols, *pid, *pc),
        // A string record of 1, 2, 4 or 8 bytes (e.g. under `-x strsize=4`) decodes as an
        // integer; %s prints its bytes as a C string, as libdtrace's pfprint_cstr does.
        Record::Int { size, bits, .. } => {
            let bytes = bits.to_le_bytes();
            let data = bytes.get(..usize::from(*size)).unwrap_or(&bytes);
            let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
            String::from_utf8_lossy(data.get(..end).unwrap_or(data)).into_owned()
        }
        _ => String::new(),
    }
}

/// `%@`: avg/stddev/histograms have their own printers; others format the
/// 64-bit value (count unsigned, the rest signed).
fn render_agg_value(
    out: &mut Vec<u8>,
    c: &Conversion,
    agg: &AggValueRef<'_>,
    spec: &Spec,
    ctx: &RenderCtx<'_>,
) {
    let normal = agg.normal.max(1);
    let w = |i: usize| agg.words.get(i).copied().unwrap_or(0);
    match agg.kind {
        AggKind::Avg => {
            // libdtrace divides the unsigned words here (pfprint_average).
            let count = w(0) as u64;
            let v = ((w(1) as u64) / normal).checked_div(count).unwrap_or(0);
            agg_int(out, c, v, true, spec);
        }
        AggKind::Stddev => {
            let v = super::aggregate::stddev(agg.words, normal);
            agg_int(out, c, v, true, spec);
        }
        AggKind::Quantize | AggKind::Lquantize { .. } | AggKind::Llquantize { .. } => {
            histogram::print_histogram(out, agg.kind, agg.words, normal, ctx.hist);
        }
        AggKind::Count => agg_int(out, c, (w(0) as u64) / normal, false, spec),
        _ => agg_int(out, c, (w(0) / normal as i64) as u64, true, spec),
    }
}

fn agg_int(out: &mut Vec<u8>, c: &Conversion, v: u64, signed: bool, spec: &Spec) {
    let conv = match c.kind {
        ConvKind::DInt if signed => b'i',
        ConvKind::DInt => b'u',
        ConvKind::SInt(x) | ConvKind::UInt(x) => x,
        _ => b'u',
    };
    fmt_c_int(out, conv, v, true, spec);
}

/// `strchr2esc`: C escapes for control characters, quotes and backslash,
/// `\ooo` for other non-graphic bytes; every byte of the record (NULs too).
pub fn escape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for &b in data {
        match b {
            0 => out.extend_from_slice(b"\\0"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x0b => out.extend_from_slice(b"\\v"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b' ' => out.push(b' '),
            b'!'..=b'~' => out.push(b),
            _ => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
        }
    }
    out
}

fn local_tm(ns: u64) -> Option<libc::tm> {
    let secs = libc::time_t::try_from(ns / 1_000_000_000).ok()?;
    extern "C" {
        fn tzset();
    }
    // SAFETY: tzset() only (re)reads the TZ environment into libc's time
    // zone state; localtime_r does not do it by itself on every libc. `tm`
    // is plain old data that localtime_r fully initialises on success; both
    // pointers are valid for the duration of the call.
    unsafe {
        tzset();
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            None
        } else {
            Some(tm)
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `%Y`: ctime's fields re-ordered year first (`2022 Sep  5 03:36:32`), in
/// local time like ctime(3).
pub fn ymd_time(ns: u64) -> String {
    match local_tm(ns) {
        Some(tm) => format!(
            "{} {} {:2} {:02}:{:02}:{:02}",
            i64::from(tm.tm_year) + 1900,
            MONTHS
                .get(usize::try_from(tm.tm_mon).unwrap_or(0))
                .copied()
                .unwrap_or("???"),
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        ),
        None => String::new(),
    }
}

/// `%T`: strftime `%a, %d %b %G %T %Z` in local time.
pub fn rfc822_time(ns: u64) -> String {
    let Some(tm) = local_tm(ns) else {
        return String::new();
    };
    let mut buf = [0u8; 64];
    let fmt = b"%a, %d %b %G %T %Z\0";
    // SAFETY: `buf` is writable for its full length, `fmt` is NUL-terminated
    // and `tm` is a valid, initialised struct tm.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr().cast(), &tm) };
    String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned()
}

/// Convenience for callers: parse and render in one go (used by `printf()`
/// records, whose format arrives as text from the DOF string table).
pub fn sprintf(format: &str, args: &[Record], ctx: &RenderCtx<'_>) -> Result<Vec<u8>, String> {
    let f = Format::parse(format)?;
    let mut out = Vec::new();
    render(&mut out, &f, args, &[], ctx)?;
    Ok(out)
}
