//! Traps taken by module code: what the amd64 kernel's trap handler would do.
//!
//! A SIGSEGV handler stands in for the kernel's trap entry:
//! * `cli`/`sti` (privileged in user mode, so they raise #GP) are emulated as
//!   no-ops and skipped: the harness models interrupt exclusion by CPU
//!   occupancy instead (cpu.rs), and `popfq` cannot be trapped anyway;
//! * any other fault whose instruction lies in a loaded module's text is
//!   offered to `dtrace_trap_func` with an amd64 `struct trapframe` built
//!   from the signal context (T_PAGEFLT with `tf_addr` = the faulting
//!   address, or T_PROTFLT); if the hook returns non-zero, execution resumes
//!   from the (possibly advanced) frame — DTrace's NOFAULT mechanism;
//! * `stac`/`clac` (SMAP toggles, privileged: SIGILL in user mode) are
//!   emulated as no-ops — the harness CPU advertises SMAP in
//!   `cpu_stdext_feature` so that module code takes its SMAP path, but
//!   user pages are always accessible here;
//! * `mov %cr0,%reg` / `mov %reg,%cr0` (how amd64 code clears CR0.WP to
//!   patch its own text) are emulated on a fake CR0: clearing WP makes the
//!   kernel's and every module's text writable, setting it makes them
//!   read+exec again;
//! * an `int3` in kernel or module text (SIGTRAP) takes the amd64 kernel's
//!   breakpoint path: with `dtrace_invop_jump_addr` set, a `struct
//!   trapframe` (T_BPTFLT, `tf_rip` after the int3, the user CS/SS so the
//!   handler's `iretq` works) is built just below the interrupted stack
//!   pointer, `dtrace_invop_calltrap_addr` is set to the kernel's fallback
//!   (`harness_calltrap`), and execution continues at the jump address with
//!   `%rsp` at the frame — exactly the state the kernel leaves;
//! * everything else is a kernel panic: the fault is described (module and
//!   symbol) and the process aborts.
//!
//! Handlers run on a per-thread alternate signal stack, so the frame written
//! below the interrupted stack pointer cannot overlap the signal frame.
//!
//! The handler runs on the faulting thread, so its GS base is the CPU's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

const MAX_RANGES: usize = 16;
static TEXT_RANGES: [AtomicU64; MAX_RANGES * 2] = [const { AtomicU64::new(0) }; MAX_RANGES * 2];
static INSTALL: Once = Once::new();
pub const T_BPTFLT: u32 = 3;
pub const T_PROTFLT: u32 = 9;
/// CR0 as module code reads it (PG, AM, WP, NE, ET, MP, PE).
static FAKE_CR0: AtomicU64 = AtomicU64::new(0x8005_0033);
const CR0_WP: u64 = 1 << 16;
thread_local! {
    /// Address and contents of the last breakpoint trap frame this thread
    /// built (a const-initialised Cell: safe to touch in the handler).
    static LAST_BREAKPOINT_FRAME: std::cell::Cell<(u64, [u64; 24])> =
        const { std::cell::Cell::new((0, [0; 24])) };
}

/// The trap frame (address, words) the calling thread's last breakpoint
/// handed to `dtrace_invop_jump_addr`.
pub fn last_breakpoint_frame() -> (u64, [u64; 24]) {
    LAST_BREAKPOINT_FRAME.with(|last| last.get())
}

/// Breakpoints delivered to `dtrace_invop_jump_addr`.
pub static INVOP_TRAPS: AtomicU64 = AtomicU64::new(0);
const ALTSTACK_SIZE: usize = 256 * 1024;

/// Give the calling thread an alternate signal stack (kept alive by the
/// returned buffer, which must outlive the thread's use of module code).
pub fn setup_altstack() -> Vec<u8> {
    let mut mem = vec![0u8; ALTSTACK_SIZE];
    let st = libc::stack_t {
        ss_sp: mem.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: ALTSTACK_SIZE,
    };
    // SAFETY: `st` describes memory owned by the returned Vec.
    unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) };
    mem
}

