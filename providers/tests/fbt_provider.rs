//! The fbt provider over code held in a buffer: probe creation per function
//! (with the deny-list), enable writing breakpoints exactly at the decoded
//! sites, disable restoring the original bytes, and the trap handler firing
//! with the right arguments and emulating.

mod common;

use common::MockHost;
use rdtrace_framework::platform::Errno;
use rdtrace_providers::fbt::isa::aarch64::{A64Reg, Aarch64};
use rdtrace_providers::fbt::isa::x86_64::{X86Reg, X86_64};
use rdtrace_providers::fbt::isa::{RegisterFile, SliceMemory};
use rdtrace_providers::fbt::{FbtProvider, FunctionSymbol, Invop};
use rdtrace_providers::text::TextWriter;
use std::collections::HashMap;
use std::sync::Mutex;

struct BufferText {
    base: u64,
    bytes: Mutex<Vec<u8>>,
}

impl TextWriter for BufferText {
    fn read_text(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let off = addr.checked_sub(self.base).ok_or(Errno::EFAULT)? as usize;
        buf.copy_from_slice(
            self.bytes
                .lock()
                .unwrap()
                .get(off..off + buf.len())
                .ok_or(Errno::EFAULT)?,
        );
        Ok(())
    }
    unsafe fn write_text(&self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        let off = addr.checked_sub(self.base).ok_or(Errno::EFAULT)? as usize;
        self.bytes
            .lock()
            .unwrap()
            .get_mut(off..off + bytes.len())
            .ok_or(Errno::EFAULT)?
            .copy_from_slice(bytes);
        Ok(())
    }
}

struct Regs<R>(HashMap<R, u64>);
impl<R: Copy + std::hash::Hash + Eq> RegisterFile<R> for Regs<R> {
    fn get(&self, r: R) -> u64 {
        self.0.get(&r).copied().unwrap_or(0)
    }
    fn set(&mut self, r: R, v: u64) {
        self.0.insert(r, v);
    }
}

const BASE: u64 = 0x20_0000;

