//! The DTrace framework: everything between a provider calling `dtrace_probe()`
//! and a consumer issuing `DTRACEIOC_*` ioctls.
#![no_std]
extern crate alloc;

pub mod dif;
pub mod platform;
