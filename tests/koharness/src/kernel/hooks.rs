//! The KDTRACE_HOOKS variables FreeBSD's kernel provides for DTrace, and
//! the kernel-side call sites that fire them.
//!
//! The variables are data objects in the fake kernel image (function
//! pointers the module stores, flags it sets). The harness plays the kernel's
//! part: [`fire_syscall`] does what `syscallenter`/`syscallexit` do when a
//! sysent entry carries a probe id; [`fire_sdt`] does what an SDT probe site
//! does. A fake `sysent[]` table (32-byte entries, probe ids at +20/+24) and
//! `syscallnames[]` are provided for the syscall provider, and a smaller
//! `freebsd32_sysent[]`/`freebsd32_syscallnames[]` pair standing for a
//! kernel with COMPAT_FREEBSD32 ([`Abi`]).
//! The fire helpers run module probe-context code; they are called by tests.

use super::{kpanic, DataObject};

/// Entries in the fake `sysent[]`/`syscallnames[]` (more than FreeBSD's
/// SYS_MAXSYSCALL, so a provider sized by it stays inside).
pub const NSYSENT: usize = 1024;
pub const SYSENT_SIZE: usize = 32;
/// `struct syscall_args`: code, original code, callp, args[8].
pub const SYSCALL_ARGS_SIZE: usize = 80;
pub const SYSTRACE_ENTRY: i32 = 0;
pub const SYSTRACE_RETURN: i32 = 1;

/// A few real amd64 syscall numbers and names (FreeBSD syscalls.master).
pub const SYSCALL_NAMES: &[(usize, &str)] = &[
    (1, "exit"),
    (3, "read"),
    (4, "write"),
    (5, "open"),
    (6, "close"),
    (20, "getpid"),
    (54, "ioctl"),
    (73, "munmap"),
    (477, "mmap"),
];

/// Entries in the fake `freebsd32_sysent[]`/`freebsd32_syscallnames[]`.
pub const NSYSENT32: usize = 600;

/// A few freebsd32 system calls (FreeBSD's compat/freebsd32 syscalls.master
/// numbers; the names array uses the table's own names).
pub const FREEBSD32_SYSCALL_NAMES: &[(usize, &str)] = &[
    (1, "exit"),
    (3, "read"),
    (4, "write"),
    (477, "freebsd32_mmap"),
];

/// A system call ABI of the fake kernel: its sysent and names symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    Native,
    Freebsd32,
}

impl Abi {
    fn sysent_symbol(self) -> &'static str {
        match self {
            Abi::Native => "sysent",
            Abi::Freebsd32 => "freebsd32_sysent",
        }
    }

    fn entries(self) -> usize {
        match self {
            Abi::Native => NSYSENT,
            Abi::Freebsd32 => NSYSENT32,
        }
    }
}

/// A `sysent[]` and names array of `n` entries, names from `known` (others
/// `#<n>`).
fn syscall_tables(n: usize, known: &[(usize, &str)]) -> (Vec<u8>, Vec<u8>) {
    let mut names = vec![0u8; n * 8];
    for k in 0..n {
        let s = known
            .iter()
            .find(|(num, _)| *num == k)
            .map(|(_, s)| s.to_string())
            .unwrap_or_else(|| format!("#{k}"));
        names[k * 8..k * 8 + 8].copy_from_slice(&super::leak_c_string(&s).to_le_bytes());
    }
    let mut sysent = vec![0u8; n * SYSENT_SIZE];
    for k in 0..n {
        sysent[k * SYSENT_SIZE + 16] = 6; // sy_narg
    }
    (sysent, names)
}

pub(super) fn data() -> Vec<DataObject> {
    let ptr = |name| DataObject {
        name,
        size: 8,
        align: 8,
        init: Vec::new(),
    };
    let flag = |name| DataObject {
        name,
        size: 4,
        align: 4,
        init: Vec::new(),
    };
    let (sysent, names) = syscall_tables(NSYSENT, SYSCALL_NAMES);
    let (sysent32, names32) = syscall_tables(NSYSENT32, FREEBSD32_SYSCALL_NAMES);
    vec![
        ptr("dtrace_trap_func"),
        ptr("dtrace_invop_jump_addr"),
        ptr("dtrace_invop_calltrap_addr"),
        ptr("dtrace_doubletrap_func"),
        flag("dtrace_vtime_active"),
        ptr("dtrace_vtime_switch_func"),
        ptr("systrace_probe_func"),
        flag("systrace_enabled"),
        ptr("sdt_probe_func"),
        flag("sdt_probes_enabled"),
        ptr("dtrace_malloc_probe"),
        flag("dtrace_malloc_enabled"),
        ptr("dtrace_pid_probe_ptr"),
        ptr("dtrace_return_probe_ptr"),
        ptr("dtrace_fasttrap_fork"),
        ptr("dtrace_fasttrap_exec"),
        ptr("dtrace_fasttrap_exit"),
        flag("lockstat_enabled"),
        // `const char *panicstr`: non-NULL once the kernel panics (never here:
        // a harness panic aborts the process).
        ptr("panicstr"),
        DataObject {
            name: "sysent",
            size: NSYSENT * SYSENT_SIZE,
            align: 16,
            init: sysent,
        },
        DataObject {
            name: "syscallnames",
            size: NSYSENT * 8,
            align: 8,
            init: names,
        },
        DataObject {
            name: "freebsd32_sysent",
            size: NSYSENT32 * SYSENT_SIZE,
            align: 16,
            init: sysent32,
        },
        DataObject {
            name: "freebsd32_syscallnames",
            size: NSYSENT32 * 8,
            align: 8,
            init: names32,
        },
    ]
}

