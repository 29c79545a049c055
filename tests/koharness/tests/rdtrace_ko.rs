//! The real amd64 rdtrace.ko in the harness: imports, load, metadata and
//! SYSINITs, the device nodes, open/close with the cdevpriv destructor,
//! EBUSY unload while open, and unload leaving nothing behind.
//! Each test body runs in a child process (a module panic fails the test).

mod common;

use object::{Object, ObjectSymbol};
use rdtrace_koharness::isolate::run_isolated;
use rdtrace_koharness::kernel::{self, devfs, locks, malloc, uaccess::UserBuf};
use rdtrace_koharness::kld::{Metadata, HARNESS_FREEBSD_VERSION};

const EBUSY: i32 = 16;
/// DTRACEIOC_CONF = _IOR('x', 10, dtrace_conf_t) (abi-facts §1.3).
const DTRACEIOC_CONF: u64 = 0x4030_780a;

#[test]
fn every_import_of_rdtrace_ko_is_provided_by_the_harness() {
    let Some(bytes) = common::ko_bytes("every_import_of_rdtrace_ko_is_provided_by_the_harness")
    else {
        return;
    };
    let file = object::File::parse(&*bytes).expect("rdtrace.ko parses as ELF");
    let sections: Vec<String> = object::Object::sections(&file)
        .filter_map(|s| object::ObjectSection::name(&s).ok().map(str::to_string))
        .collect();
    let imports: Vec<String> = file
        .symbols()
        .filter(|s| s.is_undefined() && !s.name().unwrap_or("").is_empty())
        .map(|s| s.name().unwrap_or("").to_string())
        .filter(|n| {
            // Linker-set bounds are patched by the loader, not imported.
            let sec = n
                .strip_prefix("__start_")
                .or_else(|| n.strip_prefix("__stop_"));
            !sec.is_some_and(|sec| sections.iter().any(|s| s == sec))
        })
        .collect();
    assert!(!imports.is_empty(), "rdtrace.ko imports nothing?");
    let missing: Vec<&String> = imports
        .iter()
        .filter(|n| kernel::image().symbol(n).is_none())
        .collect();
    println!(
        "koharness: rdtrace.ko imports {} KPI symbols; the harness implements {} of them (and {} in all)",
        imports.len(),
        imports.len() - missing.len(),
        kernel::image().all_symbols().len()
    );
    assert!(
        missing.is_empty(),
        "imports without a harness implementation: {missing:?}"
    );
}

#[test]
fn rdtrace_ko_loads_with_its_metadata_and_sysinits() {
    run_isolated(
        "rdtrace_ko_loads_with_its_metadata_and_sysinits",
        "load",
        || {
            let Some(bytes) = common::ko_bytes("rdtrace_ko_loads_with_its_metadata_and_sysinits")
            else {
                return;
            };
            let mut kld = common::load_rdtrace(bytes);
            let depend = kld
                .metadata
                .iter()
                .find_map(|m| match m {
                    Metadata::Depend { name, min, max, .. } if name == "kernel" => {
                        Some((*min, *max))
                    }
                    _ => None,
                })
                .expect("an MDT_DEPEND on kernel");
            assert!(
                depend.0 <= HARNESS_FREEBSD_VERSION && HARNESS_FREEBSD_VERSION <= depend.1,
                "{depend:?}"
            );
            assert!(kld
                .metadata
                .iter()
                .any(|m| matches!(m, Metadata::Module { name, .. } if name == "rdtrace")));
            let register = kernel::image()
                .symbol("module_register_init")
                .expect("kpi")
                .addr;
            assert!(
                kld.sysinits_run.iter().any(|s| s.func == register),
                "no SYSINIT calls module_register_init: {:?}",
                kld.sysinits_run
            );
            assert!(kld
                .sysinits_run
                .windows(2)
                .all(|w| (w[0].subsystem, w[0].order) <= (w[1].subsystem, w[1].order)));
            assert_eq!(kld.modules(), vec!["rdtrace".to_string()]);
            assert!(kernel::linker::file_names().contains(&"rdtrace.ko".to_string()));
            let img = kld.image().expect("image");
            assert!(
                img.base() + img.size() as u64 <= 0x8000_0000,
                "module placed below 2 GiB"
            );
            let report = kld.unload().expect("unload");
            assert!(report.leaks.is_empty(), "{:?}", report.leaks);
            assert_eq!(kernel::linker::file_names(), vec!["kernel".to_string()]);
        },
    );
}

