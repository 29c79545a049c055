//! The kernel linker's file list as DTrace providers see it:
//! `linker_file_foreach`, `linker_file_lookup_set`,
//! `linker_file_function_listall`, `linker_file_lookup_symbol`,
//! `linker_search_symbol_name`, `linker_ddb_search_symbol_name`,
//! `linker_ddb_lookup` and `linker_ddb_symbol_values`.
//!
//! File 1 is the fake kernel image ("kernel"); every loaded module follows
//! in load order and is on the list while its SYSINITs run, as in FreeBSD.
//! Each file has a fake `struct linker_file` below 2 GiB with `refs`,
//! `userrefs`, `flags`, `filename`, `pathname`, `id`, `address` and `size`
//! at their FreeBSD 14/15 amd64 offsets (8, 12, 16, 40, 48, 56, 64, 72).
//! Symbol lookup matches local symbols too, like `link_elf_obj`.
//! `linker_file_lookup_set` answers ESRCH for a set the file lacks.
//! Not probe context (the search functions take a host lock).

use std::sync::Mutex;

use crate::lowmem::LowRegion;

const ESRCH: i32 = 3;
const ENOENT: i32 = 2;
pub const LINKER_FILE_SIZE: usize = 512;

/// A symbol as the linker reports it.
#[derive(Clone, Debug)]
pub struct FileSymbol {
    pub name: String,
    pub name_c: u64,
    pub addr: u64,
    pub size: u64,
    pub is_function: bool,
}

/// One linker file.
pub struct LinkerFile {
    pub id: i32,
    pub name: String,
    pub lf: LowRegion,
    pub address: u64,
    pub size: u64,
    pub symbols: Vec<FileSymbol>,
    pub sets: Vec<(String, u64, u64)>,
}

static FILES: Mutex<Vec<LinkerFile>> = Mutex::new(Vec::new());
static NEXT_ID: Mutex<i32> = Mutex::new(1);

fn write_struct(lf: u64, id: i32, name_c: u64, address: u64, size: u64) {
    // SAFETY: fields of our own fake struct linker_file.
    unsafe {
        std::ptr::write((lf + 8) as *mut i32, 1);
        std::ptr::write((lf + 12) as *mut i32, 1);
        std::ptr::write((lf + 16) as *mut i32, 1);
        std::ptr::write((lf + 40) as *mut u64, name_c);
        std::ptr::write((lf + 48) as *mut u64, name_c);
        std::ptr::write((lf + 56) as *mut i32, id);
        std::ptr::write((lf + 64) as *mut u64, address);
        std::ptr::write((lf + 72) as *mut u64, size);
    }
}

fn ensure_kernel_file() {
    let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    if !files.is_empty() {
        return;
    }
    let img = super::image();
    let (lo, hi, _) = img.bounds();
    let symbols = img
        .all_symbols()
        .into_iter()
        .map(|s| FileSymbol {
            name: s.name.to_string(),
            name_c: super::leak_c_string(s.name),
            addr: s.addr,
            size: s.size,
            is_function: s.kind == super::SymbolKind::Function,
        })
        .collect();
    let lf = LowRegion::new(LINKER_FILE_SIZE).expect("mmap struct linker_file");
    let name_c = super::leak_c_string("kernel");
    write_struct(lf.addr(), 1, name_c, lo, hi - lo);
    *NEXT_ID.lock().unwrap_or_else(|e| e.into_inner()) = 2;
    super::sdt::set_linker_file(lf.addr());
    let sets = super::sdt::kernel_sets();
    files.push(LinkerFile {
        id: 1,
        name: "kernel".into(),
        lf,
        address: lo,
        size: hi - lo,
        symbols,
        sets,
    });
}

/// Add a loaded module's file; returns the address of its `struct linker_file`.
pub fn add_file(
    name: &str,
    address: u64,
    size: u64,
    symbols: Vec<FileSymbol>,
    sets: Vec<(String, u64, u64)>,
) -> u64 {
    ensure_kernel_file();
    let id = {
        let mut n = NEXT_ID.lock().unwrap_or_else(|e| e.into_inner());
        let id = *n;
        *n += 1;
        id
    };
    let lf = LowRegion::new(LINKER_FILE_SIZE).expect("mmap struct linker_file");
    write_struct(lf.addr(), id, super::leak_c_string(name), address, size);
    let addr = lf.addr();
    FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(LinkerFile {
            id,
            name: name.to_string(),
            lf,
            address,
            size,
            symbols,
            sets,
        });
    addr
}

