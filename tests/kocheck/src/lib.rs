//! Static checks of built rdtrace.ko files (test tier 4).
//!
//! For each architecture the module built by `scripts/build-kmod.sh` is read
//! as ELF (with the `object` crate) and checked for what FreeBSD's kernel
//! linker needs and rejects, so that a bad module fails CI rather than
//! `kldload`:
//!
//! * file type and machine: ET_REL x86-64 on amd64 (link_elf_obj), ET_DYN
//!   AArch64/RISC-V on arm64/riscv64 (link_elf); exactly one symbol table;
//! * the linker sets: `set_modmetadata_set` and `set_sysinit_set` exist, every
//!   `set_*` set is one section, the metadata names module `rdtrace` with a
//!   dependency on `kernel`, and a SYSINIT calls `module_register_init` with
//!   that module's data; on ET_DYN the `__start_`/`__stop_` symbols of every
//!   set are exported;
//! * nothing the loader cannot handle: no `.eh_frame`, `.init_array`, TLS or
//!   COMMON symbols, and only relocation types FreeBSD accepts on that
//!   architecture (amd64: never `R_X86_64_32` or a GOT-relative type);
//! * no FP/SIMD register anywhere in the code (disassembled by llvm-objdump),
//!   the per-CPU register (arm64 x18, riscv64 tp/gp) is never clobbered, and
//!   on amd64 nothing is kept below the stack pointer (red zone);
//! * every undefined symbol is in `sys-headers/kpi-symbols.txt`.
//!
//! Host-only test code; nothing here runs in the kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use object::elf;
use object::read::elf::{ElfFile64, ElfSection64, SectionHeader};
use object::read::{Object, ObjectSection, ObjectSymbol, ObjectSymbolTable, RelocationTarget};
use object::{Architecture, Endianness, ObjectKind, RelocationFlags, SectionKind, SymbolKind};

/// The architectures rdtrace.ko is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
    Riscv64,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::Amd64, Arch::Arm64, Arch::Riscv64];

    /// FreeBSD's name, used for build/<name>/.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Riscv64 => "riscv64",
        }
    }

    fn architecture(self) -> Architecture {
        match self {
            Arch::Amd64 => Architecture::X86_64,
            Arch::Arm64 => Architecture::Aarch64,
            Arch::Riscv64 => Architecture::Riscv64,
        }
    }

    /// amd64 modules are relocatable objects; the others shared objects.
    fn object_kind(self) -> ObjectKind {
        match self {
            Arch::Amd64 => ObjectKind::Relocatable,
            _ => ObjectKind::Dynamic,
        }
    }

    /// Relocation types FreeBSD's kernel linker accepts (abi-facts §7.2, §9).
    pub fn accepted_relocations(self) -> &'static [u32] {
        match self {
            Arch::Amd64 => &[
                elf::R_X86_64_NONE,
                elf::R_X86_64_64,
                elf::R_X86_64_PC32,
                elf::R_X86_64_PLT32,
                elf::R_X86_64_32S,
                elf::R_X86_64_GLOB_DAT,
                elf::R_X86_64_JUMP_SLOT,
                elf::R_X86_64_RELATIVE,
                elf::R_X86_64_IRELATIVE,
            ],
            Arch::Arm64 => &[
                elf::R_AARCH64_NONE,
                elf::R_AARCH64_RELATIVE,
                elf::R_AARCH64_ABS64,
                elf::R_AARCH64_GLOB_DAT,
                elf::R_AARCH64_JUMP_SLOT,
                elf::R_AARCH64_IRELATIVE,
                elf::R_AARCH64_CALL26,
                elf::R_AARCH64_JUMP26,
                elf::R_AARCH64_CONDBR19,
                elf::R_AARCH64_TSTBR14,
            ],
            Arch::Riscv64 => &[
                elf::R_RISCV_NONE,
                elf::R_RISCV_64,
                elf::R_RISCV_JUMP_SLOT,
                elf::R_RISCV_RELATIVE,
                elf::R_RISCV_JAL,
                elf::R_RISCV_CALL,
                elf::R_RISCV_PCREL_HI20,
                elf::R_RISCV_PCREL_LO12_I,
                elf::R_RISCV_PCREL_LO12_S,
                elf::R_RISCV_HI20,
                elf::R_RISCV_LO12_I,
                elf::R_RISCV_LO12_S,
            ],
        }
    }

    /// Extra llvm-objdump options so that every FP/SIMD instruction is
    /// decoded (and so visible to the check) even if the object does not
    /// advertise the extension.
    fn objdump_args(self) -> &'static [&'static str] {
        match self {
            Arch::Amd64 => &[],
            Arch::Arm64 => &["--mattr=+fp-armv8,+neon,+sve"],
            Arch::Riscv64 => &["--mattr=+m,+a,+f,+d,+c,+v"],
        }
    }
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// build/<arch>/rdtrace.ko.
pub fn ko_path(arch: Arch) -> PathBuf {
    workspace_root()
        .join("build")
        .join(arch.name())
        .join("rdtrace.ko")
}

