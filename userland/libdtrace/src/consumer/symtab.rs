//! Symbol tables of ELF objects and address-to-symbol lookup in a mapped
//! object, for stack symbolization.
//!
//! * [`ObjectSymbols`] — the function symbols of one ELF file (`.symtab`,
//!   or `.dynsym` when stripped), names demangled (Rust), with the file's
//!   `PT_LOAD` segments so a mapping's load bias can be computed.
//! * [`Mapping`] — one file-backed mapping of a process (start, end, file
//!   offset, path), as `/proc/<pid>/maps` or FreeBSD's `kern.proc.vmmap`
//!   reports it; [`parse_proc_maps`] reads the Linux text form.
//! * [`load_bias`] — where an object's link-time addresses ended up.
//!
//! Not probe context.

use std::sync::Arc;

use object::{Object, ObjectKind, ObjectSegment, ObjectSymbol, SymbolKind};

/// One function symbol: `[start, start + size)` in link-time addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub start: u64,
    pub size: u64,
    pub name: String,
}

/// A loadable segment: link-time address and file offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
}

/// The symbols of one ELF object.
#[derive(Clone, Debug, Default)]
pub struct ObjectSymbols {
    /// Sorted by start address.
    symbols: Vec<Symbol>,
    segments: Vec<Segment>,
    /// A relocatable object (FreeBSD amd64 `.ko`): symbol values are
    /// section-relative, so addresses cannot be resolved.
    relocatable: bool,
    /// A fixed-address executable (`ET_EXEC`, e.g. FreeBSD's kernel):
    /// link-time addresses are run-time addresses.
    fixed: bool,
    /// Relocatable objects only: function symbols as (section index,
    /// section-relative value, size, name) ...
    section_symbols: Vec<(usize, u64, u64, String)>,
    /// ... and the sections the kernel linker places, in section-table
    /// order: (index, size, alignment).
    placed_sections: Vec<(usize, u64, u64)>,
}

