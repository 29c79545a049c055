//! Builds DOF images by hand (no compiler): sections, DIFOs, probe, action
//! and ECB descriptions, options — the byte layouts of abi-facts §3.
#![allow(dead_code)]

pub const SECT_ECBDESC: u32 = 3;
pub const SECT_PROBEDESC: u32 = 4;
pub const SECT_ACTDESC: u32 = 5;
pub const SECT_DIFOHDR: u32 = 6;
pub const SECT_DIF: u32 = 7;
pub const SECT_STRTAB: u32 = 8;
pub const SECT_VARTAB: u32 = 9;
pub const SECT_OPTDESC: u32 = 14;
pub const SECT_INTTAB: u32 = 19;
pub const NONE: u32 = 0xffff_ffff;

/// DIF opcodes used by the tests.
pub mod op {
    pub const OR: u32 = 1;
    pub const ADD: u32 = 7;
    pub const SUB: u32 = 6;
    pub const SDIV: u32 = 9;
    pub const CMP: u32 = 15;
    pub const TST: u32 = 16;
    pub const BE: u32 = 18;
    pub const BNE: u32 = 19;
    pub const LDX: u32 = 34;
    pub const RET: u32 = 35;
    pub const SETX: u32 = 37;
    pub const SETS: u32 = 38;
    pub const LDGS: u32 = 41;
    pub const STGS: u32 = 42;
    pub const CALL: u32 = 47;
    pub const LDTS: u32 = 44;
    pub const STTS: u32 = 45;
}

pub fn r3(op: u32, r1: u32, r2: u32, rd: u32) -> u32 {
    (op << 24) | (r1 << 16) | (r2 << 8) | rd
}
pub fn imm(op: u32, idx: u32, rd: u32) -> u32 {
    (op << 24) | (idx << 8) | rd
}
pub fn ret(rd: u32) -> u32 {
    (op::RET << 24) | rd
}
pub fn br(op: u32, label: u32) -> u32 {
    (op << 24) | label
}

/// A DIF object before encoding.
#[derive(Clone, Debug, Default)]
pub struct Dif {
    pub text: Vec<u32>,
    pub ints: Vec<u64>,
    pub strtab: Vec<u8>,
    /// (name, id, kind, scope, flags, type bytes)
    pub vars: Vec<[u8; 20]>,
    /// dtrace_diftype_t: kind, ckind, flags, pad, size
    pub rtype: [u8; 8],
}

pub fn ctf_type(size: u32) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[4..8].copy_from_slice(&size.to_ne_bytes());
    t
}

pub fn string_type(size: u32) -> [u8; 8] {
    let mut t = [1u8, 0, 1, 0, 0, 0, 0, 0];
    t[4..8].copy_from_slice(&size.to_ne_bytes());
    t
}

impl Dif {
    /// `return <constant>` (8 bytes).
    pub fn constant(v: u64) -> Dif {
        Dif {
            text: vec![imm(op::SETX, 0, 1), ret(1)],
            ints: vec![v],
            rtype: ctf_type(8),
            ..Default::default()
        }
    }
    /// `return <constant>` as a `size`-byte integer.
    pub fn constant_sized(v: u64, size: u32) -> Dif {
        Dif {
            rtype: ctf_type(size),
            ..Dif::constant(v)
        }
    }
    /// `return <built-in variable>` (e.g. 0x106 = arg0, 0x101 = timestamp).
    pub fn var(id: u32) -> Dif {
        Dif {
            text: vec![imm(op::LDGS, id, 1), ret(1)],
            rtype: ctf_type(8),
            ..Default::default()
        }
    }
    /// `return "<s>"` as a string of `size` bytes.
    pub fn string(s: &str) -> Dif {
        let mut strtab = s.as_bytes().to_vec();
        strtab.push(0);
        Dif {
            text: vec![imm(op::SETS, 0, 1), ret(1)],
            strtab,
            rtype: string_type(0),
            ..Default::default()
        }
    }
    /// `return 1 / 0` (DIVZERO at DIF offset 8).
    pub fn divzero() -> Dif {
        Dif {
            text: vec![imm(op::SETX, 0, 1), r3(op::SDIV, 1, 0, 2), ret(2)],
            ints: vec![1],
            rtype: ctf_type(8),
            ..Default::default()
        }
    }
    /// `return *(uint64_t *)<addr>` (BADADDR for a bad address).
    pub fn load(addr: u64) -> Dif {
        Dif {
            text: vec![imm(op::SETX, 0, 1), r3(op::LDX, 1, 0, 2), ret(2)],
            ints: vec![addr],
            rtype: ctf_type(8),
            ..Default::default()
        }
    }
    /// `return arg0 == v` (a predicate).
    pub fn arg0_equals(v: u64) -> Dif {
        Dif {
            text: vec![
                imm(op::LDGS, 0x106, 1),
                imm(op::SETX, 0, 2),
                r3(op::CMP, 1, 2, 0),
                br(op::BE, 6),
                imm(op::SETX, 1, 3),
                ret(3),
                imm(op::SETX, 2, 3),
                ret(3),
            ],
            ints: vec![v, 0, 1],
            rtype: ctf_type(8),
            ..Default::default()
        }
    }
}

