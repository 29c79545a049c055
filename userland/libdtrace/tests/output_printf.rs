//! The printf engine, conversion by conversion: what libdtrace prints for
//! each conversion, flag, width, precision and length modifier it supports
//! (and the errors for those it does not).

use rdtrace_libdtrace::output::histogram::HistOptions;
use rdtrace_libdtrace::output::model::{Record, StackKind};
use rdtrace_libdtrace::output::printf::{sprintf, Format, RenderCtx};
use rdtrace_libdtrace::output::stack::{SymbolInfo, Symbolizer};

struct Syms;

impl Symbolizer for Syms {
    fn lookup_kernel(&self, pc: u64) -> Option<SymbolInfo> {
        (0xffff_1000..0xffff_1100)
            .contains(&pc)
            .then(|| SymbolInfo {
                object: "kernel".into(),
                symbol: Some(("sys_read".into(), 0xffff_1000)),
            })
    }
    fn lookup_user(&self, pid: u64, pc: u64) -> Option<SymbolInfo> {
        (pid == 42 && (0x1000..0x2000).contains(&pc)).then(|| SymbolInfo {
            object: "/lib/libc.so.7".into(),
            symbol: Some(("_read".into(), 0x1000)),
        })
    }
}

fn ctx() -> RenderCtx<'static> {
    RenderCtx {
        symbols: &Syms,
        stackindent: 14,
        target_pid: 42,
        hist: HistOptions::default(),
    }
}

fn p(fmt: &str, args: Vec<Record>) -> String {
    String::from_utf8(sprintf(fmt, &args, &ctx()).unwrap()).unwrap()
}

fn i4(v: i64) -> Record {
    Record::int(4, v, true)
}
fn u4(v: i64) -> Record {
    Record::int(4, v, false)
}
fn i8_(v: i64) -> Record {
    Record::int(8, v, true)
}
fn s(text: &str) -> Record {
    Record::string(text, 32)
}

#[test]
fn integer_conversions() {
    assert_eq!(p("%d", vec![i4(-5)]), "-5");
    assert_eq!(p("%d", vec![u4(-1)]), "4294967295");
    assert_eq!(p("%d", vec![i8_(-1)]), "-1");
    assert_eq!(
        p("%d", vec![Record::int(8, -1, false)]),
        "18446744073709551615"
    );
    // %d loads 1/2-byte values unsigned; %i sign-extends them.
    assert_eq!(p("%d", vec![Record::int(1, -1, true)]), "255");
    assert_eq!(p("%i", vec![Record::int(1, -1, true)]), "-1");
    assert_eq!(p("%u", vec![i4(-1)]), "4294967295");
    assert_eq!(p("%o %#o", vec![i4(8), i4(8)]), "10 010");
    assert_eq!(p("%x %X", vec![i4(255), i4(255)]), "ff FF");
    assert_eq!(p("%x", vec![i4(-1)]), "ffffffff");
    assert_eq!(p("%x", vec![i8_(-1)]), "ffffffffffffffff");
    assert_eq!(p("%#x", vec![i4(0)]), "0");
    assert_eq!(p("%c%c", vec![i4(65), Record::int(1, 66, true)]), "AB");
    assert_eq!(p("%3c|", vec![i4(65)]), "  A|");
}

#[test]
fn small_string_record_prints_as_string() {
    // Under -x strsize=4 a string record is 4 bytes and decodes as an integer; %s still prints
    // its bytes up to the first NUL.
    let hel = i64::from(u32::from_le_bytes(*b"hel\0"));
    assert_eq!(p("%s|", vec![Record::int(4, hel, false)]), "hel|");
    let full = i64::from_le_bytes(*b"abcdefgh");
    assert_eq!(p("%s|", vec![Record::int(8, full, false)]), "abcdefgh|");
}

#[test]
fn length_modifiers() {
    assert_eq!(p("%hd", vec![Record::int(2, -1, true)]), "-1");
    assert_eq!(p("%hu", vec![Record::int(2, -1, true)]), "65535");
    assert_eq!(
        p("%ld %lu", vec![i8_(-2), i8_(-2)]),
        "-2 18446744073709551614"
    );
    assert_eq!(p("%lld %llx", vec![i8_(-2), i8_(255)]), "-2 ff");
    assert_eq!(p("%lx %lX", vec![i8_(0xabc), i8_(0xabc)]), "abc ABC");
    // libdtrace has no hh, j, z or t modifiers.
    assert_eq!(
        Format::parse("%hhd").unwrap_err(),
        "format conversion #1 is undefined: %hhd"
    );
    assert_eq!(
        Format::parse("%zd").unwrap_err(),
        "format conversion #1 is undefined: %z"
    );
    assert_eq!(
        Format::parse("%jd").unwrap_err(),
        "format conversion #1 is undefined: %j"
    );
}

#[test]
fn flags_widths_precision() {
    assert_eq!(
        p("[%5d][%-5d][%05d]", vec![i4(42), i4(42), i4(42)]),
        "[   42][42   ][00042]"
    );
    assert_eq!(
        p("[%+d][% d][%+d]", vec![i4(3), i4(3), i4(-3)]),
        "[+3][ 3][-3]"
    );
    assert_eq!(p("[%.3d][%8.3d]", vec![i4(7), i4(7)]), "[007][     007]");
    assert_eq!(
        p("[%*d][%-*d]", vec![i4(4), i4(1), i4(4), i4(1)]),
        "[   1][1   ]"
    );
    // A negative `*` width left-justifies.
    assert_eq!(p("[%*d]", vec![i4(-4), i4(1)]), "[1   ]");
    assert_eq!(p("[%.*s]", vec![i4(2), s("abcdef")]), "[ab]");
    assert_eq!(p("[%?p]", vec![i8_(0x1234)]), format!("[{:>16}]", "1234"));
    // libdtrace drops a zero precision entirely.
    assert_eq!(
        p(
            "%.0f",
            vec![Record::Float {
                size: 8,
                value: 1.25
            }]
        ),
        "1.250000"
    );
    assert_eq!(p("%%|%%", vec![]), "%|%");
}

