//! DOF loading for enablings (`DTRACEIOC_ENABLE`) and helpers: header,
//! section table, relocations, ECB/probe/action descriptions, DIFOs and
//! options, validated as abi-facts §3.4 lists. A rejected DOF yields a
//! [`DofError`] whose message the consumer can read back
//! (`last_dof_error`); nothing here panics on any input.
//!
//! Probe context: no (allocates).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::abi::*;
use crate::bytes::{get_u16, get_u32, get_u64, put_u64};
use crate::dif::difo::{Difo, TypeDesc, VarDesc};

/// Why a DOF was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DofError(pub String);

type R<T> = Result<T, DofError>;

fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(DofError(msg.into()))
}

/// An owned probe description (glob patterns allowed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeSpec {
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
}

/// One action description (`dtrace_actdesc_t`).
#[derive(Clone, Debug)]
pub struct ActDesc {
    pub kind: u16,
    pub difo: Option<Arc<Difo>>,
    /// The format string (printf-like actions, DIFEXPR with a strtab).
    pub format: Option<Box<[u8]>>,
    pub arg: u64,
    pub uarg: u64,
    pub ntuple: u32,
}

/// One ECB description (`dtrace_ecbdesc_t`).
#[derive(Clone, Debug)]
pub struct EcbDesc {
    pub probe: ProbeSpec,
    pub predicate: Option<Arc<Difo>>,
    pub actions: Vec<ActDesc>,
    pub uarg: u64,
}

/// A DOF that passed validation.
#[derive(Debug, Default)]
pub struct Enabling {
    pub ecbs: Vec<EcbDesc>,
    /// (option index, value) pairs from OPTDESC sections, in order.
    pub options: Vec<(u32, u64)>,
}

#[derive(Clone, Copy, Debug)]
struct Sec {
    kind: u32,
    align: u32,
    flags: u32,
    entsize: u32,
    offset: u64,
    size: u64,
}

struct Dof<'a> {
    data: &'a [u8],
    secs: Vec<Sec>,
    strsize: u64,
}

impl<'a> Dof<'a> {
    /// `dtrace_dof_sect`: section `i`, which must be loadable and (unless
    /// `kind` is NONE) of type `kind`.
    fn sect(&self, kind: u32, i: u32) -> R<Sec> {
        let Some(s) = self.secs.get(i as usize).copied() else {
            return fail(format!("referenced section index {i} is invalid"));
        };
        if s.flags & DOF_SECF_LOAD == 0 {
            return fail(format!("referenced section {i} is not loadable"));
        }
        if kind != DOF_SECT_NONE && kind != s.kind {
            return fail(format!(
                "referenced section {i} is the wrong type ({} not {kind})",
                s.kind
            ));
        }
        Ok(s)
    }

    fn bytes(&self, s: &Sec) -> &'a [u8] {
        // Bounds were checked against loadsz when the table was read.
        let start = s.offset as usize;
        self.data
            .get(start..start.saturating_add(s.size as usize))
            .unwrap_or(&[])
    }

    /// A NUL-terminated string at `off` of string table `strtab`, truncated
    /// to `max - 1` bytes.
    fn string(&self, strtab: &Sec, off: u32, what: &str, max: usize) -> R<String> {
        let t = self.bytes(strtab);
        if off as usize >= t.len() {
            return fail(format!("corrupt probe {what}"));
        }
        let rest = t.get(off as usize..).unwrap_or(&[]);
        let len = rest
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(rest.len())
            .min(max - 1);
        let s = rest.get(..len).unwrap_or(&[]);
        match core::str::from_utf8(s) {
            Ok(v) => Ok(v.into()),
            Err(_) => fail(format!("probe {what} is not valid UTF-8")),
        }
    }
}

/// Reads and checks the 64-byte header; returns `loadsz`. Used by the ioctl
/// to know how much to copy in (`dtrace_dof_copyin`).
pub fn header_loadsz(hdr: &[u8]) -> Result<usize, (crate::platform::Errno, DofError)> {
    use crate::platform::Errno;
    let loadsz = get_u64(hdr, 40).unwrap_or(0);
    if loadsz >= DOF_MAXSIZE {
        return Err((Errno::E2BIG, DofError("load size exceeds maximum".into())));
    }
    if loadsz < DOF_HDR_SIZE as u64 {
        return Err((Errno::EINVAL, DofError("invalid load size".into())));
    }
    Ok(loadsz as usize)
}