/// One action description.
#[derive(Clone, Debug)]
pub struct Act {
    pub kind: u16,
    pub dif: Option<Dif>,
    pub ntuple: u32,
    pub arg: u64,
    pub format: Option<String>,
    pub uarg: u64,
}

impl Act {
    pub fn new(kind: u16, dif: Option<Dif>) -> Act {
        Act {
            kind,
            dif,
            ntuple: 0,
            arg: 0,
            format: None,
            uarg: 0,
        }
    }
    pub fn trace(dif: Dif) -> Act {
        Act::new(1, Some(dif))
    }
    pub fn exit(code: u64) -> Act {
        Act::new(2, Some(Dif::constant_sized(code, 4)))
    }
    pub fn printf(fmt: &str, args: Vec<Dif>) -> Vec<Act> {
        let mut v = Vec::new();
        let mut first = Act::new(3, args.first().cloned());
        first.format = Some(fmt.into());
        v.push(first);
        // Every printf action carries the format (FreeBSD requires the
        // string table for each printf-like action).
        for a in args.into_iter().skip(1) {
            let mut x = Act::new(3, Some(a));
            x.format = Some(fmt.into());
            v.push(x);
        }
        v
    }
    /// An aggregation: varid tuple entry, keys, then the aggregating action.
    pub fn aggregation(
        kind: u16,
        varid: u64,
        keys: Vec<Dif>,
        value: Option<Dif>,
        arg: u64,
    ) -> Vec<Act> {
        let mut v = vec![Act::trace(Dif::constant(varid))];
        let n = 1 + keys.len() as u32;
        v.extend(keys.into_iter().map(Act::trace));
        let mut a = Act::new(kind, value);
        a.ntuple = n;
        a.arg = arg;
        v.push(a);
        v
    }
}

/// One clause: probe description, predicate, actions.
#[derive(Clone, Debug)]
pub struct Clause {
    pub probe: [String; 4],
    pub pred: Option<Dif>,
    pub acts: Vec<Act>,
    pub uarg: u64,
}

impl Clause {
    pub fn new(probe: &str, acts: Vec<Act>) -> Clause {
        let parts: Vec<&str> = probe.split(':').collect();
        let get = |i: usize| parts.get(i).copied().unwrap_or("").to_string();
        Clause {
            probe: [get(0), get(1), get(2), get(3)],
            pred: None,
            acts,
            uarg: 0,
        }
    }
    pub fn when(mut self, pred: Dif) -> Clause {
        self.pred = Some(pred);
        self
    }
}

struct Sec {
    kind: u32,
    align: u32,
    flags: u32,
    entsize: u32,
    data: Vec<u8>,
}

/// Accumulates sections, then lays out a DOF file.
#[derive(Default)]
pub struct DofBuilder {
    secs: Vec<Sec>,
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

impl DofBuilder {
    pub fn new() -> DofBuilder {
        DofBuilder::default()
    }

    pub fn add(&mut self, kind: u32, align: u32, entsize: u32, data: Vec<u8>) -> u32 {
        self.secs.push(Sec {
            kind,
            align,
            flags: 1,
            entsize,
            data,
        });
        (self.secs.len() - 1) as u32
    }

    pub fn difo(&mut self, d: &Dif) -> u32 {
        let mut links = Vec::new();
        links.push(self.add(SECT_DIF, 4, 4, u32s(&d.text)));
        if !d.ints.is_empty() {
            links.push(self.add(
                SECT_INTTAB,
                8,
                8,
                d.ints.iter().flat_map(|x| x.to_ne_bytes()).collect(),
            ));
        }
        if !d.strtab.is_empty() {
            links.push(self.add(SECT_STRTAB, 1, 0, d.strtab.clone()));
        }
        if !d.vars.is_empty() {
            links.push(self.add(
                SECT_VARTAB,
                4,
                20,
                d.vars.iter().flatten().copied().collect(),
            ));
        }
        let mut hdr = d.rtype.to_vec();
        hdr.extend(u32s(&links));
        self.add(SECT_DIFOHDR, 4, 0, hdr)
    }

