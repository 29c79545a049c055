//! Parsing and static validation of an amd64 FreeBSD kernel module (`ET_REL`).
//!
//! This is the "refuse what the kernel would refuse" half of the loader: it
//! reads the ELF header, section table, the one symbol table and every RELA
//! section whose target is loaded, and rejects what FreeBSD's amd64
//! `link_elf_obj` rejects (wrong type or machine, not exactly one symbol
//! table, a relocation type outside the accepted list) plus what the harness
//! treats as a build defect (a linker set split across several sections).
//! Nothing here touches memory outside the byte slice. Not probe context.

use std::fmt;

pub const ET_REL: u16 = 1;
pub const EM_X86_64: u16 = 62;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_RELA: u32 = 4;
pub const SHT_NOBITS: u32 = 8;
pub const SHT_REL: u32 = 9;
pub const SHT_INIT_ARRAY: u32 = 14;
pub const SHT_FINI_ARRAY: u32 = 15;
pub const SHT_X86_64_UNWIND: u32 = 0x7000_0001;
pub const SHF_WRITE: u64 = 0x1;
pub const SHF_ALLOC: u64 = 0x2;
pub const SHF_EXECINSTR: u64 = 0x4;
pub const SHN_UNDEF: u16 = 0;
pub const SHN_ABS: u16 = 0xfff1;
pub const SHN_COMMON: u16 = 0xfff2;
pub const STB_LOCAL: u8 = 0;
pub const STB_GLOBAL: u8 = 1;
pub const STB_WEAK: u8 = 2;
pub const STT_OBJECT: u8 = 1;
pub const STT_FUNC: u8 = 2;
pub const STT_SECTION: u8 = 3;
pub const STT_TLS: u8 = 6;

/// x86-64 relocation types `link_elf_obj` knows (FreeBSD `elf_machdep.c`).
pub mod reloc {
    pub const NONE: u32 = 0;
    pub const R64: u32 = 1;
    pub const PC32: u32 = 2;
    pub const GLOB_DAT: u32 = 6;
    pub const JMP_SLOT: u32 = 7;
    pub const RELATIVE: u32 = 8;
    pub const R32S: u32 = 11;
    pub const PLT32: u32 = 4;
    pub const IRELATIVE: u32 = 37;

    /// The types FreeBSD's amd64 kernel linker applies; anything else makes
    /// `kldload` fail with "unexpected relocation type".
    pub const ACCEPTED: [u32; 9] = [
        NONE, R64, PC32, PLT32, R32S, GLOB_DAT, JMP_SLOT, RELATIVE, IRELATIVE,
    ];

    /// Bytes a relocation of this type writes.
    pub fn width(r_type: u32) -> u64 {
        match r_type {
            NONE => 0,
            PC32 | PLT32 | R32S => 4,
            _ => 8,
        }
    }

    /// The psABI name of an x86-64 relocation type, for messages.
    pub fn name(r_type: u32) -> &'static str {
        match r_type {
            0 => "R_X86_64_NONE",
            1 => "R_X86_64_64",
            2 => "R_X86_64_PC32",
            3 => "R_X86_64_GOT32",
            4 => "R_X86_64_PLT32",
            5 => "R_X86_64_COPY",
            6 => "R_X86_64_GLOB_DAT",
            7 => "R_X86_64_JUMP_SLOT",
            8 => "R_X86_64_RELATIVE",
            9 => "R_X86_64_GOTPCREL",
            10 => "R_X86_64_32",
            11 => "R_X86_64_32S",
            12 => "R_X86_64_16",
            13 => "R_X86_64_PC16",
            14 => "R_X86_64_8",
            15 => "R_X86_64_PC8",
            16 => "R_X86_64_DTPMOD64",
            17 => "R_X86_64_DTPOFF64",
            18 => "R_X86_64_TPOFF64",
            19 => "R_X86_64_TLSGD",
            20 => "R_X86_64_TLSLD",
            21 => "R_X86_64_DTPOFF32",
            22 => "R_X86_64_GOTTPOFF",
            23 => "R_X86_64_TPOFF32",
            24 => "R_X86_64_PC64",
            25 => "R_X86_64_GOTOFF64",
            26 => "R_X86_64_GOTPC32",
            37 => "R_X86_64_IRELATIVE",
            41 => "R_X86_64_GOTPCRELX",
            42 => "R_X86_64_REX_GOTPCRELX",
            _ => "R_X86_64_<unknown>",
        }
    }
}

