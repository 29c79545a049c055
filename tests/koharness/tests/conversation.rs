//! The full ioctl conversation of a consumer with the real rdtrace.ko in the
//! harness: CONF, PROBES, PROBEMATCH, ENABLE (DOF from our D compiler),
//! EPROBE, AGGDESC, FORMAT, GO, STATUS, STOP, BUFSNAP, AGGSNAP, with the
//! records decoded by our consumer — for BEGIN/END, a tick probe (callouts),
//! a syscall probe fired through the systrace hook, an SDT probe fired
//! through `sdt_probe_func`, and an FBT probe fired through the invop hook.
//! Each test runs in a child process. A test fails (never skips) when the
//! module lacks an ioctl or provider it needs.

mod common;

use common::consumer::{
    aggregation_values, compile_for, finish, must, probe_list, snapshot_records, start,
    traced_ints, HarnessDevice,
};
use rdtrace_ffi::probe::ProbeDesc as KProbeDesc;
use rdtrace_koharness::isolate::run_isolated;
use rdtrace_koharness::kernel::{self, cpu, devfs, hooks, ktext, sdt, uaccess};
use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::decode::{Action, AggregationMerger, DecodeError};
use rdtrace_libdtrace::output::model::Record;

#[test]
fn conversation_begin_end_with_printf_and_aggregation() {
    run_isolated(
        "conversation_begin_end_with_printf_and_aggregation",
        "begin-end",
        || {
            let Some((kld, client)) = start("conversation_begin_end_with_printf_and_aggregation")
            else {
                return;
            };
            let conf = must("DTRACEIOC_CONF", client.conf());
            assert_eq!(
                (
                    conf.difversion,
                    conf.difintregs,
                    conf.diftupregs,
                    conf.ctfmodel
                ),
                (2, 8, 8, 2)
            );
            let all = probe_list(&client);
            let names: Vec<String> = all
                .iter()
                .map(|p| {
                    format!(
                        "{}:::{}",
                        p.provider_str().unwrap_or(""),
                        p.name_str().unwrap_or("")
                    )
                })
                .collect();
            for n in ["dtrace:::BEGIN", "dtrace:::END", "dtrace:::ERROR"] {
                assert!(
                    names.contains(&n.to_string()),
                    "{n} missing from PROBES: {names:?}"
                );
            }
            let pattern = KProbeDesc::new(0, "dtrace", "", "", "BEGIN").unwrap();
            let matched = must("DTRACEIOC_PROBEMATCH", client.probes(Some(&pattern)));
            assert_eq!(matched.len(), 1, "PROBEMATCH dtrace:::BEGIN");

            let prog = compile_for(
            &client,
            "BEGIN { trace(1234); printf(\"%d-%d\\n\", 5, 6); @n = count(); } END { trace(5678); }",
        );
            let n = must("DTRACEIOC_ENABLE", client.enable(&prog.dof));
            assert_eq!(n, 2, "BEGIN and END matched");
            let e1 = must("DTRACEIOC_EPROBE", client.eprobe(1));
            assert!(e1.size >= 12 && !e1.recs.is_empty(), "EPROBE 1: {e1:?}");
            let fmt_id = e1
                .recs
                .iter()
                .map(|r| r.format)
                .find(|f| *f != 0)
                .expect("printf record has a format id");
            assert_eq!(must("DTRACEIOC_FORMAT", client.format(fmt_id)), "%d-%d\n");
            let agg = must("DTRACEIOC_AGGDESC", client.aggdesc(1));
            assert!(!agg.recs.is_empty());
            let cpu_go = must("DTRACEIOC_GO", client.go());
            assert!((0..cpu::ncpu() as i32).contains(&cpu_go));
            let st = must("DTRACEIOC_STATUS", client.status());
            assert_eq!(st.errors, 0);
            must("DTRACEIOC_STOP", client.stop());
            let recs = snapshot_records(&client);
            let ints = traced_ints(&recs);
            assert!(
                ints.iter().any(|v| v.first() == Some(&1234)),
                "BEGIN's trace(1234) in {ints:?}"
            );
            assert!(
                ints.iter().any(|v| v.first() == Some(&5678)),
                "END's trace(5678) in {ints:?}"
            );
            let printed = recs.iter().flat_map(|r| &r.actions).any(|a| matches!(a, Action::Record(Record::Printf { format, args }) if format == "%d-%d\n" && args.len() == 2));
            assert!(printed, "printf record decoded: {recs:?}");
            let aggs = aggregation_values(&client, &prog);
            assert_eq!(aggs.get("n"), Some(&1), "@n = count() once: {aggs:?}");
            finish(kld, client);
        },
    );
}

