//! Parser: tokens to the [`ast`](super::ast), by recursive descent with C precedence.
//!
//! Covers the D grammar: probe clauses (several descriptions, predicate, body with FreeBSD's
//! `if`/`else`), declarations with full C declarators (struct/union/enum/typedef, associative
//! array signatures, `self`/`this` scope), `inline`, `translator`, `provider`, and every C
//! expression operator plus D's `^^`, `sizeof`, `offsetof`, `stringof`, `xlate`, `self->`,
//! `this->`, aggregations. Like C, telling a cast from a parenthesised expression needs the set
//! of typedef names, which the parser keeps (seeded by the caller). Userland only.

use std::collections::{HashSet, VecDeque};

use super::ast::*;
use super::errors::{err, CResult, CompileError};
use super::lex::{Lexer, PragmaSink, TokKind, Token};

const TYPE_WORDS: [&str; 12] = [
    "void", "char", "short", "int", "long", "float", "double", "signed", "unsigned", "string",
    "_Bool", "bool",
];

/// Parser state.
pub struct Parser<'a, 's> {
    lx: Lexer<'a>,
    sink: &'s mut dyn PragmaSink,
    buf: VecDeque<Token>,
    /// Names usable as type names (built-in typedefs plus those declared so far).
    pub typedefs: HashSet<String>,
    /// `-n`-style probe specifier: a clause may be just descriptions.
    pub pspec_mode: bool,
    last_line: u32,
    /// Line of the token after a struct/union tag (where libdtrace reports errors about it).
    spec_line: u32,
    /// struct/union tags defined so far (a second definition is reported at its `{`).
    defined_tags: HashSet<String>,
    /// Items completed so far (kept when a later syntax error stops the parse).
    pub items: Vec<Item>,
    /// Current expression/statement nesting depth.
    depth: u32,
}

fn syntax_near(t: &Token) -> CompileError {
    if t.kind == TokKind::Eof {
        CompileError::new("D_SYNTAX", t.line, "syntax error near end of input")
    } else {
        CompileError::new(
            "D_SYNTAX",
            t.line,
            format!("syntax error near \"{}\"", t.text),
        )
    }
}

impl<'a, 's> Parser<'a, 's> {
    pub fn new(lx: Lexer<'a>, sink: &'s mut dyn PragmaSink, typedefs: HashSet<String>) -> Self {
        Parser {
            lx,
            sink,
            buf: VecDeque::new(),
            typedefs,
            pspec_mode: false,
            last_line: 1,
            spec_line: 1,
            defined_tags: HashSet::new(),
            items: Vec::new(),
            depth: 0,
        }
    }

    /// Highest `$N` the source referenced.
    pub fn max_arg_used(&self) -> usize {
        self.lx.max_arg_used
    }

    fn fill(&mut self, n: usize) -> CResult<()> {
        while self.buf.len() <= n {
            let t = self.lx.next_token(self.sink)?;
            self.buf.push_back(t);
        }
        Ok(())
    }

    fn peek(&mut self) -> CResult<&Token> {
        self.fill(0)?;
        Ok(&self.buf[0])
    }

    fn peek_at(&mut self, n: usize) -> CResult<&Token> {
        self.fill(n)?;
        Ok(&self.buf[n])
    }

    fn next(&mut self) -> CResult<Token> {
        self.fill(0)?;
        let t = self.buf.pop_front().expect("filled");
        self.last_line = t.line;
        Ok(t)
    }

    fn is_punct(&mut self, p: &str) -> CResult<bool> {
        Ok(matches!(&self.peek()?.kind, TokKind::Punct(q) if *q == p))
    }

    fn is_ident(&mut self, w: &str) -> CResult<bool> {
        Ok(matches!(&self.peek()?.kind, TokKind::Ident(q) if q == w))
    }

