//! What `dtrace -l -v` reports about one probe: its description attributes,
//! its argument attributes and its argument types, computed from the
//! device the way libdtrace's `dtrace_probe_info` does.
//!
//! * Description attributes: the provider's `dtpa_provider` triple, lowered
//!   (per component) by the `dtpa_mod`, `dtpa_func` and `dtpa_name` triples
//!   of every field the description names without a glob; an empty or glob
//!   provider field uses libdtrace's default provider attributes instead.
//! * Argument attributes: the provider's `dtpa_args` triple.
//! * Argument types: `DTRACEIOC_PROBEARG` for argument 0, 1, … until the
//!   kernel answers `DTRACE_ARGNONE`; each argument is named by its
//!   translated type when the kernel gives one that differs from the
//!   native type, else by the native type.
//!
//! Attributes come from `DTRACEIOC_PROVIDER`. Not probe context.

use std::collections::HashMap;

use rdtrace_ffi::attr::{Attribute, PAttr};
use rdtrace_ffi::probe::ProbeDesc;

use super::client::Client;
use super::device::IoctlError;

/// libdtrace's `_dtrace_argmax`: the most arguments it asks the kernel for.
pub const ARGUMENT_LIMIT: i32 = 32;

/// The name printed for an argument whose type the kernel left empty.
pub const UNKNOWN_TYPE: &str = "(unknown)";

/// The stability report for one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeInfo {
    /// Probe Description Attributes.
    pub attributes: Attribute,
    /// Argument Attributes.
    pub argument_attributes: Attribute,
    /// Argument Types, `args[0]` first.
    pub argument_types: Vec<String>,
}

/// `strisglob`: whether a description field is a pattern.
fn is_glob(field: &str) -> bool {
    field.contains(['*', '?', '[', '\\'])
}

/// Whether a field counts as "specified" (non-empty and not a pattern).
fn is_literal(field: &str) -> bool {
    !field.is_empty() && !is_glob(field)
}

/// The description attributes of `desc` under provider attributes `pattr`.
pub fn description_attributes(desc: &ProbeDesc, pattr: &PAttr) -> Attribute {
    let provider = desc.provider_str().unwrap_or("");
    let table = if is_literal(provider) {
        *pattr
    } else {
        crate::compiler::attrs::UNSPECIFIED_PROVIDER
    };
    let mut attr = table.provider;
    if is_literal(desc.module_str().unwrap_or("")) {
        attr = attr.min(table.module);
    }
    if is_literal(desc.function_str().unwrap_or("")) {
        attr = attr.min(table.function);
    }
    if is_literal(desc.name_str().unwrap_or("")) {
        attr = attr.min(table.name);
    }
    attr
}

/// The type names of a probe's arguments, from `DTRACEIOC_PROBEARG`.
pub fn argument_types(client: &Client, probe_id: u32) -> Result<Vec<String>, IoctlError> {
    let mut types = Vec::new();
    for ndx in 0..ARGUMENT_LIMIT {
        let arg = client.probe_arg(probe_id, ndx)?;
        if arg.ndx == rdtrace_ffi::types::DTRACE_ARGNONE {
            break;
        }
        let native = arg.native_str().unwrap_or("");
        let xlate = arg.xlate_str().unwrap_or("");
        let name = if !xlate.is_empty() && xlate != native {
            xlate
        } else {
            native
        };
        types.push(if name.is_empty() {
            UNKNOWN_TYPE.to_string()
        } else {
            name.to_string()
        });
    }
    Ok(types)
}

/// Answers [`ProbeInfo`] questions, asking the device for each provider's
/// attributes once.
pub struct ProbeInfoSource<'c> {
    client: &'c Client,
    providers: HashMap<String, Option<PAttr>>,
}

impl<'c> ProbeInfoSource<'c> {
    pub fn new(client: &'c Client) -> Self {
        ProbeInfoSource {
            client,
            providers: HashMap::new(),
        }
    }

    fn provider_attributes(&mut self, name: &str) -> Option<PAttr> {
        if let Some(known) = self.providers.get(name) {
            return *known;
        }
        let found = self.client.provider(name).ok().map(|d| d.attr);
        self.providers.insert(name.to_string(), found);
        found
    }

