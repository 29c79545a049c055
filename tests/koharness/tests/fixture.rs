//! The harness's own semantics, exercised with a hand-written C module
//! (tests/fixtures/fixture_module.c) so they are tested independently of
//! how far rdtrace.ko has got: metadata, SYSINIT order, module events, the
//! variadic printf/make_dev_s shims, devfs open/ioctl/close with cdevpriv,
//! EBUSY unload, callouts that fire, copyin/copyout with EFAULT, leak checks.

mod common;

use rdtrace_koharness::isolate::run_isolated;
use rdtrace_koharness::kernel::{self, devfs, locks, malloc, uaccess::UserBuf};
use rdtrace_koharness::kld::{Kld, Metadata, HARNESS_FREEBSD_VERSION};

const IOC_TICKS: u64 = 0x4008_6601; // _IOR('f', 1, long)
const IOC_SUM: u64 = 0xc018_6602; // _IOWR('f', 2, 24 bytes)
const IOC_PRIV: u64 = 0x8008_6603; // _IOW('f', 3, 8 bytes)

fn load_fixture() -> Kld {
    Kld::load("fixture.ko", common::build_fixture(&[]))
        .unwrap_or_else(|e| panic!("fixture load: {e}"))
}

#[test]
fn fixture_sysinits_run_in_subsystem_order_and_uninits_in_reverse() {
    run_isolated(
        "fixture_sysinits_run_in_subsystem_order_and_uninits_in_reverse",
        "order",
        || {
            let mut kld = load_fixture();
            assert!(kld.metadata.contains(&Metadata::Depend {
                name: "kernel".into(),
                min: HARNESS_FREEBSD_VERSION,
                preferred: HARNESS_FREEBSD_VERSION,
                max: 1_599_999
            }));
            assert!(kld.metadata.contains(&Metadata::Version {
                name: "fixture".into(),
                version: 3
            }));
            assert_eq!(kld.modules(), vec!["fixture".to_string()]);
            let subsystems: Vec<(u32, u32)> = kld
                .sysinits_run
                .iter()
                .map(|s| (s.subsystem, s.order))
                .collect();
            assert_eq!(
                subsystems,
                vec![
                    (0x2140000, 0),
                    (0x2140000, 1),
                    (0x3100000, 0x1000000),
                    (0x3200000, 0)
                ]
            );
            let report = kld.unload().expect("unload");
            assert!(report.leaks.is_empty(), "leaks: {:?}", report.leaks);
            assert_eq!(
                common::console_lines("fixture: "),
                vec![
                    "fixture: sysinit kdtrace/0",
                    "fixture: sysinit kdtrace/1",
                    "fixture: MOD_LOAD ok -42 beef     7|ab  |z",
                    "fixture: make_dev_s 0",
                    "fixture: sysinit after-drivers",
                    "fixture: MOD_UNLOAD",
                    "fixture: sysuninit after-drivers",
                    "fixture: sysuninit kdtrace/0",
                ]
            );
        },
    );
}

#[test]
fn fixture_device_open_ioctl_close_runs_cdevpriv_destructor() {
    run_isolated(
        "fixture_device_open_ioctl_close_runs_cdevpriv_destructor",
        "cdevpriv",
        || {
            let mut kld = load_fixture();
            let node = devfs::nodes()
                .into_iter()
                .find(|n| n.path == "/dev/fixture/dev0")
                .expect("node created");
            assert_eq!((node.uid, node.gid, node.mode), (0, 5, 0o640));
            let live_before = malloc::live_total();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            assert!(f.has_cdevpriv());
            assert_eq!(
                malloc::live_total(),
                live_before + 1,
                "open allocates its private data"
            );
            let arg = UserBuf::new(8);
            assert_eq!(
                f.ioctl(IOC_PRIV, arg.addr()),
                0,
                "devfs_get_cdevpriv inside ioctl finds the data"
            );
            assert_eq!(f.close(), 0);
            assert_eq!(
                common::console_lines("fixture: dtor"),
                vec!["fixture: dtor per-open"]
            );
            assert_eq!(
                malloc::live_total(),
                live_before,
                "the destructor freed the private data"
            );
            assert!(kld.unload().expect("unload").leaks.is_empty());
        },
    );
}

