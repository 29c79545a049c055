//! Symbolized text for `stack()`, `ustack()`, `sym()`, `mod()`, `usym()`,
//! `umod()`, `uaddr()` and printf's `%a %A %k`, laid out as libdtrace does
//! (frame text ``module`func+0x<off>``, `stackindent` blanks per frame, a
//! newline before the first frame). Symbol lookup goes through the
//! [`Symbolizer`] trait: kernel and process symbol tables on FreeBSD, the
//! process's own symbols on the hosted kernel. Not probe context.

use super::cfmt::{self, Spec};
use super::model::StackKind;

/// What a symbol lookup found for an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolInfo {
    /// Module / object name (for user objects the full path is fine; the
    /// formatter takes the basename as libdtrace does).
    pub object: String,
    /// Symbol name and start address, when a symbol covers the address.
    pub symbol: Option<(String, u64)>,
}

/// Address-to-symbol lookups used by every symbolized output.
pub trait Symbolizer {
    /// Kernel address lookup; `None` if not even the module is known.
    fn lookup_kernel(&self, pc: u64) -> Option<SymbolInfo>;
    /// User address lookup in process `pid`.
    fn lookup_user(&self, pid: u64, pc: u64) -> Option<SymbolInfo>;
}

/// A symbolizer that knows nothing: every address prints as hex.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSymbols;

