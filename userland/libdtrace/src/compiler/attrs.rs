//! Stability attributes of a D program, as `dtrace -v` reports them.
//!
//! Every identifier D offers (built-in variables, subroutines, actions and aggregating
//! functions) has an attribute triple (name stability, data stability, dependency class).
//! [`clause_stability`] walks one clause and takes the per-component minimum over everything
//! its predicate and actions use; a clause without actions gets libdtrace's default (Stable,
//! Stable, Common). The probe-context variables (`probeprov`, `probemod`, `probefunc`,
//! `probename`, `args[]`) take the attributes of the provider whose probes the clause
//! enables, so the clause only records that it uses them; [`program_stability`] resolves them
//! (and the description attributes) once the caller knows each description's provider.
//!
//! Constants and string literals never lower anything; user variables, aggregations,
//! inlines and D types have the default attributes unless `#pragma D attributes` names them;
//! kernel symbols (`` `sym ``) and kernel types (`` module`type ``) are Private/Private/Unknown.
//! Userland only.

use std::collections::HashMap;

use rdtrace_ffi::attr::{Attribute, DepClass, PAttr, Stability};

use super::ast::{self, Expr, ExprKind, Stmt};
use super::pdesc::ProbeDesc;

/// The most stable attributes (`_dtrace_maxattr`): the identity of [`Attribute::min`].
pub const MAX_ATTR: Attribute =
    Attribute::new(Stability::Standard, Stability::Standard, DepClass::Common);

/// Default attributes (`_dtrace_defattr`): user identifiers and clauses without actions.
pub const DEFAULT_ATTR: Attribute =
    Attribute::new(Stability::Stable, Stability::Stable, DepClass::Common);

/// Kernel symbols and kernel types.
pub const KERNEL_SYMBOL_ATTR: Attribute =
    Attribute::new(Stability::Private, Stability::Private, DepClass::Unknown);

/// Used when no representative probe gives a provider: Unstable everywhere.
pub const UNSPECIFIED_PROVIDER: PAttr = {
    let unstable = Attribute::new(Stability::Unstable, Stability::Unstable, DepClass::Common);
    PAttr {
        provider: unstable,
        module: unstable,
        function: unstable,
        name: unstable,
        args: unstable,
    }
};

const STABLE_COMMON: Attribute = DEFAULT_ATTR;
const EVOLVING_COMMON: Attribute =
    Attribute::new(Stability::Evolving, Stability::Evolving, DepClass::Common);
/// `curthread`: a stable name for private data.
const STABLE_NAME_PRIVATE_DATA: Attribute =
    Attribute::new(Stability::Stable, Stability::Private, DepClass::Common);

