//! Static checks of built rdtrace.ko files.
