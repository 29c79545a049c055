//! Placing a validated module object in memory: what FreeBSD's amd64
//! `link_elf_obj` does between reading the file and running its SYSINITs.
//!
//! Sections are grouped by protection (text, read-only data, read-write data),
//! each group page-aligned, in one `MAP_32BIT` mapping so the kernel code
//! model's 32-bit relocations reach; undefined symbols are bound to the fake
//! kernel's trampolines and data objects (or to linker-set bounds for
//! `__start_`/`__stop_`); RELA entries are applied; text becomes read+exec and
//! read-only data read-only. Dropping the image unmaps it. Not probe context.

use std::collections::HashMap;

use crate::elf::{
    self, reloc, LoadError, ModuleObject, Section, SHF_EXECINSTR, SHF_WRITE, SHN_ABS, SHN_UNDEF,
};
use crate::lowmem::{align_up, LowRegion, PAGE_SIZE};

/// Where the loader finds the kernel's symbols (functions resolve to
/// trampolines, data to the object itself), all below 2 GiB.
pub trait KernelSymbols {
    fn lookup(&self, name: &str) -> Option<u64>;
}

/// A defined symbol of the loaded module, at its final address.
#[derive(Clone, Debug)]
pub struct ModuleSymbol {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    pub sym_type: u8,
    pub global: bool,
}

/// The protection class of a loaded section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Text,
    ReadOnly,
    ReadWrite,
}

fn class_of(s: &Section) -> Class {
    if s.flags & SHF_EXECINSTR != 0 {
        Class::Text
    } else if s.flags & SHF_WRITE != 0 {
        Class::ReadWrite
    } else {
        Class::ReadOnly
    }
}

/// A module linked into low memory, ready for its SYSINITs.
#[derive(Debug)]
pub struct LinkedImage {
    region: LowRegion,
    object: ModuleObject,
    section_addr: Vec<Option<u64>>,
    sets: HashMap<String, (u64, u64)>,
    symbols: Vec<ModuleSymbol>,
    text_range: (u64, u64),
    /// Import name → the address it was bound to.
    pub bindings: Vec<(String, u64)>,
}