#[test]
fn rdtrace_ko_mod_load_creates_the_dtrace_device_nodes() {
    run_isolated(
        "rdtrace_ko_mod_load_creates_the_dtrace_device_nodes",
        "nodes",
        || {
            let Some(bytes) =
                common::ko_bytes("rdtrace_ko_mod_load_creates_the_dtrace_device_nodes")
            else {
                return;
            };
            let mut kld = common::load_rdtrace(bytes);
            let nodes = devfs::nodes();
            let find = |p: &str| {
                nodes
                    .iter()
                    .find(|n| n.path == p)
                    .cloned()
                    .unwrap_or_else(|| panic!("{p} missing: {nodes:?}"))
            };
            let dtrace = find("/dev/dtrace/dtrace");
            let helper = find("/dev/dtrace/helper");
            assert_eq!((dtrace.uid, dtrace.gid, dtrace.mode), (0, 0, 0o600));
            assert_eq!((helper.uid, helper.gid, helper.mode), (0, 0, 0o660));
            assert!(kld.unload().expect("unload").leaks.is_empty());
            assert!(devfs::nodes().is_empty(), "MOD_UNLOAD destroys the nodes");
        },
    );
}

#[test]
fn rdtrace_ko_open_and_close_run_the_cdevpriv_destructor() {
    run_isolated(
        "rdtrace_ko_open_and_close_run_the_cdevpriv_destructor",
        "open",
        || {
            let Some(bytes) =
                common::ko_bytes("rdtrace_ko_open_and_close_run_the_cdevpriv_destructor")
            else {
                return;
            };
            let mut kld = common::load_rdtrace(bytes);
            let open = || {
                devfs::open("/dev/dtrace/dtrace", libc::O_RDWR).unwrap_or_else(|e| {
                    panic!("open /dev/dtrace/dtrace: errno {e} (the module refuses consumers)")
                })
            };
            // The first open may create probes that live until unload; after
            // it, each open allocates a consumer state and its close frees it.
            let f = open();
            assert!(
                f.has_cdevpriv(),
                "open attaches the consumer state with devfs_set_cdevpriv"
            );
            assert_eq!(f.close(), 0);
            let steady = malloc::live_total();
            let f = open();
            assert!(f.has_cdevpriv());
            let during = malloc::live_total();
            assert!(
                during > steady,
                "an open consumer holds memory ({during} vs {steady} live)"
            );
            assert_eq!(f.close(), 0);
            assert_eq!(
                malloc::live_total(),
                steady,
                "the cdevpriv destructor freed the consumer state"
            );
            // Two files at once get two states.
            let (a, b) = (open(), open());
            assert!(
                malloc::live_total() > during,
                "a second open file has its own state"
            );
            drop((a, b));
            assert_eq!(malloc::live_total(), steady);
            assert!(kld.unload().expect("unload").leaks.is_empty());
        },
    );
}

#[test]
fn rdtrace_ko_unload_is_refused_while_the_device_is_open() {
    run_isolated(
        "rdtrace_ko_unload_is_refused_while_the_device_is_open",
        "ebusy",
        || {
            let Some(bytes) =
                common::ko_bytes("rdtrace_ko_unload_is_refused_while_the_device_is_open")
            else {
                return;
            };
            let mut kld = common::load_rdtrace(bytes);
            let f = devfs::open("/dev/dtrace/dtrace", libc::O_RDWR).unwrap_or_else(|e| {
                panic!("open /dev/dtrace/dtrace: errno {e} (the module refuses consumers)")
            });
            assert_eq!(kld.unload().err(), Some(EBUSY));
            assert_eq!(kld.modules(), vec!["rdtrace".to_string()], "still loaded");
            assert_eq!(devfs::nodes().len(), 2, "devices survive a refused unload");
            drop(f);
            let report = kld.unload().expect("unload after close");
            assert!(report.leaks.is_empty(), "{:?}", report.leaks);
        },
    );
}

