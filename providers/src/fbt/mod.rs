//! The fbt (function boundary tracing) provider. `isa` holds the per-architecture
//! instruction knowledge; the provider proper builds on it.
pub mod isa;
