//! The D compiler: source text to DIF and DOF, one named pass per module.
//!
//! Pipeline ([`compile`]): [`preprocess`] (only with `-C`) → [`lex`] (with `#pragma` handling
//! through [`PragmaState`]) → [`parse`] → [`typeck`]/[`calls`] (resolution and type checking into
//! the typed IR [`tir`]) → [`codegen`] (DIF) → [`dof`] (the DOF image). [`disasm`] prints DIF for
//! `-S`. The D library in `dlib/` is compiled first unless `-x nolibs`. Errors are
//! [`errors::CompileError`]s with libdtrace's `D_*` tags. Userland only.

pub mod ast;
pub mod attrs;
pub mod calls;
pub mod codegen;
pub mod disasm;
pub mod dof;
pub mod errors;
pub mod format;
pub mod lex;
pub mod options;
pub mod parse;
pub mod pdesc;
pub mod preprocess;
pub mod tir;
pub mod typeck;
pub mod types;

use std::collections::HashSet;

use errors::{err, CResult, CompileError};
use lex::{Lexer, MacroEnv, PragmaSink};
use pdesc::{ProbeMatcher, StaticProbes};
use tir::AggFunc;
use typeck::{CheckOptions, Checker};
use types::TypeRepo;

/// The D library shipped with libdtrace (`/usr/lib/dtrace` equivalent), compiled before every
/// program unless `-x nolibs`.
pub const DLIB: &[(&str, &str)] = &[
    ("base.d", include_str!("../../dlib/base.d")),
    ("errno.d", include_str!("../../dlib/errno.d")),
    ("signal.d", include_str!("../../dlib/signal.d")),
    ("io.d", include_str!("../../dlib/io.d")),
];

/// What to compile and how.
pub struct CompileOptions {
    /// `$0`, `$1`, ... (`$0` is the script name).
    pub macro_args: Vec<String>,
    /// Named macro variables (`pid`, `ppid`, `uid`, `gid`, `target`, ...).
    pub macro_vars: Vec<(String, String)>,
    /// Run the C preprocessor first (`-C`).
    pub cpp: Option<preprocess::CppConfig>,
    /// `-x` options in command-line order (already validated by the caller or not).
    pub options: Vec<(String, Option<String>)>,
    /// The text is a probe specifier from `-n`: bare descriptions are complete clauses.
    pub probe_spec: bool,
    /// `-Z`: descriptions matching no probes are allowed.
    pub zdefs: bool,
    /// Which probes exist (default: the hosted kernel's).
    pub matcher: Option<Box<dyn ProbeMatcher>>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            macro_args: vec!["dtrace".into()],
            macro_vars: Vec::new(),
            cpp: None,
            options: Vec::new(),
            probe_spec: false,
            zdefs: false,
            matcher: None,
        }
    }
}

/// Metadata of one aggregation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregationInfo {
    /// Name without `@` (empty for the anonymous aggregation).
    pub name: String,
    /// The variable id recorded as the first tuple element (and by printa/clear/trunc DIFOs).
    pub varid: u32,
    pub func: AggFunc,
    /// Key type names.
    pub keys: Vec<String>,
    /// Packed lquantize/llquantize parameter.
    pub param: u64,
}

/// A compiled program: the DOF and what a consumer needs to interpret its records.
#[derive(Debug, Clone)]
pub struct CompiledProgram {
    pub dof: Vec<u8>,
    /// The enablings in DOF order (one `EcbOut` may expand to one ECBDESC per description).
    pub ecbs: Vec<codegen::EcbOut>,
    pub aggregations: Vec<AggregationInfo>,
    /// Every option set (command line, then pragmas) in order.
    pub options: Vec<(String, Option<String>)>,
    /// Run-time options as they go to the kernel.
    pub kernel_options: Vec<dof::DofOption>,
    /// Preprocessor diagnostics (warnings) to show the user.
    pub cpp_diagnostics: String,
    /// Each clause's contribution to the `dtrace -v` stability report.
    pub stability: Vec<attrs::ClauseStability>,
}