/// Why a module file was refused. Every variant names the offending item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not an ELF file, or truncated/corrupt structure.
    Malformed(String),
    /// `e_type` is not `ET_REL` (FreeBSD's amd64 `link_elf_obj` answers ENOSYS).
    NotRelocatable { e_type: u16 },
    /// `e_machine` is not x86-64.
    WrongMachine { e_machine: u16 },
    /// Not exactly one `SHT_SYMTAB`.
    SymbolTableCount { count: usize },
    /// No allocatable PROGBITS/NOBITS section at all.
    NothingToLoad,
    /// A relocation the kernel linker would not apply.
    UnacceptedRelocation {
        r_type: u32,
        section: String,
        offset: u64,
        symbol: String,
    },
    /// A `set_*` linker set emitted as more than one section.
    SplitLinkerSet { name: String, count: usize },
    /// A global undefined symbol neither the module nor the harness kernel defines.
    UndefinedSymbol { name: String },
    /// A symbol type the kernel linker cannot place (TLS, COMMON) or a
    /// section the harness does not support (e.g. `set_pcpu`).
    Unsupported(String),
    /// A relocated value does not fit its field (module out of reach).
    RelocationOverflow {
        r_type: u32,
        section: String,
        offset: u64,
        symbol: String,
    },
    /// Module metadata problems (dependency not satisfiable, duplicate module).
    Metadata { errno: i32, message: String },
    /// A host system call failed.
    Host(String),
}

impl LoadError {
    /// The errno `kldload(2)` would return for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            LoadError::NotRelocatable { .. } => 78, // ENOSYS
            LoadError::UndefinedSymbol { .. } => 2, // ENOENT
            LoadError::Metadata { errno, .. } => *errno,
            LoadError::Host(_) => 12, // ENOMEM
            _ => 8,                   // ENOEXEC
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Malformed(why) => write!(f, "malformed ELF object: {why}"),
            LoadError::NotRelocatable { e_type } => {
                write!(f, "ELF type {e_type} is not ET_REL (1): link_elf_obj only loads relocatable objects")
            }
            LoadError::WrongMachine { e_machine } => {
                write!(f, "ELF machine {e_machine} is not EM_X86_64 (62)")
            }
            LoadError::SymbolTableCount { count } => {
                write!(f, "object has {count} symbol tables (SHT_SYMTAB); exactly one is required")
            }
            LoadError::NothingToLoad => write!(f, "object has no allocatable PROGBITS/NOBITS section"),
            LoadError::UnacceptedRelocation { r_type, section, offset, symbol } => write!(
                f,
                "kldload: unexpected relocation type {} ({r_type}) in {section} at offset {offset:#x} against symbol `{symbol}`",
                reloc::name(*r_type)
            ),
            LoadError::SplitLinkerSet { name, count } => {
                write!(f, "linker set `{name}` is split into {count} sections; it must be one section")
            }
            LoadError::UndefinedSymbol { name } => {
                write!(f, "link_elf_obj: symbol {name} undefined (the harness kernel does not provide it)")
            }
            LoadError::Unsupported(what) => write!(f, "unsupported: {what}"),
            LoadError::RelocationOverflow { r_type, section, offset, symbol } => write!(
                f,
                "relocation {} in {section} at offset {offset:#x} against `{symbol}` overflows its field",
                reloc::name(*r_type)
            ),
            LoadError::Metadata { errno, message } => write!(f, "{message} (errno {errno})"),
            LoadError::Host(why) => write!(f, "host failure: {why}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// One section header, with its name resolved.
#[derive(Clone, Debug)]
pub struct Section {
    pub index: usize,
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub align: u64,
    pub entsize: u64,
}

impl Section {
    /// Whether `link_elf_obj` places this section in the module image
    /// (zero-sized ones too: they get an address, and code may take it —
    /// e.g. a zero-sized static).
    pub fn is_loaded(&self) -> bool {
        self.flags & SHF_ALLOC != 0
            && matches!(
                self.sh_type,
                SHT_PROGBITS | SHT_NOBITS | SHT_X86_64_UNWIND | SHT_INIT_ARRAY | SHT_FINI_ARRAY
            )
    }
}

/// One symbol table entry.
#[derive(Clone, Debug)]
pub struct Symbol {
    pub name: String,
    pub value: u64,
    pub size: u64,
    pub shndx: u16,
    pub bind: u8,
    pub sym_type: u8,
}

impl Symbol {
    pub fn is_undefined(&self) -> bool {
        self.shndx == SHN_UNDEF
    }
}

/// One RELA entry.
#[derive(Clone, Copy, Debug)]
pub struct Rela {
    pub offset: u64,
    pub sym: u32,
    pub r_type: u32,
    pub addend: i64,
}

/// The relocations that apply to one loaded section (found by index, never by
/// name: GNU ld and lld name RELA sections differently).
#[derive(Clone, Debug)]
pub struct RelocSection {
    pub name: String,
    pub target: usize,
    pub entries: Vec<Rela>,
}

/// A validated amd64 kernel module object.
#[derive(Clone, Debug)]
pub struct ModuleObject {
    pub bytes: Vec<u8>,
    pub sections: Vec<Section>,
    pub symbols: Vec<Symbol>,
    pub relocs: Vec<RelocSection>,
}

fn read_u16(b: &[u8], off: usize) -> Result<u16, LoadError> {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| LoadError::Malformed(format!("truncated at {off:#x}")))
}

fn read_u32(b: &[u8], off: usize) -> Result<u32, LoadError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
        .ok_or_else(|| LoadError::Malformed(format!("truncated at {off:#x}")))
}

