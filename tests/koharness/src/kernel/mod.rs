//! The fake FreeBSD kernel: every KPI symbol rdtrace.ko may import, with
//! FreeBSD's documented semantics, placed below 2 GiB.
//!
//! Functions are host `extern "C"` functions reached through 16-byte
//! trampolines in the fake kernel image; data objects (`hz`, `mp_ncpus`,
//! `M_DEVBUF`, the DTrace hook variables …) live in the same image so the
//! module's 32-bit relocations reach them. [`image`] builds the image once
//! per process; the loader resolves imports through it. A symbol the module
//! imports and this table lacks makes the load fail by name.
//! Not probe context, except the functions documented as such in their
//! submodules (critical sections, spin mutexes, copy helpers, hooks).

pub mod arm64;
pub mod callout;
pub mod cpu;
pub mod devfs;
pub mod eventhandler;
pub mod hooks;
pub mod ktext;
pub mod libkern;
pub mod linker;
pub mod locks;
pub mod malloc;
pub mod printf;
pub mod sdt;
pub mod sleep;
pub mod smp;
pub mod sysctl;
pub mod time;
pub mod trap;
pub mod uaccess;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::lowmem::{align_up, encode_trampoline, LowRegion, TRAMPOLINE_SIZE};

/// What a kernel symbol is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolKind {
    /// A function: the address is its trampoline.
    Function,
    /// A data object of the given size.
    Data,
}

/// A symbol of the fake kernel image.
#[derive(Clone, Debug)]
pub struct KernelSymbol {
    pub name: &'static str,
    pub addr: u64,
    pub size: u64,
    pub kind: SymbolKind,
}

/// A data object the fake kernel defines: name, size, alignment and its
/// initial contents (zero-extended to `size`).
pub struct DataObject {
    pub name: &'static str,
    pub size: usize,
    pub align: usize,
    pub init: Vec<u8>,
}

impl DataObject {
    pub fn zeroed(name: &'static str, size: usize) -> DataObject {
        DataObject {
            name,
            size,
            align: 16,
            init: Vec::new(),
        }
    }
    pub fn int(name: &'static str, value: i32) -> DataObject {
        DataObject {
            name,
            size: 4,
            align: 4,
            init: value.to_le_bytes().to_vec(),
        }
    }
}

/// The fake kernel image: trampolines and data objects.
pub struct KernelImage {
    region: LowRegion,
    symbols: HashMap<&'static str, KernelSymbol>,
    text_end: u64,
}

impl KernelImage {
    fn build() -> KernelImage {
        let mut functions: Vec<(&'static str, usize)> = Vec::new();
        functions.extend(malloc::functions());
        functions.extend(arm64::functions());
        functions.extend(locks::functions());
        functions.extend(callout::functions());
        functions.extend(devfs::functions());
        functions.extend(eventhandler::functions());
        functions.extend(libkern::functions());
        functions.extend(linker::functions());
        functions.extend(printf::functions());
        functions.extend(smp::functions());
        functions.extend(sysctl::functions());
        functions.extend(time::functions());
        functions.extend(sleep::functions());
        functions.extend(uaccess::functions());
        functions.extend(crate::kld::functions());
        let mut data: Vec<DataObject> = Vec::new();
        data.extend(malloc::data());
        data.extend(smp::data());
        data.extend(time::data());
        data.extend(sysctl::data());
        data.extend(hooks::data());
        data.extend(sdt::data());
        let fixups = sdt::fixups();

        let code = ktext::functions();
        let code_start = align_up(functions.len() * TRAMPOLINE_SIZE, 64);
        let mut code_len = 0usize;
        for (_, bytes) in &code {
            code_len = align_up(code_len, 16) + bytes.len();
        }
        let text_len = align_up(code_start + code_len, 4096);
        let mut data_len = 0usize;
        for d in &data {
            data_len = align_up(data_len, d.align) + d.size;
        }
        let region = LowRegion::new(text_len + align_up(data_len.max(1), 4096))
            .expect("mmap fake kernel image");
        let mut symbols = HashMap::new();
        for (i, (name, target)) in functions.iter().enumerate() {
            let addr = region.addr() + (i * TRAMPOLINE_SIZE) as u64;
            let code = encode_trampoline(*target as u64);
            // SAFETY: within the writable region we just mapped.
            unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), addr as *mut u8, code.len()) };
            let previous = symbols.insert(
                *name,
                KernelSymbol {
                    name,
                    addr,
                    size: TRAMPOLINE_SIZE as u64,
                    kind: SymbolKind::Function,
                },
            );
            assert!(previous.is_none(), "kernel symbol {name} defined twice");
        }
        let mut at = code_start;
        for (name, bytes) in &code {
            at = align_up(at, 16);
            let addr = region.addr() + at as u64;
            // SAFETY: within the writable text part of the region.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
            let previous = symbols.insert(
                *name,
                KernelSymbol {
                    name,
                    addr,
                    size: bytes.len() as u64,
                    kind: SymbolKind::Function,
                },
            );
            assert!(previous.is_none(), "kernel symbol {name} defined twice");
            at += bytes.len();
        }
        let mut off = text_len;
        for d in &data {
            off = align_up(off, d.align);
            let addr = region.addr() + off as u64;
            // SAFETY: within the writable region; `init` is at most `size` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    d.init.as_ptr(),
                    addr as *mut u8,
                    d.init.len().min(d.size),
                )
            };
            let previous = symbols.insert(
                d.name,
                KernelSymbol {
                    name: d.name,
                    addr,
                    size: d.size as u64,
                    kind: SymbolKind::Data,
                },
            );
            assert!(previous.is_none(), "kernel symbol {} defined twice", d.name);
            off += d.size;
        }
        for (obj, offset, target) in fixups {
            let at = symbols[obj].addr + offset;
            let value = symbols[target].addr;
            // SAFETY: `at` lies inside a data object of the writable region.
            unsafe { std::ptr::write_unaligned(at as *mut u64, value) };
        }
        region
            .protect(0, text_len, libc::PROT_READ | libc::PROT_EXEC)
            .expect("mprotect kernel trampolines");
        let text_end = region.addr() + text_len as u64;
        KernelImage {
            region,
            symbols,
            text_end,
        }
    }

    /// Look a kernel symbol up by name.
    pub fn symbol(&self, name: &str) -> Option<&KernelSymbol> {
        self.symbols.get(name)
    }

    /// Address of a kernel data object; panics if the harness lacks it.
    pub fn data(&self, name: &str) -> u64 {
        match self.symbols.get(name) {
            Some(s) if s.kind == SymbolKind::Data => s.addr,
            _ => panic!("fake kernel has no data object {name}"),
        }
    }

    /// Every symbol, sorted by address.
    pub fn all_symbols(&self) -> Vec<KernelSymbol> {
        let mut v: Vec<KernelSymbol> = self.symbols.values().cloned().collect();
        v.sort_by_key(|s| s.addr);
        v
    }

    /// `[start, end)` of the image and the end of its text part.
    pub fn bounds(&self) -> (u64, u64, u64) {
        (self.region.addr(), self.region.end(), self.text_end)
    }
}