impl CompiledProgram {
    /// `-S` output: every DIFO, in ECB/action order.
    pub fn disassembly(&self) -> String {
        let mut s = String::new();
        for e in &self.ecbs {
            if let Some(p) = &e.predicate {
                s.push_str(&disasm::disassemble(p));
            }
            for a in &e.actions {
                if let Some(d) = &a.difo {
                    s.push_str(&disasm::disassemble(d));
                }
            }
        }
        s
    }

    /// Last value given to an option, if set.
    pub fn option(&self, name: &str) -> Option<Option<&str>> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }
}

/// Collects `#pragma D` settings as the lexer meets them.
#[derive(Debug, Default)]
pub struct PragmaState {
    pub options: Vec<(String, Option<String>)>,
    /// `#pragma D attributes` settings: (identifier, attribute text).
    pub attributes: Vec<(String, String)>,
}

fn valid_attr_word(w: &str, class: bool) -> bool {
    let stab = [
        "internal", "private", "obsolete", "external", "unstable", "evolving", "stable", "standard",
    ];
    let classes = ["unknown", "cpu", "platform", "group", "isa", "common"];
    let w = w.to_ascii_lowercase();
    if class {
        classes.contains(&w.as_str())
    } else {
        stab.contains(&w.as_str())
    }
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '`')
}

impl PragmaSink for PragmaState {
    fn pspec(&self) -> bool {
        self.options
            .iter()
            .any(|(n, v)| n == "pspec" && v.as_deref() != Some("0"))
    }

    fn pragma(&mut self, line: u32, words: &[String]) -> CResult<()> {
        let Some(kind) = words.first() else {
            return Ok(());
        };
        match kind.as_str() {
            "option" => {
                if words.len() < 2 {
                    return err("D_PRAGMA_MALFORM", line, "malformed #pragma option");
                }
                if words.len() > 2 {
                    return err(
                        "D_PRAGMA_MALFORM",
                        line,
                        "superfluous arguments specified for #pragma option",
                    );
                }
                let (name, value) = match words[1].split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (words[1].clone(), None),
                };
                if let Err(m) = options::validate(&name, value.as_deref(), true) {
                    let msg = match &value {
                        Some(v) => format!("failed to set option '{}' to '{}': {}", name, v, m),
                        None => format!("failed to set option '{}': {}", name, m),
                    };
                    return err("D_PRAGMA_OPTSET", line, msg);
                }
                self.options.push((name, value));
                Ok(())
            }
            "attributes" => {
                if words.len() != 3 {
                    return err(
                        "D_PRAGMA_MALFORM",
                        line,
                        "malformed #pragma attributes <attributes> <ident>",
                    );
                }
                let parts: Vec<&str> = words[1].split('/').collect();
                let ok = parts.len() == 3
                    && valid_attr_word(parts[0], false)
                    && valid_attr_word(parts[1], false)
                    && valid_attr_word(parts[2], true);
                if !ok {
                    return err(
                        "D_PRAGMA_INVAL",
                        line,
                        "invalid attributes specified by #pragma attributes",
                    );
                }
                if !is_ident(&words[2]) {
                    return err("D_PRAGMA_UNUSED", line, "unused #pragma attributes");
                }
                self.attributes.push((words[2].clone(), words[1].clone()));
                Ok(())
            }
            "binding" => {
                if words.len() != 3 || !words[1].starts_with('"') {
                    return err(
                        "D_PRAGMA_MALFORM",
                        line,
                        "malformed #pragma binding \"version\" <ident>",
                    );
                }
                Ok(())
            }
            "depends_on" => {
                if words.len() != 3 {
                    return err(
                        "D_PRAGMA_MALFORM",
                        line,
                        "malformed #pragma depends_on <class> <name>",
                    );
                }
                match words[1].as_str() {
                    "library" | "module" | "provider" => Ok(()),
                    other => err(
                        "D_PRAGMA_INVAL",
                        line,
                        format!("invalid class {} specified by #pragma depends_on", other),
                    ),
                }
            }
            "error" => err(
                "D_PRAGERR",
                line,
                format!("#pragma error: {}", words[1..].join(" ")),
            ),
            "ident" | "line" => Ok(()),
            other => err(
                "D_PRAGMA_INVAL",
                line,
                format!("invalid control directive: #pragma D {}", other),
            ),
        }
    }
}

