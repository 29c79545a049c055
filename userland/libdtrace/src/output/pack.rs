//! The `agghist` and `aggpack` aggregation views. agghist draws count()/sum()
//! aggregations as one histogram whose rows are the keys (a `key` header,
//! keys in packed widths, a bar scaled to the total of all entries); aggpack
//! draws each quantize()/lquantize() value on one line (`min :bars: max |
//! count`) under a shared header. The layouts follow libdtrace's
//! `dt_print_datum`/`dt_print_*_packed`; the shared min/max bucket range is
//! computed from all entries of the aggregation. Not probe context.

use super::cfmt::{self, Spec};
use super::histogram::{self, quantize_bucket_value, HistOptions};
use super::model::{AggKind, Record, QUANTIZE_NBUCKETS, QUANTIZE_ZEROBUCKET};
use super::stack::{self, Symbolizer};
use super::trace;

/// Width of a key column in the packed views.
fn packed_width(r: &Record) -> usize {
    match r {
        Record::Int { size: 1, .. } => 3,
        Record::Int { size: 2, .. } => 5,
        Record::Int { size: 4, .. } => 8,
        _ => 16,
    }
}

/// Total width of the key columns (each plus its leading blank).
pub fn key_width(key: &[Record]) -> usize {
    key.iter().map(|r| packed_width(r) + 1).sum()
}

/// Prints one key in its packed width.
pub fn print_packed_key(out: &mut Vec<u8>, r: &Record, sym: &dyn Symbolizer, stackindent: usize) {
    let w = packed_width(r);
    match r {
        Record::Int { size, bits, .. } => {
            let v = match size {
                8 => *bits as i64,
                4 => i64::from(*bits as u32 as i32),
                2 => i64::from(*bits as u16),
                _ => i64::from(*bits as u8),
            };
            out.push(b' ');
            cfmt::fmt_signed(out, v, &Spec::right(w));
        }
        Record::Bytes { data, force_raw } => {
            trace::print_bytes(out, data, w as i64, false, *force_raw)
        }
        Record::Stack { kind, pcs, strtab } => stack::print_stack(
            out,
            sym,
            *kind,
            pcs,
            strtab.as_deref(),
            stackindent,
            &Spec::default(),
        ),
        Record::Sym(pc) => {
            out.extend_from_slice(b"  ");
            cfmt::pad(
                out,
                stack::kernel_sym_text(sym, *pc).as_bytes(),
                &Spec::left(50),
            );
        }
        other => {
            // Remaining symbolic keys print as in the default layout.
            let mut tmp = Vec::new();
            super::aggregate::print_key(&mut tmp, other, sym, stackindent, &Default::default());
            out.extend_from_slice(&tmp);
        }
    }
}

/// agghist: the scale shared by all entries of one aggregation.
#[derive(Clone, Copy, Debug)]
pub struct HistScale {
    pub total: f64,
    pub positives: bool,
    pub negatives: bool,
}

/// Computes the agghist scale over the scalar values of all entries.
pub fn hist_scale(values: &[i64], opts: HistOptions) -> HistScale {
    let mut total = 0.0f64;
    for &v in values {
        let a = v.unsigned_abs() as f64;
        if opts.aggzoom {
            total = total.max(a / 0.95);
        } else {
            total += a;
        }
    }
    HistScale {
        total,
        positives: values.iter().any(|&v| v > 0),
        negatives: values.iter().any(|&v| v < 0),
    }
}

/// agghist header (`key` column, or `value` when there are no keys).
pub fn print_hist_header(out: &mut Vec<u8>, key_width: usize) {
    histogram::print_header(out, key_width);
}

/// agghist value: a blank and the bar with the count column.
pub fn print_hist_value(
    out: &mut Vec<u8>,
    value: i64,
    normal: u64,
    scale: HistScale,
    opts: HistOptions,
) {
    out.push(b' ');
    histogram::print_bar(
        out,
        value,
        normal,
        scale.total,
        scale.positives,
        scale.negatives,
        opts,
    );
}

/// Digits libdtrace reserves for a bound in the packed layout (at least 4).
fn ndigits(val: i64) -> usize {
    let mut n = 1;
    let mut v = val;
    if v < 0 {
        v = if v == i64::MIN { i64::MAX } else { -v };
        n += 1;
    }
    let mut cmp: i64 = 10;
    while v > cmp && cmp > 0 {
        n += 1;
        cmp = cmp.saturating_mul(10);
        if cmp == i64::MAX {
            break;
        }
    }
    n.max(4)
}

/// The bucket range shown by aggpack for all entries of an aggregation.
pub fn pack_range(kind: AggKind, values: &[&[i64]]) -> (usize, usize) {
    match kind {
        AggKind::Lquantize { levels, .. } => (0, usize::from(levels) + 1),
        _ => {
            let mut min = None::<usize>;
            let mut max = None::<usize>;
            for v in values {
                if let Some(f) = v.iter().position(|&c| c != 0) {
                    min = Some(min.map_or(f, |m| m.min(f)));
                }
                if let Some(l) = v.iter().rposition(|&c| c != 0) {
                    max = Some(max.map_or(l, |m| m.max(l)));
                }
            }
            let mut min = min.unwrap_or(QUANTIZE_ZEROBUCKET);
            let mut max = max.unwrap_or(QUANTIZE_ZEROBUCKET);
            if min != 0 && min != QUANTIZE_ZEROBUCKET {
                min -= 1;
            }
            if max < QUANTIZE_NBUCKETS - 1 {
                max += 1;
            }
            (min, max)
        }
    }
}

