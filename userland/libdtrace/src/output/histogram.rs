//! quantize()/lquantize()/llquantize() histograms drawn as libdtrace draws
//! them: the `value ---- Distribution ---- count` header, one row per bucket
//! from one bucket before the first non-zero to one after the last, 40-column
//! `@` bars (half bars around a centre line when counts of both signs are
//! present), `aggzoom` and `encoding=utf8`. Not probe context.

use super::cfmt::{self, Spec};
use super::model::{AggKind, QUANTIZE_NBUCKETS, QUANTIZE_ZEROBUCKET};

/// Drawing options that change histogram rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistOptions {
    /// `-x aggzoom`: the tallest bar is 95 % of the full height.
    pub aggzoom: bool,
    /// `-x encoding=utf8`: block characters with eighth partial blocks.
    pub utf8: bool,
}

const BAR: usize = 40;
const AGGZOOM_MAX: f64 = 0.95;

/// Lower bound of quantize() bucket `i`.
pub fn quantize_bucket_value(i: usize) -> i64 {
    if i < QUANTIZE_ZEROBUCKET {
        -(1i64 << (62 - i))
    } else if i == QUANTIZE_ZEROBUCKET {
        0
    } else {
        1i64 << (i - 64).min(62)
    }
}

/// Number of llquantize() bins (underflow, the per-order steps, overflow).
pub fn llquantize_bins(kind: AggKind) -> usize {
    llquantize_values(kind).len() + 2
}

/// The lower bound of each in-range llquantize() bin (bins 1..=n), plus the
/// overflow bound as the last element of the tuple.
fn llquantize_layout(kind: AggKind) -> (i64, Vec<i64>, i64) {
    let AggKind::Llquantize {
        factor,
        low,
        high,
        nsteps,
    } = kind
    else {
        return (0, Vec::new(), 0);
    };
    let factor = i64::from(factor.max(2));
    let nsteps = i64::from(nsteps.max(1));
    let mut value: i64 = 1;
    for _ in 0..low {
        value = value.saturating_mul(factor);
    }
    let under = value;
    let mut next = value.saturating_mul(factor);
    let mut step = if next > nsteps { next / nsteps } else { 1 };
    let mut order = low;
    let mut values = Vec::new();
    while order <= high && values.len() < 1 << 16 {
        values.push(value);
        value = value.saturating_add(step);
        if value < next {
            continue;
        }
        next = value.saturating_mul(factor);
        step = if next > nsteps { next / nsteps } else { 1 };
        order += 1;
    }
    (under, values, value)
}

fn llquantize_values(kind: AggKind) -> Vec<i64> {
    llquantize_layout(kind).1
}

/// A row label: a number (`%16lld`) or text (`%16s`).
enum Label {
    Num(i64),
    Text(String),
}

/// Label and representative value of every bin, for sorting and JSON.
pub fn bucket_values(kind: AggKind) -> Vec<i64> {
    match kind {
        AggKind::Quantize => (0..QUANTIZE_NBUCKETS).map(quantize_bucket_value).collect(),
        AggKind::Lquantize { base, step, levels } => {
            let mut v = vec![i64::from(base) - 1];
            v.extend((0..i64::from(levels)).map(|i| i64::from(base) + i * i64::from(step)));
            v.push(i64::from(base) + i64::from(levels) * i64::from(step));
            v
        }
        AggKind::Llquantize { .. } => {
            let (under, values, over) = llquantize_layout(kind);
            let mut v = vec![under - 1];
            v.extend(values);
            v.push(over);
            v
        }
        _ => Vec::new(),
    }
}

fn labels(kind: AggKind, n: usize) -> Vec<Label> {
    match kind {
        AggKind::Quantize => (0..n)
            .map(|i| Label::Num(quantize_bucket_value(i)))
            .collect(),
        AggKind::Lquantize { base, step, levels } => (0..n)
            .map(|i| {
                if i == 0 {
                    Label::Text(format!("< {base}"))
                } else if i == usize::from(levels) + 1 {
                    let top = i64::from(base) + i64::from(levels) * i64::from(step);
                    Label::Text(format!(">= {}", top as i32))
                } else {
                    let v = i64::from(base) + (i as i64 - 1) * i64::from(step);
                    Label::Num(i64::from(v as i32))
                }
            })
            .collect(),
        AggKind::Llquantize { .. } => {
            let (under, values, over) = llquantize_layout(kind);
            let mut l = vec![Label::Text(format!("< {under}"))];
            l.extend(values.into_iter().map(Label::Num));
            l.push(Label::Text(format!(">= {over}")));
            l.truncate(n);
            l
        }
        _ => Vec::new(),
    }
}