#[test]
fn fixture_unload_is_refused_while_open_then_succeeds() {
    run_isolated(
        "fixture_unload_is_refused_while_open_then_succeeds",
        "ebusy",
        || {
            let mut kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            assert_eq!(kld.unload().err(), Some(16), "EBUSY while open");
            assert_eq!(
                devfs::live_cdevs(),
                1,
                "device still there after the refused unload"
            );
            let arg = UserBuf::new(8);
            assert_eq!(
                f.ioctl(IOC_PRIV, arg.addr()),
                0,
                "module still works after the refused unload"
            );
            drop(f);
            let report = kld.unload().expect("unload after close");
            assert!(report.leaks.is_empty(), "leaks: {:?}", report.leaks);
            assert_eq!(devfs::live_cdevs(), 0);
            for (name, st) in malloc::stats() {
                assert_eq!(
                    st.live, 0,
                    "malloc type {name} leaked {} allocations",
                    st.live
                );
            }
            assert!(
                locks::live_locks().is_empty(),
                "locks never destroyed: {:?}",
                locks::live_locks()
            );
            assert_eq!(
                locks::history().len(),
                2,
                "the fixture initialised one mutex and one sx lock"
            );
        },
    );
}

#[test]
fn fixture_callout_really_fires() {
    run_isolated("fixture_callout_really_fires", "callout", || {
        let mut kld = load_fixture();
        let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
        let out = UserBuf::new(8);
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(f.ioctl(IOC_TICKS, out.addr()), 0);
        let ticks = i64::from_le_bytes(out.bytes()[..8].try_into().unwrap());
        // ~1 ms period (2^22 sbt): 100 ms must give a good number of firings.
        assert!(ticks >= 10, "callout fired only {ticks} times in 100 ms");
        drop(f);
        let report = kld.unload().expect("unload");
        assert!(
            report.leaks.is_empty(),
            "callout still pending after drain: {:?}",
            report.leaks
        );
    });
}

#[test]
fn fixture_copyin_copyout_and_efault() {
    run_isolated("fixture_copyin_copyout_and_efault", "copy", || {
        let mut kld = load_fixture();
        let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
        let data = UserBuf::from_bytes(&[1, 2, 3, 250]);
        let mut arg = Vec::new();
        arg.extend_from_slice(&data.addr().to_le_bytes());
        arg.extend_from_slice(&4i64.to_le_bytes());
        arg.extend_from_slice(&0i64.to_le_bytes());
        let argbuf = UserBuf::from_bytes(&arg);
        assert_eq!(f.ioctl(IOC_SUM, argbuf.addr()), 0);
        assert_eq!(
            i64::from_le_bytes(argbuf.bytes()[16..24].try_into().unwrap()),
            256
        );
        assert_eq!(data.bytes(), &[2, 3, 4, 251], "copyout wrote back");
        // A kernel address as the user pointer: EFAULT, no crash.
        let mut bad = arg.clone();
        bad[..8].copy_from_slice(&(kernel::image().data("hz")).to_le_bytes());
        let badbuf = UserBuf::from_bytes(&bad);
        assert_eq!(f.ioctl(IOC_SUM, badbuf.addr()), 14);
        // A range running past the end of the user buffer: EFAULT.
        let mut past = arg.clone();
        past[8..16].copy_from_slice(&8i64.to_le_bytes());
        let pastbuf = UserBuf::from_bytes(&past);
        assert_eq!(f.ioctl(IOC_SUM, pastbuf.addr()), 14);
        // The ioctl argument block itself unreadable: the generic layer's copyin fails.
        assert_eq!(f.ioctl(IOC_SUM, 0x1000), 14);
        // An unknown command of the right group: the driver's ENOTTY.
        assert_eq!(f.ioctl(0x2000_66ff, 0), 25);
        drop(f);
        assert!(kld.unload().expect("unload").leaks.is_empty());
    });
}

#[test]
fn fixture_failed_mod_load_unloads_the_file() {
    run_isolated(
        "fixture_failed_mod_load_unloads_the_file",
        "failload",
        || {
            let err = Kld::load("fixture.ko", common::build_fixture(&["FAIL_LOAD=1"]))
                .err()
                .expect("load must fail");
            assert_eq!(
                err.errno(),
                8,
                "ENOEXEC when every module of the file failed: {err}"
            );
            let console = kernel::console();
            assert!(
                console.contains("module_register_init: MOD_LOAD (fixture"),
                "{console}"
            );
            assert!(
                console.contains("fixture: MOD_UNLOAD"),
                "MOD_UNLOAD follows a failed MOD_LOAD: {console}"
            );
            assert_eq!(malloc::live_total(), 0);
            assert!(locks::live_locks().is_empty());
            assert_eq!(
                rdtrace_koharness::kernel::linker::file_names(),
                vec!["kernel".to_string()]
            );
        },
    );
}

