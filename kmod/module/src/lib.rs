//! rdtrace.ko: the FreeBSD module glue around the DTrace framework.
//!
//! * [`metadata`]: module metadata and SYSINIT records in the kernel's linker sets;
//! * [`module`]: the module event handler (load/unload);
//! * [`cdev`]: /dev/dtrace/dtrace and /dev/dtrace/helper;
//! * [`platform`]: the framework's platform boundary over the FreeBSD KPI;
//! * [`providers`]: the providers registered at load (profile, syscall, sdt, fbt);
//! * [`fbt_kernel`]: the fbt provider's symbol, patching and trap-hook glue;
//! * [`systrace`]: the syscall provider's sysent/systrace hook glue;
//! * [`sdt_kernel`]: the SDT providers' linker-set and kld event glue;
//! * [`kernel_files`]: the kernel linker's files (names, symbols, sets);
//! * [`kernel_text`]: writing kernel instructions (fbt, sdt);
//! * [`malloc`]: malloc(9) as the global allocator;
//! * [`static_arena`]: module-lifetime allocations, freed at unload;
//! * [`nofault`]: fault-tolerant loads through the dtrace_trap_func hook;
//! * [`panic`]: Rust panics reported through panic(9);
//! * [`console`]: console messages;
//! * [`release`]: the target FreeBSD release and what depends on it;
//! * [`framework_entry`]: the framework calls the devices and handler make.
//!
//! Built by scripts/build-kmod.sh for the kernel targets in targets/ (where
//! `target_os = "none"`); on the host everything that calls into the kernel
//! is compiled out and the rest is unit-tested.
#![cfg_attr(not(test), no_std)]

#[cfg(target_os = "none")]
extern crate alloc;

pub mod cdev;
pub mod console;
pub mod fbt_kernel;
pub mod framework_entry;
pub mod kernel_files;
pub mod kernel_text;
pub mod malloc;
pub mod metadata;
pub mod module;
pub mod nofault;
pub mod panic;
pub mod platform;
pub mod providers;
pub mod release;
pub mod sdt_kernel;
pub mod static_arena;
pub mod systrace;
