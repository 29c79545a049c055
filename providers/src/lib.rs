//! rdtrace's providers.
#![no_std]