/// Rows to print: one before the first non-zero bucket to one after the
/// last; when all are zero, the rows given by `empty`.
fn row_range(data: &[i64], empty: (usize, usize)) -> (usize, usize) {
    let Some(first) = data.iter().position(|&v| v != 0) else {
        return (empty.0, empty.1.min(data.len().saturating_sub(1)));
    };
    let last = data.iter().rposition(|&v| v != 0).unwrap_or(first);
    (first.saturating_sub(1), (last + 1).min(data.len() - 1))
}

/// The header line (preceded by a newline). `key_width` > 0 is agghist's
/// `key` column.
pub fn print_header(out: &mut Vec<u8>, key_width: usize) {
    out.push(b'\n');
    let (w, label): (usize, &[u8]) = if key_width > 0 {
        (key_width, b"key")
    } else {
        (16, b"value")
    };
    cfmt::pad(out, label, &Spec::right(w));
    out.push(b' ');
    cfmt::pad(
        out,
        b"------------- Distribution -------------",
        &Spec::right(41),
    );
    out.push(b' ');
    cfmt::pad(out, b"count", &Spec::left(9));
    out.push(b'\n');
}

/// libdtrace divides the signed count by the unsigned normal in unsigned
/// arithmetic; reproduce that exactly.
fn normalized(val: i64, normal: u64) -> i64 {
    ((val as u64) / normal.max(1)) as i64
}

fn count_field(out: &mut Vec<u8>, val: i64, normal: u64) {
    cfmt::fmt_signed(out, normalized(val, normal), &Spec::left(9));
    out.push(b'\n');
}

fn depth(val: i64, len: usize, total: f64) -> usize {
    if total == 0.0 {
        return 0;
    }
    let f = (val.unsigned_abs() as f64 * len as f64) / total;
    ((f + 0.5) as usize).min(len)
}

/// One bar plus the count column (`dt_print_quantline`).
pub fn print_bar(
    out: &mut Vec<u8>,
    val: i64,
    normal: u64,
    total: f64,
    positives: bool,
    negatives: bool,
    opts: HistOptions,
) {
    if !negatives {
        if positives && opts.utf8 {
            print_bar_utf8(out, val, normal, total);
            return;
        }
        let d = if positives { depth(val, BAR, total) } else { 0 };
        out.push(b'|');
        out.resize(out.len() + d, b'@');
        out.resize(out.len() + (BAR - d), b' ');
        out.push(b' ');
        count_field(out, val, normal);
        return;
    }
    if !positives {
        let d = depth(val, BAR, total);
        out.resize(out.len() + (BAR - d), b' ');
        out.resize(out.len() + d, b'@');
        out.extend_from_slice(b"| ");
        count_field(out, val, normal);
        return;
    }
    let half = BAR / 2;
    let d = depth(val, half, total);
    if val <= 0 {
        out.resize(out.len() + (half - d), b' ');
        out.resize(out.len() + d, b'@');
        out.push(b'|');
        out.resize(out.len() + half, b' ');
    } else {
        out.resize(out.len() + half, b' ');
        out.push(b'|');
        out.resize(out.len() + d, b'@');
        out.resize(out.len() + (half - d), b' ');
    }
    out.push(b' ');
    count_field(out, val, normal);
}

fn print_bar_utf8(out: &mut Vec<u8>, val: i64, normal: u64, total: f64) {
    let f = (val.unsigned_abs() as f64 * BAR as f64) / total;
    let whole = (f as usize).min(BAR);
    let partial = ((f - (f as usize) as f64) * 8.0) as u32;
    out.push(b'|');
    let mut used = whole;
    for _ in 0..whole {
        out.extend_from_slice("\u{2588}".as_bytes());
    }
    if partial != 0 && used < BAR {
        let c = char::from_u32(0x258f - (partial - 1)).unwrap_or(' ');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        used += 1;
    }
    out.resize(out.len() + (BAR - used), b' ');
    out.push(b' ');
    count_field(out, val, normal);
}

fn total_of(rows: &[i64], opts: HistOptions) -> f64 {
    let mut total = 0.0f64;
    for &v in rows {
        let a = v.unsigned_abs() as f64;
        if opts.aggzoom {
            let z = a * (1.0 / AGGZOOM_MAX);
            if total < z {
                total = z;
            }
        } else {
            total += a;
        }
    }
    total
}