impl LinkedImage {
    /// Lay out, bind and relocate `object`.
    pub fn link(
        object: ModuleObject,
        kernel: &dyn KernelSymbols,
    ) -> Result<LinkedImage, LoadError> {
        // 1. Layout: text, then read-only, then read-write; each class
        //    starts on a page so it can get its own protection.
        let mut offsets: Vec<Option<usize>> = vec![None; object.sections.len()];
        let mut cursor = 0usize;
        let mut class_ranges = Vec::new();
        for class in [Class::Text, Class::ReadOnly, Class::ReadWrite] {
            cursor = align_up(cursor, PAGE_SIZE);
            let start = cursor;
            for s in object
                .sections
                .iter()
                .filter(|s| s.is_loaded() && class_of(s) == class)
            {
                let align = (s.align.max(1) as usize).next_power_of_two();
                cursor = align_up(cursor, align);
                offsets[s.index] = Some(cursor);
                cursor += s.size as usize;
            }
            class_ranges.push((class, start, align_up(cursor, PAGE_SIZE) - start));
            cursor = align_up(cursor, PAGE_SIZE);
        }
        let region = LowRegion::new(cursor.max(PAGE_SIZE))
            .map_err(|e| LoadError::Host(format!("mmap: {e}")))?;
        let base = region.addr();
        let section_addr: Vec<Option<u64>> =
            offsets.iter().map(|o| o.map(|o| base + o as u64)).collect();

        // 2. Copy section contents (NOBITS stays zero).
        for s in object.sections.iter().filter(|s| s.is_loaded()) {
            let data = object.section_data(s)?;
            if let Some(off) = offsets[s.index] {
                // SAFETY: `off + data.len()` lies within the region by construction
                // of the layout above (size of each loaded section was reserved).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        data.as_ptr(),
                        region.as_ptr().add(off),
                        data.len(),
                    );
                }
            }
        }

        // 3. Linker sets, found by section name.
        let mut sets = HashMap::new();
        for s in object
            .sections
            .iter()
            .filter(|s| s.is_loaded() && s.name.starts_with("set_"))
        {
            if let Some(addr) = section_addr[s.index] {
                sets.insert(s.name.clone(), (addr, addr + s.size));
            }
        }
        let section_bounds = |name: &str| -> Option<u64> {
            if let Some(sec) = name.strip_prefix("__start_") {
                let s = object
                    .sections
                    .iter()
                    .find(|s| s.is_loaded() && s.name == sec)?;
                return section_addr[s.index];
            }
            let sec = name.strip_prefix("__stop_")?;
            let s = object
                .sections
                .iter()
                .find(|s| s.is_loaded() && s.name == sec)?;
            section_addr[s.index].map(|a| a + s.size)
        };

        // 4. Symbol values. Every global undefined symbol must be provided;
        //    an undefined weak one the kernel lacks becomes 0 (as in FreeBSD).
        let mut values: Vec<Option<u64>> = Vec::with_capacity(object.symbols.len());
        let mut bindings = Vec::new();
        let mut symbols = Vec::new();
        for (i, sym) in object.symbols.iter().enumerate() {
            let value = if i == 0 {
                Some(0)
            } else if sym.shndx == SHN_UNDEF {
                if let Some(bound) = section_bounds(&sym.name) {
                    Some(bound)
                } else if let Some(addr) = kernel.lookup(&sym.name) {
                    bindings.push((sym.name.clone(), addr));
                    Some(addr)
                } else if sym.bind == elf::STB_WEAK {
                    Some(0)
                } else {
                    return Err(LoadError::UndefinedSymbol {
                        name: sym.name.clone(),
                    });
                }
            } else if sym.shndx == SHN_ABS {
                Some(sym.value)
            } else {
                section_addr
                    .get(sym.shndx as usize)
                    .copied()
                    .flatten()
                    .map(|a| a + sym.value)
            };
            if sym.shndx != SHN_UNDEF
                && i != 0
                && !sym.name.is_empty()
                && sym.sym_type != elf::STT_SECTION
            {
                if let Some(addr) = value {
                    symbols.push(ModuleSymbol {
                        name: sym.name.clone(),
                        addr,
                        size: sym.size,
                        sym_type: sym.sym_type,
                        global: sym.bind != elf::STB_LOCAL,
                    });
                }
            }
            values.push(value);
        }
        bindings.sort();
        bindings.dedup();

        // 5. Relocations, per target section (by index).
        for rs in &object.relocs {
            let target = &object.sections[rs.target];
            let Some(target_addr) = section_addr[rs.target] else {
                continue;
            };
            for r in &rs.entries {
                let sym = &object.symbols[r.sym as usize];
                let s_val = values[r.sym as usize].ok_or_else(|| {
                    LoadError::Malformed(format!(
                        "{}: relocation against symbol #{} `{}` (section index {}) in a section that is not loaded",
                        rs.name, r.sym, sym.name, sym.shndx
                    ))
                })?;
                let place = target_addr + r.offset;
                let a = r.addend;
                let overflow = || LoadError::RelocationOverflow {
                    r_type: r.r_type,
                    section: target.name.clone(),
                    offset: r.offset,
                    symbol: sym.name.clone(),
                };
                match r.r_type {
                    reloc::NONE => {}
                    reloc::R64 => write_u64(place, s_val.wrapping_add(a as u64)),
                    reloc::PC32 | reloc::PLT32 => {
                        let v = (s_val as i128) + (a as i128) - (place as i128);
                        let v = i32::try_from(v).map_err(|_| overflow())?;
                        write_u32(place, v as u32);
                    }
                    reloc::R32S => {
                        let v = (s_val as i128) + (a as i128);
                        let v = i32::try_from(v).map_err(|_| overflow())?;
                        write_u32(place, v as u32);
                    }
                    reloc::GLOB_DAT | reloc::JMP_SLOT => write_u64(place, s_val),
                    reloc::RELATIVE => write_u64(place, base.wrapping_add(a as u64)),
                    reloc::IRELATIVE => {
                        let resolver = base.wrapping_add(a as u64);
                        if !region.contains(resolver, 1) {
                            return Err(overflow());
                        }
                        // SAFETY: the resolver lies inside the module's text; an
                        // IFUNC resolver takes no arguments and returns an address.
                        let f: extern "C" fn() -> u64 = unsafe { std::mem::transmute(resolver) };
                        write_u64(place, f());
                    }
                    other => {
                        return Err(LoadError::UnacceptedRelocation {
                            r_type: other,
                            section: rs.name.clone(),
                            offset: r.offset,
                            symbol: sym.name.clone(),
                        })
                    }
                }
            }
        }

        // 6. Protections: text read+exec, rodata read-only, data read-write.
        let mut text_range = (base, base);
        for (class, start, len) in class_ranges {
            let prot = match class {
                Class::Text => libc::PROT_READ | libc::PROT_EXEC,
                Class::ReadOnly => libc::PROT_READ,
                Class::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
            };
            if class == Class::Text {
                text_range = (base + start as u64, base + (start + len) as u64);
            }
            region
                .protect(start, len, prot)
                .map_err(|e| LoadError::Host(format!("mprotect: {e}")))?;
        }

        Ok(LinkedImage {
            region,
            object,
            section_addr,
            sets,
            symbols,
            text_range,
            bindings,
        })
    }

    /// Base address of the image.
    pub fn base(&self) -> u64 {
        self.region.addr()
    }

    /// Size of the image in bytes.
    pub fn size(&self) -> usize {
        self.region.len()
    }

    /// `[start, end)` of the text pages.
    pub fn text_range(&self) -> (u64, u64) {
        self.text_range
    }

    /// The linker set `set_<name>` as `(start, stop)` addresses of its pointer array.
    pub fn linker_set(&self, name: &str) -> Option<(u64, u64)> {
        self.sets.get(&format!("set_{name}")).copied()
    }

    /// The pointers held in linker set `name` (empty if the module has none).
    pub fn linker_set_entries(&self, name: &str) -> Vec<u64> {
        let Some((start, stop)) = self.linker_set(name) else {
            return Vec::new();
        };
        (start..stop).step_by(8).map(read_u64).collect()
    }

    /// Address of a loaded section by name.
    pub fn section_addr(&self, name: &str) -> Option<u64> {
        let s = self.object.sections.iter().find(|s| s.name == name)?;
        self.section_addr[s.index]
    }

    /// The parsed object this image came from.
    pub fn object(&self) -> &ModuleObject {
        &self.object
    }

    /// Defined symbols of the module (like `link_elf_obj`, locals included).
    pub fn symbols(&self) -> &[ModuleSymbol] {
        &self.symbols
    }

    /// Look a module symbol up by name, preferring a global definition.
    pub fn lookup(&self, name: &str) -> Option<&ModuleSymbol> {
        let mut found = None;
        for s in self.symbols.iter().filter(|s| s.name == name) {
            if s.global {
                return Some(s);
            }
            found.get_or_insert(s);
        }
        found
    }

    /// The symbol containing `addr`, if any.
    pub fn symbol_at(&self, addr: u64) -> Option<&ModuleSymbol> {
        self.symbols
            .iter()
            .find(|s| addr >= s.addr && addr < s.addr + s.size.max(1))
    }

    /// Whether `addr` is inside the image.
    pub fn contains(&self, addr: u64) -> bool {
        self.region.contains(addr, 1)
    }
}

fn write_u64(addr: u64, value: u64) {
    // SAFETY: callers pass an address inside a freshly mapped, still writable
    // module image (relocation offsets were range-checked at parse time).
    unsafe { std::ptr::write_unaligned(addr as *mut u64, value) }
}

fn write_u32(addr: u64, value: u32) {
    // SAFETY: as for `write_u64`.
    unsafe { std::ptr::write_unaligned(addr as *mut u32, value) }
}

/// Read a u64 from module memory.
pub fn read_u64(addr: u64) -> u64 {
    // SAFETY: callers pass addresses inside a loaded image or a kernel object.
    unsafe { std::ptr::read_unaligned(addr as *const u64) }
}
