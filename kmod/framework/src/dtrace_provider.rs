//! The `dtrace` provider: BEGIN (id 1), END (id 2) and ERROR (id 3) on a
//! freshly attached framework. Its probes are per consumer: `dtrace_probe`
//! runs an ECB of these probes only when `arg0` is that ECB's own state.
//!
//! Probe context: the ops below are trivial; firing is done by `state.rs`
//! (BEGIN/END) and `firing.rs` (ERROR).

use alloc::boxed::Box;
use core::sync::atomic::Ordering;

use crate::platform::Errno;
use crate::provider::{Attribute, ProviderAttributes, ProviderOps};
use crate::registry;

struct DtraceProvider;

impl ProviderOps for DtraceProvider {
    fn enable(&self, _id: u32, _parg: usize) {}
    fn disable(&self, _id: u32, _parg: usize) {}
    fn destroy(&self, _id: u32, _parg: usize) {}
}

/// The dtrace provider's attributes (as FreeBSD declares them).
pub const DTRACE_PROVIDER_ATTR: ProviderAttributes = ProviderAttributes {
    provider: Attribute::STABLE_COMMON,
    module: Attribute::PRIVATE_UNKNOWN,
    function: Attribute::PRIVATE_UNKNOWN,
    name: Attribute::STABLE_COMMON,
    args: Attribute::STABLE_COMMON,
};

/// Registers the provider and creates BEGIN, END, ERROR (in that order).
pub fn register(fw: &registry::Framework) -> Result<(), Errno> {
    let id = registry::register(
        "dtrace",
        &DTRACE_PROVIDER_ATTR,
        0,
        None,
        Box::new(DtraceProvider),
    )?;
    let begin = registry::probe_create(id, "", "", "BEGIN", 0, 0);
    let end = registry::probe_create(id, "", "", "END", 0, 0);
    let error = registry::probe_create(id, "", "", "ERROR", 1, 0);
    if begin == 0 || end == 0 || error == 0 {
        let _ = registry::unregister(id);
        return Err(Errno::ENOMEM);
    }
    fw.dtrace_provider.store(id.0, Ordering::Release);
    fw.probe_begin.store(begin, Ordering::Release);
    fw.probe_end.store(end, Ordering::Release);
    fw.probe_error.store(error, Ordering::Release);
    Ok(())
}