fn opt_value<'a>(opts: &'a [(String, Option<String>)], name: &str) -> Option<Option<&'a str>> {
    opts.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref())
}

fn size_opt(opts: &[(String, Option<String>)], name: &str, default: u64) -> u64 {
    match opt_value(opts, name) {
        Some(Some(v)) => options::validate(name, Some(v), false)
            .map(|n| n as u64)
            .unwrap_or(default),
        _ => default,
    }
}

/// Parses one source text into items (used for the program and for the D library).
fn parse_text(
    src: &str,
    macros: &MacroEnv,
    pragmas: &mut PragmaState,
    typedefs: HashSet<String>,
    probe_spec: bool,
) -> Result<(ast::Program, usize, u32), (CompileError, Vec<ast::Item>)> {
    let lx = Lexer::new(src, macros);
    let mut p = parse::Parser::new(lx, pragmas, typedefs);
    p.pspec_mode = probe_spec;
    let prog = match p.parse_program() {
        Ok(prog) => prog,
        Err(e) => return Err((e, std::mem::take(&mut p.items))),
    };
    let end_line = src.bytes().filter(|b| *b == b'\n').count() as u32 + 1;
    Ok((prog, p.max_arg_used(), end_line))
}

fn check_items(ck: &mut Checker, prog: &ast::Program) -> CResult<Vec<tir::TClause>> {
    let mut clauses = Vec::new();
    for item in &prog.items {
        match item {
            ast::Item::Decl(d) => ck.decl(d)?,
            ast::Item::Inline(i) => ck.inline_decl(i)?,
            ast::Item::Translator(t) => ck.translator_decl(t)?,
            ast::Item::Provider(_) => {}
            ast::Item::Clause(c) => {
                let tc = ck.clause(c)?;
                if !tc.descs.is_empty() {
                    clauses.push(tc);
                }
            }
        }
    }
    Ok(clauses)
}

