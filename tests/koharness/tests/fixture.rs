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
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(f.ioctl(IOC_TICKS, out.addr()), 0);
        let ticks = i64::from_le_bytes(out.bytes()[..8].try_into().unwrap());
        // ~1 ms period (2^22 sbt): 200 ms must give a good number of firings.
        assert!(ticks >= 10, "callout fired only {ticks} times in 200 ms");
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

const IOC_RENDEZVOUS: u64 = 0x4018_6609; // _IOR('f', 9, long[3])
const IOC_VETO: u64 = 0x8008_660a; // _IOW('f', 10, long)

#[test]
fn fixture_rendezvous_sysctl_and_eventhandlers() {
    run_isolated(
        "fixture_rendezvous_sysctl_and_eventhandlers",
        "misc",
        || {
            let mut kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            let out = UserBuf::new(24);
            assert_eq!(f.ioctl(IOC_RENDEZVOUS, out.addr()), 0);
            let word =
                |i: usize| i64::from_le_bytes(out.bytes()[i * 8..i * 8 + 8].try_into().unwrap());
            let ncpu = kernel::cpu::ncpu() as i64;
            assert_eq!(
                word(0),
                (1 << ncpu) - 1,
                "the action ran on every CPU, each seeing its own pc_cpuid via %gs"
            );
            assert_eq!(word(1), ncpu, "exactly once per CPU");
            assert_eq!(
                word(2),
                1,
                "kld_load handlers ran once, for the module itself"
            );
            // sysctl: read and write through the module's OIDs and the standard handlers.
            use kernel::sysctl::sysctl;
            assert_eq!(
                sysctl("debug.fixture.knob", None),
                Ok(17i32.to_le_bytes().to_vec())
            );
            assert_eq!(
                sysctl("debug.fixture.knob", Some(99i32.to_le_bytes().to_vec())),
                Ok(17i32.to_le_bytes().to_vec())
            );
            assert_eq!(
                sysctl("debug.fixture.knob", None),
                Ok(99i32.to_le_bytes().to_vec())
            );
            assert_eq!(
                sysctl("debug.fixture.label", None),
                Ok(b"fixture\0".to_vec())
            );
            assert_eq!(sysctl("debug.fixture.nosuch", None), Err(2));
            // kld_unload_try veto.
            let yes = UserBuf::from_bytes(&1i64.to_le_bytes());
            assert_eq!(f.ioctl(IOC_VETO, yes.addr()), 0);
            drop(f);
            assert_eq!(
                kld.unload().err(),
                Some(16),
                "a kld_unload_try handler vetoed: EBUSY"
            );
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("still loaded");
            let no = UserBuf::from_bytes(&0i64.to_le_bytes());
            assert_eq!(f.ioctl(IOC_VETO, no.addr()), 0);
            drop(f);
            let report = kld.unload().expect("unload");
            assert!(report.leaks.is_empty(), "{:?}", report.leaks);
            assert!(
                kernel::sysctl::paths().is_empty(),
                "sysctl_ctx_free removed the OIDs"
            );
            assert_eq!(kernel::eventhandler::count("kld_load"), 0);
        },
    );
}

const IOC_SDT_ARM: u64 = 0x8008_660b; // _IOW('f', 11, long)
const IOC_SDT_HITS: u64 = 0x4010_660c; // _IOR('f', 12, long[2])

#[test]
fn fixture_sdt_tracepoint_patching_and_sdt_probe_func() {
    run_isolated(
        "fixture_sdt_tracepoint_patching_and_sdt_probe_func",
        "sdt",
        || {
            let mut kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            let fire = |a, b| {
                kernel::cpu::enter_kernel(1);
                let r = kernel::sdt::fire(a, b);
                kernel::cpu::leave_kernel();
                r
            };
            assert!(!fire(1, 2), "disabled site: a NOP");
            assert_eq!(
                f.ioctl(IOC_SDT_ARM, UserBuf::from_bytes(&1i64.to_le_bytes()).addr()),
                0
            );
            assert!(kernel::sdt::site_patched());
            assert_eq!(kernel::sdt::probe_id(), 7);
            assert!(fire(3, 4), "patched site reaches sdt_probe_func");
            let out = UserBuf::new(16);
            assert_eq!(f.ioctl(IOC_SDT_HITS, out.addr()), 0);
            let word =
                |i: usize| i64::from_le_bytes(out.bytes()[i * 8..i * 8 + 8].try_into().unwrap());
            assert_eq!(
                (word(0), word(1)),
                (1, 3 + 4000 + 7_000_000),
                "id and both arguments arrived"
            );
            assert_eq!(
                f.ioctl(IOC_SDT_ARM, UserBuf::from_bytes(&0i64.to_le_bytes()).addr()),
                0
            );
            assert!(!kernel::sdt::site_patched());
            assert!(!fire(5, 6));
            drop(f);
            let report = kld.unload().expect("unload");
            assert!(report.leaks.is_empty(), "{:?}", report.leaks);
        },
    );
}