#[test]
fn conversation_tick_probe_fires_from_callouts() {
    run_isolated(
        "conversation_tick_probe_fires_from_callouts",
        "tick",
        || {
            let Some((kld, client)) = start("conversation_tick_probe_fires_from_callouts") else {
                return;
            };
            let prog = compile_for(&client, "tick-1ms { @t = count(); }");
            assert!(
                must("DTRACEIOC_ENABLE", client.enable(&prog.dof)) >= 1,
                "tick-1ms matched"
            );
            let fired_before = kernel::callout::total_fired();
            must("DTRACEIOC_GO", client.go());
            std::thread::sleep(std::time::Duration::from_millis(250));
            must("DTRACEIOC_STATUS", client.status());
            must("DTRACEIOC_STOP", client.stop());
            assert!(
                kernel::callout::total_fired() > fired_before,
                "no callout fired"
            );
            let aggs = aggregation_values(&client, &prog);
            let t = aggs.get("t").copied().unwrap_or(0);
            assert!(t >= 10, "tick-1ms fired only {t} times in 250 ms: {aggs:?}");
            finish(kld, client);
        },
    );
}

#[test]
fn conversation_profile_probe_fires_on_every_cpu() {
    run_isolated(
        "conversation_profile_probe_fires_on_every_cpu",
        "profile",
        || {
            let Some((kld, client)) = start("conversation_profile_probe_fires_on_every_cpu") else {
                return;
            };
            let prog = compile_for(&client, "profile-997hz { @p[cpu] = count(); }");
            assert!(
                must("DTRACEIOC_ENABLE", client.enable(&prog.dof)) >= 1,
                "profile-997hz matched"
            );
            must("DTRACEIOC_GO", client.go());
            std::thread::sleep(std::time::Duration::from_millis(300));
            must("DTRACEIOC_STOP", client.stop());
            let mut merger = AggregationMerger::default();
            let mut describe = |id: u32| {
                client
                    .aggdesc(id)
                    .map_err(|e| DecodeError(format!("AGGDESC {id}: {e}")))
            };
            for c in 0..cpu::ncpu() as u32 {
                let s = must("DTRACEIOC_AGGSNAP", client.aggsnap(c, 1 << 20));
                merger
                    .add_snapshot(&s.data, &mut describe, &|_| "p".into())
                    .expect("decode aggregation");
            }
            let aggs = merger.into_aggregations();
            let p = aggs.values().next().expect("@p has data");
            let mut cpus: Vec<u64> = p
                .entries
                .iter()
                .filter(|e| e.value.first().copied().unwrap_or(0) > 0)
                .filter_map(|e| match e.key.first() {
                    Some(Record::Int { bits, .. }) => Some(*bits),
                    _ => None,
                })
                .collect();
            cpus.sort_unstable();
            assert_eq!(
                cpus,
                (0..cpu::ncpu() as u64).collect::<Vec<_>>(),
                "profile fired on every CPU: {:?}",
                p.entries
            );
            finish(kld, client);
        },
    );
}

#[test]
fn conversation_syscall_probe_fires_through_the_systrace_hook() {
    run_isolated(
        "conversation_syscall_probe_fires_through_the_systrace_hook",
        "syscall",
        || {
            let Some((kld, client)) =
                start("conversation_syscall_probe_fires_through_the_systrace_hook")
            else {
                return;
            };
            let prog = compile_for(
                &client,
                "syscall::getpid:entry { trace(arg0); trace(arg1); trace(arg7); } \
                 syscall:freebsd:getpid:return { trace(arg0); trace(arg1); trace(1000); }",
            );
            assert_eq!(
                must("DTRACEIOC_ENABLE", client.enable(&prog.dof)),
                2,
                "syscall::getpid:entry and :return matched"
            );
            must("DTRACEIOC_GO", client.go());
            let (entry, _) = hooks::sysent_probe_ids(20);
            assert_ne!(
                entry, 0,
                "the syscall provider stored a probe id in sysent[SYS_getpid]"
            );
            cpu::enter_kernel(1);
            let calls = hooks::fire_syscall(20, [77, 88, 0, 0, 0, 0, 0, 99], 4242);
            // A system call whose probes are not enabled calls no hook.
            let other = hooks::fire_syscall(3, [1, 2, 3, 0, 0, 0, 0, 0], 0);
            cpu::leave_kernel();
            assert_eq!((calls, other), (2, 0), "entry and return hook calls");
            must("DTRACEIOC_STOP", client.stop());
            let ints = traced_ints(&snapshot_records(&client));
            assert!(
                ints.contains(&vec![77, 88, 99]),
                "getpid entry args (arg7 through getargval) in {ints:?}"
            );
            assert!(
                ints.contains(&vec![4242, 4242, 1000]),
                "getpid return value in arg0 and arg1: {ints:?}"
            );
            assert_eq!(ints.len(), 2, "exactly one entry and one return record");
            // STOP leaves the ECBs in place (as in DTrace); closing the
            // consumer disables the probe and unloading removes the hook.
            finish(kld, client);
            assert_eq!(
                hooks::sysent_probe_ids(20),
                (0, 0),
                "probe ids cleared from sysent after close and unload"
            );
            assert_eq!(
                kernel::read_i32("systrace_enabled") & 0xff,
                0,
                "systrace_enabled cleared"
            );
            assert_eq!(
                kernel::read_u64("systrace_probe_func"),
                0,
                "systrace_probe_func cleared at unload"
            );
        },
    );
}