impl Symbolizer for NoSymbols {
    fn lookup_kernel(&self, _pc: u64) -> Option<SymbolInfo> {
        None
    }
    fn lookup_user(&self, _pid: u64, _pc: u64) -> Option<SymbolInfo> {
        None
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// ``module`func+0x<off>`` / ``module`func`` / ``module`0x<pc>`` / `0x<pc>`.
fn frame_text(info: Option<SymbolInfo>, pc: u64, user: bool, with_offset: bool) -> String {
    match info {
        Some(SymbolInfo {
            object,
            symbol: Some((name, start)),
        }) => {
            let object = if user {
                basename(&object)
            } else {
                object.as_str()
            };
            if with_offset && pc > start {
                format!("{object}`{name}+0x{:x}", pc - start)
            } else {
                format!("{object}`{name}")
            }
        }
        Some(SymbolInfo {
            object,
            symbol: None,
        }) => {
            let object = if user {
                basename(&object)
            } else {
                object.as_str()
            };
            format!("{object}`0x{pc:x}")
        }
        None => format!("0x{pc:x}"),
    }
}

/// `dtrace_addr2str`: kernel address with offset (printf `%a`).
pub fn kernel_addr_text(sym: &dyn Symbolizer, pc: u64) -> String {
    frame_text(sym.lookup_kernel(pc), pc, false, true)
}

/// `dtrace_uaddr2str`: user address with offset (printf `%A`, `uaddr()`).
pub fn user_addr_text(sym: &dyn Symbolizer, pid: u64, pc: u64) -> String {
    frame_text(sym.lookup_user(pid, pc), pc, true, true)
}

/// `sym()` text: ``module`func`` without offset.
pub fn kernel_sym_text(sym: &dyn Symbolizer, pc: u64) -> String {
    frame_text(sym.lookup_kernel(pc), pc, false, false)
}

/// `usym()` text: the address is first moved to its symbol's start.
pub fn user_sym_text(sym: &dyn Symbolizer, pid: u64, pc: u64) -> String {
    frame_text(sym.lookup_user(pid, pc), pc, true, false)
}

/// `mod()` text.
pub fn kernel_mod_text(sym: &dyn Symbolizer, pc: u64) -> String {
    match sym.lookup_kernel(pc) {
        Some(info) => info.object,
        None => format!("0x{pc:x}"),
    }
}

/// `umod()` text.
pub fn user_mod_text(sym: &dyn Symbolizer, pid: u64, pc: u64) -> String {
    match sym.lookup_user(pid, pc) {
        Some(info) => basename(&info.object).to_string(),
        None => format!("0x{pc:x}"),
    }
}

/// Prints a stack: newline, then for each non-zero PC `indent` blanks, the
/// frame text through `spec` (plain `%s` for the action, the printf width
/// for `%k`) and a newline. ustack helper strings replace unknown frames;
/// strings starting with `@` are annotations printed as `  [ text ]`.
pub fn print_stack(
    out: &mut Vec<u8>,
    sym: &dyn Symbolizer,
    kind: StackKind,
    pcs: &[u64],
    strtab: Option<&[u8]>,
    indent: usize,
    spec: &Spec,
) {
    if matches!(kind, StackKind::User { .. }) && pcs.is_empty() {
        return;
    }
    out.push(b'\n');
    let mut strings = strtab.map(|t| t.split(|&b| b == 0));
    for &pc in pcs {
        if pc == 0 {
            break;
        }
        let helper = strings
            .as_mut()
            .and_then(|it| it.next())
            .filter(|s| !s.is_empty());
        out.resize(out.len() + indent, b' ');
        let text = match kind {
            StackKind::Kernel => frame_text(sym.lookup_kernel(pc), pc, false, true),
            StackKind::User { pid } => match sym.lookup_user(pid, pc) {
                Some(
                    info @ SymbolInfo {
                        symbol: Some(_), ..
                    },
                ) => frame_text(Some(info), pc, true, true),
                other => match helper {
                    Some(h) if h.first() != Some(&b'@') => String::from_utf8_lossy(h).into_owned(),
                    _ => frame_text(other, pc, true, true),
                },
            },
        };
        cfmt::fmt_str(out, text.as_bytes(), spec);
        out.push(b'\n');
        if let Some(h) = helper.filter(|h| h.first() == Some(&b'@')) {
            out.resize(out.len() + indent, b' ');
            let note = format!("  [ {} ]", String::from_utf8_lossy(&h[1..]));
            cfmt::fmt_str(out, note.as_bytes(), spec);
            out.push(b'\n');
        }
    }
}

/// Frame names for folded (flame graph) output: outermost caller first,
/// offsets dropped so equal functions merge.
pub fn folded_frames(sym: &dyn Symbolizer, kind: StackKind, pcs: &[u64]) -> Vec<String> {
    let mut frames: Vec<String> = pcs
        .iter()
        .take_while(|&&pc| pc != 0)
        .map(|&pc| match kind {
            StackKind::Kernel => frame_text(sym.lookup_kernel(pc), pc, false, false),
            StackKind::User { pid } => frame_text(sym.lookup_user(pid, pc), pc, true, false),
        })
        .collect();
    frames.reverse();
    frames
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny table-driven symbolizer for tests.
    pub struct TableSymbols;

    impl Symbolizer for TableSymbols {
        fn lookup_kernel(&self, pc: u64) -> Option<SymbolInfo> {
            match pc {
                0x1000..=0x10ff => Some(SymbolInfo {
                    object: "kernel".into(),
                    symbol: Some(("vm_fault".into(), 0x1000)),
                }),
                0x2000..=0x2fff => Some(SymbolInfo {
                    object: "zfs.ko".into(),
                    symbol: None,
                }),
                _ => None,
            }
        }
        fn lookup_user(&self, _pid: u64, pc: u64) -> Option<SymbolInfo> {
            match pc {
                0x400000..=0x4000ff => Some(SymbolInfo {
                    object: "/lib/libc.so.7".into(),
                    symbol: Some(("read".into(), 0x400000)),
                }),
                _ => None,
            }
        }
    }

    #[test]
    fn kernel_stack_layout() {
        let mut out = Vec::new();
        print_stack(
            &mut out,
            &TableSymbols,
            StackKind::Kernel,
            &[0x1010, 0x1000, 0x2010, 0x9, 0, 0x1010],
            None,
            14,
            &Spec::default(),
        );
        let expect = "\n              kernel`vm_fault+0x10\n              kernel`vm_fault\n              zfs.ko`0x2010\n              0x9\n";
        assert_eq!(String::from_utf8(out).unwrap(), expect);
    }

    #[test]
    fn user_frames_use_basename_and_helper_strings() {
        let mut out = Vec::new();
        print_stack(
            &mut out,
            &TableSymbols,
            StackKind::User { pid: 7 },
            &[0x400004, 0x7777],
            Some(b"\0@annot\0"),
            2,
            &Spec::default(),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\n  libc.so.7`read+0x4\n  0x7777\n    [ annot ]\n"
        );
        assert_eq!(user_mod_text(&TableSymbols, 1, 0x400001), "libc.so.7");
        assert_eq!(kernel_sym_text(&TableSymbols, 0x1010), "kernel`vm_fault");
        assert_eq!(kernel_mod_text(&TableSymbols, 0x5), "0x5");
    }
}