#[test]
fn fixture_duplicate_version_is_eexist() {
    run_isolated("fixture_duplicate_version_is_eexist", "eexist", || {
        let mut first = load_fixture();
        let err = Kld::load("fixture2.ko", common::build_fixture(&[]))
            .err()
            .expect("second load must fail");
        assert_eq!(err.errno(), 17, "{err}");
        assert!(
            err.to_string()
                .contains("interface fixture.3 already present"),
            "{err}"
        );
        assert!(first.unload().expect("unload").leaks.is_empty());
    });
}

const IOC_ARM: u64 = 0x8008_6604; // _IOW('f', 4, long)
const IOC_DISARM: u64 = 0x2000_6605; // _IO('f', 5)
const IOC_HITS: u64 = 0x4010_6607; // _IOR('f', 7, long[2])

#[test]
fn fixture_breakpoint_reaches_the_invop_hook_and_text_patching_works() {
    run_isolated(
        "fixture_breakpoint_reaches_the_invop_hook_and_text_patching_works",
        "invop",
        || {
            let mut kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            assert_eq!(kernel::ktext::call_fbt_target(1, 2, 3), 5);
            let claim = UserBuf::from_bytes(&1i64.to_le_bytes());
            assert_eq!(
                f.ioctl(IOC_ARM, claim.addr()),
                0,
                "patching kernel text through the CR0.WP dance"
            );
            for i in 0..3u64 {
                assert_eq!(
                    kernel::ktext::call_fbt_target(1, 40 + i, 2),
                    42 + i,
                    "emulated push %rbp keeps the function correct"
                );
            }
            let hits = UserBuf::new(16);
            assert_eq!(f.ioctl(IOC_HITS, hits.addr()), 0);
            let word =
                |i: usize| i64::from_le_bytes(hits.bytes()[i * 8..i * 8 + 8].try_into().unwrap());
            assert_eq!(
                (word(0), word(1)),
                (3, 42),
                "three breakpoints; the trap frame carried %rdi"
            );
            assert_eq!(f.ioctl(IOC_DISARM, 0), 0);
            assert_eq!(kernel::ktext::call_fbt_target(2, 1, 1), 2);
            assert_eq!(f.ioctl(IOC_HITS, hits.addr()), 0);
            assert_eq!(
                word(0),
                3,
                "no breakpoint after the original byte was restored"
            );
            drop(f);
            let report = kld.unload().expect("unload");
            assert!(report.leaks.is_empty(), "{:?}", report.leaks);
        },
    );
}

#[test]
fn fixture_unclaimed_breakpoint_goes_to_calltrap_and_panics() {
    let out = rdtrace_koharness::isolate::run_isolated_expecting_panic(
        "fixture_unclaimed_breakpoint_goes_to_calltrap_and_panics",
        "stray",
        || {
            let _kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            let claim = UserBuf::from_bytes(&0i64.to_le_bytes());
            assert_eq!(f.ioctl(IOC_ARM, claim.addr()), 0);
            kernel::ktext::call_fbt_target(0, 1, 1);
        },
    );
    if let Some(out) = out {
        assert!(out.contains("stray breakpoint at"), "{out}");
    }
}

const IOC_NOFAULT: u64 = 0xc018_6608; // _IOWR('f', 8, long[3])

#[test]
fn fixture_page_fault_in_module_code_reaches_dtrace_trap_func() {
    run_isolated(
        "fixture_page_fault_in_module_code_reaches_dtrace_trap_func",
        "nofault",
        || {
            let mut kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            let mut arg = [0u8; 24];
            arg[..8].copy_from_slice(&0x18u64.to_le_bytes());
            let buf = UserBuf::from_bytes(&arg);
            assert_eq!(f.ioctl(IOC_NOFAULT, buf.addr()), 0);
            let word =
                |i: usize| u64::from_le_bytes(buf.bytes()[i * 8..i * 8 + 8].try_into().unwrap());
            assert_eq!(
                word(0) as i64,
                -1,
                "the faulting load was skipped, not completed"
            );
            assert_eq!(word(1), 12, "T_PAGEFLT");
            assert_eq!(word(2), 0x18, "tf_addr is the faulting address");
            assert_eq!(
                kernel::trap::HANDLED_FAULTS.load(std::sync::atomic::Ordering::SeqCst),
                1
            );
            drop(f);
            assert!(kld.unload().expect("unload").leaks.is_empty());
        },
    );
}