#[test]
fn conversation_freebsd32_syscall_probe_fires_through_the_same_hook() {
    run_isolated(
        "conversation_freebsd32_syscall_probe_fires_through_the_same_hook",
        "syscall32",
        || {
            let Some((kld, client)) =
                start("conversation_freebsd32_syscall_probe_fires_through_the_same_hook")
            else {
                return;
            };
            let probes = probe_list(&client);
            let in_module = |module: &str| {
                probes
                    .iter()
                    .filter(|p| {
                        p.provider_str() == Some("syscall") && p.module_str() == Some(module)
                    })
                    .count()
            };
            assert_eq!(
                in_module("freebsd32"),
                2 * hooks::NSYSENT32,
                "entry and return probes for every freebsd32_sysent entry"
            );
            assert_eq!(in_module("freebsd"), 2 * hooks::NSYSENT);
            let prog = compile_for(
                &client,
                "syscall:freebsd32:write:entry { trace(arg0); trace(arg2); } \
                 syscall:freebsd32:write:return { trace(arg1); trace(2000); }",
            );
            assert_eq!(
                must("DTRACEIOC_ENABLE", client.enable(&prog.dof)),
                2,
                "syscall:freebsd32:write:entry and :return matched"
            );
            must("DTRACEIOC_GO", client.go());
            let (entry, ret) = hooks::abi_probe_ids(hooks::Abi::Freebsd32, 4);
            assert!(
                entry != 0 && ret != 0 && entry != ret,
                "probe ids in freebsd32_sysent[4]: {entry}, {ret}"
            );
            assert_eq!(
                hooks::sysent_probe_ids(4),
                (0, 0),
                "the native write(2) stays unprobed"
            );
            cpu::enter_kernel(2);
            let native = hooks::fire_syscall(4, [9, 9, 9, 0, 0, 0, 0, 0], 9);
            let compat = hooks::fire_abi_syscall(
                hooks::Abi::Freebsd32,
                4,
                [5, 0x2000, 17, 0, 0, 0, 0, 0],
                17,
            );
            cpu::leave_kernel();
            assert_eq!((native, compat), (0, 2), "hook calls: native, freebsd32");
            must("DTRACEIOC_STOP", client.stop());
            let ints = traced_ints(&snapshot_records(&client));
            assert_eq!(
                ints,
                vec![vec![5, 17], vec![17, 2000]],
                "freebsd32 write(2) entry args and return value"
            );
            finish(kld, client);
            assert_eq!(
                hooks::abi_probe_ids(hooks::Abi::Freebsd32, 4),
                (0, 0),
                "freebsd32 probe ids cleared after close and unload"
            );
        },
    );
}

