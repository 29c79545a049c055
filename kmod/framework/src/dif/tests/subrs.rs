//! Subroutines, with their edge cases.

use super::*;
use crate::dif::abi::{subr, AF_INET, AF_INET6};
use crate::dif::FaultCode;

#[derive(Clone, Copy)]
enum A<'s> {
    S(&'s str),
    V(u64),
}

fn program(id: u16, args: &[A<'_>]) -> Asm {
    let mut asm = Asm::new();
    for (i, a) in args.iter().enumerate() {
        let r = i as u8 + 1;
        match a {
            A::S(s) => asm.sets(r, s),
            A::V(v) => asm.set(r, *v),
        };
    }
    asm.flush();
    for (i, a) in args.iter().enumerate() {
        let r = i as u8 + 1;
        match a {
            A::S(_) => asm.pushs(r),
            A::V(_) => asm.pushv(r),
        };
    }
    asm.call(id, 7).ret(7);
    asm
}

fn call(id: u16, args: &[A<'_>]) -> Result<u64, Fault> {
    eval(&program(id, args))
}

/// A string result; `None` for NULL.
fn call_str(id: u16, args: &[A<'_>]) -> Option<String> {
    let mut asm = program(id, args);
    asm.returns(string_type(256));
    let d = asm.difo();
    match Harness::new(&[&d]).run_full(&d) {
        (Ok(0), _) => None,
        (Ok(_), s) => s,
        (Err(f), _) => panic!("fault {f:?}"),
    }
}

fn s(id: u16, args: &[A<'_>]) -> String {
    call_str(id, args).unwrap_or_else(|| panic!("NULL result"))
}

use A::{S, V};

#[test]
fn strlen_respects_strsize() {
    assert_eq!(call(subr::STRLEN, &[S("hello")]).unwrap(), 5);
    assert_eq!(call(subr::STRLEN, &[S("")]).unwrap(), 0);
    let d = program(subr::STRLEN, &[S("abcdefgh")]).difo();
    let mut h = Harness::new(&[&d]);
    h.strsize = 4;
    assert_eq!(h.ok(&d), 4);
    // A kernel string through the fault-checked path.
    assert_eq!(call(subr::STRLEN, &[V(KMEM + 0x80)]).unwrap(), 6);
    assert_eq!(
        call(subr::STRLEN, &[V(0x10)]).unwrap_err().code,
        FaultCode::BadAddr
    );
}

#[test]
fn strjoin_and_truncation() {
    assert_eq!(s(subr::STRJOIN, &[S("foo"), S("bar")]), "foobar");
    assert_eq!(s(subr::STRJOIN, &[S(""), S("")]), "");
    let d = program(subr::STRJOIN, &[S("abc"), S("defg")])
        .returns(string_type(8))
        .difo();
    let mut h = Harness::new(&[&d]);
    h.strsize = 8;
    assert_eq!(h.string(&d), "abcdefg");
    let d = program(subr::STRJOIN, &[S("abcd"), S("efgh")]).difo();
    let mut h = Harness::new(&[&d]);
    h.strsize = 8;
    assert_eq!(h.run(&d).unwrap_err().code, FaultCode::NoScratch);
}

#[test]
fn lltostr_bases() {
    assert_eq!(s(subr::LLTOSTR, &[V((-123i64) as u64)]), "-123");
    assert_eq!(s(subr::LLTOSTR, &[V(0)]), "0");
    assert_eq!(
        s(subr::LLTOSTR, &[V(i64::MIN as u64)]),
        "-9223372036854775808"
    );
    assert_eq!(s(subr::LLTOSTR, &[V(255), V(16)]), "0xff");
    assert_eq!(s(subr::LLTOSTR, &[V(0), V(16)]), "0x0");
    assert_eq!(
        s(subr::LLTOSTR, &[V(u64::MAX), V(16)]),
        "0xffffffffffffffff"
    );
    assert_eq!(s(subr::LLTOSTR, &[V(8), V(8)]), "010");
    assert_eq!(s(subr::LLTOSTR, &[V(5), V(2)]), "101");
    assert_eq!(s(subr::LLTOSTR, &[V(35), V(36)]), "z");
    assert_eq!(s(subr::LLTOSTR, &[V(0), V(2)]), "0");
    assert_eq!(s(subr::LLTOSTR, &[V(1295), V(36)]), "zz");
}

#[test]
fn strtoll_bases() {
    let n = |args: &[A<'_>]| call(subr::STRTOLL, args).unwrap() as i64;
    assert_eq!(n(&[S("  -42")]), -42);
    assert_eq!(n(&[S("+7")]), 7);
    assert_eq!(n(&[S("12abc")]), 12);
    assert_eq!(n(&[S("0x1f"), V(16)]), 31);
    assert_eq!(n(&[S("1F"), V(16)]), 31);
    assert_eq!(n(&[S("0x"), V(16)]), 0);
    assert_eq!(n(&[S("101"), V(2)]), 5);
    assert_eq!(n(&[S("777"), V(8)]), 511);
    assert_eq!(n(&[S("z"), V(36)]), 35);
    assert_eq!(n(&[S("")]), 0);
    assert_eq!(n(&[S("9223372036854775807")]), i64::MAX);
    assert_eq!(
        call(subr::STRTOLL, &[S("1"), V(37)]).unwrap_err().code,
        FaultCode::IllOp
    );
    assert_eq!(
        call(subr::STRTOLL, &[S("1"), V(1)]).unwrap_err().code,
        FaultCode::IllOp
    );
}

#[test]
fn case_conversion() {
    assert_eq!(
        s(subr::TOUPPER, &[S("Hello, World! 9z")]),
        "HELLO, WORLD! 9Z"
    );
    assert_eq!(
        s(subr::TOLOWER, &[S("Hello, World! 9Z")]),
        "hello, world! 9z"
    );
    assert_eq!(s(subr::TOUPPER, &[S("")]), "");
}

#[test]
fn basename_and_dirname() {
    let cases = [
        ("/usr/bin/", "bin", "/usr"),
        ("/usr/bin/ls", "ls", "/usr/bin"),
        ("/", "/", "/"),
        ("///", "/", "/"),
        ("foo", "foo", "."),
        ("/foo", "foo", "/"),
        ("", ".", "."),
        ("//a//b//", "b", "//a"),
        ("a/b", "b", "a"),
    ];
    for (path, base, dir) in cases {
        assert_eq!(s(subr::BASENAME, &[S(path)]), base, "basename({path:?})");
        assert_eq!(s(subr::DIRNAME, &[S(path)]), dir, "dirname({path:?})");
    }
}

#[test]
fn cleanpath_cases() {
    let cases = [
        ("/a/b/../c", "/a/c"),
        ("/a/./b//c", "/a/b/c"),
        ("/a/..", "/"),
        ("/..", "/"),
        ("/a/b/..", "/a/"),
        ("/a/..b", "/a/..b"),
        ("/a/.b", "/a/.b"),
        ("/a/b/", "/a/b/"),
        ("a//b", "a/b"),
        ("/x/y/z/../../w", "/x/w"),
    ];
    for (path, want) in cases {
        assert_eq!(s(subr::CLEANPATH, &[S(path)]), want, "cleanpath({path:?})");
    }
}

#[test]
fn strchr_strrchr_strstr() {
    assert_eq!(s(subr::STRCHR, &[S("hello"), V(u64::from(b'l'))]), "llo");
    assert_eq!(s(subr::STRRCHR, &[S("hello"), V(u64::from(b'l'))]), "lo");
    assert_eq!(
        call_str(subr::STRCHR, &[S("hello"), V(u64::from(b'z'))]),
        None
    );
    assert_eq!(s(subr::STRSTR, &[S("hello world"), S("wor")]), "world");
    assert_eq!(call_str(subr::STRSTR, &[S("hello"), S("xyz")]), None);
    assert_eq!(s(subr::STRSTR, &[S(""), S("")]), "");
}

#[test]
fn index_and_rindex_positions() {
    let n = |id, args: &[A<'_>]| call(id, args).unwrap() as i64;
    assert_eq!(n(subr::INDEX, &[S("hello world"), S("o")]), 4);
    assert_eq!(n(subr::RINDEX, &[S("hello world"), S("o")]), 7);
    assert_eq!(n(subr::INDEX, &[S("hello world"), S("o"), V(5)]), 7);
    assert_eq!(n(subr::RINDEX, &[S("hello world"), S("o"), V(6)]), 4);
    assert_eq!(
        n(subr::INDEX, &[S("hello world"), S("o"), V((-5i64) as u64)]),
        4
    );
    assert_eq!(n(subr::INDEX, &[S("abc"), S("z")]), -1);
    assert_eq!(n(subr::RINDEX, &[S("abc"), S("z")]), -1);
    assert_eq!(n(subr::INDEX, &[S("abc"), S("")]), 0);
    assert_eq!(n(subr::INDEX, &[S("abc"), S(""), V(10)]), 3);
    assert_eq!(n(subr::INDEX, &[S("abc"), S("a"), V(10)]), -1);
    assert_eq!(n(subr::RINDEX, &[S("abc"), S(""), V((-1i64) as u64)]), 0);
    assert_eq!(n(subr::RINDEX, &[S("abc"), S("a"), V((-1i64) as u64)]), -1);
    assert_eq!(n(subr::RINDEX, &[S("abcabc"), S("abc"), V(100)]), 3);
    assert_eq!(n(subr::INDEX, &[S(""), S("")]), 0);
}

#[test]
fn substr_cases() {
    let sub = |args: &[A<'_>]| s(subr::SUBSTR, args);
    assert_eq!(sub(&[S("hello"), V(1)]), "ello");
    assert_eq!(sub(&[S("hello"), V((-3i64) as u64)]), "llo");
    assert_eq!(sub(&[S("hello"), V(1), V(3)]), "ell");
    assert_eq!(sub(&[S("hello"), V((-3i64) as u64), V(2)]), "ll");
    assert_eq!(sub(&[S("hello"), V(0), V((-2i64) as u64)]), "hel");
    assert_eq!(sub(&[S("hello"), V(10)]), "");
    assert_eq!(sub(&[S("hello"), V((-10i64) as u64), V(7)]), "he");
    assert_eq!(sub(&[S("hello"), V((-10i64) as u64), V(3)]), "");
    assert_eq!(sub(&[S("hello"), V(2), V(100)]), "llo");
    assert_eq!(sub(&[S("hello"), V(1), V((-10i64) as u64)]), "");
}

#[test]
fn strtok_keeps_state_between_calls() {
    // t1 = strtok("a,b,,c", ","); t2 = strtok(NULL, ","); ... joined with '|'.
    let mut asm = Asm::new();
    asm.sets(1, "a,b,,c").sets(2, ",");
    asm.flush().pushs(1).pushs(2).call(subr::STRTOK, 3); // "a"
    asm.flush().pushv(0).pushs(2).call(subr::STRTOK, 4); // "b"
    asm.flush().pushs(3).pushs(4).call(subr::STRJOIN, 3);
    asm.flush().pushv(0).pushs(2).call(subr::STRTOK, 4); // "c"
    asm.flush().pushs(3).pushs(4).call(subr::STRJOIN, 3);
    asm.flush().pushv(0).pushs(2).call(subr::STRTOK, 4); // NULL
    asm.r3(op::TST, 4, 0, 0);
    let t = asm.text.len() as u32 + 2;
    asm.i(crate::dif::bench_support::branch(op::BE, t))
        .ret(0)
        .ret(3);
    assert_eq!(eval_str(&mut asm), "abc");
    // Only delimiters: NULL.
    assert_eq!(call_str(subr::STRTOK, &[S(",,,"), S(",")]), None);
    assert_eq!(s(subr::STRTOK, &[S("  word  rest"), S(" ")]), "word");
}

#[test]
fn inet_formatting() {
    assert_eq!(s(subr::INET_NTOA, &[V(KMEM + 0xa0)]), "192.168.1.10");
    assert_eq!(
        s(subr::INET_NTOP, &[V(AF_INET), V(KMEM + 0xa0)]),
        "192.168.1.10"
    );
    let v6 = |bytes: [u8; 16], id: u16| {
        let mut k = bytes.to_vec();
        k.resize(32, 0);
        let p = platform_with(vec![(KMEM, k)], vec![]);
        let mut asm = if id == subr::INET_NTOP {
            program(id, &[V(AF_INET6), V(KMEM)])
        } else {
            program(id, &[V(KMEM)])
        };
        asm.returns(string_type(256));
        let d = asm.difo();
        Harness::with_platform(p, &[&d], 4096, 64).string(&d)
    };
    let ntop = |b| v6(b, subr::INET_NTOP);
    let fe80 = [
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x14, 0x4f, 0xff, 0xfe, 0x0b, 0x76, 0xc8,
    ];
    assert_eq!(ntop(fe80), "fe80::214:4fff:fe0b:76c8");
    let mut one = [0u8; 16];
    one[15] = 1;
    assert_eq!(ntop(one), "::1");
    assert_eq!(ntop([0u8; 16]), "::");
    let mut tail = [0u8; 16];
    tail[0] = 0x20;
    tail[1] = 0x01;
    assert_eq!(ntop(tail), "2001::");
    let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4];
    assert_eq!(ntop(mapped), "::ffff:1.2.3.4");
    assert_eq!(v6(mapped, subr::INET_NTOA6), "1.2.3.4");
    let compat = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1];
    assert_eq!(ntop(compat), "::10.0.0.1");
    // The first of two equally long zero runs is compressed.
    let two = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    // DTrace's byte scan lets the later of two equal runs win when it is
    // ended by a group whose high byte is zero (here 0x0001).
    assert_eq!(ntop(two), "2001:db8:0:0:1::1");
    let two_even = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0x10, 1, 0, 0, 0, 0, 0x10, 1,
    ];
    assert_eq!(ntop(two_even), "2001:db8::1001:0:0:1001");
    // A single zero group is compressed too.
    let single = [0, 1, 0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7];
    assert_eq!(ntop(single), "1::2:3:4:5:6:7");
    // IPv4-compatible with a leading zero octet: the C output, verbatim.
    let compat0 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2];
    assert_eq!(ntop(compat0), "0:0:0:0:0:0:0.0.1.2");
    let longer_later = [0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3];
    assert_eq!(ntop(longer_later), "1:0:0:2::3");
    assert_eq!(v6(fe80, subr::INET_NTOA6), "fe80::214:4fff:fe0b:76c8");
}

#[test]
fn byte_order() {
    assert_eq!(call(subr::HTONS, &[V(0x1234)]).unwrap(), 0x3412);
    assert_eq!(call(subr::NTOHS, &[V(0xff_1234)]).unwrap(), 0x3412);
    assert_eq!(call(subr::HTONL, &[V(0x1234_5678)]).unwrap(), 0x7856_3412);
    assert_eq!(call(subr::NTOHL, &[V(0x1234_5678)]).unwrap(), 0x7856_3412);
    assert_eq!(
        call(subr::HTONLL, &[V(0x0102_0304_0506_0708)]).unwrap(),
        0x0807_0605_0403_0201
    );
    assert_eq!(
        call(subr::NTOHLL, &[V(0x0102_0304_0506_0708)]).unwrap(),
        0x0807_0605_0403_0201
    );
}

#[test]
fn json_queries() {
    let doc = r#"{"a":{"b":[1,{"c":"x"}]},"n":-1.5e3,"t":true, "s":"q\"uote"}"#;
    let j = |path: &str| call_str(subr::JSON, &[S(doc), S(path)]);
    assert_eq!(j("a.b[1].c").as_deref(), Some("x"));
    assert_eq!(j("a.b[0]").as_deref(), Some("1"));
    assert_eq!(j("a.b").as_deref(), Some(r#"[1,{"c":"x"}]"#));
    assert_eq!(j("n").as_deref(), Some("-1.5e3"));
    assert_eq!(j("t").as_deref(), Some("true"));
    assert_eq!(j("s").as_deref(), Some(r#"q\"uote"#));
    assert_eq!(j("missing"), None);
    assert_eq!(j("a.b[5]"), None);
    assert_eq!(j("n.deeper"), None);
    assert_eq!(
        call_str(subr::JSON, &[S("[5,6]"), S("[1]")]).as_deref(),
        Some("6")
    );
    assert_eq!(call_str(subr::JSON, &[S("not json"), S("a")]), None);
    assert_eq!(call_str(subr::JSON, &[S(r#"{"a":tru}"#), S("a")]), None);
}

#[test]
fn copyin_family_alloca_bcopy() {
    // copyin(UMEM, 5): byte 4 is 'o'.
    let mut asm = program(subr::COPYIN, &[V(UMEM), V(5)]);
    asm.text.pop();
    asm.set(6, 4)
        .r3(op::ADD, 7, 6, 6)
        .r3(op::LDUB, 6, 0, 5)
        .ret(5);
    assert_eq!(eval(&asm).unwrap(), u64::from(b'o'));
    assert_eq!(s(subr::COPYINSTR, &[V(UMEM)]), "hello user");
    assert_eq!(s(subr::COPYINSTR, &[V(UMEM), V(5)]), "hello");
    // copyinto(UMEM + 64, 4, alloca(8)).
    let mut asm = Asm::new();
    asm.set(1, 8).flush().pushv(1).call(subr::ALLOCA, 2);
    asm.set(3, UMEM + 64)
        .set(4, 4)
        .flush()
        .pushv(3)
        .pushv(4)
        .pushv(2)
        .call(subr::COPYINTO, 5);
    asm.r3(op::LDUW, 2, 0, 6).ret(6);
    assert_eq!(eval(&asm).unwrap(), 0x4342_4140);
    // bcopy(kernel "kernel", alloca(8), 6) returned as a string.
    let mut asm = Asm::new();
    asm.set(1, 8).flush().pushv(1).call(subr::ALLOCA, 2);
    asm.set(3, KMEM + 0x80)
        .set(4, 6)
        .flush()
        .pushv(3)
        .pushv(2)
        .pushv(4)
        .call(subr::BCOPY, 5);
    asm.ret(2);
    assert_eq!(eval_str(&mut asm), "kernel");
}

#[test]
fn copyout_goes_through_the_hook() {
    let d = program(subr::COPYOUTSTR, &[S("out"), V(0x5000), V(64)]).difo();
    let mut h = Harness::new(&[&d]);
    h.ok(&d);
    assert_eq!(h.hooks.copied_out, vec![(0x5000, b"out\0".to_vec())]);
    let d = program(subr::COPYOUT, &[V(KMEM + 1), V(0x6000), V(3)]).difo();
    let mut h = Harness::new(&[&d]);
    h.ok(&d);
    assert_eq!(h.hooks.copied_out, vec![(0x6000, vec![1, 2, 3])]);
}

#[test]
fn memref_and_memstr() {
    let mut asm = program(subr::MEMREF, &[V(KMEM), V(16)]);
    asm.text.pop();
    asm.r3(op::LDX, 7, 0, 1)
        .set(3, 8)
        .r3(op::ADD, 7, 3, 3)
        .r3(op::LDX, 3, 0, 2);
    asm.r3(op::ADD, 1, 2, 1).ret(1);
    assert_eq!(eval(&asm).unwrap(), KMEM + 16);
    assert_eq!(
        s(subr::MEMSTR, &[V(KMEM + 0x90), V(u64::from(b' ')), V(6)]),
        "a b c"
    );
    assert_eq!(
        call(subr::MEMSTR, &[V(KMEM + 0x90), V(0), V(0)]).unwrap(),
        0
    );
}

#[test]
fn process_and_misc_subroutines() {
    assert_eq!(call(subr::PROGENYOF, &[V(77)]).unwrap(), 1);
    assert_eq!(call(subr::PROGENYOF, &[V(1)]).unwrap(), 1);
    assert_eq!(call(subr::PROGENYOF, &[V(5)]).unwrap(), 0);
    assert_eq!(call(subr::GETF, &[V(3)]).unwrap(), 0);
    // Two speculation() calls get successive ids from the core's hook.
    let mut asm = Asm::new();
    asm.call(subr::SPECULATION, 1)
        .call(subr::SPECULATION, 2)
        .set(3, 10)
        .r3(op::MUL, 1, 3, 1);
    asm.r3(op::ADD, 1, 2, 1).ret(1);
    assert_eq!(eval(&asm).unwrap(), 12);
    // FreeBSD dev_t: major and minor round-trip through makedev().
    let makedev = |maj: u64, min: u64| {
        ((maj & 0xffff_ff00) << 32)
            | ((maj & 0xff) << 8)
            | ((min & 0xff00) << 24)
            | (min & 0xffff_00ff)
    };
    let dev = makedev(0x1234_5678, 0x9abc_def0);
    assert_eq!(call(subr::GETMAJOR, &[V(dev)]).unwrap(), 0x1234_5678);
    assert_eq!(call(subr::GETMINOR, &[V(dev)]).unwrap(), 0x9abc_def0);
    assert_eq!(call(subr::GETMINOR, &[V(0x10)]).unwrap(), 0x10);
    assert_eq!(call(subr::GETMAJOR, &[V(0x10)]).unwrap(), 0);
    // rand() changes between calls.
    let mut asm = Asm::new();
    asm.call(subr::RAND, 1)
        .call(subr::RAND, 2)
        .r3(op::XOR, 1, 2, 3)
        .ret(3);
    assert_ne!(eval(&asm).unwrap(), 0);
    // Lock queries need a readable lock; the core's hook may answer.
    let d = program(subr::MUTEX_OWNED, &[V(KMEM)]).difo();
    let mut h = Harness::new(&[&d]);
    h.hooks.lock_override = Some(0x77);
    assert_eq!(h.ok(&d), 0x77);
    assert_eq!(
        call(subr::RW_READ_HELD, &[V(0x8)]).unwrap_err().code,
        FaultCode::BadAddr
    );
}

#[test]
fn lock_state_from_freebsd_layout() {
    const L: u64 = 0xffff_0000_0010_0000;
    let curthread = 0xffff_f800_0000_0100u64; // the harness's curthread
    let mut mem = vec![0u8; 128];
    let mut lock = |at: usize, class: u32, word: u64| {
        let flags = 0x0001_0000u32 | (class << 24);
        mem[at + 8..at + 12].copy_from_slice(&flags.to_ne_bytes());
        mem[at + 24..at + 32].copy_from_slice(&word.to_ne_bytes());
    };
    lock(0, 0, 0xffff_f800_0000_1000); // spin mutex held by another thread
    lock(32, 1, 0x4); // unowned sleep mutex
    lock(64, 2, 0x1 | (3 << 4)); // sx shared by three
    lock(96, 5, curthread | 0x4); // rw write-locked by us, writers waiting
    let p = platform_with(vec![(L, mem)], vec![]);
    let q = |id: u16, at: u64| {
        let d = program(id, &[V(L + at)]).difo();
        Harness::with_platform(p, &[&d], 4096, 64).ok(&d)
    };
    assert_eq!(q(subr::MUTEX_OWNED, 0), 1);
    assert_eq!(q(subr::MUTEX_OWNER, 0), 0xffff_f800_0000_1000);
    assert_eq!(q(subr::MUTEX_TYPE_SPIN, 0), 1);
    assert_eq!(q(subr::MUTEX_TYPE_ADAPTIVE, 0), 0);
    assert_eq!(q(subr::MUTEX_OWNED, 32), 0);
    assert_eq!(q(subr::MUTEX_OWNER, 32), 0);
    assert_eq!(q(subr::MUTEX_TYPE_ADAPTIVE, 32), 1);
    assert_eq!(q(subr::MUTEX_TYPE_SPIN, 32), 0);
    assert_eq!(q(subr::SX_SHARED_HELD, 64), 1);
    assert_eq!(q(subr::SX_EXCLUSIVE_HELD, 64), 0);
    assert_eq!(q(subr::SX_ISEXCLUSIVE, 64), 0);
    assert_eq!(q(subr::RW_WRITE_HELD, 96), 1);
    assert_eq!(q(subr::RW_READ_HELD, 96), 0);
    assert_eq!(q(subr::RW_ISWRITER, 96), 1);
    assert_eq!(q(subr::RW_ISWRITER, 0), 0);
}

#[test]
fn strtok_state_ends_with_the_firing() {
    let mut first = Asm::new();
    first
        .set(1, KMEM + 0xb0)
        .sets(2, " ")
        .flush()
        .pushs(1)
        .pushs(2)
        .call(subr::STRTOK, 3)
        .ret(3);
    let first = first.returns(string_type(256)).difo();
    let mut next = Asm::new();
    next.sets(2, " ")
        .flush()
        .pushv(0)
        .pushs(2)
        .call(subr::STRTOK, 3)
        .ret(3);
    let next = next.returns(string_type(256)).difo();
    let mut h = Harness::new(&[&first, &next]);
    assert_eq!(h.string(&first), "x");
    assert_eq!(h.string(&next), "y", "same firing: continues");
    h.string(&first);
    h.locals.begin_firing();
    assert_eq!(h.ok(&next), 0, "new firing: nothing to continue");
}