/// The module's bytes, or `None` (after printing why) when it has not been
/// built and `RDTRACE_REQUIRE_KO` is not set. With `RDTRACE_REQUIRE_KO` set a
/// missing module is a test failure.
pub fn load_module(arch: Arch) -> Option<Vec<u8>> {
    let path = ko_path(arch);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            if std::env::var_os("RDTRACE_REQUIRE_KO").is_some() {
                panic!(
                    "build/{}/rdtrace.ko is required (RDTRACE_REQUIRE_KO) but cannot be read: {err}",
                    arch.name()
                );
            }
            println!(
                "SKIPPED: build/{}/rdtrace.ko not built (make kmods)",
                arch.name()
            );
            None
        }
    }
}

/// The kernel symbols rdtrace.ko may import (`sys-headers/kpi-symbols.txt`).
pub fn kpi_allowlist() -> BTreeSet<String> {
    let path = workspace_root().join("sys-headers/kpi-symbols.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_symbol_list(&text)
}

/// Names in a symbol list: one per line, `#` comment lines ignored.
pub fn parse_symbol_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A parsed module (64-bit ELF).
pub type File<'a> = ElfFile64<'a, Endianness, &'a [u8]>;
type Section<'a, 'f> = ElfSection64<'a, 'f, Endianness, &'a [u8]>;

/// Parse the module, which must be a 64-bit little-endian ELF file.
pub fn parse(bytes: &[u8]) -> Result<File<'_>, String> {
    let file = File::parse(bytes).map_err(|e| format!("not a 64-bit ELF file: {e}"))?;
    if !file.is_little_endian() {
        return Err("not a little-endian ELF file".into());
    }
    Ok(file)
}

/// ELF type and machine are what the kernel linker of `arch` loads.
pub fn check_header(file: &File<'_>, arch: Arch) -> Result<(), String> {
    if file.architecture() != arch.architecture() {
        return Err(format!(
            "machine is {:?}, expected {:?}",
            file.architecture(),
            arch.architecture()
        ));
    }
    if file.kind() != arch.object_kind() {
        return Err(format!(
            "ELF type is {:?}, expected {:?}",
            file.kind(),
            arch.object_kind()
        ));
    }
    Ok(())
}

fn section_type(file: &File<'_>, section: &Section<'_, '_>) -> u32 {
    section.elf_section_header().sh_type(file.endian())
}

/// Exactly one SHT_SYMTAB (link_elf_obj insists on it).
pub fn check_single_symtab(file: &File<'_>) -> Result<(), String> {
    let count = file
        .sections()
        .filter(|s| section_type(file, s) == elf::SHT_SYMTAB)
        .count();
    if count == 1 {
        Ok(())
    } else {
        Err(format!("{count} SHT_SYMTAB sections, expected exactly one"))
    }
}

/// Sections and symbols the FreeBSD loader cannot handle.
pub fn check_forbidden_content(file: &File<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        let forbidden_name = matches!(
            name,
            ".eh_frame" | ".eh_frame_hdr" | ".init_array" | ".fini_array" | ".preinit_array"
        ) || name.starts_with(".tdata")
            || name.starts_with(".tbss")
            || name.starts_with(".init_array.")
            || name.starts_with(".fini_array.");
        if forbidden_name {
            problems.push(format!("forbidden section {name}"));
        }
        if let object::SectionFlags::Elf { sh_flags } = section.flags() {
            if sh_flags & u64::from(elf::SHF_TLS) != 0 {
                problems.push(format!("TLS section {name}"));
            }
        }
        if section_type(file, &section) == elf::SHT_GROUP {
            problems.push(format!("COMDAT group section {name}"));
        }
    }
    for symbol in file.symbols().chain(file.dynamic_symbols()) {
        if symbol.is_common() {
            problems.push(format!("COMMON symbol {}", symbol.name().unwrap_or("?")));
        }
        if symbol.kind() == SymbolKind::Tls {
            problems.push(format!("TLS symbol {}", symbol.name().unwrap_or("?")));
        }
    }
    problems
}