#[test]
fn conversation_syscall_tables_of_a_loadable_module_are_left_out() {
    run_isolated(
        "conversation_syscall_tables_of_a_loadable_module_are_left_out",
        "syscall-module-abi",
        || {
            // A module defining linux_sysent/linux_syscallnames, loaded
            // before rdtrace: its tables could be unloaded under a provider.
            let mut linux = rdtrace_koharness::kld::Kld::load(
                "linux_stand_in.ko",
                common::build_fixture(&["LINUX_ABI_TABLES=1"]),
            )
            .unwrap_or_else(|e| panic!("fixture load: {e}"));
            let Some((mut kld, client)) =
                start("conversation_syscall_tables_of_a_loadable_module_are_left_out")
            else {
                return;
            };
            let modules: std::collections::BTreeSet<String> = probe_list(&client)
                .iter()
                .filter(|p| p.provider_str() == Some("syscall"))
                .filter_map(|p| p.module_str().map(str::to_string))
                .collect();
            assert_eq!(
                modules.into_iter().collect::<Vec<_>>(),
                vec!["freebsd".to_string(), "freebsd32".to_string()],
                "syscall modules offered"
            );
            assert!(
                kernel::console().contains(
                    "syscall provider: the linux system call table is in a loadable module"
                ),
                "console:\n{}",
                kernel::console()
            );
            // The stand-in goes first: nothing of rdtrace may refer to it.
            linux.unload().expect("unload the stand-in");
            drop(client);
            uaccess::set_process_user_space(false);
            let report = kld.unload().expect("unload rdtrace");
            assert!(report.leaks.is_empty(), "{:?}", report.leaks);
            assert_eq!(rdtrace_koharness::kernel::malloc::live_total(), 0);
        },
    );
}

#[test]
fn conversation_sdt_probe_fires_through_sdt_probe_func() {
    run_isolated(
        "conversation_sdt_probe_fires_through_sdt_probe_func",
        "sdt",
        || {
            let Some((kld, client)) = start("conversation_sdt_probe_fires_through_sdt_probe_func")
            else {
                return;
            };
            let prog = compile_for(
                &client,
                "harness:kernel:harness_sdt:fire { trace(arg0); trace(arg1); }",
            );
            assert_eq!(
                must("DTRACEIOC_ENABLE", client.enable(&prog.dof)),
                1,
                "the harness SDT probe matched"
            );
            must("DTRACEIOC_GO", client.go());
            assert!(
                sdt::site_patched(),
                "the tracepoint was hot-patched into a jump"
            );
            assert_ne!(sdt::probe_id(), 0, "the probe record holds the DTrace id");
            assert_eq!(
                kernel::read_i32("sdt_probes_enabled") & 0xff,
                1,
                "sdt_probes_enabled set"
            );
            cpu::enter_kernel(2);
            let fired = sdt::fire(11, 22);
            cpu::leave_kernel();
            assert!(
                fired,
                "the SDT provider enabled the probe (non-zero id) and set sdt_probe_func"
            );
            must("DTRACEIOC_STOP", client.stop());
            let ints = traced_ints(&snapshot_records(&client));
            assert!(ints.contains(&vec![11, 22]), "SDT args in {ints:?}");
            finish(kld, client);
            assert!(!sdt::site_patched(), "the tracepoint is a NOP again");
            assert_eq!(sdt::probe_id(), 0, "the probe record's id cleared");
            assert_eq!(kernel::read_i32("sdt_probes_enabled") & 0xff, 0);
            assert_eq!(kernel::read_u64("sdt_probe_func"), 0, "hook restored");
            cpu::enter_kernel(2);
            assert!(!sdt::fire(1, 2), "a disabled site fires nothing");
            cpu::leave_kernel();
        },
    );
}

#[test]
fn conversation_sdt_sixth_argument_reaches_arg5() {
    run_isolated(
        "conversation_sdt_sixth_argument_reaches_arg5",
        "sdt6",
        || {
            let Some((kld, client)) = start("conversation_sdt_sixth_argument_reaches_arg5") else {
                return;
            };
            let prog = compile_for(
                &client,
                "harness:kernel:harness_sdt:fire6 { trace(arg0); trace(arg4); trace(arg5); }",
            );
            assert_eq!(must("DTRACEIOC_ENABLE", client.enable(&prog.dof)), 1);
            must("DTRACEIOC_GO", client.go());
            assert_ne!(sdt::probe6_id(), 0, "the six-argument probe is enabled");
            cpu::enter_kernel(3);
            let fired = [
                sdt::fire6([10, 11, 12, 13, 14, 15]),
                sdt::fire6([20, 21, 22, 23, 24, 25]),
            ];
            cpu::leave_kernel();
            assert_eq!(fired, [true, true], "sdt_probe_func called");
            must("DTRACEIOC_STOP", client.stop());
            let ints = traced_ints(&snapshot_records(&client));
            assert_eq!(
                ints,
                vec![vec![10, 14, 15], vec![20, 24, 25]],
                "arg0, arg4 and the sixth argument of each firing"
            );
            finish(kld, client);
        },
    );
}

