//! The `/dev/dtrace` ABI of current FreeBSD, shared by `rdtrace.ko` and userland.
#![no_std]