/// Every relocation type the loader will see, as (type, where) pairs. For
/// ET_REL that is every relocation section; for ET_DYN the dynamic ones
/// (static relocations are resolved by the link).
pub fn relocation_types(file: &File<'_>) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    match file.kind() {
        ObjectKind::Relocatable => {
            for section in file.sections() {
                let name = section.name().unwrap_or("?").to_string();
                for (offset, reloc) in section.relocations() {
                    if let RelocationFlags::Elf { r_type } = reloc.flags() {
                        out.push((r_type, format!("{name}+{offset:#x}")));
                    }
                }
            }
        }
        _ => {
            if let Some(relocs) = file.dynamic_relocations() {
                for (offset, reloc) in relocs {
                    if let RelocationFlags::Elf { r_type } = reloc.flags() {
                        out.push((r_type, format!("dynamic@{offset:#x}")));
                    }
                }
            }
        }
    }
    out
}

/// Relocation types FreeBSD's loader would reject.
pub fn check_relocations(file: &File<'_>, arch: Arch) -> Vec<String> {
    let accepted = arch.accepted_relocations();
    relocation_types(file)
        .into_iter()
        .filter(|(t, _)| !accepted.contains(t))
        .map(|(t, at)| {
            format!(
                "relocation type {t} at {at} is not accepted on {}",
                arch.name()
            )
        })
        .collect()
}

/// Undefined symbols (symtab for ET_REL, dynsym for ET_DYN).
pub fn undefined_symbols(file: &File<'_>) -> BTreeSet<String> {
    let symbols: Vec<_> = match file.kind() {
        ObjectKind::Relocatable => file.symbols().collect(),
        _ => file.dynamic_symbols().collect(),
    };
    symbols
        .into_iter()
        .filter(|s| s.is_undefined())
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|n| !n.is_empty())
        .collect()
}

/// Undefined symbols that are not in the KPI allowlist. The bounds of a
/// linker set (`__start_set_*`/`__stop_set_*`) are resolved by the loader
/// itself and are always allowed.
pub fn unlisted_imports(file: &File<'_>, allowlist: &BTreeSet<String>) -> Vec<String> {
    undefined_symbols(file)
        .into_iter()
        .filter(|n| !allowlist.contains(n))
        .filter(|n| !(n.starts_with("__start_set_") || n.starts_with("__stop_set_")))
        .collect()
}

/// Where a pointer-sized slot points: a symbol by name (undefined or
/// imported) or an address inside the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pointer {
    Symbol(String),
    /// (section index, offset within the section) for ET_REL; virtual
    /// address (section index 0 unused) for ET_DYN.
    Local {
        section: usize,
        offset: u64,
    },
}

/// Resolves the pointer stored at a place in the file, following the
/// relocation that fills it in (the module's pointers are all relocated).
pub struct PointerResolver<'a, 'f> {
    file: &'f File<'a>,
    /// ET_REL: (section index, offset) → (target, addend).
    rel: BTreeMap<(usize, u64), (RelocationTarget, i64)>,
    /// ET_DYN: address → (symbol name or None, addend).
    dynamic: BTreeMap<u64, (Option<String>, i64)>,
}

impl<'a, 'f> PointerResolver<'a, 'f> {
    pub fn new(file: &'f File<'a>) -> Self {
        let mut rel = BTreeMap::new();
        let mut dynamic = BTreeMap::new();
        match file.kind() {
            ObjectKind::Relocatable => {
                for section in file.sections() {
                    for (offset, reloc) in section.relocations() {
                        rel.insert(
                            (section.index().0, offset),
                            (reloc.target(), reloc.addend()),
                        );
                    }
                }
            }
            _ => {
                if let Some(relocs) = file.dynamic_relocations() {
                    for (offset, reloc) in relocs {
                        let name = match reloc.target() {
                            RelocationTarget::Symbol(index) => file
                                .dynamic_symbol_table()
                                .and_then(|t| t.symbol_by_index(index).ok())
                                .and_then(|s| s.name().ok().map(str::to_string))
                                .filter(|n| !n.is_empty()),
                            _ => None,
                        };
                        dynamic.insert(offset, (name, reloc.addend()));
                    }
                }
            }
        }
        PointerResolver { file, rel, dynamic }
    }

    /// The pointer stored at `place`.
    pub fn pointer_at(&self, place: &Pointer) -> Option<Pointer> {
        let Pointer::Local { section, offset } = place else {
            return None;
        };
        match self.file.kind() {
            ObjectKind::Relocatable => {
                let (target, addend) = self.rel.get(&(*section, *offset))?;
                let RelocationTarget::Symbol(index) = target else {
                    return None;
                };
                let symbol = self.file.symbol_by_index(*index).ok()?;
                match symbol.section_index() {
                    Some(target_section) if !symbol.is_undefined() => Some(Pointer::Local {
                        section: target_section.0,
                        offset: symbol.address().wrapping_add(*addend as u64),
                    }),
                    _ => Some(Pointer::Symbol(symbol.name().ok()?.to_string())),
                }
            }
            _ => {
                let (name, addend) = self.dynamic.get(offset)?;
                match name {
                    Some(name) => Some(Pointer::Symbol(name.clone())),
                    None => Some(Pointer::Local {
                        section: 0,
                        offset: *addend as u64,
                    }),
                }
            }
        }
    }