impl crate::loader::KernelSymbols for KernelImage {
    fn lookup(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).map(|s| s.addr)
    }
}

pub(crate) static IMAGE: OnceLock<KernelImage> = OnceLock::new();

/// The fake kernel image (built on first use).
pub fn image() -> &'static KernelImage {
    IMAGE.get_or_init(|| {
        trap::install();
        KernelImage::build()
    })
}

/// Read a 32-bit kernel data object.
pub fn read_i32(name: &str) -> i32 {
    // SAFETY: `data` returns the address of a live object of at least 4 bytes.
    unsafe { std::ptr::read_volatile(image().data(name) as *const i32) }
}

/// Read a 64-bit kernel data object (pointers, hook variables).
pub fn read_u64(name: &str) -> u64 {
    // SAFETY: hook variables and pointers are 8-byte objects in the image.
    unsafe { std::ptr::read_volatile(image().data(name) as *const u64) }
}

/// Write a 32-bit kernel data object.
pub fn write_i32(name: &str, value: i32) {
    // SAFETY: as for `read_i32`; the image's data part is writable.
    unsafe { std::ptr::write_volatile(image().data(name) as *mut i32, value) }
}

static CONSOLE: Mutex<String> = Mutex::new(String::new());

/// Append to the kernel console (printf output); echoed to stderr when
/// `RDTRACE_KOHARNESS_VERBOSE` is set.
pub fn console_write(text: &str) {
    if std::env::var_os("RDTRACE_KOHARNESS_VERBOSE").is_some() {
        eprint!("{text}");
    }
    CONSOLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_str(text);
}

/// Everything printed on the kernel console so far.
pub fn console() -> String {
    CONSOLE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A kernel panic: print the message and the console tail, then abort the
/// process (tests run in child processes, so the parent reports it).
pub fn kpanic(message: &str) -> ! {
    let console = console();
    let tail: String = console
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    eprintln!("---- kernel console (tail) ----\n{tail}\n-------------------------------");
    eprintln!("panic: {message}");
    eprintln!("{}", std::backtrace::Backtrace::force_capture());
    std::process::abort();
}

/// Read a NUL-terminated C string from kernel memory (at most `max` bytes).
///
/// # Safety
/// `ptr` must point to readable memory holding a NUL within `max` bytes, or
/// to at least `max` readable bytes.
pub unsafe fn c_str(ptr: u64, max: usize) -> String {
    if ptr == 0 {
        return String::from("(null)");
    }
    let mut out = Vec::new();
    for i in 0..max {
        // SAFETY: guaranteed readable by the caller's contract.
        let c = unsafe { *((ptr + i as u64) as *const u8) };
        if c == 0 {
            break;
        }
        out.push(c);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Allocate a NUL-terminated copy of `s` that lives for the rest of the
/// process (names handed to module code).
pub fn leak_c_string(s: &str) -> u64 {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    Box::leak(v.into_boxed_slice()).as_ptr() as u64
}
