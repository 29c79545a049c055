//! The amd64 fbt trap path of the real rdtrace.ko, instruction by
//! instruction: fake kernel functions (kernel/ktext.rs) whose prologues take
//! the `call rel32`, `push %rbp`, `sub $imm,%rsp` and NOP emulations and
//! whose return sites are a `ret` after `leave` or a frameless epilogue, or
//! a tail-call `jmp`, and an int3
//! that is no probe's, which the module's stub must pass on to
//! `dtrace_invop_calltrap_addr` with the trap frame exactly as the kernel
//! built it. Each call loads sentinels into the callee-saved registers and
//! checks them, the stack pointer and the result afterwards; the probes'
//! records are checked for the entry arguments and the return offset and
//! value. Each test runs in a child process.

mod common;

use std::sync::atomic::Ordering;

use common::consumer::{compile_for, finish, must, snapshot_records, start, traced_ints};
use rdtrace_koharness::isolate::run_isolated;
use rdtrace_koharness::kernel::ktext::{self, CALLEE_SAVED_SENTINELS, EMULATION_TARGETS};
use rdtrace_koharness::kernel::trap;

/// The bytes of kernel function `name` (its symbol size).
fn code_of(name: &str) -> Vec<u8> {
    let sym = rdtrace_koharness::kernel::image()
        .symbol(name)
        .unwrap_or_else(|| panic!("no kernel function {name}"));
    // SAFETY: the symbol covers mapped, readable kernel text.
    unsafe { std::slice::from_raw_parts(sym.addr as *const u8, sym.size as usize) }.to_vec()
}

/// Tag traced first by the clause of target `i`'s entry (1) or return (2).
fn tag(i: usize, which: u64) -> u64 {
    100 * (i as u64 + 1) + which
}

#[test]
fn fbt_prologue_and_return_emulations_keep_registers_and_stack() {
    run_isolated(
        "fbt_prologue_and_return_emulations_keep_registers_and_stack",
        "fbt-emulation",
        || {
            let Some((kld, client)) =
                start("fbt_prologue_and_return_emulations_keep_registers_and_stack")
            else {
                return;
            };
            let original: Vec<Vec<u8>> = EMULATION_TARGETS
                .iter()
                .map(|(name, _)| code_of(name))
                .collect();
            let mut source = String::new();
            for (i, (name, _)) in EMULATION_TARGETS.iter().enumerate() {
                source.push_str(&format!(
                    "fbt::{name}:entry {{ trace({}); trace(arg0); trace(arg1); }}\n\
                     fbt::{name}:return {{ trace({}); trace(arg0); trace(arg1); }}\n",
                    tag(i, 1),
                    tag(i, 2)
                ));
            }
            let prog = compile_for(&client, &source);
            assert_eq!(
                must("DTRACEIOC_ENABLE", client.enable(&prog.dof)),
                2 * EMULATION_TARGETS.len() as i32,
                "an entry and a return probe for every target"
            );
            must("DTRACEIOC_GO", client.go());
            for (i, (name, ret_offset)) in EMULATION_TARGETS.iter().enumerate() {
                let code = code_of(name);
                assert_eq!(code[0], 0xcc, "{name}: int3 on the first instruction");
                assert_eq!(
                    code[*ret_offset as usize], 0xcc,
                    "{name}: int3 on the ret at {ret_offset}"
                );
                let changed = code
                    .iter()
                    .zip(&original[i])
                    .filter(|(now, was)| now != was)
                    .count();
                assert_eq!(changed, 2, "{name}: only the two probe sites are patched");
            }

            let traps_before = trap::INVOP_TRAPS.load(Ordering::SeqCst);
            let call_first = ktext::function_addr("harness_fbt_call_first");
            let mut out = [0u64; 2];
            let out_addr = out.as_mut_ptr() as u64;
            let calls = [
                // (target, a, b, expected result, %rax at the return site)
                ("harness_fbt_call_first", out_addr, 41, 42, 42),
                ("harness_fbt_leave_frame", 6, 7, 42, 42),
                ("harness_fbt_sub_rsp", 50, 8, 42, 42),
                ("harness_fbt_nop_entry", 40, 1, 42, 42),
                ("harness_fbt_tail_call", 30, 12, 42, 0),
            ];
            for (i, (name, a, b, want, _)) in calls.iter().enumerate() {
                let cpu = i % rdtrace_koharness::kernel::cpu::ncpu();
                let got = ktext::call_checked(cpu, name, *a, *b);
                assert_eq!(got.ret, *want, "{name}({a}, {b}) under fbt");
                assert_eq!(
                    got.callee_saved, CALLEE_SAVED_SENTINELS,
                    "{name}: callee-saved registers after the emulations"
                );
                assert_eq!(got.rsp_delta, 0, "{name}: stack pointer after the call");
            }
            // SAFETY: `out` was written by the kernel function through the
            // pointer we passed; read it back without assuming the compiler
            // saw the store.
            let out = unsafe { std::ptr::read_volatile(&out) };
            assert_eq!(
                out[0],
                call_first + 5,
                "the emulated call pushed the address after itself"
            );
            assert_eq!(out[1], 8, "the emulated call moved %rsp down by one word");
            assert_eq!(
                trap::INVOP_TRAPS.load(Ordering::SeqCst) - traps_before,
                2 * calls.len() as u64,
                "one entry and one return breakpoint per call"
            );

            must("DTRACEIOC_STOP", client.stop());
            let mut ints = traced_ints(&snapshot_records(&client));
            ints.sort();
            let mut expected = Vec::new();
            for (i, ((_, ret_offset), (_, a, b, _, at_return))) in
                EMULATION_TARGETS.iter().zip(&calls).enumerate()
            {
                expected.push(vec![tag(i, 1), *a, *b]);
                expected.push(vec![tag(i, 2), *ret_offset, *at_return]);
            }
            expected.sort();
            assert_eq!(
                ints, expected,
                "entry args and (return offset, return value) of every target"
            );
            finish(kld, client);
            for (i, (name, _)) in EMULATION_TARGETS.iter().enumerate() {
                assert_eq!(code_of(name), original[i], "{name}: restored at unload");
            }
            let again = ktext::call_checked(0, "harness_fbt_leave_frame", 5, 5);
            assert_eq!(again.ret, 25, "unpatched code still runs");
        },
    );
}

