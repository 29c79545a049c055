//! rdtrace's providers: fbt (with per-ISA instrumentation), profile, syscall
//! and sdt. `no_std`; the hosted halves live in `kmod/hosted`.
#![no_std]
extern crate alloc;

pub mod glue;
pub mod host;
pub mod profile;
pub mod sdt;
pub mod syscall;
pub mod text;

pub mod fbt;
