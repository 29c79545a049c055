//! rdtrace.ko: FreeBSD module glue (module events, linker sets, cdev, KPI platform).
#![no_std]
