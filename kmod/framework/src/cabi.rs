//! FreeBSD's provider C ABI (`sys/dtrace.h`): `dtrace_register`,
//! `dtrace_unregister`, `dtrace_invalidate`, `dtrace_condense`,
//! `dtrace_probe_create`, `dtrace_probe_lookup`, `dtrace_probe_arg`,
//! `dtrace_probe`, with the `dtrace_pops_t` ops vector, so a provider module
//! written against FreeBSD's header can register with rdtrace.ko. The
//! symbols are exported unmangled only with the `c-abi` feature (the kernel
//! module enables it), so host test binaries do not clash with anything.
//!
//! Probe context: `dtrace_probe` (and the provider's `getargval`/`usermode`
//! called through [`COps`]).

use alloc::boxed::Box;
use core::ffi::{c_char, c_int, c_void, CStr};

use crate::abi::{PD_FUNC, PD_ID, PD_MOD, PD_NAME, PD_PROVIDER, PROBEDESC_SIZE};
use crate::bytes::{put_u32, set_c_str_field};
use crate::platform::Errno;
use crate::provider::{ArgDesc, ProbeDescription, ProviderAttributes, ProviderId, ProviderOps};
use crate::registry;

/// `dtrace_provider_id_t`.
pub type DtraceProviderId = usize;

type ProbeOp = unsafe extern "C" fn(arg: *mut c_void, id: u32, parg: *mut c_void);

/// `dtrace_pops_t`: the ten operations, in FreeBSD's order.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DtracePops {
    pub dtps_provide: Option<unsafe extern "C" fn(arg: *mut c_void, spec: *mut u8)>,
    pub dtps_provide_module: Option<unsafe extern "C" fn(arg: *mut c_void, module: *mut c_void)>,
    pub dtps_enable: Option<ProbeOp>,
    pub dtps_disable: Option<ProbeOp>,
    pub dtps_suspend: Option<ProbeOp>,
    pub dtps_resume: Option<ProbeOp>,
    pub dtps_getargdesc:
        Option<unsafe extern "C" fn(arg: *mut c_void, id: u32, parg: *mut c_void, desc: *mut u8)>,
    pub dtps_getargval: Option<
        unsafe extern "C" fn(
            arg: *mut c_void,
            id: u32,
            parg: *mut c_void,
            argno: c_int,
            aframes: c_int,
        ) -> u64,
    >,
    pub dtps_usermode:
        Option<unsafe extern "C" fn(arg: *mut c_void, id: u32, parg: *mut c_void) -> c_int>,
    pub dtps_destroy: Option<ProbeOp>,
}

/// A C provider seen through the safe trait.
struct COps {
    pops: DtracePops,
    arg: *mut c_void,
}

// SAFETY: FreeBSD providers are written to be called from any CPU; the
// pointers are the provider's own and stay valid until it unregisters.
unsafe impl Send for COps {}
// SAFETY: as above.
unsafe impl Sync for COps {}

impl ProviderOps for COps {
    fn provide(&self, _p: ProviderId, desc: Option<&ProbeDescription<'_>>) {
        let Some(f) = self.pops.dtps_provide else {
            return;
        };
        match desc {
            None => {
                // SAFETY: a C provider accepts a NULL description (= all).
                unsafe { f(self.arg, core::ptr::null_mut()) }
            }
            Some(d) => {
                let mut pd = [0u8; PROBEDESC_SIZE];
                put_u32(&mut pd, PD_ID, d.id);
                let fields = [
                    (PD_PROVIDER, 64, d.provider),
                    (PD_MOD, 64, d.module),
                    (PD_FUNC, 192, d.function),
                    (PD_NAME, 64, d.name),
                ];
                for (off, len, s) in fields {
                    if let Some(f) = pd.get_mut(off..off + len) {
                        set_c_str_field(f, s);
                    }
                }
                // SAFETY: `pd` is a valid dtrace_probedesc_t for the call.
                unsafe { f(self.arg, pd.as_mut_ptr()) }
            }
        }
    }

    fn provide_module(&self, _p: ProviderId, module: usize) {
        if let Some(f) = self.pops.dtps_provide_module {
            // SAFETY: `module` is the linker_file the kernel handed us.
            unsafe { f(self.arg, module as *mut c_void) }
        }
    }

    fn enable(&self, id: u32, parg: usize) {
        if let Some(f) = self.pops.dtps_enable {
            // SAFETY: registration checked the op exists; args are the provider's.
            unsafe { f(self.arg, id, parg as *mut c_void) }
        }
    }

