//! Aggregation printing: value arithmetic (avg, stddev), libdtrace's sort
//! orders (by value then key by default; `aggsortkey`, `aggsortrev`,
//! `aggsortpos`, `aggsortkeypos`), the default `printa()` layout (keys by
//! record size, value ` %16lld`, histograms, a newline per entry), formatted
//! `printa()` and the key join of multi-aggregation `printa()`. Not probe
//! context.

use std::cmp::Ordering;

use super::cfmt::{self, Spec};
use super::histogram::{self, HistOptions};
use super::model::{AggEntry, AggKind, Aggregation, Record, QUANTIZE_ZEROBUCKET};
use super::pack;
use super::printf::{self, AggValueRef, Format, RenderCtx};
use super::stack::{self, Symbolizer};
use super::trace;

/// Options that change how aggregations are sorted and printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggOptions {
    pub sortkey: bool,
    pub sortrev: bool,
    pub sortpos: usize,
    pub sortkeypos: usize,
    pub rawbytes: bool,
    pub hist: HistOptions,
    /// `agghist`: count()/sum() aggregations drawn as one histogram.
    pub agghist: bool,
    /// `aggpack`: quantize()/lquantize() values packed on one line.
    pub aggpack: bool,
}

/// 128-bit-exact stddev as libdtrace computes it: integer square root of
/// (Σx²/normal/n − (|Σx/normal/n|)²).
pub fn stddev(words: &[i64], normal: u64) -> u64 {
    let w = |i: usize| words.get(i).copied().unwrap_or(0) as u64;
    let count = w(0);
    if count == 0 {
        return 0;
    }
    let normal = normal.max(1);
    let sumsq = (u128::from(w(3)) << 64) | u128::from(w(2));
    let avg_sq = sumsq / u128::from(normal) / u128::from(count);
    let avg = (w(1) as i64) / (normal as i64).max(1) / (count as i64);
    let sq_avg = u128::from(avg.unsigned_abs()) * u128::from(avg.unsigned_abs());
    isqrt(avg_sq.wrapping_sub(sq_avg)) as u64
}

fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

/// avg as the default printa shows it (signed division, 0 when empty).
pub fn average(words: &[i64], normal: u64) -> i64 {
    let count = words.first().copied().unwrap_or(0);
    let total = words.get(1).copied().unwrap_or(0);
    if count == 0 {
        0
    } else {
        total / (normal.max(1) as i64) / count
    }
}

/// Size of a key record as the kernel records it (compared first).
fn record_size(r: &Record) -> usize {
    match r {
        Record::Int { size, .. } => usize::from(*size),
        Record::Float { size, .. } => usize::from(*size),
        Record::Bytes { data, .. } => data.len(),
        Record::Stack { pcs, kind, .. } => {
            pcs.len() * 8
                + if matches!(kind, super::model::StackKind::User { .. }) {
                    8
                } else {
                    0
                }
        }
        Record::Sym(_) | Record::Mod(_) => 8,
        Record::USym { .. } | Record::UMod { .. } | Record::UAddr { .. } => 16,
        _ => 0,
    }
}

fn record_bytes(r: &Record) -> Vec<u8> {
    match r {
        Record::Bytes { data, .. } => data.clone(),
        Record::Stack { pcs, kind, .. } => {
            let mut v = Vec::new();
            if let super::model::StackKind::User { pid } = kind {
                v.extend_from_slice(&pid.to_le_bytes());
            }
            for pc in pcs {
                v.extend_from_slice(&pc.to_le_bytes());
            }
            v
        }
        _ => Vec::new(),
    }
}

/// libdtrace's per-record key comparison.
fn key_record_cmp(l: &Record, r: &Record) -> Ordering {
    let (ls, rs) = (record_size(l), record_size(r));
    if ls != rs {
        return ls.cmp(&rs);
    }
    match (l, r) {
        (
            Record::USym { pid: lp, pc: lc }
            | Record::UMod { pid: lp, pc: lc }
            | Record::UAddr { pid: lp, pc: lc },
            Record::USym { pid: rp, pc: rc }
            | Record::UMod { pid: rp, pc: rc }
            | Record::UAddr { pid: rp, pc: rc },
        ) => lp.cmp(rp).then(lc.cmp(rc)),
        (Record::Int { bits: lb, .. }, Record::Int { bits: rb, .. }) => lb.cmp(rb),
        (Record::Sym(a) | Record::Mod(a), Record::Sym(b) | Record::Mod(b)) => a.cmp(b),
        _ => record_bytes(l).cmp(&record_bytes(r)),
    }
}