    /// libdtrace's representative probe for a (possibly partial) clause description: the
    /// first probe it matches, standing for all of them unless several match and either the
    /// provider's argument data is less than Evolving or a field of at least Evolving name
    /// stability is left empty or given as a pattern. Returns that probe's provider
    /// attributes and its id (`None` for a profile probe the provider would create on
    /// enabling). Profile probes that do not exist yet count as matched, as the kernel
    /// creates them while matching.
    pub fn representative(
        &mut self,
        desc: &crate::compiler::pdesc::ProbeDesc,
    ) -> Option<(PAttr, Option<u32>)> {
        use rdtrace_ffi::attr::Stability;
        use rdtrace_ffi::pod::Pod;
        let mut pattern = ProbeDesc::zeroed();
        pattern.set_provider(&desc.provider).ok()?;
        pattern.set_module(&desc.module).ok()?;
        pattern.set_function(&desc.function).ok()?;
        pattern.set_name(&desc.name).ok()?;
        let found = self.client.probes(Some(&pattern)).ok()?;
        let Some(first) = found.first() else {
            let on_demand = (desc.provider.is_empty() || desc.provider == "profile")
                && desc.module.is_empty()
                && desc.function.is_empty()
                && !is_glob(&desc.name)
                && crate::compiler::pdesc::profile_name_valid(&desc.name);
            return on_demand
                .then(|| self.provider_attributes("profile"))
                .flatten()
                .map(|p| (p, None));
        };
        let pattr = self.provider_attributes(first.provider_str().unwrap_or(""))?;
        if found.len() > 1 {
            let evolving = Stability::Evolving as u8;
            let vague = |field: &str, attr: rdtrace_ffi::attr::Attribute| {
                attr.name >= evolving && !is_literal(field)
            };
            if pattr.args.data < evolving
                || vague(&desc.module, pattr.module)
                || vague(&desc.function, pattr.function)
                || vague(&desc.name, pattr.name)
            {
                return None;
            }
        }
        Some((pattr, Some(first.id)))
    }

    /// The report for a probe the device listed (full description with
    /// its id); `None` when libdtrace would print none (unknown provider,
    /// argument query refused).
    pub fn info(&mut self, desc: &ProbeDesc) -> Option<ProbeInfo> {
        let pattr = self.provider_attributes(desc.provider_str().unwrap_or(""))?;
        let argument_types = argument_types(self.client, desc.id).ok()?;
        Some(ProbeInfo {
            attributes: description_attributes(desc, &pattr),
            argument_attributes: pattr.args,
            argument_types,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdtrace_ffi::attr::{DepClass, Stability};
    use rdtrace_ffi::pod::Pod;

    fn desc(p: &str, m: &str, f: &str, n: &str) -> ProbeDesc {
        let mut d = ProbeDesc::zeroed();
        d.set_provider(p).unwrap();
        d.set_module(m).unwrap();
        d.set_function(f).unwrap();
        d.set_name(n).unwrap();
        d
    }

    fn pattr() -> PAttr {
        PAttr {
            provider: Attribute::new(Stability::Evolving, Stability::Evolving, DepClass::Isa),
            module: Attribute::new(Stability::Private, Stability::Private, DepClass::Unknown),
            function: Attribute::new(Stability::Private, Stability::Private, DepClass::Isa),
            name: Attribute::new(Stability::Evolving, Stability::Stable, DepClass::Common),
            args: Attribute::new(Stability::Evolving, Stability::Evolving, DepClass::Isa),
        }
    }

    #[test]
    fn empty_fields_do_not_lower_the_attributes() {
        // provider:::name — module and function are not named.
        let a = description_attributes(&desc("p", "", "", "BEGIN"), &pattr());
        assert_eq!(
            a,
            Attribute::new(Stability::Evolving, Stability::Evolving, DepClass::Isa)
        );
    }

    #[test]
    fn every_named_field_lowers_per_component() {
        let a = description_attributes(&desc("p", "kernel", "f", "entry"), &pattr());
        assert_eq!(
            a,
            Attribute::new(Stability::Private, Stability::Private, DepClass::Unknown)
        );
        // A glob module is not "named".
        let b = description_attributes(&desc("p", "k*", "", "entry"), &pattr());
        assert_eq!(
            b,
            Attribute::new(Stability::Evolving, Stability::Evolving, DepClass::Isa)
        );
    }

    #[test]
    fn unnamed_provider_uses_unstable_defaults() {
        let a = description_attributes(&desc("", "", "", "BEGIN"), &pattr());
        assert_eq!(
            a,
            Attribute::new(Stability::Unstable, Stability::Unstable, DepClass::Common)
        );
    }
}