/// Three x86 functions: framed (two returns), leaf with no prologue (return
/// only), and one on the deny-list.
fn x86_module() -> (Vec<u8>, Vec<(&'static str, u64, u64)>) {
    let framed = [
        0x55, 0x48, 0x89, 0xe5, 0x48, 0x85, 0xff, 0x74, 0x02, 0x5d, 0xc3, 0x31, 0xc0, 0x5d, 0xc3,
    ];
    let leaf = [0x48, 0x8d, 0x04, 0x37, 0xc3];
    let denied = [0x55, 0x5d, 0xc3];
    let mut code = Vec::new();
    let mut syms = Vec::new();
    for (name, f) in [
        ("framed", &framed[..]),
        ("leaf", &leaf[..]),
        ("dtrace_probe", &denied[..]),
    ] {
        syms.push((name, BASE + code.len() as u64, f.len() as u64));
        code.extend_from_slice(f);
        code.extend_from_slice(&[0xcc; 1]); // padding between functions
    }
    (code, syms)
}

#[test]
fn x86_probes_patching_and_trap_handling() {
    let host = MockHost::leaked(1);
    let (code, syms) = x86_module();
    let text: &'static BufferText = Box::leak(Box::new(BufferText {
        base: BASE,
        bytes: Mutex::new(code.clone()),
    }));
    let fbt: FbtProvider<X86_64> = FbtProvider::new(host, text);
    fbt.set_handle(3);
    let stats = fbt.provide_module(
        "kernel",
        syms.iter().map(|(n, a, s)| FunctionSymbol {
            name: n,
            addr: *a,
            size: *s,
        }),
    );
    assert_eq!(
        (
            stats.functions,
            stats.excluded,
            stats.entry_probes,
            stats.return_probes,
            stats.return_sites
        ),
        (3, 1, 1, 2, 3)
    );
    let again = fbt.provide_module(
        "kernel",
        syms.iter().map(|(n, a, s)| FunctionSymbol {
            name: n,
            addr: *a,
            size: *s,
        }),
    );
    assert_eq!(
        (again.entry_probes, again.return_probes),
        (0, 0),
        "no duplicates"
    );
    assert_eq!(fbt.site_count(), 4);
    let names: Vec<String> = host
        .probes
        .lock()
        .unwrap()
        .iter()
        .map(|p| format!("{}:{}:{}/{}", p.module, p.function, p.name, p.aframes))
        .collect();
    assert_eq!(
        names,
        vec![
            "kernel:framed:entry/3",
            "kernel:framed:return/3",
            "kernel:leaf:return/3"
        ]
    );

    let entry_id = 1;
    let ret_id = 2;
    let entry_parg = host.probe(entry_id).parg;
    let ret_parg = host.probe(ret_id).parg;
    fbt.enable(entry_id, entry_parg).unwrap();
    fbt.enable(ret_id, ret_parg).unwrap();
    let patched = text.bytes.lock().unwrap().clone();
    let diffs: Vec<usize> = (0..code.len()).filter(|&i| code[i] != patched[i]).collect();
    assert_eq!(diffs, vec![0, 10, 14], "int3 at the push and the two rets");
    assert!(diffs.iter().all(|&i| patched[i] == 0xcc));

    // Trap at the entry: fires with the argument registers and emulates push %rbp.
    let mut regs = Regs(HashMap::new());
    for (i, r) in [
        X86Reg::Rdi,
        X86Reg::Rsi,
        X86Reg::Rdx,
        X86Reg::Rcx,
        X86Reg::R8,
    ]
    .into_iter()
    .enumerate()
    {
        regs.set(r, 100 + i as u64);
    }
    let mut stack = vec![0u8; 64];
    let stack_base = 0x7ff0_0000;
    regs.set(X86Reg::Rsp, stack_base + 32);
    regs.set(X86Reg::Rbp, 0xbbbb);
    let r = fbt.invop(
        BASE,
        &mut regs,
        &mut SliceMemory {
            base: stack_base,
            bytes: &mut stack,
        },
    );
    assert_eq!(r, Invop::Emulated);
    assert_eq!(regs.get(X86Reg::Rsp), stack_base + 24);
    assert_eq!(regs.get(X86Reg::Rip), BASE + 1);
    // Trap at the second ret: arg0 = offset 14, arg1 = rax; emulated ret pops.
    stack[24..32].copy_from_slice(&0x4242u64.to_le_bytes());
    regs.set(X86Reg::Rax, 77);
    let r = fbt.invop(
        BASE + 14,
        &mut regs,
        &mut SliceMemory {
            base: stack_base,
            bytes: &mut stack,
        },
    );
    assert_eq!(r, Invop::Emulated);
    assert_eq!(regs.get(X86Reg::Rip), 0x4242);
    assert_eq!(
        host.take_fired()
            .iter()
            .map(|(id, a, _)| (*id, *a))
            .collect::<Vec<_>>(),
        vec![(1, [100, 101, 102, 103, 104]), (2, [14, 77, 0, 0, 0])]
    );
    // Not ours.
    assert_eq!(
        fbt.invop(
            BASE + 3,
            &mut regs,
            &mut SliceMemory {
                base: stack_base,
                bytes: &mut stack
            }
        ),
        Invop::NotOurs
    );
    assert!(host.take_fired().is_empty());

    fbt.disable(entry_id, entry_parg);
    fbt.disable(ret_id, ret_parg);
    assert_eq!(
        *text.bytes.lock().unwrap(),
        code,
        "disable restores the original bytes exactly"
    );

    // Someone else changed the code: enabling refuses instead of corrupting it.
    text.bytes.lock().unwrap()[0] = 0x90;
    assert_eq!(fbt.enable(entry_id, entry_parg), Err(Errno::EBUSY));
    assert_eq!(text.bytes.lock().unwrap()[0], 0x90);
    text.bytes.lock().unwrap()[0] = 0x55;

    // Destroy removes the sites from the trap handler's view (after a sync).
    let syncs = host.syncs.load(std::sync::atomic::Ordering::SeqCst);
    fbt.destroy(entry_id, entry_parg);
    assert_eq!(fbt.site_count(), 3);
    assert!(host.syncs.load(std::sync::atomic::Ordering::SeqCst) > syncs);
    assert_eq!(
        fbt.invop(
            BASE,
            &mut regs,
            &mut SliceMemory {
                base: stack_base,
                bytes: &mut stack
            }
        ),
        Invop::NotOurs
    );
}