/// Built-in identifiers and their attributes (libdtrace's global identifier table). The
/// probe-context variables are not here: see [`ContextUse`].
const BUILTINS: &[(&str, Attribute)] = &[
    // Variables.
    ("arg0", STABLE_COMMON),
    ("arg1", STABLE_COMMON),
    ("arg2", STABLE_COMMON),
    ("arg3", STABLE_COMMON),
    ("arg4", STABLE_COMMON),
    ("arg5", STABLE_COMMON),
    ("arg6", STABLE_COMMON),
    ("arg7", STABLE_COMMON),
    ("arg8", STABLE_COMMON),
    ("arg9", STABLE_COMMON),
    ("caller", STABLE_COMMON),
    ("cpu", STABLE_COMMON),
    ("curthread", STABLE_NAME_PRIVATE_DATA),
    ("epid", STABLE_COMMON),
    ("errno", STABLE_COMMON),
    ("execargs", STABLE_COMMON),
    ("execname", STABLE_COMMON),
    ("gid", STABLE_COMMON),
    ("id", STABLE_COMMON),
    ("ipl", STABLE_COMMON),
    ("pid", STABLE_COMMON),
    ("ppid", STABLE_COMMON),
    ("self", STABLE_COMMON),
    ("stackdepth", STABLE_COMMON),
    ("this", STABLE_COMMON),
    ("tid", STABLE_COMMON),
    ("timestamp", STABLE_COMMON),
    ("ucaller", STABLE_COMMON),
    ("uid", STABLE_COMMON),
    ("uregs", STABLE_COMMON),
    ("ustackdepth", STABLE_COMMON),
    ("vtimestamp", STABLE_COMMON),
    ("walltimestamp", STABLE_COMMON),
    // Subroutines.
    ("alloca", STABLE_COMMON),
    ("basename", STABLE_COMMON),
    ("bcopy", STABLE_COMMON),
    ("cleanpath", STABLE_COMMON),
    ("copyin", STABLE_COMMON),
    ("copyinstr", STABLE_COMMON),
    ("copyinto", STABLE_COMMON),
    ("copyout", STABLE_COMMON),
    ("copyoutstr", STABLE_COMMON),
    ("ddi_pathname", EVOLVING_COMMON),
    ("dirname", STABLE_COMMON),
    ("getf", STABLE_COMMON),
    ("getmajor", EVOLVING_COMMON),
    ("getminor", EVOLVING_COMMON),
    ("htonl", EVOLVING_COMMON),
    ("htonll", EVOLVING_COMMON),
    ("htons", EVOLVING_COMMON),
    ("index", STABLE_COMMON),
    ("inet_ntoa", STABLE_COMMON),
    ("inet_ntoa6", STABLE_COMMON),
    ("inet_ntop", STABLE_COMMON),
    ("json", STABLE_COMMON),
    ("lltostr", STABLE_COMMON),
    ("memref", STABLE_COMMON),
    ("memstr", STABLE_COMMON),
    ("msgdsize", STABLE_COMMON),
    ("msgsize", STABLE_COMMON),
    ("mutex_owned", EVOLVING_COMMON),
    ("mutex_owner", EVOLVING_COMMON),
    ("mutex_type_adaptive", EVOLVING_COMMON),
    ("mutex_type_spin", EVOLVING_COMMON),
    ("ntohl", EVOLVING_COMMON),
    ("ntohll", EVOLVING_COMMON),
    ("ntohs", EVOLVING_COMMON),
    ("progenyof", STABLE_COMMON),
    ("rand", STABLE_COMMON),
    ("rindex", STABLE_COMMON),
    ("rw_iswriter", EVOLVING_COMMON),
    ("rw_read_held", EVOLVING_COMMON),
    ("rw_write_held", EVOLVING_COMMON),
    ("speculation", STABLE_COMMON),
    ("strchr", STABLE_COMMON),
    ("strjoin", STABLE_COMMON),
    ("strlen", STABLE_COMMON),
    ("strrchr", STABLE_COMMON),
    ("strstr", STABLE_COMMON),
    ("strtok", STABLE_COMMON),
    ("strtoll", STABLE_COMMON),
    ("substr", STABLE_COMMON),
    ("sx_exclusive_held", EVOLVING_COMMON),
    ("sx_isexclusive", EVOLVING_COMMON),
    ("sx_shared_held", EVOLVING_COMMON),
    ("tolower", STABLE_COMMON),
    ("toupper", STABLE_COMMON),
    ("typeref", STABLE_COMMON),
    // Actions.
    ("breakpoint", STABLE_COMMON),
    ("chill", STABLE_COMMON),
    ("clear", STABLE_COMMON),
    ("commit", STABLE_COMMON),
    ("denormalize", STABLE_COMMON),
    ("discard", STABLE_COMMON),
    ("exit", STABLE_COMMON),
    ("freopen", STABLE_COMMON),
    ("ftruncate", STABLE_COMMON),
    ("func", STABLE_COMMON),
    ("jstack", STABLE_COMMON),
    ("mod", STABLE_COMMON),
    ("normalize", STABLE_COMMON),
    ("panic", STABLE_COMMON),
    ("print", STABLE_COMMON),
    ("printa", STABLE_COMMON),
    ("printf", STABLE_COMMON),
    ("printm", STABLE_COMMON),
    ("printt", STABLE_COMMON),
    ("raise", STABLE_COMMON),
    ("setopt", STABLE_COMMON),
    ("speculate", STABLE_COMMON),
    ("stack", STABLE_COMMON),
    ("stop", STABLE_COMMON),
    ("sym", STABLE_COMMON),
    ("system", STABLE_COMMON),
    ("trace", STABLE_COMMON),
    ("tracemem", STABLE_COMMON),
    ("trunc", STABLE_COMMON),
    ("uaddr", STABLE_COMMON),
    ("ufunc", STABLE_COMMON),
    ("umod", STABLE_COMMON),
    ("ustack", STABLE_COMMON),
    ("usym", STABLE_COMMON),
    // Aggregating functions.
    ("avg", STABLE_COMMON),
    ("count", STABLE_COMMON),
    ("llquantize", STABLE_COMMON),
    ("lquantize", STABLE_COMMON),
    ("max", STABLE_COMMON),
    ("min", STABLE_COMMON),
    ("quantize", STABLE_COMMON),
    ("stddev", STABLE_COMMON),
    ("sum", STABLE_COMMON),
];

