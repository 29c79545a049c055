//! The consumer: open a DTrace device, enable a compiled program, run the
//! work loop, decode what the kernel recorded and hand it to the output.
//!
//! * [`device`] — `/dev/dtrace/dtrace` or the in-process hosted kernel.
//! * [`client`] — typed `DTRACEIOC_*` calls.
//! * [`decode`] — snapshot bytes to the output model.
//! * [`session`] — the work loop: GO, switch/status polling, STOP, final print.

pub mod client;
pub mod decode;
pub mod device;
pub mod session;