/// Compares keys starting at column `keypos` and wrapping around (a
/// position past the last key means column 0, as in libdtrace).
pub fn key_cmp(l: &[Record], r: &[Record], keypos: usize) -> Ordering {
    if l.len() != r.len() {
        return l.len().cmp(&r.len());
    }
    let n = l.len();
    let keypos = if keypos >= n { 0 } else { keypos };
    for i in 0..n {
        let k = (i + keypos) % n;
        let o = key_record_cmp(&l[k], &r[k]);
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// The weight libdtrace gives each bin when ordering histogram values:
/// quantize bucket bounds; lquantize `base - 1` for the underflow bin and
/// `top + 1` for the overflow bin; llquantize `factor^low - 1` and the
/// overflow bound.
fn sort_weights(kind: AggKind) -> Vec<i64> {
    let mut w = histogram::bucket_values(kind);
    if let AggKind::Lquantize { .. } = kind {
        if let Some(last) = w.last_mut() {
            *last += 1;
        }
    }
    w
}

/// Σ bucket weight × count, exactly (libdtrace uses long double, whose
/// 64-bit mantissa already separates the suite's near-equal sums; 128-bit
/// integers are exact).
fn quantized_sum(kind: AggKind, words: &[i64]) -> i128 {
    sort_weights(kind)
        .iter()
        .zip(words)
        .map(|(&b, &c)| i128::from(b) * i128::from(c))
        .fold(0i128, i128::wrapping_add)
}

fn zero_bucket(kind: AggKind, words: &[i64]) -> i64 {
    let at = |i: usize| words.get(i).copied().unwrap_or(0);
    match kind {
        AggKind::Quantize => at(QUANTIZE_ZEROBUCKET),
        // libdtrace compares the first in-range bin of llquantize values.
        AggKind::Llquantize { .. } => at(1),
        _ => sort_weights(kind)
            .iter()
            .position(|&b| b == 0)
            .map(at)
            .unwrap_or(0),
    }
}

/// libdtrace's value comparison for two entries of (possibly) different kinds.
pub fn value_cmp(lk: AggKind, l: &[i64], rk: AggKind, r: &[i64]) -> Ordering {
    if lk.action_code() != rk.action_code() {
        return lk.action_code().cmp(&rk.action_code());
    }
    let first = |w: &[i64]| w.first().copied().unwrap_or(0);
    match lk {
        AggKind::Count | AggKind::Sum | AggKind::Min | AggKind::Max => first(l).cmp(&first(r)),
        AggKind::Avg => average(l, 1).cmp(&average(r, 1)),
        AggKind::Stddev => stddev(l, 1).cmp(&stddev(r, 1)),
        _ => {
            let (ls, rs) = (quantized_sum(lk, l), quantized_sum(rk, r));
            ls.cmp(&rs)
                .then_with(|| zero_bucket(lk, l).cmp(&zero_bucket(rk, r)))
        }
    }
}

/// A row to print: the key and one value per aggregation (one for a plain
/// printa, several for a joined one).
#[derive(Clone, Debug)]
pub struct Row<'a> {
    pub key: &'a [Record],
    pub values: Vec<(AggKind, std::borrow::Cow<'a, [i64]>, u64)>,
    /// Aggregation variable id of the (first) aggregation, for grouping.
    pub varid: u32,
}

fn zero_value(kind: AggKind) -> Vec<i64> {
    vec![0; kind.value_words().max(1)]
}

/// Rows of one aggregation in libdtrace's sorted order.
pub fn sorted_rows<'a>(aggs: &[&'a Aggregation], opts: &AggOptions) -> Vec<Row<'a>> {
    let mut rows: Vec<Row<'a>> = Vec::new();
    for agg in aggs {
        for e in &agg.entries {
            rows.push(Row {
                key: &e.key,
                values: vec![(
                    agg.kind,
                    std::borrow::Cow::Borrowed(&e.value[..]),
                    agg.normal,
                )],
                varid: agg.id,
            });
        }
    }
    sort_rows(&mut rows, 0, opts);
    rows
}