    fn eat_punct(&mut self, p: &str) -> CResult<bool> {
        if self.is_punct(p)? {
            self.next()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect_punct(&mut self, p: &str) -> CResult<Token> {
        if self.is_punct(p)? {
            self.next()
        } else {
            let t = self.next()?;
            Err(syntax_near(&t))
        }
    }

    fn expect_ident(&mut self) -> CResult<(String, u32)> {
        let t = self.next()?;
        match t.kind {
            TokKind::Ident(s) => Ok((s, t.line)),
            _ => Err(syntax_near(&t)),
        }
    }

    /// Parses the whole program. On a syntax error the items parsed before it stay in
    /// [`Parser::items`] (libdtrace processes declarations as it parses them, so their errors
    /// come before a later syntax error).
    pub fn parse_program(&mut self) -> CResult<Program> {
        loop {
            if self.buf.is_empty() {
                let typedefs = &self.typedefs;
                let is_type = |s: &str| typedefs.contains(s);
                if let Some(t) = self.lx.try_probe_spec(self.sink, &is_type)? {
                    let c = self.parse_clause(t)?;
                    self.items.push(Item::Clause(c));
                    continue;
                }
            }
            let t = self.peek()?.clone();
            match &t.kind {
                TokKind::Eof => break,
                TokKind::Punct(";") => {
                    self.next()?;
                }
                TokKind::Ident(w) if w == "inline" => {
                    let i = self.parse_inline()?;
                    self.items.push(Item::Inline(i));
                }
                TokKind::Ident(w) if w == "translator" => {
                    let tr = self.parse_translator()?;
                    self.items.push(Item::Translator(tr));
                }
                TokKind::Ident(w) if w == "provider" => {
                    let p = self.parse_provider()?;
                    self.items.push(Item::Provider(p));
                }
                _ => {
                    if !self.is_decl_start()? {
                        let t = self.next()?;
                        return Err(syntax_near(&t));
                    }
                    let d = self.parse_decl()?;
                    self.items.push(Item::Decl(d));
                }
            }
        }
        Ok(Program {
            items: std::mem::take(&mut self.items),
        })
    }

    fn parse_clause(&mut self, first: Token) -> CResult<Clause> {
        let line = first.line;
        let TokKind::ProbeSpec(s) = first.kind else {
            unreachable!("probe spec token")
        };
        let mut descs = vec![(s, line)];
        loop {
            if !self.buf.is_empty() || !self.peek_is_comma_raw()? {
                break;
            }
            self.next()?; // ','
            let typedefs = &self.typedefs;
            let is_type = |s: &str| typedefs.contains(s);
            match self.lx.try_probe_spec(self.sink, &is_type)? {
                Some(t) => {
                    let TokKind::ProbeSpec(s) = t.kind else {
                        unreachable!("probe spec token")
                    };
                    descs.push((s, t.line));
                }
                None => {
                    let t = self.next()?;
                    return Err(syntax_near(&t));
                }
            }
        }
        let mut predicate = None;
        if self.is_punct("/")? {
            self.next()?;
            let e = self.parse_expr()?;
            let t = self.next()?;
            if t.kind != TokKind::EndPred {
                return Err(syntax_near(&t));
            }
            predicate = Some(e);
        }
        let t = self.peek()?.clone();
        let body = if t.kind == TokKind::Punct("{") {
            self.next()?;
            self.parse_stmts_until_brace()?
        } else if t.kind == TokKind::Eof && self.pspec_mode {
            Vec::new()
        } else if predicate.is_none() {
            // libdtrace reports this at the last description's line.
            let dline = descs.last().map_or(t.line, |d| d.1);
            return err(
                "D_SYNTAX",
                dline,
                "expected predicate and/or actions following probe description",
            );
        } else {
            self.next()?;
            return Err(syntax_near(&t));
        };
        Ok(Clause {
            descs,
            predicate,
            body,
            line,
        })
    }

    /// Whether the next token is `,` (only called with an empty lookahead buffer).
    fn peek_is_comma_raw(&mut self) -> CResult<bool> {
        self.is_punct(",")
    }

    fn parse_stmts_until_brace(&mut self) -> CResult<Vec<Stmt>> {
        let mut out = Vec::new();
        loop {
            if self.eat_punct("}")? {
                return Ok(out);
            }
            if self.eat_punct(";")? {
                continue;
            }
            let s = self.parse_stmt()?;
            let is_if = matches!(s, Stmt::If { .. });
            out.push(s);
            if is_if {
                continue;
            }
            let t = self.peek()?.clone();
            match t.kind {
                TokKind::Punct(";") => {
                    self.next()?;
                }
                TokKind::Punct("}") => {}
                _ => {
                    self.next()?;
                    return Err(syntax_near(&t));
                }
            }
        }
    }

    fn parse_stmt(&mut self) -> CResult<Stmt> {
        if self.is_ident("if")? {
            let line = self.next()?.line;
            self.expect_punct("(")?;
            let cond = self.parse_expr()?;
            self.expect_punct(")")?;
            let then = self.parse_block_or_stmt()?;
            let els = if self.is_ident("else")? {
                self.next()?;
                self.parse_block_or_stmt()?
            } else {
                Vec::new()
            };
            return Ok(Stmt::If {
                cond,
                then,
                els,
                line,
            });
        }
        if self.is_decl_start()? && !self.is_ident("self")? && !self.is_ident("this")? {
            let t = self.next()?;
            return Err(syntax_near(&t));
        }
        Ok(Stmt::Expr(self.parse_expr()?))
    }

    fn parse_block_or_stmt(&mut self) -> CResult<Vec<Stmt>> {
        self.depth += 1;
        let r = if self.depth > Self::MAX_DEPTH {
            let line = self.peek()?.line;
            err("D_SYNTAX", line, "statement is too deeply nested")
        } else {
            self.parse_block_or_stmt_inner()
        };
        self.depth -= 1;
        r
    }

    fn parse_block_or_stmt_inner(&mut self) -> CResult<Vec<Stmt>> {
        if self.eat_punct("{")? {
            return self.parse_stmts_until_brace();
        }
        let s = self.parse_stmt()?;
        if !matches!(s, Stmt::If { .. }) {
            let t = self.peek()?.clone();
            match t.kind {
                TokKind::Punct(";") => {
                    self.next()?;
                }
                TokKind::Punct("}") => {}
                _ => {
                    self.next()?;
                    return Err(syntax_near(&t));
                }
            }
        }
        Ok(vec![s])
    }

    // ----- declarations -----

    fn tok_starts_type(&self, t: &Token) -> bool {
        match &t.kind {
            TokKind::Ident(w) => {
                TYPE_WORDS.contains(&w.as_str())
                    || matches!(
                        w.as_str(),
                        "struct" | "union" | "enum" | "const" | "volatile" | "restrict"
                    )
                    || self.typedefs.contains(w)
            }
            _ => false,
        }
    }

    fn is_decl_start(&mut self) -> CResult<bool> {
        let t = self.peek()?.clone();
        if self.tok_starts_type(&t) {
            return Ok(true);
        }
        Ok(matches!(&t.kind, TokKind::Ident(w) if matches!(w.as_str(),
            "auto" | "register" | "static" | "extern" | "typedef" | "self" | "this")))
    }

    fn parse_decl_specs(&mut self) -> CResult<DeclSpecs> {
        let line = self.peek()?.line;
        let mut specs = DeclSpecs {
            classes: Vec::new(),
            is_const: false,
            is_volatile: false,
            base: BaseSpec::None,
            line,
        };
        loop {
            let t = self.peek()?.clone();
            let TokKind::Ident(w) = &t.kind else { break };
            match w.as_str() {
                "auto" => specs.classes.push(StorageClass::Auto),
                "register" => specs.classes.push(StorageClass::Register),
                "static" => specs.classes.push(StorageClass::Static),
                "extern" => specs.classes.push(StorageClass::Extern),
                "typedef" => specs.classes.push(StorageClass::Typedef),
                "self" if !matches!(self.peek_at(1)?.kind, TokKind::Punct("->")) => {
                    specs.classes.push(StorageClass::SelfScope)
                }
                "this" if !matches!(self.peek_at(1)?.kind, TokKind::Punct("->")) => {
                    specs.classes.push(StorageClass::ThisScope)
                }
                "const" => specs.is_const = true,
                "volatile" => specs.is_volatile = true,
                "restrict" => {}
                "struct" | "union" | "enum" => {
                    self.next()?;
                    let prior = std::mem::replace(&mut specs.base, BaseSpec::None);
                    specs.base = if w == "enum" {
                        self.parse_enum()?
                    } else {
                        self.parse_sou(if w == "struct" {
                            SouKind::Struct
                        } else {
                            SouKind::Union
                        })?
                    };
                    if let BaseSpec::Words(words) = &prior {
                        let line = self.spec_line;
                        if words.iter().any(|x| x == "long" || x == "short") {
                            return err(
                                "D_DECL_LONGINT",
                                line,
                                "invalid type declaration: long and long long may only be used with integer or floating-point type",
                            );
                        }
                        if words.iter().all(|x| x == "signed" || x == "unsigned") {
                            return err(
                                "D_DECL_SIGNINT",
                                line,
                                "invalid type declaration: signed and unsigned may only be used with integer type",
                            );
                        }
                    }
                    if !matches!(prior, BaseSpec::None) {
                        return err("D_DECL_COMBO", t.line, "invalid type combination");
                    }
                    continue;
                }
                _ if TYPE_WORDS.contains(&w.as_str()) => match &mut specs.base {
                    BaseSpec::None => specs.base = BaseSpec::Words(vec![w.clone()]),
                    BaseSpec::Words(v) => v.push(w.clone()),
                    _ => return err("D_DECL_COMBO", t.line, "invalid type combination"),
                },
                _ if self.typedefs.contains(w) && matches!(specs.base, BaseSpec::None) => {
                    specs.base = BaseSpec::Named(w.clone());
                }
                _ => break,
            }
            self.next()?;
        }
        Ok(specs)
    }

    fn parse_sou(&mut self, kind: SouKind) -> CResult<BaseSpec> {
        let mut tag = None;
        if let TokKind::Ident(_) = self.peek()?.kind {
            let (name, line) = self.expect_ident()?;
            if name.contains('`') && self.is_punct("{")? {
                return err("D_SYNTAX", line, format!("syntax error near \"{}\"", name));
            }
            tag = Some(strip_scope(name));
        }
        self.spec_line = self.peek()?.line;
        if !self.eat_punct("{")? {
            if tag.is_none() {
                let t = self.next()?;
                return Err(syntax_near(&t));
            }
            return Ok(BaseSpec::Sou {
                kind,
                tag,
                members: None,
            });
        }
        if let Some(t) = &tag {
            let key = format!(
                "{}{}",
                if kind == SouKind::Struct {
                    "struct "
                } else {
                    "union "
                },
                t
            );
            if !self.defined_tags.insert(key.clone()) {
                return err(
                    "D_DECL_TYPERED",
                    self.spec_line,
                    format!("type redeclared: {}", key),
                );
            }
        }
        let mut members = Vec::new();
        while !self.eat_punct("}")? {
            let specs = self.parse_decl_specs()?;
            let line = specs.line;
            let mut decls = Vec::new();
            loop {
                let d = if self.is_punct(":")? {
                    Declarator::Name(None)
                } else {
                    self.parse_declarator()?
                };
                let width = if self.eat_punct(":")? {
                    Some(self.parse_ternary()?)
                } else {
                    None
                };
                decls.push((d, width));
                if !self.eat_punct(",")? {
                    break;
                }
            }
            let semi = self.expect_punct(";")?;
            let _ = line;
            members.push(MemberDecl {
                specs,
                declarators: decls,
                line: semi.line,
            });
        }
        Ok(BaseSpec::Sou {
            kind,
            tag,
            members: Some(members),
        })
    }

    fn parse_enum(&mut self) -> CResult<BaseSpec> {
        let mut tag = None;
        if let TokKind::Ident(_) = self.peek()?.kind {
            let (name, _) = self.expect_ident()?;
            tag = Some(strip_scope(name));
        }
        if !self.eat_punct("{")? {
            if tag.is_none() {
                let t = self.next()?;
                return Err(syntax_near(&t));
            }
            return Ok(BaseSpec::Enum {
                tag,
                enumerators: None,
            });
        }
        let mut list = Vec::new();
        loop {
            // An enumerator list may end with a comma but may not be empty.
            if !list.is_empty() && self.eat_punct("}")? {
                break;
            }
            let (name, line) = self.expect_ident()?;
            let value = if self.eat_punct("=")? {
                Some(self.parse_ternary()?)
            } else {
                None
            };
            // libdtrace reports enumerator errors when it sees the next token.
            let after = self.peek()?.line;
            let line = if value.is_some() { after } else { line };
            list.push(Enumerator { name, value, line });
            if !self.eat_punct(",")? {
                self.expect_punct("}")?;
                break;
            }
        }
        Ok(BaseSpec::Enum {
            tag,
            enumerators: Some(list),
        })
    }

    /// Parses a (possibly abstract) declarator.
    fn parse_declarator(&mut self) -> CResult<Declarator> {
        if self.eat_punct("*")? {
            while self.is_ident("const")?
                || self.is_ident("volatile")?
                || self.is_ident("restrict")?
            {
                self.next()?;
            }
            let inner = self.parse_declarator()?;
            return Ok(Declarator::Pointer(Box::new(inner)));
        }
        let t = self.peek()?.clone();
        let mut d = match &t.kind {
            TokKind::Ident(n)
                if !TYPE_WORDS.contains(&n.as_str())
                    && !matches!(
                        n.as_str(),
                        "struct" | "union" | "enum" | "const" | "volatile"
                    ) =>
            {
                self.next()?;
                Declarator::Name(Some(n.clone()))
            }
            TokKind::Punct("(") => {
                let t1 = self.peek_at(1)?.clone();
                let nested = matches!(t1.kind, TokKind::Punct("*") | TokKind::Punct("("))
                    || matches!(&t1.kind, TokKind::Ident(_) if !self.tok_starts_type(&t1));
                if nested {
                    self.next()?;
                    let inner = self.parse_declarator()?;
                    self.expect_punct(")")?;
                    inner
                } else {
                    Declarator::Name(None)
                }
            }
            _ => Declarator::Name(None),
        };
        loop {
            if self.eat_punct("[")? {
                let dim = if self.eat_punct("]")? {
                    ArrayDim::Empty
                } else {
                    let t = self.peek()?.clone();
                    if self.tok_starts_type(&t) {
                        let mut params = Vec::new();
                        loop {
                            params.push(self.parse_param()?);
                            if !self.eat_punct(",")? {
                                break;
                            }
                        }
                        self.expect_punct("]")?;
                        ArrayDim::Tuple(params)
                    } else {
                        let e = self.parse_expr()?;
                        self.expect_punct("]")?;
                        ArrayDim::Size(Box::new(e))
                    }
                };
                d = Declarator::Array(Box::new(d), dim);
            } else if self.is_punct("(")? {
                self.next()?;
                let mut params = Vec::new();
                let mut varargs = false;
                if !self.eat_punct(")")? {
                    loop {
                        if self.eat_punct("...")? {
                            varargs = true;
                            break;
                        }
                        params.push(self.parse_param()?);
                        if !self.eat_punct(",")? {
                            break;
                        }
                    }
                    self.expect_punct(")")?;
                }
                d = Declarator::Function(Box::new(d), params, varargs);
            } else {
                break;
            }
        }
        Ok(d)
    }

    fn parse_param(&mut self) -> CResult<Param> {
        let line = self.peek()?.line;
        let specs = self.parse_decl_specs()?;
        if matches!(specs.base, BaseSpec::None) && specs.classes.is_empty() {
            let t = self.next()?;
            return Err(syntax_near(&t));
        }
        let declarator = self.parse_declarator()?;
        Ok(Param {
            specs,
            declarator,
            line,
        })
    }

    fn parse_decl(&mut self) -> CResult<Decl> {
        let line = self.peek()?.line;
        let specs = self.parse_decl_specs()?;
        let mut declarators = Vec::new();
        if !self.is_punct(";")? {
            loop {
                let d = self.parse_declarator()?;
                if d.name().is_none() {
                    let t = self.next()?;
                    return Err(syntax_near(&t));
                }
                let dline = self.peek()?.line;
                declarators.push((d, None, dline));
                if !self.eat_punct(",")? {
                    break;
                }
            }
        }
        if specs.classes.contains(&StorageClass::Typedef) {
            for (d, _, _) in &declarators {
                if let Some(n) = d.name() {
                    self.typedefs.insert(n.to_string());
                }
            }
        }
        self.expect_punct(";")?;
        Ok(Decl {
            specs,
            declarators,
            line,
        })
    }

    fn parse_inline(&mut self) -> CResult<InlineDecl> {
        let line = self.next()?.line; // inline
        let specs = self.parse_decl_specs()?;
        let declarator = self.parse_declarator()?;
        if declarator.name().is_none() {
            let t = self.next()?;
            return Err(syntax_near(&t));
        }
        self.expect_punct("=")?;
        let value = self.parse_assign()?;
        self.expect_punct(";")?;
        Ok(InlineDecl {
            specs,
            declarator,
            value,
            line,
        })
    }

    fn parse_type_name(&mut self) -> CResult<TypeName> {
        let line = self.peek()?.line;
        let specs = self.parse_decl_specs()?;
        if matches!(specs.base, BaseSpec::None) {
            let t = self.next()?;
            return Err(syntax_near(&t));
        }
        let declarator = self.parse_declarator()?;
        if declarator.name().is_some() {
            return err(
                "D_SYNTAX",
                line,
                format!("syntax error near \"{}\"", declarator.name().unwrap_or("")),
            );
        }
        Ok(TypeName {
            specs,
            declarator,
            line,
        })
    }

    fn parse_translator(&mut self) -> CResult<TranslatorDecl> {
        let line = self.next()?.line; // translator
        let output = self.parse_type_name()?;
        self.expect_punct("<")?;
        let in_specs = self.parse_decl_specs()?;
        let in_decl = self.parse_declarator()?;
        let Some(input_name) = in_decl.name().map(str::to_string) else {
            let t = self.next()?;
            return Err(syntax_near(&t));
        };
        let input = TypeName {
            specs: in_specs,
            declarator: strip_name(in_decl),
            line,
        };
        self.expect_punct(">")?;
        self.expect_punct("{")?;
        let mut members = Vec::new();
        while !self.eat_punct("}")? {
            let (name, mline) = self.expect_ident()?;
            self.expect_punct("=")?;
            let e = self.parse_assign()?;
            self.expect_punct(";")?;
            let _ = mline;
            members.push((name, e, self.peek()?.line));
        }
        let end = self.expect_punct(";")?;
        let _ = line;
        Ok(TranslatorDecl {
            output,
            input,
            input_name,
            members,
            line: end.line,
        })
    }

    fn parse_provider(&mut self) -> CResult<ProviderDecl> {
        let line = self.next()?.line;
        let (name, _) = self.expect_ident()?;
        self.expect_punct("{")?;
        let mut depth = 1;
        while depth > 0 {
            let t = self.next()?;
            match t.kind {
                TokKind::Punct("{") => depth += 1,
                TokKind::Punct("}") => depth -= 1,
                TokKind::Eof => return Err(syntax_near(&t)),
                _ => {}
            }
        }
        self.expect_punct(";")?;
        Ok(ProviderDecl { name, line })
    }

    // ----- expressions -----

    /// expression (with the comma operator)
    pub fn parse_expr(&mut self) -> CResult<Expr> {
        let mut e = self.parse_assign()?;
        while self.is_punct(",")? {
            let line = self.next()?.line;
            let r = self.parse_assign()?;
            e = Expr::new(
                ExprKind::Binary(BinOp::Comma, Box::new(e), Box::new(r)),
                line,
            );
        }
        Ok(e)
    }

    fn parse_assign(&mut self) -> CResult<Expr> {
        let lhs = self.parse_ternary()?;
        let t = self.peek()?.clone();
        let op = match t.kind {
            TokKind::Punct("=") => Some(None),
            TokKind::Punct("+=") => Some(Some(BinOp::Add)),
            TokKind::Punct("-=") => Some(Some(BinOp::Sub)),
            TokKind::Punct("*=") => Some(Some(BinOp::Mul)),
            TokKind::Punct("/=") => Some(Some(BinOp::Div)),
            TokKind::Punct("%=") => Some(Some(BinOp::Mod)),
            TokKind::Punct("&=") => Some(Some(BinOp::BitAnd)),
            TokKind::Punct("|=") => Some(Some(BinOp::BitOr)),
            TokKind::Punct("^=") => Some(Some(BinOp::BitXor)),
            TokKind::Punct("<<=") => Some(Some(BinOp::Shl)),
            TokKind::Punct(">>=") => Some(Some(BinOp::Shr)),
            _ => None,
        };
        let Some(op) = op else { return Ok(lhs) };
        self.next()?;
        let rhs = self.parse_assign()?;
        Ok(Expr::new(
            ExprKind::Assign(op, Box::new(lhs), Box::new(rhs)),
            t.line,
        ))
    }

    fn parse_ternary(&mut self) -> CResult<Expr> {
        let c = self.parse_binary(0)?;
        if !self.is_punct("?")? {
            return Ok(c);
        }
        let line = self.next()?.line;
        let a = self.parse_expr()?;
        self.expect_punct(":")?;
        let b = self.parse_ternary()?;
        Ok(Expr::new(
            ExprKind::Ternary(Box::new(c), Box::new(a), Box::new(b)),
            line,
        ))
    }

    fn binop_of(t: &Token) -> Option<(BinOp, u8)> {
        let TokKind::Punct(p) = t.kind else {
            return None;
        };
        Some(match p {
            "||" => (BinOp::LogOr, 1),
            "^^" => (BinOp::LogXor, 2),
            "&&" => (BinOp::LogAnd, 3),
            "|" => (BinOp::BitOr, 4),
            "^" => (BinOp::BitXor, 5),
            "&" => (BinOp::BitAnd, 6),
            "==" => (BinOp::Eq, 7),
            "!=" => (BinOp::Ne, 7),
            "<" => (BinOp::Lt, 8),
            "<=" => (BinOp::Le, 8),
            ">" => (BinOp::Gt, 8),
            ">=" => (BinOp::Ge, 8),
            "<<" => (BinOp::Shl, 9),
            ">>" => (BinOp::Shr, 9),
            "+" => (BinOp::Add, 10),
            "-" => (BinOp::Sub, 10),
            "*" => (BinOp::Mul, 11),
            "/" => (BinOp::Div, 11),
            "%" => (BinOp::Mod, 11),
            _ => return None,
        })
    }

    /// Precedence climbing over the left-associative binary operators.
    fn parse_binary(&mut self, min_prec: u8) -> CResult<Expr> {
        let mut lhs = self.parse_unary()?;
        loop {
            let t = self.peek()?.clone();
            let Some((op, prec)) = Self::binop_of(&t) else {
                break;
            };
            if prec <= min_prec {
                break;
            }
            self.next()?;
            let rhs = self.parse_binary(prec)?;
            // libdtrace's node line is where the lexer is when the rule is reduced: at the
            // token after the right operand.
            let line = self.peek()?.line;
            let _ = t.line;
            lhs = Expr::new(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), line);
            if lhs.depth > Self::MAX_TREE {
                return err("D_SYNTAX", line, "expression is too complex");
            }
        }
        Ok(lhs)
    }

    /// Nesting limit for expressions and statements: deeper input is rejected instead of
    /// exhausting the stack of this (recursive) parser and of the later passes.
    const MAX_DEPTH: u32 = 128;
    /// Limit on the height of an expression tree (long operator chains build deep trees).
    const MAX_TREE: u32 = 1000;

    fn parse_unary(&mut self) -> CResult<Expr> {
        self.depth += 1;
        let r = if self.depth > Self::MAX_DEPTH {
            let line = self.peek()?.line;
            err("D_SYNTAX", line, "expression is too deeply nested")
        } else {
            self.parse_unary_inner()
        };
        self.depth -= 1;
        r
    }

    fn parse_unary_inner(&mut self) -> CResult<Expr> {
        let t = self.peek()?.clone();
        let line = t.line;
        let unop = match &t.kind {
            TokKind::Punct("-") => Some(UnOp::Neg),
            TokKind::Punct("+") => Some(UnOp::Plus),
            TokKind::Punct("!") => Some(UnOp::Not),
            TokKind::Punct("~") => Some(UnOp::BitNot),
            TokKind::Punct("*") => Some(UnOp::Deref),
            TokKind::Punct("&") => Some(UnOp::AddrOf),
            TokKind::Punct("++") => Some(UnOp::PreInc),
            TokKind::Punct("--") => Some(UnOp::PreDec),
            _ => None,
        };
        if let Some(op) = unop {
            self.next()?;
            let e = self.parse_unary()?;
            return Ok(Expr::new(ExprKind::Unary(op, Box::new(e)), line));
        }
        if let TokKind::Ident(w) = &t.kind {
            match w.as_str() {
                "sizeof" => {
                    self.next()?;
                    if self.is_punct("(")? {
                        let t1 = self.peek_at(1)?.clone();
                        if self.tok_starts_type(&t1) {
                            self.next()?;
                            let tn = self.parse_type_name()?;
                            self.expect_punct(")")?;
                            return Ok(Expr::new(ExprKind::SizeofType(Box::new(tn)), line));
                        }
                    }
                    let e = self.parse_unary()?;
                    return Ok(Expr::new(ExprKind::SizeofExpr(Box::new(e)), line));
                }
                "stringof" => {
                    self.next()?;
                    let e = self.parse_unary()?;
                    return Ok(Expr::new(ExprKind::Stringof(Box::new(e)), line));
                }
                "offsetof" => {
                    self.next()?;
                    self.expect_punct("(")?;
                    let tn = self.parse_type_name()?;
                    self.expect_punct(",")?;
                    let (m, _) = self.expect_ident()?;
                    self.expect_punct(")")?;
                    return Ok(Expr::new(ExprKind::Offsetof(Box::new(tn), m), line));
                }
                _ => {}
            }
        }
        if t.kind == TokKind::Punct("(") {
            let t1 = self.peek_at(1)?.clone();
            if self.tok_starts_type(&t1) {
                self.next()?;
                let tn = self.parse_type_name()?;
                self.expect_punct(")")?;
                let e = self.parse_unary()?;
                let after = self.peek()?.line;
                let _ = line;
                return Ok(Expr::new(ExprKind::Cast(Box::new(tn), Box::new(e)), after));
            }
        }
        self.parse_postfix()
    }

    fn parse_args(&mut self, close: &str) -> CResult<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat_punct(close)? {
            return Ok(args);
        }
        loop {
            args.push(self.parse_assign()?);
            if self.eat_punct(close)? {
                return Ok(args);
            }
            self.expect_punct(",")?;
        }
    }