#[test]
fn conversation_fbt_probe_fires_through_the_invop_hook() {
    run_isolated(
        "conversation_fbt_probe_fires_through_the_invop_hook",
        "fbt",
        || {
            let Some((kld, client)) = start("conversation_fbt_probe_fires_through_the_invop_hook")
            else {
                return;
            };
            let prog = compile_for(
            &client,
            "fbt::harness_fbt_target:entry { trace(arg0); trace(arg1); } fbt::harness_fbt_target:return { trace(arg1); }",
        );
            assert_eq!(
                must("DTRACEIOC_ENABLE", client.enable(&prog.dof)),
                2,
                "fbt entry and return matched"
            );
            must("DTRACEIOC_GO", client.go());
            assert_eq!(
                ktext::call_fbt_target(3, 5, 6),
                11,
                "the instrumented function still works"
            );
            // Many calls from every CPU at once.
            let traps_before = kernel::trap::INVOP_TRAPS.load(std::sync::atomic::Ordering::SeqCst);
            std::thread::scope(|s| {
                for c in 0..cpu::ncpu() {
                    s.spawn(move || {
                        for i in 0..50u64 {
                            assert_eq!(ktext::call_fbt_target(c, i, 1000), i + 1000);
                        }
                    });
                }
            });
            let traps =
                kernel::trap::INVOP_TRAPS.load(std::sync::atomic::Ordering::SeqCst) - traps_before;
            assert_eq!(
                traps,
                2 * 50 * cpu::ncpu() as u64,
                "one entry and one return breakpoint per call"
            );
            assert!(
                kernel::trap::INVOP_TRAPS.load(std::sync::atomic::Ordering::SeqCst) >= 1,
                "no breakpoint reached the invop hook"
            );
            assert_eq!(
                kernel::eventhandler::invoke_kld_unload_try(kernel::linker::kernel_file()),
                libc::EBUSY,
                "a file with an enabled fbt probe cannot unload"
            );
            must("DTRACEIOC_STOP", client.stop());
            let ints = traced_ints(&snapshot_records(&client));
            assert!(ints.contains(&vec![5, 6]), "entry args in {ints:?}");
            assert!(ints.contains(&vec![11]), "return value in {ints:?}");
            assert_eq!(
                ints.len(),
                2 + 2 * 50 * cpu::ncpu(),
                "a record per entry and per return"
            );
            assert!(ints.contains(&vec![49, 1000]) && ints.contains(&vec![1049]));
            finish(kld, client);
            assert_eq!(ktext::call_fbt_target(0, 1, 2), 3, "unpatched after unload");
        },
    );
}

#[test]
fn conversation_two_consumers_are_independent() {
    run_isolated("conversation_two_consumers_are_independent", "two", || {
        let Some((kld, first)) = start("conversation_two_consumers_are_independent") else {
            return;
        };
        let file = devfs::open("/dev/dtrace/dtrace", libc::O_RDWR)
            .unwrap_or_else(|e| panic!("second open: errno {e}"));
        let second = Client::new(Box::new(HarnessDevice { file }));
        let p1 = compile_for(&first, "BEGIN { trace(111); }");
        let p2 = compile_for(&second, "BEGIN { trace(222); } END { trace(333); }");
        assert_eq!(must("DTRACEIOC_ENABLE", first.enable(&p1.dof)), 1);
        assert_eq!(must("DTRACEIOC_ENABLE", second.enable(&p2.dof)), 2);
        must("DTRACEIOC_GO", first.go());
        must("DTRACEIOC_GO", second.go());
        must("DTRACEIOC_STOP", first.stop());
        must("DTRACEIOC_STOP", second.stop());
        let a = traced_ints(&snapshot_records(&first));
        let b = traced_ints(&snapshot_records(&second));
        assert_eq!(
            a,
            vec![vec![111]],
            "the first consumer sees only its own BEGIN"
        );
        assert!(
            b.contains(&vec![222]) && b.contains(&vec![333]) && !b.contains(&vec![111]),
            "{b:?}"
        );
        drop(second);
        finish(kld, first);
    });
}

