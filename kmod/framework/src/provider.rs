//! The provider interface: what a provider supplies (the ten-operation vector
//! of FreeBSD's `dtrace_pops_t`, as the safe [`ProviderOps`] trait) and the
//! descriptions the framework hands it.
//!
//! Registration rules (enforced by `registry::register` and the C ABI in
//! `cabi.rs`): provide *or* provide_module present; enable, disable and destroy
//! mandatory; suspend and resume both or neither; attributes valid; privilege
//! within the defined bits; KERNEL plus USER/OWNER privilege needs usermode.
//!
//! Probe context: `getargval` and `usermode` are called from `dtrace_probe()`;
//! implementations must not allocate, sleep or panic there.

use crate::abi::{DTRACE_ARGTYPELEN, DTRACE_CLASS_MAX, DTRACE_STABILITY_MAX};

/// One stability attribute (`dtrace_attribute_t`): name stability, data
/// stability, dependency class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attribute {
    pub name: u8,
    pub data: u8,
    pub class: u8,
}

impl Attribute {
    /// The `STABLE/STABLE/COMMON` attribute most built-in providers use.
    pub const STABLE_COMMON: Attribute = Attribute {
        name: 6,
        data: 6,
        class: 5,
    };
    /// `PRIVATE/PRIVATE/UNKNOWN`.
    pub const PRIVATE_UNKNOWN: Attribute = Attribute {
        name: 1,
        data: 1,
        class: 0,
    };
    /// `EVOLVING/EVOLVING/COMMON`.
    pub const EVOLVING_COMMON: Attribute = Attribute {
        name: 5,
        data: 5,
        class: 5,
    };

    /// Whether each code is in its defined range.
    pub fn is_valid(&self) -> bool {
        self.name <= DTRACE_STABILITY_MAX
            && self.data <= DTRACE_STABILITY_MAX
            && self.class <= DTRACE_CLASS_MAX
    }
}

/// The five attributes of a provider (`dtrace_pattr_t`): provider, module,
/// function, name, args.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProviderAttributes {
    pub provider: Attribute,
    pub module: Attribute,
    pub function: Attribute,
    pub name: Attribute,
    pub args: Attribute,
}

impl ProviderAttributes {
    /// All five set to `a`.
    pub const fn uniform(a: Attribute) -> Self {
        ProviderAttributes {
            provider: a,
            module: a,
            function: a,
            name: a,
            args: a,
        }
    }

    /// Whether every attribute is valid.
    pub fn is_valid(&self) -> bool {
        [
            self.provider,
            self.module,
            self.function,
            self.name,
            self.args,
        ]
        .iter()
        .all(Attribute::is_valid)
    }

    /// The 15-byte `dtrace_pattr_t` encoding.
    pub fn to_bytes(&self) -> [u8; 15] {
        let mut out = [0u8; 15];
        for (chunk, a) in out.chunks_exact_mut(3).zip([
            self.provider,
            self.module,
            self.function,
            self.name,
            self.args,
        ]) {
            chunk.copy_from_slice(&[a.name, a.data, a.class]);
        }
        out
    }

    /// Decodes a 15-byte `dtrace_pattr_t`.
    pub fn from_bytes(b: &[u8; 15]) -> Self {
        let at = |i: usize| Attribute {
            name: b.get(i).copied().unwrap_or(0),
            data: b.get(i + 1).copied().unwrap_or(0),
            class: b.get(i + 2).copied().unwrap_or(0),
        };
        ProviderAttributes {
            provider: at(0),
            module: at(3),
            function: at(6),
            name: at(9),
            args: at(12),
        }
    }
}

/// Opaque provider identifier (`dtrace_provider_id_t`): the address of the
/// framework's provider record. Never 0 for a registered provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProviderId(pub usize);

/// A probe description as handed to `provide` (fields may be empty = any).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeDescription<'a> {
    pub id: u32,
    pub provider: &'a str,
    pub module: &'a str,
    pub function: &'a str,
    pub name: &'a str,
}

/// What `getargdesc` fills in (`dtrace_argdesc_t` minus id/ndx in/out).
#[derive(Clone, Debug)]
pub struct ArgDesc {
    /// The argument index asked for; set it to -1 (`DTRACE_ARGNONE`) if none.
    pub ndx: i32,
    /// Index of the native argument this translated argument maps to.
    pub mapping: i32,
    /// Native type name, NUL-terminated.
    pub native: [u8; DTRACE_ARGTYPELEN],
    /// Translated type name, NUL-terminated (empty if none).
    pub xlate: [u8; DTRACE_ARGTYPELEN],
}

impl ArgDesc {
    /// A fresh description for argument `ndx`.
    pub fn new(ndx: i32) -> Self {
        ArgDesc {
            ndx,
            mapping: ndx,
            native: [0; DTRACE_ARGTYPELEN],
            xlate: [0; DTRACE_ARGTYPELEN],
        }
    }

    /// Sets the native type name.
    pub fn set_native(&mut self, s: &str) {
        crate::bytes::set_c_str_field(&mut self.native, s);
    }

    /// Sets the translated type name.
    pub fn set_xlate(&mut self, s: &str) {
        crate::bytes::set_c_str_field(&mut self.xlate, s);
    }
}

/// The operations a provider implements (`dtrace_pops_t`).
///
/// `provide`/`provide_module` and `enable`/`disable`/`destroy` are the
/// required core; the rest have the framework's default behaviour.
pub trait ProviderOps: Send + Sync {
    /// Create the probes matching `desc` (all probes when `None`). Called
    /// without the framework lock held, so it may call `probe_create`.
    fn provide(&self, _provider: ProviderId, _desc: Option<&ProbeDescription<'_>>) {}

    /// Create the probes of a newly loaded module (`linker_file` address).
    fn provide_module(&self, _provider: ProviderId, _module: usize) {}

    /// The first ECB was attached to probe `id`: start firing it.
    fn enable(&self, id: u32, parg: usize);

    /// The last ECB left probe `id`: stop firing it.
    fn disable(&self, id: u32, parg: usize);

    /// Temporarily stop firing (both or neither of suspend/resume).
    fn suspend(&self, _id: u32, _parg: usize) {}

    /// Undo `suspend`.
    fn resume(&self, _id: u32, _parg: usize) {}

    /// Describe argument `desc.ndx` of probe `id`; leave `desc.ndx = -1` if
    /// there is no such argument. Returns `false` if the provider has no
    /// argument descriptions at all.
    fn getargdesc(&self, _id: u32, _parg: usize, _desc: &mut ArgDesc) -> bool {
        false
    }

    /// Value of argument `argno` (≥ 5, or any for providers whose args are
    /// not passed to `dtrace_probe`). *Probe context.* `None` = not provided.
    fn getargval(&self, _id: u32, _parg: usize, _argno: i32, _aframes: i32) -> Option<u64> {
        None
    }

    /// Whether the probe fired in user mode. *Probe context.*
    fn usermode(&self, _id: u32, _parg: usize) -> bool {
        false
    }

    /// Whether `usermode` is implemented (needed for KERNEL|USER providers).
    fn has_usermode(&self) -> bool {
        false
    }

    /// Probe `id` is being removed (after unregister/condense).
    fn destroy(&self, id: u32, parg: usize);
}
