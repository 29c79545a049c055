//! A validated DIF object ([`Difo`]) and the validator (abi-facts §4.6).
//!
//! `Difo::new` runs when an enabling is created (ioctl context, may allocate).
//! A `Difo` that exists has passed every check the VM relies on: register
//! numbers < 8, no writes to %r0, strictly forward branches inside the text,
//! table indices in range, only opcodes the kernel executes, a final RET, and
//! every user variable it names declared in its variable table with a scope
//! and kind that match the instruction. The VM (`vm.rs`) still never indexes
//! without `get()`, so a bug here cannot become a panic.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::abi::{op, subr, type_flags, type_kind, var as varid, var_desc};

/// Number of integer registers (`DIF_DIR_NREGS`).
pub const NREGS: u8 = 8;
/// Depth of the tuple stack (`DIF_DTR_NREGS`).
pub const TUPLE_DEPTH: usize = 8;
/// Largest DIFO accepted (text + tables), bytes (`dtrace_difo_maxsize`).
pub const MAX_DIFO_BYTES: usize = 256 * 1024;
/// Largest by-reference static variable (`dtrace_statvar_maxsize`).
pub const MAX_STATIC_BYREF: u32 = 16 * 1024;

/// A DIF type (`dtrace_diftype_t`) as the validator and VM use it (the ABI
/// struct minus its padding; converts from [`rdtrace_ffi::dif::DifType`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeDesc {
    /// `DIF_TYPE_CTF` or `DIF_TYPE_STRING`.
    pub kind: u8,
    /// CTF kind (unused by the kernel).
    pub ckind: u8,
    /// `DIF_TF_*`.
    pub flags: u8,
    /// Size in bytes.
    pub size: u32,
}

impl TypeDesc {
    /// A by-value CTF type of `size` bytes.
    pub const fn ctf(ckind: u8, size: u32) -> Self {
        TypeDesc {
            kind: type_kind::CTF,
            ckind,
            flags: 0,
            size,
        }
    }

    /// A D string of `size` bytes (by reference).
    pub const fn string(size: u32) -> Self {
        TypeDesc {
            kind: type_kind::STRING,
            ckind: 0,
            flags: type_flags::BYREF,
            size,
        }
    }

    /// Whether values of this type are addresses of the data.
    pub const fn is_by_ref(&self) -> bool {
        self.flags & (type_flags::BYREF | type_flags::BYUREF) != 0
    }
}

impl From<rdtrace_ffi::dif::DifType> for TypeDesc {
    fn from(t: rdtrace_ffi::dif::DifType) -> Self {
        TypeDesc {
            kind: t.kind,
            ckind: t.ckind,
            flags: t.flags,
            size: t.size,
        }
    }
}

/// A variable-table entry (`dtrace_difv_t`) as the validator uses it
/// (converts from [`rdtrace_ffi::dif::DifVar`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VarDesc {
    pub name: u32,
    pub id: u32,
    pub kind: u8,
    pub scope: u8,
    pub flags: u16,
    pub ty: TypeDesc,
}

impl From<rdtrace_ffi::dif::DifVar> for VarDesc {
    fn from(v: rdtrace_ffi::dif::DifVar) -> Self {
        VarDesc {
            name: v.name,
            id: v.id,
            kind: v.kind,
            scope: v.scope,
            flags: v.flags,
            ty: v.ty.into(),
        }
    }
}

/// Scope of a user variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarScope {
    Global,
    Thread,
    Local,
}

/// What the VM needs to know about one declared variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarInfo {
    pub id: u16,
    pub scope: VarScope,
    /// Associative array (`DIFV_KIND_ARRAY`) rather than scalar.
    pub is_array: bool,
    pub by_ref: bool,
    pub is_string: bool,
    /// Size of the value in bytes (8 for by-value scalars).
    pub size: u32,
    /// The vartab flags (`DIFV_F_REF`/`DIFV_F_MOD`).
    pub flags: u16,
}

/// Why a DIFO was rejected. The message names the instruction when one is at
/// fault, in the style of the kernel's `dtrace_difo_err`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DifoError {
    /// Index of the offending instruction, if any.
    pub instruction: Option<usize>,
    pub message: String,
}