/// Compiles a D program.
pub fn compile(source: &str, opts: &CompileOptions) -> Result<CompiledProgram, CompileError> {
    // Command-line options.
    for (n, v) in &opts.options {
        if let Err(m) = options::validate(n, v.as_deref(), false) {
            return Err(CompileError::unlocated(
                "D_OPTION",
                format!("failed to set -x {}: {}", n, m),
            ));
        }
    }
    let mut cpp_diagnostics = String::new();
    let text = match &opts.cpp {
        Some(cfg) => {
            let p = preprocess::run_cpp(source, cfg)?;
            cpp_diagnostics = p.diagnostics;
            p.text
        }
        None => source.to_string(),
    };
    let all_opts = |pr: &PragmaState| -> Vec<(String, Option<String>)> {
        let mut v = opts.options.clone();
        v.extend(pr.options.iter().cloned());
        v
    };
    let defaultargs = opt_value(&opts.options, "defaultargs").is_some();
    let macros = MacroEnv {
        args: opts.macro_args.clone(),
        vars: opts.macro_vars.clone(),
        default_args: defaultargs,
    };
    let hosted = StaticProbes::hosted();
    let matcher: &dyn ProbeMatcher = match &opts.matcher {
        Some(m) => m.as_ref(),
        None => &hosted,
    };
    let mut pragmas = PragmaState::default();
    let repo = TypeRepo::new();
    let typedefs: HashSet<String> = repo.typedef_names().cloned().collect();
    // Parse the program first: syntax errors and pragmas come before any semantic check.
    let parsed = parse_text(
        &text,
        &macros,
        &mut pragmas,
        typedefs.clone(),
        opts.probe_spec,
    );
    let settings = all_opts(&pragmas);
    let strsize = size_opt(&settings, "strsize", 256);
    let scratchsize = size_opt(&settings, "scratchsize", 256);
    let zdefs = opts.zdefs || opt_value(&settings, "zdefs").is_some();
    let mut ck = Checker::new(
        repo,
        CheckOptions {
            strsize,
            scratchsize,
            zdefs,
        },
        matcher,
    );
    if opt_value(&settings, "nolibs").is_none() {
        for (name, lib) in DLIB {
            let env = MacroEnv::default();
            let mut lp = PragmaState::default();
            let (lprog, _, _) =
                parse_text(lib, &env, &mut lp, typedefs.clone(), false).map_err(|(e, _)| {
                    CompileError::unlocated(
                        e.tag,
                        format!("D library {}: {}", name, e.render(false)),
                    )
                })?;
            check_items(&mut ck, &lprog).map_err(|e| {
                CompileError::unlocated(e.tag, format!("D library {}: {}", name, e.render(false)))
            })?;
        }
    }
    let (prog, max_arg, end_line) = match parsed {
        Ok(p) => p,
        Err((syntax, _)) if syntax.tag != "D_SYNTAX" => return Err(syntax),
        Err((syntax, partial)) => {
            // Declarations before the syntax error were processed while parsing in libdtrace:
            // their errors win.
            for item in &partial {
                let r = match item {
                    ast::Item::Decl(d) => ck.decl(d),
                    ast::Item::Inline(i) => ck.inline_decl(i),
                    ast::Item::Translator(t) => ck.translator_decl(t),
                    _ => Ok(()),
                };
                r?;
            }
            return Err(syntax);
        }
    };
    if prog.items.is_empty() {
        return err("D_EMPTY", end_line, "empty D program translation unit");
    }
    // Macro arguments given but never referenced are an error unless -x argref.
    let nargs = opts.macro_args.len().saturating_sub(1);
    if nargs > max_arg && opt_value(&settings, "argref").is_none() && !opts.probe_spec {
        let i = max_arg + 1;
        return Err(CompileError::unlocated(
            "D_MACRO_UNUSED",
            format!(
                "extraneous argument '{}' (${} is not referenced)",
                opts.macro_args[i], i
            ),
        ));
    }
    typeck::collect_assigned(&prog, &mut ck.assigned);
    let clauses = check_items(&mut ck, &prog)?;
    let stability = attrs::program_clauses(&prog, &clauses, &pragmas.attributes);

    // Code generation.
    let mut ecbs = Vec::new();
    {
        let mut low = codegen::Lowering::new(&mut ck, strsize as u32);
        for (i, c) in clauses.iter().enumerate() {
            ecbs.extend(low.clause(c, i)?);
        }
    }
    let mut kernel_options = Vec::new();
    for (n, v) in &settings {
        if let Some(idx) = options::kernel_index(n) {
            if let Ok(val) = options::validate(n, v.as_deref(), false) {
                match kernel_options
                    .iter_mut()
                    .find(|o: &&mut dof::DofOption| o.option == idx)
                {
                    Some(o) => o.value = val as u64,
                    None => kernel_options.push(dof::DofOption {
                        option: idx,
                        value: val as u64,
                    }),
                }
            }
        }
    }
    let dof = dof::emit(&ecbs, &kernel_options, 8, 8);
    let aggregations = ck
        .agg_order
        .iter()
        .filter_map(|n| {
            ck.aggs.get(n).map(|a| AggregationInfo {
                name: n.clone(),
                varid: a.id,
                func: a.func,
                keys: a.keys.iter().map(|k| ck.ty_name(*k)).collect(),
                param: a.param,
            })
        })
        .collect();
    Ok(CompiledProgram {
        dof,
        ecbs,
        aggregations,
        options: settings,
        kernel_options,
        cpp_diagnostics,
        stability,
    })
}