const IOC_ASSORTED: u64 = 0xc070_660d; // _IOWR('f', 13, long[14])
const IOC_BAD_UNLOCK: u64 = 0x2000_660e; // _IO('f', 14)

#[test]
fn fixture_copyinstr_fetch_rmlock_critical_and_linker_symbols() {
    run_isolated(
        "fixture_copyinstr_fetch_rmlock_critical_and_linker_symbols",
        "assorted",
        || {
            let mut kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            let s = UserBuf::from_bytes(b"hello\0\0\0");
            let mut arg = vec![0u8; 112];
            arg[..8].copy_from_slice(&s.addr().to_le_bytes());
            let a = UserBuf::from_bytes(&arg);
            assert_eq!(f.ioctl(IOC_ASSORTED, a.addr()), 0);
            let w = |i: usize| i64::from_le_bytes(a.bytes()[i * 8..i * 8 + 8].try_into().unwrap());
            assert_eq!(
                (w(1), w(2)),
                (0, 6),
                "copyinstr copies the string and its NUL"
            );
            assert_eq!(w(3), 63, "ENAMETOOLONG when no NUL fits");
            assert_eq!(
                (w(4), w(5)),
                (i64::from(b'h'), -1),
                "fubyte, and -1 on a bad address"
            );
            assert_eq!(
                (w(6), w(7)),
                (0, i64::from_le_bytes(*b"hello\0\0\0")),
                "fueword64"
            );
            assert_eq!(w(8), -1, "fueword32 on a bad address");
            let kernel_functions = kernel::image()
                .all_symbols()
                .iter()
                .filter(|s| s.kind == kernel::SymbolKind::Function)
                .count() as i64;
            assert_eq!(
                w(9),
                kernel_functions,
                "linker_file_function_listall visits every kernel function"
            );
            assert_eq!(w(10), 10, "harness_fbt_target's size");
            assert_eq!(
                (w(11), w(12), w(13)),
                (0, 3, 1),
                "linker_search_symbol_name: harness_fbt_target+3"
            );
            assert!(locks::history()
                .iter()
                .any(|(_, k, n)| *k == locks::LockKind::Rm && n == "fixture rm"));
            drop(f);
            assert!(kld.unload().expect("unload").leaks.is_empty());
        },
    );
}

#[test]
fn fixture_unlocking_a_mutex_not_held_panics_the_kernel() {
    let out = rdtrace_koharness::isolate::run_isolated_expecting_panic(
        "fixture_unlocking_a_mutex_not_held_panics_the_kernel",
        "badunlock",
        || {
            let _kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            f.ioctl(IOC_BAD_UNLOCK, 0);
        },
    );
    if let Some(out) = out {
        assert!(
            out.contains("mtx_unlock: lock \"fixture mtx\" not owned by this thread"),
            "{out}"
        );
    }
}

const IOC_ASSORTED2: u64 = 0x4040_660f; // _IOR('f', 15, long[8])
const IOC_WAIT: u64 = 0x2000_6610; // _IO('f', 16)
const IOC_POST: u64 = 0x2000_6611; // _IO('f', 17)