/// Remove a module's file from the list.
pub fn remove_file(lf: u64) {
    FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|f| f.lf.addr() != lf);
}

/// The `struct linker_file` address of the fake kernel.
pub fn kernel_file() -> u64 {
    ensure_kernel_file();
    FILES.lock().unwrap_or_else(|e| e.into_inner())[0].lf.addr()
}

fn snapshot() -> Vec<u64> {
    ensure_kernel_file();
    FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|f| f.lf.addr())
        .collect()
}

fn with_file<R>(lf: u64, f: impl FnOnce(&LinkerFile) -> R) -> Option<R> {
    let files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    files.iter().find(|x| x.lf.addr() == lf).map(f)
}

extern "C" fn kpi_linker_file_foreach(predicate: u64, arg: u64) -> i32 {
    // SAFETY: `predicate` is a `linker_predicate_t`.
    let f: extern "C" fn(u64, u64) -> i32 = unsafe { std::mem::transmute(predicate) };
    for lf in snapshot() {
        let r = f(lf, arg);
        if r != 0 {
            return r;
        }
    }
    0
}

extern "C" fn kpi_linker_file_lookup_set(
    lf: u64,
    name: u64,
    start: *mut u64,
    stop: *mut u64,
    count: *mut i32,
) -> i32 {
    // SAFETY: set names are C strings.
    let name = unsafe { super::c_str(name, 128) };
    let wanted = format!("set_{name}");
    let found = with_file(lf, |f| {
        f.sets
            .iter()
            .find(|(n, _, _)| *n == wanted)
            .map(|(_, a, b)| (*a, *b))
    })
    .flatten();
    let Some((a, b)) = found else { return ESRCH };
    // SAFETY: out-parameters supplied by the caller (any may be NULL).
    unsafe {
        if !start.is_null() {
            *start = a;
        }
        if !stop.is_null() {
            *stop = b;
        }
        if !count.is_null() {
            *count = ((b - a) / 8) as i32;
        }
    }
    0
}

extern "C" fn kpi_linker_file_function_listall(lf: u64, callback: u64, arg: u64) -> i32 {
    let syms: Vec<FileSymbol> = with_file(lf, |f| {
        f.symbols
            .iter()
            .filter(|s| s.is_function)
            .cloned()
            .collect()
    })
    .unwrap_or_default();
    // SAFETY: `callback` is a `linker_function_nameval_callback_t`.
    let cb: extern "C" fn(u64, i32, *mut [u64; 3], u64) -> i32 =
        unsafe { std::mem::transmute(callback) };
    for (i, s) in syms.iter().enumerate() {
        let mut symval = [s.name_c, s.addr, s.size];
        let r = cb(lf, i as i32, &mut symval, arg);
        if r != 0 {
            return r;
        }
    }
    0
}

extern "C" fn kpi_linker_file_lookup_symbol(lf: u64, name: u64, _deps: i32) -> u64 {
    // SAFETY: symbol names are C strings.
    let name = unsafe { super::c_str(name, 256) };
    with_file(lf, |f| {
        f.symbols.iter().find(|s| s.name == name).map(|s| s.addr)
    })
    .flatten()
    .unwrap_or(0)
}

/// Handles `linker_ddb_lookup` gave out: name → leaked `linker_symval_t`
/// image (name, value, size), stable for the life of the process like a
/// pointer into a file's symbol table.
static DDB_HANDLES: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

