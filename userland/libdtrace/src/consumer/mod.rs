//! The consumer: open a DTrace device, enable a compiled program, run the
//! work loop, decode what the kernel recorded and hand it to the output.
//!
//! * [`device`] — `/dev/dtrace/dtrace` or the in-process hosted kernel.
//! * [`client`] — typed `DTRACEIOC_*` calls.

pub mod client;
pub mod decode;
pub mod device;
