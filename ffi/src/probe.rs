//! Probe and provider descriptors exchanged over `/dev/dtrace`:
//! `dtrace_probedesc_t` (PROBES/PROBEMATCH), `dtrace_repldesc_t`
//! (REPLICATE), `dtrace_providerdesc_t` (PROVIDER), `dtrace_argdesc_t`
//! (PROBEARG), and the kinst MAKEPROBE argument.
//!
//! Contract: name fields are fixed-size, NUL-terminated C strings; the
//! setters refuse strings that do not fit (with their NUL) and zero-fill the
//! rest of the field. Probe context: not used there; nothing allocates.

// The C type names are kept as aliases so the ABI names stay searchable.
#![allow(non_camel_case_types)]

use core::fmt;

use crate::attr::{PAttr, PPriv};
use crate::pod::{abi_struct, cstr_bytes, cstr_str, set_cstr, CStrError};
use crate::types::{
    DtraceId, DTRACE_ARGTYPELEN, DTRACE_FUNCNAMELEN, DTRACE_MODNAMELEN, DTRACE_NAMELEN,
    DTRACE_PROVNAMELEN,
};

/// `dtrace_probedesc_t`: a probe's id and four-part name (or a pattern for
/// PROBEMATCH). 388 bytes, alignment 4.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct ProbeDesc {
    /// `dtpd_id`: probe id (PROBES: iterate from this id).
    pub id: DtraceId,
    /// `dtpd_provider`.
    pub provider: [u8; DTRACE_PROVNAMELEN],
    /// `dtpd_mod`.
    pub module: [u8; DTRACE_MODNAMELEN],
    /// `dtpd_func`.
    pub function: [u8; DTRACE_FUNCNAMELEN],
    /// `dtpd_name`.
    pub name: [u8; DTRACE_NAMELEN],
}
/// C name of [`ProbeDesc`].
pub type dtrace_probedesc_t = ProbeDesc;
abi_struct!(ProbeDesc, size = 388, align = 4, {
    id @ 0, provider @ 4, module @ 68, function @ 132, name @ 324,
});

impl Default for ProbeDesc {
    fn default() -> Self {
        ProbeDesc {
            id: 0,
            provider: [0; DTRACE_PROVNAMELEN],
            module: [0; DTRACE_MODNAMELEN],
            function: [0; DTRACE_FUNCNAMELEN],
            name: [0; DTRACE_NAMELEN],
        }
    }
}

impl ProbeDesc {
    /// A descriptor with the given id and name parts. Fails if a part does
    /// not fit its field or contains a NUL.
    pub fn new(
        id: DtraceId,
        provider: &str,
        module: &str,
        function: &str,
        name: &str,
    ) -> Result<Self, CStrError> {
        let mut d = ProbeDesc {
            id,
            ..ProbeDesc::default()
        };
        set_cstr(&mut d.provider, provider)?;
        set_cstr(&mut d.module, module)?;
        set_cstr(&mut d.function, function)?;
        set_cstr(&mut d.name, name)?;
        Ok(d)
    }

    /// Provider name bytes up to the NUL.
    pub fn provider_bytes(&self) -> &[u8] {
        cstr_bytes(&self.provider)
    }
    /// Module name bytes up to the NUL.
    pub fn module_bytes(&self) -> &[u8] {
        cstr_bytes(&self.module)
    }
    /// Function name bytes up to the NUL.
    pub fn function_bytes(&self) -> &[u8] {
        cstr_bytes(&self.function)
    }
    /// Probe name bytes up to the NUL.
    pub fn name_bytes(&self) -> &[u8] {
        cstr_bytes(&self.name)
    }

    /// Provider name as UTF-8 (`None` if not UTF-8).
    pub fn provider_str(&self) -> Option<&str> {
        cstr_str(&self.provider)
    }
    /// Module name as UTF-8.
    pub fn module_str(&self) -> Option<&str> {
        cstr_str(&self.module)
    }
    /// Function name as UTF-8.
    pub fn function_str(&self) -> Option<&str> {
        cstr_str(&self.function)
    }
    /// Probe name as UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        cstr_str(&self.name)
    }

    /// Sets the provider name.
    pub fn set_provider(&mut self, s: &str) -> Result<(), CStrError> {
        set_cstr(&mut self.provider, s)
    }
    /// Sets the module name.
    pub fn set_module(&mut self, s: &str) -> Result<(), CStrError> {
        set_cstr(&mut self.module, s)
    }
    /// Sets the function name.
    pub fn set_function(&mut self, s: &str) -> Result<(), CStrError> {
        set_cstr(&mut self.function, s)
    }
    /// Sets the probe name.
    pub fn set_name(&mut self, s: &str) -> Result<(), CStrError> {
        set_cstr(&mut self.name, s)
    }
}

