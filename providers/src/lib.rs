//! rdtrace's providers: fbt (with per-ISA instrumentation for x86_64, aarch64
//! and riscv64), profile, syscall and sdt. `no_std` + `alloc`.
//!
//! * [`host`]: the seam every provider is written against (framework probe
//!   registry and `dtrace_probe`, CPUs, time, timers, sync);
//!   [`glue`] implements it over the real framework and registers each
//!   provider with `registry::register`.
//! * [`text`]: writing instructions into live code (fbt, sdt);
//!   [`linker_files`]: fbt/sdt sources over the kernel's loaded files.
//! * [`fbt`], [`profile`], [`syscall`], [`sdt`]: the providers. The hosted
//!   halves (SIGTRAP-driven live fbt, the hosted system call table, the
//!   process's own SDT linker sets) live in `kmod/hosted/src/providers`.
//!
//! Probe context: each module's header says which of its functions run
//! there; none of them allocates, locks or panics.
#![no_std]
extern crate alloc;

pub mod fbt;
pub mod glue;
pub mod host;
pub mod linker_files;
pub mod profile;
pub mod sdt;
pub mod syscall;
pub mod text;