    fn parse_postfix(&mut self) -> CResult<Expr> {
        let mut e = self.parse_primary()?;
        loop {
            let t = self.peek()?.clone();
            match t.kind {
                TokKind::Punct("[") => {
                    self.next()?;
                    let args = self.parse_args("]")?;
                    e = match e.kind {
                        ExprKind::AggName(n) => Expr::new(ExprKind::AggRef(n, args), e.line),
                        _ => Expr::new(ExprKind::Index(Box::new(e), args), t.line),
                    };
                }
                TokKind::Punct("(") => {
                    let ExprKind::Ident(name) = &e.kind else {
                        self.next()?;
                        return Err(syntax_near(&t));
                    };
                    let name = name.clone();
                    self.next()?;
                    let args = self.parse_args(")")?;
                    e = Expr::new(ExprKind::Call(name, args), e.line);
                }
                TokKind::Punct(".") => {
                    self.next()?;
                    let (m, _) = self.expect_ident()?;
                    e = Expr::new(ExprKind::Member(Box::new(e), m), t.line);
                }
                TokKind::Punct("->") => {
                    self.next()?;
                    let (m, _) = self.expect_ident()?;
                    e = Expr::new(ExprKind::Arrow(Box::new(e), m), t.line);
                }
                TokKind::Punct("++") => {
                    self.next()?;
                    e = Expr::new(ExprKind::Unary(UnOp::PostInc, Box::new(e)), t.line);
                }
                TokKind::Punct("--") => {
                    self.next()?;
                    e = Expr::new(ExprKind::Unary(UnOp::PostDec, Box::new(e)), t.line);
                }
                _ => return Ok(e),
            }
        }
    }