/// The attributes of built-in identifier `name`, if D has one by that name.
pub fn builtin(name: &str) -> Option<Attribute> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// Parses `name/data/class` as `#pragma D attributes` writes it (case-insensitive).
pub fn parse_attribute(text: &str) -> Option<Attribute> {
    let mut parts = text.split('/');
    let name = Stability::from_name(parts.next()?)?;
    let data = Stability::from_name(parts.next()?)?;
    let class = DepClass::from_name(parts.next()?)?;
    parts
        .next()
        .is_none()
        .then_some(Attribute::new(name, data, class))
}

/// Which probe-context variables a clause reads; their attributes come from the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextUse {
    pub probeprov: bool,
    pub probemod: bool,
    pub probefunc: bool,
    pub probename: bool,
    pub args: bool,
}

impl ContextUse {
    /// The minimum over the provider attributes of the variables used.
    pub fn attribute(&self, provider: &PAttr) -> Attribute {
        let mut a = MAX_ATTR;
        for (used, attr) in [
            (self.probeprov, provider.provider),
            (self.probemod, provider.module),
            (self.probefunc, provider.function),
            (self.probename, provider.name),
            (self.args, provider.args),
        ] {
            if used {
                a = a.min(attr);
            }
        }
        a
    }
}

/// What one clause contributes to the program's stability report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClauseStability {
    /// The clause's probe descriptions (each is one libdtrace statement group).
    pub descs: Vec<ProbeDesc>,
    /// Whether the clause has actions; without any, its statement attributes are the default.
    pub has_actions: bool,
    /// Minimum over the predicate and actions, probe-context variables excepted.
    pub uses: Attribute,
    /// Probe-context variables the predicate or actions read.
    pub context: ContextUse,
}

/// The two minimums `dtrace -v` prints for a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramStability {
    /// Minimum Probe Description Attributes.
    pub description: Attribute,
    /// Minimum Statement Attributes.
    pub statement: Attribute,
}

struct Walker<'a> {
    overrides: &'a HashMap<String, Attribute>,
    attr: Attribute,
    context: ContextUse,
}

impl Walker<'_> {
    fn lower(&mut self, a: Attribute) {
        self.attr = self.attr.min(a);
    }

    /// A user identifier: its `#pragma D attributes`, else the default.
    fn user(&self, name: &str) -> Attribute {
        self.overrides.get(name).copied().unwrap_or(DEFAULT_ATTR)
    }

    fn ident(&mut self, name: &str) {
        let a = match name {
            "probeprov" => return self.context.probeprov = true,
            "probemod" => return self.context.probemod = true,
            "probefunc" => return self.context.probefunc = true,
            "probename" => return self.context.probename = true,
            "args" => return self.context.args = true,
            _ if name.contains('`') => KERNEL_SYMBOL_ATTR,
            _ => match self.overrides.get(name) {
                Some(a) => *a,
                None => builtin(name).unwrap_or(DEFAULT_ATTR),
            },
        };
        self.lower(a);
    }

    fn type_name(&mut self, t: &ast::TypeName) {
        // Types from the kernel's CTF are Private; D's own and user types are the default.
        let kernel = match &t.specs.base {
            ast::BaseSpec::Named(n) => n.contains('`'),
            ast::BaseSpec::Sou { tag: Some(n), .. } | ast::BaseSpec::Enum { tag: Some(n), .. } => {
                n.contains('`')
            }
            _ => false,
        };
        self.lower(if kernel {
            KERNEL_SYMBOL_ATTR
        } else {
            DEFAULT_ATTR
        });
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Str(_) => {}
            ExprKind::Ident(n) => self.ident(n),
            ExprKind::SelfVar(n) | ExprKind::ThisVar(n) => {
                let a = self.user(n);
                self.lower(a);
            }
            ExprKind::AggName(n) => {
                let a = self.user(&format!("@{n}"));
                self.lower(a);
            }
            ExprKind::AggRef(n, keys) => {
                let a = self.user(&format!("@{n}"));
                self.lower(a);
                keys.iter().for_each(|k| self.expr(k));
            }
            ExprKind::Call(name, args) => {
                let a = match self.overrides.get(name.as_str()) {
                    Some(a) => *a,
                    None => builtin(name).unwrap_or(DEFAULT_ATTR),
                };
                self.lower(a);
                args.iter().for_each(|x| self.expr(x));
            }
            ExprKind::Unary(_, x)
            | ExprKind::Member(x, _)
            | ExprKind::Arrow(x, _)
            | ExprKind::SizeofExpr(x)
            | ExprKind::Stringof(x) => self.expr(x),
            ExprKind::Binary(_, a, b) | ExprKind::Assign(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Ternary(a, b, c) => {
                self.expr(a);
                self.expr(b);
                self.expr(c);
            }
            ExprKind::Index(base, keys) => {
                self.expr(base);
                keys.iter().for_each(|k| self.expr(k));
            }
            ExprKind::Cast(t, x) | ExprKind::Xlate(t, x) => {
                self.type_name(t);
                self.expr(x);
            }
            ExprKind::SizeofType(t) | ExprKind::Offsetof(t, _) => self.type_name(t),
        }
    }

    fn stmts(&mut self, body: &[Stmt]) {
        for s in body {
            match s {
                Stmt::Expr(e) => self.expr(e),
                Stmt::If {
                    cond, then, els, ..
                } => {
                    self.expr(cond);
                    self.stmts(then);
                    self.stmts(els);
                }
            }
        }
    }
}