/// Rows of a multi-aggregation printa: the union of keys, each with every
/// aggregation's value (zero when the key is absent), sorted by the value
/// of aggregation `aggsortpos` (or by key with `aggsortkey`).
pub fn joined_rows<'a>(aggs: &[&'a Aggregation], opts: &AggOptions) -> Vec<Row<'a>> {
    let mut keys: Vec<&'a [Record]> = Vec::new();
    for agg in aggs {
        for e in &agg.entries {
            if !keys.iter().any(|k| *k == &e.key[..]) {
                keys.push(&e.key);
            }
        }
    }
    let mut rows: Vec<Row<'a>> = keys
        .into_iter()
        .map(|key| Row {
            key,
            values: aggs
                .iter()
                .map(|agg| {
                    let v = agg
                        .entries
                        .iter()
                        .find(|e| e.key[..] == *key)
                        .map(|e: &'a AggEntry| std::borrow::Cow::Borrowed(&e.value[..]))
                        .unwrap_or_else(|| std::borrow::Cow::Owned(zero_value(agg.kind)));
                    (agg.kind, v, agg.normal)
                })
                .collect(),
            varid: aggs.first().map(|a| a.id).unwrap_or(0),
        })
        .collect();
    let pos = opts.sortpos.min(aggs.len().saturating_sub(1));
    sort_rows(&mut rows, pos, opts);
    rows
}

fn sort_rows(rows: &mut [Row<'_>], pos: usize, opts: &AggOptions) {
    rows.sort_by(|a, b| {
        let var = a.varid.cmp(&b.varid);
        let key = || key_cmp(a.key, b.key, opts.sortkeypos);
        let val = || match (a.values.get(pos), b.values.get(pos)) {
            (Some((lk, lv, _)), Some((rk, rv, _))) => value_cmp(*lk, lv, *rk, rv),
            _ => Ordering::Equal,
        };
        let o = if opts.sortkey {
            var.then_with(key)
        } else {
            var.then_with(val).then_with(key)
        };
        if opts.sortrev {
            o.reverse()
        } else {
            o
        }
    });
}

/// Prints one key record as the default printa does.
pub fn print_key(
    out: &mut Vec<u8>,
    r: &Record,
    sym: &dyn Symbolizer,
    stackindent: usize,
    opts: &AggOptions,
) {
    let w50 = Spec::left(50);
    match r {
        Record::Int { size, bits, .. } => {
            let (value, width) = match size {
                8 => (*bits as i64, 16),
                4 => (i64::from(*bits as u32 as i32), 8),
                2 => (i64::from(*bits as u16), 5),
                _ => (i64::from(*bits as u8), 3),
            };
            out.push(b' ');
            cfmt::fmt_signed(out, value, &Spec::right(width));
        }
        Record::Bytes { data, force_raw } => {
            trace::print_bytes(out, data, -50, false, *force_raw || opts.rawbytes)
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
            cfmt::pad(out, stack::kernel_sym_text(sym, *pc).as_bytes(), &w50);
        }
        Record::Mod(pc) => {
            out.extend_from_slice(b"  ");
            cfmt::pad(out, stack::kernel_mod_text(sym, *pc).as_bytes(), &w50);
        }
        Record::USym { pid, pc } => {
            out.extend_from_slice(b"  ");
            cfmt::pad(out, stack::user_sym_text(sym, *pid, *pc).as_bytes(), &w50);
        }
        Record::UAddr { pid, pc } => {
            out.extend_from_slice(b"  ");
            cfmt::pad(out, stack::user_addr_text(sym, *pid, *pc).as_bytes(), &w50);
        }
        Record::UMod { pid, pc } => {
            out.extend_from_slice(b"  ");
            cfmt::pad(out, stack::user_mod_text(sym, *pid, *pc).as_bytes(), &w50);
        }
        Record::Float { value, .. } => {
            out.push(b' ');
            cfmt::fmt_float(out, *value, b'f', &Spec::right(16));
        }
        Record::Printf { .. } | Record::Exit(_) => {}
    }
}

/// Prints one aggregation value as the default printa does.
pub fn print_value(
    out: &mut Vec<u8>,
    kind: AggKind,
    words: &[i64],
    normal: u64,
    opts: &AggOptions,
) {
    let normal = normal.max(1);
    let first = words.first().copied().unwrap_or(0);
    match kind {
        AggKind::Count | AggKind::Sum | AggKind::Min | AggKind::Max => {
            out.push(b' ');
            // libdtrace divides in unsigned arithmetic here.
            cfmt::fmt_signed(out, ((first as u64) / normal) as i64, &Spec::right(16));
        }
        AggKind::Avg => {
            out.push(b' ');
            cfmt::fmt_signed(out, average(words, normal), &Spec::right(16));
        }
        AggKind::Stddev => {
            out.push(b' ');
            cfmt::fmt_unsigned(
                out,
                stddev(words, normal),
                cfmt::Radix::Dec,
                &Spec::right(16),
            );
        }
        _ => histogram::print_histogram(out, kind, words, normal, opts.hist),
    }
}

/// Default layout of one row: keys, values, newline.
pub fn print_row(
    out: &mut Vec<u8>,
    row: &Row<'_>,
    sym: &dyn Symbolizer,
    stackindent: usize,
    opts: &AggOptions,
) {
    for k in row.key {
        print_key(out, k, sym, stackindent, opts);
    }
    for (kind, words, normal) in &row.values {
        print_value(out, *kind, words, *normal, opts);
    }
    out.push(b'\n');
}

/// Which packed view (if any) applies to a row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Default,
    Hist,
    Pack,
}