/// The sections FreeBSD's libdtrace lays out for a relocatable kernel
/// module, as the kernel linker places them: every `SHT_PROGBITS` or
/// `SHT_NOBITS` section of non-zero size, in section-table order.
fn placed_sections(file: &object::File<'_>) -> Vec<(usize, u64, u64)> {
    use object::elf::{SHT_NOBITS, SHT_PROGBITS};
    use object::read::elf::SectionHeader as _;
    let keep = |ty: u32, size: u64| size > 0 && (ty == SHT_PROGBITS || ty == SHT_NOBITS);
    match file {
        object::File::Elf64(elf) => {
            let e = elf.endian();
            elf.elf_section_table()
                .iter()
                .enumerate()
                .filter(|(_, sh)| keep(sh.sh_type(e), sh.sh_size(e)))
                .map(|(i, sh)| (i, sh.sh_size(e), sh.sh_addralign(e)))
                .collect()
        }
        object::File::Elf32(elf) => {
            let e = elf.endian();
            elf.elf_section_table()
                .iter()
                .enumerate()
                .filter(|(_, sh)| keep(sh.sh_type(e), u64::from(sh.sh_size(e))))
                .map(|(i, sh)| (i, u64::from(sh.sh_size(e)), u64::from(sh.sh_addralign(e))))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Rust names demangled without their hash (`core::fmt::write`); anything
/// else unchanged.
pub fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(d) => format!("{d:#}"),
        Err(_) => name.to_string(),
    }
}

impl ObjectSymbols {
    /// Parses an ELF image; `None` if it is not one.
    pub fn parse(data: &[u8]) -> Option<ObjectSymbols> {
        let file = object::File::parse(data).ok()?;
        let mut symbols = text_symbols(file.symbols());
        if symbols.is_empty() {
            symbols = text_symbols(file.dynamic_symbols());
        }
        // Sized symbols first among equals, so an alias without a size
        // never hides the real one.
        symbols.sort_by(|a, b| a.start.cmp(&b.start).then(b.size.cmp(&a.size)));
        symbols.dedup_by(|later, earlier| later.start == earlier.start);
        let segments = file
            .segments()
            .map(|s| {
                let (offset, filesz) = s.file_range();
                Segment {
                    vaddr: s.address(),
                    offset,
                    filesz,
                }
            })
            .collect();
        let relocatable = file.kind() == ObjectKind::Relocatable;
        let (section_symbols, placed_sections) = if relocatable {
            let symbols = file
                .symbols()
                .filter(|s| s.kind() == SymbolKind::Text)
                .filter_map(|s| {
                    let index = s.section_index()?.0;
                    Some((index, s.address(), s.size(), demangle(s.name().ok()?)))
                })
                .collect();
            (symbols, placed_sections(&file))
        } else {
            (Vec::new(), Vec::new())
        };
        Some(ObjectSymbols {
            symbols,
            segments,
            relocatable,
            fixed: file.kind() == ObjectKind::Executable,
            section_symbols,
            placed_sections,
        })
    }

    /// Reads and parses an ELF file.
    pub fn load(path: &str) -> Option<ObjectSymbols> {
        ObjectSymbols::parse(&std::fs::read(path).ok()?)
    }

    /// Whether link-time addresses of this object mean nothing at run time.
    pub fn is_relocatable(&self) -> bool {
        self.relocatable
    }

    /// A relocatable object (a FreeBSD amd64 `.ko`) as loaded at `base`:
    /// its sections laid out from `base` in section-table order, each
    /// aligned to its `sh_addralign` (what the kernel linker does and
    /// FreeBSD's libdtrace assumes), and its function symbols moved to
    /// their run-time addresses. Other objects come back unchanged.
    pub fn placed_at(&self, base: u64) -> ObjectSymbols {
        if !self.relocatable {
            return self.clone();
        }
        let mut at = std::collections::HashMap::new();
        let mut next = base;
        for &(index, size, align) in &self.placed_sections {
            let mask = align.max(1).wrapping_sub(1);
            next = next.wrapping_add(mask) & !mask;
            at.insert(index, next);
            next = next.wrapping_add(size);
        }
        let mut symbols: Vec<Symbol> = self
            .section_symbols
            .iter()
            .filter_map(|(index, value, size, name)| {
                Some(Symbol {
                    start: at.get(index)?.wrapping_add(*value),
                    size: *size,
                    name: name.clone(),
                })
            })
            .collect();
        symbols.sort_by(|a, b| a.start.cmp(&b.start).then(b.size.cmp(&a.size)));
        symbols.dedup_by(|later, earlier| later.start == earlier.start);
        ObjectSymbols {
            symbols,
            segments: Vec::new(),
            relocatable: false,
            fixed: true,
            section_symbols: Vec::new(),
            placed_sections: Vec::new(),
        }
    }

    /// Whether the object is linked at fixed addresses (`ET_EXEC`).
    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The symbol covering link-time address `vaddr`: one whose
    /// `[start, start + size)` holds it, or, failing that, the nearest
    /// preceding symbol that has no size.
    pub fn lookup(&self, vaddr: u64) -> Option<&Symbol> {
        if self.relocatable {
            return None;
        }
        let after = self.symbols.partition_point(|s| s.start <= vaddr);
        let candidate = self.symbols.get(after.checked_sub(1)?)?;
        let end = candidate.start.saturating_add(candidate.size);
        if vaddr < end || candidate.size == 0 {
            return Some(candidate);
        }
        // An enclosing larger symbol may start earlier (nested aliases).
        self.symbols[..after]
            .iter()
            .rev()
            .take(8)
            .find(|s| s.size > 0 && vaddr < s.start.saturating_add(s.size))
    }
}

/// One file-backed mapping of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    pub path: String,
}

/// The file-backed mappings in a Linux `/proc/<pid>/maps` text
/// (`start-end perms offset dev inode path`); anonymous and special
/// (`[heap]`, `[vdso]`) mappings are left out.
pub fn parse_proc_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let _perms = fields.next()?;
            let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
            let _dev = fields.next()?;
            let _inode = fields.next()?;
            let path: Vec<&str> = fields.collect();
            let path = path.join(" ");
            if !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset,
                path,
            })
        })
        .collect()
}