/// The stability contribution of one clause whose descriptions resolved to `descs`.
/// `overrides` holds `#pragma D attributes` settings by identifier (aggregations as `@name`).
pub fn clause_stability(
    clause: &ast::Clause,
    descs: &[ProbeDesc],
    overrides: &HashMap<String, Attribute>,
) -> ClauseStability {
    let mut w = Walker {
        overrides,
        attr: MAX_ATTR,
        context: ContextUse::default(),
    };
    w.stmts(&clause.body);
    if let Some(p) = &clause.predicate {
        w.expr(p);
    }
    ClauseStability {
        descs: descs.to_vec(),
        has_actions: !clause.body.is_empty(),
        uses: w.attr,
        context: w.context,
    }
}

/// Every enabled clause's contribution: the parsed clauses of `prog` paired, in order, with
/// the checked clauses (clauses whose descriptions all matched nothing under `-Z` are absent
/// from `checked`). `pragmas` are the `#pragma D attributes` settings (identifier, text).
pub fn program_clauses(
    prog: &ast::Program,
    checked: &[super::tir::TClause],
    pragmas: &[(String, String)],
) -> Vec<ClauseStability> {
    let overrides: HashMap<String, Attribute> = pragmas
        .iter()
        .filter_map(|(ident, text)| Some((ident.clone(), parse_attribute(text)?)))
        .collect();
    let mut parsed = prog.items.iter().filter_map(|item| match item {
        ast::Item::Clause(c) => Some(c),
        _ => None,
    });
    let mut out = Vec::new();
    for t in checked {
        // Skip parsed clauses that produced nothing (their line differs).
        if let Some(c) = parsed.by_ref().find(|c| c.line == t.line) {
            out.push(clause_stability(c, &t.descs, &overrides));
        }
    }
    out
}

fn is_literal(field: &str) -> bool {
    !field.is_empty() && !field.contains(['*', '?', '[', '\\'])
}

/// The description attributes of `desc` given the provider attributes of its representative
/// probe (`None` when there is none: no match, or matches too varied to stand for each
/// other): the provider triple lowered by each field the description names literally; an
/// unnamed or pattern provider counts as Unstable.
pub fn description_attribute(desc: &ProbeDesc, provider: Option<&PAttr>) -> Attribute {
    let Some(found) = provider else {
        return UNSPECIFIED_PROVIDER.provider;
    };
    let table = if is_literal(&desc.provider) {
        found
    } else {
        &UNSPECIFIED_PROVIDER
    };
    let mut a = table.provider;
    for (field, attr) in [
        (&desc.module, table.module),
        (&desc.function, table.function),
        (&desc.name, table.name),
    ] {
        if is_literal(field) {
            a = a.min(attr);
        }
    }
    a
}

