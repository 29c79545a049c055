//! The D abstract syntax tree produced by the parser ([`super::parse`]) and consumed by the
//! type checker ([`super::typeck`]). Every node carries its source line for error messages.
//! Userland only.

use super::lex::IntLit;

/// A whole translation unit, items in source order.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub enum Item {
    Clause(Clause),
    Decl(Decl),
    Inline(InlineDecl),
    Translator(TranslatorDecl),
    Provider(ProviderDecl),
}

/// `desc, desc /pred/ { body }`
#[derive(Debug, Clone)]
pub struct Clause {
    /// Probe descriptions (macro-expanded) with their lines.
    pub descs: Vec<(String, u32)>,
    pub predicate: Option<Expr>,
    pub body: Vec<Stmt>,
    pub line: u32,
}

#[derive(Debug, Clone)]
pub enum Stmt {
    Expr(Expr),
    If {
        cond: Expr,
        then: Vec<Stmt>,
        els: Vec<Stmt>,
        line: u32,
    },
}

/// Storage classes and D scope words in declaration specifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageClass {
    Auto,
    Register,
    Static,
    Extern,
    Typedef,
    SelfScope,
    ThisScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SouKind {
    Struct,
    Union,
}

/// A member declaration inside a struct/union body.
#[derive(Debug, Clone)]
pub struct MemberDecl {
    pub specs: DeclSpecs,
    /// (declarator, bit-field width expression)
    pub declarators: Vec<(Declarator, Option<Expr>)>,
    pub line: u32,
}

/// An enumerator: name, optional value expression, line.
#[derive(Debug, Clone)]
pub struct Enumerator {
    pub name: String,
    pub value: Option<Expr>,
    pub line: u32,
}

/// The base type named by the specifiers.
#[derive(Debug, Clone)]
pub enum BaseSpec {
    /// Nothing but qualifiers/storage class (`extern x;`): int by C rules, an error in D decls.
    None,
    /// Built-in keyword words in order (`unsigned`, `long`, `int`, `char`, `void`, `string`...).
    Words(Vec<String>),
    /// A typedef name (possibly scoped, `` mod`name ``).
    Named(String),
    Sou {
        kind: SouKind,
        tag: Option<String>,
        members: Option<Vec<MemberDecl>>,
    },
    Enum {
        tag: Option<String>,
        enumerators: Option<Vec<Enumerator>>,
    },
}

#[derive(Debug, Clone)]
pub struct DeclSpecs {
    pub classes: Vec<StorageClass>,
    pub is_const: bool,
    pub is_volatile: bool,
    pub base: BaseSpec,
    pub line: u32,
}

/// Array dimension forms.
#[derive(Debug, Clone)]
pub enum ArrayDim {
    /// `[]`
    Empty,
    /// `[expr]`
    Size(Box<Expr>),
    /// `[type, type]` — an associative array signature.
    Tuple(Vec<Param>),
}

/// A function or tuple parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub specs: DeclSpecs,
    pub declarator: Declarator,
    pub line: u32,
}

/// C declarators, innermost name at the bottom.
#[derive(Debug, Clone)]
pub enum Declarator {
    Name(Option<String>),
    Pointer(Box<Declarator>),
    Array(Box<Declarator>, ArrayDim),
    Function(Box<Declarator>, Vec<Param>, bool),
}

impl Declarator {
    /// The declared name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Declarator::Name(n) => n.as_deref(),
            Declarator::Pointer(d) | Declarator::Array(d, _) | Declarator::Function(d, _, _) => {
                d.name()
            }
        }
    }
}

/// A type written in a cast, sizeof, offsetof, xlate or translator.
#[derive(Debug, Clone)]
pub struct TypeName {
    pub specs: DeclSpecs,
    pub declarator: Declarator,
    pub line: u32,
}

/// `specs declarator [= init], ... ;`
#[derive(Debug, Clone)]
pub struct Decl {
    pub specs: DeclSpecs,
    pub declarators: Vec<(Declarator, Option<Expr>, u32)>,
    pub line: u32,
}

/// `inline type name = expr;`
#[derive(Debug, Clone)]
pub struct InlineDecl {
    pub specs: DeclSpecs,
    pub declarator: Declarator,
    pub value: Expr,
    pub line: u32,
}

/// `translator out < in name > { member = expr; ... };`
#[derive(Debug, Clone)]
pub struct TranslatorDecl {
    pub output: TypeName,
    pub input: TypeName,
    pub input_name: String,
    pub members: Vec<(String, Expr, u32)>,
    pub line: u32,
}

/// `provider name { probe p(args); ... };` (accepted for USDT definition files; not compiled).
#[derive(Debug, Clone)]
pub struct ProviderDecl {
    pub name: String,
    pub line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Plus,
    Not,
    BitNot,
    Deref,
    AddrOf,
    PreInc,
    PreDec,
    PostInc,
    PostDec,
}

impl UnOp {
    pub fn text(self) -> &'static str {
        match self {
            UnOp::Neg => "-",
            UnOp::Plus => "+",
            UnOp::Not => "!",
            UnOp::BitNot => "~",
            UnOp::Deref => "*",
            UnOp::AddrOf => "&",
            UnOp::PreInc | UnOp::PostInc => "++",
            UnOp::PreDec | UnOp::PostDec => "--",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    LogAnd,
    LogOr,
    LogXor,
    Comma,
}

impl BinOp {
    pub fn text(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::LogAnd => "&&",
            BinOp::LogOr => "||",
            BinOp::LogXor => "^^",
            BinOp::Comma => ",",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub line: u32,
    /// Height of this expression tree (a leaf is 1); the parser bounds it so that the
    /// recursive later passes cannot exhaust the stack.
    pub depth: u32,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Int(IntLit),
    Str(Vec<u8>),
    Ident(String),
    /// `self->name`
    SelfVar(String),
    /// `this->name`
    ThisVar(String),
    /// `@name` used as a value (printa/clear/trunc arguments).
    AggName(String),
    /// `@name[keys]` as the left side of an aggregation assignment.
    AggRef(String, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `lhs op= rhs`; `None` for plain `=`.
    Assign(Option<BinOp>, Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    /// `base[k1, k2...]`
    Index(Box<Expr>, Vec<Expr>),
    Member(Box<Expr>, String),
    Arrow(Box<Expr>, String),
    Cast(Box<TypeName>, Box<Expr>),
    SizeofExpr(Box<Expr>),
    SizeofType(Box<TypeName>),
    Offsetof(Box<TypeName>, String),
    Stringof(Box<Expr>),
    Xlate(Box<TypeName>, Box<Expr>),
}

impl Expr {
    pub fn new(kind: ExprKind, line: u32) -> Self {
        let d = |e: &Expr| e.depth;
        let child = match &kind {
            ExprKind::Unary(_, x)
            | ExprKind::Member(x, _)
            | ExprKind::Arrow(x, _)
            | ExprKind::Cast(_, x)
            | ExprKind::SizeofExpr(x)
            | ExprKind::Stringof(x)
            | ExprKind::Xlate(_, x) => d(x),
            ExprKind::Binary(_, a, b) | ExprKind::Assign(_, a, b) => d(a).max(d(b)),
            ExprKind::Ternary(a, b, c) => d(a).max(d(b)).max(d(c)),
            ExprKind::Call(_, v) | ExprKind::AggRef(_, v) => v.iter().map(d).max().unwrap_or(0),
            ExprKind::Index(b, v) => v.iter().map(d).max().unwrap_or(0).max(d(b)),
            _ => 0,
        };
        Expr {
            kind,
            line,
            depth: child + 1,
        }
    }
}