#[test]
fn arm64_probes_and_drop_restores() {
    let host = MockHost::leaked(1);
    // stp x29,x30,[sp,#-16]!; mov x29,sp; ldp x29,x30,[sp],#16; ret
    let words = [0xa9bf7bfdu32, 0x910003fd, 0xa8c17bfd, 0xd65f03c0];
    let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let text: &'static BufferText = Box::leak(Box::new(BufferText {
        base: BASE,
        bytes: Mutex::new(code.clone()),
    }));
    {
        let fbt: FbtProvider<Aarch64> = FbtProvider::new(host, text);
        let stats = fbt.provide_module(
            "kernel",
            [FunctionSymbol {
                name: "f",
                addr: BASE,
                size: 16,
            }],
        );
        assert_eq!((stats.entry_probes, stats.return_probes), (1, 1));
        assert_eq!(host.probe(1).aframes, 4);
        fbt.enable(1, host.probe(1).parg).unwrap();
        fbt.enable(2, host.probe(2).parg).unwrap();
        let patched = text.bytes.lock().unwrap().clone();
        assert_eq!(&patched[0..4], &0xD42081A0u32.to_le_bytes());
        assert_eq!(&patched[12..16], &0xD42081A0u32.to_le_bytes());
        let mut regs = Regs(HashMap::new());
        regs.set(A64Reg::X(0), 5);
        regs.set(A64Reg::X(30), 0x9999);
        let mut stack = vec![0u8; 32];
        regs.set(A64Reg::Sp, 0x1000 + 32);
        assert_eq!(
            fbt.invop(
                BASE + 12,
                &mut regs,
                &mut SliceMemory {
                    base: 0x1000,
                    bytes: &mut stack
                }
            ),
            Invop::Emulated
        );
        assert_eq!(regs.get(A64Reg::Pc), 0x9999);
        assert_eq!(host.take_fired()[0].1, [12, 5, 0, 0, 0]);
        // Dropping the provider with probes enabled restores the code.
    }
    assert_eq!(*text.bytes.lock().unwrap(), code);
}

#[test]
fn freebsd_trap_handlers_on_trap_frames() {
    use rdtrace_providers::fbt::isa::riscv64::Riscv64;
    use rdtrace_providers::fbt::kernel::{amd64_invop, arm64_invop, riscv64_invop, INVOP_EMULATED};
    use rdtrace_providers::fbt::trapframe::{Amd64TrapFrame, Arm64TrapFrame, RiscvTrapFrame};

    // amd64: push %rbp; ... ret, and sub $0x28,%rsp; add $0x28,%rsp; ret.
    let host = MockHost::leaked(1);
    let framed = [0x55u8, 0x48, 0x89, 0xe5, 0x5d, 0xc3];
    let sub = [0x48u8, 0x83, 0xec, 0x28, 0x48, 0x83, 0xc4, 0x28, 0xc3];
    let mut code = framed.to_vec();
    code.extend_from_slice(&sub);
    let text: &'static BufferText = Box::leak(Box::new(BufferText {
        base: BASE,
        bytes: Mutex::new(code),
    }));
    let fbt: FbtProvider<X86_64> = FbtProvider::new(host, text);
    fbt.provide_module(
        "kernel",
        [
            FunctionSymbol {
                name: "framed",
                addr: BASE,
                size: 6,
            },
            FunctionSymbol {
                name: "sub",
                addr: BASE + 6,
                size: 9,
            },
        ],
    );
    let mut words = [0u64; 24];
    words[0] = 11; // rdi
    words[22] = 0x8000; // rsp
    words[19] = BASE + 1; // rip after the int3
    assert_eq!(
        amd64_invop(&fbt, BASE, &mut Amd64TrapFrame(&mut words)),
        1,
        "push %rbp is the stub's"
    );
    assert_eq!(
        amd64_invop(&fbt, BASE + 5, &mut Amd64TrapFrame(&mut words)),
        5,
        "ret is the stub's"
    );
    words[19] = BASE + 7;
    assert_eq!(
        amd64_invop(&fbt, BASE + 6, &mut Amd64TrapFrame(&mut words)),
        INVOP_EMULATED
    );
    assert_eq!(
        (words[22], words[19]),
        (0x8000 - 0x28, BASE + 10),
        "sub emulated on the frame"
    );
    assert_eq!(
        amd64_invop(&fbt, BASE + 2, &mut Amd64TrapFrame(&mut words)),
        0,
        "not a site"
    );
    let fired: Vec<_> = host
        .take_fired()
        .into_iter()
        .map(|(id, a, _)| (id, a[0], a[1]))
        .collect();
    assert_eq!(fired, vec![(1, 11, 0), (2, 5, 0), (3, 11, 0)]);

    // arm64: ret at the function's only instruction pair: stp; ret.
    let host = MockHost::leaked(1);
    let words32 = [0xa9bf7bfdu32, 0xd65f03c0];
    let code: Vec<u8> = words32.iter().flat_map(|w| w.to_le_bytes()).collect();
    let text: &'static BufferText = Box::leak(Box::new(BufferText {
        base: BASE,
        bytes: Mutex::new(code),
    }));
    let fbt: FbtProvider<Aarch64> = FbtProvider::new(host, text);
    fbt.provide_module(
        "kernel",
        [FunctionSymbol {
            name: "f",
            addr: BASE,
            size: 8,
        }],
    );
    let mut frame = [0u64; 36];
    frame[2] = BASE + 4; // elr = the ret
    frame[1] = 0x7777; // lr
    frame[6] = 42; // x0
    assert_eq!(
        arm64_invop(&fbt, 0x1000, &mut Arm64TrapFrame(&mut frame)),
        0
    );
    assert_eq!(frame[2], 0x7777);
    assert_eq!(host.take_fired()[0].1[..2], [4, 42]);
    // stp whose store would land inside the trap frame: refused, not handled.
    let frame_addr = frame.as_ptr() as u64;
    let mut frame2 = [0u64; 36];
    frame2[2] = BASE;
    frame2[0] = frame_addr + 16 + 16; // sp just above: stp [sp,#-16]! hits the frame
    let before = frame2;
    assert_eq!(
        arm64_invop(&fbt, frame_addr, &mut Arm64TrapFrame(&mut frame2)),
        1
    );
    assert_eq!(frame2, before, "a refused emulation leaves the frame alone");

    // riscv64: c.addi sp,-16 ; c.jr ra
    let host = MockHost::leaked(1);
    let code: Vec<u8> = [0x1141u16, 0x8082]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let text: &'static BufferText = Box::leak(Box::new(BufferText {
        base: BASE,
        bytes: Mutex::new(code),
    }));
    let fbt: FbtProvider<Riscv64> = FbtProvider::new(host, text);
    fbt.provide_module(
        "kernel",
        [FunctionSymbol {
            name: "g",
            addr: BASE,
            size: 4,
        }],
    );
    let mut frame = [0u64; 35];
    frame[31] = BASE; // sepc
    frame[1] = 0x9000; // sp
    frame[23] = 3; // a0
    assert_eq!(
        riscv64_invop(&fbt, 0x10, &mut RiscvTrapFrame(&mut frame)),
        0
    );
    assert_eq!((frame[1], frame[31]), (0x9000 - 16, BASE + 2));
    frame[0] = 0x5554; // ra
    assert_eq!(
        riscv64_invop(&fbt, 0x10, &mut RiscvTrapFrame(&mut frame)),
        0
    );
    assert_eq!(frame[31], 0x5554);
    assert_eq!(
        host.take_fired()
            .iter()
            .map(|(_, a, _)| a[0])
            .collect::<Vec<_>>(),
        vec![3, 2]
    );
}