/// Validates a DOF image (`data` = exactly its `loadsz` bytes, relocated in
/// place) and extracts its enabling. `for_enable` rejects provider sections;
/// `ubase`/`udaddr` are added by SETX/DOFREL relocations. `strsize` sizes
/// string variables declared with size 0.
pub fn load(
    data: &mut [u8],
    for_enable: bool,
    ubase: u64,
    udaddr: u64,
    strsize: u64,
) -> R<Enabling> {
    let loadsz = data.len() as u64;
    if data.len() < DOF_HDR_SIZE {
        return fail("truncated header");
    }
    let b = |i: usize| data.get(i).copied().unwrap_or(0);
    if b(0) != 0x7f || b(1) != b'D' || b(2) != b'O' || b(3) != b'F' {
        return fail("DOF magic string mismatch");
    }
    if b(4) != DOF_MODEL_ILP32 && b(4) != DOF_MODEL_LP64 {
        return fail("DOF has invalid data model");
    }
    if b(5) != DOF_ENCODE_NATIVE {
        return fail("DOF encoding mismatch");
    }
    if b(6) != DOF_VERSION_1 && b(6) != DOF_VERSION_2 {
        return fail("DOF version mismatch");
    }
    if b(7) != DIF_VERSION {
        return fail("DOF uses unsupported instruction set");
    }
    if b(8) > DIF_DIR_NREGS {
        return fail("DOF uses too many integer registers");
    }
    if b(9) > DIF_DTR_NREGS {
        return fail("DOF uses too many tuple registers");
    }
    if (10..16).any(|i| b(i) != 0) {
        return fail("DOF has invalid ident byte set");
    }
    let flags = get_u32(data, 16).unwrap_or(u32::MAX);
    if flags != 0 {
        return fail("DOF has invalid flag bits set");
    }
    let secsize = get_u32(data, 24).unwrap_or(0) as u64;
    let secnum = get_u32(data, 28).unwrap_or(0) as u64;
    let secoff = get_u64(data, 32).unwrap_or(u64::MAX);
    if secsize == 0 {
        return fail("zero section header size");
    }
    let table_len = secnum.checked_mul(secsize);
    match table_len.and_then(|l| secoff.checked_add(l)) {
        Some(end) if end <= loadsz && secoff <= loadsz => {}
        _ => return fail("truncated section headers"),
    }
    if secoff % 8 != 0 {
        return fail("misaligned section headers");
    }
    if secsize % 8 != 0 {
        return fail("misaligned section size");
    }
    if secsize < DOF_SEC_SIZE as u64 {
        return fail("section header size too small");
    }
    let mut secs = Vec::new();
    for i in 0..secnum {
        let at = (secoff + i * secsize) as usize;
        let s = Sec {
            kind: get_u32(data, at).unwrap_or(0),
            align: get_u32(data, at + 4).unwrap_or(0),
            flags: get_u32(data, at + 8).unwrap_or(0),
            entsize: get_u32(data, at + 12).unwrap_or(0),
            offset: get_u64(data, at + 16).unwrap_or(u64::MAX),
            size: get_u64(data, at + 24).unwrap_or(u64::MAX),
        };
        if for_enable
            && matches!(
                s.kind,
                DOF_SECT_PROVIDER | DOF_SECT_PROBES | DOF_SECT_PRARGS | DOF_SECT_PROFFS
            )
        {
            return fail("illegal sections for enabling");
        }
        if dof_sect_is_loadable(s.kind) && s.flags & DOF_SECF_LOAD == 0 {
            return fail(format!("loadable section {i} with load flag unset"));
        }
        if s.flags & DOF_SECF_LOAD != 0 {
            if s.align == 0 || s.align & (s.align - 1) != 0 {
                return fail(format!("bad section alignment in section {i}"));
            }
            if s.offset & u64::from(s.align - 1) != 0 {
                return fail(format!("misaligned section {i}"));
            }
            match s.offset.checked_add(s.size) {
                Some(end) if end <= loadsz => {}
                _ => return fail(format!("corrupt section header {i}")),
            }
            if s.kind == DOF_SECT_STRTAB {
                let last = s.offset.checked_add(s.size).and_then(|e| e.checked_sub(1));
                let term = last.and_then(|l| data.get(l as usize).copied());
                if s.size == 0 || term != Some(0) {
                    return fail(format!("non-terminating string table in section {i}"));
                }
            }
        }
        secs.push(s);
    }
    relocate(
        data,
        &secs,
        secoff,
        secnum.saturating_mul(secsize),
        ubase,
        udaddr,
    )?;
    let dof = Dof {
        data,
        secs,
        strsize,
    };
    let mut out = Enabling::default();
    for (i, s) in dof.secs.iter().enumerate() {
        if s.kind == DOF_SECT_ECBDESC && s.flags & DOF_SECF_LOAD != 0 {
            out.ecbs
                .push(ecbdesc(&dof, s).map_err(|e| DofError(format!("ECB section {i}: {}", e.0)))?);
        }
    }
    for s in dof
        .secs
        .iter()
        .filter(|s| s.kind == DOF_SECT_OPTDESC && s.flags & DOF_SECF_LOAD != 0)
    {
        options(&dof, s, &mut out.options)?;
    }
    Ok(out)
}

