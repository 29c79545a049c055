//! libdtrace for rdtrace: compile D, build DOF, consume, print.
//!
//! * [`compiler`] — the D compiler: a pipeline of named passes from source to DOF.
//! * [`output`] — formatting of consumed data (text as FreeBSD's dtrace prints it, JSON, folded stacks).

pub mod compiler;
pub mod output;
