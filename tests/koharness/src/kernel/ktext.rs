//! Real code in the fake kernel's text (beyond the KPI trampolines):
//! functions an FBT provider can instrument, and the `calltrap` stub that
//! the amd64 trap path leaves in `dtrace_invop_calltrap_addr`.
//!
//! * `harness_fbt_target(a, b)` returns `a + b` with a classic frame-pointer
//!   prologue (`push %rbp; mov %rsp,%rbp; …; pop %rbp; ret`), so an amd64
//!   FBT provider finds an entry site (the `push %rbp`) and a return site.
//! * `harness_sdt_site(a0, a1)` is an SDT probe site as FreeBSD 15 emits it:
//!   a 5-byte NOP (the tracepoint, patched to `jmp rel32` when the probe is
//!   enabled) followed by `ret`; `harness_sdt_site_ool` is its out-of-line
//!   block, which calls the kernel's `sdt_probe(probe->id, a0, a1)` and
//!   returns to the site's caller (see sdt.rs).
//! * `harness_calltrap` is where a breakpoint handler jumps when the trap was
//!   not DTrace's: with `%rsp` at the trap frame, it reports the stray
//!   breakpoint as a kernel panic (the real kernel would enter the debugger)
//!   — unless a test asked for [`resume_stray_breakpoints`]: then it records
//!   the frame it was given and resumes from it (`iretq` after the int3),
//!   as a debugger's "continue" would.
//! * Functions whose prologues and return sites take each of the amd64
//!   emulations the fbt trap path performs (see [`EMULATION_TARGETS`]):
//!   `harness_fbt_call_first` starts with `call rel32` (to
//!   `harness_fbt_call_helper`, which reports the return address and stack
//!   pointer it sees in %rdx/%rcx), `harness_fbt_leave_frame` has a full
//!   frame torn down by `leave`, `harness_fbt_sub_rsp` starts with
//!   `sub $24,%rsp` and has no frame pointer, `harness_fbt_nop_entry` starts
//!   with a 5-byte NOP, `harness_fbt_tail_call` returns through a `jmp` to
//!   `harness_fbt_target`. `harness_fbt_stray_int3` holds an int3 that is
//!   no probe's.
//!
//! [`call_fbt_target`] calls the target from inside the kernel;
//! [`call_checked`] calls any of them with sentinel values in the
//! callee-saved registers and reports what came back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Machine code of `harness_fbt_target`.
pub const FBT_TARGET_CODE: [u8; 10] = [
    0x55, // push %rbp
    0x48, 0x89, 0xe5, // mov %rsp,%rbp
    0x48, 0x8d, 0x04, 0x37, // lea (%rdi,%rsi),%rax
    0x5d, // pop %rbp
    0xc3, // ret
];

/// A breakpoint that reached `harness_calltrap`.
#[derive(Clone, Copy, Debug)]
pub struct StrayBreakpoint {
    /// `%rsp` when `harness_calltrap` was entered (the trap frame's address).
    pub frame_addr: u64,
    /// The `struct trapframe` there, as `harness_calltrap` found it.
    pub frame: [u64; 24],
}

static RESUME_STRAY: AtomicBool = AtomicBool::new(false);
static STRAYS: Mutex<Vec<StrayBreakpoint>> = Mutex::new(Vec::new());

/// Make `harness_calltrap` record stray breakpoints and resume after them
/// instead of panicking.
pub fn resume_stray_breakpoints(resume: bool) {
    RESUME_STRAY.store(resume, Ordering::SeqCst);
}

