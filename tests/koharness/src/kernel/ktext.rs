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
//!   breakpoint as a kernel panic (the real kernel would enter the debugger).
//!
//! [`call_fbt_target`] calls the target from inside the kernel.

/// Machine code of `harness_fbt_target`.
pub const FBT_TARGET_CODE: [u8; 10] = [
    0x55, // push %rbp
    0x48, 0x89, 0xe5, // mov %rsp,%rbp
    0x48, 0x8d, 0x04, 0x37, // lea (%rdi,%rsi),%rax
    0x5d, // pop %rbp
    0xc3, // ret
];

extern "C" fn stray_breakpoint(frame: *const u64) -> ! {
    // SAFETY: the stub passes the trap frame's address; tf_rip is at +152.
    let rip = unsafe { *frame.add(19) };
    super::kpanic(&format!(
        "stray breakpoint at {:#x}: not claimed by the DTrace invop handler",
        rip - 1
    ));
}

fn calltrap_code() -> Vec<u8> {
    let mut v = vec![
        0x48, 0x89, 0xe7, // mov %rsp,%rdi
        0x48, 0x83, 0xe4, 0xf0, // and $-16,%rsp
        0x48, 0xb8, // movabs $imm64,%rax
    ];
    v.extend_from_slice(&(stray_breakpoint as *const () as u64).to_le_bytes());
    v.extend_from_slice(&[0xff, 0xd0, 0x0f, 0x0b]); // call *%rax; ud2
    v
}

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

pub(super) fn functions() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("harness_fbt_target", FBT_TARGET_CODE.to_vec()),
        ("harness_calltrap", calltrap_code()),
        ("harness_sdt_site", sdt_site_code()),
        ("harness_sdt_site_ool", sdt_out_of_line_code()),
    ]
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