#[test]
fn conversation_bad_load_in_probe_context_counts_an_error_without_crashing() {
    run_isolated(
        "conversation_bad_load_in_probe_context_counts_an_error_without_crashing",
        "fault",
        || {
            let Some((kld, client)) =
                start("conversation_bad_load_in_probe_context_counts_an_error_without_crashing")
            else {
                return;
            };
            let prog = compile_for(&client, "BEGIN { trace(*(int *)8); } BEGIN { trace(7); }");
            must("DTRACEIOC_ENABLE", client.enable(&prog.dof));
            must("DTRACEIOC_GO", client.go());
            let st = must("DTRACEIOC_STATUS", client.status());
            assert_eq!(st.errors, 1, "one run-time fault counted");
            must("DTRACEIOC_STOP", client.stop());
            let ints = traced_ints(&snapshot_records(&client));
            assert!(
                ints.contains(&vec![7]),
                "the clause after the faulting one still ran: {ints:?}"
            );
            let singles: Vec<&Vec<u64>> = ints.iter().filter(|v| v.len() == 1).collect();
            assert_eq!(
                singles,
                vec![&vec![7]],
                "the faulting clause's record was abandoned: {ints:?}"
            );
            finish(kld, client);
        },
    );
}

#[test]
fn conversation_bad_user_load_goes_through_the_trap_hook() {
    run_isolated(
        "conversation_bad_user_load_goes_through_the_trap_hook",
        "userfault",
        || {
            let Some((kld, client)) =
                start("conversation_bad_user_load_goes_through_the_trap_hook")
            else {
                return;
            };
            let prog = compile_for(
                &client,
                "BEGIN { tracemem(copyin(0x1000, 4), 4); } BEGIN { trace(9); }",
            );
            must("DTRACEIOC_ENABLE", client.enable(&prog.dof));
            let handled_before =
                kernel::trap::HANDLED_FAULTS.load(std::sync::atomic::Ordering::SeqCst);
            must("DTRACEIOC_GO", client.go());
            let st = must("DTRACEIOC_STATUS", client.status());
            assert_eq!(st.errors, 1, "the bad copyin counted one fault");
            let handled = kernel::trap::HANDLED_FAULTS.load(std::sync::atomic::Ordering::SeqCst)
                - handled_before;
            println!("koharness: user-load faults resolved through dtrace_trap_func: {handled}");
            assert!(
                handled >= 1,
                "the page fault reached the module's dtrace_trap_func and was resumed"
            );
            must("DTRACEIOC_STOP", client.stop());
            let ints = traced_ints(&snapshot_records(&client));
            assert!(ints.contains(&vec![9]), "{ints:?}");
            finish(kld, client);
        },
    );
}

#[test]
fn conversation_provider_probearg_dofget_and_helper_device() {
    run_isolated(
        "conversation_provider_probearg_dofget_and_helper_device",
        "misc",
        || {
            let Some((kld, client)) =
                start("conversation_provider_probearg_dofget_and_helper_device")
            else {
                return;
            };
            let p = must("DTRACEIOC_PROVIDER", client.provider("dtrace"));
            assert_eq!(p.name_str(), Some("dtrace"));
            let begin = must(
                "DTRACEIOC_PROBEMATCH",
                client.probes(Some(
                    &KProbeDesc::new(0, "dtrace", "", "", "BEGIN").unwrap(),
                )),
            );
            let a = must("DTRACEIOC_PROBEARG", client.probe_arg(begin[0].id, 0));
            assert_eq!(a.ndx, -1, "BEGIN has no typed arguments (DTRACE_ARGNONE)");
            let dof = must("DTRACEIOC_DOFGET", client.dofget());
            assert_eq!(&dof[..4], b"\x7fDOF", "DOFGET returns a DOF image");
            // The helper device: no consumer state, only DTRACEHIOC_* commands.
            let helper = devfs::open("/dev/dtrace/helper", libc::O_RDWR)
                .unwrap_or_else(|e| panic!("open helper: {e}"));
            let conf = uaccess::UserBuf::new(48);
            assert_eq!(
                helper.ioctl(0x4030_780a, conf.addr()),
                libc::ENOTTY,
                "DTRACEIOC_CONF is not a helper command"
            );
            let mut dh = vec![0u8; 88];
            dh[72..80].copy_from_slice(&0x1000u64.to_le_bytes());
            let arg = uaccess::UserBuf::from_bytes(&dh);
            assert_ne!(
                helper.ioctl(0xc058_7a03, arg.addr()),
                0,
                "DTRACEHIOC_ADDDOF with an unreadable DOF fails"
            );
            drop(helper);
            finish(kld, client);
        },
    );
}