/// The load bias of an object mapped by `m` (run-time address minus
/// link-time address), from the `PT_LOAD` segment holding the mapping's
/// file offset; `None` if no segment does.
pub fn load_bias(symbols: &ObjectSymbols, m: &Mapping) -> Option<u64> {
    const PAGE: u64 = 4096;
    let seg = symbols.segments().iter().find(|s| {
        let first = s.offset & !(PAGE - 1);
        first <= m.offset && m.offset < s.offset.saturating_add(s.filesz.max(1))
    })?;
    // A byte at file offset F is at link-time address vaddr + (F - offset)
    // and at run time at start + (F - m.offset).
    Some(
        m.start
            .wrapping_sub(m.offset)
            .wrapping_add(seg.offset)
            .wrapping_sub(seg.vaddr),
    )
}

/// An object placed in an address space: its symbols and load bias.
#[derive(Clone, Debug)]
pub struct PlacedObject {
    pub path: String,
    pub symbols: Arc<ObjectSymbols>,
    pub bias: u64,
}

/// An address space: address ranges and the objects mapped there.
#[derive(Clone, Debug, Default)]
pub struct AddressSpace {
    /// (start, end, index into `objects`), sorted by start.
    ranges: Vec<(u64, u64, usize)>,
    objects: Vec<PlacedObject>,
}

/// What a lookup in an [`AddressSpace`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    pub path: &'a str,
    /// Symbol name and its run-time start address.
    pub symbol: Option<(&'a str, u64)>,
}

impl AddressSpace {
    /// Builds the address space from mappings, loading each distinct file
    /// once through `load` (a cache, or [`ObjectSymbols::load`]).
    pub fn from_mappings(
        mappings: &[Mapping],
        mut load: impl FnMut(&str) -> Option<Arc<ObjectSymbols>>,
    ) -> AddressSpace {
        let mut space = AddressSpace::default();
        for m in mappings {
            let index = match space.objects.iter().position(|o| o.path == m.path) {
                Some(i) => i,
                None => {
                    let Some(symbols) = load(&m.path) else {
                        continue;
                    };
                    let Some(bias) = load_bias(&symbols, m) else {
                        continue;
                    };
                    space.objects.push(PlacedObject {
                        path: m.path.clone(),
                        symbols,
                        bias,
                    });
                    space.objects.len() - 1
                }
            };
            space.ranges.push((m.start, m.end, index));
        }
        space.ranges.sort_by_key(|r| r.0);
        space
    }

    /// An address space of objects placed directly (kernel modules).
    pub fn from_objects(objects: Vec<(u64, u64, PlacedObject)>) -> AddressSpace {
        let mut space = AddressSpace::default();
        for (start, end, object) in objects {
            space.objects.push(object);
            space.ranges.push((start, end, space.objects.len() - 1));
        }
        space.ranges.sort_by_key(|r| r.0);
        space
    }

    /// The object and symbol at run-time address `pc`.
    pub fn lookup(&self, pc: u64) -> Option<Found<'_>> {
        let after = self.ranges.partition_point(|r| r.0 <= pc);
        let &(_, end, index) = self.ranges.get(after.checked_sub(1)?)?;
        if pc >= end {
            return None;
        }
        let object = self.objects.get(index)?;
        let symbol = object
            .symbols
            .lookup(pc.wrapping_sub(object.bias))
            .map(|s| (s.name.as_str(), s.start.wrapping_add(object.bias)));
        Some(Found {
            path: &object.path,
            symbol,
        })
    }
}

