//! The typed intermediate representation: what the type checker ([`super::typeck`]) produces and
//! the DIF code generator ([`super::codegen`]) consumes. Names are resolved to variable ids,
//! member accesses to loads at offsets, and every expression carries its D type. Userland only.

use super::ast::BinOp;
use super::types::TypeId;

/// A D type: a C type from the repository or one of D's special value kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    C(TypeId),
    /// The result of `stack()`/`ustack()`/`jstack()`.
    Stack,
    /// The result of `sym()`/`func()`/`mod()` (kernel address printed symbolically).
    Sym,
    /// The result of `usym()`/`ufunc()`/`umod()`/`uaddr()`.
    USym,
    /// An aggregation used as a value.
    Agg,
}

/// Variable scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    Thread,
    Local,
}

/// A user variable reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub name: String,
    pub scope: Scope,
    pub id: u16,
    /// Associative array (keys given at the use site).
    pub assoc: bool,
    /// The variable holds a string (by reference).
    pub is_string: bool,
    /// Size in bytes of the value (strings: 0 = strsize).
    pub size: u32,
    /// For by-reference (struct/array) variables.
    pub by_ref: bool,
}

/// Where a store goes.
#[derive(Debug, Clone)]
pub enum Place {
    Var(VarRef),
    Assoc(VarRef, Vec<TExpr>),
    /// Memory at an address (for `*p = ...`, `s.m = ...` on scratch memory).
    Mem {
        addr: Box<TExpr>,
        size: u8,
    },
    /// A struct/union/array object of `size` bytes at `addr`, stored by copying.
    Copy {
        addr: Box<TExpr>,
        size: u32,
    },
    /// A bit-field: `width` bits at bit `shift` of the `size`-byte unit at `addr`.
    Bits {
        addr: Box<TExpr>,
        size: u8,
        shift: u8,
        width: u8,
    },
}

#[derive(Debug, Clone)]
pub struct TExpr {
    pub kind: TKind,
    pub ty: Ty,
}

#[derive(Debug, Clone)]
pub enum TKind {
    Const(u64),
    Str(Vec<u8>),
    /// A built-in scalar variable (`DIF_VAR_*` id).
    Builtin(u16),
    /// A built-in array (`args[]`), array id and index.
    BuiltinArray(u8, Box<TExpr>),
    Var(VarRef),
    Assoc(VarRef, Vec<TExpr>),
    Neg(Box<TExpr>),
    BitNot(Box<TExpr>),
    LogNot(Box<TExpr>),
    /// Arithmetic, bitwise, comparison or logical operator. `unsigned` selects unsigned division,
    /// shifts and comparisons; `strings` makes comparisons string comparisons.
    Bin {
        op: BinOp,
        l: Box<TExpr>,
        r: Box<TExpr>,
        unsigned: bool,
        strings: bool,
    },
    Ternary(Box<TExpr>, Box<TExpr>, Box<TExpr>),
    Store {
        place: Place,
        value: Box<TExpr>,
    },
    /// `place op= value` (also `++`/`--` with a constant value); `post` returns the old value.
    Update {
        place: Place,
        op: BinOp,
        value: Box<TExpr>,
        post: bool,
        unsigned: bool,
    },
    Call(u16, Vec<TExpr>),
    /// Load `size` bytes at an address; `user` for user-space addresses.
    Load {
        addr: Box<TExpr>,
        size: u8,
        signed: bool,
    },
    /// Truncate/extend to an integer of `bits` bits.
    Convert {
        e: Box<TExpr>,
        bits: u8,
        signed: bool,
    },
    /// A value produced by a recording action (`stack()`, `ustack()`, `sym()`...), usable as an
    /// aggregation key or traced: the action kind, its argument and optional value.
    Rec {
        kind: u16,
        arg: u64,
        value: Option<Box<TExpr>>,
    },
    /// Extract a bit-field from a loaded storage unit (little-endian bit numbering).
    Bitfield {
        unit: Box<TExpr>,
        shift: u8,
        width: u8,
        signed: bool,
    },
}

impl TExpr {
    pub fn new(kind: TKind, ty: Ty) -> Self {
        TExpr { kind, ty }
    }
}

/// Aggregating functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Stddev,
    Quantize,
    Lquantize,
    Llquantize,
}

impl AggFunc {
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Stddev => "stddev",
            AggFunc::Quantize => "quantize",
            AggFunc::Lquantize => "lquantize",
            AggFunc::Llquantize => "llquantize",
        }
    }
    /// `DTRACEAGG_*` action kind.
    pub fn action_kind(self) -> u16 {
        use rdtrace_ffi::action::ActionKind;
        match self {
            AggFunc::Count => ActionKind::Count,
            AggFunc::Min => ActionKind::Min,
            AggFunc::Max => ActionKind::Max,
            AggFunc::Avg => ActionKind::Avg,
            AggFunc::Sum => ActionKind::Sum,
            AggFunc::Stddev => ActionKind::Stddev,
            AggFunc::Quantize => ActionKind::Quantize,
            AggFunc::Lquantize => ActionKind::Lquantize,
            AggFunc::Llquantize => ActionKind::Llquantize,
        }
        .raw()
    }
}

/// Library actions handled by the consumer (`DTRACEACT_LIBACT` with this in `arg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibAct {
    Clear,
    Trunc,
    Normalize,
    Denormalize,
    Setopt,
    Ftruncate,
}

/// One action of a clause.
#[derive(Debug, Clone)]
pub enum Action {
    /// A statement evaluated for its side effects only (records nothing).
    Eval(TExpr),
    Trace(TExpr),
    Tracemem {
        addr: TExpr,
        size: u64,
        dynsize: Option<TExpr>,
    },
    /// printf/system/freopen: the kind is in `kind` (`DTRACEACT_*`).
    Printflike {
        kind: u16,
        format: String,
        args: Vec<TExpr>,
    },
    Printa {
        format: Option<String>,
        aggs: Vec<String>,
    },
    Print(TExpr),
    Exit(TExpr),
    Stack(u32),
    Ustack {
        frames: u32,
        strsize: u32,
        java: bool,
    },
    /// sym/func/mod/usym/ufunc/umod/uaddr with their action kind.
    Symbolic {
        kind: u16,
        value: TExpr,
    },
    Speculate(TExpr),
    Commit(TExpr),
    Discard(TExpr),
    Raise(TExpr),
    Chill(TExpr),
    Stop,
    Panic,
    Breakpoint,
    Lib {
        act: LibAct,
        agg: Option<String>,
        args: Vec<TExpr>,
    },
    Aggregate {
        name: String,
        func: AggFunc,
        keys: Vec<TExpr>,
        value: Option<TExpr>,
        incr: Option<TExpr>,
        param: u64,
    },
}

/// A statement of a checked clause.
#[derive(Debug, Clone)]
pub enum TStmt {
    Action(Action, u32),
    If {
        cond: TExpr,
        then: Vec<TStmt>,
        els: Vec<TStmt>,
    },
}

/// A checked clause.
#[derive(Debug, Clone)]
pub struct TClause {
    /// Probe descriptions (full four-field text split).
    pub descs: Vec<super::pdesc::ProbeDesc>,
    pub predicate: Option<TExpr>,
    pub body: Vec<TStmt>,
    pub line: u32,
}