    /// `len` bytes at a local place.
    pub fn bytes_at(&self, place: &Pointer, len: usize) -> Option<&'a [u8]> {
        let Pointer::Local { section, offset } = place else {
            return None;
        };
        match self.file.kind() {
            ObjectKind::Relocatable => {
                let data = self
                    .file
                    .section_by_index(object::SectionIndex(*section))
                    .ok()?
                    .data()
                    .ok()?;
                data.get(*offset as usize..(*offset as usize).checked_add(len)?)
            }
            _ => self.file.sections().find_map(|s| {
                let start = s.address();
                let end = start + s.size();
                if *offset >= start
                    && offset + len as u64 <= end
                    && s.kind() != SectionKind::UninitializedData
                {
                    let data = s.data().ok()?;
                    let at = (offset - start) as usize;
                    data.get(at..at + len)
                } else {
                    None
                }
            }),
        }
    }

    /// The NUL-terminated string a pointer points at.
    pub fn string_at(&self, place: &Pointer) -> Option<String> {
        let mut out = Vec::new();
        let Pointer::Local { section, offset } = place else {
            return None;
        };
        for i in 0..256u64 {
            let byte = *self
                .bytes_at(
                    &Pointer::Local {
                        section: *section,
                        offset: offset + i,
                    },
                    1,
                )?
                .first()?;
            if byte == 0 {
                return String::from_utf8(out).ok();
            }
            out.push(byte);
        }
        None
    }

    /// A place `delta` bytes further on.
    pub fn advance(place: &Pointer, delta: u64) -> Pointer {
        match place {
            Pointer::Local { section, offset } => Pointer::Local {
                section: *section,
                offset: offset + delta,
            },
            other => other.clone(),
        }
    }

    fn u32_at(&self, place: &Pointer) -> Option<u32> {
        let b = self.bytes_at(place, 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }
}

/// One decoded `struct mod_metadata`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataRecord {
    pub version: u32,
    pub md_type: u32,
    pub name: String,
    pub data: Option<Pointer>,
}

/// One decoded `struct sysinit` (14+ layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysinitRecord {
    pub subsystem: u32,
    pub order: u32,
    pub func: Option<Pointer>,
    pub udata: Option<Pointer>,
}

/// The sections named `set_*`, by name, with how many sections carry each.
pub fn linker_sets<'a, 'f>(file: &'f File<'a>) -> BTreeMap<String, Vec<Section<'a, 'f>>> {
    let mut sets: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for section in file.sections() {
        if let Ok(name) = section.name() {
            if name.starts_with("set_") {
                sets.entry(name.to_string()).or_default().push(section);
            }
        }
    }
    sets
}

/// The places of a set's slots (one per 8 bytes).
fn set_slots(file: &File<'_>, section: &Section<'_, '_>) -> Vec<Pointer> {
    let count = section.size() / 8;
    (0..count)
        .map(|i| match file.kind() {
            ObjectKind::Relocatable => Pointer::Local {
                section: section.index().0,
                offset: i * 8,
            },
            _ => Pointer::Local {
                section: 0,
                offset: section.address() + i * 8,
            },
        })
        .collect()
}

/// Decode every `struct mod_metadata` the module's metadata set points at.
pub fn metadata_records(file: &File<'_>) -> Result<Vec<MetadataRecord>, String> {
    let sets = linker_sets(file);
    let section = sets
        .get("set_modmetadata_set")
        .and_then(|v| v.first())
        .ok_or("no set_modmetadata_set section")?;
    let resolver = PointerResolver::new(file);
    let mut records = Vec::new();
    for slot in set_slots(file, section) {
        let record = resolver
            .pointer_at(&slot)
            .ok_or("a modmetadata slot is not relocated")?;
        let version = resolver.u32_at(&record).ok_or("unreadable mod_metadata")?;
        let md_type = resolver
            .u32_at(&PointerResolver::advance(&record, 4))
            .ok_or("unreadable mod_metadata")?;
        let data = resolver.pointer_at(&PointerResolver::advance(&record, 8));
        let name_ptr = resolver
            .pointer_at(&PointerResolver::advance(&record, 16))
            .ok_or("mod_metadata without a name")?;
        let name = resolver
            .string_at(&name_ptr)
            .ok_or("mod_metadata name unreadable")?;
        records.push(MetadataRecord {
            version,
            md_type,
            name,
            data,
        });
    }
    Ok(records)
}