fn write_lossy(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        f.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            f.write_str("\u{fffd}")?;
        }
    }
    Ok(())
}

/// Formats as `provider:module:function:name`, the way dtrace prints probes.
impl fmt::Display for ProbeDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_lossy(f, self.provider_bytes())?;
        f.write_str(":")?;
        write_lossy(f, self.module_bytes())?;
        f.write_str(":")?;
        write_lossy(f, self.function_bytes())?;
        f.write_str(":")?;
        write_lossy(f, self.name_bytes())
    }
}

impl fmt::Debug for ProbeDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProbeDesc({} ", self.id)?;
        fmt::Display::fmt(self, f)?;
        f.write_str(")")
    }
}

/// `dtrace_repldesc_t`: REPLICATE's argument — clone enablings matching
/// `matching` onto the probe described by `create`. 776 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct ReplDesc {
    /// `dtrpd_match`: which retained enablings to copy.
    pub matching: ProbeDesc,
    /// `dtrpd_create`: the probe to enable with the copies.
    pub create: ProbeDesc,
}
/// C name of [`ReplDesc`].
pub type dtrace_repldesc_t = ReplDesc;
abi_struct!(ReplDesc, size = 776, align = 4, { matching @ 0, create @ 388 });

/// `dtrace_providerdesc_t`: PROVIDER's argument — in: the name; out: the
/// provider's attributes and privileges. 92 bytes on current FreeBSD
/// (32-bit `zoneid_t`); the 1-byte gap before `priv_` is a named pad here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct ProviderDesc {
    /// `dtvd_name`: provider name.
    pub name: [u8; DTRACE_PROVNAMELEN],
    /// `dtvd_attr`: stability attributes.
    pub attr: PAttr,
    /// Implicit C padding, kept zero.
    pub pad: u8,
    /// `dtvd_priv`: privilege requirements.
    pub priv_: PPriv,
}
/// C name of [`ProviderDesc`].
pub type dtrace_providerdesc_t = ProviderDesc;
abi_struct!(ProviderDesc, size = 92, align = 4, { name @ 0, attr @ 64, pad @ 79, priv_ @ 80 });

impl Default for ProviderDesc {
    fn default() -> Self {
        ProviderDesc {
            name: [0; DTRACE_PROVNAMELEN],
            attr: PAttr::default(),
            pad: 0,
            priv_: PPriv::default(),
        }
    }
}

impl ProviderDesc {
    /// A request for the provider called `name`.
    pub fn new(name: &str) -> Result<Self, CStrError> {
        let mut d = ProviderDesc::default();
        set_cstr(&mut d.name, name)?;
        Ok(d)
    }
    /// Provider name bytes up to the NUL.
    pub fn name_bytes(&self) -> &[u8] {
        cstr_bytes(&self.name)
    }
    /// Provider name as UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        cstr_str(&self.name)
    }
}

/// `dtrace_argdesc_t`: PROBEARG's argument — in: probe id and argument
/// index; out: native and translated type names and the argument mapping.
/// 268 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct ArgDesc {
    /// `dtargd_id`: probe id.
    pub id: DtraceId,
    /// `dtargd_ndx`: argument index; set to `DTRACE_ARGNONE` (-1) when the
    /// probe has no such argument.
    pub ndx: i32,
    /// `dtargd_mapping`: which native argument the translated one comes from.
    pub mapping: i32,
    /// `dtargd_native`: native type name.
    pub native: [u8; DTRACE_ARGTYPELEN],
    /// `dtargd_xlate`: translated type name (empty if untranslated).
    pub xlate: [u8; DTRACE_ARGTYPELEN],
}
/// C name of [`ArgDesc`].
pub type dtrace_argdesc_t = ArgDesc;
abi_struct!(ArgDesc, size = 268, align = 4, {
    id @ 0, ndx @ 4, mapping @ 8, native @ 12, xlate @ 140,
});

impl Default for ArgDesc {
    fn default() -> Self {
        ArgDesc {
            id: 0,
            ndx: 0,
            mapping: 0,
            native: [0; DTRACE_ARGTYPELEN],
            xlate: [0; DTRACE_ARGTYPELEN],
        }
    }
}

impl ArgDesc {
    /// A request for argument `ndx` of probe `id`.
    pub fn request(id: DtraceId, ndx: i32) -> Self {
        ArgDesc {
            id,
            ndx,
            ..ArgDesc::default()
        }
    }
    /// Native type name as UTF-8.
    pub fn native_str(&self) -> Option<&str> {
        cstr_str(&self.native)
    }
    /// Translated type name as UTF-8.
    pub fn xlate_str(&self) -> Option<&str> {
        cstr_str(&self.xlate)
    }
    /// Sets the native type name.
    pub fn set_native(&mut self, s: &str) -> Result<(), CStrError> {
        set_cstr(&mut self.native, s)
    }
    /// Sets the translated type name.
    pub fn set_xlate(&mut self, s: &str) -> Result<(), CStrError> {
        set_cstr(&mut self.xlate, s)
    }
}

