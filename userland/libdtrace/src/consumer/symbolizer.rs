//! The [`Symbolizer`] dtrace(1) uses: kernel and process symbol tables of
//! the system the device belongs to.
//!
//! * Hosted kernel: "kernel" addresses are this process's own code, so
//!   `lookup_kernel` resolves them against this process's mappings
//!   (`/proc/self/maps`) and the ELF files behind them; the module is the
//!   file's base name (`dtrace`, `libc.so.6`).
//! * FreeBSD kernel: the loaded kernel files (`kldnext(2)`/`kldstat(2)`:
//!   name, load address, size, path) with the symbols of each file's ELF
//!   image. Fixed-address (`ET_EXEC`) files resolve directly, shared-object
//!   modules through their load address, relocatable amd64 `.ko` files by
//!   laying their sections out from the load address as the kernel linker
//!   does ([`ObjectSymbols::placed_at`]).
//! * User addresses (`ustack`, `usym`, `uaddr`, `umod`): the process's
//!   mappings — `/proc/<pid>/maps` on Linux, `sysctl kern.proc.vmmap` on
//!   FreeBSD — and the ELF files behind them.
//!
//! Address spaces are read on first use and cached, as are parsed ELF
//! files; [`SystemSymbols::refresh_process`] re-reads one (dtrace(1) does so
//! for its `-c`/`-p` processes while they run). A process that exited before
//! it was ever read prints hex addresses. Not probe context.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::symtab::{AddressSpace, Mapping, ObjectSymbols};
use crate::output::stack::{SymbolInfo, Symbolizer};

/// Where kernel addresses come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// The hosted kernel: this process.
    Hosted,
    /// The running operating system's kernel (FreeBSD's loaded files).
    System,
}

/// Symbol lookups against the real kernel and processes, with caches.
pub struct SystemSymbols {
    kernel: KernelKind,
    files: RefCell<HashMap<String, Option<Arc<ObjectSymbols>>>>,
    processes: RefCell<HashMap<u64, Rc<AddressSpace>>>,
    kernel_space: RefCell<Option<Rc<AddressSpace>>>,
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl SystemSymbols {
    pub fn new(kernel: KernelKind) -> SystemSymbols {
        SystemSymbols {
            kernel,
            files: RefCell::new(HashMap::new()),
            processes: RefCell::new(HashMap::new()),
            kernel_space: RefCell::new(None),
        }
    }

    /// The parsed ELF file at `path` (once per path).
    fn file(&self, path: &str) -> Option<Arc<ObjectSymbols>> {
        if let Some(known) = self.files.borrow().get(path) {
            return known.clone();
        }
        let loaded = ObjectSymbols::load(path).map(Arc::new);
        self.files
            .borrow_mut()
            .insert(path.to_string(), loaded.clone());
        loaded
    }

    /// Process `pid`'s address space (read once).
    fn process(&self, pid: u64) -> Rc<AddressSpace> {
        if let Some(space) = self.processes.borrow().get(&pid) {
            return space.clone();
        }
        let mappings = process_mappings(pid);
        let space = Rc::new(AddressSpace::from_mappings(&mappings, |p| self.file(p)));
        self.processes.borrow_mut().insert(pid, space.clone());
        space
    }

    /// Re-reads process `pid`'s mappings now, keeping the previous view if
    /// the process can no longer be read. dtrace(1) calls this for its
    /// `-c`/`-p` processes while they run, so their addresses still
    /// symbolize when aggregations are printed after they exit.
    pub fn refresh_process(&self, pid: u64) {
        let mappings = process_mappings(pid);
        if mappings.is_empty() {
            return;
        }
        let space = Rc::new(AddressSpace::from_mappings(&mappings, |p| self.file(p)));
        self.processes.borrow_mut().insert(pid, space);
    }

    fn kernel_space(&self) -> Rc<AddressSpace> {
        if let Some(space) = self.kernel_space.borrow().as_ref() {
            return space.clone();
        }
        let space = Rc::new(kernel_address_space(|p| self.file(p)));
        *self.kernel_space.borrow_mut() = Some(space.clone());
        space
    }

    fn lookup_in(space: &AddressSpace, pc: u64, module_basename: bool) -> Option<SymbolInfo> {
        let found = space.lookup(pc)?;
        let object = if module_basename {
            basename(found.path).to_string()
        } else {
            found.path.to_string()
        };
        Some(SymbolInfo {
            object,
            symbol: found.symbol.map(|(name, start)| (name.to_string(), start)),
        })
    }
}

impl Symbolizer for SystemSymbols {
    fn lookup_kernel(&self, pc: u64) -> Option<SymbolInfo> {
        match self.kernel {
            KernelKind::Hosted => {
                let own = u64::from(std::process::id());
                SystemSymbols::lookup_in(&self.process(own), pc, true)
            }
            // Kernel module names are already base names (`kernel`, `zfs.ko`).
            KernelKind::System => SystemSymbols::lookup_in(&self.kernel_space(), pc, true),
        }
    }