impl fmt::Display for DifoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.instruction {
            Some(pc) => write!(f, "DIF instruction {pc}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl core::error::Error for DifoError {}

fn err_at(pc: usize, message: String) -> DifoError {
    DifoError {
        instruction: Some(pc),
        message,
    }
}

fn err(message: String) -> DifoError {
    DifoError {
        instruction: None,
        message,
    }
}

/// Decoded fields of an instruction word (abi-facts §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub op: u8,
    pub r1: u8,
    pub r2: u8,
    pub rd: u8,
    /// Bits 23..8 (table index, variable id, subroutine id).
    pub imm16: u16,
    /// Bits 23..0 (branch label).
    pub label: u32,
}

/// Split an instruction word into its fields.
#[inline(always)]
pub fn decode(word: u32) -> Decoded {
    Decoded {
        op: (word >> 24) as u8,
        r1: (word >> 16) as u8,
        r2: (word >> 8) as u8,
        rd: word as u8,
        imm16: (word >> 8) as u16,
        label: word & 0x00ff_ffff,
    }
}

/// A DIF object that passed validation.
#[derive(Clone, Debug)]
pub struct Difo {
    text: Vec<u32>,
    inttab: Vec<u64>,
    strtab: Vec<u8>,
    vars: Vec<VarInfo>,
    rtype: TypeDesc,
    destructive: bool,
    uses_dynvars: bool,
    /// Worst-case tuple entries at an associative access (excluding the
    /// variable id and thread key the VM appends).
    max_assoc_keys: usize,
    /// Worst-case number of by-reference tuple entries at an associative access.
    max_assoc_byref_keys: usize,
    /// Largest by-reference key size known statically (0 = "strsize").
    max_dynvar_value: u32,
}

fn reg_ok(r: u8) -> bool {
    r < NREGS
}

impl Difo {
    /// Validate and build a DIFO from its sections as a DOF/ioctl supplies them.
    pub fn from_parts(
        text: Vec<u32>,
        inttab: Vec<u64>,
        strtab: Vec<u8>,
        vartab: &[VarDesc],
        rtype: TypeDesc,
    ) -> Result<Difo, DifoError> {
        let total = text
            .len()
            .saturating_mul(4)
            .saturating_add(inttab.len().saturating_mul(8))
            .saturating_add(strtab.len())
            .saturating_add(vartab.len().saturating_mul(24));
        if total > MAX_DIFO_BYTES {
            return Err(err(format!(
                "DIFO of {total} bytes exceeds the {MAX_DIFO_BYTES}-byte limit"
            )));
        }
        if text.is_empty() {
            return Err(err("DIFO has no instructions".into()));
        }

        let vars = validate_vartab(vartab)?;
        let mut destructive = false;
        let mut uses_dynvars = false;
        let mut depth: usize = 0;
        let mut byref_depth: usize = 0;
        let mut max_assoc_keys = 0usize;
        let mut max_assoc_byref_keys = 0usize;
        let mut max_dynvar_value = 0u32;
        let len = text.len();

        for (pc, &word) in text.iter().enumerate() {
            let d = decode(word);
            let Decoded {
                op: opc,
                r1,
                r2,
                rd,
                imm16,
                label,
            } = d;
            let bad_reg = |which: &str, r: u8| err_at(pc, format!("invalid register {which} {r}"));
            let need_r = |which: &str, r: u8| {
                if reg_ok(r) {
                    Ok(())
                } else {
                    Err(bad_reg(which, r))
                }
            };
            let need_rd = |r: u8| {
                if !reg_ok(r) {
                    Err(bad_reg("rd", r))
                } else if r == 0 {
                    Err(err_at(pc, "cannot write to %r0".into()))
                } else {
                    Ok(())
                }
            };
            let need_zero = |what: &str, v: u8| {
                if v == 0 {
                    Ok(())
                } else {
                    Err(err_at(pc, format!("non-zero reserved field {what}")))
                }
            };
            let lookup = |id: u16, scope: VarScope, array: bool| -> Result<VarInfo, DifoError> {
                vars.iter()
                    .find(|v| v.id == id && v.scope == scope)
                    .copied()
                    .filter(|v| v.is_array == array)
                    .ok_or_else(|| {
                        err_at(
                            pc,
                            format!(
                                "variable {id:#x} is not declared as a {:?} {}",
                                scope,
                                if array { "array" } else { "scalar" }
                            ),
                        )
                    })
            };
            match opc {
                op::OR
                | op::XOR
                | op::AND
                | op::SLL
                | op::SRL
                | op::SRA
                | op::SUB
                | op::ADD
                | op::MUL
                | op::SDIV
                | op::UDIV
                | op::SREM
                | op::UREM => {
                    need_r("r1", r1)?;
                    need_r("r2", r2)?;
                    need_rd(rd)?;
                }
                op::NOT | op::MOV | op::ALLOCS => {
                    need_r("r1", r1)?;
                    need_zero("r2", r2)?;
                    need_rd(rd)?;
                }
                op::CMP | op::SCMP => {
                    need_r("r1", r1)?;
                    need_r("r2", r2)?;
                    need_zero("rd", rd)?;
                }
                op::TST => {
                    need_r("r1", r1)?;
                    need_zero("r2", r2)?;
                    need_zero("rd", rd)?;
                }
                op::BA
                | op::BE
                | op::BNE
                | op::BG
                | op::BGU
                | op::BGE
                | op::BGEU
                | op::BL
                | op::BLU
                | op::BLE
                | op::BLEU => {
                    let target = label as usize;
                    if target >= len {
                        return Err(err_at(pc, format!("invalid branch target {target}")));
                    }
                    if target <= pc {
                        return Err(err_at(pc, format!("backward branch to {target}")));
                    }
                }
                op::LDSB
                | op::LDSH
                | op::LDSW
                | op::LDUB
                | op::LDUH
                | op::LDUW
                | op::LDX
                | op::ULDSB
                | op::ULDSH
                | op::ULDSW
                | op::ULDUB
                | op::ULDUH
                | op::ULDUW
                | op::ULDX
                | op::RLDSB
                | op::RLDSH
                | op::RLDSW
                | op::RLDUB
                | op::RLDUH
                | op::RLDUW
                | op::RLDX => {
                    need_r("r1", r1)?;
                    need_zero("r2", r2)?;
                    need_rd(rd)?;
                }
                op::STB | op::STH | op::STW | op::STX => {
                    need_r("r1", r1)?;
                    need_zero("r2", r2)?;
                    need_r("rd", rd)?;
                }
                op::COPYS => {
                    need_r("r1", r1)?;
                    need_r("r2", r2)?;
                    need_r("rd", rd)?;
                }
                op::RET => {
                    need_zero("r1", r1)?;
                    need_zero("r2", r2)?;
                    need_r("rd", rd)?;
                }
                op::NOP | op::POPTS | op::FLUSHTS => {
                    need_zero("r1", r1)?;
                    need_zero("r2", r2)?;
                    need_zero("rd", rd)?;
                    match opc {
                        op::POPTS => depth = depth.saturating_sub(1),
                        op::FLUSHTS => {
                            depth = 0;
                            byref_depth = 0;
                        }
                        _ => {}
                    }
                }
                op::SETX => {
                    need_rd(rd)?;
                    if usize::from(imm16) >= inttab.len() {
                        return Err(err_at(
                            pc,
                            format!("integer table index {imm16} out of range"),
                        ));
                    }
                }
                op::SETS => {
                    need_rd(rd)?;
                    if usize::from(imm16) >= strtab.len() {
                        return Err(err_at(
                            pc,
                            format!("string table offset {imm16} out of range"),
                        ));
                    }
                }
                op::LDGA | op::LDTA => {
                    // r1 is the array id (always <= 0xff by encoding).
                    need_r("r2", r2)?;
                    need_rd(rd)?;
                }
                op::LDGS | op::LDTS | op::LDLS | op::LDGAA | op::LDTAA => {
                    need_rd(rd)?;
                    if imm16 < varid::SCALAR_MIN {
                        return Err(err_at(pc, format!("invalid variable {imm16:#x}")));
                    }
                    if imm16 >= varid::UBASE {
                        let (scope, array) = match opc {
                            op::LDGS => (VarScope::Global, false),
                            op::LDTS => (VarScope::Thread, false),
                            op::LDLS => (VarScope::Local, false),
                            op::LDGAA => (VarScope::Global, true),
                            _ => (VarScope::Thread, true),
                        };
                        let v = lookup(imm16, scope, array)?;
                        if matches!(opc, op::LDTS | op::LDGAA | op::LDTAA) {
                            uses_dynvars = true;
                            max_dynvar_value = max_dynvar_value.max(v.size);
                            if opc != op::LDTS {
                                max_assoc_keys = max_assoc_keys.max(depth);
                                max_assoc_byref_keys = max_assoc_byref_keys.max(byref_depth);
                            }
                        }
                    } else if opc != op::LDGS {
                        return Err(err_at(
                            pc,
                            format!("variable {imm16:#x} is not a built-in of this kind"),
                        ));
                    }
                }
                op::STGS | op::STTS | op::STLS | op::STGAA | op::STTAA => {
                    need_r("rs", rd)?;
                    if imm16 < varid::UBASE {
                        return Err(err_at(pc, format!("cannot store to variable {imm16:#x}")));
                    }
                    let (scope, array) = match opc {
                        op::STGS => (VarScope::Global, false),
                        op::STTS => (VarScope::Thread, false),
                        op::STLS => (VarScope::Local, false),
                        op::STGAA => (VarScope::Global, true),
                        _ => (VarScope::Thread, true),
                    };
                    let v = lookup(imm16, scope, array)?;
                    if matches!(opc, op::STTS | op::STGAA | op::STTAA) {
                        uses_dynvars = true;
                        max_dynvar_value = max_dynvar_value.max(v.size);
                        if opc != op::STTS {
                            max_assoc_keys = max_assoc_keys.max(depth);
                            max_assoc_byref_keys = max_assoc_byref_keys.max(byref_depth);
                        }
                    }
                }
                op::CALL => {
                    need_rd(rd)?;
                    if imm16 > subr::MAX {
                        return Err(err_at(pc, format!("invalid subroutine {imm16}")));
                    }
                    if imm16 == subr::COPYOUT || imm16 == subr::COPYOUTSTR {
                        destructive = true;
                    }
                }
                op::PUSHTR => {
                    if r1 != type_kind::STRING && r1 != type_kind::CTF {
                        return Err(err_at(pc, format!("invalid ref type {r1}")));
                    }
                    need_r("r2", r2)?;
                    need_r("rs", rd)?;
                    depth = (depth + 1).min(TUPLE_DEPTH);
                    byref_depth = (byref_depth + 1).min(TUPLE_DEPTH);
                }
                op::PUSHTV => {
                    if r1 != type_kind::CTF {
                        return Err(err_at(pc, format!("invalid val type {r1}")));
                    }
                    need_r("r2", r2)?;
                    need_r("rs", rd)?;
                    depth = (depth + 1).min(TUPLE_DEPTH);
                }
                _ => return Err(err_at(pc, format!("invalid opcode {opc}"))),
            }
        }
        if let Some(&last) = text.last() {
            if decode(last).op != op::RET {
                return Err(err_at(len - 1, "DIFO must end with ret".into()));
            }
        }
        if rtype.kind != type_kind::CTF && rtype.kind != type_kind::STRING {
            return Err(err(format!("invalid return type kind {}", rtype.kind)));
        }
        if !rtype.is_by_ref() && !matches!(rtype.size, 0 | 1 | 2 | 4 | 8) {
            return Err(err(format!("invalid return size {}", rtype.size)));
        }
        Ok(Difo {
            text,
            inttab,
            strtab,
            vars,
            rtype,
            destructive,
            uses_dynvars,
            max_assoc_keys,
            max_assoc_byref_keys,
            max_dynvar_value,
        })
    }