/// Decode every `struct sysinit` the module's sysinit set points at.
pub fn sysinit_records(file: &File<'_>) -> Result<Vec<SysinitRecord>, String> {
    let sets = linker_sets(file);
    let section = sets
        .get("set_sysinit_set")
        .and_then(|v| v.first())
        .ok_or("no set_sysinit_set section")?;
    let resolver = PointerResolver::new(file);
    let mut records = Vec::new();
    for slot in set_slots(file, section) {
        let record = resolver
            .pointer_at(&slot)
            .ok_or("a sysinit slot is not relocated")?;
        records.push(SysinitRecord {
            subsystem: resolver.u32_at(&record).ok_or("unreadable sysinit")?,
            order: resolver
                .u32_at(&PointerResolver::advance(&record, 4))
                .ok_or("unreadable sysinit")?,
            func: resolver.pointer_at(&PointerResolver::advance(&record, 16)),
            udata: resolver.pointer_at(&PointerResolver::advance(&record, 24)),
        });
    }
    Ok(records)
}

/// The name of the `moduledata_t` at `place`.
pub fn moduledata_name(file: &File<'_>, place: &Pointer) -> Option<String> {
    let resolver = PointerResolver::new(file);
    let name = resolver.pointer_at(place)?;
    resolver.string_at(&name)
}

/// The kernel-version range `(min, preferred, max)` of the module's
/// MDT_DEPEND record on `kernel`.
pub fn kernel_dependency(file: &File<'_>) -> Result<(i32, i32, i32), String> {
    let records = metadata_records(file)?;
    let depend = records
        .iter()
        .find(|r| r.md_type == 1 && r.name == "kernel")
        .ok_or("no MDT_DEPEND record on kernel")?;
    let data = depend.data.as_ref().ok_or("MDT_DEPEND without data")?;
    let resolver = PointerResolver::new(file);
    let bytes = resolver.bytes_at(data, 12).ok_or("mod_depend unreadable")?;
    let word = |i: usize| i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Ok((word(0), word(4), word(8)))
}

/// The range a module built for FreeBSD `release` ("MAJOR.MINOR") must
/// accept: from the release's first `__FreeBSD_version` to the end of its
/// major branch (what DECLARE_MODULE derives, abi-facts §9).
pub fn expected_kernel_range(release: &str) -> Option<(i32, i32, i32)> {
    let (major, minor) = release.trim().split_once('.')?;
    let major: i32 = major.parse().ok()?;
    let minor: i32 = minor.parse().ok()?;
    let first = major * 100_000 + minor * 1000;
    Some((first, first, (major + 1) * 100_000 - 1))
}

/// The linker-set checks (see the crate comment).
pub fn check_linker_sets(file: &File<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let sets = linker_sets(file);
    for (name, sections) in &sets {
        if sections.len() != 1 {
            problems.push(format!(
                "linker set {name} is split over {} sections",
                sections.len()
            ));
        }
        if sections.iter().any(|s| s.size() % 8 != 0) {
            problems.push(format!(
                "linker set {name} is not a whole number of pointers"
            ));
        }
        if file.kind() == ObjectKind::Dynamic {
            for bound in ["__start_", "__stop_"] {
                let wanted = format!("{bound}{name}");
                let exported = file
                    .dynamic_symbols()
                    .any(|s| s.name() == Ok(wanted.as_str()) && !s.is_undefined());
                if !exported {
                    problems.push(format!(
                        "{wanted} is not defined in the dynamic symbol table"
                    ));
                }
            }
        }
    }
    for required in ["set_modmetadata_set", "set_sysinit_set"] {
        if !sets.contains_key(required) {
            problems.push(format!("missing linker set {required}"));
        }
    }
    if !problems.is_empty() {
        return problems;
    }

    match metadata_records(file) {
        Err(e) => problems.push(e),
        Ok(records) => {
            if records.iter().any(|r| r.version != 1) {
                problems.push("a mod_metadata record has md_version != 1".into());
            }
            let module = records
                .iter()
                .filter(|r| r.md_type == 2)
                .collect::<Vec<_>>();
            if module.len() != 1 || module[0].name != "rdtrace" {
                problems.push(format!(
                    "expected one MDT_MODULE record named rdtrace, found {:?}",
                    module.iter().map(|r| &r.name).collect::<Vec<_>>()
                ));
            } else if let Some(data) = &module[0].data {
                if moduledata_name(file, data).as_deref() != Some("rdtrace") {
                    problems.push("the MDT_MODULE moduledata does not name rdtrace".into());
                }
            } else {
                problems.push("the MDT_MODULE record has no moduledata".into());
            }
            if !records.iter().any(|r| r.md_type == 1 && r.name == "kernel") {
                problems.push("no MDT_DEPEND record on kernel".into());
            }
            if records.iter().any(|r| r.md_type == 3 && r.name == "dtrace") {
                problems.push(
                    "the module must not provide interface dtrace (stock dtrace.ko does)".into(),
                );
            }
        }
    }
    match sysinit_records(file) {
        Err(e) => problems.push(e),
        Ok(records) => {
            let registers = records.iter().any(|r| {
                r.func == Some(Pointer::Symbol("module_register_init".into()))
                    && r.udata
                        .as_ref()
                        .and_then(|u| moduledata_name(file, u))
                        .as_deref()
                        == Some("rdtrace")
            });
            if !registers {
                problems.push(
                    "no SYSINIT calls module_register_init with the rdtrace moduledata".into(),
                );
            }
        }
    }
    problems
}