/// Length of kinst's function-name field.
pub const KINST_FUNCNAMELEN: usize = 192;
/// Length of kinst's module-name field.
pub const KINST_MODNAMELEN: usize = 64;

/// The argument of kinst's `KINSTIOC_MAKEPROBE` (`/dev/dtrace/kinst`): create
/// a probe at byte offset `off` into function `func` of module `module`.
/// 260 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct KinstProbeDesc {
    /// `kpd_func`: function name.
    pub func: [u8; KINST_FUNCNAMELEN],
    /// `kpd_mod`: module name.
    pub module: [u8; KINST_MODNAMELEN],
    /// `kpd_off`: instruction offset within the function.
    pub off: i32,
}
impl Default for KinstProbeDesc {
    fn default() -> Self {
        KinstProbeDesc {
            func: [0; KINST_FUNCNAMELEN],
            module: [0; KINST_MODNAMELEN],
            off: 0,
        }
    }
}

impl KinstProbeDesc {
    /// A request for a probe at byte `off` of `func` in `module`.
    pub fn new(func: &str, module: &str, off: i32) -> Result<Self, CStrError> {
        let mut d = KinstProbeDesc {
            off,
            ..KinstProbeDesc::default()
        };
        set_cstr(&mut d.func, func)?;
        set_cstr(&mut d.module, module)?;
        Ok(d)
    }
}

/// C name of [`KinstProbeDesc`].
pub type dtrace_kinst_probedesc_t = KinstProbeDesc;
abi_struct!(KinstProbeDesc, size = 260, align = 4, { func @ 0, module @ 192, off @ 256 });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::{Attribute, DepClass, Stability};
    use crate::pod::Pod;
    use std::string::ToString;

    #[test]
    fn probedesc_names() {
        let d = ProbeDesc::new(5, "syscall", "freebsd", "open", "entry").unwrap();
        assert_eq!(d.to_string(), "syscall:freebsd:open:entry");
        assert_eq!(d.function_str(), Some("open"));
        assert_eq!(d.as_bytes()[4..11], *b"syscall");
        assert_eq!(d.as_bytes()[0], 5);
        assert_eq!(d.as_bytes()[324..329], *b"entry");
        let long = "x".repeat(64);
        assert_eq!(
            ProbeDesc::new(0, &long, "", "", "").unwrap_err(),
            CStrError::TooLong
        );
        assert!(ProbeDesc::new(0, "", "", &"f".repeat(191), "").is_ok());
        let back = ProbeDesc::from_bytes(d.as_bytes()).unwrap();
        assert_eq!(back, d);
        let mut bad = d;
        bad.name[0] = 0xff;
        assert_eq!(bad.name_str(), None);
        assert_eq!(bad.to_string(), "syscall:freebsd:open:\u{fffd}ntry");
    }

    #[test]
    fn providerdesc_layout() {
        let mut p = ProviderDesc::new("profile").unwrap();
        p.attr.args = Attribute::new(Stability::Evolving, Stability::Evolving, DepClass::Common);
        p.priv_.flags = 0x1;
        let b = p.as_bytes();
        assert_eq!(&b[..7], b"profile");
        assert_eq!(&b[76..79], &[5, 5, 5]);
        assert_eq!(b[80], 1);
        assert_eq!(p.name_str(), Some("profile"));
    }

    #[test]
    fn kinst_desc() {
        let k = KinstProbeDesc::new("vm_fault", "kernel", 4).unwrap();
        let b = k.as_bytes();
        assert_eq!(&b[..9], b"vm_fault\0");
        assert_eq!(&b[192..199], b"kernel\0");
        assert_eq!(b[256], 4);
    }

    #[test]
    fn argdesc_and_repl() {
        let mut a = ArgDesc::request(9, 2);
        a.set_native("struct thread *").unwrap();
        a.set_xlate("psinfo_t *").unwrap();
        let b = a.as_bytes();
        assert_eq!((b[0], b[4]), (9, 2));
        assert_eq!(&b[12..18], b"struct");
        assert_eq!(&b[140..146], b"psinfo");
        assert_eq!(
            ArgDesc::from_bytes(b).unwrap().xlate_str(),
            Some("psinfo_t *")
        );
        let r = ReplDesc {
            matching: ProbeDesc::new(0, "pid123", "", "", "").unwrap(),
            create: ProbeDesc::new(0, "pid456", "", "", "").unwrap(),
        };
        assert_eq!(&r.as_bytes()[392..398], b"pid456");
    }
}
