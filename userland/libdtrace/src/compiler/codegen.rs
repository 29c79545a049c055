//! DIF code generation: typed IR expressions to DIF objects (DIFOs), and clauses to enabling
//! control blocks made of a predicate DIFO and action descriptions.
//!
//! Registers: `%r1..%r7` are allocated like a stack (`%r0` reads as zero). A value that must stay
//! live while another subexpression is evaluated is "held" ([`Held`]); when that subexpression
//! needs more registers than are free (its Sethi-Ullman number, [`need`]), held values are
//! spilled to hidden clause-local variables (`stls`/`ldls`: DIF has no stack) and reloaded
//! afterwards, so expressions of any depth compile. Only when the spill slots run out does the
//! compiler give libdtrace's "Insufficient registers" error. Associative-array keys and
//! subroutine arguments are evaluated first, then pushed on the tuple stack, so nested calls
//! cannot interleave their tuples. Branches only go forward (the kernel rejects loops).
//! FreeBSD's `if`/`else` is compiled by splitting a clause into several ECBs for the same probes,
//! guarded by hidden clause-local variables (which live for the whole probe firing).
//! Userland only.

use super::ast::BinOp;
use super::errors::{CResult, CompileError};
use super::pdesc::ProbeDesc;
use super::tir::*;
use super::typeck::{Checker, VarShape};
use super::types::TypeKind;
use rdtrace_ffi::action::ActionKind;
use rdtrace_ffi::dif::{
    DifType, DifVar, Instruction, Opcode, Reg, DIFV_KIND_ARRAY, DIFV_KIND_SCALAR,
    DIFV_SCOPE_GLOBAL, DIFV_SCOPE_LOCAL, DIFV_SCOPE_THREAD, DIF_TYPE_CTF, DIF_TYPE_STRING,
};

/// CTF kinds used in DIF return types.
pub const CTF_K_UNKNOWN: u8 = 0;
pub const CTF_K_INTEGER: u8 = 1;
pub const CTF_K_POINTER: u8 = 3;
pub const CTF_K_ARRAY: u8 = 4;
pub const CTF_K_STRUCT: u8 = 6;
pub const CTF_K_UNION: u8 = 7;

/// Library action codes carried in `dtad_arg` of `DTRACEACT_LIBACT` actions (consumer-defined).
pub const LIBACT_CLEAR: u64 = 1;
pub const LIBACT_TRUNC: u64 = 2;
pub const LIBACT_NORMALIZE: u64 = 3;
pub const LIBACT_DENORMALIZE: u64 = 4;
pub const LIBACT_SETOPT: u64 = 5;
pub const LIBACT_FTRUNCATE: u64 = 6;

/// A compiled DIF object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Difo {
    pub text: Vec<u32>,
    pub ints: Vec<u64>,
    pub strtab: Vec<u8>,
    pub vars: Vec<DifVar>,
    pub rtype: DifType,
}

impl Difo {
    /// The string at `off` in this DIFO's string table.
    pub fn string_at(&self, off: u32) -> String {
        let start = off as usize;
        let end = self.strtab[start..]
            .iter()
            .position(|b| *b == 0)
            .map_or(self.strtab.len(), |p| start + p);
        String::from_utf8_lossy(&self.strtab[start..end]).into_owned()
    }
}

/// One action of an ECB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOut {
    /// `DTRACEACT_*` kind.
    pub kind: u16,
    pub difo: Option<Difo>,
    /// `dtad_arg`; for printf-like actions this is replaced by the format string's offset.
    pub arg: u64,
    /// Format string for printf/printa/system/freopen (printa: `None` when no format).
    pub format: Option<String>,
    /// Tuple length for aggregating actions.
    pub ntuple: u32,
    pub uarg: u64,
    /// The D type of the recorded value (for printing: signedness, strings, pointers).
    pub value_type: Option<ValueType>,
}

/// What a consumer needs to know about a recorded value to print it as libdtrace does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueType {
    /// The D type name (`int`, `uint64_t`, `char *`, `string`, `struct foo`).
    pub name: String,
    /// Size in bytes of the value (0 for strings: strsize).
    pub size: u32,
    pub signed: bool,
    pub is_string: bool,
    pub is_pointer: bool,
}

impl EcbOut {
    /// Whether each record EPROBE reports for this ECB holds a signed
    /// integer, in EPROBE order: every action except aggregating actions and
    /// the tuple members in front of them, as the kernel lists them.
    pub fn recorded_signedness(&self) -> Vec<bool> {
        let mut in_tuple = vec![false; self.actions.len()];
        for (i, action) in self.actions.iter().enumerate() {
            let is_aggregation = rdtrace_ffi::action::ActionKind::from_raw(action.kind)
                .map(|k| k.is_aggregation())
                .unwrap_or(false);
            if is_aggregation {
                in_tuple[i] = true;
                let first = i.saturating_sub(action.ntuple as usize);
                in_tuple[first..i].iter_mut().for_each(|t| *t = true);
            }
        }
        self.actions
            .iter()
            .zip(in_tuple)
            .filter(|(_, tuple)| !tuple)
            .map(|(a, _)| a.value_type.as_ref().map(|t| t.signed).unwrap_or(true))
            .collect()
    }
}

/// One enabling: probe descriptions, predicate, actions.
#[derive(Debug, Clone)]
pub struct EcbOut {
    pub descs: Vec<ProbeDesc>,
    pub predicate: Option<Difo>,
    pub actions: Vec<ActionOut>,
    /// Index of the source clause (several ECBs come from a clause with `if`).
    pub clause: usize,
}

fn cg_err(msg: &str) -> CompileError {
    CompileError::errno(msg)
}

enum Fix {
    Label(usize, usize),
}

/// A value kept live while other code is generated: in a register, or spilled to the spill slot
/// with this index (see `Checker::spill_slots`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Reg(Reg),
    Slot(usize),
}

/// Registers `%r1..%r7`.
const NREGS: u32 = 7;
/// Spill slots reserved per program: the deepest nesting of spilled values.
const SPILL_SLOTS: usize = 32;
/// The most free registers a held value is spilled for: a child needing more spills by itself.
const SPILL_TARGET: u32 = 6;

/// Builds one DIFO.
struct Gen<'c, 'm> {
    ck: &'c Checker<'m>,
    code: Vec<Instruction>,
    labels: Vec<Option<usize>>,
    fixups: Vec<Fix>,
    ints: Vec<u64>,
    strtab: Vec<u8>,
    vars: Vec<DifVar>,
    /// Bit i set = %ri in use (bit 0 is always set).
    used: u8,
    /// Bit i set = spill slot i holds a live value.
    slots_used: u64,
    strsize: u32,
}

impl<'c, 'm> Gen<'c, 'm> {
    fn new(ck: &'c Checker<'m>, strsize: u32) -> Self {
        Gen {
            ck,
            code: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
            ints: Vec::new(),
            strtab: Vec::new(),
            vars: Vec::new(),
            used: 1,
            slots_used: 0,
            strsize,
        }
    }

    fn alloc(&mut self) -> CResult<Reg> {
        for r in 1..8u8 {
            if self.used & (1 << r) == 0 {
                self.used |= 1 << r;
                return Ok(r);
            }
        }
        Err(cg_err("Insufficient registers to generate code"))
    }

    fn free(&mut self, r: Reg) {
        if r != 0 {
            self.used &= !(1 << r);
        }
    }

    fn free_regs(&self) -> u32 {
        NREGS - (self.used >> 1).count_ones()
    }