/// The probe ids the module stored in `sysent[sysnum]` (entry, return).
pub fn sysent_probe_ids(sysnum: usize) -> (u32, u32) {
    abi_probe_ids(Abi::Native, sysnum)
}

/// The probe ids the module stored in `abi`'s sysent entry `sysnum`.
pub fn abi_probe_ids(abi: Abi, sysnum: usize) -> (u32, u32) {
    if sysnum >= abi.entries() {
        kpanic("sysent_probe_ids: syscall number out of range");
    }
    let base = super::image().data(abi.sysent_symbol()) + (sysnum * SYSENT_SIZE) as u64;
    // SAFETY: inside the sysent table.
    unsafe {
        (
            std::ptr::read_volatile((base + 20) as *const u32),
            std::ptr::read_volatile((base + 24) as *const u32),
        )
    }
}

/// What the kernel's syscall path does around a system call: if
/// `systrace_enabled` is set, the sysent entry has an entry (return) probe
/// id and `systrace_probe_func` is set, call it with the syscall arguments. Returns how many hook calls were made.
/// Must be called from inside the kernel (a thread occupying a CPU).
pub fn fire_syscall(sysnum: usize, args: [u64; 8], retval: i32) -> u32 {
    fire_abi_syscall(Abi::Native, sysnum, args, retval)
}

/// [`fire_syscall`] for a system call of `abi`: `callp` points into that
/// ABI's table, as the kernel's `syscallenter` leaves it.
pub fn fire_abi_syscall(abi: Abi, sysnum: usize, args: [u64; 8], retval: i32) -> u32 {
    let (entry, ret) = abi_probe_ids(abi, sysnum);
    let func = super::read_u64("systrace_probe_func");
    // `systrace_enabled` is a C bool: only its first byte counts.
    let enabled = super::read_i32("systrace_enabled") & 0xff != 0;
    if func == 0 || !enabled {
        return 0;
    }
    let mut sa = [0u8; SYSCALL_ARGS_SIZE];
    sa[0..4].copy_from_slice(&(sysnum as u32).to_le_bytes());
    sa[4..8].copy_from_slice(&(sysnum as u32).to_le_bytes());
    let callp = super::image().data(abi.sysent_symbol()) + (sysnum * SYSENT_SIZE) as u64;
    sa[8..16].copy_from_slice(&callp.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        sa[16 + i * 8..24 + i * 8].copy_from_slice(&a.to_le_bytes());
    }
    // SAFETY: systrace_probe_func has the systrace_probe_func_t signature.
    let f: extern "C" fn(*mut u8, i32, i32) = unsafe { std::mem::transmute(func) };
    let mut calls = 0;
    if entry != 0 {
        f(sa.as_mut_ptr(), SYSTRACE_ENTRY, 0);
        calls += 1;
    }
    if ret != 0 {
        f(sa.as_mut_ptr(), SYSTRACE_RETURN, retval);
        calls += 1;
    }
    calls
}

/// What an enabled SDT probe site does: call `sdt_probe_func(id, args…)`
/// with six values (`sdt_probe` passes 0 as the sixth, `sdt_probe6` its
/// argument). Returns false if no hook is installed.
pub fn fire_sdt(id: u32, args: [u64; 6]) -> bool {
    let func = super::read_u64("sdt_probe_func");
    if func == 0 {
        return false;
    }
    // SAFETY: sdt_probe_func has the sdt_probe_func_t signature.
    let f: extern "C" fn(u32, u64, u64, u64, u64, u64, u64) = unsafe { std::mem::transmute(func) };
    f(id, args[0], args[1], args[2], args[3], args[4], args[5]);
    true
}

/// Hook variables still pointing into `[lo, hi)` (a module left them set).
pub fn hooks_into(lo: u64, hi: u64) -> Vec<String> {
    [
        "dtrace_trap_func",
        "dtrace_invop_jump_addr",
        "dtrace_doubletrap_func",
        "dtrace_vtime_switch_func",
        "systrace_probe_func",
        "sdt_probe_func",
        "dtrace_malloc_probe",
        "dtrace_pid_probe_ptr",
        "dtrace_return_probe_ptr",
    ]
    .iter()
    .filter(|n| {
        let v = super::read_u64(n);
        v >= lo && v < hi
    })
    .map(|n| format!("hook {n} still points into the module"))
    .collect()
}
