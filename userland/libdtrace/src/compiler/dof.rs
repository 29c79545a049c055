//! DOF emission: lowered ECBs and options to a DOF image the kernel's `DTRACEIOC_ENABLE`
//! accepts (layout and validation rules in abi-facts.md §3), using ffi's DOF structs.
//!
//! Layout: header, then every section's data (each aligned as the kernel requires), then the
//! section header table; every section is loadable, so `loadsz == filesz`. One string table holds
//! probe-description fields and printf formats; each DIFO has its own DIF/INTTAB/STRTAB/VARTAB
//! sections linked from its DIFOHDR. A clause with several probe descriptions becomes one
//! ECBDESC per description sharing the predicate and action sections. Userland only.

use rdtrace_ffi::dif::DifVar;
use rdtrace_ffi::dof::{
    DofActDesc, DofEcbDesc, DofHdr, DofOptDesc, DofProbeDesc, DofSec, DofSecType, DOF_SECF_LOAD,
    DOF_SECIDX_NONE,
};
use rdtrace_ffi::pod::Pod;

use super::codegen::{Difo, EcbOut};

struct Section {
    ty: DofSecType,
    align: u32,
    entsize: u32,
    data: Vec<u8>,
}

/// Accumulates sections.
struct Writer {
    secs: Vec<Section>,
    /// The shared string table's data (section index `strtab_idx`).
    strings: Vec<u8>,
    strtab_idx: u32,
}

impl Writer {
    fn add(&mut self, ty: DofSecType, align: u32, entsize: u32, data: Vec<u8>) -> u32 {
        self.secs.push(Section {
            ty,
            align,
            entsize,
            data,
        });
        (self.secs.len() - 1) as u32
    }

    fn string(&mut self, s: &str) -> u32 {
        // Offset 0 is the empty string.
        if s.is_empty() {
            return 0;
        }
        let bytes = s.as_bytes();
        let mut i = 1;
        while i < self.strings.len() {
            let end = self.strings[i..]
                .iter()
                .position(|b| *b == 0)
                .map_or(self.strings.len(), |p| i + p);
            if &self.strings[i..end] == bytes {
                return i as u32;
            }
            i = end + 1;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(bytes);
        self.strings.push(0);
        off
    }

    fn difo(&mut self, d: &Difo) -> u32 {
        let mut links = Vec::new();
        let mut text = Vec::with_capacity(d.text.len() * 4);
        for w in &d.text {
            text.extend_from_slice(&w.to_ne_bytes());
        }
        links.push(self.add(DofSecType::Dif, 4, 4, text));
        if !d.ints.is_empty() {
            let mut b = Vec::new();
            for v in &d.ints {
                b.extend_from_slice(&v.to_ne_bytes());
            }
            links.push(self.add(DofSecType::IntTab, 8, 8, b));
        }
        if !d.strtab.is_empty() {
            links.push(self.add(DofSecType::StrTab, 1, 0, d.strtab.clone()));
        }
        if !d.vars.is_empty() {
            let mut b = Vec::new();
            for v in &d.vars {
                b.extend_from_slice(v.as_bytes());
            }
            links.push(self.add(
                DofSecType::VarTab,
                4,
                core::mem::size_of::<DifVar>() as u32,
                b,
            ));
        }
        let mut hdr = Vec::new();
        hdr.extend_from_slice(d.rtype.as_bytes());
        for l in links {
            hdr.extend_from_slice(&l.to_ne_bytes());
        }
        self.add(DofSecType::DifoHdr, 4, 0, hdr)
    }
}

/// An option for the OPTDESC section: kernel option index and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DofOption {
    pub option: u32,
    pub value: u64,
}