    fn lookup_user(&self, pid: u64, pc: u64) -> Option<SymbolInfo> {
        SystemSymbols::lookup_in(&self.process(pid), pc, false)
    }
}

/// The file-backed mappings of process `pid` (empty if it cannot be read).
#[cfg(not(target_os = "freebsd"))]
pub fn process_mappings(pid: u64) -> Vec<Mapping> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|t| super::symtab::parse_proc_maps(&t))
        .unwrap_or_default()
}

/// The file-backed mappings of process `pid` (empty if it cannot be read).
#[cfg(target_os = "freebsd")]
pub fn process_mappings(pid: u64) -> Vec<Mapping> {
    freebsd::vmmap(pid)
}

/// The kernel's loaded files as an address space.
#[cfg(not(target_os = "freebsd"))]
fn kernel_address_space(_load: impl FnMut(&str) -> Option<Arc<ObjectSymbols>>) -> AddressSpace {
    // Only FreeBSD has a kernel rdtrace can symbolize.
    AddressSpace::default()
}

#[cfg(target_os = "freebsd")]
fn kernel_address_space(load: impl FnMut(&str) -> Option<Arc<ObjectSymbols>>) -> AddressSpace {
    freebsd::kernel_files(load)
}

#[cfg(target_os = "freebsd")]
mod freebsd {
    //! FreeBSD's interfaces: `sysctl kern.proc.vmmap` (what procstat -v
    //! reads) and `kldnext(2)`/`kldstat(2)`.

    use std::sync::Arc;

    use super::super::symtab::{AddressSpace, Mapping, ObjectSymbols, PlacedObject};

    /// `struct kinfo_vmentry` offsets (FreeBSD 12 and later, LP64).
    const KVE_STRUCTSIZE: usize = 0;
    const KVE_TYPE: usize = 4;
    const KVE_START: usize = 8;
    const KVE_END: usize = 16;
    const KVE_OFFSET: usize = 24;
    const KVE_PATH: usize = 136;
    /// `KVME_TYPE_VNODE`: a file-backed mapping.
    const KVME_TYPE_VNODE: i32 = 2;