#[test]
fn pointer_and_string_conversions() {
    assert_eq!(p("%p", vec![i8_(0xffff_1234)]), "ffff1234");
    assert_eq!(p("%#p", vec![i8_(0x10)]), "0x10");
    assert_eq!(
        p(
            "[%s][%-6s][%6s][%.2s]",
            vec![s("abc"), s("abc"), s("abc"), s("abc")]
        ),
        "[abc][abc   ][   abc][ab]"
    );
    // %S escapes every byte of the record, NULs included.
    let rec = Record::Bytes {
        data: b"a\tb\"\\\x01\0".to_vec(),
        force_raw: false,
    };
    assert_eq!(p("%S", vec![rec]), "a\\tb\\\"\\\\\\001\\0");
    assert_eq!(p("%C", vec![i4(10)]), "\\n");
}

#[test]
fn wide_conversions() {
    assert_eq!(p("%wc%lc", vec![i4(0x263a), i4(0x41)]), "\u{263a}A");
    let mut data = Vec::new();
    for c in "h\u{e9}!".chars() {
        data.extend_from_slice(&(c as u32).to_le_bytes());
    }
    data.extend_from_slice(&[0; 8]);
    assert_eq!(
        p(
            "%ws|%ls",
            vec![
                Record::Bytes {
                    data: data.clone(),
                    force_raw: false
                },
                Record::Bytes {
                    data,
                    force_raw: false
                }
            ]
        ),
        "h\u{e9}!|h\u{e9}!"
    );
}

#[test]
fn float_conversions() {
    let f = |v| Record::Float { size: 8, value: v };
    assert_eq!(
        p("%e|%E", vec![f(3.5), f(3.5)]),
        "3.500000e+00|3.500000E+00"
    );
    assert_eq!(
        p("%f|%.2f|%8.3f", vec![f(3.5), f(2.345), f(-1.0)]),
        "3.500000|2.35|  -1.000"
    );
    assert_eq!(
        p("%g|%G|%g", vec![f(3.5), f(1e-10), f(1234567.0)]),
        "3.5|1E-10|1.23457e+06"
    );
    assert_eq!(
        p(
            "%Lf",
            vec![Record::Float {
                size: 16,
                value: 0.5
            }]
        ),
        "0.500000"
    );
}

#[test]
fn symbolic_conversions() {
    assert_eq!(p("%a", vec![i8_(0xffff_1010)]), "kernel`sys_read+0x10");
    assert_eq!(p("%a", vec![i8_(0xffff_1000)]), "kernel`sys_read");
    assert_eq!(
        p("[%25a]", vec![i8_(0xffff_1010)]),
        "[     kernel`sys_read+0x10]"
    );
    assert_eq!(p("%a", vec![i8_(0x5)]), "0x5");
    // %A of a plain integer uses $target (42 here).
    assert_eq!(p("%A", vec![i8_(0x1008)]), "libc.so.7`_read+0x8");
    assert_eq!(
        p("%A", vec![Record::UAddr { pid: 7, pc: 0x1008 }]),
        "0x1008"
    );
}

#[test]
fn stack_conversion() {
    let st = Record::Stack {
        kind: StackKind::Kernel,
        pcs: vec![0xffff_1010, 0],
        strtab: None,
    };
    assert_eq!(p("%k", vec![st.clone()]), "\nkernel`sys_read+0x10\n");
    // A left-justified width becomes the indentation.
    assert_eq!(p("%-4k", vec![st.clone()]), "\n    kernel`sys_read+0x10\n");
    // A right-justified width pads each frame.
    assert_eq!(p("%22k", vec![st]), "\n  kernel`sys_read+0x10\n");
}

#[test]
fn time_conversions() {
    std::env::set_var("TZ", "UTC");
    let ns = 1_662_348_992u64 * 1_000_000_000 + 5;
    assert_eq!(
        p("%Y", vec![Record::int(8, ns as i64, false)]),
        "2022 Sep  5 03:36:32"
    );
    assert_eq!(
        p("%T", vec![Record::int(8, ns as i64, false)]),
        "Mon, 05 Sep 2022 03:36:32 UTC"
    );
}

#[test]
fn parse_errors_use_libdtrace_wording() {
    assert_eq!(
        Format::parse("%").unwrap_err(),
        "format conversion #1 name expected before end of format string"
    );
    assert_eq!(
        Format::parse("a%5%").unwrap_err(),
        "format conversion #1 cannot be combined with other format flags: %%"
    );
    assert_eq!(
        Format::parse("%1$d").unwrap_err(),
        "format conversion #1 uses unsupported positional format (%n$)"
    );
    assert_eq!(
        Format::parse("%d %**d").unwrap_err(),
        "format conversion #2 has more than one '*' specified for the output width"
    );
    assert_eq!(
        Format::parse("%1.2.3d").unwrap_err(),
        "format conversion #1 has more than one '.' specified"
    );
    assert_eq!(
        Format::parse("%q").unwrap_err(),
        "format conversion #1 is undefined: %q"
    );
    assert_eq!(Format::parse("%*.*d %@d x").unwrap().arg_count(), 3);
}