/// `linker_ddb_lookup(symstr, &sym)`: the first defined symbol of that name
/// in any loaded file (kernel first); 0, or ENOENT. FreeBSD takes no lock
/// here (it is meant for the debugger); the harness's list lock stands in.
extern "C" fn kpi_linker_ddb_lookup(name: u64, sym: *mut u64) -> i32 {
    ensure_kernel_file();
    // SAFETY: symbol names are C strings.
    let name = unsafe { super::c_str(name, 256) };
    let found = {
        let files = FILES.lock().unwrap_or_else(|e| e.into_inner());
        files
            .iter()
            .find_map(|f| f.symbols.iter().find(|s| s.name == name).cloned())
    };
    let Some(s) = found else { return ENOENT };
    let mut handles = DDB_HANDLES.lock().unwrap_or_else(|e| e.into_inner());
    let handle = match handles.iter().find(|(n, _)| *n == name) {
        Some((_, h)) => *h,
        None => {
            let h = Box::leak(Box::new([s.name_c, s.addr, s.size])).as_ptr() as u64;
            handles.push((name, h));
            h
        }
    };
    // SAFETY: out-parameter supplied by the caller.
    unsafe { *sym = handle };
    0
}

/// `linker_ddb_symbol_values(sym, &symval)`: name, value and size of a
/// symbol from `linker_ddb_lookup`; 0, or ENOENT for an unknown handle.
extern "C" fn kpi_linker_ddb_symbol_values(sym: u64, symval: *mut [u64; 3]) -> i32 {
    let known = DDB_HANDLES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|(_, h)| *h == sym);
    if !known {
        kpanic_bad_handle(sym);
    }
    // SAFETY: `sym` is one of our leaked [name, value, size] records; the
    // caller supplies a linker_symval_t.
    unsafe { *symval = *(sym as *const [u64; 3]) };
    0
}

fn kpanic_bad_handle(sym: u64) -> ! {
    super::kpanic(&format!(
        "linker_ddb_symbol_values: {sym:#x} is not a handle from linker_ddb_lookup"
    ))
}

/// Find the symbol containing (or nearest below) `value` over all files.
pub fn search_symbol(value: u64) -> Option<(String, u64)> {
    ensure_kernel_file();
    let files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    let mut best: Option<(String, u64)> = None;
    for f in files
        .iter()
        .filter(|f| value >= f.address && value < f.address + f.size)
    {
        for s in f.symbols.iter().filter(|s| s.addr <= value) {
            let off = value - s.addr;
            if best.as_ref().is_none_or(|(_, o)| off < *o) {
                best = Some((s.name.clone(), off));
            }
        }
    }
    best
}

extern "C" fn kpi_linker_search_symbol_name(
    value: u64,
    buf: *mut u8,
    buflen: u32,
    offset: *mut i64,
) -> i32 {
    let Some((name, off)) = search_symbol(value) else {
        return ENOENT;
    };
    if buflen == 0 {
        return ENOENT;
    }
    let n = name.len().min(buflen as usize - 1);
    // SAFETY: the caller provides `buflen` bytes at `buf` and an offset slot.
    unsafe {
        std::ptr::copy_nonoverlapping(name.as_ptr(), buf, n);
        *buf.add(n) = 0;
        if !offset.is_null() {
            *offset = off as i64;
        }
    }
    0
}

/// Names of the loaded files, in list order.
pub fn file_names() -> Vec<String> {
    ensure_kernel_file();
    FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|f| f.name.clone())
        .collect()
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        (
            "linker_file_foreach",
            kpi_linker_file_foreach as *const () as usize,
        ),
        (
            "linker_file_lookup_set",
            kpi_linker_file_lookup_set as *const () as usize,
        ),
        (
            "linker_file_function_listall",
            kpi_linker_file_function_listall as *const () as usize,
        ),
        (
            "linker_file_lookup_symbol",
            kpi_linker_file_lookup_symbol as *const () as usize,
        ),
        (
            "linker_search_symbol_name",
            kpi_linker_search_symbol_name as *const () as usize,
        ),
        (
            "linker_ddb_search_symbol_name",
            kpi_linker_search_symbol_name as *const () as usize,
        ),
        (
            "linker_ddb_lookup",
            kpi_linker_ddb_lookup as *const () as usize,
        ),
        (
            "linker_ddb_symbol_values",
            kpi_linker_ddb_symbol_values as *const () as usize,
        ),
    ]
}