fn view_of(row: &Row<'_>, opts: &AggOptions) -> View {
    let [(kind, _, _)] = row.values.as_slice() else {
        return View::Default;
    };
    match kind {
        AggKind::Count | AggKind::Sum if opts.agghist => View::Hist,
        AggKind::Quantize | AggKind::Lquantize { .. } if opts.aggpack => View::Pack,
        _ => View::Default,
    }
}

/// Prints rows in the default layout, switching to the agghist / aggpack
/// views (one header per aggregation variable) when those options apply.
pub fn print_rows(
    out: &mut Vec<u8>,
    rows: &[Row<'_>],
    sym: &dyn Symbolizer,
    stackindent: usize,
    opts: &AggOptions,
) {
    let mut header_for: Option<u32> = None;
    for row in rows {
        let view = view_of(row, opts);
        if view == View::Default {
            print_row(out, row, sym, stackindent, opts);
            continue;
        }
        let group: Vec<&Row<'_>> = rows.iter().filter(|r| r.varid == row.varid).collect();
        let (kind, words, normal) = &row.values[0];
        if header_for != Some(row.varid) {
            let width = pack::key_width(row.key);
            match view {
                View::Hist => pack::print_hist_header(out, width),
                _ => {
                    let all: Vec<&[i64]> = group.iter().map(|r| &*r.values[0].1).collect();
                    pack::print_pack_header(out, *kind, width, pack::pack_range(*kind, &all));
                }
            }
            header_for = Some(row.varid);
        }
        for k in row.key {
            pack::print_packed_key(out, k, sym, stackindent);
        }
        match view {
            View::Hist => {
                let vals: Vec<i64> = group
                    .iter()
                    .map(|r| r.values[0].1.first().copied().unwrap_or(0))
                    .collect();
                let scale = pack::hist_scale(&vals, opts.hist);
                pack::print_hist_value(
                    out,
                    words.first().copied().unwrap_or(0),
                    *normal,
                    scale,
                    opts.hist,
                );
            }
            _ => {
                let all: Vec<&[i64]> = group.iter().map(|r| &*r.values[0].1).collect();
                pack::print_pack_value(out, *kind, words, pack::pack_range(*kind, &all), opts.hist);
            }
        }
    }
}

/// Formatted printa: the format is applied to every row; keys are the
/// arguments and `%@` conversions take the aggregation values in order.
pub fn print_formatted(
    out: &mut Vec<u8>,
    format: &Format,
    rows: &[Row<'_>],
    ctx: &RenderCtx<'_>,
) -> Result<(), String> {
    for row in rows {
        let aggs: Vec<AggValueRef<'_>> = row
            .values
            .iter()
            .map(|(kind, words, normal)| AggValueRef {
                kind: *kind,
                words,
                normal: *normal,
            })
            .collect();
        // libdtrace passes a representative first element when joining.
        let mut list = Vec::with_capacity(aggs.len() + 1);
        if aggs.len() > 1 {
            list.push(aggs[0]);
        }
        list.extend(aggs);
        printf::render(out, format, row.key, &list, ctx)?;
    }
    Ok(())
}

/// Total count of a histogram (used by folded output for histogram values).
pub fn histogram_total(words: &[i64]) -> i64 {
    words.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(kind: AggKind, entries: Vec<(Vec<Record>, Vec<i64>)>) -> Aggregation {
        Aggregation {
            id: 1,
            name: "a".into(),
            kind,
            normal: 1,
            entries: entries
                .into_iter()
                .map(|(key, value)| AggEntry { key, value })
                .collect(),
        }
    }

    #[test]
    fn stddev_matches_libdtrace() {
        // stddev(10), stddev(20): count 2, sum 30, sumsq 500 -> sqrt(250-225)=5
        assert_eq!(stddev(&[2, 30, 500, 0], 1), 5);
        assert_eq!(stddev(&[2, -30, 500, 0], 1), 5);
        assert_eq!(average(&[2, -900], 1), -450);
    }

    #[test]
    fn default_sort_by_value_then_key() {
        let k = |v| vec![Record::int(4, v, true)];
        let a = agg(
            AggKind::Count,
            vec![(k(3), vec![5]), (k(1), vec![5]), (k(2), vec![1])],
        );
        let rows = sorted_rows(&[&a], &AggOptions::default());
        let keys: Vec<i64> = rows.iter().map(|r| r.key[0].as_i64().unwrap()).collect();
        assert_eq!(keys, vec![2, 1, 3]);
        let rev = sorted_rows(
            &[&a],
            &AggOptions {
                sortrev: true,
                ..AggOptions::default()
            },
        );
        let keys: Vec<i64> = rev.iter().map(|r| r.key[0].as_i64().unwrap()).collect();
        assert_eq!(keys, vec![3, 1, 2]);
        let bykey = sorted_rows(
            &[&a],
            &AggOptions {
                sortkey: true,
                ..AggOptions::default()
            },
        );
        let keys: Vec<i64> = bykey.iter().map(|r| r.key[0].as_i64().unwrap()).collect();
        assert_eq!(keys, vec![1, 2, 3]);
    }

    #[test]
    fn sortkeypos_rotates_columns() {
        let k = |a, b| vec![Record::int(4, a, true), Record::int(4, b, true)];
        let a = agg(AggKind::Count, vec![(k(1, 9), vec![1]), (k(2, 8), vec![1])]);
        let opts = AggOptions {
            sortkey: true,
            sortkeypos: 1,
            ..AggOptions::default()
        };
        let rows = sorted_rows(&[&a], &opts);
        assert_eq!(rows[0].key[1].as_i64(), Some(8));
    }

    #[test]
    fn default_row_layout() {
        let a = agg(
            AggKind::Count,
            vec![(vec![Record::string("foo", 8)], vec![3])],
        );
        let rows = sorted_rows(&[&a], &AggOptions::default());
        let mut out = Vec::new();
        print_row(
            &mut out,
            &rows[0],
            &stack::NoSymbols,
            14,
            &AggOptions::default(),
        );
        let expect = format!("  {:<50} {:>16}\n", "foo", 3);
        assert_eq!(String::from_utf8(out).unwrap(), expect);
    }

    #[test]
    fn joined_rows_fill_missing_with_zero() {
        let k = |v| vec![Record::int(4, v, true)];
        let a = agg(AggKind::Count, vec![(k(1), vec![2])]);
        let mut b = agg(AggKind::Sum, vec![(k(2), vec![7])]);
        b.id = 2;
        let rows = joined_rows(&[&a, &b], &AggOptions::default());
        assert_eq!(rows.len(), 2);
        // sorted by @a's value: key 2 (count 0) first.
        assert_eq!(rows[0].key[0].as_i64(), Some(2));
        assert_eq!(&*rows[0].values[0].1, &[0]);
        assert_eq!(&*rows[0].values[1].1, &[7]);
    }
}