    fn int_at(b: &[u8], at: usize) -> Option<i32> {
        Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    fn u64_at(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }

    fn c_string(b: &[u8]) -> String {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    }

    /// The packed `kinfo_vmentry` records of `kern.proc.vmmap.<pid>`.
    pub fn vmmap(pid: u64) -> Vec<Mapping> {
        let Ok(pid) = libc::c_int::try_from(pid) else {
            return Vec::new();
        };
        let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_VMMAP, pid];
        let mut len: libc::size_t = 0;
        // SAFETY: a size query: null old buffer, `len` receives the size.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                4,
                core::ptr::null_mut(),
                &mut len,
                core::ptr::null(),
                0,
            )
        };
        if rc != 0 {
            return Vec::new();
        }
        // The map may grow between the two calls.
        len = len.saturating_mul(4).saturating_div(3);
        let mut buf = vec![0u8; len];
        // SAFETY: `buf` is writable for `len` bytes; the kernel writes at
        // most `len` and stores the length it wrote.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                4,
                buf.as_mut_ptr().cast(),
                &mut len,
                core::ptr::null(),
                0,
            )
        };
        if rc != 0 {
            return Vec::new();
        }
        buf.truncate(len);
        let mut out = Vec::new();
        let mut at = 0usize;
        while let Some(size) = int_at(&buf, at + KVE_STRUCTSIZE) {
            let Ok(size) = usize::try_from(size) else {
                break;
            };
            if size == 0 {
                break;
            }
            let Some(entry) = buf.get(at..at.saturating_add(size)) else {
                break;
            };
            let path = entry.get(KVE_PATH..).map(c_string).unwrap_or_default();
            if int_at(entry, KVE_TYPE) == Some(KVME_TYPE_VNODE) && path.starts_with('/') {
                if let (Some(start), Some(end), Some(offset)) = (
                    u64_at(entry, KVE_START),
                    u64_at(entry, KVE_END),
                    u64_at(entry, KVE_OFFSET),
                ) {
                    out.push(Mapping {
                        start,
                        end,
                        offset,
                        path,
                    });
                }
            }
            at = at.saturating_add(size);
        }
        out
    }

    /// `struct kld_file_stat` (sys/linker.h), LP64.
    const KLD_NAME: usize = 4;
    const KLD_ADDRESS: usize = 1040;
    const KLD_SIZE: usize = 1048;
    const KLD_PATHNAME: usize = 1056;
    const KLD_STAT_SIZE: usize = 2080;
    const MAXPATHLEN: usize = 1024;

    extern "C" {
        fn kldnext(fileid: libc::c_int) -> libc::c_int;
        fn kldstat(fileid: libc::c_int, stat: *mut u8) -> libc::c_int;
    }

    /// Every loaded kernel file placed at its load address.
    pub fn kernel_files(mut load: impl FnMut(&str) -> Option<Arc<ObjectSymbols>>) -> AddressSpace {
        let mut objects = Vec::new();
        let mut id = 0;
        loop {
            // SAFETY: kldnext takes a file id and returns the next one
            // (0 at the end, -1 on error).
            id = unsafe { kldnext(id) };
            if id <= 0 {
                break;
            }
            let mut stat = vec![0u8; KLD_STAT_SIZE];
            stat[..4].copy_from_slice(&(KLD_STAT_SIZE as i32).to_ne_bytes());
            // SAFETY: `stat` is a writable buffer of the structure's size
            // with its version field set, as kldstat(2) requires.
            if unsafe { kldstat(id, stat.as_mut_ptr()) } != 0 {
                continue;
            }
            let name = c_string(&stat[KLD_NAME..KLD_NAME + MAXPATHLEN]);
            let path = c_string(&stat[KLD_PATHNAME..KLD_PATHNAME + MAXPATHLEN]);
            let (Some(address), Some(size)) = (u64_at(&stat, KLD_ADDRESS), u64_at(&stat, KLD_SIZE))
            else {
                continue;
            };
            let symbols = load(&path).unwrap_or_default();
            // Relocatable (amd64) modules: sections laid out from the load
            // address; fixed (the kernel): as linked; shared objects
            // (arm64, riscv64): moved by the load address.
            let symbols = if symbols.is_relocatable() {
                Arc::new(symbols.placed_at(address))
            } else {
                symbols
            };
            let first_vaddr = symbols
                .segments()
                .iter()
                .map(|s| s.vaddr)
                .min()
                .unwrap_or(0);
            let bias = if symbols.is_fixed() {
                0
            } else {
                address.wrapping_sub(first_vaddr)
            };
            objects.push((
                address,
                address.saturating_add(size),
                PlacedObject {
                    path: name,
                    symbols,
                    bias,
                },
            ));
        }
        AddressSpace::from_objects(objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_to_find() -> u64 {
        // Keep a distinct body so the symbol is not merged with another.
        std::hint::black_box(0x5eed)
    }

    #[test]
    fn own_functions_resolve_with_module_and_offset() {
        let symbols = SystemSymbols::new(KernelKind::Hosted);
        let f = a_function_to_find as fn() -> u64 as usize as u64;
        assert_eq!(a_function_to_find(), 0x5eed);
        let info = symbols.lookup_kernel(f + 1).expect("own code is mapped");
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            info.object,
            exe.file_name().unwrap().to_string_lossy(),
            "module is the executable's base name"
        );
        let (name, start) = info.symbol.expect("the test binary has symbols");
        assert!(
            name.ends_with("a_function_to_find"),
            "demangled name, got {name}"
        );
        assert_eq!(start, f);
    }

    #[test]
    fn a_refreshed_view_survives_the_process() {
        // A child that exits at once: its mappings are read while it lives
        // and still answer lookups once it is gone.
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("0.3")
            .spawn()
            .expect("sleep runs");
        let pid = u64::from(child.id());
        std::thread::sleep(std::time::Duration::from_millis(100));
        let symbols = SystemSymbols::new(KernelKind::Hosted);
        symbols.refresh_process(pid);
        let start = process_mappings(pid).first().map(|m| m.start);
        child.wait().expect("sleep exits");
        let Some(start) = start else {
            return; // /proc not readable here: nothing to check
        };
        let info = symbols.lookup_user(pid, start).expect("cached mapping");
        assert!(info.object.starts_with('/'), "{info:?}");
    }

    #[test]
    fn user_lookups_of_this_process_give_the_full_path() {
        let symbols = SystemSymbols::new(KernelKind::Hosted);
        let f = a_function_to_find as fn() -> u64 as usize as u64;
        let info = symbols
            .lookup_user(u64::from(std::process::id()), f)
            .expect("mapped");
        assert!(info.object.starts_with('/'));
        // An address nothing is mapped at.
        assert_eq!(symbols.lookup_user(u64::from(std::process::id()), 8), None);
    }
}