#[test]
fn module_unload_support_pins_enabled_functions_and_reprovides_the_rest() {
    let host = MockHost::leaked(1);
    let (code, syms) = x86_module();
    let text: &'static BufferText = Box::leak(Box::new(BufferText {
        base: BASE,
        bytes: Mutex::new(code.clone()),
    }));
    let fbt: FbtProvider<X86_64> = FbtProvider::new(host, text);
    fbt.set_handle(3);
    let provide = || {
        fbt.provide_module(
            "kernel",
            syms.iter().map(|(n, a, s)| FunctionSymbol {
                name: n,
                addr: *a,
                size: *s,
            }),
        )
    };
    assert_eq!(provide().entry_probes, 1);
    // Probes in creation order: framed entry (parg 0), framed return (1), leaf return (2).
    let list = fbt.probe_list();
    let (framed_entry, leaf_return) = (list[0], list[2]);
    let framed_at = syms[0].1;
    let leaf_at = syms[1].1;
    fbt.enable(framed_entry.0, framed_entry.1).unwrap();
    assert!(fbt.enabled_in(framed_at, framed_at + 1), "framed is pinned");
    assert!(
        !fbt.enabled_in(leaf_at, leaf_at + 5),
        "leaf has nothing enabled"
    );

    // Destroying a never-enabled probe needs no sync (no trap can be at its sites).
    let syncs = host.syncs.load(std::sync::atomic::Ordering::SeqCst);
    fbt.destroy(leaf_return.0, leaf_return.1);
    assert_eq!(host.syncs.load(std::sync::atomic::Ordering::SeqCst), syncs);

    // After the removal, the next provide instruments leaf again but not framed,
    // which still has its (enabled) probes.
    assert_eq!(provide().return_probes, 0, "leaf still marked as seen");
    fbt.forget_unprobed_functions();
    let again = provide();
    assert_eq!(
        (again.entry_probes, again.return_probes),
        (0, 1),
        "only leaf's return probe is created again"
    );
    fbt.disable(framed_entry.0, framed_entry.1);
    assert!(!fbt.enabled_in(framed_at, framed_at + 1));
}