fn set_text_writable(writable: bool) {
    let prot = if writable {
        libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC
    } else {
        libc::PROT_READ | libc::PROT_EXEC
    };
    let mut ranges = Vec::new();
    if let Some(img) = super::IMAGE.get() {
        let (lo, _, text_end) = img.bounds();
        ranges.push((lo, text_end));
    }
    for i in 0..MAX_RANGES {
        let lo = TEXT_RANGES[2 * i].load(Ordering::SeqCst);
        let hi = TEXT_RANGES[2 * i + 1].load(Ordering::SeqCst);
        if lo != 0 && hi > lo {
            ranges.push((lo, hi));
        }
    }
    for (lo, hi) in ranges {
        // SAFETY: page-aligned text ranges of mappings the harness owns.
        unsafe { libc::mprotect(lo as *mut libc::c_void, (hi - lo) as usize, prot) };
    }
}

/// Linux `gregs` index of x86-64 register number `n` (ModRM/REX order).
fn greg_index(n: u8) -> usize {
    (match n {
        0 => libc::REG_RAX,
        1 => libc::REG_RCX,
        2 => libc::REG_RDX,
        3 => libc::REG_RBX,
        4 => libc::REG_RSP,
        5 => libc::REG_RBP,
        6 => libc::REG_RSI,
        7 => libc::REG_RDI,
        8 => libc::REG_R8,
        9 => libc::REG_R9,
        10 => libc::REG_R10,
        11 => libc::REG_R11,
        12 => libc::REG_R12,
        13 => libc::REG_R13,
        14 => libc::REG_R14,
        _ => libc::REG_R15,
    }) as usize
}

/// Emulate `mov %cr0,%reg` / `mov %reg,%cr0` at `rip`; returns the
/// instruction length if it was one.
fn emulate_cr0(gregs: &mut [libc::greg_t; 23], rip: u64) -> Option<u64> {
    // SAFETY: `rip` is in module or kernel text (checked by the caller);
    // instructions there are at least 4 readable bytes before the end of text.
    let code = unsafe { std::ptr::read_unaligned(rip as *const [u8; 4]) };
    let (rex, at) = if (0x40..=0x4f).contains(&code[0]) {
        (code[0], 1)
    } else {
        (0, 0)
    };
    if code[at] != 0x0f || (code[at + 1] != 0x20 && code[at + 1] != 0x22) {
        return None;
    }
    let modrm = code[at + 2];
    if modrm >> 6 != 3 || (modrm >> 3) & 7 != 0 {
        return None;
    }
    let reg = greg_index((modrm & 7) | ((rex & 1) << 3));
    if code[at + 1] == 0x20 {
        gregs[reg] = FAKE_CR0.load(Ordering::SeqCst) as i64;
    } else {
        let new = gregs[reg] as u64;
        let old = FAKE_CR0.swap(new, Ordering::SeqCst);
        if (old ^ new) & CR0_WP != 0 {
            set_text_writable(new & CR0_WP == 0);
        }
    }
    Some(at as u64 + 3)
}

fn user_selectors() -> (u64, u64) {
    let (cs, ss): (u16, u16);
    // SAFETY: reading segment selectors has no side effects.
    unsafe {
        std::arch::asm!("mov {0:x}, cs", "mov {1:x}, ss", out(reg) cs, out(reg) ss, options(nomem, nostack));
    }
    (u64::from(cs), u64::from(ss))
}