fn relocate(
    data: &mut [u8],
    secs: &[Sec],
    secoff: u64,
    table_len: u64,
    ubase: u64,
    udaddr: u64,
) -> R<()> {
    for s in secs
        .iter()
        .filter(|s| s.kind == DOF_SECT_URELHDR && s.flags & DOF_SECF_LOAD != 0)
    {
        if s.align != 4 || s.size < 12 {
            return fail("bad relocation header");
        }
        let at = s.offset as usize;
        let strtab_i = get_u32(data, at).unwrap_or(u32::MAX);
        let rel_i = get_u32(data, at + 4).unwrap_or(u32::MAX);
        let tgt_i = get_u32(data, at + 8).unwrap_or(u32::MAX);
        let get = |i: u32, kind: u32, what: &str| -> R<Sec> {
            match secs.get(i as usize) {
                Some(x)
                    if x.flags & DOF_SECF_LOAD != 0
                        && (kind == DOF_SECT_NONE || x.kind == kind) =>
                {
                    Ok(*x)
                }
                _ => fail(format!("bad relocation {what} section {i}")),
            }
        };
        let _strtab = get(strtab_i, DOF_SECT_STRTAB, "string table")?;
        let rel = get(rel_i, DOF_SECT_RELTAB, "table")?;
        let tgt = get(tgt_i, DOF_SECT_NONE, "target")?;
        if rel.align != 8 || rel.entsize < 24 {
            return fail("bad relocation table alignment or entry size");
        }
        let n = rel.size / u64::from(rel.entsize);
        for k in 0..n {
            let r = (rel.offset + k * u64::from(rel.entsize)) as usize;
            let kind = get_u32(data, r + 4).unwrap_or(u32::MAX);
            let offset = get_u64(data, r + 8).unwrap_or(u64::MAX);
            let add = match kind {
                DOF_RELO_NONE => continue,
                DOF_RELO_SETX => ubase,
                DOF_RELO_DOFREL => udaddr,
                _ => return fail(format!("invalid relocation type {kind}")),
            };
            let in_range = offset.checked_add(8).is_some_and(|e| e <= tgt.size);
            if !in_range {
                return fail("bad relocation offset");
            }
            let taddr = tgt.offset + offset;
            if taddr % 8 != 0 {
                return fail("misaligned setx relo");
            }
            let hits_headers = taddr < DOF_HDR_SIZE as u64
                || (taddr + 8 > secoff && taddr < secoff.saturating_add(table_len));
            if hits_headers {
                return fail("relocation target overlaps DOF headers");
            }
            let v = get_u64(data, taddr as usize).unwrap_or(0).wrapping_add(add);
            if !put_u64(data, taddr as usize, v) {
                return fail("bad relocation offset");
            }
        }
    }
    Ok(())
}

fn ecbdesc(dof: &Dof<'_>, s: &Sec) -> R<EcbDesc> {
    if s.align != 8 {
        return fail("bad alignment in ECB description");
    }
    if s.size < 24 {
        return fail("truncated ECB description");
    }
    let d = dof.bytes(s);
    let probes_i = get_u32(d, 0).unwrap_or(u32::MAX);
    let pred_i = get_u32(d, 4).unwrap_or(u32::MAX);
    let acts_i = get_u32(d, 8).unwrap_or(u32::MAX);
    let uarg = get_u64(d, 16).unwrap_or(0);
    let probe = probedesc(dof, &dof.sect(DOF_SECT_PROBEDESC, probes_i)?)?;
    let predicate = if pred_i != DOF_SECIDX_NONE {
        let p = difo(dof, &dof.sect(DOF_SECT_DIFOHDR, pred_i)?)?;
        Some(Arc::new(p))
    } else {
        None
    };
    let actions = if acts_i != DOF_SECIDX_NONE {
        actdescs(dof, &dof.sect(DOF_SECT_ACTDESC, acts_i)?)?
    } else {
        Vec::new()
    };
    Ok(EcbDesc {
        probe,
        predicate,
        actions,
        uarg,
    })
}

