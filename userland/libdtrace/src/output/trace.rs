//! `trace()` formatting: integers by record size (not by signedness, as
//! FreeBSD's libdtrace does) and the byte printer used for strings, structs,
//! arrays, `tracemem()` and string aggregation keys (string heuristic, else
//! the hex dump). Not probe context.

use super::cfmt::{self, Spec};
use super::model::sign_extend;

/// `trace()` of a 1/2/4/8-byte record: non-quiet ` %16lld` / ` %8d` /
/// ` %5d` / ` %3d`, quiet `%lld` / `%d`. 8 and 4 bytes print signed; 2 and 1
/// byte print the unsigned value.
pub fn trace_int(out: &mut Vec<u8>, size: u8, bits: u64, quiet: bool) {
    let (value, width) = match size {
        8 => (bits as i64, 16),
        4 => (sign_extend(4, bits), 8),
        2 => (i64::from(bits as u16), 5),
        _ => (i64::from(bits as u8), 3),
    };
    if quiet {
        out.extend_from_slice(value.to_string().as_bytes());
    } else {
        out.push(b' ');
        cfmt::fmt_signed(out, value, &Spec::right(width));
    }
}

/// Oracle dtrace-utils' `trace()` of integers (the conformance suite's
/// expectation, output-formats.md §12): width and signedness by record size
/// **and** D type — signed 8 ` %19ld`, unsigned 8 ` %20lu`, 4 ` %10d`/` %10u`,
/// 2 ` %5hd`/` %5hu`, 1 ` %3hhd`/` %3hhu`; quiet prints the bare value.
pub fn trace_int_oracle(out: &mut Vec<u8>, size: u8, bits: u64, signed: bool, quiet: bool) {
    let width = match (size, signed) {
        (8, true) => 19,
        (8, false) => 20,
        (4, _) => 10,
        (2, _) => 5,
        _ => 3,
    };
    let text = if signed {
        sign_extend(size, bits).to_string()
    } else {
        bits.to_string()
    };
    if quiet {
        out.extend_from_slice(text.as_bytes());
    } else {
        out.push(b' ');
        cfmt::pad(out, text.as_bytes(), &Spec::right(width));
    }
}

/// Whether libdtrace's heuristic treats the byte as printable text
/// (`isprint`, `isspace`, backspace or bell in the C locale).
fn printable(c: u8) -> bool {
    (0x20..=0x7e).contains(&c) || matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x08 | 0x07)
}

/// The byte printer (`dt_print_bytes`). `width` is −33 for `trace()` and
/// −50 for aggregation keys (negative = left-justified). `raw` forces the
/// hex dump (the `rawbytes` option, `tracemem()`).
pub fn print_bytes(out: &mut Vec<u8>, data: &[u8], width: i64, quiet: bool, raw: bool) {
    if data.is_empty() {
        return;
    }
    if !raw {
        let first_bad = data.iter().position(|&c| !printable(c));
        match first_bad {
            None => {
                // All printable, no terminating NUL: a string (never quiet),
                // always left-justified (`%-*s`).
                out.extend_from_slice(b"  ");
                cfmt::pad(
                    out,
                    data,
                    &Spec::left(usize::try_from(width.unsigned_abs()).unwrap_or(0)),
                );
                return;
            }
            Some(i) if data[i] == 0 && i > 0 && data[i..].iter().all(|&c| c == 0) => {
                if quiet {
                    out.extend_from_slice(&data[..i]);
                } else {
                    out.push(b' ');
                    if width < 0 {
                        out.push(b' ');
                    }
                    cfmt::pad(out, &data[..i], &Spec::star(width));
                }
                return;
            }
            Some(_) => {}
        }
    }
    hex_dump(out, data);
}

/// The hex dump layout: newline, column header, then 16 bytes per row with
/// an ASCII column.
pub fn hex_dump(out: &mut Vec<u8>, data: &[u8]) {
    const MARGIN: usize = 5;
    out.push(b'\n');
    out.resize(out.len() + MARGIN + 6, b' ');
    for digit in b"0123456789abcdef" {
        out.extend_from_slice(b"  ");
        out.push(*digit);
    }
    out.extend_from_slice(b"  0123456789abcdef\n");
    for (row, chunk) in data.chunks(16).enumerate() {
        out.resize(out.len() + MARGIN, b' ');
        out.extend_from_slice(format!("{:5x}:", row * 16).as_bytes());
        for b in chunk {
            out.extend_from_slice(format!(" {b:02x}").as_bytes());
        }
        for _ in chunk.len()..16 {
            out.extend_from_slice(b"   ");
        }
        out.extend_from_slice(b"  ");
        for &b in chunk {
            out.push(if !(b' '..=b'~').contains(&b) { b'.' } else { b });
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn ints_by_size() {
        assert_eq!(
            s(|o| trace_int(o, 8, (-5i64) as u64, false)),
            "               -5"
        );
        assert_eq!(s(|o| trace_int(o, 4, 0xffff_ffff, false)), "       -1");
        assert_eq!(s(|o| trace_int(o, 2, 0xffff, false)), " 65535");
        assert_eq!(s(|o| trace_int(o, 1, 0xff, false)), " 255");
        assert_eq!(s(|o| trace_int(o, 1, 0xff, true)), "255");
        assert_eq!(s(|o| trace_int(o, 4, 0xffff_ffff, true)), "-1");
    }

    #[test]
    fn oracle_ints_by_size_and_sign() {
        assert_eq!(s(|o| trace_int_oracle(o, 1, 0xff, true, false)), "  -1");
        assert_eq!(s(|o| trace_int_oracle(o, 2, 0xffff, true, false)), "    -1");
        assert_eq!(
            s(|o| trace_int_oracle(o, 4, 0xffff_ffff, true, false)),
            format!(" {:>10}", -1)
        );
        assert_eq!(
            s(|o| trace_int_oracle(o, 8, 0, true, false)),
            format!(" {:>19}", 0)
        );
        assert_eq!(
            s(|o| trace_int_oracle(o, 8, u64::MAX, false, true)),
            "18446744073709551615"
        );
        assert_eq!(s(|o| trace_int_oracle(o, 8, u64::MAX, true, true)), "-1");
    }

    #[test]
    fn string_heuristics() {
        assert_eq!(
            s(|o| print_bytes(o, b"hi\0\0", -33, false, false)),
            format!("  hi{}", " ".repeat(31))
        );
        assert_eq!(s(|o| print_bytes(o, b"hi\0\0", -33, true, false)), "hi");
        // All printable without NUL: padded even when quiet.
        assert_eq!(s(|o| print_bytes(o, b"abc", -5, true, false)), "  abc  ");
        // Empty string (first byte NUL) and embedded garbage: hex dump.
        assert!(s(|o| print_bytes(o, b"\0\0", -33, false, false)).starts_with("\n           "));
        assert!(s(|o| print_bytes(o, b"a\0b\0", -33, false, false)).contains("61 00 62 00"));
    }

    #[test]
    fn hex_dump_layout() {
        let data: Vec<u8> = (0x41..0x41 + 18).collect();
        let got = s(|o| hex_dump(o, &data));
        let expect = concat!(
            "\n",
            "             0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f  0123456789abcdef\n",
            "         0: 41 42 43 44 45 46 47 48 49 4a 4b 4c 4d 4e 4f 50  ABCDEFGHIJKLMNOP\n",
            "        10: 51 52                                            QR\n",
        );
        assert_eq!(got, expect);
    }
}