#[test]
fn fbt_unclaimed_breakpoint_reaches_calltrap_with_the_kernel_frame() {
    run_isolated(
        "fbt_unclaimed_breakpoint_reaches_calltrap_with_the_kernel_frame",
        "fbt-stray",
        || {
            let Some((kld, client)) =
                start("fbt_unclaimed_breakpoint_reaches_calltrap_with_the_kernel_frame")
            else {
                return;
            };
            ktext::resume_stray_breakpoints(true);
            let stray = ktext::function_addr("harness_fbt_stray_int3");
            let check = |cpu: usize, a: u64, b: u64, round: usize| {
                let traps_before = trap::INVOP_TRAPS.load(Ordering::SeqCst);
                let got = ktext::call_checked(cpu, "harness_fbt_stray_int3", a, b);
                assert_eq!(got.ret, a + b, "resumed after the stray int3");
                assert_eq!(got.callee_saved, CALLEE_SAVED_SENTINELS);
                assert_eq!(got.rsp_delta, 0);
                assert_eq!(
                    trap::INVOP_TRAPS.load(Ordering::SeqCst) - traps_before,
                    1,
                    "the breakpoint went to dtrace_invop_jump_addr first"
                );
                let strays = ktext::stray_breakpoints();
                assert_eq!(strays.len(), round, "calltrap reached once per stray int3");
                let seen = strays[round - 1];
                let (built_at, built) = trap::last_breakpoint_frame();
                assert_eq!(
                    seen.frame_addr, built_at,
                    "calltrap entered with %rsp at the kernel's trap frame"
                );
                assert_eq!(
                    seen.frame, built,
                    "the trap frame is as the kernel built it"
                );
                assert_eq!(seen.frame[19], stray + 1, "tf_rip after the int3");
                assert_eq!(seen.frame[15], u64::from(trap::T_BPTFLT), "tf_trapno");
                assert_eq!((seen.frame[0], seen.frame[1]), (a, b), "tf_rdi, tf_rsi");
                assert_eq!(
                    [
                        seen.frame[7],
                        seen.frame[8],
                        seen.frame[11],
                        seen.frame[12],
                        seen.frame[13],
                        seen.frame[14]
                    ],
                    CALLEE_SAVED_SENTINELS,
                    "tf_rbx, tf_rbp, tf_r12..tf_r15"
                );
            };
            // No fbt probe enabled yet (empty site table), then with one
            // enabled elsewhere: neither claims the breakpoint.
            check(1, 30, 12, 1);
            let prog = compile_for(
                &client,
                "fbt::harness_fbt_target:entry { trace(arg0); trace(arg1); }",
            );
            assert_eq!(must("DTRACEIOC_ENABLE", client.enable(&prog.dof)), 1);
            must("DTRACEIOC_GO", client.go());
            check(2, 100, 23, 2);
            assert_eq!(ktext::call_fbt_target(3, 8, 9), 17);
            must("DTRACEIOC_STOP", client.stop());
            let ints = traced_ints(&snapshot_records(&client));
            assert_eq!(
                ints,
                vec![vec![8, 9]],
                "only the real probe fired; the stray int3 made no record"
            );
            finish(kld, client);
            ktext::resume_stray_breakpoints(false);
        },
    );
}
