//! kldload/kldunload: module metadata, SYSINIT/SYSUNINIT ordering, module
//! events, and the checks that unloading left nothing behind.
//!
//! Load (after [`crate::loader`] has linked the image): put the file on the
//! linker list; read `modmetadata_set` — each `MDT_DEPEND` must be satisfied
//! (`kernel` by the harness's `__FreeBSD_version`, others by a module
//! version already registered; else ENOENT with FreeBSD's message), an
//! `MDT_VERSION` already registered is EEXIST, each `MDT_MODULE` registers a
//! module (EEXIST on a duplicate name); register the static OIDs of
//! `set_sysctl_set` (a parent that never appears refuses the load); run the `sysinit_set` entries sorted
//! by subsystem then order (stable); `module_register_init` delivers
//! MOD_LOAD and, if that fails, MOD_UNLOAD and releases the module; a file
//! whose modules all failed is unloaded again (ENOEXEC); finally
//! `kld_load` event handlers run. Unload: `kld_unload_try` handlers may veto
//! (EBUSY); every module gets MOD_QUIESCE (EOPNOTSUPP/EINVAL count as
//! success) and then MOD_UNLOAD, whose error aborts the unload; then the
//! `sysuninit_set` entries run in reverse order, the static OIDs go away and
//! the image is unmapped —
//! unless the module left callouts, event handlers, hooks, devices, sysctls
//! or locks pointing into it, which the harness reports as leaks (and then
//! keeps the image mapped so nothing jumps into freed memory).
//! Not probe context.

use std::sync::Mutex;

use crate::elf::{LoadError, ModuleObject};
use crate::kernel::{self, callout, cpu, devfs, eventhandler, hooks, linker, locks, sysctl};
use crate::loader::{read_u64, LinkedImage};

/// The harness kernel's `__FreeBSD_version` (15.0-RELEASE).
pub const HARNESS_FREEBSD_VERSION: i32 = 1_500_000;
pub const MDT_DEPEND: i32 = 1;
pub const MDT_MODULE: i32 = 2;
pub const MDT_VERSION: i32 = 3;
pub const MOD_LOAD: i32 = 0;
pub const MOD_UNLOAD: i32 = 1;
pub const MOD_QUIESCE: i32 = 3;
const ENOENT: i32 = 2;
const ENOEXEC: i32 = 8;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const EOPNOTSUPP: i32 = 45;

/// One SYSINIT/SYSUNINIT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysInit {
    pub subsystem: u32,
    pub order: u32,
    pub func: u64,
    pub udata: u64,
}

/// One metadata record of the module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Metadata {
    Depend {
        name: String,
        min: i32,
        preferred: i32,
        max: i32,
    },
    Module {
        name: String,
        data: u64,
    },
    Version {
        name: String,
        version: i32,
    },
    Other {
        kind: i32,
        name: String,
    },
}

struct ModuleRec {
    name: String,
    data: u64,
    handler: u64,
    private: u64,
    handle: crate::lowmem::LowRegion,
    file: u64,
    loaded: bool,
}

static MODULES: Mutex<Vec<ModuleRec>> = Mutex::new(Vec::new());
static VERSIONS: Mutex<Vec<(String, i32, u64)>> = Mutex::new(Vec::new());

/// A module file loaded into the harness.
pub struct Kld {
    image: Option<LinkedImage>,
    lf: u64,
    pub name: String,
    pub metadata: Vec<Metadata>,
    /// SYSINITs in the order they ran.
    pub sysinits_run: Vec<SysInit>,
    unloaded: bool,
}

/// What unloading found.
#[derive(Debug, Default)]
pub struct UnloadReport {
    /// SYSUNINITs in the order they ran.
    pub sysuninits_run: Vec<SysInit>,
    /// Things the module left behind (empty when it cleaned up).
    pub leaks: Vec<String>,
}

fn read_u32(addr: u64) -> u32 {
    // SAFETY: reads of module metadata inside the loaded image.
    unsafe { std::ptr::read_unaligned(addr as *const u32) }
}

fn read_i32(addr: u64) -> i32 {
    read_u32(addr) as i32
}

fn c_str(addr: u64) -> String {
    // SAFETY: metadata names are C strings in the module image.
    unsafe { kernel::c_str(addr, 256) }
}