/// The breakpoint path of the amd64 kernel (see the module docs).
fn on_breakpoint(gregs: &mut [libc::greg_t; 23]) {
    let rip = gregs[libc::REG_RIP as usize] as u64;
    let bp = rip.wrapping_sub(1);
    let ours = in_module_text(bp) || in_kernel_text(bp);
    let jump = if ours {
        super::read_u64("dtrace_invop_jump_addr")
    } else {
        0
    };
    if jump == 0 {
        let place = match super::linker::search_symbol(bp) {
            Some((name, off)) => format!("{name}+{off:#x}"),
            None => "outside module and kernel text".to_string(),
        };
        super::kpanic(&format!(
            "breakpoint trap at {bp:#x} ({place}) with no DTrace invop hook installed"
        ));
    }
    let sp = gregs[libc::REG_RSP as usize] as u64;
    let frame_addr = (sp & !15) - 192;
    let mut frame = [0u64; 24];
    for (slot, reg) in FRAME_REGS {
        frame[slot] = gregs[reg as usize] as u64;
    }
    let (cs, ss) = user_selectors();
    frame[15] = u64::from(T_BPTFLT);
    frame[19] = rip;
    frame[20] = cs;
    frame[21] = gregs[libc::REG_EFL as usize] as u64;
    frame[22] = sp;
    frame[23] = ss;
    // SAFETY: the frame goes just below the interrupted stack pointer, in
    // the interrupted thread's own stack (kernel code keeps no red zone);
    // this handler runs on the alternate signal stack.
    unsafe { std::ptr::write(frame_addr as *mut [u64; 24], frame) };
    LAST_BREAKPOINT_FRAME.with(|last| last.set((frame_addr, frame)));
    let calltrap = super::image()
        .symbol("harness_calltrap")
        .map(|s| s.addr)
        .unwrap_or(0);
    // SAFETY: the hook variable is an 8-byte object in the kernel image.
    unsafe {
        std::ptr::write_volatile(
            super::image().data("dtrace_invop_calltrap_addr") as *mut u64,
            calltrap,
        )
    };
    gregs[libc::REG_RSP as usize] = frame_addr as i64;
    gregs[libc::REG_RIP as usize] = jump as i64;
    INVOP_TRAPS.fetch_add(1, Ordering::Relaxed);
}
pub const T_PAGEFLT: u32 = 12;
/// Number of `cli`/`sti`/`stac`/`clac` instructions emulated (diagnostics).
pub static EMULATED_INTR_OPS: AtomicU64 = AtomicU64::new(0);
/// Number of faults `dtrace_trap_func` handled.
pub static HANDLED_FAULTS: AtomicU64 = AtomicU64::new(0);

/// Record a module's text range so faults in it reach `dtrace_trap_func`.
pub fn add_text_range(lo: u64, hi: u64) {
    for i in 0..MAX_RANGES {
        if TEXT_RANGES[2 * i]
            .compare_exchange(0, lo, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            TEXT_RANGES[2 * i + 1].store(hi, Ordering::SeqCst);
            return;
        }
    }
    panic!("too many loaded modules");
}

/// Forget a module's text range (at unload).
pub fn remove_text_range(lo: u64) {
    for i in 0..MAX_RANGES {
        if TEXT_RANGES[2 * i].load(Ordering::SeqCst) == lo {
            TEXT_RANGES[2 * i + 1].store(0, Ordering::SeqCst);
            TEXT_RANGES[2 * i].store(0, Ordering::SeqCst);
        }
    }
}

fn in_module_text(rip: u64) -> bool {
    (0..MAX_RANGES).any(|i| {
        let lo = TEXT_RANGES[2 * i].load(Ordering::SeqCst);
        let hi = TEXT_RANGES[2 * i + 1].load(Ordering::SeqCst);
        lo != 0 && rip >= lo && rip < hi
    })
}

/// SIGUSR2: an inter-processor interrupt for the CPU this thread occupies.
/// Interrupt work runs only when the occupant was interrupted in module
/// text: harness code may hold host locks the work would need.
extern "C" fn on_ipi(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t for SA_SIGINFO handlers.
    let rip = unsafe { (*(ctx as *mut libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] }
        as u64;
    if in_module_text(rip) {
        super::cpu::handle_ipi();
    }
}

/// Install the SIGSEGV handler (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: installing a SA_SIGINFO handler with a zeroed, then
        // filled-in sigaction is the documented use of sigaction(2).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
            libc::sigaction(libc::SIGTRAP, &sa, std::ptr::null_mut());
            libc::sigaction(libc::SIGILL, &sa, std::ptr::null_mut());
            let mut ipi: libc::sigaction = std::mem::zeroed();
            ipi.sa_sigaction = on_ipi as *const () as usize;
            ipi.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut ipi.sa_mask);
            libc::sigaction(libc::SIGUSR2, &ipi, std::ptr::null_mut());
        }
    });
}