/// aggpack header for the range `(min, max)`.
pub fn print_pack_header(
    out: &mut Vec<u8>,
    kind: AggKind,
    key_width: usize,
    range: (usize, usize),
) {
    let (min, max) = range;
    let (minwidth, maxwidth) = match kind {
        AggKind::Lquantize { .. } => (7, 8),
        _ => (
            ndigits(quantize_bucket_value(min)),
            ndigits(quantize_bucket_value(max)),
        ),
    };
    out.push(b'\n');
    cfmt::pad(
        out,
        if key_width > 0 { b"key" } else { b"" },
        &Spec::right(key_width),
    );
    out.push(b' ');
    cfmt::pad(out, b"min", &Spec::right(minwidth));
    out.extend_from_slice(b" .");
    out.resize(out.len() + (max - min + 1), b'-');
    out.extend_from_slice(b". ");
    cfmt::pad(out, b"max", &Spec::left(maxwidth));
    out.extend_from_slice(b" | count\n");
}

fn packed_cell(out: &mut Vec<u8>, datum: i64, total: f64, utf8: bool) {
    if datum == 0 || total == 0.0 {
        out.push(b' ');
        return;
    }
    if datum < 0 {
        let neg = b"vvvvVV";
        let i = ((datum.unsigned_abs() as f64 * (neg.len() - 1) as f64) / total + 0.5) as usize;
        out.push(neg[i.min(neg.len() - 1)]);
        return;
    }
    if utf8 {
        let level = ((datum as f64 * 7.0) / total + 0.5) as u32;
        let c = char::from_u32(0x2581 + level.min(7)).unwrap_or(' ');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    } else {
        let ascii = b"__xxxxXX";
        let i = ((datum as f64 * (ascii.len() - 1) as f64) / total + 0.5) as usize;
        out.push(ascii[i.min(ascii.len() - 1)]);
    }
}

/// One aggpack value line (`dt_print_quantize_packed` /
/// `dt_print_lquantize_packed`), newline included.
pub fn print_pack_value(
    out: &mut Vec<u8>,
    kind: AggKind,
    words: &[i64],
    range: (usize, usize),
    opts: HistOptions,
) {
    let (min, max) = range;
    let rows = words
        .get(min..=max.min(words.len().saturating_sub(1)))
        .unwrap_or(&[]);
    let mut total = 0.0f64;
    for &v in rows {
        let a = v.unsigned_abs() as f64;
        if opts.aggzoom {
            total = total.max(a / 0.95);
        } else {
            total += a;
        }
    }
    let count: i64 = rows.iter().fold(0i64, |a, &b| a.wrapping_add(b));
    match kind {
        AggKind::Lquantize { base, step, levels } => {
            cfmt::pad(out, format!("< {base}").as_bytes(), &Spec::right(8));
            out.extend_from_slice(b" :");
            for &v in rows {
                packed_cell(out, v, total, opts.utf8);
            }
            let top = i64::from(base) + i64::from(levels) * i64::from(step);
            out.extend_from_slice(b": ");
            cfmt::pad(out, format!(">= {top}").as_bytes(), &Spec::left(8));
            out.extend_from_slice(format!(" | {count}\n").as_bytes());
        }
        _ => {
            let minval = quantize_bucket_value(min);
            let maxval = quantize_bucket_value(max);
            out.push(b' ');
            cfmt::fmt_signed(out, minval, &Spec::right(ndigits(minval)));
            out.extend_from_slice(b" :");
            for &v in rows {
                packed_cell(out, v, total, opts.utf8);
            }
            out.extend_from_slice(b": ");
            cfmt::fmt_signed(out, maxval, &Spec::left(ndigits(maxval)));
            out.extend_from_slice(format!(" | {count}\n").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hist_rows_share_one_scale() {
        let opts = HistOptions::default();
        let scale = hist_scale(&[1, 3], opts);
        let mut out = Vec::new();
        print_hist_header(&mut out, key_width(&[Record::int(4, 0, true)]));
        print_packed_key(&mut out, &Record::int(4, 7, true), &stack::NoSymbols, 14);
        print_hist_value(&mut out, 3, 1, scale, opts);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "      key  ------------- Distribution ------------- count    "
        );
        assert_eq!(
            lines[2],
            format!("        7 |{}{} 3        ", "@".repeat(30), " ".repeat(10))
        );
    }

    #[test]
    fn packed_quantize_line() {
        let mut d = vec![0i64; QUANTIZE_NBUCKETS];
        d[64] = 1; // 1
        d[66] = 3; // 4..7
        let range = pack_range(AggKind::Quantize, &[&d]);
        assert_eq!(range, (63, 67));
        let mut out = Vec::new();
        print_pack_header(&mut out, AggKind::Quantize, 0, range);
        print_pack_value(
            &mut out,
            AggKind::Quantize,
            &d,
            range,
            HistOptions::default(),
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "\n  min .-----. max  | count\n    0 : x x : 8    | 4\n"
        );
    }
}
