//! The hosted kernel: the framework and providers running inside a process.
