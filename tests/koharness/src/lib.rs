//! A userland imitation of FreeBSD amd64 `link_elf_obj` plus a fake kernel
//! supplying the KPI rdtrace.ko imports, so the real module can be loaded,
//! driven through `/dev/dtrace/dtrace` and unloaded inside an ordinary Linux
//! process (test tier 5).
//!
//! * [`elf`] parses and validates the module (refusing what the kernel refuses);
//! * [`loader`] places it below 2 GiB, binds imports and relocates it;
//! * [`kld`] processes module metadata, SYSINITs and module events;
//! * [`kernel`] is the fake kernel (malloc, locks, callouts, devfs, …),
//!   including trap emulation: `cli`/`sti`/`stac`/`clac` and CR0.WP
//!   writes, page faults offered to `dtrace_trap_func`, and `int3` taken
//!   down the amd64 breakpoint path to `dtrace_invop_jump_addr`;
//! * [`isolate`] runs a test body in a child process so a module panic
//!   becomes a test failure instead of killing the test runner.
//!
//! Only meaningful on x86-64 Linux (MAP_32BIT, arch_prctl).

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

pub mod elf;
pub mod isolate;
pub mod kernel;
pub mod kld;
pub mod loader;
pub mod lowmem;