    pub fn clause(&mut self, c: &Clause) -> u32 {
        let mut st = vec![0u8];
        let mut offs = [0u32; 4];
        for (i, s) in c.probe.iter().enumerate() {
            offs[i] = st.len() as u32;
            st.extend_from_slice(s.as_bytes());
            st.push(0);
        }
        let mut fmts = Vec::new();
        for a in &c.acts {
            if let Some(f) = &a.format {
                fmts.push(st.len() as u64);
                st.extend_from_slice(f.as_bytes());
                st.push(0);
            } else {
                fmts.push(0);
            }
        }
        let strtab = self.add(SECT_STRTAB, 1, 0, st);
        let mut pd = vec![strtab];
        pd.extend_from_slice(&offs);
        pd.push(0);
        let probes = self.add(SECT_PROBEDESC, 4, 0, u32s(&pd));
        let pred = c.pred.as_ref().map(|d| self.difo(d)).unwrap_or(NONE);
        let mut acts = Vec::new();
        for (a, f) in c.acts.iter().zip(fmts) {
            let difo = a.dif.as_ref().map(|d| self.difo(d)).unwrap_or(NONE);
            let (st_idx, arg) = if a.format.is_some() {
                (strtab, f)
            } else {
                (NONE, a.arg)
            };
            acts.extend(u32s(&[difo, st_idx, u32::from(a.kind), a.ntuple]));
            acts.extend(arg.to_ne_bytes());
            acts.extend(a.uarg.to_ne_bytes());
        }
        let actions = if acts.is_empty() {
            NONE
        } else {
            self.add(SECT_ACTDESC, 8, 32, acts)
        };
        let mut e = u32s(&[probes, pred, actions, 0]);
        e.extend(c.uarg.to_ne_bytes());
        self.add(SECT_ECBDESC, 8, 0, e)
    }

    pub fn option(&mut self, opt: u32, value: i64) -> u32 {
        let mut d = u32s(&[opt, NONE]);
        d.extend(value.to_ne_bytes());
        self.add(SECT_OPTDESC, 8, 16, d)
    }

    /// Lays the file out: header, section table, section data (aligned).
    pub fn build(&self) -> Vec<u8> {
        let n = self.secs.len();
        let mut out = vec![0u8; 64 + 32 * n];
        let mut offsets = Vec::new();
        for s in &self.secs {
            let align = s.align.max(8) as usize;
            while out.len() % align != 0 {
                out.push(0);
            }
            offsets.push(out.len());
            out.extend_from_slice(&s.data);
        }
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let len = out.len() as u64;
        out[0..10].copy_from_slice(&[0x7f, b'D', b'O', b'F', 2, 1, 2, 2, 8, 8]);
        out[20..24].copy_from_slice(&64u32.to_ne_bytes());
        out[24..28].copy_from_slice(&32u32.to_ne_bytes());
        out[28..32].copy_from_slice(&(n as u32).to_ne_bytes());
        out[32..40].copy_from_slice(&64u64.to_ne_bytes());
        out[40..48].copy_from_slice(&len.to_ne_bytes());
        out[48..56].copy_from_slice(&len.to_ne_bytes());
        for (i, s) in self.secs.iter().enumerate() {
            let h = 64 + 32 * i;
            out[h..h + 4].copy_from_slice(&s.kind.to_ne_bytes());
            out[h + 4..h + 8].copy_from_slice(&s.align.to_ne_bytes());
            out[h + 8..h + 12].copy_from_slice(&s.flags.to_ne_bytes());
            out[h + 12..h + 16].copy_from_slice(&s.entsize.to_ne_bytes());
            out[h + 16..h + 24].copy_from_slice(&(offsets[i] as u64).to_ne_bytes());
            out[h + 24..h + 32].copy_from_slice(&(s.data.len() as u64).to_ne_bytes());
        }
        out
    }
}

/// A DOF with the given clauses and options.
pub fn dof(clauses: &[Clause], options: &[(u32, i64)]) -> Vec<u8> {
    let mut b = DofBuilder::new();
    for c in clauses {
        b.clause(c);
    }
    for &(o, v) in options {
        b.option(o, v);
    }
    b.build()
}