    fn disable(&self, id: u32, parg: usize) {
        if let Some(f) = self.pops.dtps_disable {
            // SAFETY: as for `enable`.
            unsafe { f(self.arg, id, parg as *mut c_void) }
        }
    }

    fn suspend(&self, id: u32, parg: usize) {
        if let Some(f) = self.pops.dtps_suspend {
            // SAFETY: as for `enable`.
            unsafe { f(self.arg, id, parg as *mut c_void) }
        }
    }

    fn resume(&self, id: u32, parg: usize) {
        if let Some(f) = self.pops.dtps_resume {
            // SAFETY: as for `enable`.
            unsafe { f(self.arg, id, parg as *mut c_void) }
        }
    }

    fn getargdesc(&self, id: u32, parg: usize, desc: &mut ArgDesc) -> bool {
        let Some(f) = self.pops.dtps_getargdesc else {
            return false;
        };
        let mut raw = [0u8; crate::abi::ARGDESC_SIZE];
        put_u32(&mut raw, 0, id);
        crate::bytes::put_i32(&mut raw, 4, desc.ndx);
        crate::bytes::put_i32(&mut raw, 8, desc.mapping);
        // SAFETY: `raw` is a valid dtrace_argdesc_t for the call.
        unsafe { f(self.arg, id, parg as *mut c_void, raw.as_mut_ptr()) };
        desc.ndx = crate::bytes::get_i32(&raw, 4).unwrap_or(-1);
        desc.mapping = crate::bytes::get_i32(&raw, 8).unwrap_or(desc.ndx);
        if let Some(n) = raw.get(12..140) {
            desc.native.copy_from_slice(n);
        }
        if let Some(x) = raw.get(140..268) {
            desc.xlate.copy_from_slice(x);
        }
        true
    }

    fn getargval(&self, id: u32, parg: usize, argno: i32, aframes: i32) -> Option<u64> {
        let f = self.pops.dtps_getargval?;
        // SAFETY: probe context call into the provider, as FreeBSD makes it.
        Some(unsafe { f(self.arg, id, parg as *mut c_void, argno, aframes) })
    }

    fn usermode(&self, id: u32, parg: usize) -> bool {
        match self.pops.dtps_usermode {
            // SAFETY: as for `getargval`.
            Some(f) => (unsafe { f(self.arg, id, parg as *mut c_void) }) != 0,
            None => false,
        }
    }

    fn has_usermode(&self) -> bool {
        self.pops.dtps_usermode.is_some()
    }

    fn destroy(&self, id: u32, parg: usize) {
        if let Some(f) = self.pops.dtps_destroy {
            // SAFETY: as for `enable`.
            unsafe { f(self.arg, id, parg as *mut c_void) }
        }
    }
}

/// The ops-vector rules of `dtrace_register`.
pub fn pops_valid(p: &DtracePops) -> bool {
    (p.dtps_provide.is_some() || p.dtps_provide_module.is_some())
        && p.dtps_enable.is_some()
        && p.dtps_disable.is_some()
        && p.dtps_destroy.is_some()
        && (p.dtps_suspend.is_some() == p.dtps_resume.is_some())
}

/// # Safety
/// `s` is null or a NUL-terminated string.
unsafe fn cstr<'a>(s: *const c_char) -> &'a str {
    if s.is_null() {
        return "";
    }
    // SAFETY: caller contract.
    unsafe { CStr::from_ptr(s) }.to_str().unwrap_or("")
}

/// `dtrace_register(name, pattr, priv, cred, pops, arg, idp)`.
///
/// # Safety
/// Pointers as FreeBSD's `dtrace_register` requires them.
#[cfg_attr(feature = "c-abi", no_mangle)]
pub unsafe extern "C" fn dtrace_register(
    name: *const c_char,
    pap: *const [u8; 15],
    privilege: u32,
    _cred: *mut c_void,
    pops: *const DtracePops,
    arg: *mut c_void,
    idp: *mut DtraceProviderId,
) -> c_int {
    if name.is_null() || pap.is_null() || pops.is_null() || idp.is_null() {
        return Errno::EINVAL.0;
    }
    // SAFETY: checked non-null; the caller passes valid objects.
    let (pops, pattr) = unsafe { (*pops, &*pap) };
    if !pops_valid(&pops) {
        return Errno::EINVAL.0;
    }
    let attr = ProviderAttributes::from_bytes(pattr);
    // SAFETY: caller passes a C string.
    let name = unsafe { cstr(name) };
    match registry::register(name, &attr, privilege, None, Box::new(COps { pops, arg })) {
        Ok(id) => {
            // SAFETY: checked non-null.
            unsafe { *idp = id.0 };
            0
        }
        Err(e) => e.0,
    }
}