fn probedesc(dof: &Dof<'_>, s: &Sec) -> R<ProbeSpec> {
    if s.align != 4 {
        return fail("bad alignment in probe description");
    }
    if s.size < 24 {
        return fail("truncated probe description");
    }
    let d = dof.bytes(s);
    let strtab = dof.sect(DOF_SECT_STRTAB, get_u32(d, 0).unwrap_or(u32::MAX))?;
    let f = |i: usize| get_u32(d, i).unwrap_or(u32::MAX);
    Ok(ProbeSpec {
        provider: dof.string(&strtab, f(4), "provider", DTRACE_PROVNAMELEN)?,
        module: dof.string(&strtab, f(8), "module", DTRACE_MODNAMELEN)?,
        function: dof.string(&strtab, f(12), "function", DTRACE_FUNCNAMELEN)?,
        name: dof.string(&strtab, f(16), "name", DTRACE_NAMELEN)?,
    })
}

#[allow(clippy::field_reassign_with_default)]
fn diftype(b: &[u8], at: usize) -> TypeDesc {
    // Built field by field so reserved fields keep their default (zero).
    let mut t = TypeDesc::default();
    t.kind = b.get(at).copied().unwrap_or(0xff);
    t.ckind = b.get(at + 1).copied().unwrap_or(0);
    t.flags = b.get(at + 2).copied().unwrap_or(0);
    t.size = get_u32(b, at + 4).unwrap_or(0);
    t
}

/// `dtrace_dof_difo`: a DIFO from a DIFOHDR section and its subsections.
fn difo(dof: &Dof<'_>, s: &Sec) -> R<Difo> {
    if s.align != 4 {
        return fail("bad alignment in DIF header");
    }
    if s.size < 12 || (s.size - 12) % 4 != 0 {
        return fail("bad size in DIF header");
    }
    let h = dof.bytes(s);
    let mut rtype = diftype(h, 0);
    let nlinks = ((s.size - 8) / 4) as usize;
    let mut text: Option<Vec<u32>> = None;
    let mut inttab: Option<Vec<u64>> = None;
    let mut strtab: Option<Vec<u8>> = None;
    let mut vartab: Option<Vec<VarDesc>> = None;
    let mut total: usize = 0;
    for l in 0..nlinks {
        let idx = get_u32(h, 8 + 4 * l).unwrap_or(u32::MAX);
        let sub = dof.sect(DOF_SECT_NONE, idx)?;
        let (align, entsize, what) = match sub.kind {
            DOF_SECT_DIF => (4, 4, "DIF"),
            DOF_SECT_INTTAB => (8, 8, "integer table"),
            DOF_SECT_STRTAB => (1, 0, "string table"),
            DOF_SECT_VARTAB => (4, 20, "variable table"),
            k => return fail(format!("unrecognized DIFO subsection type {k}")),
        };
        if sub.align != align {
            return fail(format!("bad alignment in DIFO {what}"));
        }
        if sub.entsize != entsize {
            return fail(format!("entry size mismatch in DIFO {what}"));
        }
        if entsize != 0 && sub.size % u64::from(entsize) != 0 {
            return fail(format!("corrupt entry size in DIFO {what}"));
        }
        total = total.saturating_add(sub.size as usize);
        if total > DIFO_MAXSIZE {
            return fail("DIFO exceeds maximum size");
        }
        let d = dof.bytes(&sub);
        match sub.kind {
            DOF_SECT_DIF => {
                if text.is_some() {
                    return fail("multiple DIF sections");
                }
                text = Some(
                    d.chunks_exact(4)
                        .map(|c| get_u32(c, 0).unwrap_or(0))
                        .collect(),
                );
            }
            DOF_SECT_INTTAB => {
                if inttab.is_some() {
                    return fail("multiple integer tables");
                }
                inttab = Some(
                    d.chunks_exact(8)
                        .map(|c| get_u64(c, 0).unwrap_or(0))
                        .collect(),
                );
            }
            DOF_SECT_STRTAB => {
                if strtab.is_some() {
                    return fail("multiple string tables");
                }
                strtab = Some(d.to_vec());
            }
            _ => {
                if vartab.is_some() {
                    return fail("multiple variable tables");
                }
                let mut v = Vec::new();
                for c in d.chunks_exact(20) {
                    let mut ty = diftype(c, 12);
                    if ty.kind == DIF_TYPE_STRING && ty.size == 0 {
                        ty.size = dof.strsize.min(u64::from(u32::MAX)) as u32;
                    }
                    v.push(VarDesc {
                        name: get_u32(c, 0).unwrap_or(0),
                        id: get_u32(c, 4).unwrap_or(0),
                        kind: c.get(8).copied().unwrap_or(0xff),
                        scope: c.get(9).copied().unwrap_or(0xff),
                        flags: get_u16(c, 10).unwrap_or(0),
                        ty,
                    });
                }
                vartab = Some(v);
            }
        }
    }
    let Some(text) = text else {
        return fail("missing DIF text");
    };
    if rtype.kind == DIF_TYPE_STRING && rtype.size == 0 && rtype.flags & DIF_TF_BYREF != 0 {
        // String results are sized by the consumer's strsize.
        rtype.size = 0;
    }
    Difo::from_parts(
        text,
        inttab.unwrap_or_default(),
        strtab.unwrap_or_default(),
        &vartab.unwrap_or_default(),
        rtype,
    )
    .map_err(|e| DofError(format!("invalid DIF: {e}")))
}