#[test]
fn rdtrace_ko_unload_after_close_frees_every_allocation_and_lock() {
    run_isolated(
        "rdtrace_ko_unload_after_close_frees_every_allocation_and_lock",
        "leaks",
        || {
            let Some(bytes) =
                common::ko_bytes("rdtrace_ko_unload_after_close_frees_every_allocation_and_lock")
            else {
                return;
            };
            let mut kld = common::load_rdtrace(bytes);
            let loaded = malloc::stats();
            let opened = devfs::open("/dev/dtrace/dtrace", libc::O_RDWR);
            let open_errno = opened.as_ref().err().copied();
            let during = malloc::stats();
            drop(opened);
            let report = kld.unload().expect("unload");
            let after = malloc::stats();
            let summary = |s: &std::collections::BTreeMap<String, malloc::TypeStats>| {
                s.iter()
                    .map(|(n, t)| format!("{n}: {} live/{} allocs", t.live, t.allocations))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("koharness: allocations after load: [{}]", summary(&loaded));
            println!(
                "koharness: allocations while open: [{}] (open errno {open_errno:?})",
                summary(&during)
            );
            println!("koharness: allocations after unload: [{}]", summary(&after));
            println!(
                "koharness: locks initialised {}, still live {}",
                locks::history().len(),
                locks::live_locks().len()
            );
            assert!(report.leaks.is_empty(), "{:?}", report.leaks);
            for (name, st) in &after {
                assert_eq!(
                    st.live, 0,
                    "malloc type {name}: {} allocations ({} bytes) leaked",
                    st.live, st.live_bytes
                );
                assert_eq!(st.allocations, st.frees);
            }
            assert!(
                locks::live_locks().is_empty(),
                "locks never destroyed: {:?}",
                locks::live_locks()
            );
            assert!(malloc::warnings().is_empty(), "{:?}", malloc::warnings());
            assert_eq!(
                open_errno, None,
                "open /dev/dtrace/dtrace failed: the module refuses consumers"
            );
        },
    );
}

#[test]
fn rdtrace_ko_answers_conf() {
    run_isolated("rdtrace_ko_answers_conf", "conf", || {
        let Some(bytes) = common::ko_bytes("rdtrace_ko_answers_conf") else {
            return;
        };
        let mut kld = common::load_rdtrace(bytes);
        let f = devfs::open("/dev/dtrace/dtrace", libc::O_RDWR).unwrap_or_else(|e| {
            panic!("open /dev/dtrace/dtrace: errno {e} (the module refuses consumers)")
        });
        let conf = UserBuf::new(48);
        let e = f.ioctl(DTRACEIOC_CONF, conf.addr());
        assert_eq!(e, 0, "DTRACEIOC_CONF failed with errno {e}");
        let word =
            |i: usize| u32::from_le_bytes(conf.bytes()[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(
            (word(0), word(1), word(2), word(3)),
            (2, 8, 8, 2),
            "difversion, intregs, tupregs, ctfmodel LP64"
        );
        drop(f);
        assert!(kld.unload().expect("unload").leaks.is_empty());
    });
}

#[test]
fn every_kpi_symbol_sys_headers_declares_is_implemented() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sys-headers/kpi-symbols.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let declared: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!declared.is_empty(), "kpi-symbols.txt lists nothing");
    let missing: Vec<&&str> = declared
        .iter()
        .filter(|n| kernel::image().symbol(n).is_none())
        .collect();
    println!(
        "koharness: sys-headers declares {} KPI symbols; the harness lacks {}",
        declared.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "declared in sys-headers but not implemented by the harness: {missing:?}"
    );
}