    /// Moves a held register value to a free spill slot.
    fn spill(&mut self, h: &mut Held) -> CResult<()> {
        let Held::Reg(r) = *h else { return Ok(()) };
        let n = self.ck.spill_slots.len().min(64);
        let slot = (0..n)
            .find(|i| self.slots_used & (1u64 << i) == 0)
            .ok_or_else(|| cg_err("Insufficient registers to generate code"))?;
        self.slots_used |= 1u64 << slot;
        let v = self.ck.spill_slots[slot].clone();
        self.store_var(&v, r)?;
        self.free(r);
        *h = Held::Slot(slot);
        Ok(())
    }

    /// Before evaluating a subexpression needing `need` registers, spills held values until
    /// enough registers are free (plus one to reload a spilled value afterwards).
    fn make_room(&mut self, need: u32, held: &mut [Held]) -> CResult<()> {
        let want = need.min(SPILL_TARGET);
        if self.free_regs() >= want {
            return Ok(());
        }
        for h in held.iter_mut() {
            if self.free_regs() > want {
                break;
            }
            self.spill(h)?;
        }
        Ok(())
    }

    /// Evaluates `e` while the `held` values stay live.
    fn expr_holding(&mut self, e: &TExpr, held: &mut [Held]) -> CResult<Reg> {
        self.make_room(need(e), held)?;
        self.expr(e)
    }

    /// Takes a held value back into a register (reloading it if it was spilled).
    fn reclaim(&mut self, h: Held) -> CResult<Reg> {
        let r = self.peek(h)?;
        if let Held::Slot(slot) = h {
            self.slots_used &= !(1u64 << slot);
        }
        Ok(r)
    }

    /// A register with a held value's contents, keeping it held: a spilled value is loaded into
    /// a temporary that `unpeek` frees.
    fn peek(&mut self, h: Held) -> CResult<Reg> {
        match h {
            Held::Reg(r) => Ok(r),
            Held::Slot(slot) => {
                let r = self.alloc()?;
                let v = self.ck.spill_slots[slot].clone();
                self.load_var(&v, r)?;
                Ok(r)
            }
        }
    }

    fn unpeek(&mut self, h: Held, r: Reg) {
        if let Held::Slot(_) = h {
            self.free(r);
        }
    }

    /// Drops a held value.
    fn release(&mut self, h: Held) {
        match h {
            Held::Reg(r) => self.free(r),
            Held::Slot(slot) => self.slots_used &= !(1u64 << slot),
        }
    }

