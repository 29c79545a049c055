//! Resolution and type checking: AST to the typed IR ([`super::tir`]).
//!
//! Declarations go into the [`TypeRepo`] and the identifier tables; clauses are checked in program
//! order, which is how D infers dynamic variables (the first assignment gives the type). The
//! function-call side (actions, subroutines, aggregations, printf formats) is in
//! [`super::calls`]. Messages and `D_*` tags follow libdtrace. Userland only.

use std::collections::HashMap;

use super::ast::*;
use super::errors::{err, CResult, CompileError};
use super::lex::IntLit;
use super::pdesc::{split_desc, ProbeMatcher};
use super::tir::*;
use super::types::{TypeId, TypeKind, TypeRepo};
use rdtrace_ffi::dif::BuiltinVar;

/// What kind of thing a variable is.
#[derive(Debug, Clone, PartialEq)]
pub enum VarShape {
    Scalar,
    /// Associative array with key types (`None` until first use fixes them).
    Assoc(Option<Vec<Ty>>),
    /// A declared fixed-size array (`int a[5]`).
    Fixed(u64),
}

/// A user variable.
#[derive(Debug, Clone)]
pub struct VarInfo {
    pub vref: VarRef,
    pub ty: Ty,
    pub shape: VarShape,
}

/// An aggregation seen so far.
#[derive(Debug, Clone)]
pub struct AggInfo {
    pub func: AggFunc,
    pub keys: Vec<Ty>,
    pub id: u32,
    pub line: u32,
    /// lquantize/llquantize packed parameter (must agree across uses).
    pub param: u64,
}

/// An inline definition.
#[derive(Debug, Clone)]
pub struct InlineInfo {
    pub ty: TypeId,
    pub value: TExpr,
}

/// A translator.
#[derive(Debug, Clone)]
pub struct Translator {
    pub output: TypeId,
    pub input: TypeId,
    pub input_name: String,
    pub members: Vec<(String, Expr)>,
}

/// Options the checker needs.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub strsize: u64,
    pub scratchsize: u64,
    pub zdefs: bool,
}

/// The checker state across the whole program.
pub struct Checker<'m> {
    pub repo: TypeRepo,
    pub globals: HashMap<String, VarInfo>,
    pub tls: HashMap<String, VarInfo>,
    pub locals: HashMap<String, VarInfo>,
    pub inlines: HashMap<String, InlineInfo>,
    pub enumerators: HashMap<String, (i64, TypeId)>,
    pub functions: HashMap<String, TypeId>,
    pub aggs: HashMap<String, AggInfo>,
    pub agg_order: Vec<String>,
    pub translators: Vec<Translator>,
    next_id: [u16; 3],
    pub opts: CheckOptions,
    matcher: &'m dyn ProbeMatcher,
    /// Translator input bindings while expanding a translator member.
    pub(crate) bindings: Vec<(String, TExpr)>,
    /// The probe descriptions of the clause being checked.
    cur_descs: Vec<super::pdesc::ProbeDesc>,
    /// Variables that were assigned an `alloca()` pointer.
    alloca_vars: std::collections::HashSet<String>,
    /// Variables the program assigns somewhere (`=`, `++`, `--`): reading them before the first
    /// assignment in program order is allowed, as in libdtrace. `bool` = used as an array.
    pub assigned: HashMap<(Scope, String), bool>,
    /// Hidden clause-local variables the code generator spills registers to when an expression
    /// has more live values than DIF has registers (reserved by `reserve_spill_slots`).
    pub spill_slots: Vec<VarRef>,
}

/// Records every variable the program assigns with `=`, `++` or `--`.
pub fn collect_assigned(prog: &Program, out: &mut HashMap<(Scope, String), bool>) {
    fn target(e: &Expr, out: &mut HashMap<(Scope, String), bool>) {
        let (base, array) = match &e.kind {
            ExprKind::Index(b, _) => (&**b, true),
            _ => (e, false),
        };
        let key = match &base.kind {
            ExprKind::Ident(n) => (Scope::Global, n.clone()),
            ExprKind::SelfVar(n) => (Scope::Thread, n.clone()),
            ExprKind::ThisVar(n) => (Scope::Local, n.clone()),
            _ => return,
        };
        out.entry(key).or_insert(array);
    }
    fn walk(e: &Expr, out: &mut HashMap<(Scope, String), bool>) {
        match &e.kind {
            ExprKind::Assign(None, l, r) => {
                target(l, out);
                walk(l, out);
                walk(r, out);
            }
            ExprKind::Assign(Some(_), l, r) | ExprKind::Binary(_, l, r) => {
                walk(l, out);
                walk(r, out);
            }
            ExprKind::Unary(op, x) => {
                if matches!(
                    op,
                    UnOp::PreInc | UnOp::PreDec | UnOp::PostInc | UnOp::PostDec
                ) {
                    target(x, out);
                }
                walk(x, out);
            }
            ExprKind::Ternary(a, b, c) => {
                walk(a, out);
                walk(b, out);
                walk(c, out);
            }
            ExprKind::Call(_, args) | ExprKind::AggRef(_, args) => {
                args.iter().for_each(|a| walk(a, out))
            }
            ExprKind::Index(b, k) => {
                walk(b, out);
                k.iter().for_each(|a| walk(a, out));
            }
            ExprKind::Member(b, _)
            | ExprKind::Arrow(b, _)
            | ExprKind::Cast(_, b)
            | ExprKind::SizeofExpr(b)
            | ExprKind::Stringof(b)
            | ExprKind::Xlate(_, b) => walk(b, out),
            _ => {}
        }
    }
    fn stmts(v: &[Stmt], out: &mut HashMap<(Scope, String), bool>) {
        for s in v {
            match s {
                Stmt::Expr(e) => walk(e, out),
                Stmt::If {
                    cond, then, els, ..
                } => {
                    walk(cond, out);
                    stmts(then, out);
                    stmts(els, out);
                }
            }
        }
    }
    for item in &prog.items {
        if let Item::Clause(c) = item {
            if let Some(p) = &c.predicate {
                walk(p, out);
            }
            stmts(&c.body, out);
        }
    }
}

pub(crate) fn incompat(line: u32, l: &str, op: &str, r: &str) -> CompileError {
    CompileError::new(
        "D_OP_INCOMPAT",
        line,
        format!(
            "operands have incompatible types: \"{}\" {} \"{}\"",
            l, op, r
        ),
    )
}

impl<'m> Checker<'m> {
    pub fn new(repo: TypeRepo, opts: CheckOptions, matcher: &'m dyn ProbeMatcher) -> Self {
        Checker {
            repo,
            globals: HashMap::new(),
            tls: HashMap::new(),
            locals: HashMap::new(),
            inlines: HashMap::new(),
            enumerators: HashMap::new(),
            functions: HashMap::new(),
            aggs: HashMap::new(),
            agg_order: Vec::new(),
            translators: Vec::new(),
            next_id: [0x500; 3],
            opts,
            matcher,
            bindings: Vec::new(),
            alloca_vars: std::collections::HashSet::new(),
            cur_descs: Vec::new(),
            assigned: HashMap::new(),
            spill_slots: Vec::new(),
        }
    }

    /// Reserves `n` hidden 64-bit clause-local variables as register spill slots. Their names
    /// start with `%`, so no D program can name them.
    pub fn reserve_spill_slots(&mut self, n: usize) {
        let int64 = Ty::C(self.repo.b.int64);
        while self.spill_slots.len() < n {
            let name = format!("%spill{}", self.spill_slots.len());
            let v = self
                .new_var(&name, Scope::Local, int64, VarShape::Scalar)
                .vref;
            self.spill_slots.push(v);
        }
    }

    // ------------------------------------------------------------------ types

    /// The printable name of a D type.
    pub fn ty_name(&self, t: Ty) -> String {
        match t {
            Ty::C(id) => self.repo.name(id),
            Ty::Stack => "stack".into(),
            Ty::Sym => "_symaddr".into(),
            Ty::USym => "_usymaddr".into(),
            Ty::Agg => "aggregation".into(),
        }
    }

    pub fn c(&self, t: Ty) -> Option<TypeId> {
        match t {
            Ty::C(id) => Some(id),
            Ty::Sym | Ty::USym => Some(self.repo.b.uint64),
            _ => None,
        }
    }

