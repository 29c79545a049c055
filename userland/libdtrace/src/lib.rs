//! libdtrace for rdtrace: compile D, build DOF, consume, print.
//!
//! * [`compiler`] — the D compiler: a pipeline of named passes from source to DOF.
//! * [`consumer`] — open a device, run a program, decode what it recorded.
//! * [`output`] — formatting of consumed data (text as FreeBSD's dtrace prints it, JSON, folded stacks).

pub mod compiler;
pub mod consumer;
pub mod output;
