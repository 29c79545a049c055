//! The function symbols of an ELF64 little-endian file (its `.symtab`, or
//! `.dynsym` when stripped): what the hosted fbt provider enumerates, the
//! counterpart of `linker_file_function_listall` in the kernel.
//!
//! Not probe context. Malformed files give an error, never a panic.

use std::path::Path;

/// A function symbol as stored in the file (link-time address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfFunction {
    pub name: String,
    pub value: u64,
    pub size: u64,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;

/// Parse the function symbols (STT_FUNC and STT_GNU_IFUNC, defined, size > 0).
pub fn parse(bytes: &[u8]) -> Option<Vec<ElfFunction>> {
    if bytes.get(0..4)? != b"\x7fELF" || *bytes.get(4)? != 2 || *bytes.get(5)? != 1 {
        return None;
    }
    let shoff = usize::try_from(u64_at(bytes, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(bytes, 0x3a)?);
    let shnum = usize::from(u16_at(bytes, 0x3c)?);
    let section = |i: usize| -> Option<(u32, usize, usize, u32, usize)> {
        let base = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let field = |offset: usize| base.checked_add(offset);
        Some((
            u32_at(bytes, field(4)?)?,
            usize::try_from(u64_at(bytes, field(0x18)?)?).ok()?,
            usize::try_from(u64_at(bytes, field(0x20)?)?).ok()?,
            u32_at(bytes, field(0x28)?)?,
            usize::try_from(u64_at(bytes, field(0x38)?)?).ok()?,
        ))
    };
    let mut table = None;
    for kind in [SHT_SYMTAB, SHT_DYNSYM] {
        table = (0..shnum).filter_map(section).find(|s| s.0 == kind);
        if table.is_some() {
            break;
        }
    }
    let (_, offset, size, link, entsize) = table?;
    let (_, str_offset, str_size, _, _) = section(usize::try_from(link).ok()?)?;
    let strings = bytes.get(str_offset..str_offset.checked_add(str_size)?)?;
    let symbols = bytes.get(offset..offset.checked_add(size)?)?;
    let mut out = Vec::new();
    for sym in symbols.chunks_exact(entsize.max(24)) {
        let name_off = usize::try_from(u32_at(sym, 0)?).ok()?;
        let info = *sym.get(4)?;
        let shndx = u16_at(sym, 6)?;
        let value = u64_at(sym, 8)?;
        let sym_size = u64_at(sym, 16)?;
        let kind = info & 0xf;
        if (kind != STT_FUNC && kind != STT_GNU_IFUNC) || shndx == 0 || sym_size == 0 {
            continue;
        }
        let tail = strings.get(name_off..)?;
        let end = tail.iter().position(|&c| c == 0)?;
        let name = std::str::from_utf8(tail.get(..end)?).ok()?;
        out.push(ElfFunction {
            name: name.to_string(),
            value,
            size: sym_size,
        });
    }
    Some(out)
}

/// The loadable segments of an ELF64 LE file: (virtual address, file
/// offset, size in the file).
pub fn load_segments(bytes: &[u8]) -> Option<Vec<(u64, u64, u64)>> {
    if bytes.get(0..4)? != b"\x7fELF" {
        return None;
    }
    let phoff = usize::try_from(u64_at(bytes, 0x20)?).ok()?;
    let phentsize = usize::from(u16_at(bytes, 0x36)?);
    let phnum = usize::from(u16_at(bytes, 0x38)?);
    let mut out = Vec::new();
    for i in 0..phnum {
        let base = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(bytes, base)? == 1 {
            out.push((
                u64_at(bytes, base.checked_add(0x10)?)?,
                u64_at(bytes, base.checked_add(8)?)?,
                u64_at(bytes, base.checked_add(0x20)?)?,
            ));
        }
    }
    Some(out)
}

/// Code of an ELF file on disk, addressed by link-time virtual address:
/// a read-only [`TextWriter`](rdtrace_providers::text::TextWriter) for
/// enumerating a binary that is not running.
pub struct FileText {
    bytes: Vec<u8>,
    segments: Vec<(u64, u64, u64)>,
}

impl FileText {
    pub fn new(bytes: Vec<u8>) -> Option<FileText> {
        let segments = load_segments(&bytes)?;
        Some(FileText { bytes, segments })
    }
}

impl rdtrace_providers::text::TextWriter for FileText {
    fn read_text(
        &self,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<(), rdtrace_framework::platform::Errno> {
        let efault = rdtrace_framework::platform::Errno::EFAULT;
        let len = buf.len() as u64;
        let (vaddr, offset, _) = self
            .segments
            .iter()
            .find(|(v, _, size)| addr >= *v && addr.saturating_add(len) <= v.saturating_add(*size))
            .ok_or(efault)?;
        let start = usize::try_from(offset + (addr - vaddr)).map_err(|_| efault)?;
        let end = start.checked_add(buf.len()).ok_or(efault)?;
        buf.copy_from_slice(self.bytes.get(start..end).ok_or(efault)?);
        Ok(())
    }

    unsafe fn write_text(
        &self,
        _addr: u64,
        _bytes: &[u8],
    ) -> Result<(), rdtrace_framework::platform::Errno> {
        Err(rdtrace_framework::platform::Errno::EACCES)
    }
}

/// Read and parse the function symbols of the file at `path`.
pub fn read(path: &Path) -> std::io::Result<Vec<ElfFunction>> {
    let bytes = std::fs::read(path)?;
    parse(&bytes).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a parsable ELF64 LE file",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    #[no_mangle]
    pub extern "C" fn elf_symbols_test_anchor(x: u64) -> u64 {
        x.wrapping_mul(3)
    }

    #[test]
    fn own_binary_has_this_function() {
        let funcs = read(Path::new("/proc/self/exe")).unwrap();
        assert!(funcs.len() > 100);
        let anchor = funcs
            .iter()
            .find(|f| f.name == "elf_symbols_test_anchor")
            .expect("anchor symbol");
        assert!(anchor.size > 0);
        assert_eq!(elf_symbols_test_anchor(2), 6);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(b"not an elf").is_none());
        let mut fake = vec![0u8; 64];
        fake[..6].copy_from_slice(b"\x7fELF\x02\x01");
        fake[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        fake[0x3c] = 5;
        assert!(parse(&fake).is_none());
    }
}