fn read_u64(b: &[u8], off: usize) -> Result<u64, LoadError> {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| LoadError::Malformed(format!("truncated at {off:#x}")))
}

fn c_string(b: &[u8], off: usize) -> Result<String, LoadError> {
    let tail = b
        .get(off..)
        .ok_or_else(|| LoadError::Malformed(format!("string offset {off:#x} out of range")))?;
    let end = tail
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| LoadError::Malformed(format!("unterminated string at {off:#x}")))?;
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

fn section_bytes<'a>(bytes: &'a [u8], s: &Section) -> Result<&'a [u8], LoadError> {
    let start = usize::try_from(s.offset).map_err(|_| LoadError::Malformed("offset".into()))?;
    let len = usize::try_from(s.size).map_err(|_| LoadError::Malformed("size".into()))?;
    bytes
        .get(start..start.saturating_add(len))
        .ok_or_else(|| LoadError::Malformed(format!("section {} extends past end of file", s.name)))
}

impl ModuleObject {
    /// Parse and validate `bytes` as an amd64 FreeBSD module.
    pub fn parse(bytes: Vec<u8>) -> Result<ModuleObject, LoadError> {
        let b = &bytes[..];
        if b.get(0..4) != Some(&[0x7f, b'E', b'L', b'F'][..]) {
            return Err(LoadError::Malformed("no ELF magic".into()));
        }
        if b.get(4) != Some(&2) || b.get(5) != Some(&1) || b.get(6) != Some(&1) {
            return Err(LoadError::Malformed(
                "not ELF64 little-endian version 1".into(),
            ));
        }
        let e_type = read_u16(b, 16)?;
        let e_machine = read_u16(b, 18)?;
        if e_type != ET_REL {
            return Err(LoadError::NotRelocatable { e_type });
        }
        if e_machine != EM_X86_64 {
            return Err(LoadError::WrongMachine { e_machine });
        }
        let shoff = read_u64(b, 40)? as usize;
        let shentsize = read_u16(b, 58)? as usize;
        let shnum = read_u16(b, 60)? as usize;
        let shstrndx = read_u16(b, 62)? as usize;
        if shentsize != 64 {
            return Err(LoadError::Malformed(format!(
                "e_shentsize {shentsize} is not 64"
            )));
        }
        let mut raw = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let at = shoff
                .checked_add(i * 64)
                .ok_or_else(|| LoadError::Malformed("section table offset".into()))?;
            raw.push((
                read_u32(b, at)?,
                Section {
                    index: i,
                    name: String::new(),
                    sh_type: read_u32(b, at + 4)?,
                    flags: read_u64(b, at + 8)?,
                    offset: read_u64(b, at + 24)?,
                    size: read_u64(b, at + 32)?,
                    link: read_u32(b, at + 40)?,
                    info: read_u32(b, at + 44)?,
                    align: read_u64(b, at + 48)?,
                    entsize: read_u64(b, at + 56)?,
                },
            ));
        }
        let shstr = raw
            .get(shstrndx)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| LoadError::Malformed("e_shstrndx out of range".into()))?;
        let shstr_bytes = section_bytes(b, &shstr)?;
        let mut sections = Vec::with_capacity(shnum);
        for (name_off, mut s) in raw {
            s.name = c_string(shstr_bytes, name_off as usize)?;
            sections.push(s);
        }

        let symtabs: Vec<&Section> = sections
            .iter()
            .filter(|s| s.sh_type == SHT_SYMTAB)
            .collect();
        if symtabs.len() != 1 {
            return Err(LoadError::SymbolTableCount {
                count: symtabs.len(),
            });
        }
        let symtab = symtabs[0].clone();
        if !sections
            .iter()
            .any(|s| s.is_loaded() && matches!(s.sh_type, SHT_PROGBITS | SHT_NOBITS))
        {
            return Err(LoadError::NothingToLoad);
        }
        let strtab = sections
            .get(symtab.link as usize)
            .filter(|s| s.sh_type == SHT_STRTAB)
            .ok_or_else(|| LoadError::Malformed("symbol table has no string table".into()))?;
        let strtab_bytes = section_bytes(b, strtab)?;
        let symtab_bytes = section_bytes(b, &symtab)?;
        let mut symbols = Vec::with_capacity(symtab_bytes.len() / 24);
        for chunk in symtab_bytes.chunks_exact(24) {
            let name_off = read_u32(chunk, 0)? as usize;
            let info = chunk[4];
            symbols.push(Symbol {
                name: c_string(strtab_bytes, name_off)?,
                value: read_u64(chunk, 8)?,
                size: read_u64(chunk, 16)?,
                shndx: read_u16(chunk, 6)?,
                bind: info >> 4,
                sym_type: info & 0xf,
            });
        }

        let mut relocs = Vec::new();
        for s in &sections {
            if s.sh_type == SHT_REL {
                let target = sections.get(s.info as usize);
                if target.is_some_and(|t| t.is_loaded()) {
                    return Err(LoadError::Unsupported(format!(
                        "{}: SHT_REL relocations (amd64 modules use RELA)",
                        s.name
                    )));
                }
                continue;
            }
            if s.sh_type != SHT_RELA {
                continue;
            }
            let Some(target) = sections.get(s.info as usize) else {
                return Err(LoadError::Malformed(format!(
                    "{}: sh_info out of range",
                    s.name
                )));
            };
            // Like the kernel, relocations against sections that are not
            // loaded (debug info) are ignored entirely.
            if !target.is_loaded() {
                continue;
            }
            let data = section_bytes(b, s)?;
            let mut entries = Vec::with_capacity(data.len() / 24);
            for chunk in data.chunks_exact(24) {
                let info = read_u64(chunk, 8)?;
                let rela = Rela {
                    offset: read_u64(chunk, 0)?,
                    sym: (info >> 32) as u32,
                    r_type: info as u32,
                    addend: read_u64(chunk, 16)? as i64,
                };
                if !reloc::ACCEPTED.contains(&rela.r_type) {
                    let symbol = symbols
                        .get(rela.sym as usize)
                        .map(|s| s.name.clone())
                        .unwrap_or_else(|| format!("#{}", rela.sym));
                    return Err(LoadError::UnacceptedRelocation {
                        r_type: rela.r_type,
                        section: s.name.clone(),
                        offset: rela.offset,
                        symbol,
                    });
                }
                if rela.sym as usize >= symbols.len() {
                    return Err(LoadError::Malformed(format!(
                        "{}: relocation symbol index {} out of range",
                        s.name, rela.sym
                    )));
                }
                if rela
                    .offset
                    .checked_add(reloc::width(rela.r_type))
                    .is_none_or(|end| end > target.size)
                {
                    return Err(LoadError::Malformed(format!(
                        "{}: relocation offset {:#x} outside {}",
                        s.name, rela.offset, target.name
                    )));
                }
                entries.push(rela);
            }
            relocs.push(RelocSection {
                name: s.name.clone(),
                target: target.index,
                entries,
            });
        }

        // Sizes and alignments the loader can lay out (a corrupt header
        // must be an error, not an arithmetic overflow or a huge mapping).
        let mut total: u64 = 0;
        for sec in sections.iter().filter(|s| s.is_loaded()) {
            if sec.align > 1 && (!sec.align.is_power_of_two() || sec.align > 1 << 20) {
                return Err(LoadError::Malformed(format!(
                    "section {} has alignment {}",
                    sec.name, sec.align
                )));
            }
            if sec.sh_type != SHT_NOBITS {
                section_bytes(b, sec)?;
            }
            total = total
                .saturating_add(sec.size)
                .saturating_add(sec.align.max(1));
        }
        if total > 1 << 30 {
            return Err(LoadError::Malformed(format!(
                "loadable sections total {total} bytes"
            )));
        }

        // One section per linker set: a loader that only looks at the first
        // section of a name would silently drop the others' entries.
        let mut set_names: Vec<&str> = sections
            .iter()
            .filter(|s| s.is_loaded() && s.name.starts_with("set_"))
            .map(|s| s.name.as_str())
            .collect();
        set_names.sort_unstable();
        for name in set_names.iter().copied() {
            let count = set_names.iter().filter(|n| **n == name).count();
            if count > 1 {
                return Err(LoadError::SplitLinkerSet {
                    name: name.to_string(),
                    count,
                });
            }
        }
        for s in &sections {
            if s.is_loaded() && (s.name == "set_pcpu" || s.name == "set_vnet") {
                return Err(LoadError::Unsupported(format!(
                    "section {} (dynamic per-CPU/per-vnet data) is not supported by the harness",
                    s.name
                )));
            }
            if s.is_loaded() && matches!(s.sh_type, SHT_INIT_ARRAY | SHT_FINI_ARRAY) {
                return Err(LoadError::Unsupported(format!(
                    "section {} (constructors) is not supported by the harness",
                    s.name
                )));
            }
        }
        for sym in &symbols {
            if sym.sym_type == STT_TLS {
                return Err(LoadError::Unsupported(format!(
                    "thread-local symbol `{}` (the kernel linker has no TLS)",
                    sym.name
                )));
            }
            if sym.shndx == SHN_COMMON {
                return Err(LoadError::Unsupported(format!(
                    "COMMON symbol `{}`",
                    sym.name
                )));
            }
        }

        Ok(ModuleObject {
            bytes,
            sections,
            symbols,
            relocs,
        })
    }

    /// The file bytes of a section (empty for NOBITS).
    pub fn section_data(&self, s: &Section) -> Result<&[u8], LoadError> {
        if s.sh_type == SHT_NOBITS {
            return Ok(&[]);
        }
        section_bytes(&self.bytes, s)
    }

    /// Names of the global symbols the module leaves undefined (its imports),
    /// excluding the `__start_`/`__stop_` linker-set bounds the loader supplies.
    pub fn imports(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .symbols
            .iter()
            .skip(1)
            .filter(|s| s.is_undefined() && s.bind != STB_LOCAL && !s.name.is_empty())
            .filter(|s| !self.is_set_bound(&s.name))
            .map(|s| s.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether `name` is `__start_<sec>`/`__stop_<sec>` for a loaded section.
    pub fn is_set_bound(&self, name: &str) -> bool {
        let sec = name
            .strip_prefix("__start_")
            .or_else(|| name.strip_prefix("__stop_"));
        sec.is_some_and(|sec| self.sections.iter().any(|s| s.is_loaded() && s.name == sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocation_names_and_widths() {
        assert_eq!(reloc::name(reloc::R32S), "R_X86_64_32S");
        assert_eq!(reloc::name(10), "R_X86_64_32");
        assert_eq!(reloc::width(reloc::PLT32), 4);
        assert_eq!(reloc::width(reloc::R64), 8);
        assert!(
            !reloc::ACCEPTED.contains(&10),
            "R_X86_64_32 is refused by the kernel"
        );
        assert!(
            !reloc::ACCEPTED.contains(&5),
            "R_X86_64_COPY is refused by the kernel"
        );
    }

    #[test]
    fn non_elf_and_truncated_input_is_malformed_not_a_crash() {
        assert!(matches!(
            ModuleObject::parse(b"not an elf".to_vec()),
            Err(LoadError::Malformed(_))
        ));
        let mut hdr = vec![0u8; 64];
        hdr[..4].copy_from_slice(&[0x7f, b'E', b'L', b'F']);
        hdr[4] = 2;
        hdr[5] = 1;
        hdr[6] = 1;
        hdr[16] = 1;
        hdr[18] = 62;
        hdr[40..48].copy_from_slice(&1_000_000u64.to_le_bytes()); // e_shoff far away
        hdr[58] = 64;
        hdr[60] = 3;
        assert!(matches!(
            ModuleObject::parse(hdr),
            Err(LoadError::Malformed(_))
        ));
    }

    #[test]
    fn errnos_follow_kldload() {
        assert_eq!(LoadError::NotRelocatable { e_type: 3 }.errno(), 78);
        assert_eq!(LoadError::UndefinedSymbol { name: "x".into() }.errno(), 2);
        assert_eq!(LoadError::SymbolTableCount { count: 2 }.errno(), 8);
    }
}