/// The named, placed function symbols of one symbol table, demangled.
fn text_symbols<'d, S: ObjectSymbol<'d>>(table: impl Iterator<Item = S>) -> Vec<Symbol> {
    table
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
        .filter_map(|s| {
            Some(Symbol {
                start: s.address(),
                size: s.size(),
                name: demangle(s.name().ok()?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(symbols: Vec<Symbol>) -> ObjectSymbols {
        ObjectSymbols {
            symbols,
            segments: vec![Segment {
                vaddr: 0x1000,
                offset: 0x1000,
                filesz: 0x3000,
            }],
            relocatable: false,
            fixed: false,
            section_symbols: Vec::new(),
            placed_sections: Vec::new(),
        }
    }

    fn sym(start: u64, size: u64, name: &str) -> Symbol {
        Symbol {
            start,
            size,
            name: name.into(),
        }
    }

    #[test]
    fn lookup_respects_symbol_sizes() {
        let t = table(vec![sym(0x1000, 0x10, "a"), sym(0x1100, 0, "b")]);
        assert_eq!(t.lookup(0x1008).map(|s| s.name.as_str()), Some("a"));
        assert_eq!(t.lookup(0x1010), None, "past the end of a sized symbol");
        assert_eq!(t.lookup(0x1200).map(|s| s.name.as_str()), Some("b"));
        assert_eq!(t.lookup(0xfff), None);
    }

    #[test]
    fn proc_maps_keep_file_mappings_only() {
        let text = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/true
55d0c0001000-55d0c0005000 r-xp 00001000 08:01 123 /usr/bin/true
7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
7f1000000000-7f1000002000 r-xp 00002000 08:01 9 /lib/with space.so
";
        let maps = parse_proc_maps(text);
        assert_eq!(maps.len(), 3);
        assert_eq!(maps[1].start, 0x55d0c0001000);
        assert_eq!(maps[1].offset, 0x1000);
        assert_eq!(maps[2].path, "/lib/with space.so");
    }

    #[test]
    fn bias_and_address_space_lookup() {
        let t = Arc::new(table(vec![sym(0x1200, 0x40, "main")]));
        let m = Mapping {
            start: 0x5555_0000_1000,
            end: 0x5555_0000_4000,
            offset: 0x1000,
            path: "/bin/prog".into(),
        };
        assert_eq!(load_bias(&t, &m), Some(0x5555_0000_0000));
        let space = AddressSpace::from_mappings(&[m], |_| Some(t.clone()));
        let found = space.lookup(0x5555_0000_1210).expect("mapped");
        assert_eq!(found.path, "/bin/prog");
        assert_eq!(found.symbol, Some(("main", 0x5555_0000_1200)));
        assert_eq!(
            space.lookup(0x5555_0000_3000).map(|f| f.symbol),
            Some(None),
            "mapped but no symbol"
        );
        assert_eq!(space.lookup(0x1234), None);
    }

    /// A relocatable object compiled here: `first` opens `.text`, `second`
    /// lives in its own later section.
    fn relocatable_object() -> Option<Vec<u8>> {
        let dir = std::env::temp_dir().join(format!("rdtrace-symtab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let src = dir.join("mod.c");
        let obj = dir.join("mod.o");
        std::fs::write(
            &src,
            "int first(int x) { return x * 3 + 1; }\n\
             __attribute__((section(\".text.second\"), aligned(64)))\n\
             int second(int x) { return x - 7; }\n",
        )
        .ok()?;
        let ok = std::process::Command::new("cc")
            .args(["-c", "-O1", "-fno-asynchronous-unwind-tables", "-o"])
            .arg(&obj)
            .arg(&src)
            .status()
            .ok()?
            .success();
        let bytes = ok.then(|| std::fs::read(&obj).ok()).flatten();
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    }

    #[test]
    fn relocatable_modules_are_laid_out_from_their_load_address() {
        let Some(bytes) = relocatable_object() else {
            eprintln!("no C compiler: relocatable layout not exercised");
            return;
        };
        let object = ObjectSymbols::parse(&bytes).expect("ELF");
        assert!(object.is_relocatable());
        // Unplaced, section-relative values mean nothing.
        assert_eq!(object.lookup(0), None);
        let base = 0xffff_ffff_8200_0000;
        let placed = object.placed_at(base);
        assert!(placed.is_fixed() && !placed.is_relocatable());
        // .text is the first section placed: `first` starts at the base.
        let first = placed.lookup(base + 2).expect("first");
        assert_eq!((first.name.as_str(), first.start), ("first", base));
        let second = placed
            .symbols
            .iter()
            .find(|s| s.name == "second")
            .expect("second");
        assert!(second.start > base, "after .text");
        assert_eq!(second.start % 64, 0, "its section's alignment");
        assert_eq!(
            placed.lookup(second.start + 1).map(|s| s.name.as_str()),
            Some("second")
        );
    }

    #[test]
    fn rust_names_are_demangled_without_hash() {
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        assert_eq!(demangle("malloc"), "malloc");
    }
}