    fn emit(&mut self, i: Instruction) {
        self.code.push(i);
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn place_label(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }

    fn branch(&mut self, op: Opcode, l: usize) {
        self.fixups.push(Fix::Label(self.code.len(), l));
        self.emit(Instruction::Branch { op, label: 0 });
    }

    fn string(&mut self, s: &[u8]) -> CResult<u16> {
        // Reuse an identical string.
        let mut i = 0;
        while i < self.strtab.len() {
            let end = self.strtab[i..]
                .iter()
                .position(|b| *b == 0)
                .map_or(self.strtab.len(), |p| i + p);
            if &self.strtab[i..end] == s {
                return Ok(i as u16);
            }
            i = end + 1;
        }
        let off = self.strtab.len();
        if off > 0xffff {
            return Err(cg_err("string table too large"));
        }
        self.strtab.extend_from_slice(s);
        self.strtab.push(0);
        Ok(off as u16)
    }

    fn setx(&mut self, v: u64, rd: Reg) -> CResult<()> {
        if v == 0 {
            self.emit(Instruction::Reg2 {
                op: Opcode::Mov,
                r1: 0,
                rd,
            });
            return Ok(());
        }
        let idx = match self.ints.iter().position(|x| *x == v) {
            Some(i) => i,
            None => {
                self.ints.push(v);
                self.ints.len() - 1
            }
        };
        if idx > 0xffff {
            return Err(cg_err("integer table too large"));
        }
        self.emit(Instruction::Setx {
            index: idx as u16,
            rd,
        });
        Ok(())
    }

    fn var_type(&self, v: &VarRef, ty: Ty) -> DifType {
        if v.is_string {
            return DifType {
                kind: DIF_TYPE_STRING,
                ckind: CTF_K_UNKNOWN,
                flags: 1,
                pad: 0,
                size: self.strsize,
            };
        }
        diftype(self.ck, ty, self.strsize)
    }

    fn note_var(&mut self, v: &VarRef, modify: bool) -> CResult<()> {
        let scope = match v.scope {
            Scope::Global => DIFV_SCOPE_GLOBAL,
            Scope::Thread => DIFV_SCOPE_THREAD,
            Scope::Local => DIFV_SCOPE_LOCAL,
        };
        let flag = if modify { 2 } else { 1 };
        if let Some(e) = self
            .vars
            .iter_mut()
            .find(|x| x.id == u32::from(v.id) && x.scope == scope)
        {
            e.flags |= flag;
            return Ok(());
        }
        let ty = self.lookup_var_ty(v);
        let name = self.string(v.name.as_bytes())?;
        let kind = if v.assoc {
            DIFV_KIND_ARRAY
        } else {
            DIFV_KIND_SCALAR
        };
        let dt = self.var_type(v, ty);
        self.vars.push(DifVar {
            name: u32::from(name),
            id: u32::from(v.id),
            kind,
            scope,
            flags: flag,
            ty: dt,
        });
        Ok(())
    }

    fn lookup_var_ty(&self, v: &VarRef) -> Ty {
        let table = match v.scope {
            Scope::Global => &self.ck.globals,
            Scope::Thread => &self.ck.tls,
            Scope::Local => &self.ck.locals,
        };
        table
            .get(&v.name)
            .map(|i| i.ty)
            .unwrap_or(Ty::C(self.ck.repo.b.int64))
    }

    /// Pushes one value on the tuple stack: strings (and char arrays) by reference with string
    /// semantics, structs/other arrays by reference with their size, everything else by value.
    fn push_one(&mut self, r: Reg, t: Ty) -> CResult<()> {
        if self.ck.is_stringish(t) && !self.ck.is_ptr(t) {
            self.emit(Instruction::PushTuple {
                op: Opcode::Pushtr,
                ty: DIF_TYPE_STRING,
                size: 0,
                rs: r,
            });
        } else if self.ck.is_sou(t) || self.ck.is_array(t) {
            let size = self.ck.c(t).map(|c| self.ck.repo.size_of(c)).unwrap_or(0);
            let sr = self.alloc()?;
            self.setx(size, sr)?;
            self.emit(Instruction::PushTuple {
                op: Opcode::Pushtr,
                ty: DIF_TYPE_CTF,
                size: sr,
                rs: r,
            });
            self.free(sr);
        } else {
            self.emit(Instruction::PushTuple {
                op: Opcode::Pushtv,
                ty: DIF_TYPE_CTF,
                size: 0,
                rs: r,
            });
        }
        Ok(())
    }

    /// Pushes held tuple values with their types (they stay held).
    fn push_held(&mut self, vals: &[(Held, Ty)]) -> CResult<()> {
        for (h, t) in vals {
            let r = self.peek(*h)?;
            self.push_one(r, *t)?;
            self.unpeek(*h, r);
        }
        Ok(())
    }

    fn release_all(&mut self, vals: &[(Held, Ty)]) {
        for (h, _) in vals {
            self.release(*h);
        }
    }

    /// Evaluates associative-array keys in order, while `outer` values stay live.
    fn eval_keys(&mut self, keys: &[TExpr], outer: &mut [Held]) -> CResult<Vec<(Held, Ty)>> {
        if keys.len() > usize::from(rdtrace_ffi::dif::DIF_DTR_NREGS) {
            return Err(CompileError::errno(
                "Insufficient tuple registers to generate code",
            ));
        }
        let mut held: Vec<Held> = outer.to_vec();
        let mut tys = Vec::new();
        for k in keys {
            let r = self.expr_holding(k, &mut held)?;
            held.push(Held::Reg(r));
            tys.push(k.ty);
        }
        // Pushing a spilled or by-reference key takes up to two more registers.
        self.make_room(2, &mut held)?;
        outer.copy_from_slice(&held[..outer.len()]);
        Ok(held[outer.len()..].iter().copied().zip(tys).collect())
    }

    fn load_var(&mut self, v: &VarRef, rd: Reg) -> CResult<()> {
        self.note_var(v, false)?;
        let op = match v.scope {
            Scope::Global => Opcode::Ldgs,
            Scope::Thread => Opcode::Ldts,
            Scope::Local => Opcode::Ldls,
        };
        self.emit(Instruction::LoadVar { op, var: v.id, rd });
        Ok(())
    }

    fn store_var(&mut self, v: &VarRef, rs: Reg) -> CResult<()> {
        self.note_var(v, true)?;
        let op = match v.scope {
            Scope::Global => Opcode::Stgs,
            Scope::Thread => Opcode::Stts,
            Scope::Local => Opcode::Stls,
        };
        self.emit(Instruction::StoreVar { op, var: v.id, rs });
        Ok(())
    }

    /// Pushes the keys (which stay held: a read-modify-write pushes them twice), then loads
    /// and/or stores the element.
    fn assoc_op(
        &mut self,
        v: &VarRef,
        keys: &[(Held, Ty)],
        load: Option<Reg>,
        store: Option<Reg>,
    ) -> CResult<()> {
        self.push_held(keys)?;
        if let Some(rd) = load {
            self.note_var(v, false)?;
            let (op, stop) = if v.scope == Scope::Thread {
                (Opcode::Ldtaa, Opcode::Sttaa)
            } else {
                (Opcode::Ldgaa, Opcode::Stgaa)
            };
            self.emit(Instruction::LoadVar { op, var: v.id, rd });
            if v.by_ref && !v.is_string {
                // A struct/union/array element is used through its address, and an element
                // that does not exist yet loads as 0: as libdtrace does, fault it in by storing
                // a zero-filled scratch object of its size, then load its address again.
                let present = self.label();
                self.emit(Instruction::Test { r1: rd });
                self.branch(Opcode::Bne, present);
                self.setx(u64::from(v.size), rd)?;
                self.emit(Instruction::Allocs { size: rd, rd });
                self.note_var(v, true)?;
                self.emit(Instruction::StoreVar {
                    op: stop,
                    var: v.id,
                    rs: rd,
                });
                self.emit(Instruction::LoadVar { op, var: v.id, rd });
                self.place_label(present);
            }
        }
        if let Some(rs) = store {
            self.note_var(v, true)?;
            let op = if v.scope == Scope::Thread {
                Opcode::Sttaa
            } else {
                Opcode::Stgaa
            };
            self.emit(Instruction::StoreVar { op, var: v.id, rs });
        }
        self.emit(Instruction::Plain {
            op: Opcode::Flushts,
        });
        Ok(())
    }

    fn load_op(size: u8, signed: bool) -> Opcode {
        match (size, signed) {
            (1, true) => Opcode::Ldsb,
            (1, false) => Opcode::Ldub,
            (2, true) => Opcode::Ldsh,
            (2, false) => Opcode::Lduh,
            (4, true) => Opcode::Ldsw,
            (4, false) => Opcode::Lduw,
            _ => Opcode::Ldx,
        }
    }

    fn store_op(size: u8) -> Opcode {
        match size {
            1 => Opcode::Stb,
            2 => Opcode::Sth,
            4 => Opcode::Stw,
            _ => Opcode::Stx,
        }
    }

    fn alu(op: BinOp, unsigned: bool) -> Opcode {
        match op {
            BinOp::Add => Opcode::Add,
            BinOp::Sub => Opcode::Sub,
            BinOp::Mul => Opcode::Mul,
            BinOp::Div => {
                if unsigned {
                    Opcode::Udiv
                } else {
                    Opcode::Sdiv
                }
            }
            BinOp::Mod => {
                if unsigned {
                    Opcode::Urem
                } else {
                    Opcode::Srem
                }
            }
            BinOp::Shl => Opcode::Sll,
            BinOp::Shr => {
                if unsigned {
                    Opcode::Srl
                } else {
                    Opcode::Sra
                }
            }
            BinOp::BitAnd => Opcode::And,
            BinOp::BitOr => Opcode::Or,
            _ => Opcode::Xor,
        }
    }

    /// Sets `rd` to 1 if the condition codes satisfy `op`, else 0.
    fn set_cc(&mut self, op: Opcode, rd: Reg) -> CResult<()> {
        let t = self.label();
        self.setx(1, rd)?;
        self.branch(op, t);
        self.emit(Instruction::Reg2 {
            op: Opcode::Mov,
            r1: 0,
            rd,
        });
        self.place_label(t);
        Ok(())
    }

    /// Sets the condition codes from a value (pointers and strings test their address).
    fn truthy(&mut self, r: Reg, _t: Ty) {
        self.emit(Instruction::Test { r1: r });
    }

    /// Generates code for an expression; returns the register holding its value.
    fn expr(&mut self, e: &TExpr) -> CResult<Reg> {
        match &e.kind {
            TKind::Const(v) => {
                let r = self.alloc()?;
                self.setx(*v, r)?;
                Ok(r)
            }
            TKind::Str(s) => {
                let r = self.alloc()?;
                let off = self.string(s)?;
                self.emit(Instruction::Sets { offset: off, rd: r });
                Ok(r)
            }
            TKind::Builtin(id) => {
                let r = self.alloc()?;
                self.emit(Instruction::LoadVar {
                    op: Opcode::Ldgs,
                    var: *id,
                    rd: r,
                });
                Ok(r)
            }
            TKind::BuiltinArray(id, idx) => {
                let ri = self.expr(idx)?;
                self.emit(Instruction::LoadArray {
                    op: Opcode::Ldga,
                    var: *id,
                    index: ri,
                    rd: ri,
                });
                Ok(ri)
            }
            TKind::Var(v) => {
                let r = self.alloc()?;
                self.load_var(v, r)?;
                Ok(r)
            }
            TKind::Assoc(v, keys) => {
                let held = self.eval_keys(keys, &mut [])?;
                self.push_held(&held)?;
                self.release_all(&held);
                let rd = self.alloc()?;
                self.assoc_op(v, &[], Some(rd), None)?;
                Ok(rd)
            }
            TKind::Neg(x) => {
                let r = self.expr(x)?;
                self.emit(Instruction::Reg3 {
                    op: Opcode::Sub,
                    r1: 0,
                    r2: r,
                    rd: r,
                });
                Ok(r)
            }
            TKind::BitNot(x) => {
                let r = self.expr(x)?;
                self.emit(Instruction::Reg2 {
                    op: Opcode::Not,
                    r1: r,
                    rd: r,
                });
                Ok(r)
            }
            TKind::LogNot(x) => {
                let r = self.expr(x)?;
                self.truthy(r, x.ty);
                self.set_cc(Opcode::Be, r)?;
                Ok(r)
            }
            TKind::Bin {
                op,
                l,
                r,
                unsigned,
                strings,
            } => self.binary(*op, l, r, *unsigned, *strings),
            TKind::Ternary(c, a, b) => {
                let rc = self.expr(c)?;
                self.truthy(rc, c.ty);
                self.free(rc);
                let lelse = self.label();
                let lend = self.label();
                self.branch(Opcode::Be, lelse);
                // The result register is the one `a` ends in; on the `else` path it holds
                // nothing yet, so `b` may use it as scratch before its value is moved there.
                let rd = self.expr(a)?;
                self.branch(Opcode::Ba, lend);
                self.place_label(lelse);
                self.free(rd);
                let rb = self.expr(b)?;
                if rb != rd {
                    self.emit(Instruction::Reg2 {
                        op: Opcode::Mov,
                        r1: rb,
                        rd,
                    });
                    self.free(rb);
                }
                self.used |= 1 << rd;
                self.place_label(lend);
                Ok(rd)
            }
            TKind::Store { place, value } => {
                let rv = self.expr(value)?;
                self.store(place, Held::Reg(rv))
            }
            TKind::Update {
                place,
                op,
                value,
                post,
                unsigned,
            } => self.update(place, *op, value, *post, *unsigned, e.ty),
            TKind::Call(subr, args) => {
                if args.len() > usize::from(rdtrace_ffi::dif::DIF_DTR_NREGS) {
                    return Err(CompileError::errno(
                        "Insufficient tuple registers to generate code",
                    ));
                }
                // Evaluate the most register-hungry arguments first when none has side
                // effects (so the order is unobservable); otherwise in source order, as
                // libdtrace does, spilling as needed.
                let mut order: Vec<usize> = (0..args.len()).collect();
                if args.iter().all(pure) {
                    order.sort_by_key(|i| std::cmp::Reverse(need(&args[*i])));
                }
                // held[k] is the value of args[order[k]].
                let mut held: Vec<Held> = Vec::with_capacity(args.len());
                for i in &order {
                    let r = self.expr_holding(&args[*i], &mut held)?;
                    held.push(Held::Reg(r));
                }
                self.make_room(2, &mut held)?;
                let mut vals: Vec<(Held, Ty)> = Vec::with_capacity(args.len());
                for (i, a) in args.iter().enumerate() {
                    let k = order.iter().position(|o| *o == i).unwrap_or(0);
                    vals.push((held[k], a.ty));
                }
                self.push_held(&vals)?;
                self.release_all(&vals);
                let rd = self.alloc()?;
                self.emit(Instruction::Call { subr: *subr, rd });
                self.emit(Instruction::Plain {
                    op: Opcode::Flushts,
                });
                Ok(rd)
            }
            TKind::Load { addr, size, signed } => {
                let r = self.expr(addr)?;
                self.emit(Instruction::Load {
                    op: Self::load_op(*size, *signed),
                    addr: r,
                    rd: r,
                });
                Ok(r)
            }
            TKind::Convert { e: x, bits, signed } => {
                let r = self.expr(x)?;
                let sh = self.alloc()?;
                self.setx(u64::from(64 - *bits), sh)?;
                self.emit(Instruction::Reg3 {
                    op: Opcode::Sll,
                    r1: r,
                    r2: sh,
                    rd: r,
                });
                let op = if *signed { Opcode::Sra } else { Opcode::Srl };
                self.emit(Instruction::Reg3 {
                    op,
                    r1: r,
                    r2: sh,
                    rd: r,
                });
                self.free(sh);
                Ok(r)
            }
            TKind::Bitfield {
                unit,
                shift,
                width,
                signed,
            } => {
                let r = self.expr(unit)?;
                let sh = self.alloc()?;
                let left = 64u64.saturating_sub(u64::from(*shift) + u64::from(*width));
                if left > 0 {
                    self.setx(left, sh)?;
                    self.emit(Instruction::Reg3 {
                        op: Opcode::Sll,
                        r1: r,
                        r2: sh,
                        rd: r,
                    });
                }
                self.setx(64 - u64::from(*width), sh)?;
                let op = if *signed { Opcode::Sra } else { Opcode::Srl };
                self.emit(Instruction::Reg3 {
                    op,
                    r1: r,
                    r2: sh,
                    rd: r,
                });
                self.free(sh);
                Ok(r)
            }
            TKind::Rec { value, .. } => match value {
                Some(v) => self.expr(v),
                None => Err(CompileError::unlocated(
                    "D_CG_EXPR",
                    "stack( ) values may only be recorded or used as aggregation keys",
                )),
            },
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        l: &TExpr,
        r: &TExpr,
        unsigned: bool,
        strings: bool,
    ) -> CResult<Reg> {
        match op {
            BinOp::Comma => {
                let rl = self.expr(l)?;
                self.free(rl);
                self.expr(r)
            }
            BinOp::LogAnd | BinOp::LogOr => {
                // Nothing stays live across the right operand: the result register is chosen
                // after both operands were tested.
                let short = if op == BinOp::LogAnd {
                    Opcode::Be
                } else {
                    Opcode::Bne
                };
                let lshort = self.label();
                let lend = self.label();
                let rl = self.expr(l)?;
                self.truthy(rl, l.ty);
                self.free(rl);
                self.branch(short, lshort);
                let rr = self.expr(r)?;
                self.truthy(rr, r.ty);
                self.free(rr);
                self.branch(short, lshort);
                let rd = self.alloc()?;
                self.setx(u64::from(op == BinOp::LogAnd), rd)?;
                self.branch(Opcode::Ba, lend);
                self.place_label(lshort);
                self.setx(u64::from(op == BinOp::LogOr), rd)?;
                self.place_label(lend);
                Ok(rd)
            }
            BinOp::LogXor => {
                let rl = self.expr(l)?;
                self.truthy(rl, l.ty);
                self.set_cc(Opcode::Bne, rl)?;
                let mut held = [Held::Reg(rl)];
                let rr = self.expr_holding(r, &mut held)?;
                self.truthy(rr, r.ty);
                self.set_cc(Opcode::Bne, rr)?;
                let rl = self.reclaim(held[0])?;
                self.emit(Instruction::Reg3 {
                    op: Opcode::Xor,
                    r1: rl,
                    r2: rr,
                    rd: rl,
                });
                self.free(rr);
                Ok(rl)
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne => {
                let (rl, rr) = self.operands(l, r)?;
                let cmp = if strings { Opcode::Scmp } else { Opcode::Cmp };
                self.emit(Instruction::Compare {
                    op: cmp,
                    r1: rl,
                    r2: rr,
                });
                self.free(rr);
                let br = match (op, unsigned && !strings) {
                    (BinOp::Eq, _) => Opcode::Be,
                    (BinOp::Ne, _) => Opcode::Bne,
                    (BinOp::Lt, false) => Opcode::Bl,
                    (BinOp::Lt, true) => Opcode::Blu,
                    (BinOp::Le, false) => Opcode::Ble,
                    (BinOp::Le, true) => Opcode::Bleu,
                    (BinOp::Gt, false) => Opcode::Bg,
                    (BinOp::Gt, true) => Opcode::Bgu,
                    (BinOp::Ge, false) => Opcode::Bge,
                    _ => Opcode::Bgeu,
                };
                self.set_cc(br, rl)?;
                Ok(rl)
            }
            _ => {
                let (rl, rr) = self.operands(l, r)?;
                self.emit(Instruction::Reg3 {
                    op: Self::alu(op, unsigned),
                    r1: rl,
                    r2: rr,
                    rd: rl,
                });
                self.free(rr);
                Ok(rl)
            }
        }
    }

    /// Evaluates both operands of a binary operator: left to right as libdtrace does, or the
    /// one needing more registers first when neither has side effects (Sethi-Ullman order, not
    /// observable then). The first one is held (spilled if need be) while the second is
    /// evaluated.
    fn operands(&mut self, l: &TExpr, r: &TExpr) -> CResult<(Reg, Reg)> {
        let right_first = need(r) > need(l) && pure(l) && pure(r);
        let (first, second) = if right_first { (r, l) } else { (l, r) };
        let r1 = self.expr(first)?;
        let mut held = [Held::Reg(r1)];
        let r2 = self.expr_holding(second, &mut held)?;
        let r1 = self.reclaim(held[0])?;
        Ok(if right_first { (r2, r1) } else { (r1, r2) })
    }

    /// Stores the held value `value` to `place`; returns the register holding the value.
    fn store(&mut self, place: &Place, value: Held) -> CResult<Reg> {
        let mut held = [value];
        match place {
            Place::Var(v) => {
                let rv = self.reclaim(value)?;
                self.store_var(v, rv)?;
                Ok(rv)
            }
            Place::Assoc(v, keys) => {
                let keys = self.eval_keys(keys, &mut held)?;
                let rv = self.peek(held[0])?;
                self.assoc_op(v, &keys, None, Some(rv))?;
                self.unpeek(held[0], rv);
                self.release_all(&keys);
                self.reclaim(held[0])
            }
            Place::Mem { addr, size } => {
                let ra = self.expr_holding(addr, &mut held)?;
                let rv = self.reclaim(held[0])?;
                self.emit(Instruction::Store {
                    op: Self::store_op(*size),
                    rs: rv,
                    addr: ra,
                });
                self.free(ra);
                Ok(rv)
            }
            Place::Copy { addr, size } => {
                let ra = self.expr_holding(addr, &mut held)?;
                let rv = self.reclaim(held[0])?;
                let rs = self.alloc()?;
                self.setx(u64::from(*size), rs)?;
                self.emit(Instruction::Copys {
                    src: rv,
                    size: rs,
                    dst: ra,
                });
                self.free(rs);
                self.free(ra);
                Ok(rv)
            }
            Place::Bits {
                addr,
                size,
                shift,
                width,
            } => {
                // Read-modify-write of the storage unit.
                let ra = self.expr_holding(addr, &mut held)?;
                let rv = self.reclaim(held[0])?;
                let unit = self.alloc()?;
                self.emit(Instruction::Load {
                    op: Self::load_op(*size, false),
                    addr: ra,
                    rd: unit,
                });
                let mask = if *width >= 64 {
                    u64::MAX
                } else {
                    ((1u64 << width) - 1) << shift
                };
                let t = self.alloc()?;
                self.setx(!mask, t)?;
                self.emit(Instruction::Reg3 {
                    op: Opcode::And,
                    r1: unit,
                    r2: t,
                    rd: unit,
                });
                let v = self.alloc()?;
                self.setx(u64::from(*shift), t)?;
                self.emit(Instruction::Reg3 {
                    op: Opcode::Sll,
                    r1: rv,
                    r2: t,
                    rd: v,
                });
                self.setx(mask, t)?;
                self.emit(Instruction::Reg3 {
                    op: Opcode::And,
                    r1: v,
                    r2: t,
                    rd: v,
                });
                self.emit(Instruction::Reg3 {
                    op: Opcode::Or,
                    r1: unit,
                    r2: v,
                    rd: unit,
                });
                self.emit(Instruction::Store {
                    op: Self::store_op(*size),
                    rs: unit,
                    addr: ra,
                });
                for r in [ra, unit, t, v] {
                    self.free(r);
                }
                Ok(rv)
            }
        }
    }

    fn update(
        &mut self,
        place: &Place,
        op: BinOp,
        value: &TExpr,
        post: bool,
        unsigned: bool,
        ty: Ty,
    ) -> CResult<Reg> {
        // Evaluate what locates the place (keys or address), then load the old value; all of
        // it stays held (spillable) while the right-hand side is evaluated.
        let mut keys: Vec<(Held, Ty)> = Vec::new();
        let mut addr: Option<(Held, u8)> = None;
        let rold = match place {
            Place::Var(v) => {
                let rold = self.alloc()?;
                self.load_var(v, rold)?;
                rold
            }
            Place::Assoc(v, ks) => {
                keys = self.eval_keys(ks, &mut [])?;
                let rold = self.alloc()?;
                self.assoc_op(v, &keys, Some(rold), None)?;
                rold
            }
            Place::Bits { .. } | Place::Copy { .. } => {
                return Err(CompileError::unlocated(
                    "D_CG_EXPR",
                    "compound assignment to a bit-field is not supported",
                ));
            }
            Place::Mem { addr: a, size } => {
                let ra = self.expr(a)?;
                let signed = self.ck.c(ty).is_some_and(|c| self.ck.repo.is_signed(c));
                let rold = self.alloc()?;
                self.emit(Instruction::Load {
                    op: Self::load_op(*size, signed),
                    addr: ra,
                    rd: rold,
                });
                addr = Some((Held::Reg(ra), *size));
                rold
            }
        };
        let mut held: Vec<Held> = keys.iter().map(|(h, _)| *h).collect();
        if let Some((h, _)) = addr {
            held.push(h);
        }
        held.push(Held::Reg(rold));
        let rv = self.expr_holding(value, &mut held)?;
        let rold = self.reclaim(held.pop().unwrap_or(Held::Reg(rold)))?;
        if let Some((h, _)) = addr.as_mut() {
            if let Some(spilled) = held.pop() {
                *h = spilled;
            }
        }
        for (k, h) in keys.iter_mut().zip(held) {
            k.0 = h;
        }
        let rnew = self.alloc()?;
        self.emit(Instruction::Reg3 {
            op: Self::alu(op, unsigned),
            r1: rold,
            r2: rv,
            rd: rnew,
        });
        self.free(rv);
        match place {
            Place::Var(v) => self.store_var(v, rnew)?,
            Place::Assoc(v, _) => self.assoc_op(v, &keys, None, Some(rnew))?,
            Place::Bits { .. } | Place::Copy { .. } => {}
            Place::Mem { .. } => {
                if let Some((h, size)) = addr {
                    let ra = self.reclaim(h)?;
                    self.emit(Instruction::Store {
                        op: Self::store_op(size),
                        rs: rnew,
                        addr: ra,
                    });
                    self.free(ra);
                }
            }
        }
        self.release_all(&keys);
        if post {
            self.free(rnew);
            Ok(rold)
        } else {
            self.free(rold);
            Ok(rnew)
        }
    }

    /// Finishes the DIFO: `ret` the register and resolve labels.
    fn finish(mut self, r: Reg, rtype: DifType) -> CResult<Difo> {
        self.emit(Instruction::Ret { rd: r });
        for Fix::Label(at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l].ok_or_else(|| cg_err("unplaced label"))?;
            if let Instruction::Branch { op, .. } = self.code[at] {
                self.code[at] = Instruction::Branch {
                    op,
                    label: target as u32,
                };
            }
        }
        let mut text = Vec::with_capacity(self.code.len());
        for i in &self.code {
            text.push(
                i.encode()
                    .map_err(|e| cg_err(&format!("cannot encode {:?}: {:?}", i, e)))?,
            );
        }
        Ok(Difo {
            text,
            ints: self.ints,
            strtab: self.strtab,
            vars: self.vars,
            rtype,
        })
    }
}

/// Whether evaluating `e` has no side effects (so it may be evaluated out of source order).
fn pure(e: &TExpr) -> bool {
    match &e.kind {
        TKind::Const(_) | TKind::Str(_) | TKind::Builtin(_) | TKind::Var(_) => true,
        TKind::BuiltinArray(_, x) | TKind::Neg(x) | TKind::BitNot(x) | TKind::LogNot(x) => pure(x),
        TKind::Load { addr, .. } => pure(addr),
        TKind::Convert { e, .. } => pure(e),
        TKind::Bitfield { unit, .. } => pure(unit),
        TKind::Assoc(_, keys) => keys.iter().all(pure),
        TKind::Bin { l, r, .. } => pure(l) && pure(r),
        TKind::Ternary(a, b, c) => pure(a) && pure(b) && pure(c),
        _ => false,
    }
}

/// Registers needed to evaluate `e` without spilling (Sethi-Ullman number, approximate). It is
/// at least what the node itself keeps allocated at once when all its held values are spilled.
fn need(e: &TExpr) -> u32 {
    /// Registers to evaluate `es` in order while holding the earlier results.
    fn list(es: &[&TExpr]) -> u32 {
        es.iter()
            .enumerate()
            .map(|(i, x)| need(x) + i as u32)
            .max()
            .unwrap_or(0)
    }
    fn place_need(p: &Place) -> u32 {
        match p {
            Place::Var(_) => 0,
            Place::Assoc(_, keys) => list(&keys.iter().collect::<Vec<_>>()) + 1,
            Place::Mem { addr, .. } | Place::Copy { addr, .. } => need(addr) + 1,
            Place::Bits { addr, .. } => need(addr).max(4),
        }
    }
    match &e.kind {
        TKind::Const(_) | TKind::Str(_) | TKind::Builtin(_) | TKind::Var(_) => 1,
        TKind::BuiltinArray(_, x) | TKind::Neg(x) | TKind::BitNot(x) | TKind::LogNot(x) => need(x),
        TKind::Load { addr, .. } => need(addr),
        TKind::Convert { e, .. } | TKind::Bitfield { unit: e, .. } => need(e) + 1,
        TKind::Bin { op, l, r, .. } => match op {
            BinOp::Comma | BinOp::LogAnd | BinOp::LogOr => need(l).max(need(r)),
            _ => {
                let (a, b) = (need(l), need(r));
                if a == b {
                    a + 1
                } else {
                    a.max(b)
                }
            }
        },
        TKind::Call(_, args) | TKind::Assoc(_, args) => {
            let mut n: Vec<u32> = args.iter().map(need).collect();
            n.sort_unstable_by(|a, b| b.cmp(a));
            n.iter()
                .enumerate()
                .map(|(i, v)| v + i as u32)
                .max()
                .unwrap_or(0)
                .max(2)
        }
        TKind::Ternary(a, b, c) => need(a).max(need(b)).max(need(c)),
        TKind::Store { place, value } => need(value).max(1 + place_need(place)),
        TKind::Update { place, value, .. } => (place_need(place) + 1).max(need(value) + 2).max(3),
        TKind::Rec { value, .. } => value.as_deref().map_or(1, need),
    }
}

/// The DIF return type for a value of type `t`.
pub fn diftype(ck: &Checker, t: Ty, strsize: u32) -> DifType {
    let c = match t {
        Ty::C(c) => c,
        Ty::Sym | Ty::USym => ck.repo.b.uint64,
        _ => {
            return DifType {
                kind: DIF_TYPE_CTF,
                ckind: CTF_K_UNKNOWN,
                flags: 0,
                pad: 0,
                size: 0,
            }
        }
    };
    let r = &ck.repo;
    match r.rkind(c) {
        TypeKind::String => DifType {
            kind: DIF_TYPE_STRING,
            ckind: CTF_K_UNKNOWN,
            flags: 1,
            pad: 0,
            size: strsize,
        },
        TypeKind::Void => DifType {
            kind: DIF_TYPE_CTF,
            ckind: CTF_K_UNKNOWN,
            flags: 0,
            pad: 0,
            size: 0,
        },
        TypeKind::Pointer(_) => DifType {
            kind: DIF_TYPE_CTF,
            ckind: CTF_K_POINTER,
            flags: 0,
            pad: 0,
            size: 8,
        },
        TypeKind::Sou { is_union, size, .. } => DifType {
            kind: DIF_TYPE_CTF,
            ckind: if *is_union { CTF_K_UNION } else { CTF_K_STRUCT },
            flags: 1,
            pad: 0,
            size: *size as u32,
        },
        TypeKind::Array { .. } => {
            let elem_char = r.referenced(c).is_some_and(|e| r.is_char(e));
            if elem_char {
                DifType {
                    kind: DIF_TYPE_STRING,
                    ckind: CTF_K_UNKNOWN,
                    flags: 1,
                    pad: 0,
                    size: r.size_of(c) as u32,
                }
            } else {
                DifType {
                    kind: DIF_TYPE_CTF,
                    ckind: CTF_K_ARRAY,
                    flags: 1,
                    pad: 0,
                    size: r.size_of(c) as u32,
                }
            }
        }
        _ => DifType {
            kind: DIF_TYPE_CTF,
            ckind: CTF_K_INTEGER,
            flags: 0,
            pad: 0,
            size: r.size_of(c).clamp(1, 8) as u32,
        },
    }
}

fn void_type() -> DifType {
    DifType {
        kind: DIF_TYPE_CTF,
        ckind: CTF_K_UNKNOWN,
        flags: 0,
        pad: 0,
        size: 0,
    }
}

/// Compiles an expression into a DIFO returning it with the given return type.
pub fn compile_expr(ck: &Checker, e: &TExpr, rtype: DifType, strsize: u32) -> CResult<Difo> {
    let mut g = Gen::new(ck, strsize);
    let r = g.expr(e)?;
    g.finish(r, rtype)
}

/// A DIFO returning a constant.
pub fn compile_const(ck: &Checker, v: u64, rtype: DifType, strsize: u32) -> CResult<Difo> {
    let mut g = Gen::new(ck, strsize);
    if v == 0 {
        return g.finish(0, rtype);
    }
    let r = g.alloc()?;
    g.setx(v, r)?;
    g.finish(r, rtype)
}

fn int_type(size: u32) -> DifType {
    DifType {
        kind: DIF_TYPE_CTF,
        ckind: CTF_K_INTEGER,
        flags: 0,
        pad: 0,
        size,
    }
}

/// Lowers the clauses of a program to ECBs.
pub struct Lowering<'c, 'm> {
    pub ck: &'c mut Checker<'m>,
    pub strsize: u32,
    hidden: u32,
}

/// A flattened piece of a clause: the statements under one guard.
struct Segment {
    guard: Option<TExpr>,
    actions: Vec<Action>,
}

impl<'c, 'm> Lowering<'c, 'm> {
    pub fn new(ck: &'c mut Checker<'m>, strsize: u32) -> Self {
        ck.reserve_spill_slots(SPILL_SLOTS);
        Lowering {
            ck,
            strsize,
            hidden: 0,
        }
    }

    fn hidden_var(&mut self) -> VarRef {
        self.hidden += 1;
        let name = format!("%cond{}", self.hidden);
        let int = Ty::C(self.ck.repo.b.int);
        self.ck
            .new_var(&name, Scope::Local, int, VarShape::Scalar)
            .vref
    }

    fn int(&self) -> Ty {
        Ty::C(self.ck.repo.b.int)
    }

    /// Flattens statements with `if` into guarded segments.
    fn flatten(&mut self, stmts: &[TStmt], guard: Option<TExpr>, out: &mut Vec<Segment>) {
        let mut cur = Segment {
            guard: guard.clone(),
            actions: Vec::new(),
        };
        for s in stmts {
            match s {
                TStmt::Action(a, _) => cur.actions.push(a.clone()),
                TStmt::If { cond, then, els } => {
                    // cond value: 1 = then, 2 = else; stored in a hidden clause-local variable.
                    let v = self.hidden_var();
                    let int = self.int();
                    let pick = TExpr::new(
                        TKind::Ternary(
                            Box::new(cond.clone()),
                            Box::new(TExpr::new(TKind::Const(1), int)),
                            Box::new(TExpr::new(TKind::Const(2), int)),
                        ),
                        int,
                    );
                    cur.actions.push(Action::Eval(TExpr::new(
                        TKind::Store {
                            place: Place::Var(v.clone()),
                            value: Box::new(pick),
                        },
                        int,
                    )));
                    out.push(std::mem::replace(
                        &mut cur,
                        Segment {
                            guard: guard.clone(),
                            actions: Vec::new(),
                        },
                    ));
                    for (branch, which) in [(then, 1u64), (els, 2u64)] {
                        if branch.is_empty() {
                            continue;
                        }
                        let test = TExpr::new(
                            TKind::Bin {
                                op: BinOp::Eq,
                                l: Box::new(TExpr::new(TKind::Var(v.clone()), int)),
                                r: Box::new(TExpr::new(TKind::Const(which), int)),
                                unsigned: false,
                                strings: false,
                            },
                            int,
                        );
                        let g = match &guard {
                            None => test,
                            Some(gd) => TExpr::new(
                                TKind::Bin {
                                    op: BinOp::LogAnd,
                                    l: Box::new(gd.clone()),
                                    r: Box::new(test),
                                    unsigned: false,
                                    strings: false,
                                },
                                int,
                            ),
                        };
                        self.flatten(branch, Some(g), out);
                    }
                }
            }
        }
        if !cur.actions.is_empty() {
            out.push(cur);
        }
    }

    /// Lowers one checked clause to one or more ECBs.
    pub fn clause(&mut self, c: &TClause, index: usize) -> CResult<Vec<EcbOut>> {
        let has_if = c.body.iter().any(|s| matches!(s, TStmt::If { .. }));
        if !has_if {
            let actions: Vec<Action> = c
                .body
                .iter()
                .filter_map(|s| {
                    if let TStmt::Action(a, _) = s {
                        Some(a.clone())
                    } else {
                        None
                    }
                })
                .collect();
            let predicate = match &c.predicate {
                Some(p) => Some(compile_expr(self.ck, p, int_type(4), self.strsize)?),
                None => None,
            };
            let acts = self.actions(&actions)?;
            return Ok(vec![EcbOut {
                descs: c.descs.clone(),
                predicate,
                actions: acts,
                clause: index,
            }]);
        }
        // A clause with if/else: a first ECB records that the clause predicate held.
        let alive = self.hidden_var();
        let int = self.int();
        let mut ecbs = Vec::new();
        let reset = TExpr::new(
            TKind::Store {
                place: Place::Var(alive.clone()),
                value: Box::new(TExpr::new(TKind::Const(0), int)),
            },
            int,
        );
        ecbs.push(EcbOut {
            descs: c.descs.clone(),
            predicate: None,
            actions: self.actions(&[Action::Eval(reset)])?,
            clause: index,
        });
        let set = TExpr::new(
            TKind::Store {
                place: Place::Var(alive.clone()),
                value: Box::new(TExpr::new(TKind::Const(1), int)),
            },
            int,
        );
        let predicate = match &c.predicate {
            Some(p) => Some(compile_expr(self.ck, p, int_type(4), self.strsize)?),
            None => None,
        };
        ecbs.push(EcbOut {
            descs: c.descs.clone(),
            predicate,
            actions: self.actions(&[Action::Eval(set)])?,
            clause: index,
        });
        let alive_test = TExpr::new(
            TKind::Bin {
                op: BinOp::Eq,
                l: Box::new(TExpr::new(TKind::Var(alive), int)),
                r: Box::new(TExpr::new(TKind::Const(1), int)),
                unsigned: false,
                strings: false,
            },
            int,
        );
        let mut segs = Vec::new();
        self.flatten(&c.body, Some(alive_test), &mut segs);
        for s in segs {
            let predicate = match &s.guard {
                Some(g) => Some(compile_expr(self.ck, g, int_type(4), self.strsize)?),
                None => None,
            };
            let acts = self.actions(&s.actions)?;
            ecbs.push(EcbOut {
                descs: c.descs.clone(),
                predicate,
                actions: acts,
                clause: index,
            });
        }
        Ok(ecbs)
    }

    fn act(kind: u16, difo: Option<Difo>, arg: u64) -> ActionOut {
        ActionOut {
            kind,
            difo,
            arg,
            format: None,
            ntuple: 0,
            uarg: 0,
            value_type: None,
        }
    }

    /// An action whose DIFO evaluates `e` as an integer of `size` bytes
    /// (exit, speculate, commit, discard, raise, chill, sym/mod…).
    fn int_act(&self, kind: u16, e: &TExpr, size: u32) -> CResult<ActionOut> {
        Ok(Self::act(
            kind,
            Some(compile_expr(self.ck, e, int_type(size), self.strsize)?),
            0,
        ))
    }

    fn value_type(&self, t: Ty) -> ValueType {
        let ck = &*self.ck;
        let c = ck.c(t);
        ValueType {
            name: ck.ty_name(t),
            size: c.map_or(8, |c| ck.repo.size_of(c) as u32),
            signed: c.is_some_and(|c| ck.repo.is_signed(c)),
            is_string: ck.is_stringish(t) && !ck.is_ptr(t),
            is_pointer: ck.is_ptr(t),
        }
    }

    fn value_difo(&self, e: &TExpr) -> CResult<Difo> {
        let rt = diftype(self.ck, e.ty, self.strsize);
        compile_expr(self.ck, e, rt, self.strsize)
    }

    /// A recording action for a value (DIFEXPR, or the record kind of stack()/sym()...).
    fn record_value(&self, e: &TExpr) -> CResult<ActionOut> {
        if let TKind::Rec { kind, arg, value } = &e.kind {
            let difo = match value {
                Some(v) => Some(compile_expr(self.ck, v, int_type(8), self.strsize)?),
                None => None,
            };
            let mut a = Self::act(*kind, difo, *arg);
            a.value_type = Some(self.value_type(e.ty));
            return Ok(a);
        }
        let mut a = Self::act(ActionKind::DifExpr.raw(), Some(self.value_difo(e)?), 0);
        a.value_type = Some(self.value_type(e.ty));
        Ok(a)
    }

    fn agg_varid(&self, name: &str) -> u64 {
        self.ck.aggs.get(name).map(|a| u64::from(a.id)).unwrap_or(0)
    }

    fn actions(&mut self, acts: &[Action]) -> CResult<Vec<ActionOut>> {
        let s = self.strsize;
        let mut out = Vec::new();
        for a in acts {
            match a {
                Action::Eval(e) => out.push(Self::act(
                    ActionKind::DifExpr.raw(),
                    Some(compile_expr(self.ck, e, void_type(), s)?),
                    0,
                )),
                Action::Trace(e) | Action::Print(e) => {
                    let mut r = self.record_value(e)?;
                    if matches!(a, Action::Print(_)) {
                        r.uarg = 1;
                    }
                    out.push(r);
                }
                Action::Tracemem {
                    addr,
                    size,
                    dynsize,
                } => {
                    if let Some(d) = dynsize {
                        out.push(self.int_act(ActionKind::TracememDynsize.raw(), d, 8)?);
                    }
                    let rt = DifType {
                        kind: DIF_TYPE_CTF,
                        ckind: CTF_K_UNKNOWN,
                        flags: 1,
                        pad: 0,
                        size: *size as u32,
                    };
                    out.push(Self::act(
                        ActionKind::Tracemem.raw(),
                        Some(compile_expr(self.ck, addr, rt, s)?),
                        *size,
                    ));
                }
                Action::Printflike { kind, format, args } => {
                    let first = match args.first() {
                        Some(e) => self.record_value(e)?,
                        // libdtrace gives an argument-less printf-like action a
                        // `ret %r0` DIFO returning an 8-byte integer, so the ECB
                        // always records (a size-0 ECB would record nothing).
                        None => {
                            Self::act(*kind, Some(compile_const(self.ck, 0, int_type(8), s)?), 0)
                        }
                    };
                    let mut first = first;
                    first.kind = *kind;
                    first.format = Some(format.clone());
                    out.push(first);
                    for e in args.iter().skip(1) {
                        out.push(self.record_value(e)?);
                    }
                }
                Action::Printa { format, aggs } => {
                    // Every record of one printa() shares a non-zero uarg so the
                    // consumer knows which aggregations it prints together.
                    let group = out.len() as u64 + 1;
                    for (i, n) in aggs.iter().enumerate() {
                        let d = compile_const(self.ck, self.agg_varid(n), int_type(8), s)?;
                        let mut act = Self::act(ActionKind::Printa.raw(), Some(d), 0);
                        if i == 0 {
                            act.format = format.clone();
                        }
                        act.uarg = group;
                        out.push(act);
                    }
                }
                Action::Exit(e) => out.push(self.int_act(ActionKind::Exit.raw(), e, 4)?),
                Action::Stack(n) => {
                    out.push(Self::act(ActionKind::Stack.raw(), None, u64::from(*n)))
                }
                Action::Ustack {
                    frames,
                    strsize,
                    java,
                } => {
                    let kind = if *java {
                        ActionKind::Jstack.raw()
                    } else {
                        ActionKind::Ustack.raw()
                    };
                    out.push(Self::act(
                        kind,
                        None,
                        u64::from(*frames) | (u64::from(*strsize) << 32),
                    ));
                }
                Action::Symbolic { kind, value } => {
                    out.push(self.int_act(*kind, value, 8)?);
                }
                Action::Speculate(e) => {
                    out.push(self.int_act(ActionKind::Speculate.raw(), e, 4)?)
                }
                Action::Commit(e) => out.push(self.int_act(ActionKind::Commit.raw(), e, 4)?),
                Action::Discard(e) => out.push(self.int_act(ActionKind::Discard.raw(), e, 4)?),
                Action::Raise(e) => out.push(self.int_act(ActionKind::Raise.raw(), e, 4)?),
                Action::Chill(e) => out.push(self.int_act(ActionKind::Chill.raw(), e, 8)?),
                Action::Stop => out.push(Self::act(ActionKind::Stop.raw(), None, 0)),
                Action::Panic => out.push(Self::act(ActionKind::Panic.raw(), None, 0)),
                Action::Breakpoint => out.push(Self::act(ActionKind::Breakpoint.raw(), None, 0)),
                Action::Lib { act, agg, args } => {
                    let code = match act {
                        LibAct::Clear => LIBACT_CLEAR,
                        LibAct::Trunc => LIBACT_TRUNC,
                        LibAct::Normalize => LIBACT_NORMALIZE,
                        LibAct::Denormalize => LIBACT_DENORMALIZE,
                        LibAct::Setopt => LIBACT_SETOPT,
                        LibAct::Ftruncate => LIBACT_FTRUNCATE,
                    };
                    // All records of one call share a non-zero uarg so the
                    // consumer can tell `trunc(@a); trunc(@b)` from `trunc(@a, n)`.
                    let group = out.len() as u64 + 1;
                    let first = out.len();
                    if let Some(n) = agg {
                        let d = compile_const(self.ck, self.agg_varid(n), int_type(8), s)?;
                        out.push(Self::act(ActionKind::LibAct.raw(), Some(d), code));
                    } else if args.is_empty() {
                        out.push(Self::act(
                            ActionKind::LibAct.raw(),
                            Some(compile_const(self.ck, 0, int_type(8), s)?),
                            code,
                        ));
                    }
                    for e in args {
                        let rt = diftype(self.ck, e.ty, s);
                        out.push(Self::act(
                            ActionKind::LibAct.raw(),
                            Some(compile_expr(self.ck, e, rt, s)?),
                            code,
                        ));
                    }
                    for act in &mut out[first..] {
                        act.uarg = group;
                    }
                }
                Action::Aggregate {
                    name,
                    func,
                    keys,
                    value,
                    incr,
                    param,
                } => {
                    let varid = self.agg_varid(name);
                    out.push(Self::act(
                        ActionKind::DifExpr.raw(),
                        Some(compile_const(self.ck, varid, int_type(8), s)?),
                        0,
                    ));
                    for k in keys {
                        out.push(self.record_value(k)?);
                    }
                    let mut ntuple = 1 + keys.len() as u32;
                    if let Some(i) = incr {
                        out.push(Self::act(
                            ActionKind::DifExpr.raw(),
                            Some(compile_expr(self.ck, i, void_type(), s)?),
                            0,
                        ));
                        ntuple += 1;
                    }
                    let difo = match value {
                        Some(v) => Some(compile_expr(self.ck, v, int_type(8), s)?),
                        None => None,
                    };
                    let mut act = Self::act(func.action_kind(), difo, *param);
                    act.ntuple = ntuple;
                    act.uarg = varid;
                    out.push(act);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiler::pdesc::StaticProbes;
    use crate::compiler::typeck::CheckOptions;
    use crate::compiler::types::TypeRepo;

    fn checker(m: &StaticProbes) -> Checker<'_> {
        Checker::new(
            TypeRepo::new(),
            CheckOptions {
                strsize: 256,
                scratchsize: 256,
                zdefs: false,
            },
            m,
        )
    }

    #[test]
    fn constant_return_uses_inttab() {
        let m = StaticProbes::hosted();
        let ck = checker(&m);
        let e = TExpr::new(TKind::Const(42), Ty::C(ck.repo.b.int));
        let d = compile_expr(&ck, &e, int_type(4), 256).unwrap();
        assert_eq!(d.ints, vec![42]);
        assert_eq!(d.text.len(), 2);
        assert_eq!(
            Instruction::decode(d.text[0]).unwrap(),
            Instruction::Setx { index: 0, rd: 1 }
        );
        assert_eq!(
            Instruction::decode(d.text[1]).unwrap(),
            Instruction::Ret { rd: 1 }
        );
    }

    #[test]
    fn comparison_branches_forward() {
        let m = StaticProbes::hosted();
        let ck = checker(&m);
        let int = Ty::C(ck.repo.b.int);
        let e = TExpr::new(
            TKind::Bin {
                op: BinOp::Lt,
                l: Box::new(TExpr::new(TKind::Builtin(0x116), int)),
                r: Box::new(TExpr::new(TKind::Const(5), int)),
                unsigned: false,
                strings: false,
            },
            int,
        );
        let d = compile_expr(&ck, &e, int_type(4), 256).unwrap();
        for (pc, w) in d.text.iter().enumerate() {
            if let Ok(Instruction::Branch { label, .. }) = Instruction::decode(*w) {
                assert!(label as usize > pc && (label as usize) < d.text.len());
            }
        }
    }

    #[test]
    fn too_many_keys_is_a_tuple_register_error() {
        let m = StaticProbes::hosted();
        let mut ck = checker(&m);
        let int = Ty::C(ck.repo.b.int);
        let v = ck
            .new_var("a", Scope::Global, int, VarShape::Assoc(None))
            .vref;
        let keys = (0..11).map(|i| TExpr::new(TKind::Const(i), int)).collect();
        let e = TExpr::new(TKind::Assoc(v, keys), int);
        let err = compile_expr(&ck, &e, int_type(4), 256).unwrap_err();
        assert_eq!(err.message, "Insufficient tuple registers to generate code");
    }
}