#[test]
fn conversation_repeated_aggsnaps_add_up() {
    run_isolated("conversation_repeated_aggsnaps_add_up", "aggsnaps", || {
        let Some((kld, client)) = start("conversation_repeated_aggsnaps_add_up") else {
            return;
        };
        let prog = compile_for(&client, "tick-10ms { @n = count(); }");
        must("DTRACEIOC_ENABLE", client.enable(&prog.dof));
        let fired_before = kernel::callout::total_fired();
        let t0 = std::time::Instant::now();
        must("DTRACEIOC_GO", client.go());
        println!(
            "koharness: DTRACEIOC_GO took {} ms",
            t0.elapsed().as_millis()
        );
        let mut total = 0;
        let mut snaps = Vec::new();
        for _ in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let v = aggregation_values(&client, &prog)
                .get("n")
                .copied()
                .unwrap_or(0);
            snaps.push(v);
            total += v;
        }
        must("DTRACEIOC_STOP", client.stop());
        let v = aggregation_values(&client, &prog)
            .get("n")
            .copied()
            .unwrap_or(0);
        snaps.push(v);
        total += v;
        let fired = kernel::callout::total_fired() - fired_before;
        println!("koharness: tick-10ms over ~300 ms: snapshots {snaps:?}, total {total}, callouts fired {fired}");
        assert!(
            total >= 10,
            "tick-10ms counted only {total} in ~300 ms (snapshots {snaps:?}, {fired} callouts)"
        );
        finish(kld, client);
    });
}

