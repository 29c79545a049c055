//! The consumer: open a DTrace device, enable a compiled program, run the
//! work loop, decode what the kernel recorded and hand it to the output.
//!
//! * [`device`] — `/dev/dtrace/dtrace` or the in-process hosted kernel.
//! * [`client`] — typed `DTRACEIOC_*` calls.
//! * [`decode`] — snapshot bytes to the output model.
//! * [`probeinfo`] — `dtrace -l -v`'s attributes and argument types.
//! * [`symtab`], [`symbolizer`] — ELF symbols and the system [`crate::output::stack::Symbolizer`].
//! * [`session`] — the work loop: GO, switch/status polling, STOP, final print.

pub mod client;
pub mod decode;
pub mod device;
pub mod probeinfo;
pub mod session;
pub mod symbolizer;
pub mod symtab;
