//! Malformed ioctl arguments and DOF sent to the real rdtrace.ko: each must
//! come back as an errno, with the module still working and nothing leaked
//! at unload. Every case runs in its own child process, so a module panic
//! (or a wild access) is caught and reported as that case's failure.

mod common;

use rdtrace_koharness::isolate::run_isolated;
use rdtrace_koharness::kernel::{devfs, malloc, uaccess::UserBuf};

const EFAULT: i32 = 14;
const EINVAL: i32 = 22;
const ENOTTY: i32 = 25;
const ESRCH: i32 = 3;
const ENOENT: i32 = 2;
const EBUSY: i32 = 16;

// DTRACEIOC_* values from abi-facts §1.3 (LP64, modern FreeBSD).
const PROVIDER: u64 = 0xc05c_7801;
const PROBEMATCH: u64 = 0xc184_7805;
const ENABLE: u64 = 0xc010_7806;
const EPROBE: u64 = 0x8038_7808;
const CONF: u64 = 0x4030_780a;
const STATUS: u64 = 0x4058_780b;
const GO: u64 = 0x4004_780c;
const STOP: u64 = 0xc004_780d;
const AGGDESC: u64 = 0x8008_780f;
const FORMAT: u64 = 0xc010_7810;
const BUFSNAP: u64 = 0x8008_7804;
/// `_IOWR('x', 99, 8 bytes)`: a command nobody defines.
const UNKNOWN: u64 = 0xc008_7863;

fn dof_header(loadsz: u64, secnum: u32, secoff: u64) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(&[0x7f, b'D', b'O', b'F']);
    h[4] = 2; // LP64
    h[5] = 1; // little-endian
    h[6] = 2; // DOF version
    h[7] = 2; // DIF version
    h[8] = 8;
    h[9] = 8;
    h[20..24].copy_from_slice(&64u32.to_le_bytes());
    h[24..28].copy_from_slice(&32u32.to_le_bytes());
    h[28..32].copy_from_slice(&secnum.to_le_bytes());
    h[32..40].copy_from_slice(&secoff.to_le_bytes());
    h[40..48].copy_from_slice(&loadsz.to_le_bytes());
    h[48..56].copy_from_slice(&loadsz.to_le_bytes());
    h
}

/// ENABLE with the DOF bytes at a user address.
fn enable(f: &devfs::DevFile, dof_addr: u64) -> i32 {
    let mut io = vec![0u8; 16];
    io[..8].copy_from_slice(&dof_addr.to_le_bytes());
    let arg = UserBuf::from_bytes(&io);
    f.ioctl(ENABLE, arg.addr())
}

fn enable_bytes(f: &devfs::DevFile, dof: &[u8]) -> i32 {
    let buf = UserBuf::from_bytes(dof);
    enable(f, buf.addr())
}

/// A pointer-to-pointer command whose descriptor is `desc`.
fn pp(f: &devfs::DevFile, cmd: u64, desc: &UserBuf) -> i32 {
    let len = ((cmd >> 16) & 0x1fff) as usize;
    let mut block = vec![0u8; len];
    block[..8].copy_from_slice(&desc.addr().to_le_bytes());
    let arg = UserBuf::from_bytes(&block);
    f.ioctl(cmd, arg.addr())
}