#[test]
fn fixture_sleep_wakeup_pause_snprintf_and_rendezvous_cpus() {
    run_isolated(
        "fixture_sleep_wakeup_pause_snprintf_and_rendezvous_cpus",
        "sleep",
        || {
            let mut kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            let out = UserBuf::new(64);
            assert_eq!(f.ioctl(IOC_ASSORTED2, out.addr()), 0);
            let w =
                |i: usize| i64::from_le_bytes(out.bytes()[i * 8..i * 8 + 8].try_into().unwrap());
            assert_eq!(
                (w(0), w(1)),
                (9, 1),
                "snprintf returns the full length and truncates with a NUL"
            );
            assert_eq!((w(2), w(3)), (5, 1), "strlcpy");
            assert_eq!(
                (w(4), w(5)),
                (0b1010, 2),
                "smp_rendezvous_cpus ran only on CPUs 1 and 3"
            );
            assert_eq!(
                (w(6), w(7)),
                (35, 35),
                "pause and a timed-out _sleep return EWOULDBLOCK"
            );
            // A sleeper woken by another thread; the mutex is the interlock.
            std::thread::scope(|s| {
                let waiter = s.spawn(|| f.ioctl(IOC_WAIT, 0));
                std::thread::sleep(std::time::Duration::from_millis(50));
                assert!(!waiter.is_finished(), "the waiter sleeps until posted");
                assert_eq!(
                    f.ioctl(IOC_POST, 0),
                    0,
                    "posting needs the mutex the sleeper released"
                );
                assert_eq!(waiter.join().expect("waiter"), 0);
            });
            drop(f);
            assert!(kld.unload().expect("unload").leaks.is_empty());
        },
    );
}

#[test]
fn fixture_static_sysctls_are_registered_and_removed() {
    run_isolated(
        "fixture_static_sysctls_are_registered_and_removed",
        "static-sysctl",
        || {
            let mut kld = load_fixture();
            assert_eq!(
                kernel::sysctl::sysctl("debug.fixture_static.answer", None),
                Ok(42i32.to_le_bytes().to_vec())
            );
            assert!(kld.unload().expect("unload").leaks.is_empty());
            assert!(
                kernel::sysctl::paths().is_empty(),
                "static OIDs removed at unload: {:?}",
                kernel::sysctl::paths()
            );
        },
    );
}

const IOC_SPIN: u64 = 0x2000_6612; // _IO('f', 18)
const IOC_UNSPIN: u64 = 0x4008_6613; // _IOR('f', 19, long)
const IOC_SPINNING: u64 = 0x4008_6614; // _IOR('f', 20, long)

#[test]
fn fixture_rendezvous_interrupts_a_cpu_spinning_in_module_code() {
    run_isolated(
        "fixture_rendezvous_interrupts_a_cpu_spinning_in_module_code",
        "ipi",
        || {
            let mut kld = load_fixture();
            let f = devfs::open("/dev/fixture/dev0", libc::O_RDWR).expect("open");
            std::thread::scope(|s| {
                let spinner = s.spawn(|| {
                    kernel::cpu::set_home_cpu(1);
                    f.ioctl(IOC_SPIN, 0)
                });
                let probe = UserBuf::new(8);
                let started = std::time::Instant::now();
                while {
                    assert_eq!(f.ioctl(IOC_SPINNING, probe.addr()), 0);
                    probe.bytes()[0] == 0
                } {
                    assert!(
                        started.elapsed().as_secs() < 20,
                        "the spinner never started"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                let out = UserBuf::new(24);
                // CPU 1 is busy spinning (interrupts enabled); the rendezvous
                // must still run there, through an IPI.
                assert_eq!(f.ioctl(IOC_RENDEZVOUS, out.addr()), 0);
                let mask = i64::from_le_bytes(out.bytes()[..8].try_into().unwrap());
                assert_eq!(
                    mask,
                    (1 << kernel::cpu::ncpu()) - 1,
                    "every CPU ran the action, the spinning one included"
                );
                let was = UserBuf::new(8);
                assert_eq!(f.ioctl(IOC_UNSPIN, was.addr()), 0);
                assert_eq!(
                    was.bytes()[0],
                    1,
                    "the spinner was still spinning during the rendezvous"
                );
                assert_eq!(spinner.join().expect("spinner"), 0);
            });
            drop(f);
            assert!(kld.unload().expect("unload").leaks.is_empty());
        },
    );
}