fn actdescs(dof: &Dof<'_>, s: &Sec) -> R<Vec<ActDesc>> {
    if s.align != 8 {
        return fail("bad alignment in action description");
    }
    if s.size < 32 {
        return fail("truncated action description");
    }
    if s.entsize != 32 {
        return fail("bad entry size in action description");
    }
    let n = (s.size / 32) as usize;
    if n > ACTIONS_MAX {
        return fail("too many actions in action description");
    }
    let d = dof.bytes(s);
    let mut out = Vec::new();
    for i in 0..n {
        let a = d.get(i * 32..i * 32 + 32).unwrap_or(&[]);
        let difo_i = get_u32(a, 0).unwrap_or(u32::MAX);
        let strtab_i = get_u32(a, 4).unwrap_or(u32::MAX);
        let kind32 = get_u32(a, 8).unwrap_or(u32::MAX);
        let ntuple = get_u32(a, 12).unwrap_or(0);
        let mut arg = get_u64(a, 16).unwrap_or(0);
        let uarg = get_u64(a, 24).unwrap_or(0);
        let Ok(kind) = u16::try_from(kind32) else {
            return fail(format!("invalid action kind {kind32:#x}"));
        };
        let mut format = None;
        let wants_string = (act_is_printflike(kind)
            && (kind != DTRACEACT_PRINTA || strtab_i != DOF_SECIDX_NONE))
            || (kind == DTRACEACT_DIFEXPR && strtab_i != DOF_SECIDX_NONE);
        if wants_string {
            let st = dof.sect(DOF_SECT_STRTAB, strtab_i)?;
            let t = dof.bytes(&st);
            if arg >= t.len() as u64 {
                return fail("bogus format string");
            }
            let rest = t.get(arg as usize..).unwrap_or(&[]);
            let Some(len) = rest.iter().position(|&c| c == 0) else {
                return fail("unterminated format string");
            };
            if len == 0 {
                return fail("empty format string");
            }
            let mut f: Vec<u8> = rest.get(..=len).unwrap_or(&[]).to_vec();
            if f.last() != Some(&0) {
                f.push(0);
            }
            format = Some(f.into_boxed_slice());
            arg = 0;
        } else if kind == DTRACEACT_PRINTA {
            arg = 0;
        }
        let difo = if difo_i != DOF_SECIDX_NONE {
            Some(Arc::new(difo(dof, &dof.sect(DOF_SECT_DIFOHDR, difo_i)?)?))
        } else {
            None
        };
        out.push(ActDesc {
            kind,
            difo,
            format,
            arg,
            uarg,
            ntuple,
        });
    }
    Ok(out)
}

fn options(dof: &Dof<'_>, s: &Sec, out: &mut Vec<(u32, u64)>) -> R<()> {
    if s.align != 8 {
        return fail("bad alignment in option description");
    }
    if s.entsize == 0 {
        return fail("zeroed option entry size");
    }
    if s.entsize < 16 {
        return fail("bad option entry size");
    }
    let d = dof.bytes(s);
    let mut off = 0usize;
    while off.saturating_add(16) <= d.len() {
        let opt = get_u32(d, off).unwrap_or(u32::MAX);
        let strtab = get_u32(d, off + 4).unwrap_or(0);
        let value = get_u64(d, off + 8).unwrap_or(0);
        if strtab != DOF_SECIDX_NONE {
            return fail("non-zero option string");
        }
        if value as i64 == DTRACEOPT_UNSET {
            return fail("unset option");
        }
        out.push((opt, value));
        off = off.saturating_add(s.entsize as usize);
    }
    Ok(())
}