type Case = (&'static str, fn(&devfs::DevFile) -> (i32, Option<i32>));

/// (case, run) — run returns (errno, expected errno if FreeBSD fixes it).
const CASES: &[Case] = &[
    ("unknown-command", |f| {
        (f.ioctl(UNKNOWN, UserBuf::new(8).addr()), Some(ENOTTY))
    }),
    ("conf-unreadable-argument", |f| {
        (f.ioctl(CONF, 0x10), Some(EFAULT))
    }),
    // FreeBSD's DTRACEIOC_ENABLE (dtrace_ioctl.c) returns EINVAL whenever
    // dtrace_dof_copyin() fails, dropping its EFAULT/E2BIG; only illumos and
    // FreeBSD's helper ioctl pass those through. Hence EINVAL for the three
    // copy-in failures below.
    ("enable-dof-unreadable", |f| {
        (enable(f, 0x1000), Some(EINVAL))
    }),
    ("enable-dof-all-zero", |f| {
        (enable_bytes(f, &[0u8; 64]), Some(EINVAL))
    }),
    ("enable-dof-bad-magic", |f| {
        let mut d = dof_header(64, 0, 64);
        d[1] = b'X';
        (enable_bytes(f, &d), Some(EINVAL))
    }),
    ("enable-dof-too-big", |f| {
        (enable_bytes(f, &dof_header(9 << 20, 0, 64)), Some(EINVAL))
    }),
    ("enable-dof-loadsz-past-buffer", |f| {
        (enable_bytes(f, &dof_header(4096, 0, 64)), Some(EINVAL))
    }),
    ("enable-dof-sections-out-of-range", |f| {
        let mut d = dof_header(128, 1000, 64);
        d.resize(128, 0);
        (enable_bytes(f, &d), Some(EINVAL))
    }),
    ("enable-dof-bad-dif-version", |f| {
        let mut d = dof_header(64, 0, 64);
        d[7] = 9;
        (enable_bytes(f, &d), Some(EINVAL))
    }),
    ("eprobe-unknown-epid", |f| {
        let mut d = vec![0u8; 56];
        d[..4].copy_from_slice(&12345u32.to_le_bytes());
        d[20..24].copy_from_slice(&1i32.to_le_bytes());
        (pp(f, EPROBE, &UserBuf::from_bytes(&d)), Some(EINVAL))
    }),
    ("eprobe-descriptor-unreadable", |f| {
        let mut block = vec![0u8; 56];
        block[..8].copy_from_slice(&0x2000u64.to_le_bytes());
        (
            f.ioctl(EPROBE, UserBuf::from_bytes(&block).addr()),
            Some(EFAULT),
        )
    }),
    ("aggdesc-unknown-aggid", |f| {
        let mut d = vec![0u8; 72];
        d[20..24].copy_from_slice(&999u32.to_le_bytes());
        d[32..36].copy_from_slice(&1i32.to_le_bytes());
        (pp(f, AGGDESC, &UserBuf::from_bytes(&d)), Some(EINVAL))
    }),
    ("format-zero", |f| {
        let d = UserBuf::new(16);
        (f.ioctl(FORMAT, d.addr()), Some(EINVAL))
    }),
    ("format-unknown", |f| {
        let mut d = vec![0u8; 16];
        d[12..14].copy_from_slice(&9999u16.to_le_bytes());
        (
            f.ioctl(FORMAT, UserBuf::from_bytes(&d).addr()),
            Some(EINVAL),
        )
    }),
    ("bufsnap-cpu-out-of-range", |f| {
        let mut d = vec![0u8; 48];
        d[8..12].copy_from_slice(&100_000u32.to_le_bytes());
        (pp(f, BUFSNAP, &UserBuf::from_bytes(&d)), None)
    }),
    ("bufsnap-descriptor-unreadable", |f| {
        let mut block = vec![0u8; 8];
        block[..8].copy_from_slice(&0x3000u64.to_le_bytes());
        (
            f.ioctl(BUFSNAP, UserBuf::from_bytes(&block).addr()),
            Some(EFAULT),
        )
    }),
    ("status-before-go", |f| {
        (f.ioctl(STATUS, UserBuf::new(88).addr()), Some(ENOENT))
    }),
    ("stop-before-go", |f| {
        (f.ioctl(STOP, UserBuf::new(4).addr()), None)
    }),
    ("go-twice", |f| {
        let first = f.ioctl(GO, UserBuf::new(4).addr());
        assert_eq!(first, 0, "first GO");
        (f.ioctl(GO, UserBuf::new(4).addr()), Some(EBUSY))
    }),
    ("probematch-unterminated-names", |f| {
        let mut d = vec![b'A'; 388];
        d[..4].copy_from_slice(&0u32.to_le_bytes());
        let e = f.ioctl(PROBEMATCH, UserBuf::from_bytes(&d).addr());
        (if e == 0 { ESRCH } else { e }, Some(ESRCH))
    }),
    ("provider-unknown", |f| {
        let mut d = vec![0u8; 92];
        d[..7].copy_from_slice(b"nosuch\0");
        (
            f.ioctl(PROVIDER, UserBuf::from_bytes(&d).addr()),
            Some(ESRCH),
        )
    }),
];

/// Run every case (or only those with a FreeBSD-defined errno when
/// `exact`) in its own child; collect the failures.
fn run_cases(test: &'static str, exact: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for (case, run) in CASES {
        let result = std::panic::catch_unwind(|| {
            run_isolated(test, case, || {
                let Some(bytes) = common::ko_bytes(test) else {
                    return;
                };
                let mut kld = common::load_rdtrace(bytes);
                let f = devfs::open("/dev/dtrace/dtrace", libc::O_RDWR)
                    .unwrap_or_else(|e| panic!("open: errno {e}"));
                let (got, expected) = run(&f);
                println!("koharness: malformed case {case}: errno {got} (FreeBSD: {expected:?})");
                if exact {
                    if let Some(want) = expected {
                        assert_eq!(got, want, "{case}: errno differs from FreeBSD's");
                    }
                    return;
                }
                assert_ne!(got, 0, "{case}: accepted");
                // Still alive and answering.
                assert_eq!(
                    f.ioctl(CONF, UserBuf::new(48).addr()),
                    0,
                    "{case}: module still answers CONF"
                );
                drop(f);
                let report = kld.unload().expect("unload");
                assert!(report.leaks.is_empty(), "{case}: {:?}", report.leaks);
                assert_eq!(malloc::live_total(), 0, "{case}: allocations leaked");
            })
        });
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let first: String = msg
                .lines()
                .filter(|l| {
                    l.contains("assert")
                        || l.contains("left")
                        || l.contains("right")
                        || l.contains("panic")
                })
                .take(6)
                .collect::<Vec<_>>()
                .join("\n");
            failures.push(format!("[{case}] {first}"));
        }
    }
    failures
}

#[test]
fn malformed_ioctls_return_errno_without_crashing() {
    let failures = run_cases("malformed_ioctls_return_errno_without_crashing", false);
    assert!(
        failures.is_empty(),
        "{} of {} malformed-input cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn malformed_ioctl_errnos_match_freebsd() {
    let failures = run_cases("malformed_ioctl_errnos_match_freebsd", true);
    assert!(
        failures.is_empty(),
        "{} cases answer a different errno than FreeBSD's dtrace:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
