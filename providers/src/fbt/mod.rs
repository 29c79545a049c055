//! The fbt (function boundary tracing) provider. `isa` holds the per-architecture
//! instruction knowledge; `provider` builds probes, patching and the trap
//! handler on it.
pub mod isa;
pub mod kernel;
pub mod provider;
pub mod trapframe;

pub use provider::{
    function_excluded, module_excluded, FbtProvider, FunctionSymbol, Invop, ProvideStats,
};