/// Disassemble the code with llvm-objdump.
pub fn disassemble(path: &Path, arch: Arch) -> Result<String, String> {
    let tool = [
        "llvm-objdump-22",
        "llvm-objdump-19",
        "llvm-objdump",
        "llvm-objdump19",
        "llvm-objdump18",
    ]
    .into_iter()
    .find(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
    .ok_or("llvm-objdump not found (install llvm)")?;
    let output = Command::new(tool)
        .arg("-d")
        .arg("--no-show-raw-insn")
        .args(arch.objdump_args())
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The operand text of each instruction line of llvm-objdump output, with
/// its line: `(mnemonic, operands, line)`.
fn instructions(listing: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    listing.lines().filter_map(|line| {
        // Instruction lines look like "   1234:  \tmnemonic\toperands".
        let (addr, rest) = line.split_once(':')?;
        if addr.trim().is_empty() || !addr.trim().chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let rest = rest.trim();
        if rest.is_empty() {
            return None;
        }
        let (mnemonic, operands) = rest
            .split_once(|c: char| c.is_whitespace())
            .unwrap_or((rest, ""));
        // Drop trailing comments ("# 0x..." on x86, "// =..." on arm64).
        let operands = operands.split(['#', ';']).next().unwrap_or("");
        let operands = operands.split("//").next().unwrap_or("");
        Some((mnemonic, operands.trim(), line))
    })
}

fn tokens(operands: &str) -> impl Iterator<Item = &str> {
    operands
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '%' || c == '.' || c == '_'))
        .filter(|t| !t.is_empty())
}

fn is_numbered(token: &str, prefix: &str, max: u32) -> bool {
    token
        .strip_prefix(prefix)
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n <= max)
}

/// Does this operand token name an FP/SIMD register of `arch`?
pub fn is_fp_register(arch: Arch, token: &str) -> bool {
    match arch {
        Arch::Amd64 => {
            let t = token.trim_start_matches('%');
            ["xmm", "ymm", "zmm", "mm"]
                .iter()
                .any(|p| is_numbered(t, p, 31))
                || t == "st"
                || is_numbered(t.trim_start_matches("st("), "", 7) && token.starts_with("%st")
        }
        Arch::Arm64 => {
            let base = token.split('.').next().unwrap_or(token);
            ["b", "h", "s", "d", "q", "v", "z"]
                .iter()
                .any(|p| is_numbered(base, p, 31))
                || matches!(base, "fpcr" | "fpsr")
        }
        Arch::Riscv64 => {
            ["f", "ft", "fs", "fa"]
                .iter()
                .any(|p| is_numbered(token, p, 31))
                || is_numbered(token, "v", 31)
                || matches!(token, "fcsr" | "fflags" | "frm")
        }
    }
}

/// How many instructions a listing holds (so a check over it is not vacuous).
pub fn instruction_count(listing: &str) -> usize {
    instructions(listing).count()
}

/// Instruction lines that use an FP/SIMD register (or that the disassembler
/// could not decode, which the check cannot vouch for).
pub fn fp_simd_uses(listing: &str, arch: Arch) -> Vec<String> {
    instructions(listing)
        .filter(|(mnemonic, operands, _)| {
            mnemonic.contains("unknown")
                || operands.contains("<unknown>")
                || tokens(operands).any(|t| is_fp_register(arch, t))
        })
        .map(|(_, _, line)| line.trim().to_string())
        .collect()
}