#[test]
fn conversation_concurrent_consumers_on_different_cpus() {
    run_isolated(
        "conversation_concurrent_consumers_on_different_cpus",
        "concurrent",
        || {
            let Some((kld, first)) = start("conversation_concurrent_consumers_on_different_cpus")
            else {
                return;
            };
            drop(first);
            let results: Vec<i64> = std::thread::scope(|s| {
                let workers: Vec<_> = (0..3)
                    .map(|i| {
                        s.spawn(move || {
                            cpu::set_home_cpu(i + 1);
                            let mut total = 0;
                            for round in 0..2 {
                                let file = devfs::open("/dev/dtrace/dtrace", libc::O_RDWR)
                                    .unwrap_or_else(|e| panic!("consumer {i}: open: errno {e}"));
                                let client = Client::new(Box::new(HarnessDevice { file }));
                                let prog = compile_for(
                                    &client,
                                    "profile-997hz { @n = count(); } tick-1ms { @t = count(); }",
                                );
                                assert!(
                                    must("DTRACEIOC_ENABLE", client.enable(&prog.dof)) >= 2,
                                    "consumer {i} round {round}"
                                );
                                must("DTRACEIOC_GO", client.go());
                                std::thread::sleep(std::time::Duration::from_millis(150));
                                must("DTRACEIOC_STATUS", client.status());
                                must("DTRACEIOC_STOP", client.stop());
                                let aggs = aggregation_values(&client, &prog);
                                total += aggs.get("n").copied().unwrap_or(0);
                            }
                            assert!(total > 0, "consumer {i}: profile never fired in two rounds");
                            total
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("consumer thread"))
                    .collect()
            });
            println!("koharness: three concurrent consumers counted {results:?} profile firings");
            let (kld, client) = (kld, {
                let file = devfs::open("/dev/dtrace/dtrace", libc::O_RDWR).expect("reopen");
                Client::new(Box::new(HarnessDevice { file }))
            });
            finish(kld, client);
        },
    );
}

/// A loaded module's SDT records: provider "sdtmod_prov", probe
/// sdtmod_prov:sdtmod:sdtmod_func:ev-one (2 arguments), and its linker sets,
/// all inside one block that stands for the module's memory.
struct FakeSdtModule {
    block: &'static mut [u64],
}

impl FakeSdtModule {
    const PROVIDER: usize = 0; // words
    const PROBE: usize = 8; // 40-byte provider rounded up to 64
    const PROVIDERS_SET: usize = 24; // after the 112-byte probe
    const PROBES_SET: usize = 25;

    fn new(provider: &str) -> FakeSdtModule {
        let block: &'static mut [u64] = Box::leak(vec![0u64; 32].into_boxed_slice());
        let base = block.as_ptr() as u64;
        block[Self::PROVIDER] = kernel::leak_c_string(provider);
        let p = Self::PROBE;
        block[p] = sdt::SDT_PROBE_SIZE as u64; // version
        block[p + 1] = base + 8 * Self::PROVIDER as u64;
        block[p + 8] = kernel::leak_c_string(""); // module: the file's name
        block[p + 9] = kernel::leak_c_string("sdtmod_func");
        block[p + 10] = kernel::leak_c_string("ev__one");
        block[p + 12] = 2; // n_args
        block[Self::PROVIDERS_SET] = base + 8 * Self::PROVIDER as u64;
        block[Self::PROBES_SET] = base + 8 * Self::PROBE as u64;
        FakeSdtModule { block }
    }

    fn base(&self) -> u64 {
        self.block.as_ptr() as u64
    }

    fn probe_id(&self) -> u64 {
        // SAFETY: the probe record's id word (offset 88) inside the block.
        unsafe { std::ptr::read_volatile(self.block.as_ptr().add(Self::PROBE + 11)) }
    }

    fn sets(&self) -> Vec<(String, u64, u64)> {
        let at = |w: usize| self.base() + 8 * w as u64;
        vec![
            (
                "set_sdt_providers_set".into(),
                at(Self::PROVIDERS_SET),
                at(Self::PROVIDERS_SET + 1),
            ),
            (
                "set_sdt_probes_set".into(),
                at(Self::PROBES_SET),
                at(Self::PROBES_SET + 1),
            ),
        ]
    }
}

#[test]
fn conversation_sdt_probes_follow_module_load_and_unload() {
    run_isolated(
        "conversation_sdt_probes_follow_module_load_and_unload",
        "kld-sdt",
        || {
            let Some((kld, first)) = start("conversation_sdt_probes_follow_module_load_and_unload")
            else {
                return;
            };
            let second = Client::new(Box::new(HarnessDevice {
                file: devfs::open("/dev/dtrace/dtrace", libc::O_RDWR)
                    .unwrap_or_else(|e| panic!("second open: errno {e}")),
            }));
            let module = FakeSdtModule::new("sdtmod_prov");
            let lf = kernel::linker::add_file(
                "sdtmod.ko",
                module.base(),
                (module.block.len() * 8) as u64,
                Vec::new(),
                module.sets(),
            );
            let has_probe = |client: &Client| {
                probe_list(client).iter().any(|p| {
                    p.provider_str() == Some("sdtmod_prov")
                        && p.module_str() == Some("sdtmod")
                        && p.function_str() == Some("sdtmod_func")
                        && p.name_str() == Some("ev-one")
                })
            };
            assert!(!has_probe(&first), "no probe before the module loads");
            kernel::eventhandler::invoke_kld_load(lf);
            assert!(
                has_probe(&first),
                "kld_load created the module's SDT probe under its own provider"
            );
            let prog = compile_for(&first, "sdtmod_prov:::ev-one { trace(arg0); trace(arg1); }");
            assert_eq!(must("DTRACEIOC_ENABLE", first.enable(&prog.dof)), 1);
            must("DTRACEIOC_GO", first.go());
            let id = module.probe_id();
            assert_ne!(
                id, 0,
                "enabling stored the DTrace id in the module's record"
            );
            cpu::enter_kernel(1);
            assert!(hooks::fire_sdt(id as u32, [42, 43, 0, 0, 0, 0]));
            cpu::leave_kernel();
            assert_eq!(
                kernel::eventhandler::invoke_kld_unload_try(lf),
                libc::EBUSY,
                "a module with an enabled SDT probe cannot unload"
            );
            must("DTRACEIOC_STOP", first.stop());
            let ints = traced_ints(&snapshot_records(&first));
            assert!(ints.contains(&vec![42, 43]), "module SDT args in {ints:?}");
            drop(first);
            assert_eq!(
                module.probe_id(),
                0,
                "closing the consumer disabled the probe"
            );
            assert_eq!(
                kernel::eventhandler::invoke_kld_unload_try(lf),
                0,
                "nothing enabled: the module may unload"
            );
            kernel::linker::remove_file(lf);
            kernel::eventhandler::invoke_kld_unload(
                kernel::leak_c_string("sdtmod.ko"),
                module.base(),
                (module.block.len() * 8) as u64,
            );
            assert!(
                !has_probe(&second),
                "the departed module's probes were removed"
            );

            // A module whose SDT provider name is taken ("profile") loads
            // without harm: that provider's probes are left out.
            let clash = FakeSdtModule::new("profile");
            let clash_lf = kernel::linker::add_file(
                "clash.ko",
                clash.base(),
                (clash.block.len() * 8) as u64,
                Vec::new(),
                clash.sets(),
            );
            kernel::eventhandler::invoke_kld_load(clash_lf);
            assert!(
                !probe_list(&second)
                    .iter()
                    .any(|p| p.name_str() == Some("ev-one")),
                "no probe for the refused provider"
            );
            assert!(
                kernel::console().contains("sdt: provider profile not registered"),
                "the refusal is reported on the console"
            );
            assert_eq!(kernel::eventhandler::invoke_kld_unload_try(clash_lf), 0);
            kernel::linker::remove_file(clash_lf);
            finish(kld, second);
        },
    );
}