/// Parse `modmetadata_set` of a linked image.
pub fn read_metadata(image: &LinkedImage) -> Result<Vec<Metadata>, LoadError> {
    let mut out = Vec::new();
    for md in image.linker_set_entries("modmetadata_set") {
        if !image.contains(md) {
            return Err(LoadError::Malformed(format!(
                "modmetadata entry {md:#x} outside the module"
            )));
        }
        let version = read_i32(md);
        if version != 1 {
            return Err(LoadError::Malformed(format!(
                "mod_metadata version {version} (expected 1)"
            )));
        }
        let kind = read_i32(md + 4);
        let data = read_u64(md + 8);
        let name = c_str(read_u64(md + 16));
        out.push(match kind {
            MDT_DEPEND => Metadata::Depend {
                name,
                min: read_i32(data),
                preferred: read_i32(data + 4),
                max: read_i32(data + 8),
            },
            MDT_MODULE => Metadata::Module { name, data },
            MDT_VERSION => Metadata::Version {
                name,
                version: read_i32(data),
            },
            other => Metadata::Other { kind: other, name },
        });
    }
    Ok(out)
}

/// Read a sysinit-style linker set (`sysinit_set` or `sysuninit_set`).
pub fn read_sysinits(image: &LinkedImage, set: &str) -> Vec<SysInit> {
    image
        .linker_set_entries(set)
        .into_iter()
        .map(|p| SysInit {
            subsystem: read_u32(p),
            order: read_u32(p + 4),
            func: read_u64(p + 16),
            udata: read_u64(p + 24),
        })
        .collect()
}

fn call_sysinit(s: &SysInit) {
    // SAFETY: a SYSINIT function takes its udata pointer.
    let f: extern "C" fn(u64) = unsafe { std::mem::transmute(s.func) };
    cpu::enter_kernel(cpu::home_cpu());
    f(s.udata);
    cpu::leave_kernel();
}

fn module_event(handler: u64, handle: u64, what: i32, private: u64) -> i32 {
    if handler == 0 {
        return if what == MOD_LOAD || what == MOD_UNLOAD {
            0
        } else {
            EOPNOTSUPP
        };
    }
    // SAFETY: module event handlers have the modeventhand_t signature.
    let f: extern "C" fn(u64, i32, u64) -> i32 = unsafe { std::mem::transmute(handler) };
    cpu::enter_kernel(cpu::home_cpu());
    let e = f(handle, what, private);
    cpu::leave_kernel();
    e
}

/// `module_register_init(moduledata)`: deliver MOD_LOAD to a registered module.
extern "C" fn kpi_module_register_init(data: u64) {
    let found = {
        let m = MODULES.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .find(|r| r.data == data && !r.loaded)
            .map(|r| (r.name.clone(), r.handler, r.handle.addr(), r.private))
    };
    let Some((name, handler, handle, private)) = found else {
        kernel::console_write(&format!(
            "module_register_init: module for data {data:#x} not found\n"
        ));
        return;
    };
    // We are inside a SYSINIT (in the kernel on CPU 0); the event nests.
    let e = module_event(handler, handle, MOD_LOAD, private);
    if e != 0 {
        kernel::console_write(&format!(
            "module_register_init: MOD_LOAD ({name}, {handler:#x}, {private:#x}) error {e}\n"
        ));
        module_event(handler, handle, MOD_UNLOAD, private);
        MODULES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| r.data != data);
        return;
    }
    let mut m = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = m.iter_mut().find(|r| r.data == data) {
        r.loaded = true;
    }
}

pub(crate) fn functions() -> Vec<(&'static str, usize)> {
    vec![(
        "module_register_init",
        kpi_module_register_init as *const () as usize,
    )]
}

fn metadata_error(errno: i32, message: String) -> LoadError {
    kernel::console_write(&format!("{message}\n"));
    LoadError::Metadata { errno, message }
}