    fn parse_primary(&mut self) -> CResult<Expr> {
        let t = self.next()?;
        let line = t.line;
        match t.kind {
            TokKind::Int(lit) => Ok(Expr::new(ExprKind::Int(lit), line)),
            TokKind::Str(mut s) => {
                // Adjacent string literals concatenate.
                while let TokKind::Str(more) = &self.peek()?.kind {
                    s.extend_from_slice(more);
                    self.next()?;
                }
                Ok(Expr::new(ExprKind::Str(s), line))
            }
            TokKind::Agg(n) => Ok(Expr::new(ExprKind::AggName(n), line)),
            TokKind::Ident(w) if w == "xlate" => {
                self.expect_punct("<")?;
                let tn = self.parse_type_name()?;
                self.expect_punct(">")?;
                self.expect_punct("(")?;
                let e = self.parse_expr()?;
                self.expect_punct(")")?;
                Ok(Expr::new(ExprKind::Xlate(Box::new(tn), Box::new(e)), line))
            }
            TokKind::Ident(w) if w == "self" || w == "this" => {
                if !self.is_punct("->")? {
                    let n = self.next()?;
                    return Err(syntax_near(&n));
                }
                self.next()?;
                let (m, _) = self.expect_ident()?;
                Ok(Expr::new(
                    if w == "self" {
                        ExprKind::SelfVar(m)
                    } else {
                        ExprKind::ThisVar(m)
                    },
                    line,
                ))
            }
            TokKind::Ident(w) => {
                if TYPE_WORDS.contains(&w.as_str())
                    || matches!(
                        w.as_str(),
                        "struct" | "union" | "enum" | "typedef" | "inline" | "translator"
                    )
                {
                    return Err(syntax_near(&Token {
                        kind: TokKind::Ident(w.clone()),
                        line,
                        text: t.text,
                    }));
                }
                Ok(Expr::new(ExprKind::Ident(w), line))
            }
            TokKind::Punct("(") => {
                let e = self.parse_expr()?;
                self.expect_punct(")")?;
                Ok(e)
            }
            _ => Err(syntax_near(&t)),
        }
    }
}

