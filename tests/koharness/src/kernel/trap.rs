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
//! * everything else is a kernel panic: the fault is described (module and
//!   symbol) and the process aborts.
//!
//! The handler runs on the faulting thread, so its GS base is the CPU's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

const MAX_RANGES: usize = 16;
static TEXT_RANGES: [AtomicU64; MAX_RANGES * 2] = [const { AtomicU64::new(0) }; MAX_RANGES * 2];
static INSTALL: Once = Once::new();
pub const T_PROTFLT: u32 = 9;
pub const T_PAGEFLT: u32 = 12;
/// Number of `cli`/`sti` instructions emulated (diagnostics).
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

/// Install the SIGSEGV handler (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: installing a SA_SIGINFO handler with a zeroed, then
        // filled-in sigaction is the documented use of sigaction(2).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
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

fn in_kernel_text(rip: u64) -> bool {
    match super::IMAGE.get() {
        Some(img) => {
            let (lo, _, text_end) = img.bounds();
            rip >= lo && rip < text_end
        }
        None => false,
    }
}
