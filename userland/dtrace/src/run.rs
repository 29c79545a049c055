//! The run side of dtrace(1): enabling compiled programs and consuming their data.
//!
//! Not implemented yet: the consumer (libdtrace's consumer and the hosted kernel) is a later
//! phase. Until it lands, running a program reports that tracing cannot be enabled and exits with
//! status 2 — deliberately not 1, so that tests expecting a run-time failure (exit 1) do not pass
//! by accident.

use crate::args::Config;
use crate::compile::Program;

/// Runs the programs; returns the exit status.
pub fn execute(_cfg: &Config, programs: &[Program]) -> u8 {
    let n: usize = programs.iter().map(|p| p.compiled.ecbs.len()).sum();
    eprintln!(
        "dtrace: could not enable tracing: executing programs is not implemented yet ({} enabling{} compiled)",
        n,
        if n == 1 { "" } else { "s" }
    );
    2
}