/// The stray breakpoints recorded so far (see [`resume_stray_breakpoints`]).
pub fn stray_breakpoints() -> Vec<StrayBreakpoint> {
    STRAYS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

extern "C" fn stray_breakpoint(frame: *const u64) {
    // SAFETY: the stub passes the trap frame's address (24 words).
    let words = unsafe { std::ptr::read(frame as *const [u64; 24]) };
    if RESUME_STRAY.load(Ordering::SeqCst) {
        STRAYS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(StrayBreakpoint {
                frame_addr: frame as u64,
                frame: words,
            });
        return;
    }
    super::kpanic(&format!(
        "stray breakpoint at {:#x}: not claimed by the DTrace invop handler",
        words[19].wrapping_sub(1)
    ));
}

fn calltrap_code() -> Vec<u8> {
    let mut v = vec![
        0x48, 0x89, 0xe3, // mov %rsp,%rbx (the frame; %rbx is reloaded from it below)
        0x48, 0x89, 0xe7, // mov %rsp,%rdi
        0x48, 0x83, 0xe4, 0xf0, // and $-16,%rsp
        0x48, 0xb8, // movabs $imm64,%rax
    ];
    v.extend_from_slice(&(stray_breakpoint as *const () as u64).to_le_bytes());
    v.extend_from_slice(&[
        0xff, 0xd0, // call *%rax (returns only when resuming)
        0x48, 0x89, 0xdc, // mov %rbx,%rsp
        0x48, 0x8b, 0x3c, 0x24, // mov (%rsp),%rdi
        0x48, 0x8b, 0x74, 0x24, 0x08, // mov 8(%rsp),%rsi
        0x48, 0x8b, 0x54, 0x24, 0x10, // mov 16(%rsp),%rdx
        0x48, 0x8b, 0x4c, 0x24, 0x18, // mov 24(%rsp),%rcx
        0x4c, 0x8b, 0x44, 0x24, 0x20, // mov 32(%rsp),%r8
        0x4c, 0x8b, 0x4c, 0x24, 0x28, // mov 40(%rsp),%r9
        0x48, 0x8b, 0x44, 0x24, 0x30, // mov 48(%rsp),%rax
        0x48, 0x8b, 0x5c, 0x24, 0x38, // mov 56(%rsp),%rbx
        0x48, 0x8b, 0x6c, 0x24, 0x40, // mov 64(%rsp),%rbp
        0x4c, 0x8b, 0x54, 0x24, 0x48, // mov 72(%rsp),%r10
        0x4c, 0x8b, 0x5c, 0x24, 0x50, // mov 80(%rsp),%r11
        0x4c, 0x8b, 0x64, 0x24, 0x58, // mov 88(%rsp),%r12
        0x4c, 0x8b, 0x6c, 0x24, 0x60, // mov 96(%rsp),%r13
        0x4c, 0x8b, 0x74, 0x24, 0x68, // mov 104(%rsp),%r14
        0x4c, 0x8b, 0x7c, 0x24, 0x70, // mov 112(%rsp),%r15
        0x48, 0x81, 0xc4, 0x98, 0x00, 0x00, 0x00, // add $152,%rsp (to tf_rip)
        0x48, 0xcf, // iretq
    ]);
    v
}

/// `harness_fbt_call_helper`: %rdx = its return address, %rcx = its %rsp.
const CALL_HELPER_CODE: [u8; 8] = [
    0x48, 0x8b, 0x14, 0x24, // mov (%rsp),%rdx
    0x48, 0x89, 0xe1, // mov %rsp,%rcx
    0xc3, // ret
];

/// `harness_fbt_call_first(out, a)`: calls the helper first, then stores
/// out[0] = the return address the helper saw and out[1] = its own %rsp
/// minus the helper's (8 if the call pushed exactly one word where it
/// should); returns a + 1. The rel32 is filled in by [`functions`].
const CALL_FIRST_CODE: [u8; 23] = [
    0xe8, 0, 0, 0, 0, // call harness_fbt_call_helper
    0x48, 0x89, 0x17, // mov %rdx,(%rdi)
    0x48, 0x89, 0xe0, // mov %rsp,%rax
    0x48, 0x29, 0xc8, // sub %rcx,%rax
    0x48, 0x89, 0x47, 0x08, // mov %rax,8(%rdi)
    0x48, 0x8d, 0x46, 0x01, // lea 1(%rsi),%rax
    0xc3, // ret (offset 22)
];

/// `harness_fbt_leave_frame(a, b)` = a * b through a frame torn down by
/// `leave`; its `ret` is at offset 26.
const LEAVE_FRAME_CODE: [u8; 27] = [
    0x55, // push %rbp
    0x48, 0x89, 0xe5, // mov %rsp,%rbp
    0x48, 0x83, 0xec, 0x20, // sub $32,%rsp
    0x48, 0x89, 0x7d, 0xf8, // mov %rdi,-8(%rbp)
    0x48, 0x89, 0x75, 0xf0, // mov %rsi,-16(%rbp)
    0x48, 0x8b, 0x45, 0xf8, // mov -8(%rbp),%rax
    0x48, 0x0f, 0xaf, 0x45, 0xf0, // imul -16(%rbp),%rax
    0xc9, // leave
    0xc3, // ret
];

/// `harness_fbt_sub_rsp(a, b)` = a - b with a frameless prologue
/// `sub $24,%rsp`; its `ret` is at offset 26.
const SUB_RSP_CODE: [u8; 27] = [
    0x48, 0x83, 0xec, 0x18, // sub $24,%rsp
    0x48, 0x89, 0x3c, 0x24, // mov %rdi,(%rsp)
    0x48, 0x89, 0x74, 0x24, 0x08, // mov %rsi,8(%rsp)
    0x48, 0x8b, 0x04, 0x24, // mov (%rsp),%rax
    0x48, 0x2b, 0x44, 0x24, 0x08, // sub 8(%rsp),%rax
    0x48, 0x83, 0xc4, 0x18, // add $24,%rsp
    0xc3, // ret
];

/// `harness_fbt_nop_entry(a, b)` = a + 2b after a 5-byte NOP; `ret` at 9.
const NOP_ENTRY_CODE: [u8; 10] = [
    0x0f, 0x1f, 0x44, 0x00, 0x00, // nopl 0(%rax,%rax,1)
    0x48, 0x8d, 0x04, 0x77, // lea (%rdi,%rsi,2),%rax
    0xc3, // ret
];

/// `harness_fbt_tail_call(a, b)` tail-calls `harness_fbt_target(a, b)`
/// after clearing %rax: its return site is the `jmp` at offset 7 (the
/// rel32 is filled in by [`functions`]), where %rax is 0.
const TAIL_CALL_CODE: [u8; 12] = [
    0x55, // push %rbp
    0x48, 0x89, 0xe5, // mov %rsp,%rbp
    0x31, 0xc0, // xor %eax,%eax
    0x5d, // pop %rbp
    0xe9, 0, 0, 0, 0, // jmp harness_fbt_target
];

/// `harness_fbt_stray_int3(a, b)` = a + b after an int3 nobody planted.
const STRAY_INT3_CODE: [u8; 6] = [
    0xcc, // int3
    0x48, 0x8d, 0x04, 0x37, // lea (%rdi,%rsi),%rax
    0xc3, // ret
];

/// The fbt emulation targets: (name, offset of the return site).
pub const EMULATION_TARGETS: [(&str, u64); 5] = [
    ("harness_fbt_call_first", 22),
    ("harness_fbt_leave_frame", 26),
    ("harness_fbt_sub_rsp", 26),
    ("harness_fbt_nop_entry", 9),
    ("harness_fbt_tail_call", 7),
];

/// The 5-byte NOP of an unpatched amd64 SDT tracepoint.
pub const SDT_NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

fn sdt_site_code() -> Vec<u8> {
    let mut v = SDT_NOP5.to_vec();
    v.push(0xc3); // ret
    v
}

fn sdt_out_of_line_code() -> Vec<u8> {
    let mut v = vec![
        0x55, // push %rbp (re-aligns the stack for the call)
        0x48, 0x89, 0xe5, // mov %rsp,%rbp
        0x48, 0xb8, // movabs $imm64,%rax
    ];
    v.extend_from_slice(&(super::sdt::out_of_line as *const () as u64).to_le_bytes());
    v.extend_from_slice(&[0xff, 0xd0, 0x5d, 0xc3]); // call *%rax; pop %rbp; ret
    v
}

/// Offsets of `code`'s functions as the image lays them out: each 16-byte
/// aligned after the previous one, from a 64-byte aligned start (mod.rs).
fn layout_offsets(code: &[(&'static str, Vec<u8>)]) -> Vec<usize> {
    let mut at = 0usize;
    code.iter()
        .map(|(_, bytes)| {
            at = at.next_multiple_of(16);
            let here = at;
            at += bytes.len();
            here
        })
        .collect()
}

pub(super) fn functions() -> Vec<(&'static str, Vec<u8>)> {
    let mut code = vec![
        ("harness_fbt_target", FBT_TARGET_CODE.to_vec()),
        ("harness_calltrap", calltrap_code()),
        ("harness_sdt_site", sdt_site_code()),
        ("harness_sdt_site_ool", sdt_out_of_line_code()),
        ("harness_fbt_call_helper", CALL_HELPER_CODE.to_vec()),
        ("harness_fbt_call_first", CALL_FIRST_CODE.to_vec()),
        ("harness_fbt_leave_frame", LEAVE_FRAME_CODE.to_vec()),
        ("harness_fbt_sub_rsp", SUB_RSP_CODE.to_vec()),
        ("harness_fbt_nop_entry", NOP_ENTRY_CODE.to_vec()),
        ("harness_fbt_tail_call", TAIL_CALL_CODE.to_vec()),
        ("harness_fbt_stray_int3", STRAY_INT3_CODE.to_vec()),
    ];
    // Link the rel32 branches: (function, offset of the rel32, target).
    let offsets = layout_offsets(&code);
    let names: Vec<&str> = code.iter().map(|(n, _)| *n).collect();
    let index = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .expect("ktext function")
    };
    for (from, at, to) in [
        ("harness_fbt_call_first", 1usize, "harness_fbt_call_helper"),
        ("harness_fbt_tail_call", 8, "harness_fbt_target"),
    ] {
        let (from, to) = (index(from), index(to));
        let next = offsets[from] as i64 + at as i64 + 4;
        let rel = i32::try_from(offsets[to] as i64 - next).expect("rel32 range");
        code[from].1[at..at + 4].copy_from_slice(&rel.to_le_bytes());
    }
    code
}

/// The address of the kernel function `name`.
pub fn function_addr(name: &str) -> u64 {
    super::image()
        .symbol(name)
        .unwrap_or_else(|| panic!("no kernel function {name}"))
        .addr
}

/// What [`call_checked`] observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedCall {
    /// `%rax` after the call.
    pub ret: u64,
    /// %rbx, %rbp, %r12–%r15 after the call, in that order.
    pub callee_saved: [u64; 6],
    /// `%rsp` after the call minus `%rsp` before it (0 when balanced).
    pub rsp_delta: i64,
}

/// What [`call_checked`] loads into %rbx, %rbp, %r12–%r15 before the call.
pub const CALLEE_SAVED_SENTINELS: [u64; 6] = [
    0x0b0b_0b0b_0b0b_0b0b,
    0x0bb0_0bb0_0bb0_0bb0,
    0x1212_1212_1212_1212,
    0x1313_1313_1313_1313,
    0x1414_1414_1414_1414,
    0x1515_1515_1515_1515,
];

/// Call the kernel function `name(a, b)` on `cpu` with
/// [`CALLEE_SAVED_SENTINELS`] in the callee-saved registers; report the
/// result, those registers afterwards and whether `%rsp` came back.
pub fn call_checked(cpu: usize, name: &str, a: u64, b: u64) -> CheckedCall {
    let addr = function_addr(name);
    let s = CALLEE_SAVED_SENTINELS;
    let (ret, rbx, rbp, r12, r13, r14, r15, rsp_delta): (u64, u64, u64, u64, u64, u64, u64, u64);
    super::cpu::enter_kernel(cpu);
    // SAFETY: `addr` is a SysV-ABI function in kernel text. The block skips
    // the red zone, keeps %rsp 16-byte aligned at the call (128 bytes and
    // four pushes), saves and restores %rbx/%rbp itself (they cannot be
    // operands), keeps the pre-call %rsp on the stack (no caller-saved
    // register survives the call) and declares every register the call may
    // change.
    unsafe {
        std::arch::asm!(
            "sub rsp, 128",
            "push rbx",
            "push rbp",
            "mov rbx, [{s}]",
            "mov rbp, [{s} + 8]",
            "push rbx",
            "push rsp",
            "call {f}",
            "lea rcx, [rsp + 8]",
            "sub rcx, [rsp]",
            "mov rdx, rbx",
            "mov r8, rbp",
            "add rsp, 16",
            "pop rbp",
            "pop rbx",
            "add rsp, 128",
            s = in(reg) s.as_ptr(),
            f = in(reg) addr,
            lateout("rcx") rsp_delta,
            lateout("rdx") rbx,
            lateout("r8") rbp,
            in("rdi") a,
            in("rsi") b,
            inout("r12") s[2] => r12,
            inout("r13") s[3] => r13,
            inout("r14") s[4] => r14,
            inout("r15") s[5] => r15,
            lateout("rax") ret,
            clobber_abi("C"),
        );
    }
    super::cpu::leave_kernel();
    CheckedCall {
        ret,
        callee_saved: [rbx, rbp, r12, r13, r14, r15],
        rsp_delta: rsp_delta as i64,
    }
}

/// Call `harness_fbt_target(a, b)` from inside the kernel on `cpu`.
pub fn call_fbt_target(cpu: usize, a: u64, b: u64) -> u64 {
    let addr = super::image()
        .symbol("harness_fbt_target")
        .expect("kernel function")
        .addr;
    // SAFETY: the function follows the SysV ABI and lives in kernel text.
    let f: extern "C" fn(u64, u64) -> u64 = unsafe { std::mem::transmute(addr) };
    super::cpu::enter_kernel(cpu);
    let r = f(a, b);
    super::cpu::leave_kernel();
    r
}