// Register order of the amd64 trapframe (offsets /8) mapped to Linux gregs.
const FRAME_REGS: [(usize, libc::c_int); 15] = [
    (0, libc::REG_RDI),
    (1, libc::REG_RSI),
    (2, libc::REG_RDX),
    (3, libc::REG_RCX),
    (4, libc::REG_R8),
    (5, libc::REG_R9),
    (6, libc::REG_RAX),
    (7, libc::REG_RBX),
    (8, libc::REG_RBP),
    (9, libc::REG_R10),
    (10, libc::REG_R11),
    (11, libc::REG_R12),
    (12, libc::REG_R13),
    (13, libc::REG_R14),
    (14, libc::REG_R15),
];

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t for SA_SIGINFO handlers.
    let uc = unsafe { &mut *(ctx as *mut libc::ucontext_t) };
    let gregs = &mut uc.uc_mcontext.gregs;
    if sig == libc::SIGTRAP {
        on_breakpoint(gregs);
        return;
    }
    let rip = gregs[libc::REG_RIP as usize] as u64;
    let opcode = if in_module_text(rip) || in_kernel_text(rip) {
        // SAFETY: `rip` is the address of the instruction that faulted; it
        // is in module or kernel-image text, which is mapped readable.
        unsafe { *(rip as *const u8) }
    } else {
        0
    };
    if sig == libc::SIGSEGV && (opcode == 0xfa || opcode == 0xfb) {
        gregs[libc::REG_RIP as usize] += 1;
        EMULATED_INTR_OPS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if sig == libc::SIGILL && (in_module_text(rip) || in_kernel_text(rip)) {
        // SAFETY: three bytes of module/kernel text at the faulting rip.
        let code = unsafe { std::ptr::read_unaligned(rip as *const [u8; 3]) };
        if code == [0x0f, 0x01, 0xcb] || code == [0x0f, 0x01, 0xca] {
            gregs[libc::REG_RIP as usize] += 3;
            EMULATED_INTR_OPS.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    if sig == libc::SIGSEGV && (in_module_text(rip) || in_kernel_text(rip)) {
        if let Some(len) = emulate_cr0(gregs, rip) {
            gregs[libc::REG_RIP as usize] += len as i64;
            return;
        }
    }
    // SAFETY: si_addr is valid for SIGSEGV/SIGBUS.
    let fault_addr = unsafe { (*info).si_addr() } as u64;
    if in_module_text(rip) {
        let hook = super::read_u64("dtrace_trap_func");
        if hook != 0 {
            let mut frame = [0u64; 24];
            for (slot, reg) in FRAME_REGS {
                frame[slot] = gregs[reg as usize] as u64;
            }
            let is_pf = gregs[libc::REG_TRAPNO as usize] == 14;
            let trapno = if is_pf { T_PAGEFLT } else { T_PROTFLT };
            frame[15] = u64::from(trapno);
            frame[16] = fault_addr;
            frame[18] = gregs[libc::REG_ERR as usize] as u64;
            frame[19] = rip;
            frame[20] = 0x20;
            frame[21] = gregs[libc::REG_EFL as usize] as u64;
            frame[22] = gregs[libc::REG_RSP as usize] as u64;
            frame[23] = 0x28;
            // SAFETY: dtrace_trap_func has the dtrace_trap_func_t signature.
            let f: extern "C" fn(*mut u64, u32) -> i32 = unsafe { std::mem::transmute(hook) };
            if f(frame.as_mut_ptr(), trapno) != 0 {
                for (slot, reg) in FRAME_REGS {
                    gregs[reg as usize] = frame[slot] as i64;
                }
                gregs[libc::REG_RIP as usize] = frame[19] as i64;
                gregs[libc::REG_EFL as usize] = frame[21] as i64;
                gregs[libc::REG_RSP as usize] = frame[22] as i64;
                HANDLED_FAULTS.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    let place = match super::linker::search_symbol(rip) {
        Some((name, off)) => format!("{name}+{off:#x}"),
        None => "outside module and kernel text".to_string(),
    };
    super::kpanic(&format!(
        "fatal trap (signal {sig}) at rip {rip:#x} ({place}), fault address {fault_addr:#x}"
    ));
}

/// Whether `addr` lies in the kernel image's or a loaded module's text.
pub fn is_text(addr: u64) -> bool {
    in_module_text(addr) || in_kernel_text(addr)
}

/// Whether text is writable now (the fake CR0.WP is clear).
pub fn text_writable() -> bool {
    FAKE_CR0.load(Ordering::SeqCst) & CR0_WP == 0
}

fn in_kernel_text(rip: u64) -> bool {
    match super::IMAGE.get() {
        Some(img) => {
            let (lo, _, text_end) = img.bounds();
            rip >= lo && rip < text_end
        }
        None => false,
    }
}