    /// The one-instruction DIFO `ret %r0` (returns 0), built without the
    /// validator (it is trivially valid).
    pub fn bare_ret() -> Difo {
        Difo {
            text: alloc::vec![u32::from(op::RET) << 24],
            inttab: Vec::new(),
            strtab: Vec::new(),
            vars: Vec::new(),
            rtype: TypeDesc::ctf(0, 8),
            destructive: false,
            uses_dynvars: false,
            max_assoc_keys: 0,
            max_assoc_byref_keys: 0,
            max_dynvar_value: 0,
        }
    }

    /// The instructions.
    pub fn text(&self) -> &[u32] {
        &self.text
    }
    /// Number of instructions.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }
    /// The integer table.
    pub fn inttab(&self) -> &[u64] {
        &self.inttab
    }
    /// The string table.
    pub fn strtab(&self) -> &[u8] {
        &self.strtab
    }
    /// Declared variables.
    pub fn vars(&self) -> &[VarInfo] {
        &self.vars
    }
    /// Declared variables of one scope.
    pub fn vars_in(&self, scope: VarScope) -> impl Iterator<Item = &VarInfo> {
        self.vars.iter().filter(move |v| v.scope == scope)
    }
    /// Return type.
    pub fn rtype(&self) -> TypeDesc {
        self.rtype
    }
    /// Whether it calls `copyout`/`copyoutstr`.
    pub fn is_destructive(&self) -> bool {
        self.destructive
    }
    /// Whether it uses thread-local or associative variables.
    pub fn uses_dynvars(&self) -> bool {
        self.uses_dynvars
    }
    /// Most tuple entries any associative access of this DIFO may use.
    pub fn max_assoc_keys(&self) -> usize {
        self.max_assoc_keys
    }