/// The program's minimum description and statement attributes. `provider_of` answers, for
/// one description, the attributes of its representative probe's provider (see
/// [`description_attribute`]). A program without statements reports the default attributes.
pub fn program_stability(
    clauses: &[ClauseStability],
    provider_of: &mut dyn FnMut(&ProbeDesc) -> Option<PAttr>,
) -> ProgramStability {
    let mut description = MAX_ATTR;
    let mut statement = MAX_ATTR;
    let mut any = false;
    for c in clauses {
        for d in &c.descs {
            any = true;
            let provider = provider_of(d);
            description = description.min(description_attribute(d, provider.as_ref()));
            let stmt = if c.has_actions {
                let context = provider.as_ref().unwrap_or(&UNSPECIFIED_PROVIDER);
                c.uses.min(c.context.attribute(context))
            } else {
                DEFAULT_ATTR
            };
            statement = statement.min(stmt);
        }
    }
    if !any {
        return ProgramStability {
            description: DEFAULT_ATTR,
            statement: DEFAULT_ATTR,
        };
    }
    ProgramStability {
        description,
        statement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(n: Stability, d: Stability, c: DepClass) -> Attribute {
        Attribute::new(n, d, c)
    }

    #[test]
    fn table_has_the_non_default_entries() {
        assert_eq!(
            builtin("curthread"),
            Some(attr(
                Stability::Stable,
                Stability::Private,
                DepClass::Common
            ))
        );
        assert_eq!(builtin("htons"), Some(EVOLVING_COMMON));
        assert_eq!(builtin("execname"), Some(DEFAULT_ATTR));
        assert_eq!(builtin("trace"), Some(DEFAULT_ATTR));
        assert_eq!(builtin("no_such_thing"), None);
    }

    #[test]
    fn pragma_attribute_text() {
        assert_eq!(
            parse_attribute("evolving/Private/isa"),
            Some(attr(Stability::Evolving, Stability::Private, DepClass::Isa))
        );
        assert_eq!(parse_attribute("Stable/Stable"), None);
        assert_eq!(parse_attribute("Stable/Stable/Common/x"), None);
        assert_eq!(parse_attribute("Solid/Stable/Common"), None);
    }

    #[test]
    fn unnamed_provider_is_unstable_but_named_fields_lower() {
        let dtrace = PAttr {
            provider: DEFAULT_ATTR,
            module: KERNEL_SYMBOL_ATTR,
            function: KERNEL_SYMBOL_ATTR,
            name: DEFAULT_ATTR,
            args: DEFAULT_ATTR,
        };
        let d = |p: &str, n: &str| ProbeDesc {
            provider: p.into(),
            name: n.into(),
            ..Default::default()
        };
        let unstable = UNSPECIFIED_PROVIDER.provider;
        assert_eq!(
            description_attribute(&d("", "BEGIN"), Some(&dtrace)),
            unstable
        );
        assert_eq!(
            description_attribute(&d("dtrace", "BEGIN"), Some(&dtrace)),
            DEFAULT_ATTR
        );
        let with_module = ProbeDesc {
            module: "kernel".into(),
            ..d("dtrace", "BEGIN")
        };
        assert_eq!(
            description_attribute(&with_module, Some(&dtrace)),
            KERNEL_SYMBOL_ATTR
        );
        assert_eq!(description_attribute(&d("dtrace", "BEGIN"), None), unstable);
    }

    #[test]
    fn context_variables_take_the_provider_attributes() {
        let p = PAttr {
            provider: DEFAULT_ATTR,
            module: KERNEL_SYMBOL_ATTR,
            function: EVOLVING_COMMON,
            name: DEFAULT_ATTR,
            args: attr(Stability::Evolving, Stability::Unstable, DepClass::Isa),
        };
        let uses = ContextUse {
            probefunc: true,
            ..ContextUse::default()
        };
        assert_eq!(uses.attribute(&p), EVOLVING_COMMON);
        let args = ContextUse {
            args: true,
            probename: true,
            ..ContextUse::default()
        };
        assert_eq!(
            args.attribute(&p),
            attr(Stability::Evolving, Stability::Unstable, DepClass::Isa)
        );
        assert_eq!(ContextUse::default().attribute(&p), MAX_ATTR);
    }
}