/// Prints a histogram value (leading newline and header included).
/// `data` holds one word per bin, without the packed-argument word.
pub fn print_histogram(
    out: &mut Vec<u8>,
    kind: AggKind,
    data: &[i64],
    normal: u64,
    opts: HistOptions,
) {
    let empty = match kind {
        AggKind::Quantize => (QUANTIZE_ZEROBUCKET - 1, QUANTIZE_ZEROBUCKET + 1),
        AggKind::Lquantize { .. } => (0, 2),
        _ => (0, 1),
    };
    if data.is_empty() {
        print_header(out, 0);
        return;
    }
    let (first, last) = row_range(data, empty);
    let rows = &data[first..=last];
    let positives = rows.iter().any(|&v| v > 0);
    let negatives = rows.iter().any(|&v| v < 0);
    let total = total_of(rows, opts);
    print_header(out, 0);
    let labels = labels(kind, data.len());
    for (i, &val) in rows.iter().enumerate() {
        match labels.get(first + i) {
            Some(Label::Num(n)) => cfmt::fmt_signed(out, *n, &Spec::right(16)),
            Some(Label::Text(t)) => cfmt::pad(out, t.as_bytes(), &Spec::right(16)),
            None => cfmt::pad(out, b"", &Spec::right(16)),
        }
        out.push(b' ');
        print_bar(out, val, normal, total, positives, negatives, opts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quant(pairs: &[(i64, i64)]) -> Vec<i64> {
        let mut d = vec![0i64; QUANTIZE_NBUCKETS];
        for &(value, count) in pairs {
            let idx = (0..QUANTIZE_NBUCKETS).rev().find(|&i| {
                let b = quantize_bucket_value(i);
                if value >= 0 {
                    b <= value
                } else {
                    b >= value && b <= 0
                }
            });
            if value < 0 {
                // Negative values: the bucket whose bound is the largest
                // power of two not above |value|, negated.
                let i = (0..QUANTIZE_ZEROBUCKET)
                    .find(|&i| quantize_bucket_value(i) >= value)
                    .unwrap();
                d[i] += count;
            } else {
                d[idx.unwrap()] += count;
            }
        }
        d
    }

    #[test]
    fn quantize_rounding_and_trimming() {
        // 2 zeros, 6 ones, 19 twos (the worked check in output-formats.md).
        let data = quant(&[(0, 2), (1, 6), (2, 19)]);
        let mut out = Vec::new();
        print_histogram(
            &mut out,
            AggKind::Quantize,
            &data,
            1,
            HistOptions::default(),
        );
        let row = |v: &str, at: usize, n: &str| {
            format!(
                "{v:>16} |{}{} {n:<9}\n",
                "@".repeat(at),
                " ".repeat(40 - at)
            )
        };
        let expect = format!(
            "\n           value  ------------- Distribution ------------- count    \n{}{}{}{}{}",
            row("-1", 0, "0"),
            row("0", 3, "2"),
            row("1", 9, "6"),
            row("2", 28, "19"),
            row("4", 0, "0"),
        );
        assert_eq!(String::from_utf8(out).unwrap(), expect);
    }

    #[test]
    fn all_zero_prints_three_rows() {
        let data = vec![0i64; QUANTIZE_NBUCKETS];
        let mut out = Vec::new();
        print_histogram(
            &mut out,
            AggKind::Quantize,
            &data,
            1,
            HistOptions::default(),
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert!(text.contains("\n              -1 |"));
        assert!(text.contains("\n               1 |"));
    }

    #[test]
    fn lquantize_labels_and_negative_bars() {
        let kind = AggKind::Lquantize {
            base: -10,
            step: 10,
            levels: 2,
        };
        // bins: <-10, -10, 0, >=10
        let data = vec![-2, 0, 0, 0];
        let mut out = Vec::new();
        print_histogram(&mut out, kind, &data, 1, HistOptions::default());
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            format!("           < -10 {}| -2       ", "@".repeat(40))
        );
        assert_eq!(
            lines[3],
            format!("             -10 {}| 0        ", " ".repeat(40))
        );
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn mixed_signs_use_half_bars() {
        let data = quant(&[(1, 1), (-1, -1)]);
        let mut out = Vec::new();
        print_histogram(
            &mut out,
            AggKind::Quantize,
            &data,
            1,
            HistOptions::default(),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!(
            "              -1 {}{}|{} -1       \n",
            " ".repeat(10),
            "@".repeat(10),
            " ".repeat(20)
        )));
        assert!(text.contains(&format!(
            "               1 {}|{}{} 1        \n",
            " ".repeat(20),
            "@".repeat(10),
            " ".repeat(10)
        )));
    }

    #[test]
    fn llquantize_freebsd_scheme() {
        let kind = AggKind::Llquantize {
            factor: 10,
            low: 0,
            high: 1,
            nsteps: 10,
        };
        // Orders 10^0..10^1: values 1..9 step 1, then 10..90 step 10; overflow >= 100.
        let values = llquantize_values(kind);
        assert_eq!(values.len(), 18);
        assert_eq!(values[9], 10);
        assert_eq!(llquantize_bins(kind), 20);
        let mut data = vec![0i64; 20];
        data[19] = 4;
        let mut out = Vec::new();
        print_histogram(&mut out, kind, &data, 1, HistOptions::default());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!("              90 |{} 0        \n", " ".repeat(40))));
        assert!(text.contains(&format!("          >= 100 |{} 4        \n", "@".repeat(40))));
    }
}