    pub fn is_int(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_integer(c))
    }
    /// Arithmetic as libdtrace defines it: integers and enums only (floating-point values can
    /// be declared, recorded and printed, but not computed with).
    pub fn is_arith(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_integer(c))
    }
    pub fn is_float(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_float(c))
    }
    pub fn is_ptr(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_pointer(c))
    }
    pub fn is_array(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_array(c))
    }
    pub fn is_string(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_string(c))
    }
    pub fn is_void(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_void(c))
    }
    pub fn is_scalar(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_scalar(c))
    }
    pub fn is_sou(&self, t: Ty) -> bool {
        self.c(t).is_some_and(|c| self.repo.is_sou(c))
    }
    pub fn is_void_ptr(&self, t: Ty) -> bool {
        self.c(t)
            .and_then(|c| self.repo.referenced(c))
            .is_some_and(|p| self.repo.is_void(p))
            && self.is_ptr(t)
    }

    /// Strings, `char *` and `char []` all work as D strings.
    pub fn is_stringish(&self, t: Ty) -> bool {
        if self.is_string(t) {
            return true;
        }
        match self.c(t).and_then(|c| self.repo.referenced(c)) {
            Some(r) => self.repo.is_char(r),
            None => false,
        }
    }

    fn int_ty(&self, lit: &IntLit) -> TypeId {
        let b = &self.repo.b;
        let v = lit.value;
        match (lit.unsigned, lit.longs) {
            (false, 0) => {
                if v <= i32::MAX as u64 {
                    b.int
                } else if !lit.decimal && v <= u32::MAX as u64 {
                    b.uint
                } else if v <= i64::MAX as u64 {
                    b.long
                } else {
                    b.ulong
                }
            }
            (true, 0) => {
                if v <= u32::MAX as u64 {
                    b.uint
                } else {
                    b.ulong
                }
            }
            (false, _) => {
                if v <= i64::MAX as u64 {
                    if lit.longs == 2 {
                        b.longlong
                    } else {
                        b.long
                    }
                } else if lit.longs == 2 {
                    b.ulonglong
                } else {
                    b.ulong
                }
            }
            (true, _) => {
                if lit.longs == 2 {
                    b.ulonglong
                } else {
                    b.ulong
                }
            }
        }
    }

    /// The type of a binary arithmetic result, as libdtrace computes it (not C's rules): no
    /// promotion to `int`; each integer operand ranks by its width in bits plus one if it is
    /// unsigned (enums count as `int`), the higher rank wins, and on a tie the type defined
    /// later. DIF computes in 64 bits either way; the type decides signedness of division,
    /// shifts and comparisons, and the width of the recorded value.
    pub fn arith_result(&self, a: Ty, b: Ty) -> Ty {
        let (ca, cb) = (
            self.c(a).unwrap_or(self.repo.b.int),
            self.c(b).unwrap_or(self.repo.b.int),
        );
        if self.repo.is_integer(ca) && self.repo.is_integer(cb) {
            let as_int = |c: TypeId| {
                if matches!(self.repo.rkind(c), TypeKind::Enum { .. }) {
                    self.repo.b.int
                } else {
                    c
                }
            };
            let (ca, cb) = (as_int(ca), as_int(cb));
            let rank = |c: TypeId| self.repo.size_of(c) * 8 + u64::from(!self.repo.is_signed(c));
            let (ra, rb) = (rank(ca), rank(cb));
            let pick_b = if ra == rb {
                self.repo.resolve(ca) < self.repo.resolve(cb)
            } else {
                rb > ra
            };
            return Ty::C(if pick_b { cb } else { ca });
        }
        let sa = self.repo.size_of(ca).max(4);
        let sb = self.repo.size_of(cb).max(4);
        let ua = !self.repo.is_signed(ca) && self.repo.size_of(ca) >= 4;
        let ub = !self.repo.is_signed(cb) && self.repo.size_of(cb) >= 4;
        let size = sa.max(sb);
        let unsigned = (ua && sa == size) || (ub && sb == size);
        Ty::C(self.repo.int_of(size, !unsigned))
    }

    /// The type of a unary arithmetic result or of a shift (its left operand): libdtrace keeps
    /// the operand's type (no promotion to `int`); enums become `int`.
    fn promote(&self, a: Ty) -> Ty {
        let c = self.c(a).unwrap_or(self.repo.b.int);
        if matches!(self.repo.rkind(c), TypeKind::Enum { .. }) || !self.repo.is_integer(c) {
            Ty::C(self.repo.b.int)
        } else {
            Ty::C(c)
        }
    }

    pub fn is_unsigned(&self, t: Ty) -> bool {
        match self.c(t) {
            Some(c) => {
                self.repo.is_pointer(c) || (self.repo.is_integer(c) && !self.repo.is_signed(c))
            }
            None => false,
        }
    }

    /// Resolves declaration specifiers to a type, defining structs/unions/enums they contain.
    pub fn resolve_specs(&mut self, s: &DeclSpecs) -> CResult<TypeId> {
        let line = s.line;
        let t = match &s.base {
            BaseSpec::None => self.repo.b.int,
            BaseSpec::Words(words) => self.resolve_words(words, line)?,
            BaseSpec::Named(n) => match self.repo.typedef(n) {
                Some(t) => t,
                None => {
                    return err(
                        "D_UNKNOWN",
                        line,
                        format!("failed to resolve type {}: Unknown type name", n),
                    )
                }
            },
            BaseSpec::Sou { kind, tag, members } => {
                self.define_sou(*kind, tag.as_deref(), members.as_deref(), line)?
            }
            BaseSpec::Enum { tag, enumerators } => {
                self.define_enum(tag.as_deref(), enumerators.as_deref(), line)?
            }
        };
        Ok(if s.is_const { self.repo.const_of(t) } else { t })
    }

    fn resolve_words(&mut self, words: &[String], line: u32) -> CResult<TypeId> {
        let count = |w: &str| words.iter().filter(|x| x.as_str() == w).count();
        let (signed, unsigned, short, long) = (
            count("signed"),
            count("unsigned"),
            count("short"),
            count("long"),
        );
        let bases: Vec<&String> = words
            .iter()
            .filter(|w| !matches!(w.as_str(), "signed" | "unsigned" | "short" | "long"))
            .collect();
        if bases.len() > 1
            || (signed > 0 && unsigned > 0)
            || signed > 1
            || unsigned > 1
            || short > 1
        {
            return err("D_DECL_COMBO", line, "invalid type combination");
        }
        if short > 0 && long > 0 {
            return err(
                "D_UNKNOWN",
                line,
                format!(
                    "failed to resolve type {} : Unknown type name",
                    words.join(" ")
                ),
            );
        }
        if long > 2 {
            return err("D_DECL_COMBO", line, "invalid type combination");
        }
        let base = bases.first().map(|s| s.as_str()).unwrap_or("int");
        let b = self.repo.b;
        match base {
            "void" | "string" | "float" | "double" | "_Bool" | "bool" => {
                if signed + unsigned > 0 {
                    return err(
                        "D_DECL_SIGNINT",
                        line,
                        "invalid type declaration: signed and unsigned may only be used with integer type",
                    );
                }
                if short > 0 && base != "_Bool" {
                    return err(
                        "D_DECL_SHORTINT",
                        line,
                        "invalid type declaration: short may only be used with integer type",
                    );
                }
                if long > 0 && !(base == "double" && long == 1) {
                    return err(
                        "D_DECL_LONGINT",
                        line,
                        "invalid type declaration: long and long long may only be used with integer or floating-point type",
                    );
                }
                Ok(match base {
                    "void" => b.void,
                    "string" => b.string,
                    "_Bool" | "bool" => b.uchar,
                    "float" => self.float_type("float"),
                    _ => self.float_type(if long == 1 { "long double" } else { "double" }),
                })
            }
            "char" => {
                if short + long > 0 {
                    return err(
                        "D_DECL_LONGINT",
                        line,
                        "invalid type declaration: long and long long may only be used with integer or floating-point type",
                    );
                }
                Ok(if unsigned > 0 { b.uchar } else { b.char })
            }
            _ => {
                let size = if short > 0 {
                    2
                } else if long > 0 {
                    8
                } else {
                    4
                };
                let t = self.repo.int_of(size, unsigned == 0);
                if long == 2 {
                    return Ok(if unsigned > 0 {
                        b.ulonglong
                    } else {
                        b.longlong
                    });
                }
                Ok(t)
            }
        }
    }

    fn float_type(&mut self, name: &str) -> TypeId {
        let size = match name {
            "float" => 4,
            "double" => 8,
            _ => 16,
        };
        // The repository creates float/double/long double right after the integers.
        for id in 0..64u32 {
            if let TypeKind::Float { size: s, .. } = self.repo.kind(id) {
                if *s == size {
                    return id;
                }
            }
        }
        self.repo.b.long
    }

    fn define_sou(
        &mut self,
        kind: SouKind,
        tag: Option<&str>,
        members: Option<&[MemberDecl]>,
        line: u32,
    ) -> CResult<TypeId> {
        let kw = if kind == SouKind::Struct {
            "struct"
        } else {
            "union"
        };
        let existing = tag.and_then(|t| self.repo.tagged(kw, t));
        let Some(members) = members else {
            if let Some(e) = existing {
                return Ok(e);
            }
            let id = self.repo.add(TypeKind::Sou {
                is_union: kind == SouKind::Union,
                tag: tag.map(str::to_string),
                members: None,
                size: 0,
                align: 1,
            });
            if let Some(t) = tag {
                self.repo.set_tag(kw, t, id);
            }
            return Ok(id);
        };
        if let Some(e) = existing {
            if matches!(
                self.repo.kind(e),
                TypeKind::Sou {
                    members: Some(_),
                    ..
                }
            ) {
                return err(
                    "D_DECL_TYPERED",
                    line,
                    format!("type redeclared: {} {}", kw, tag.unwrap_or("")),
                );
            }
        }
        let id = match existing {
            Some(e) => e,
            None => {
                let id = self.repo.add(TypeKind::Sou {
                    is_union: kind == SouKind::Union,
                    tag: tag.map(str::to_string),
                    members: None,
                    size: 0,
                    align: 1,
                });
                if let Some(t) = tag {
                    self.repo.set_tag(kw, t, id);
                }
                id
            }
        };
        let mut fields: Vec<(String, TypeId, Option<u32>)> = Vec::new();
        for m in members {
            let base = self.resolve_specs(&m.specs)?;
            for (d, width) in &m.declarators {
                let name = d.name().unwrap_or("").to_string();
                let ty = self.apply_declarator(base, d, m.line, false)?;
                if self.repo.is_void(ty) || self.repo.is_function(ty) {
                    return err(
                        "D_DECL_VOIDOBJ",
                        m.line,
                        format!("cannot have void member: {}", name),
                    );
                }
                if self.repo.is_incomplete(ty) || ty == id {
                    return err(
                        "D_DECL_INCOMPLETE",
                        m.line,
                        format!(
                            "incomplete struct/union/enum {}: {}",
                            self.repo.name(ty),
                            name
                        ),
                    );
                }
                let bits = match width {
                    None => None,
                    Some(w) => {
                        let we = self.expr(w)?;
                        let Some(v) = self.const_value(&we) else {
                            return err(
                                "D_DECL_BFCONST",
                                m.line,
                                "positive integral constant expression expected as bit-field size",
                            );
                        };
                        if v <= 0 && !(v == 0 && name.is_empty()) {
                            return err(
                                "D_DECL_BFCONST",
                                m.line,
                                "positive integral constant expression expected as bit-field size",
                            );
                        }
                        if !self.repo.is_integer(ty) {
                            return err(
                                "D_DECL_BFTYPE",
                                m.line,
                                format!("invalid type for bit-field: {}", name),
                            );
                        }
                        if v as u64 > self.repo.size_of(ty) * 8 {
                            return err(
                                "D_DECL_BFSIZE",
                                m.line,
                                format!("bit-field too big for type: {}", name),
                            );
                        }
                        Some(v as u32)
                    }
                };
                if !name.is_empty() && fields.iter().any(|f| f.0 == name) {
                    return err(
                        "D_DECL_MEMBER",
                        m.line,
                        format!(
                            "failed to define member '{}': Duplicate member or variable name",
                            name
                        ),
                    );
                }
                fields.push((name, ty, bits));
            }
        }
        let (ms, size, align) = self.repo.layout(kind == SouKind::Union, &fields);
        if let TypeKind::Sou {
            members,
            size: s,
            align: a,
            ..
        } = self.repo.kind_mut(id)
        {
            *members = Some(ms);
            *s = size;
            *a = align;
        }
        Ok(id)
    }

    fn define_enum(
        &mut self,
        tag: Option<&str>,
        list: Option<&[Enumerator]>,
        line: u32,
    ) -> CResult<TypeId> {
        let existing = tag.and_then(|t| self.repo.tagged("enum", t));
        let Some(list) = list else {
            if let Some(e) = existing {
                return Ok(e);
            }
            let id = self.repo.add(TypeKind::Enum {
                tag: tag.map(str::to_string),
                values: None,
            });
            if let Some(t) = tag {
                self.repo.set_tag("enum", t, id);
            }
            return Ok(id);
        };
        if let Some(e) = existing {
            if matches!(
                self.repo.kind(e),
                TypeKind::Enum {
                    values: Some(_),
                    ..
                }
            ) {
                return err(
                    "D_DECL_TYPERED",
                    line,
                    format!("type redeclared: enum {}", tag.unwrap_or("")),
                );
            }
        }
        let id = existing.unwrap_or_else(|| {
            self.repo.add(TypeKind::Enum {
                tag: tag.map(str::to_string),
                values: None,
            })
        });
        if let Some(t) = tag {
            self.repo.set_tag("enum", t, id);
        }
        let mut values: Vec<(String, i64)> = Vec::new();
        let mut next: i64 = 0;
        for e in list {
            if values.iter().any(|(n, _)| n == &e.name) {
                return err(
                    "D_UNKNOWN",
                    e.line,
                    format!(
                        "failed to define enumerator '{}': Duplicate member or variable name",
                        e.name
                    ),
                );
            }
            if self.enumerators.contains_key(&e.name)
                || self.globals.contains_key(&e.name)
                || self.inlines.contains_key(&e.name)
            {
                return err(
                    "D_DECL_IDRED",
                    e.line,
                    format!("identifier redeclared: {}", e.name),
                );
            }
            let v = match &e.value {
                None => next,
                Some(x) => {
                    let te = self.expr(x)?;
                    match self.const_value(&te) {
                        Some(v) if self.is_int(te.ty) => v,
                        _ => {
                            return err(
                                "D_DECL_ENCONST",
                                e.line,
                                format!("enumerator '{}' must be assigned to an integral constant expression", e.name),
                            )
                        }
                    }
                }
            };
            if v > i64::from(i32::MAX) || v < i64::from(i32::MIN) {
                return err(
                    "D_DECL_ENOFLOW",
                    e.line,
                    format!(
                        "enumerator '{}' value overflows INT_MAX ({})",
                        e.name,
                        i32::MAX
                    ),
                );
            }
            values.push((e.name.clone(), v));
            self.enumerators.insert(e.name.clone(), (v, id));
            next = v + 1;
        }
        if let TypeKind::Enum { values: vs, .. } = self.repo.kind_mut(id) {
            *vs = Some(values);
        }
        Ok(id)
    }

    /// Applies a declarator to a base type. `allow_unsized` accepts `[]` (extern declarations).
    /// (the caller handles those; here they are an error).
    pub fn apply_declarator(
        &mut self,
        base: TypeId,
        d: &Declarator,
        line: u32,
        allow_unsized: bool,
    ) -> CResult<TypeId> {
        match d {
            Declarator::Name(_) => Ok(base),
            Declarator::Pointer(inner) => {
                let p = self.repo.pointer_to(base);
                self.apply_declarator(p, inner, line, allow_unsized)
            }
            Declarator::Array(inner, dim) => {
                let count = match dim {
                    ArrayDim::Empty if allow_unsized => 0,
                    ArrayDim::Empty => {
                        return err(
                            "D_DECL_ARRNULL",
                            line,
                            format!(
                                "array declaration requires array dimension or tuple signature: {}",
                                d.name().unwrap_or("")
                            ),
                        )
                    }
                    ArrayDim::Tuple(_) => {
                        return err(
                            "D_DECL_DYNOBJ",
                            line,
                            "associative array may not be used in this context",
                        )
                    }
                    ArrayDim::Size(e) => {
                        let te = self.expr(e)?;
                        match self.const_value(&te) {
                            Some(v) if v > 0 && self.is_int(te.ty) => v as u64,
                            Some(v) if v < 0 && self.is_int(te.ty) && te_is_huge(&te) => {
                                return err("D_DECL_ARRBIG", line, "array dimension too big")
                            }
                            _ => {
                                return err(
                                    "D_DECL_ARRSUB",
                                    line,
                                    "positive integral constant expression or tuple signature expected as array declaration subscript",
                                )
                            }
                        }
                    }
                };
                let esz = self.repo.size_of(base).max(1);
                if count > (i32::MAX as u64) || count.saturating_mul(esz) > (u32::MAX as u64) {
                    return err("D_DECL_ARRBIG", line, "array dimension too big");
                }
                let a = self.repo.add(TypeKind::Array { elem: base, count });
                self.apply_declarator(a, inner, line, allow_unsized)
            }
            Declarator::Function(inner, params, varargs) => {
                let mut ps = Vec::new();
                for (i, p) in params.iter().enumerate() {
                    if p.specs.classes.iter().any(|c| *c != StorageClass::Register)
                        && !p.specs.classes.is_empty()
                    {
                        return err(
                            "D_DECL_PARMCLASS",
                            p.line,
                            "inappropriate storage class for function or associative array parameter",
                        );
                    }
                    let pb = self.resolve_specs(&p.specs)?;
                    if let Declarator::Array(_, ArrayDim::Tuple(_)) = &p.declarator {
                        return err(
                            "D_DECL_PROTO_TYPE",
                            p.line,
                            format!(
                                "function prototype may not use parameter of type dynamic variable: {}, parameter #{}",
                                p.declarator.name().unwrap_or("(anonymous)"),
                                i + 1
                            ),
                        );
                    }
                    let pt = self.apply_declarator(pb, &p.declarator, p.line, false)?;
                    if self.repo.is_void(pt) {
                        if let Some(n) = p.declarator.name() {
                            return err(
                                "D_DECL_PROTO_NAME",
                                p.line,
                                format!("void parameter may not have a name: {}", n),
                            );
                        }
                        if params.len() > 1 {
                            return err(
                                "D_DECL_PROTO_VOID",
                                p.line,
                                "void must be sole parameter in a function prototype",
                            );
                        }
                        continue;
                    }
                    ps.push(pt);
                }
                let f = self.repo.add(TypeKind::Function {
                    ret: base,
                    params: ps,
                    varargs: *varargs,
                });
                self.apply_declarator(f, inner, line, allow_unsized)
            }
        }
    }

    /// Resolves a type name (casts, sizeof...).
    pub fn type_name(&mut self, tn: &TypeName) -> CResult<TypeId> {
        let base = self.resolve_specs(&tn.specs)?;
        self.apply_declarator(base, &tn.declarator, tn.line, false)
    }

    // ------------------------------------------------------------ declarations

    fn alloc_id(&mut self, scope: Scope) -> u16 {
        let i = match scope {
            Scope::Global => 0,
            Scope::Thread => 1,
            Scope::Local => 2,
        };
        let id = self.next_id[i];
        self.next_id[i] += 1;
        id
    }

    /// Creates a user variable.
    pub fn new_var(&mut self, name: &str, scope: Scope, ty: Ty, shape: VarShape) -> VarInfo {
        let id = self.alloc_id(scope);
        let is_string = self.is_string(ty);
        let size = match self.c(ty) {
            Some(c) if !is_string => self.repo.size_of(c) as u32,
            _ => 0,
        };
        let by_ref = is_string
            || self.is_sou(ty)
            || self.is_array(ty)
            || matches!(shape, VarShape::Fixed(_));
        let info = VarInfo {
            vref: VarRef {
                name: name.to_string(),
                scope,
                id,
                assoc: matches!(shape, VarShape::Assoc(_)),
                is_string,
                size,
                by_ref,
            },
            ty,
            shape,
        };
        let table = match scope {
            Scope::Global => &mut self.globals,
            Scope::Thread => &mut self.tls,
            Scope::Local => &mut self.locals,
        };
        table.insert(name.to_string(), info.clone());
        info
    }

    fn is_builtin_function(name: &str) -> bool {
        super::calls::is_known_function(name)
    }

    pub fn decl(&mut self, d: &Decl) -> CResult<()> {
        let line = d.line;
        let classes = &d.specs.classes;
        if classes.iter().any(|c| {
            matches!(
                c,
                StorageClass::Register | StorageClass::Auto | StorageClass::Static
            )
        }) {
            return err(
                "D_DECL_BADCLASS",
                line,
                "specified storage class not appropriate in D",
            );
        }
        let scopes = classes
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    StorageClass::SelfScope
                        | StorageClass::ThisScope
                        | StorageClass::Extern
                        | StorageClass::Typedef
                )
            })
            .count();
        if scopes > 1 {
            return err(
                "D_DECL_CLASS",
                line,
                "only one storage class allowed in a declaration",
            );
        }
        let is_typedef = classes.contains(&StorageClass::Typedef);
        let is_defn = matches!(
            &d.specs.base,
            BaseSpec::Sou {
                members: Some(_),
                ..
            } | BaseSpec::Enum {
                enumerators: Some(_),
                ..
            }
        ) || matches!(
            &d.specs.base,
            BaseSpec::Sou { tag: Some(_), .. } | BaseSpec::Enum { tag: Some(_), .. }
        );
        let base = self.resolve_specs(&d.specs)?;
        if d.declarators.is_empty() {
            if !is_defn {
                return err("D_DECL_USELESS", line, "useless declaration");
            }
            return Ok(());
        }
        for (dtor, _, dline) in &d.declarators {
            let name = dtor.name().unwrap_or("").to_string();
            if name.contains('`') {
                return err(
                    "D_DECL_SCOPE",
                    *dline,
                    format!(
                        "D scoping operator may not be used in a declaration name ({})",
                        name
                    ),
                );
            }
            if is_typedef {
                let t = self.apply_declarator(base, dtor, *dline, false)?;
                if self.repo.typedef(&name).is_some() {
                    return err(
                        "D_DECL_IDRED",
                        *dline,
                        format!("typedef redeclared: {}", name),
                    );
                }
                self.repo.add_typedef(&name, t);
                continue;
            }
            let scope = if classes.contains(&StorageClass::SelfScope) {
                Scope::Thread
            } else if classes.contains(&StorageClass::ThisScope) {
                Scope::Local
            } else {
                Scope::Global
            };
            // Associative array declarations: `type name[keytype, ...]`.
            if let Declarator::Array(inner, ArrayDim::Tuple(params)) = dtor {
                if scope == Scope::Local {
                    return err(
                        "D_DECL_LOCASSC",
                        *dline,
                        format!(
                            "associative arrays may not be declared as local variables: {}",
                            name
                        ),
                    );
                }
                let mut keys = Vec::new();
                for (i, p) in params.iter().enumerate() {
                    if !p.specs.classes.is_empty() {
                        return err("D_DECL_PARMCLASS", p.line, "inappropriate storage class for function or associative array parameter");
                    }
                    let pb = self.resolve_specs(&p.specs)?;
                    let pt = self.apply_declarator(pb, &p.declarator, p.line, false)?;
                    if self.repo.is_void(pt) {
                        return err(
                            "D_DECL_PROTO_TYPE",
                            p.line,
                            format!(
                                "array prototype may not use parameter of type void: {}, parameter #{}",
                                p.declarator.name().unwrap_or("(anonymous)"),
                                i + 1
                            ),
                        );
                    }
                    keys.push(Ty::C(pt));
                }
                let vt = self.apply_declarator(base, inner, *dline, false)?;
                self.check_object_type(vt, &name, *dline)?;
                self.declare_var(&name, scope, Ty::C(vt), VarShape::Assoc(Some(keys)), *dline)?;
                continue;
            }
            let is_extern = classes.contains(&StorageClass::Extern);
            let t = self.apply_declarator(base, dtor, *dline, is_extern)?;
            if self.repo.is_function(t) {
                if Self::is_builtin_function(&name) {
                    return err(
                        "D_DECL_IDRED",
                        *dline,
                        format!("identifier redefined: {}", name),
                    );
                }
                self.functions.insert(name, t);
                continue;
            }
            self.check_object_type(t, &name, *dline)?;
            let shape = match self.repo.rkind(t) {
                TypeKind::Array { count, .. } => VarShape::Fixed(*count),
                _ => VarShape::Scalar,
            };
            self.declare_var(&name, scope, Ty::C(t), shape, *dline)?;
        }
        Ok(())
    }

    fn check_object_type(&self, t: TypeId, name: &str, line: u32) -> CResult<()> {
        if self.repo.is_void(t) {
            return err(
                "D_DECL_VOIDOBJ",
                line,
                format!("cannot have void object: {}", name),
            );
        }
        if self.repo.is_incomplete(t) {
            return err(
                "D_DECL_INCOMPLETE",
                line,
                format!(
                    "incomplete struct/union/enum {}: {}",
                    self.repo.name(t),
                    name
                ),
            );
        }
        Ok(())
    }

    fn declare_var(
        &mut self,
        name: &str,
        scope: Scope,
        ty: Ty,
        shape: VarShape,
        line: u32,
    ) -> CResult<()> {
        if scope == Scope::Global
            && (BuiltinVar::from_name(name).is_some()
                || self.inlines.contains_key(name)
                || self.enumerators.contains_key(name))
        {
            return err(
                "D_DECL_IDRED",
                line,
                format!("identifier redeclared: {}", name),
            );
        }
        let table = match scope {
            Scope::Global => &self.globals,
            Scope::Thread => &self.tls,
            Scope::Local => &self.locals,
        };
        if let Some(old) = table.get(name) {
            let same = match (old.ty, ty) {
                (Ty::C(a), Ty::C(b)) => self.repo.name(a) == self.repo.name(b),
                (a, b) => a == b,
            };
            if !same || old.shape != shape {
                return err(
                    "D_DECL_IDRED",
                    line,
                    format!("identifier redeclared: {}", name),
                );
            }
            return Ok(());
        }
        self.new_var(name, scope, ty, shape);
        Ok(())
    }

    pub fn inline_decl(&mut self, i: &InlineDecl) -> CResult<()> {
        let base = self.resolve_specs(&i.specs)?;
        let name = i.declarator.name().unwrap_or("").to_string();
        let t = self.apply_declarator(base, &i.declarator, i.line, false)?;
        let prev = if let Some(_old) = self.inlines.get(&name) {
            Some("scalar inline")
        } else if Self::is_builtin_function(&name) {
            Some("function ")
        } else if self.globals.contains_key(&name) || BuiltinVar::from_name(&name).is_some() {
            Some("scalar")
        } else {
            None
        };
        if let Some(p) = prev {
            return err(
                "D_DECL_IDRED",
                i.line,
                format!(
                    "identifier redefined: {}\n\t current: inline definition\n\tprevious: {}",
                    name, p
                ),
            );
        }
        let v = self.expr(&i.value)?;
        if !self.assignable(Ty::C(t), &v) {
            return err(
                "D_OP_INCOMPAT",
                i.line,
                format!(
                    "inline {} definition uses incompatible types: \"{}\" = \"{}\"",
                    name,
                    self.repo.name(t),
                    self.ty_name(v.ty)
                ),
            );
        }
        let value = self.convert_to(v, Ty::C(t));
        self.inlines.insert(name, InlineInfo { ty: t, value });
        Ok(())
    }

    pub fn translator_decl(&mut self, t: &TranslatorDecl) -> CResult<()> {
        let out = self.type_name(&t.output)?;
        if !self.repo.is_sou(out) {
            return err(
                "D_XLATE_SOU",
                t.line,
                "translator output type must be a struct or union",
            );
        }
        if self.repo.is_incomplete(out) {
            return err(
                "D_XLATE_SOU",
                t.line,
                format!("incomplete struct/union/enum {}", self.repo.name(out)),
            );
        }
        let inp = self.type_name(&t.input)?;
        // Check members against the output type with the input bound to a placeholder.
        let placeholder = TExpr::new(TKind::Const(0), Ty::C(inp));
        self.bindings.push((t.input_name.clone(), placeholder));
        let mut result = Ok(());
        for (m, e, line) in &t.members {
            let Some(mem) = self.repo.member(out, m) else {
                result = err(
                    "D_XLATE_MEMB",
                    *line,
                    format!(
                        "translator member {} is not a member of {}",
                        m,
                        self.repo.name(out)
                    ),
                );
                break;
            };
            match self.expr(e) {
                Ok(v) => {
                    if !self.assignable(Ty::C(mem.ty), &v) {
                        result = err(
                            "D_XLATE_INCOMPAT",
                            *line,
                            format!(
                                "translator member {} definition uses incompatible types: \"{}\" = \"{}\"",
                                m,
                                self.repo.name(mem.ty),
                                self.ty_name(v.ty)
                            ),
                        );
                        break;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.bindings.pop();
        result?;
        self.translators.push(Translator {
            output: out,
            input: inp,
            input_name: t.input_name.clone(),
            members: t
                .members
                .iter()
                .map(|(n, e, _)| (n.clone(), e.clone()))
                .collect(),
        });
        Ok(())
    }

    // ------------------------------------------------------------- constants

    /// The value of an integer constant expression.
    pub fn const_value(&self, e: &TExpr) -> Option<i64> {
        match &e.kind {
            TKind::Const(v) => Some(*v as i64),
            _ => None,
        }
    }

    /// Folds a binary operator over constants (signedness from the result type).
    fn fold(&self, op: BinOp, a: u64, b: u64, unsigned: bool) -> Option<u64> {
        let (sa, sb) = (a as i64, b as i64);
        let r = match op {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::Mul => a.wrapping_mul(b),
            BinOp::Div => {
                if b == 0 {
                    return None;
                }
                if unsigned {
                    a / b
                } else {
                    sa.wrapping_div(sb) as u64
                }
            }
            BinOp::Mod => {
                if b == 0 {
                    return None;
                }
                if unsigned {
                    a % b
                } else {
                    sa.wrapping_rem(sb) as u64
                }
            }
            BinOp::Shl => a.wrapping_shl(b as u32),
            BinOp::Shr => {
                if unsigned {
                    a.wrapping_shr(b as u32)
                } else {
                    sa.wrapping_shr(b as u32) as u64
                }
            }
            BinOp::BitAnd => a & b,
            BinOp::BitOr => a | b,
            BinOp::BitXor => a ^ b,
            BinOp::Lt => u64::from(if unsigned { a < b } else { sa < sb }),
            BinOp::Le => u64::from(if unsigned { a <= b } else { sa <= sb }),
            BinOp::Gt => u64::from(if unsigned { a > b } else { sa > sb }),
            BinOp::Ge => u64::from(if unsigned { a >= b } else { sa >= sb }),
            BinOp::Eq => u64::from(a == b),
            BinOp::Ne => u64::from(a != b),
            BinOp::LogAnd => u64::from(a != 0 && b != 0),
            BinOp::LogOr => u64::from(a != 0 || b != 0),
            BinOp::LogXor => u64::from((a != 0) != (b != 0)),
            BinOp::Comma => b,
        };
        // libdtrace folds integer constants in 64 bits and keeps the full result even when
        // the node's type is narrower (`(1 << 63) - 1` is an int whose value is INT64_MAX);
        // only a cast or an assignment converts it.
        Some(r)
    }

    /// Truncates/sign-extends a constant to its type's width.
    pub fn truncate_const(&self, v: u64, ty: Ty) -> u64 {
        let Some(c) = self.c(ty) else { return v };
        if !self.repo.is_integer(c) {
            return v;
        }
        let bits = self.repo.size_of(c) * 8;
        if bits == 0 || bits >= 64 {
            return v;
        }
        let mask = (1u64 << bits) - 1;
        let t = v & mask;
        if self.repo.is_signed(c) && (t >> (bits - 1)) & 1 == 1 {
            t | !mask
        } else {
            t
        }
    }

    /// Converts an expression to a type (integer narrowing/widening for assignments and casts).
    pub fn convert_to(&self, e: TExpr, to: Ty) -> TExpr {
        let (Some(tc), Some(fc)) = (self.c(to), self.c(e.ty)) else {
            return TExpr { ty: to, ..e };
        };
        if !self.repo.is_integer(tc) || !(self.repo.is_integer(fc) || self.repo.is_pointer(fc)) {
            return TExpr { ty: to, ..e };
        }
        let ts = self.repo.size_of(tc);
        let fs = self.repo.size_of(fc);
        let tsigned = self.repo.is_signed(tc);
        if let TKind::Const(v) = e.kind {
            return TExpr::new(TKind::Const(self.truncate_const(v, to)), to);
        }
        // DIF computes in 64 bits: a value narrower than 64 bits is only known to be in range
        // when it was loaded or converted, not when it is the result of arithmetic.
        let exact = !matches!(
            e.kind,
            TKind::Bin { .. }
                | TKind::Neg(_)
                | TKind::BitNot(_)
                | TKind::Update { .. }
                | TKind::Ternary(..)
        );
        let fsigned = self.repo.is_signed(fc);
        if ts >= 8 || (exact && fs <= ts && (tsigned == fsigned || (fs < ts && !fsigned))) {
            return TExpr { ty: to, ..e };
        }
        TExpr::new(
            TKind::Convert {
                e: Box::new(e),
                bits: (ts * 8) as u8,
                signed: tsigned,
            },
            to,
        )
    }

    /// Whether a value of `v`'s type may be stored in an object of type `to`.
    pub fn assignable(&self, to: Ty, v: &TExpr) -> bool {
        let from = v.ty;
        if to == from {
            return true;
        }
        if self.is_void(from) || self.is_void(to) {
            return false;
        }
        if self.is_arith(to) && self.is_arith(from) {
            return true;
        }
        if self.is_string(to) {
            return self.is_stringish(from) || self.is_void_ptr(from);
        }
        if self.is_array(to)
            && self
                .c(to)
                .and_then(|c| self.repo.referenced(c))
                .is_some_and(|e| self.repo.is_char(e))
            && self.is_stringish(from)
        {
            return true;
        }
        if (self.is_sou(to) || self.is_array(to)) && matches!(v.kind, TKind::Const(0)) {
            // Storing 0 deletes a dynamic variable of any type.
            return true;
        }
        if self.is_ptr(to) {
            if self.is_int(from) {
                return matches!(v.kind, TKind::Const(_));
            }
            if self.is_ptr(from) || self.is_array(from) || self.is_string(from) {
                return self.ptr_compat(to, from);
            }
            return false;
        }
        if self.is_int(to) && self.is_ptr(from) {
            return true;
        }
        if self.is_sou(to) && self.is_sou(from) {
            let (a, b) = (self.c(to).unwrap_or(0), self.c(from).unwrap_or(0));
            return self.repo.resolve(a) == self.repo.resolve(b);
        }
        matches!((to, from), (Ty::Sym, _) | (Ty::USym, _)) && self.is_int(from)
    }

    /// Pointer compatibility: same pointee, or either side `void *`.
    pub fn ptr_compat(&self, a: Ty, b: Ty) -> bool {
        let pa = self.c(a).and_then(|c| self.repo.referenced(c));
        let pb = if self.is_string(b) {
            Some(self.repo.b.char)
        } else {
            self.c(b).and_then(|c| self.repo.referenced(c))
        };
        match (pa, pb) {
            (Some(x), Some(y)) => {
                let (x, y) = (self.repo.resolve(x), self.repo.resolve(y));
                x == y
                    || self.repo.is_void(x)
                    || self.repo.is_void(y)
                    || self.repo.name(x) == self.repo.name(y)
                    || (self.repo.is_integer(x)
                        && self.repo.is_integer(y)
                        && self.repo.size_of(x) == self.repo.size_of(y))
            }
            _ => false,
        }
    }

    // ------------------------------------------------------------ expressions

    fn ident(&mut self, name: &str, line: u32) -> CResult<TExpr> {
        for (n, v) in self.bindings.iter().rev() {
            if n == name {
                return Ok(v.clone());
            }
        }
        if let Some(bv) = BuiltinVar::from_name(name) {
            if bv.is_array() {
                return err(
                    "D_IDENT_BADREF",
                    line,
                    format!("{}[ ] may not be referenced as scalar", name),
                );
            }
            let ty = self.builtin_type(bv);
            return Ok(TExpr::new(TKind::Builtin(bv.id()), ty));
        }
        if let Some(i) = self.inlines.get(name) {
            return Ok(i.value.clone());
        }
        if let Some((v, t)) = self.enumerators.get(name) {
            return Ok(TExpr::new(TKind::Const(*v as u64), Ty::C(*t)));
        }
        if let Some(v) = self.globals.get(name) {
            return match &v.shape {
                VarShape::Assoc(_) => err(
                    "D_IDENT_BADREF",
                    line,
                    format!(
                        "associative array '{}' may not be referenced as scalar",
                        name
                    ),
                ),
                _ => Ok(TExpr::new(TKind::Var(v.vref.clone()), v.ty)),
            };
        }
        if name.contains('`') {
            return Err(self.kernel_symbol_error(name, line));
        }
        if self.assigned.get(&(Scope::Global, name.to_string())) == Some(&false) {
            let long = Ty::C(self.repo.b.long);
            let v = self.new_var(name, Scope::Global, long, VarShape::Scalar);
            return Ok(TExpr::new(TKind::Var(v.vref), v.ty));
        }
        if self.functions.contains_key(name) || super::calls::is_known_function(name) {
            return err(
                "D_IDENT_BADREF",
                line,
                format!("function '{}' may not be referenced as scalar", name),
            );
        }
        err(
            "D_IDENT_UNDEF",
            line,
            format!("failed to resolve {}: Unknown variable name", name),
        )
    }

    pub fn builtin_type(&mut self, bv: BuiltinVar) -> Ty {
        let b = self.repo.b;
        let t = match bv {
            BuiltinVar::Curthread => {
                let thr = match self.repo.tagged("struct", "thread") {
                    Some(t) => t,
                    None => {
                        let id = self.repo.add(TypeKind::Sou {
                            is_union: false,
                            tag: Some("thread".into()),
                            members: None,
                            size: 0,
                            align: 1,
                        });
                        self.repo.set_tag("struct", "thread", id);
                        id
                    }
                };
                self.repo.pointer_to(thr)
            }
            BuiltinVar::Timestamp | BuiltinVar::Vtimestamp | BuiltinVar::Walltimestamp => b.uint64,
            BuiltinVar::Ipl
            | BuiltinVar::Epid
            | BuiltinVar::Id
            | BuiltinVar::Stackdepth
            | BuiltinVar::Ustackdepth => b.uint,
            BuiltinVar::Caller | BuiltinVar::Ucaller => b.uintptr,
            BuiltinVar::Probeprov
            | BuiltinVar::Probemod
            | BuiltinVar::Probefunc
            | BuiltinVar::Probename
            | BuiltinVar::Execname
            | BuiltinVar::Zonename
            | BuiltinVar::Execargs
            | BuiltinVar::Jailname => b.string,
            BuiltinVar::Pid | BuiltinVar::Ppid => b.pid_t,
            BuiltinVar::Tid | BuiltinVar::Errno | BuiltinVar::Jid | BuiltinVar::Cpu => b.int,
            BuiltinVar::Uid | BuiltinVar::Gid => b.uint,
            _ => b.int64,
        };
        Ty::C(t)
    }

    /// Checks an expression in value context.
    pub fn expr(&mut self, e: &Expr) -> CResult<TExpr> {
        let line = e.line;
        match &e.kind {
            ExprKind::Int(lit) => {
                let t = self.int_ty(lit);
                Ok(TExpr::new(
                    TKind::Const(self.truncate_const(lit.value, Ty::C(t))),
                    Ty::C(t),
                ))
            }
            ExprKind::Str(s) => Ok(TExpr::new(TKind::Str(s.clone()), Ty::C(self.repo.b.string))),
            ExprKind::Ident(n) => self.ident(n, line),
            ExprKind::SelfVar(n) | ExprKind::ThisVar(n) => {
                let scope = if matches!(e.kind, ExprKind::SelfVar(_)) {
                    Scope::Thread
                } else {
                    Scope::Local
                };
                let table = if scope == Scope::Thread {
                    &self.tls
                } else {
                    &self.locals
                };
                match table.get(n) {
                    Some(v) => {
                        if matches!(v.shape, VarShape::Assoc(_)) {
                            return err(
                                "D_IDENT_BADREF",
                                line,
                                format!(
                                    "associative array '{}' may not be referenced as scalar",
                                    n
                                ),
                            );
                        }
                        Ok(TExpr::new(TKind::Var(v.vref.clone()), v.ty))
                    }
                    None if self.assigned.get(&(scope, n.clone())) == Some(&false) => {
                        let long = Ty::C(self.repo.b.long);
                        let v = self.new_var(n, scope, long, VarShape::Scalar);
                        Ok(TExpr::new(TKind::Var(v.vref), v.ty))
                    }
                    None => {
                        let prefix = if scope == Scope::Thread {
                            "self->"
                        } else {
                            "this->"
                        };
                        err(
                            "D_VAR_UNDEF",
                            line,
                            format!("{}{} has not yet been declared or assigned", prefix, n),
                        )
                    }
                }
            }
            ExprKind::AggName(_) | ExprKind::AggRef(_, _) => {
                Ok(TExpr::new(TKind::Const(0), Ty::Agg))
            }
            ExprKind::Unary(op, x) => self.unary(*op, x, line),
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, line),
            ExprKind::Assign(op, l, r) => self.assign(*op, l, r, line),
            ExprKind::Ternary(c, a, b) => {
                let tc = self.expr(c)?;
                if !self.is_scalar(tc.ty) {
                    return err(
                        "D_OP_SCALAR",
                        line,
                        "operator ?: expression must be of scalar type",
                    );
                }
                let ta = self.expr(a)?;
                let tb = self.expr(b)?;
                if (self.is_void(ta.ty) || self.is_void(tb.ty))
                    && (is_action_call(a) || is_action_call(b))
                {
                    return err(
                        "D_OP_ACT",
                        line,
                        "action cannot be used in a conditional context",
                    );
                }
                let ty = if self.is_arith(ta.ty) && self.is_arith(tb.ty) {
                    self.arith_result(ta.ty, tb.ty)
                } else if self.is_stringish(ta.ty)
                    && self.is_stringish(tb.ty)
                    && (self.is_string(ta.ty) || self.is_string(tb.ty))
                {
                    Ty::C(self.repo.b.string)
                } else if ta.ty == tb.ty
                    || (self.is_ptr(ta.ty) && (self.is_ptr(tb.ty) || self.is_int(tb.ty)))
                {
                    ta.ty
                } else if self.is_int(ta.ty) && self.is_ptr(tb.ty) {
                    tb.ty
                } else {
                    return err(
                        "D_OP_INCOMPAT",
                        line,
                        format!(
                            "operator ?: operands must have compatible types: \"{}\" and \"{}\"",
                            self.ty_name(ta.ty),
                            self.ty_name(tb.ty)
                        ),
                    );
                };
                if let (TKind::Const(cv), TKind::Const(av), TKind::Const(bv)) =
                    (&tc.kind, &ta.kind, &tb.kind)
                {
                    return Ok(TExpr::new(
                        TKind::Const(if *cv != 0 { *av } else { *bv }),
                        ty,
                    ));
                }
                Ok(TExpr::new(
                    TKind::Ternary(Box::new(tc), Box::new(ta), Box::new(tb)),
                    ty,
                ))
            }
            ExprKind::Call(name, args) => super::calls::call_expr(self, name, args, line),
            ExprKind::Index(base, keys) => self.index(base, keys, line),
            ExprKind::Member(base, m) => {
                // xlate<T>(x).m
                if let ExprKind::Xlate(tn, x) = &base.kind {
                    return self.xlate_member(tn, x, m, false, line);
                }
                let tb = self.expr(base)?;
                let Some(c) = self.c(tb.ty).filter(|c| self.repo.is_sou(*c)) else {
                    return err(
                        "D_OP_SOU",
                        line,
                        format!(
                            "operator . cannot be applied to type \"{}\"; must be applied to a struct or union",
                            self.ty_name(tb.ty)
                        ),
                    );
                };
                self.member_access(tb, c, m, line, false)
            }
            ExprKind::Arrow(base, m) => {
                if let ExprKind::Xlate(tn, x) = &base.kind {
                    return self.xlate_member(tn, x, m, true, line);
                }
                let tb = self.expr(base)?;
                if !self.is_ptr(tb.ty) {
                    return err("D_OP_PTR", line, "operator -> must be applied to a pointer");
                }
                let pointee = self
                    .c(tb.ty)
                    .and_then(|c| self.repo.referenced(c))
                    .unwrap_or(self.repo.b.void);
                if !self.repo.is_sou(pointee) {
                    return err(
                        "D_OP_SOU",
                        line,
                        format!(
                            "operator -> cannot be applied to pointer to type \"{}\"; must be applied to a struct or union pointer",
                            self.repo.name(pointee)
                        ),
                    );
                }
                if self.repo.is_incomplete(pointee) {
                    return err(
                        "D_OP_INCOMPLETE",
                        line,
                        format!(
                            "operator -> cannot be applied to a forward declaration: no {} definition is available",
                            self.repo.name(pointee)
                        ),
                    );
                }
                self.member_access(tb, pointee, m, line, true)
            }
            ExprKind::Cast(tn, x) => {
                let to = self.type_name(tn)?;
                if let ExprKind::Xlate(xt, _) = &x.kind {
                    let xto = self.type_name(xt)?;
                    if self.repo.is_pointer(xto) {
                        return err(
                            "D_CAST_INVAL",
                            line,
                            format!(
                                "invalid cast expression: \"pointer to translated data\" to \"{}\"",
                                self.repo.name(to)
                            ),
                        );
                    }
                }
                let tx = self.expr(x)?;
                let tt = Ty::C(to);
                if self.repo.is_void(to) {
                    return Ok(TExpr { ty: tt, ..tx });
                }
                let ok = (self.repo.is_scalar(to)
                    && (self.is_scalar(tx.ty)
                        || self.is_array(tx.ty)
                        || self.is_string(tx.ty)
                        || matches!(tx.ty, Ty::Sym | Ty::USym)))
                    || (self.repo.is_string(to)
                        && (self.is_ptr(tx.ty) || self.is_stringish(tx.ty)))
                    || (self.is_sou(tt) && tt == tx.ty);
                if !ok {
                    return err(
                        "D_CAST_INVAL",
                        line,
                        format!(
                            "invalid cast expression: \"{}\" to \"{}\"",
                            self.ty_name(tx.ty),
                            self.repo.name(to)
                        ),
                    );
                }
                if self.repo.is_integer(to) {
                    return Ok(self.convert_to(tx, tt));
                }
                Ok(TExpr { ty: tt, ..tx })
            }
            ExprKind::SizeofType(tn) => {
                let t = self.type_name(tn)?;
                self.sizeof_type(t, line)
            }
            ExprKind::SizeofExpr(x) => {
                if let ExprKind::Ident(n) = &x.kind {
                    if let Some(v) = self.globals.get(n) {
                        if matches!(v.shape, VarShape::Assoc(_)) {
                            return err(
                                "D_IDENT_BADREF",
                                line,
                                format!(
                                    "associative array '{}' may not be referenced as scalar",
                                    n
                                ),
                            );
                        }
                    }
                }
                let tx = self.expr(x)?;
                if matches!(tx.kind, TKind::Bitfield { .. }) {
                    return err(
                        "D_SIZEOF_BITFIELD",
                        line,
                        "cannot apply sizeof to a bit-field",
                    );
                }
                match tx.ty {
                    Ty::C(c) => self.sizeof_type(c, line),
                    _ => err(
                        "D_SIZEOF_TYPE",
                        line,
                        "cannot apply sizeof to an operand of unknown size",
                    ),
                }
            }
            ExprKind::Offsetof(tn, m) => {
                let t = self.type_name(tn)?;
                if !self.repo.is_sou(t) || self.repo.is_incomplete(t) {
                    return err(
                        "D_OFFSETOF_TYPE",
                        line,
                        "offsetof operand must be a struct or union type",
                    );
                }
                let Some(mem) = self.repo.member(t, m) else {
                    return err(
                        "D_UNKNOWN",
                        line,
                        format!("failed to determine offset of {}: Member name not found", m),
                    );
                };
                if mem.bits.is_some() {
                    return err(
                        "D_OFFSETOF_BITFIELD",
                        line,
                        format!("cannot take offset of a bit-field: {}", m),
                    );
                }
                Ok(TExpr::new(
                    TKind::Const(mem.offset),
                    Ty::C(self.repo.b.size_t),
                ))
            }
            ExprKind::Stringof(x) => {
                let tx = self.expr(x)?;
                if !(self.is_scalar(tx.ty) || self.is_stringish(tx.ty) || self.is_array(tx.ty)) {
                    return err(
                        "D_STRINGOF_TYPE",
                        line,
                        format!(
                            "cannot apply stringof to a value of type {}",
                            self.ty_name(tx.ty)
                        ),
                    );
                }
                Ok(TExpr {
                    ty: Ty::C(self.repo.b.string),
                    ..tx
                })
            }
            ExprKind::Xlate(tn, x) => self.xlate_whole(tn, x, line),
        }
    }

    fn sizeof_type(&self, t: TypeId, line: u32) -> CResult<TExpr> {
        let size = if self.repo.is_string(t) {
            self.opts.strsize
        } else {
            if self.repo.is_void(t) || self.repo.is_incomplete(t) || self.repo.is_function(t) {
                return err(
                    "D_SIZEOF_TYPE",
                    line,
                    "cannot apply sizeof to an operand of unknown size",
                );
            }
            self.repo.size_of(t)
        };
        Ok(TExpr::new(TKind::Const(size), Ty::C(self.repo.b.size_t)))
    }

    fn xlate_member(
        &mut self,
        tn: &TypeName,
        x: &Expr,
        m: &str,
        arrow: bool,
        line: u32,
    ) -> CResult<TExpr> {
        let to = self.type_name(tn)?;
        let out = if arrow {
            self.repo.referenced(to).unwrap_or(to)
        } else {
            to
        };
        let tx = self.expr(x)?;
        let tr = self.find_translator(out, &tx, line)?;
        let Some((_, mexpr)) = tr.members.iter().find(|(n, _)| n == m) else {
            return err(
                "D_XLATE_MEMB",
                line,
                format!(
                    "translator member {} is not a member of {}",
                    m,
                    self.repo.name(out)
                ),
            );
        };
        self.bindings.push((tr.input_name.clone(), tx));
        let r = self.expr(mexpr);
        self.bindings.pop();
        let r = r?;
        let mt = self.repo.member(out, m).map(|mm| mm.ty);
        Ok(match mt {
            Some(t) => self.convert_to(r, Ty::C(t)),
            None => r,
        })
    }

    /// `xlate<T>(x)` or `xlate<T *>(x)` used as a whole: like libdtrace, the translated object
    /// is built in `alloca()` scratch memory (zero-filled, so members the translator does not
    /// define read as 0), one member store per translator member, and the expression is its
    /// address (typed `T *`, or `T` whose value is its address).
    fn xlate_whole(&mut self, tn: &TypeName, x: &Expr, line: u32) -> CResult<TExpr> {
        let to = self.type_name(tn)?;
        let pointer = self.repo.is_pointer(to);
        let out = if pointer {
            self.repo.referenced(to).unwrap_or(to)
        } else {
            to
        };
        let tx = self.expr(x)?;
        let tr = self.find_translator(out, &tx, line)?;
        let uintptr = Ty::C(self.repo.b.uintptr);
        let mut n = 0;
        while self.locals.contains_key(&format!("%xlate{n}")) {
            n += 1;
        }
        let tmp = self
            .new_var(
                &format!("%xlate{n}"),
                Scope::Local,
                uintptr,
                VarShape::Scalar,
            )
            .vref;
        let size = self.repo.size_of(out);
        let alloc = TExpr::new(
            TKind::Call(
                rdtrace_ffi::dif::Subr::Alloca.id(),
                vec![TExpr::new(TKind::Const(size), Ty::C(self.repo.b.size_t))],
            ),
            uintptr,
        );
        let mut seq = TExpr::new(
            TKind::Store {
                place: Place::Var(tmp.clone()),
                value: Box::new(alloc),
            },
            uintptr,
        );
        for (m, mexpr) in &tr.members {
            let Some(mem) = self.repo.member(out, m) else {
                continue;
            };
            self.bindings.push((tr.input_name.clone(), tx.clone()));
            let r = self.expr(mexpr);
            self.bindings.pop();
            let value = self.convert_to(r?, Ty::C(mem.ty));
            let addr = TExpr::new(
                TKind::Bin {
                    op: BinOp::Add,
                    l: Box::new(TExpr::new(TKind::Var(tmp.clone()), uintptr)),
                    r: Box::new(TExpr::new(TKind::Const(mem.offset), uintptr)),
                    unsigned: true,
                    strings: false,
                },
                uintptr,
            );
            let target = self.load_from(addr, mem.ty, mem.bits.map(|b| (b, mem.bit_offset)));
            let (place, _) = self.mem_place(target, "=", line)?;
            let store = TExpr::new(
                TKind::Store {
                    place,
                    value: Box::new(value),
                },
                Ty::C(mem.ty),
            );
            seq = TExpr::new(
                TKind::Bin {
                    op: BinOp::Comma,
                    l: Box::new(seq),
                    r: Box::new(store),
                    unsigned: false,
                    strings: false,
                },
                Ty::C(mem.ty),
            );
        }
        Ok(TExpr::new(
            TKind::Bin {
                op: BinOp::Comma,
                l: Box::new(seq),
                r: Box::new(TExpr::new(TKind::Var(tmp), Ty::C(to))),
                unsigned: false,
                strings: false,
            },
            Ty::C(to),
        ))
    }

    /// The translator from the type of `tx` to `out`.
    fn find_translator(&self, out: TypeId, tx: &TExpr, line: u32) -> CResult<Translator> {
        let idx = self.translators.iter().position(|t| {
            self.repo.resolve(t.output) == self.repo.resolve(out)
                && (self.repo.name(t.input) == self.ty_name(tx.ty)
                    || (self.is_ptr(tx.ty)
                        && self.repo.is_pointer(t.input)
                        && self.ptr_compat(Ty::C(t.input), tx.ty)))
        });
        let Some(idx) = idx else {
            return err(
                "D_XLATE_NONE",
                line,
                format!(
                    "cannot translate from \"{}\" to \"{}\"",
                    self.ty_name(tx.ty),
                    self.repo.name(out)
                ),
            );
        };
        Ok(self.translators[idx].clone())
    }

    /// `base.m` (base is a struct value, i.e. its address) or `base->m` (base is a pointer).
    fn member_access(
        &mut self,
        base: TExpr,
        sou: TypeId,
        m: &str,
        line: u32,
        _arrow: bool,
    ) -> CResult<TExpr> {
        let Some(mem) = self.repo.member(sou, m) else {
            return err(
                "D_TYPE_MEMBER",
                line,
                format!("{} is not a member of {}", m, self.repo.name(sou)),
            );
        };
        let addr_ty = Ty::C(self.repo.b.uintptr);
        let base_addr = TExpr {
            ty: addr_ty,
            ..base
        };
        let addr = if mem.offset == 0 {
            base_addr
        } else {
            TExpr::new(
                TKind::Bin {
                    op: BinOp::Add,
                    l: Box::new(base_addr),
                    r: Box::new(TExpr::new(TKind::Const(mem.offset), addr_ty)),
                    unsigned: true,
                    strings: false,
                },
                addr_ty,
            )
        };
        Ok(self.load_from(addr, mem.ty, mem.bits.map(|b| (b, mem.bit_offset))))
    }

    /// A value of type `t` stored at `addr`: scalars are loaded, aggregates stay addresses.
    pub fn load_from(&mut self, addr: TExpr, t: TypeId, bits: Option<(u32, u32)>) -> TExpr {
        let ty = Ty::C(t);
        if self.repo.is_sou(t) || self.repo.is_array(t) || self.repo.is_string(t) {
            return TExpr { ty, ..addr };
        }
        // A bit-field is read as the smallest power-of-two unit holding its bits.
        let size = match bits {
            Some((w, off)) => super::types::bitfield_bytes(w + off),
            None => self.repo.size_of(t),
        }
        .clamp(1, 8) as u8;
        let signed = self.repo.is_signed(t);
        let load = TExpr::new(
            TKind::Load {
                addr: Box::new(addr),
                size,
                signed: signed && bits.is_none(),
            },
            ty,
        );
        match bits {
            Some((w, off)) => TExpr::new(
                TKind::Bitfield {
                    unit: Box::new(load),
                    shift: off as u8,
                    width: w as u8,
                    signed,
                },
                ty,
            ),
            None => load,
        }
    }

    fn unary(&mut self, op: UnOp, x: &Expr, line: u32) -> CResult<TExpr> {
        match op {
            UnOp::PreInc | UnOp::PreDec | UnOp::PostInc | UnOp::PostDec => {
                let (place, ty) = self.place(x, None, op.text(), line, true)?;
                if !self.is_scalar(ty) {
                    return err(
                        "D_OP_SCALAR",
                        line,
                        format!("operator {} requires operand of scalar type", op.text()),
                    );
                }
                let step = if self.is_ptr(ty) {
                    let p = self
                        .c(ty)
                        .and_then(|c| self.repo.referenced(c))
                        .unwrap_or(self.repo.b.char);
                    self.repo.size_of(p).max(1)
                } else {
                    1
                };
                let bop = if matches!(op, UnOp::PreInc | UnOp::PostInc) {
                    BinOp::Add
                } else {
                    BinOp::Sub
                };
                let unsigned = self.is_unsigned(ty);
                Ok(TExpr::new(
                    TKind::Update {
                        place,
                        op: bop,
                        value: Box::new(TExpr::new(TKind::Const(step), Ty::C(self.repo.b.int))),
                        post: matches!(op, UnOp::PostInc | UnOp::PostDec),
                        unsigned,
                    },
                    ty,
                ))
            }
            UnOp::AddrOf => {
                match &x.kind {
                    ExprKind::Ident(n)
                        if self.globals.contains_key(n) || BuiltinVar::from_name(n).is_some() =>
                    {
                        return err(
                            "D_ADDROF_VAR",
                            line,
                            "cannot take address of dynamic variable",
                        );
                    }
                    ExprKind::SelfVar(_)
                    | ExprKind::ThisVar(_)
                    | ExprKind::AggName(_)
                    | ExprKind::AggRef(..) => {
                        return err(
                            "D_ADDROF_VAR",
                            line,
                            "cannot take address of dynamic variable",
                        );
                    }
                    ExprKind::Index(b, _) if self.names_dynamic(b) => {
                        return err(
                            "D_ADDROF_VAR",
                            line,
                            "cannot take address of dynamic variable",
                        );
                    }
                    _ => {}
                }
                let tx = self.expr(x)?;
                match tx.kind {
                    TKind::Load { addr, .. } => {
                        let c = self.c(tx.ty).unwrap_or(self.repo.b.void);
                        let p = self.repo.pointer_to(c);
                        Ok(TExpr {
                            ty: Ty::C(p),
                            ..*addr
                        })
                    }
                    TKind::Bitfield { .. } => err(
                        "D_ADDROF_BITFIELD",
                        line,
                        "cannot take address of bit-field",
                    ),
                    _ if self.is_sou(tx.ty) || self.is_array(tx.ty) => {
                        if self.expr_is_var(&tx) {
                            return err(
                                "D_ADDROF_VAR",
                                line,
                                "cannot take address of dynamic variable",
                            );
                        }
                        let c = self.c(tx.ty).unwrap_or(self.repo.b.void);
                        let p = self.repo.pointer_to(c);
                        Ok(TExpr { ty: Ty::C(p), ..tx })
                    }
                    _ => err(
                        "D_ADDROF_LVAL",
                        line,
                        "unacceptable operand for unary & operator",
                    ),
                }
            }
            UnOp::Deref => {
                let tx = self.expr(x)?;
                let Some(p) = self.c(tx.ty).and_then(|c| self.repo.referenced(c)) else {
                    return err(
                        "D_DEREF_NONPTR",
                        line,
                        "cannot dereference non-pointer type",
                    );
                };
                if self.repo.is_void(p) {
                    return err("D_DEREF_VOID", line, "cannot dereference pointer to void");
                }
                if self.repo.is_function(p) {
                    return err(
                        "D_DEREF_FUNC",
                        line,
                        "cannot dereference pointer to function",
                    );
                }
                let a = TExpr {
                    ty: Ty::C(self.repo.b.uintptr),
                    ..tx
                };
                Ok(self.load_from(a, p, None))
            }
            UnOp::Neg | UnOp::Plus => {
                let tx = self.expr(x)?;
                if !self.is_arith(tx.ty) {
                    return err(
                        "D_OP_ARITH",
                        line,
                        format!(
                            "operator {} requires an operand of arithmetic type",
                            op.text()
                        ),
                    );
                }
                let ty = self.promote(tx.ty);
                if op == UnOp::Plus {
                    return Ok(TExpr { ty, ..tx });
                }
                if let TKind::Const(v) = tx.kind {
                    return Ok(TExpr::new(
                        TKind::Const(self.truncate_const(v.wrapping_neg(), ty)),
                        ty,
                    ));
                }
                Ok(TExpr::new(TKind::Neg(Box::new(tx)), ty))
            }
            UnOp::BitNot => {
                let tx = self.expr(x)?;
                if !self.is_int(tx.ty) {
                    return err(
                        "D_OP_INT",
                        line,
                        "operator ~ requires an operand of integral type",
                    );
                }
                let ty = self.promote(tx.ty);
                if let TKind::Const(v) = tx.kind {
                    return Ok(TExpr::new(TKind::Const(self.truncate_const(!v, ty)), ty));
                }
                Ok(TExpr::new(TKind::BitNot(Box::new(tx)), ty))
            }
            UnOp::Not => {
                let tx = self.expr(x)?;
                if !self.is_scalar(tx.ty) && !self.is_string(tx.ty) {
                    return err(
                        "D_OP_SCALAR",
                        line,
                        "operator ! requires an operand of scalar type",
                    );
                }
                let ty = Ty::C(self.repo.b.int);
                if let TKind::Const(v) = tx.kind {
                    return Ok(TExpr::new(TKind::Const(u64::from(v == 0)), ty));
                }
                Ok(TExpr::new(TKind::LogNot(Box::new(tx)), ty))
            }
        }
    }

    fn names_dynamic(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Ident(n) => self
                .globals
                .get(n)
                .is_some_and(|v| matches!(v.shape, VarShape::Assoc(_))),
            ExprKind::SelfVar(_) | ExprKind::ThisVar(_) => true,
            _ => false,
        }
    }

    fn expr_is_var(&self, e: &TExpr) -> bool {
        matches!(e.kind, TKind::Var(_) | TKind::Assoc(..))
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, line: u32) -> CResult<TExpr> {
        let ta = self.expr(a)?;
        let tb = self.expr(b)?;
        self.binary_typed(op, ta, tb, line)
    }

    pub fn binary_typed(&mut self, op: BinOp, ta: TExpr, tb: TExpr, line: u32) -> CResult<TExpr> {
        let int = Ty::C(self.repo.b.int);
        let mk = |s: &Self, ty: Ty, unsigned: bool, strings: bool, ta: TExpr, tb: TExpr| -> TExpr {
            if let (TKind::Const(x), TKind::Const(y)) = (&ta.kind, &tb.kind) {
                if let Some(v) = s.fold(op, *x, *y, unsigned) {
                    return TExpr::new(TKind::Const(v), ty);
                }
            }
            TExpr::new(
                TKind::Bin {
                    op,
                    l: Box::new(ta),
                    r: Box::new(tb),
                    unsigned,
                    strings,
                },
                ty,
            )
        };
        match op {
            BinOp::Comma => Ok(TExpr::new(
                TKind::Bin {
                    op,
                    l: Box::new(ta),
                    r: Box::new(tb.clone()),
                    unsigned: false,
                    strings: false,
                },
                tb.ty,
            )),
            BinOp::LogAnd | BinOp::LogOr | BinOp::LogXor => {
                if !self.is_scalar(ta.ty) || !self.is_scalar(tb.ty) {
                    return err(
                        "D_OP_SCALAR",
                        line,
                        format!("operator {} requires operands of scalar type", op.text()),
                    );
                }
                Ok(mk(self, int, false, false, ta, tb))
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne => {
                if self.is_arith(ta.ty) && self.is_arith(tb.ty) {
                    let rt = self.arith_result(ta.ty, tb.ty);
                    let unsigned = self.is_unsigned(rt);
                    return Ok(mk(self, int, unsigned, false, ta, tb));
                }
                // Strings compare by contents when both sides are strings; a string against any
                // other pointer (NULL) compares addresses, as libdtrace does.
                let strish = |s: &Self, t: Ty| s.is_stringish(t);
                let ptrish = |s: &Self, t: Ty| s.is_ptr(t) || s.is_int(t);
                if (self.is_string(ta.ty) || self.is_string(tb.ty))
                    && (strish(self, ta.ty) || ptrish(self, ta.ty))
                    && (strish(self, tb.ty) || ptrish(self, tb.ty))
                {
                    let strings = strish(self, ta.ty) && strish(self, tb.ty);
                    return Ok(TExpr::new(
                        TKind::Bin {
                            op,
                            l: Box::new(ta),
                            r: Box::new(tb),
                            unsigned: !strings,
                            strings,
                        },
                        int,
                    ));
                }
                let pa = self.is_ptr(ta.ty) || self.is_array(ta.ty);
                let pb = self.is_ptr(tb.ty) || self.is_array(tb.ty);
                if (pa && pb && self.ptr_compat(ta.ty, tb.ty))
                    || (pa && self.is_int(tb.ty))
                    || (pb && self.is_int(ta.ty))
                {
                    return Ok(mk(self, int, true, false, ta, tb));
                }
                if matches!(ta.ty, Ty::Sym | Ty::USym) || matches!(tb.ty, Ty::Sym | Ty::USym) {
                    return Ok(mk(self, int, true, false, ta, tb));
                }
                Err(incompat(
                    line,
                    &self.ty_name(ta.ty),
                    op.text(),
                    &self.ty_name(tb.ty),
                ))
            }
            BinOp::Shl | BinOp::Shr | BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => {
                if !self.is_int(ta.ty) || !self.is_int(tb.ty) {
                    return err(
                        "D_OP_INT",
                        line,
                        format!("operator {} requires operands of integral type", op.text()),
                    );
                }
                let ty = if matches!(op, BinOp::Shl | BinOp::Shr) {
                    self.promote(ta.ty)
                } else {
                    self.arith_result(ta.ty, tb.ty)
                };
                let unsigned = self.is_unsigned(ty);
                Ok(mk(self, ty, unsigned, false, ta, tb))
            }
            BinOp::Mul | BinOp::Div | BinOp::Mod => {
                let ok = if op == BinOp::Mod {
                    self.is_int(ta.ty) && self.is_int(tb.ty)
                } else {
                    self.is_arith(ta.ty) && self.is_arith(tb.ty)
                };
                if !ok {
                    if self.is_void(ta.ty)
                        || self.is_void(tb.ty)
                        || self.is_string(ta.ty)
                        || self.is_string(tb.ty)
                    {
                        return Err(incompat(
                            line,
                            &self.ty_name(ta.ty),
                            op.text(),
                            &self.ty_name(tb.ty),
                        ));
                    }
                    let what = if op == BinOp::Mod {
                        "integral"
                    } else {
                        "arithmetic"
                    };
                    let tag = if op == BinOp::Mod {
                        "D_OP_INT"
                    } else {
                        "D_OP_ARITH"
                    };
                    return err(
                        tag,
                        line,
                        format!("operator {} requires operands of {} type", op.text(), what),
                    );
                }
                if matches!(op, BinOp::Div | BinOp::Mod) && matches!(tb.kind, TKind::Const(0)) {
                    return err("D_DIV_ZERO", line, "expression contains division by zero");
                }
                let ty = self.arith_result(ta.ty, tb.ty);
                let unsigned = self.is_unsigned(ty);
                Ok(mk(self, ty, unsigned, false, ta, tb))
            }
            BinOp::Add | BinOp::Sub => {
                if self.is_arith(ta.ty) && self.is_arith(tb.ty) {
                    let ty = self.arith_result(ta.ty, tb.ty);
                    let unsigned = self.is_unsigned(ty);
                    return Ok(mk(self, ty, unsigned, false, ta, tb));
                }
                let pa = self.is_ptr(ta.ty) || self.is_array(ta.ty);
                let pb = self.is_ptr(tb.ty) || self.is_array(tb.ty);
                if pa && self.is_int(tb.ty) || (op == BinOp::Add && pb && self.is_int(ta.ty)) {
                    let (p, i) = if pa { (ta, tb) } else { (tb, ta) };
                    let pointee = self
                        .c(p.ty)
                        .and_then(|c| self.repo.referenced(c))
                        .unwrap_or(self.repo.b.void);
                    if self.repo.is_void(pointee)
                        || self.repo.is_incomplete(pointee)
                        || self.repo.is_function(pointee)
                    {
                        let (l, r) = if pa {
                            (self.ty_name(p.ty), self.ty_name(i.ty))
                        } else {
                            (self.ty_name(i.ty), self.ty_name(p.ty))
                        };
                        return Err(incompat(line, &l, op.text(), &r));
                    }
                    let esz = self.repo.size_of(pointee).max(1);
                    let rty = if self.is_array(p.ty) {
                        Ty::C(self.repo.pointer_to(pointee))
                    } else {
                        p.ty
                    };
                    let ulong = Ty::C(self.repo.b.ulong);
                    let scaled = if esz == 1 {
                        i
                    } else if let TKind::Const(v) = i.kind {
                        TExpr::new(TKind::Const(v.wrapping_mul(esz)), ulong)
                    } else {
                        // The element-size scaling is a multiplication, whatever `op` is.
                        TExpr::new(
                            TKind::Bin {
                                op: BinOp::Mul,
                                l: Box::new(i),
                                r: Box::new(TExpr::new(TKind::Const(esz), ulong)),
                                unsigned: true,
                                strings: false,
                            },
                            ulong,
                        )
                    };
                    let saved = op;
                    let r = TExpr::new(
                        TKind::Bin {
                            op: saved,
                            l: Box::new(TExpr { ty: ulong, ..p }),
                            r: Box::new(scaled),
                            unsigned: true,
                            strings: false,
                        },
                        rty,
                    );
                    return Ok(r);
                }
                if op == BinOp::Sub && pa && pb && self.ptr_compat(ta.ty, tb.ty) {
                    let pointee = self
                        .c(ta.ty)
                        .and_then(|c| self.repo.referenced(c))
                        .unwrap_or(self.repo.b.char);
                    let esz = self.repo.size_of(pointee).max(1);
                    let long = Ty::C(self.repo.b.long);
                    let diff = TExpr::new(
                        TKind::Bin {
                            op: BinOp::Sub,
                            l: Box::new(ta),
                            r: Box::new(tb),
                            unsigned: false,
                            strings: false,
                        },
                        long,
                    );
                    if esz == 1 {
                        return Ok(diff);
                    }
                    return Ok(TExpr::new(
                        TKind::Bin {
                            op: BinOp::Div,
                            l: Box::new(diff),
                            r: Box::new(TExpr::new(TKind::Const(esz), long)),
                            unsigned: false,
                            strings: false,
                        },
                        long,
                    ));
                }
                Err(incompat(
                    line,
                    &self.ty_name(ta.ty),
                    op.text(),
                    &self.ty_name(tb.ty),
                ))
            }
        }
    }

    /// Resolves an assignment target. `rhs` is the value type for plain `=` (which may define a
    /// new dynamic variable); `None` for compound operators and `++`/`--`.
    fn place(
        &mut self,
        e: &Expr,
        rhs: Option<Ty>,
        op: &str,
        line: u32,
        incdec: bool,
    ) -> CResult<(Place, Ty)> {
        let define_ty = |s: &Self| -> Option<Ty> {
            match rhs {
                Some(t) => Some(t),
                None if incdec => Some(Ty::C(s.repo.b.int)),
                None => None,
            }
        };
        match &e.kind {
            ExprKind::Ident(n) => {
                if BuiltinVar::from_name(n).is_some()
                    || self.inlines.contains_key(n)
                    || self.enumerators.contains_key(n)
                {
                    return err(
                        "D_OP_WRITE",
                        line,
                        format!("operator {} can only be applied to a writable variable", op),
                    );
                }
                if let Some(v) = self.globals.get(n) {
                    if let VarShape::Fixed(_) = v.shape {
                        return err(
                            "D_OP_ARRFUN",
                            line,
                            format!(
                                "operator {} may not be applied to operand of type \"{}\"",
                                op,
                                self.ty_name(v.ty)
                            ),
                        );
                    }
                    if matches!(v.shape, VarShape::Assoc(_)) {
                        return err(
                            "D_IDENT_BADREF",
                            line,
                            format!("associative array '{}' may not be referenced as scalar", n),
                        );
                    }
                    return Ok((Place::Var(v.vref.clone()), v.ty));
                }
                if n.contains('`') {
                    return Err(self.kernel_symbol_error(n, line));
                }
                let Some(t) = define_ty(self) else {
                    return err(
                        "D_VAR_UNDEF",
                        line,
                        format!("{} has not yet been declared or assigned", n),
                    );
                };
                let t = self.dyn_type(t);
                let v = self.new_var(n, Scope::Global, t, VarShape::Scalar);
                Ok((Place::Var(v.vref), v.ty))
            }
            ExprKind::SelfVar(n) | ExprKind::ThisVar(n) => {
                let scope = if matches!(e.kind, ExprKind::SelfVar(_)) {
                    Scope::Thread
                } else {
                    Scope::Local
                };
                let table = if scope == Scope::Thread {
                    &self.tls
                } else {
                    &self.locals
                };
                if let Some(v) = table.get(n) {
                    return Ok((Place::Var(v.vref.clone()), v.ty));
                }
                let Some(t) = define_ty(self) else {
                    let prefix = if scope == Scope::Thread {
                        "self->"
                    } else {
                        "this->"
                    };
                    return err(
                        "D_VAR_UNDEF",
                        line,
                        format!("{}{} has not yet been declared or assigned", prefix, n),
                    );
                };
                let t = self.dyn_type(t);
                let v = self.new_var(n, scope, t, VarShape::Scalar);
                Ok((Place::Var(v.vref), v.ty))
            }
            ExprKind::Index(base, keys) => {
                let scope = match &base.kind {
                    ExprKind::Ident(n)
                        if !self
                            .globals
                            .get(n)
                            .is_some_and(|v| !matches!(v.shape, VarShape::Assoc(_)))
                            && BuiltinVar::from_name(n).is_none() =>
                    {
                        Some((Scope::Global, n.clone()))
                    }
                    ExprKind::SelfVar(n)
                        if !self
                            .tls
                            .get(n)
                            .is_some_and(|v| !matches!(v.shape, VarShape::Assoc(_))) =>
                    {
                        Some((Scope::Thread, n.clone()))
                    }
                    ExprKind::ThisVar(n) if !self.locals.contains_key(n) => {
                        return err(
                            "D_ARR_LOCAL",
                            line,
                            format!(
                                "local variables may not be used as associative arrays: {}",
                                n
                            ),
                        );
                    }
                    _ => None,
                };
                if let Some((scope, name)) = scope {
                    let tkeys = self.keys(keys)?;
                    let table = if scope == Scope::Thread {
                        &self.tls
                    } else {
                        &self.globals
                    };
                    if let Some(v) = table.get(&name).cloned() {
                        self.check_keys(&name, &v, &tkeys, line)?;
                        let tkeys = self.fix_keys(&v, tkeys);
                        return Ok((Place::Assoc(v.vref.clone(), tkeys), v.ty));
                    }
                    if self.inlines.contains_key(&name) || self.enumerators.contains_key(&name) {
                        return err(
                            "D_OP_WRITE",
                            line,
                            format!("operator {} can only be applied to a writable variable", op),
                        );
                    }
                    let Some(t) = define_ty(self) else {
                        return err(
                            "D_VAR_UNDEF",
                            line,
                            format!("{} has not yet been declared or assigned", name),
                        );
                    };
                    let t = self.dyn_type(t);
                    let ktys = tkeys.iter().map(|k| k.ty).collect();
                    let v = self.new_var(&name, scope, t, VarShape::Assoc(Some(ktys)));
                    return Ok((Place::Assoc(v.vref, tkeys), v.ty));
                }
                let te = self.index(base, keys, line)?;
                self.mem_place(te, op, line)
            }
            ExprKind::AggName(_) | ExprKind::AggRef(..) => err(
                "D_OP_LVAL",
                line,
                format!("operator {} requires modifiable lvalue as an operand", op),
            ),
            _ => {
                let te = self.expr(e)?;
                self.mem_place(te, op, line)
            }
        }
    }

    fn mem_place(&mut self, te: TExpr, op: &str, line: u32) -> CResult<(Place, Ty)> {
        match te.kind {
            TKind::Load { addr, size, .. } => Ok((Place::Mem { addr, size }, te.ty)),
            TKind::Bitfield {
                unit, shift, width, ..
            } => match unit.kind {
                TKind::Load { addr, size, .. } => Ok((
                    Place::Bits {
                        addr,
                        size,
                        shift,
                        width,
                    },
                    te.ty,
                )),
                _ => err(
                    "D_OP_LVAL",
                    line,
                    format!("operator {} requires modifiable lvalue as an operand", op),
                ),
            },
            TKind::Var(ref v) if self.is_array(te.ty) => err(
                "D_OP_ARRFUN",
                line,
                format!(
                    "operator {} may not be applied to operand of type \"{}\" ({})",
                    op,
                    self.ty_name(te.ty),
                    v.name
                ),
            ),
            // A struct, union or array object in memory (a member of a struct variable or of
            // an associative-array element, which the code generator faults in, or reached
            // through a pointer): stored by copying its bytes.
            TKind::Bin { .. } | TKind::Var(_)
                if (self.is_sou(te.ty) || self.is_array(te.ty)) && op == "=" =>
            {
                let size = self.c(te.ty).map_or(0, |c| self.repo.size_of(c)) as u32;
                let ty = te.ty;
                let addr = TExpr {
                    ty: Ty::C(self.repo.b.uintptr),
                    ..te
                };
                Ok((
                    Place::Copy {
                        addr: Box::new(addr),
                        size,
                    },
                    ty,
                ))
            }
            // A D string in memory (`*p = "abc"` with `string *p`): copied, strsize bytes, as
            // libdtrace stores every by-reference value.
            TKind::Bin { .. } | TKind::Var(_) | TKind::Call(..)
                if self.is_string(te.ty) && op == "=" && is_address_of_memory(&te) =>
            {
                let size = self.opts.strsize as u32;
                let ty = te.ty;
                let addr = TExpr {
                    ty: Ty::C(self.repo.b.uintptr),
                    ..te
                };
                Ok((
                    Place::Copy {
                        addr: Box::new(addr),
                        size,
                    },
                    ty,
                ))
            }
            _ => err(
                "D_OP_LVAL",
                line,
                format!("operator {} requires modifiable lvalue as an operand", op),
            ),
        }
    }

    /// The type a dynamic variable gets from its first assigned value.
    fn dyn_type(&self, t: Ty) -> Ty {
        if self.is_int(t) {
            // Integer dynamic variables keep the value's type (as libdtrace does).
            return t;
        }
        if self.is_array(t)
            && self
                .c(t)
                .and_then(|c| self.repo.referenced(c))
                .is_some_and(|e| self.repo.is_char(e))
        {
            return Ty::C(self.repo.b.string);
        }
        t
    }

    fn keys(&mut self, keys: &[Expr]) -> CResult<Vec<TExpr>> {
        let mut out = Vec::new();
        for k in keys {
            let tk = self.expr(k)?;
            if self.is_void(tk.ty) || tk.ty == Ty::Agg {
                return err(
                    "D_KEY_TYPE",
                    k.line,
                    format!(
                        "tuple key #{} may not be of type {}",
                        out.len() + 1,
                        self.ty_name(tk.ty)
                    ),
                );
            }
            out.push(tk);
        }
        Ok(out)
    }

    fn fix_keys(&self, v: &VarInfo, keys: Vec<TExpr>) -> Vec<TExpr> {
        let VarShape::Assoc(Some(kt)) = &v.shape else {
            return keys;
        };
        keys.into_iter()
            .zip(kt.iter())
            .map(|(k, t)| {
                if self.is_int(*t) {
                    self.convert_to(k, *t)
                } else {
                    k
                }
            })
            .collect()
    }

    fn check_keys(&self, name: &str, v: &VarInfo, keys: &[TExpr], line: u32) -> CResult<()> {
        let VarShape::Assoc(Some(kt)) = &v.shape else {
            return Ok(());
        };
        if kt.len() != keys.len() {
            return err(
                "D_PROTO_LEN",
                line,
                format!(
                    "{}[ ] prototype mismatch: {} key{} passed, {} expected",
                    name,
                    keys.len(),
                    if keys.len() == 1 { "" } else { "s" },
                    kt.len()
                ),
            );
        }
        for (i, (k, t)) in keys.iter().zip(kt.iter()).enumerate() {
            let ok = if self.is_string(*t) {
                self.is_stringish(k.ty)
            } else if self.is_int(*t) {
                self.is_int(k.ty) || self.is_ptr(k.ty)
            } else {
                self.assignable(*t, k) && !self.is_string(k.ty)
            };
            if !ok {
                return err(
                    "D_PROTO_ARG",
                    line,
                    format!(
                        "{}[ ] key #{} is incompatible with prototype:\n\tprototype: {}\n\t      key: {}",
                        name,
                        i + 1,
                        self.ty_name(*t),
                        self.ty_name(k.ty)
                    ),
                );
            }
        }
        Ok(())
    }

    fn index(&mut self, base: &Expr, keys: &[Expr], line: u32) -> CResult<TExpr> {
        // args[N]
        if let ExprKind::Ident(n) = &base.kind {
            if let Some(bv) = BuiltinVar::from_name(n) {
                if bv.is_array() {
                    if keys.len() != 1 {
                        return err(
                            "D_PROTO_LEN",
                            line,
                            format!(
                                "{}[ ] prototype mismatch: {} keys passed, 1 expected",
                                n,
                                keys.len()
                            ),
                        );
                    }
                    let k = self.expr(&keys[0])?;
                    if let (Some(i), Some(d)) = (self.const_value(&k), self.cur_descs.first()) {
                        if bv == BuiltinVar::Args {
                            if let Some(n) = self.matcher.typed_args(d) {
                                if i < 0 || i as usize >= n {
                                    return err(
                                        "D_ARGS_IDX",
                                        line,
                                        format!(
                                            "index {} is out of range for {} args[ ]",
                                            i,
                                            d.full()
                                        ),
                                    );
                                }
                            }
                        }
                    }
                    if !self.is_int(k.ty) {
                        return err("D_PROTO_ARG", line, format!("{}[ ] argument #1 is incompatible with prototype:\n\tprototype: int\n\t argument: {}", n, self.ty_name(k.ty)));
                    }
                    return Ok(TExpr::new(
                        TKind::BuiltinArray(bv.id() as u8, Box::new(k)),
                        Ty::C(self.repo.b.int64),
                    ));
                }
            }
        }
        let dynamic = match &base.kind {
            ExprKind::Ident(n) => match self.globals.get(n) {
                Some(v) if matches!(v.shape, VarShape::Assoc(_)) => Some(v.clone()),
                None if !self.inlines.contains_key(n)
                    && BuiltinVar::from_name(n).is_none()
                    && !self.bindings.iter().any(|(b, _)| b == n) =>
                {
                    // Reading an array before its first assignment: fine if the program assigns
                    // it somewhere, else an undefined name (the keys' own errors come first).
                    let tk = self.keys(keys)?;
                    if self.assigned.get(&(Scope::Global, n.clone())) == Some(&true) {
                        let long = Ty::C(self.repo.b.long);
                        let kt = tk.iter().map(|k| k.ty).collect();
                        let v = self.new_var(n, Scope::Global, long, VarShape::Assoc(Some(kt)));
                        return Ok(TExpr::new(TKind::Assoc(v.vref, tk), long));
                    }
                    return err(
                        "D_IDENT_UNDEF",
                        line,
                        format!("failed to resolve {}: Unknown variable name", n),
                    );
                }
                _ => None,
            },
            ExprKind::SelfVar(n) => match self.tls.get(n) {
                Some(v) if matches!(v.shape, VarShape::Assoc(_)) => Some(v.clone()),
                None => {
                    let tk = self.keys(keys)?;
                    if self.assigned.get(&(Scope::Thread, n.clone())) == Some(&true) {
                        let long = Ty::C(self.repo.b.long);
                        let kt = tk.iter().map(|k| k.ty).collect();
                        let v = self.new_var(n, Scope::Thread, long, VarShape::Assoc(Some(kt)));
                        return Ok(TExpr::new(TKind::Assoc(v.vref, tk), long));
                    }
                    return err(
                        "D_VAR_UNDEF",
                        line,
                        format!("self->{} has not yet been declared or assigned", n),
                    );
                }
                _ => None,
            },
            ExprKind::ThisVar(n) if !self.locals.contains_key(n) => {
                return err(
                    "D_ARR_LOCAL",
                    line,
                    format!(
                        "local variables may not be used as associative arrays: {}",
                        n
                    ),
                );
            }
            _ => None,
        };
        if let Some(v) = dynamic {
            let tk = self.keys(keys)?;
            self.check_keys(&v.vref.name, &v, &tk, line)?;
            let tk = self.fix_keys(&v, tk);
            return Ok(TExpr::new(TKind::Assoc(v.vref.clone(), tk), v.ty));
        }
        let tb = self.expr(base)?;
        if keys.len() != 1 {
            return err(
                "D_IDX_TUPLE",
                line,
                "tuple index may only be used with associative arrays",
            );
        }
        let tk = self.expr(&keys[0])?;
        let elem = if self.is_string(tb.ty) {
            Some(self.repo.b.char)
        } else {
            self.c(tb.ty).and_then(|c| self.repo.referenced(c))
        };
        let Some(elem) = elem else {
            return err(
                "D_IDX_NONPTR",
                line,
                "index applied to non-pointer, non-array type",
            );
        };
        if !self.is_int(tk.ty) {
            return err("D_IDX_INT", line, "array index must be of integral type");
        }
        if let (TKind::Const(i), TypeKind::Array { count, .. }) =
            (&tk.kind, self.repo.rkind(self.c(tb.ty).unwrap_or(0)))
        {
            if (*i as i64) < 0 || *i >= *count {
                return err(
                    "D_ARR_BOUNDS",
                    line,
                    format!(
                        "index outside array bounds: {}, max is {}",
                        *i as i64, count
                    ),
                );
            }
        }
        let ulong = Ty::C(self.repo.b.ulong);
        let esz = self.repo.size_of(elem).max(1);
        let off = if esz == 1 {
            tk
        } else {
            self.binary_typed(
                BinOp::Mul,
                self.convert_to(tk, ulong),
                TExpr::new(TKind::Const(esz), ulong),
                line,
            )?
        };
        let addr = TExpr::new(
            TKind::Bin {
                op: BinOp::Add,
                l: Box::new(TExpr { ty: ulong, ..tb }),
                r: Box::new(off),
                unsigned: true,
                strings: false,
            },
            ulong,
        );
        Ok(self.load_from(addr, elem, None))
    }

    fn assign(&mut self, op: Option<BinOp>, l: &Expr, r: &Expr, line: u32) -> CResult<TExpr> {
        if let ExprKind::AggName(_) | ExprKind::AggRef(..) = &l.kind {
            return err(
                "D_AGG_FUNC",
                line,
                "aggregations may only be assigned the result of an aggregating function",
            );
        }
        let tr = self.expr(r)?;
        let opname = match op {
            None => "=".to_string(),
            Some(o) => format!("{}=", o.text()),
        };
        if let ExprKind::Call(n, _) = &r.kind {
            if super::calls::is_agg_function(n) {
                return err(
                    "D_AGG_FUNC",
                    line,
                    format!("{}( ) may only be used as the value of an aggregation", n),
                );
            }
        }
        match op {
            None => {
                if self.is_void(tr.ty) {
                    if let ExprKind::Call(..) = r.kind {
                        let (_p, t) =
                            self.place(l, Some(Ty::C(self.repo.b.int)), &opname, line, false)?;
                        return Err(incompat(line, &self.ty_name(t), "=", "void"));
                    }
                }
                if let Some(m) = self.alloca_mix(&tr) {
                    if m {
                        return err(
                            "D_ALLOCA_INCOMPAT",
                            line,
                            "ternary conditional with alloca and non-alloca branches cannot be assigned to a variable",
                        );
                    }
                }
                let (place, lt) = self.place(l, Some(tr.ty), &opname, line, false)?;
                if let Place::Var(v) = &place {
                    if self.is_alloca_backed(&tr) {
                        self.alloca_vars.insert(v.name.clone());
                    }
                }
                if !self.assignable(lt, &tr) {
                    return Err(incompat(line, &self.ty_name(lt), "=", &self.ty_name(tr.ty)));
                }
                let v = self.convert_to(tr, lt);
                Ok(TExpr::new(
                    TKind::Store {
                        place,
                        value: Box::new(v),
                    },
                    lt,
                ))
            }
            Some(bop) => {
                let (place, lt) = self.place(l, None, &opname, line, false)?;
                let ok = match bop {
                    BinOp::Add | BinOp::Sub => {
                        (self.is_arith(lt) && self.is_arith(tr.ty))
                            || (self.is_ptr(lt) && self.is_int(tr.ty))
                    }
                    BinOp::Mul | BinOp::Div => self.is_arith(lt) && self.is_arith(tr.ty),
                    _ => self.is_int(lt) && self.is_int(tr.ty),
                };
                let unsized_ptr = |s: &Self, t: Ty| {
                    s.is_ptr(t)
                        && s.c(t)
                            .and_then(|c| s.repo.referenced(c))
                            .is_some_and(|p| s.repo.is_void(p) || s.repo.is_incomplete(p))
                };
                if !ok && (unsized_ptr(self, lt) || unsized_ptr(self, tr.ty)) {
                    return err(
                        "D_OP_VFPTR",
                        line,
                        format!(
                            "operator {} requires left-hand scalar operand of known size",
                            opname
                        ),
                    );
                }
                if !ok {
                    if self.is_ptr(lt) && matches!(bop, BinOp::Add | BinOp::Sub) {
                        return err(
                            "D_OP_VFPTR",
                            line,
                            format!(
                                "operator {} requires left-hand scalar operand of known size",
                                opname
                            ),
                        );
                    }
                    return Err(incompat(
                        line,
                        &self.ty_name(lt),
                        &opname,
                        &self.ty_name(tr.ty),
                    ));
                }
                if self.is_ptr(lt) {
                    let p = self
                        .c(lt)
                        .and_then(|c| self.repo.referenced(c))
                        .unwrap_or(self.repo.b.void);
                    if self.repo.is_void(p) || self.repo.is_incomplete(p) {
                        return err(
                            "D_OP_VFPTR",
                            line,
                            format!(
                                "operator {} requires left-hand scalar operand of known size",
                                opname
                            ),
                        );
                    }
                }
                if matches!(bop, BinOp::Div | BinOp::Mod) && matches!(tr.kind, TKind::Const(0)) {
                    return err("D_DIV_ZERO", line, "expression contains division by zero");
                }
                let mut value = tr;
                if self.is_ptr(lt) {
                    let p = self
                        .c(lt)
                        .and_then(|c| self.repo.referenced(c))
                        .unwrap_or(self.repo.b.char);
                    let esz = self.repo.size_of(p).max(1);
                    if esz > 1 {
                        let ulong = Ty::C(self.repo.b.ulong);
                        value = self.binary_typed(
                            BinOp::Mul,
                            value,
                            TExpr::new(TKind::Const(esz), ulong),
                            line,
                        )?;
                    }
                }
                let unsigned = self.is_unsigned(self.arith_result(lt, value.ty));
                Ok(TExpr::new(
                    TKind::Update {
                        place,
                        op: bop,
                        value: Box::new(value),
                        post: false,
                        unsigned,
                    },
                    lt,
                ))
            }
        }
    }

    /// The error for a `` module`symbol `` reference, as libdtrace reports it: an unknown
    /// module or symbol (D_IDENT_UNDEF), or a symbol without type information (D_SYM_NOTYPES:
    /// kernel CTF is not loaded yet, so every found symbol is untyped).
    fn kernel_symbol_error(&self, name: &str, line: u32) -> CompileError {
        let (module, sym) = match name.rsplit_once('`') {
            Some(("", s)) => (None, s),
            Some((m, s)) => (Some(m), s),
            None => (None, name),
        };
        match self.matcher.kernel_symbol(module, sym) {
            super::pdesc::SymbolLookup::Found { object, name: n, .. } => CompileError::new(
                "D_SYM_NOTYPES",
                line,
                format!(
                    "no symbolic type information is available for {}`{}: No type information available for symbol",
                    object, n
                ),
            ),
            super::pdesc::SymbolLookup::NoModule => CompileError::new(
                "D_IDENT_UNDEF",
                line,
                format!("failed to resolve {}: Unknown module name", name),
            ),
            super::pdesc::SymbolLookup::NoSymbol => CompileError::new(
                "D_IDENT_UNDEF",
                line,
                format!("failed to resolve {}: Unknown symbol name", name),
            ),
        }
    }

    /// Whether an expression yields memory from `alloca()` (directly, cast, or via a variable
    /// that was assigned such a pointer).
    fn is_alloca_backed(&self, e: &TExpr) -> bool {
        match &e.kind {
            TKind::Call(id, _) => *id == rdtrace_ffi::dif::Subr::Alloca.id(),
            TKind::Var(v) => self.alloca_vars.contains(&v.name),
            _ => false,
        }
    }

    /// `Some(true)` when a ternary mixes alloca and non-alloca branches.
    fn alloca_mix(&self, e: &TExpr) -> Option<bool> {
        if let TKind::Ternary(_, a, b) = &e.kind {
            let (x, y) = (self.is_alloca_backed(a), self.is_alloca_backed(b));
            return Some(x != y);
        }
        None
    }

    // ---------------------------------------------------------------- clauses

    /// Checks the probe descriptions of a clause against the available probes.
    pub fn clause_descs(&mut self, c: &Clause) -> CResult<Vec<super::pdesc::ProbeDesc>> {
        let mut out = Vec::new();
        for (s, line) in &c.descs {
            let d = match super::pdesc::resolve_probe_id(s, *line, self.matcher) {
                Some(by_id) => by_id?,
                None => split_desc(s, *line)?,
            };
            if self.matcher.count_matches(&d) == 0 {
                if self.opts.zdefs {
                    continue;
                }
                return err(
                    "D_PDESC_ZERO",
                    *line,
                    format!("probe description {} does not match any probes", d.full()),
                );
            }
            out.push(d);
        }
        Ok(out)
    }

    pub fn clause(&mut self, c: &Clause) -> CResult<TClause> {
        let descs = self.clause_descs(c)?;
        self.cur_descs = descs.clone();
        let predicate = match &c.predicate {
            Some(p) => {
                let tp = self.expr(p)?;
                if !self.is_scalar(tp.ty) {
                    return err(
                        "D_PRED_SCALAR",
                        p.line,
                        "predicate result must be of scalar type",
                    );
                }
                Some(tp)
            }
            None => None,
        };
        let mut state = super::calls::ClauseState::default();
        let body = self.stmts(&c.body, &mut state)?;
        Ok(TClause {
            descs,
            predicate,
            body,
            line: c.line,
        })
    }

    fn stmts(
        &mut self,
        stmts: &[Stmt],
        state: &mut super::calls::ClauseState,
    ) -> CResult<Vec<TStmt>> {
        let mut out = Vec::new();
        for s in stmts {
            match s {
                Stmt::Expr(e) => {
                    let a = super::calls::statement(self, e, state)?;
                    out.push(TStmt::Action(a, e.line));
                }
                Stmt::If {
                    cond,
                    then,
                    els,
                    line,
                } => {
                    let tc = self.expr(cond)?;
                    if !self.is_scalar(tc.ty) {
                        return err("D_OP_SCALAR", *line, "if-condition must be of scalar type");
                    }
                    let t = self.stmts(then, state)?;
                    let e = self.stmts(els, state)?;
                    out.push(TStmt::If {
                        cond: tc,
                        then: t,
                        els: e,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Whether an AST expression is a call of an action (for the conditional-context check).
fn is_action_call(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Call(n, _) if super::calls::is_action(n))
}

/// Whether an address expression starts from an associative-array element.
/// Whether a string-typed expression is the address of a string object in memory (reached
/// through a pointer), rather than a string variable or constant.
fn is_address_of_memory(e: &TExpr) -> bool {
    matches!(e.kind, TKind::Bin { .. } | TKind::Call(..))
        || matches!(&e.kind, TKind::Var(v) if !v.is_string)
}

fn te_is_huge(e: &TExpr) -> bool {
    matches!(e.kind, TKind::Const(v) if (v as i64) < 0)
}
