//! The hosted system call layer: a table of FreeBSD system call names (by
//! their FreeBSD numbers) for the syscall provider, and [`syscall`], the entry
//! point hosted tests call to "make a system call" — it fires the entry probe
//! with the arguments and the return probe with the result, as
//! `syscallenter`/`syscallexit` do in the kernel, and records the thread's
//! `errno`.
//!
//! Probe context: [`syscall`] fires probes (no allocation on its path).

use rdtrace_providers::syscall::{Site, SyscallProvider, SyscallTable};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// FreeBSD system call numbers and names (`sys/kern/syscalls.master`) of the
/// calls tests and demos use; other numbers are unnamed and get no probes.
pub const SYSCALLS: &[(usize, &str)] = &[
    (0, "syscall"),
    (1, "exit"),
    (2, "fork"),
    (3, "read"),
    (4, "write"),
    (5, "open"),
    (6, "close"),
    (7, "wait4"),
    (9, "link"),
    (10, "unlink"),
    (12, "chdir"),
    (15, "chmod"),
    (20, "getpid"),
    (24, "getuid"),
    (33, "access"),
    (37, "kill"),
    (39, "getppid"),
    (41, "dup"),
    (42, "pipe"),
    (54, "ioctl"),
    (59, "execve"),
    (73, "munmap"),
    (74, "mprotect"),
    (90, "dup2"),
    (92, "fcntl"),
    (93, "select"),
    (95, "fsync"),
    (97, "socket"),
    (98, "connect"),
    (104, "bind"),
    (106, "listen"),
    (116, "gettimeofday"),
    (120, "readv"),
    (121, "writev"),
    (128, "rename"),
    (136, "mkdir"),
    (137, "rmdir"),
    (202, "__sysctl"),
    (240, "nanosleep"),
    (253, "issetugid"),
    (340, "sigprocmask"),
    (416, "sigaction"),
    (432, "thr_self"),
    (454, "_umtx_op"),
    (475, "pread"),
    (476, "pwrite"),
    (477, "mmap"),
    (478, "lseek"),
    (499, "openat"),
    (552, "fstatat"),
    (553, "fhstatfs"),
    (554, "getdirentries"),
];

/// Size of the hosted table (covers every number above).
pub const TABLE_LEN: usize = 600;

/// The hosted stand-in for `sysent` + `syscallnames` + the hook variables.
pub struct HostedSyscallTable {
    names: Vec<Option<&'static str>>,
    entry_ids: Vec<AtomicU32>,
    return_ids: Vec<AtomicU32>,
    hook: AtomicBool,
}

impl Default for HostedSyscallTable {
    fn default() -> Self {
        let mut names = vec![None; TABLE_LEN];
        for (number, name) in SYSCALLS {
            if let Some(slot) = names.get_mut(*number) {
                *slot = Some(*name);
            }
        }
        HostedSyscallTable {
            names,
            entry_ids: (0..TABLE_LEN).map(|_| AtomicU32::new(0)).collect(),
            return_ids: (0..TABLE_LEN).map(|_| AtomicU32::new(0)).collect(),
            hook: AtomicBool::new(false),
        }
    }
}

impl HostedSyscallTable {
    /// The number of the system call called `name`.
    pub fn number(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == Some(name))
    }

    /// Whether the provider's hook is installed (`systrace_enabled`).
    pub fn hook_installed(&self) -> bool {
        self.hook.load(Ordering::Acquire)
    }

    /// The probe id stored for `sysnum`'s entry or return (0 = off).
    pub fn probe_id(&self, sysnum: usize, site: Site) -> u32 {
        let ids = if site == Site::Entry {
            &self.entry_ids
        } else {
            &self.return_ids
        };
        ids.get(sysnum).map_or(0, |id| id.load(Ordering::Acquire))
    }
}

impl SyscallTable for HostedSyscallTable {
    fn len(&self) -> usize {
        self.names.len()
    }
    fn name(&self, sysnum: usize) -> Option<&str> {
        self.names.get(sysnum).copied().flatten()
    }
    fn set_probe_id(&self, sysnum: usize, site: Site, id: u32) {
        let ids = if site == Site::Entry {
            &self.entry_ids
        } else {
            &self.return_ids
        };
        if let Some(slot) = ids.get(sysnum) {
            slot.store(id, Ordering::Release);
        }
    }
    fn set_hook(&self, installed: bool) {
        self.hook.store(installed, Ordering::Release);
    }
}

thread_local! {
    static ERRNO: Cell<i32> = const { Cell::new(0) };
}

/// The calling thread's `errno` as the last hosted system call left it.
pub fn errno() -> i32 {
    ERRNO.with(Cell::get)
}

rdtrace_providers::sdt_provider_define!(pub RDTRACE_HOSTED_SDT, "rdtrace");
rdtrace_providers::sdt_probe_define!(pub SYSCALL_DISPATCH, RDTRACE_HOSTED_SDT, "hosted", "syscall", "dispatch", ["int"]);

/// "Make a system call": fire `sysnum`'s entry probe with `args`, then
/// (the outcome being given by the test) its return probe with the return
/// value, or -1 with `errno` set on error. Returns what the call returns
/// (`Err(errno)` on error), like a libc wrapper.
pub fn syscall(
    provider: &SyscallProvider,
    sysnum: usize,
    args: &[u64],
    outcome: Result<i64, i32>,
) -> Result<i64, i32> {
    rdtrace_providers::sdt_probe!(SYSCALL_DISPATCH, sysnum as u64);
    provider.fire_entry(sysnum, args);
    let retval = match outcome {
        Ok(value) => {
            ERRNO.with(|e| e.set(0));
            value
        }
        Err(error) => {
            ERRNO.with(|e| e.set(error));
            -1
        }
    };
    provider.fire_return(sysnum, retval);
    outcome
}