/// amd64 only: stack accesses below the stack pointer, i.e. red-zone use.
///
/// Every function keeps a frame pointer, so the check follows each function
/// from `movq %rsp, %rbp` on, adding up what it allocates below %rbp (pushes
/// and `subq $N, %rsp`; a variable-size adjustment counts as unbounded), and
/// reports any access at `-N(%rbp)` beyond that, and any access at
/// `-N(%rsp)` at all. Interrupts and traps in kernel mode write below %rsp,
/// so data kept there would be corrupted at random.
pub fn red_zone_uses(listing: &str) -> Vec<String> {
    fn negative_offset(operands: &str, base: &str) -> Option<u64> {
        let at = operands.find(&format!("({base}"))?;
        let before = &operands[..at];
        let start = before.rfind([' ', ',']).map_or(0, |i| i + 1);
        let text = before[start..].strip_prefix("-0x")?;
        u64::from_str_radix(text, 16).ok()
    }
    let mut problems = Vec::new();
    let mut below: Option<u64> = None; // None: no frame yet; u64::MAX: unbounded
    for line in listing.lines() {
        let trimmed = line.trim();
        if trimmed.ends_with(">:") {
            below = None; // a new function
            continue;
        }
        let Some((mnemonic, operands, _)) = instructions(line).next() else {
            continue;
        };
        match mnemonic {
            "movq" if operands == "%rsp, %rbp" => below = Some(0),
            "pushq" => below = below.map(|b| b.saturating_add(8)),
            "subq" if operands.ends_with(", %rsp") => {
                let amount = operands
                    .strip_prefix("$0x")
                    .and_then(|t| t.split(',').next())
                    .and_then(|t| u64::from_str_radix(t, 16).ok())
                    .unwrap_or(u64::MAX);
                below = below.map(|b| b.saturating_add(amount));
            }
            "andq" if operands.ends_with(", %rsp") => below = below.map(|_| u64::MAX),
            _ => {}
        }
        if mnemonic == "leaq" && operands.ends_with(", %rsp") {
            continue; // epilogue: restoring %rsp from %rbp
        }
        // An indexed access ("-0x22(%rbp,%rcx)") may reach upwards from its
        // displacement, so it only counts when nothing was allocated at all.
        let indexed = operands.contains("(%rbp,") || operands.contains("(%rsp,");
        if negative_offset(operands, "%rsp").is_some() && !indexed {
            problems.push(trimmed.to_string());
        } else if let (Some(offset), Some(allocated)) = (negative_offset(operands, "%rbp"), below) {
            let red_zone = if indexed {
                allocated == 0
            } else {
                offset > allocated
            };
            if red_zone {
                problems.push(trimmed.to_string());
            }
        }
    }
    problems
}