    /// Bytes of a dynamic-variable chunk big enough for every access this DIFO
    /// makes when by-reference keys are at most `strsize` bytes; 0 if it uses
    /// no dynamic variables. The core takes the maximum over a consumer's DIFOs
    /// for `DynVarArena::new`.
    pub fn dynvar_chunk_size(&self, strsize: u64) -> usize {
        if !self.uses_dynvars {
            return 0;
        }
        let strsize = usize::try_from(strsize).unwrap_or(usize::MAX / 64);
        // The VM appends the variable id and the thread key to the tuple.
        let entries = self.max_assoc_keys + 2;
        let byref = self
            .max_assoc_byref_keys
            .saturating_mul(strsize.saturating_add(8) & !7);
        super::dynvar::chunk_size_for(entries, byref, self.max_dynvar_value as usize)
    }
}

/// Check that the DIFOs of one consumer agree on every variable they share
/// (same id and scope ⇒ same kind, by-reference-ness and size), as the
/// kernel does when it adds a DIFO to a state. Not probe context.
pub fn check_consistency(difos: &[&Difo]) -> Result<(), DifoError> {
    for (i, a) in difos.iter().enumerate() {
        for b in difos.iter().skip(i + 1) {
            for va in a.vars() {
                let clash = b.vars().iter().find(|vb| {
                    vb.id == va.id
                        && vb.scope == va.scope
                        && (vb.is_array != va.is_array
                            || vb.by_ref != va.by_ref
                            || vb.size != va.size)
                });
                if clash.is_some() {
                    return Err(err(format!(
                        "variable {:#x} ({:?}) is declared inconsistently by two DIFOs",
                        va.id, va.scope
                    )));
                }
            }
        }
    }
    Ok(())
}

fn validate_vartab(vartab: &[VarDesc]) -> Result<Vec<VarInfo>, DifoError> {
    let mut out: Vec<VarInfo> = Vec::with_capacity(vartab.len());
    for (i, v) in vartab.iter().enumerate() {
        let bad = |m: String| err(format!("variable table entry {i}: {m}"));
        let id = u16::try_from(v.id).map_err(|_| bad(format!("invalid id {:#x}", v.id)))?;
        let scope = match v.scope {
            var_desc::SCOPE_GLOBAL => VarScope::Global,
            var_desc::SCOPE_THREAD => VarScope::Thread,
            var_desc::SCOPE_LOCAL => VarScope::Local,
            s => return Err(bad(format!("invalid scope {s}"))),
        };
        let is_array = match v.kind {
            var_desc::KIND_ARRAY => true,
            var_desc::KIND_SCALAR => false,
            k => return Err(bad(format!("invalid kind {k}"))),
        };
        if id < varid::UBASE {
            return Err(bad(format!("id {id:#x} is below the user variable base")));
        }
        if v.ty.kind != type_kind::CTF && v.ty.kind != type_kind::STRING {
            return Err(bad(format!("invalid type kind {}", v.ty.kind)));
        }
        let by_ref = v.ty.is_by_ref() || v.ty.kind == type_kind::STRING;
        if by_ref && v.ty.size == 0 {
            return Err(bad("zero-sized by-reference variable".into()));
        }
        if by_ref && !is_array && scope != VarScope::Thread && v.ty.size > MAX_STATIC_BYREF {
            return Err(bad(format!(
                "oversized by-reference static ({} bytes)",
                v.ty.size
            )));
        }
        if !by_ref && !matches!(v.ty.size, 0 | 1 | 2 | 4 | 8) {
            return Err(bad(format!("invalid by-value size {}", v.ty.size)));
        }
        let info = VarInfo {
            id,
            scope,
            is_array,
            by_ref,
            is_string: v.ty.kind == type_kind::STRING,
            size: if by_ref { v.ty.size } else { 8 },
            flags: v.flags,
        };
        if let Some(prev) = out.iter().find(|p| p.id == id && p.scope == scope) {
            if prev.is_array != info.is_array
                || prev.by_ref != info.by_ref
                || prev.size != info.size
            {
                return Err(bad(format!("redeclaration of {id:#x} does not match")));
            }
            continue;
        }
        out.push(info);
    }
    Ok(out)
}