impl Kld {
    /// Load a module file's bytes as `name` (e.g. "rdtrace.ko").
    pub fn load(name: &str, bytes: Vec<u8>) -> Result<Kld, LoadError> {
        let object = ModuleObject::parse(bytes)?;
        let image = LinkedImage::link(object, kernel::image())?;
        let metadata = read_metadata(&image)?;

        // Dependencies and versions, before anything runs.
        for md in &metadata {
            match md {
                Metadata::Depend {
                    name: dep,
                    min,
                    max,
                    ..
                } => {
                    let ok = if dep == "kernel" {
                        (*min..=*max).contains(&HARNESS_FREEBSD_VERSION)
                    } else {
                        let v = VERSIONS.lock().unwrap_or_else(|e| e.into_inner());
                        v.iter()
                            .any(|(n, ver, _)| n == dep && (*min..=*max).contains(ver))
                    };
                    if !ok {
                        return Err(metadata_error(
                            ENOENT,
                            format!(
                                "KLD {name}: depends on {dep} - not available or version mismatch"
                            ),
                        ));
                    }
                }
                Metadata::Version {
                    name: iface,
                    version,
                } => {
                    let v = VERSIONS.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((_, ver, _)) = v.iter().find(|(n, _, _)| n == iface) {
                        return Err(metadata_error(
                            EEXIST,
                            format!("interface {iface}.{ver} already present in the KLD (loading {name}, version {version})"),
                        ));
                    }
                }
                _ => {}
            }
        }

        let (base, size) = (image.base(), image.size() as u64);
        let symbols = image
            .symbols()
            .iter()
            .map(|s| linker::FileSymbol {
                name: s.name.clone(),
                name_c: kernel::leak_c_string(&s.name),
                addr: s.addr,
                size: s.size,
                is_function: s.sym_type == crate::elf::STT_FUNC,
            })
            .collect();
        let sets = image
            .object()
            .sections
            .iter()
            .filter(|s| s.is_loaded() && s.name.starts_with("set_"))
            .filter_map(|s| {
                image
                    .linker_set(&s.name["set_".len()..])
                    .map(|(a, b)| (s.name.clone(), a, b))
            })
            .collect();
        let lf = linker::add_file(name, base, size, symbols, sets);
        let (tlo, thi) = image.text_range();
        kernel::trap::add_text_range(tlo, thi);

        for md in metadata.clone().iter() {
            match md {
                Metadata::Version {
                    name: iface,
                    version,
                } => VERSIONS.lock().unwrap_or_else(|e| e.into_inner()).push((
                    iface.clone(),
                    *version,
                    lf,
                )),
                Metadata::Module {
                    name: modname,
                    data,
                } => {
                    let mut m = MODULES.lock().unwrap_or_else(|e| e.into_inner());
                    if m.iter().any(|r| &r.name == modname) {
                        drop(m);
                        let mut kld = Kld {
                            image: Some(image),
                            lf,
                            name: name.into(),
                            metadata,
                            sysinits_run: Vec::new(),
                            unloaded: false,
                        };
                        kld.teardown_file();
                        return Err(metadata_error(
                            EEXIST,
                            format!("module_register: cannot register {modname} from {name}; already loaded"),
                        ));
                    }
                    let handle = crate::lowmem::LowRegion::new(128)
                        .map_err(|e| LoadError::Host(e.to_string()))?;
                    m.push(ModuleRec {
                        name: modname.clone(),
                        data: *data,
                        handler: read_u64(data + 8),
                        private: read_u64(data + 16),
                        handle,
                        file: lf,
                        loaded: false,
                    });
                }
                _ => {}
            }
        }
        // Static OIDs (set_sysctl_set), before the SYSINITs as in FreeBSD;
        // a child may precede its parent in the set, so register in passes.
        let mut pending = image.linker_set_entries("sysctl_set");
        while !pending.is_empty() {
            let before = pending.len();
            let mut last_error = String::new();
            pending.retain(|&oid| match sysctl::register_static(oid) {
                Ok(()) => false,
                Err(e) => {
                    last_error = e;
                    true
                }
            });
            if pending.len() == before {
                let (lo, hi) = (image.base(), image.base() + image.size() as u64);
                sysctl::unregister_static_in(lo, hi);
                let mut kld = Kld {
                    image: Some(image),
                    lf,
                    name: name.into(),
                    metadata,
                    sysinits_run: Vec::new(),
                    unloaded: false,
                };
                kld.teardown_file();
                return Err(metadata_error(
                    EINVAL,
                    format!("kldload: {name}: {last_error}"),
                ));
            }
        }
        let declared_modules = metadata
            .iter()
            .any(|m| matches!(m, Metadata::Module { .. }));

        let mut sysinits = read_sysinits(&image, "sysinit_set");
        sysinits.sort_by_key(|s| (s.subsystem, s.order));
        for s in &sysinits {
            call_sysinit(s);
        }
        let mut kld = Kld {
            image: Some(image),
            lf,
            name: name.into(),
            metadata,
            sysinits_run: sysinits,
            unloaded: false,
        };

        let live_modules = MODULES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.file == lf)
            .count();
        if declared_modules && live_modules == 0 {
            let report = kld.finish_unload();
            return Err(metadata_error(
                ENOEXEC,
                format!(
                    "kldload: {name}: every module in the file failed to load (leaks: {:?})",
                    report.leaks
                ),
            ));
        }
        eventhandler::invoke_kld_load(lf);
        Ok(kld)
    }

    /// The linked image (None after a successful unload).
    pub fn image(&self) -> Option<&LinkedImage> {
        self.image.as_ref()
    }

    /// The file's `struct linker_file` address.
    pub fn linker_file(&self) -> u64 {
        self.lf
    }

    /// Names of the modules this file registered and loaded.
    pub fn modules(&self) -> Vec<String> {
        let m = MODULES.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .filter(|r| r.file == self.lf && r.loaded)
            .map(|r| r.name.clone())
            .collect()
    }

    /// kldunload(2). On refusal returns the errno and the module stays loaded.
    pub fn unload(&mut self) -> Result<UnloadReport, i32> {
        if self.unloaded {
            return Err(ENOENT);
        }
        if eventhandler::invoke_kld_unload_try(self.lf) != 0 {
            return Err(EBUSY);
        }
        let mods: Vec<(u64, u64, u64)> = {
            let m = MODULES.lock().unwrap_or_else(|e| e.into_inner());
            m.iter()
                .filter(|r| r.file == self.lf && r.loaded)
                .map(|r| (r.handler, r.handle.addr(), r.private))
                .collect()
        };
        for &(handler, handle, private) in &mods {
            let e = module_event(handler, handle, MOD_QUIESCE, private);
            if e != 0 && e != EOPNOTSUPP && e != EINVAL {
                return Err(e);
            }
        }
        for &(handler, handle, private) in &mods {
            let e = module_event(handler, handle, MOD_UNLOAD, private);
            if e != 0 {
                return Err(e);
            }
            let mut m = MODULES.lock().unwrap_or_else(|e| e.into_inner());
            m.retain(|r| r.handle.addr() != handle);
        }
        Ok(self.finish_unload())
    }

    fn teardown_file(&mut self) {
        linker::remove_file(self.lf);
        VERSIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, _, f)| *f != self.lf);
        MODULES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| r.file != self.lf);
        if let Some(img) = &self.image {
            kernel::trap::remove_text_range(img.text_range().0);
        }
    }

    fn finish_unload(&mut self) -> UnloadReport {
        let mut report = UnloadReport::default();
        let Some(image) = self.image.as_ref() else {
            return report;
        };
        let mut sysuninits = read_sysinits(image, "sysuninit_set");
        sysuninits.sort_by_key(|s| std::cmp::Reverse((s.subsystem, s.order)));
        for s in &sysuninits {
            call_sysinit(s);
        }
        report.sysuninits_run = sysuninits;
        let name_c = kernel::leak_c_string(&self.name);
        eventhandler::invoke_kld_unload(name_c, image.base(), image.size() as u64);

        let (lo, hi) = (image.base(), image.base() + image.size() as u64);
        sysctl::unregister_static_in(lo, hi);
        report.leaks.extend(callout::active_in(lo, hi));
        report.leaks.extend(eventhandler::registered_in(lo, hi));
        report.leaks.extend(hooks::hooks_into(lo, hi));
        report.leaks.extend(sysctl::registered_in(lo, hi));
        report.leaks.extend(
            devfs::nodes()
                .into_iter()
                .map(|n| format!("device {} still exists", n.path)),
        );
        for (addr, kind, name) in locks::live_locks() {
            if (addr >= lo && addr < hi) || kernel::malloc::is_live_range(addr, 8) {
                report
                    .leaks
                    .push(format!("{kind:?} \"{name}\" at {addr:#x} never destroyed"));
            }
        }
        self.teardown_file();
        callout::forget_range(lo, hi);
        if report.leaks.is_empty() {
            self.image = None;
        } else {
            // Keep the text mapped: something may still jump into it.
            std::mem::forget(self.image.take());
        }
        self.unloaded = true;
        report
    }
}