/// Emits the DOF image for the program's ECBs and run-time options.
pub fn emit(ecbs: &[EcbOut], options: &[DofOption], int_regs: u8, tuple_regs: u8) -> Vec<u8> {
    let mut w = Writer {
        secs: Vec::new(),
        strings: vec![0],
        strtab_idx: 0,
    };
    // Section 0: the shared string table (its data is filled in at the end).
    w.strtab_idx = w.add(DofSecType::StrTab, 1, 0, Vec::new());
    for (ecb_index, ecb) in ecbs.iter().enumerate() {
        let pred = ecb
            .predicate
            .as_ref()
            .map(|p| w.difo(p))
            .unwrap_or(DOF_SECIDX_NONE);
        let actions = if ecb.actions.is_empty() {
            DOF_SECIDX_NONE
        } else {
            let mut descs = Vec::new();
            for a in &ecb.actions {
                let difo = a
                    .difo
                    .as_ref()
                    .map(|d| w.difo(d))
                    .unwrap_or(DOF_SECIDX_NONE);
                let (strtab, arg) = match &a.format {
                    Some(f) => (w.strtab_idx, u64::from(w.string(f))),
                    None => (DOF_SECIDX_NONE, a.arg),
                };
                let d = DofActDesc {
                    difo,
                    strtab,
                    kind: u32::from(a.kind),
                    ntuple: a.ntuple,
                    arg,
                    uarg: a.uarg,
                };
                descs.extend_from_slice(d.as_bytes());
            }
            w.add(DofSecType::ActDesc, 8, 32, descs)
        };
        for pd in &ecb.descs {
            let p = DofProbeDesc {
                strtab: w.strtab_idx,
                provider: w.string(&pd.provider),
                module: w.string(&pd.module),
                function: w.string(&pd.function),
                name: w.string(&pd.name),
                id: 0,
            };
            let probes = w.add(DofSecType::ProbeDesc, 4, 0, p.as_bytes().to_vec());
            let e = DofEcbDesc {
                probes,
                pred,
                actions,
                pad: 0,
                // The consumer maps an EPID back to its ECB (and so to the D
                // types of its records) through this 1-based index.
                uarg: ecb_index as u64 + 1,
            };
            w.add(DofSecType::EcbDesc, 8, 0, e.as_bytes().to_vec());
        }
    }
    if !options.is_empty() {
        let mut b = Vec::new();
        for o in options {
            let d = DofOptDesc {
                option: o.option,
                strtab: DOF_SECIDX_NONE,
                value: o.value,
            };
            b.extend_from_slice(d.as_bytes());
        }
        w.add(DofSecType::OptDesc, 8, 16, b);
    }
    let strings = std::mem::take(&mut w.strings);
    w.secs[w.strtab_idx as usize].data = strings;

    // Lay out: header, data, section headers.
    let mut out = vec![0u8; DofHdr::SIZE as usize];
    let mut headers = Vec::with_capacity(w.secs.len());
    for s in &w.secs {
        let align = s.align.max(1) as usize;
        while out.len() % align != 0 {
            out.push(0);
        }
        headers.push(DofSec {
            ty: s.ty as u32,
            align: s.align,
            flags: DOF_SECF_LOAD,
            entsize: s.entsize,
            offset: out.len() as u64,
            size: s.data.len() as u64,
        });
        out.extend_from_slice(&s.data);
    }
    while out.len() % 8 != 0 {
        out.push(0);
    }
    let secoff = out.len() as u64;
    for h in &headers {
        out.extend_from_slice(h.as_bytes());
    }
    let mut hdr = DofHdr::native(int_regs, tuple_regs);
    hdr.secnum = headers.len() as u32;
    hdr.secoff = secoff;
    hdr.loadsz = out.len() as u64;
    hdr.filesz = out.len() as u64;
    out[..DofHdr::SIZE as usize].copy_from_slice(hdr.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiler::codegen::ActionOut;
    use crate::compiler::pdesc::ProbeDesc;
    use rdtrace_ffi::dif::DifType;

    fn sections(dof: &[u8]) -> Vec<DofSec> {
        let h = DofHdr::from_bytes(dof).unwrap();
        (0..h.secnum as usize)
            .map(|i| DofSec::read_at(dof, h.secoff as usize + i * 32).unwrap())
            .collect()
    }

    #[test]
    fn round_trip_structure() {
        let difo = Difo {
            text: vec![0x2300_0000],
            ints: vec![],
            strtab: vec![],
            vars: vec![],
            rtype: DifType::default(),
        };
        let ecb = EcbOut {
            descs: vec![
                ProbeDesc {
                    provider: "dtrace".into(),
                    name: "BEGIN".into(),
                    ..Default::default()
                },
                ProbeDesc {
                    name: "END".into(),
                    ..Default::default()
                },
            ],
            predicate: None,
            actions: vec![ActionOut {
                kind: 3,
                difo: Some(difo),
                arg: 0,
                format: Some("hi %d\n".into()),
                ntuple: 0,
                uarg: 0,
                value_type: None,
            }],
            clause: 0,
        };
        let dof = emit(
            &[ecb],
            &[DofOption {
                option: 12,
                value: 1,
            }],
            8,
            8,
        );
        let h = DofHdr::from_bytes(&dof).unwrap();
        assert!(h.check_ident().is_ok());
        assert_eq!(h.loadsz as usize, dof.len());
        let secs = sections(&dof);
        let ecbs: Vec<&DofSec> = secs
            .iter()
            .filter(|s| s.ty == DofSecType::EcbDesc as u32)
            .collect();
        assert_eq!(ecbs.len(), 2);
        for s in &secs {
            assert_eq!(s.offset % u64::from(s.align), 0);
            assert!(s.offset + s.size <= h.loadsz);
        }
        // The first ECB's probe description resolves through the string table.
        let e = DofEcbDesc::read_at(&dof, ecbs[0].offset as usize).unwrap();
        let pd = DofProbeDesc::read_at(&dof, secs[e.probes as usize].offset as usize).unwrap();
        let st = &secs[pd.strtab as usize];
        let name_at = |off: u32| {
            let start = st.offset as usize + off as usize;
            let end = dof[start..].iter().position(|b| *b == 0).unwrap() + start;
            String::from_utf8(dof[start..end].to_vec()).unwrap()
        };
        assert_eq!(name_at(pd.provider), "dtrace");
        assert_eq!(name_at(pd.name), "BEGIN");
        let a = DofActDesc::read_at(&dof, secs[e.actions as usize].offset as usize).unwrap();
        assert_eq!(a.kind, 3);
        assert_eq!(name_at(a.arg as u32), "hi %d\n");
        let opt = secs
            .iter()
            .find(|s| s.ty == DofSecType::OptDesc as u32)
            .unwrap();
        let o = DofOptDesc::read_at(&dof, opt.offset as usize).unwrap();
        assert_eq!((o.option, o.value, o.strtab), (12, 1, DOF_SECIDX_NONE));
        // The strtab ends with NUL as the kernel requires.
        assert_eq!(dof[(st.offset + st.size - 1) as usize], 0);
    }
}