/// Instructions that touch a register the kernel reserves for its per-CPU
/// pointer: arm64 x18 may only serve as the base of a load (reading
/// `struct pcpu`), riscv64 tp/gp must never be written. amd64 reaches the
/// per-CPU area through %gs and has no reserved general register.
pub fn reserved_register_uses(listing: &str, arch: Arch) -> Vec<String> {
    instructions(listing)
        .filter(|(mnemonic, operands, _)| match arch {
            Arch::Amd64 => false,
            Arch::Arm64 => {
                let mentions = tokens(operands).any(|t| t == "x18" || t == "w18");
                let as_base_only = operands.matches("x18").count()
                    == operands.matches("[x18").count()
                    && !tokens(operands).any(|t| t == "w18");
                let is_load = mnemonic.starts_with("ld");
                mentions && !(as_base_only && is_load)
            }
            Arch::Riscv64 => {
                let is_store = matches!(
                    *mnemonic,
                    "sb" | "sh" | "sw" | "sd" | "c.sw" | "c.sd" | "c.swsp" | "c.sdsp"
                );
                let first = tokens(operands).next().unwrap_or("");
                !is_store && matches!(first, "tp" | "gp" | "x3" | "x4")
            }
        })
        .map(|(_, _, line)| line.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp_registers_are_recognised() {
        assert!(is_fp_register(Arch::Amd64, "%xmm0"));
        assert!(is_fp_register(Arch::Amd64, "%ymm15"));
        assert!(is_fp_register(Arch::Amd64, "%zmm31"));
        assert!(!is_fp_register(Arch::Amd64, "%rax"));
        assert!(!is_fp_register(Arch::Amd64, "%rsp"));
        assert!(is_fp_register(Arch::Arm64, "q0"));
        assert!(is_fp_register(Arch::Arm64, "d31"));
        assert!(is_fp_register(Arch::Arm64, "v3.16b"));
        assert!(!is_fp_register(Arch::Arm64, "x18"));
        assert!(!is_fp_register(Arch::Arm64, "w0"));
        assert!(!is_fp_register(Arch::Arm64, "sp"));
        assert!(is_fp_register(Arch::Riscv64, "fa0"));
        assert!(is_fp_register(Arch::Riscv64, "ft11"));
        assert!(is_fp_register(Arch::Riscv64, "f5"));
        assert!(!is_fp_register(Arch::Riscv64, "a0"));
        assert!(!is_fp_register(Arch::Riscv64, "s0"));
        assert!(!is_fp_register(Arch::Riscv64, "fp"));
    }

    #[test]
    fn listings_are_parsed_per_instruction() {
        let x86 = "\n0000000000000000 <f>:\n       0:\tmovaps\t%xmm0, (%rdi)\n       3:\tretq\n";
        assert_eq!(fp_simd_uses(x86, Arch::Amd64).len(), 1);
        let clean = "       0:\tmovq\t%rdi, %rax\n       3:\tretq\n";
        assert!(fp_simd_uses(clean, Arch::Amd64).is_empty());
        let arm = "      10:\tstr\tq0, [sp, #16]\n      14:\tb\t0x20 <f+0x20>\n      18:\tldr\tx0, [x18]\n";
        assert_eq!(fp_simd_uses(arm, Arch::Arm64).len(), 1);
        let riscv =
            "      10:\tfld\tfa0, 0(a0)\n      14:\tfence\trw, rw\n      18:\tld\ta0, 0(s0)\n";
        assert_eq!(fp_simd_uses(riscv, Arch::Riscv64).len(), 1);
        let unknown = "      10:\t<unknown>\n";
        assert_eq!(fp_simd_uses(unknown, Arch::Arm64).len(), 1);
    }

    #[test]
    fn reserved_registers_are_guarded() {
        let arm = "  10:\tldr\tx0, [x18]\n  14:\tldr\tw0, [x18, x8]\n";
        assert!(reserved_register_uses(arm, Arch::Arm64).is_empty());
        let arm_bad = "  10:\tmov\tx18, x0\n  14:\tadd\tx0, x18, #8\n";
        assert_eq!(reserved_register_uses(arm_bad, Arch::Arm64).len(), 2);
        let rv = "  10:\tld\ta0, 0x0(tp)\n  14:\tadd\ta0, a0, tp\n";
        assert!(reserved_register_uses(rv, Arch::Riscv64).is_empty());
        let rv_bad = "  10:\tmv\ttp, a0\n  14:\taddi\tgp, gp, 8\n";
        assert_eq!(reserved_register_uses(rv_bad, Arch::Riscv64).len(), 2);
    }

    #[test]
    fn kernel_ranges_follow_the_release() {
        assert_eq!(
            expected_kernel_range("14.2"),
            Some((1_402_000, 1_402_000, 1_499_999))
        );
        assert_eq!(
            expected_kernel_range("15.0"),
            Some((1_500_000, 1_500_000, 1_599_999))
        );
        assert_eq!(expected_kernel_range("fifteen"), None);
    }

    #[test]
    fn red_zone_use_is_found() {
        let ok = "0000000000000000 <f>:\n  0:\tpushq\t%rbp\n  1:\tmovq\t%rsp, %rbp\n  4:\tpushq\t%rbx\n  5:\tsubq\t$0x18, %rsp\n  9:\tmovq\t%rdi, -0x20(%rbp)\n  d:\tleaq\t-0x8(%rbp), %rsp\n";
        assert!(red_zone_uses(ok).is_empty(), "{:?}", red_zone_uses(ok));
        let leaf = "0000000000000000 <g>:\n  0:\tpushq\t%rbp\n  1:\tmovq\t%rsp, %rbp\n  4:\tmovl\t%edi, -0x4(%rbp)\n  7:\tmovl\t-0x10(%rbp,%rdi,4), %eax\n  b:\tpopq\t%rbp\n";
        assert_eq!(red_zone_uses(leaf).len(), 2);
        let below_rsp = "0000000000000000 <h>:\n  0:\tmovq\t%rax, -0x8(%rsp)\n";
        assert_eq!(red_zone_uses(below_rsp).len(), 1);
        let realigned = "0000000000000000 <k>:\n  0:\tpushq\t%rbp\n  1:\tmovq\t%rsp, %rbp\n  4:\tandq\t$-0x40, %rsp\n  8:\tmovq\t%rax, -0x80(%rbp)\n";
        assert!(red_zone_uses(realigned).is_empty());
    }

    #[test]
    fn symbol_lists_ignore_comments() {
        let set = parse_symbol_list("# c\nmalloc\n\n  free \n#x\n");
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec!["free", "malloc"]);
    }

    #[test]
    fn amd64_never_accepts_32_or_gotpcrel() {
        let accepted = Arch::Amd64.accepted_relocations();
        for bad in [
            elf::R_X86_64_32,
            elf::R_X86_64_GOTPCREL,
            elf::R_X86_64_REX_GOTPCRELX,
            elf::R_X86_64_GOTPCRELX,
            elf::R_X86_64_TPOFF32,
            elf::R_X86_64_COPY,
        ] {
            assert!(!accepted.contains(&bad), "{bad}");
        }
    }
}