/// `dtrace_unregister(id)`.
#[cfg_attr(feature = "c-abi", no_mangle)]
pub extern "C" fn dtrace_unregister(id: DtraceProviderId) -> c_int {
    match registry::unregister(ProviderId(id)) {
        Ok(()) => 0,
        Err(e) => e.0,
    }
}

/// `dtrace_invalidate(id)`.
#[cfg_attr(feature = "c-abi", no_mangle)]
pub extern "C" fn dtrace_invalidate(id: DtraceProviderId) {
    registry::invalidate(ProviderId(id));
}

/// `dtrace_condense(id)`.
#[cfg_attr(feature = "c-abi", no_mangle)]
pub extern "C" fn dtrace_condense(id: DtraceProviderId) -> c_int {
    match registry::condense(ProviderId(id)) {
        Ok(()) => 0,
        Err(e) => e.0,
    }
}

/// `dtrace_probe_create(id, mod, func, name, aframes, parg)`.
///
/// # Safety
/// The strings are NUL-terminated (or null = empty).
#[cfg_attr(feature = "c-abi", no_mangle)]
pub unsafe extern "C" fn dtrace_probe_create(
    id: DtraceProviderId,
    module: *const c_char,
    func: *const c_char,
    name: *const c_char,
    aframes: c_int,
    parg: *mut c_void,
) -> u32 {
    // SAFETY: caller contract.
    let (m, f, n) = unsafe { (cstr(module), cstr(func), cstr(name)) };
    registry::probe_create(ProviderId(id), m, f, n, aframes, parg as usize)
}

/// `dtrace_probe_lookup(id, mod, func, name)`.
///
/// # Safety
/// As `dtrace_probe_create`.
#[cfg_attr(feature = "c-abi", no_mangle)]
pub unsafe extern "C" fn dtrace_probe_lookup(
    id: DtraceProviderId,
    module: *const c_char,
    func: *const c_char,
    name: *const c_char,
) -> u32 {
    // SAFETY: caller contract.
    let (m, f, n) = unsafe { (cstr(module), cstr(func), cstr(name)) };
    registry::probe_lookup(ProviderId(id), m, f, n)
}

/// `dtrace_probe_arg(id, probe)`.
#[cfg_attr(feature = "c-abi", no_mangle)]
pub extern "C" fn dtrace_probe_arg(id: DtraceProviderId, probe: u32) -> *mut c_void {
    registry::probe_arg(ProviderId(id), probe) as *mut c_void
}

/// `dtrace_probe(id, arg0..arg4)`: the firing entry point. *Probe context.*
#[cfg_attr(feature = "c-abi", no_mangle)]
pub extern "C" fn dtrace_probe(
    id: u32,
    arg0: usize,
    arg1: usize,
    arg2: usize,
    arg3: usize,
    arg4: usize,
) {
    crate::firing::dtrace_probe(
        id,
        arg0 as u64,
        arg1 as u64,
        arg2 as u64,
        arg3 as u64,
        arg4 as u64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn nop(_: *mut c_void, _: u32, _: *mut c_void) {}
    unsafe extern "C" fn provide(_: *mut c_void, _: *mut u8) {}

    fn full() -> DtracePops {
        DtracePops {
            dtps_provide: Some(provide),
            dtps_provide_module: None,
            dtps_enable: Some(nop),
            dtps_disable: Some(nop),
            dtps_suspend: None,
            dtps_resume: None,
            dtps_getargdesc: None,
            dtps_getargval: None,
            dtps_usermode: None,
            dtps_destroy: Some(nop),
        }
    }

    #[test]
    fn registration_rules() {
        assert!(pops_valid(&full()));
        assert!(!pops_valid(&DtracePops {
            dtps_provide: None,
            ..full()
        }));
        assert!(!pops_valid(&DtracePops {
            dtps_enable: None,
            ..full()
        }));
        assert!(!pops_valid(&DtracePops {
            dtps_destroy: None,
            ..full()
        }));
        assert!(!pops_valid(&DtracePops {
            dtps_suspend: Some(nop),
            ..full()
        }));
        assert!(pops_valid(&DtracePops {
            dtps_suspend: Some(nop),
            dtps_resume: Some(nop),
            ..full()
        }));
    }
}