/// Drops a module scope (`` D`name `` → `name`) from a type tag reference.
fn strip_scope(name: String) -> String {
    match name.rsplit_once('`') {
        Some((_, n)) => n.to_string(),
        None => name,
    }
}

/// A declarator with its name removed (for translator input types).
fn strip_name(d: Declarator) -> Declarator {
    match d {
        Declarator::Name(_) => Declarator::Name(None),
        Declarator::Pointer(i) => Declarator::Pointer(Box::new(strip_name(*i))),
        Declarator::Array(i, dim) => Declarator::Array(Box::new(strip_name(*i)), dim),
        Declarator::Function(i, p, v) => Declarator::Function(Box::new(strip_name(*i)), p, v),
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::{MacroEnv, NoPragmas};
    use super::*;

    fn parse(src: &str) -> CResult<Program> {
        let env = MacroEnv::default();
        let lx = Lexer::new(src, &env);
        let mut sink = NoPragmas;
        let mut typedefs = HashSet::new();
        typedefs.insert("uint64_t".to_string());
        let mut p = Parser::new(lx, &mut sink, typedefs);
        p.parse_program()
    }

    #[test]
    fn clause_with_several_descriptions_and_predicate() {
        let p = parse("BEGIN, tick-1s /x > 1 && y/ { trace(1); @a[probename] = count() }").unwrap();
        let Item::Clause(c) = &p.items[0] else {
            panic!("not a clause")
        };
        assert_eq!(c.descs.len(), 2);
        assert_eq!(c.descs[1].0, "tick-1s");
        assert!(c.predicate.is_some());
        assert_eq!(c.body.len(), 2);
    }

    #[test]
    fn precedence_mul_over_add_and_right_assoc_assign() {
        let p = parse("BEGIN { a = b = 1 + 2 * 3; }").unwrap();
        let Item::Clause(c) = &p.items[0] else {
            panic!()
        };
        let Stmt::Expr(e) = &c.body[0] else { panic!() };
        let ExprKind::Assign(None, _, rhs) = &e.kind else {
            panic!("{:?}", e)
        };
        let ExprKind::Assign(None, _, sum) = &rhs.kind else {
            panic!()
        };
        let ExprKind::Binary(BinOp::Add, _, prod) = &sum.kind else {
            panic!()
        };
        assert!(matches!(prod.kind, ExprKind::Binary(BinOp::Mul, _, _)));
    }

    #[test]
    fn declarations_and_typedef_then_cast() {
        let p =
            parse("typedef int myint; myint x[int, string]; self int *y; BEGIN { z = (myint)1; }")
                .unwrap();
        assert_eq!(p.items.len(), 4);
        let Item::Decl(d) = &p.items[1] else { panic!() };
        assert!(
            matches!(&d.declarators[0].0, Declarator::Array(_, ArrayDim::Tuple(v)) if v.len() == 2)
        );
        let Item::Clause(c) = &p.items[3] else {
            panic!()
        };
        let Stmt::Expr(e) = &c.body[0] else { panic!() };
        let ExprKind::Assign(_, _, r) = &e.kind else {
            panic!()
        };
        assert!(matches!(r.kind, ExprKind::Cast(_, _)));
    }

    #[test]
    fn syntax_errors_name_the_token() {
        let e = parse("BEGIN { i *+= i; }").unwrap_err();
        assert_eq!(e.message, "syntax error near \"+=\"");
        let e = parse("int i = 0;").unwrap_err();
        assert_eq!(e.message, "syntax error near \"=\"");
        let e = parse("BEGIN").unwrap_err();
        assert_eq!(
            e.message,
            "expected predicate and/or actions following probe description"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        // Debug builds have big frames: give the parser the stack a release main thread has.
        let t = std::thread::Builder::new().stack_size(64 << 20).spawn(|| {
            let src = format!("BEGIN {{ x = {}1{}; }}", "(".repeat(5000), ")".repeat(5000));
            let e = parse(&src).unwrap_err();
            assert_eq!(e.message, "expression is too deeply nested");
            let chain = format!("BEGIN {{ x = 1{}; }}", " + 1".repeat(5000));
            assert_eq!(
                parse(&chain).unwrap_err().message,
                "expression is too complex"
            );
            let ok = format!("BEGIN {{ x = {}1{}; }}", "(".repeat(100), ")".repeat(100));
            assert!(parse(&ok).is_ok());
        });
        t.expect("spawn").join().expect("no panic");
    }

    #[test]
    fn if_else_and_struct() {
        let p = parse("struct s { int a : 3; char *b; }; BEGIN { if (x) { y = 1; } else z = 2; }")
            .unwrap();
        let Item::Clause(c) = &p.items[1] else {
            panic!()
        };
        assert!(matches!(&c.body[0], Stmt::If { els, .. } if els.len() == 1));
    }
}
