//! Function calls: D actions, DIF subroutines and aggregating functions — their prototypes, the
//! argument checks (with libdtrace's messages), printf/printa format checking, the aggregation
//! rules (redefinition, lquantize/llquantize parameters) and the speculation ordering rules of a
//! clause. Produces [`Action`]s for statements and [`TExpr`] calls for subroutines.
//! Userland only.

use super::ast::*;
use super::errors::{err, CResult, CompileError};
use super::format::{class_prototype, parse_format, ArgClass, Piece};
use super::tir::*;
use super::typeck::{AggInfo, Checker};
use rdtrace_ffi::action::ActionKind;
use rdtrace_ffi::dif::Subr;

/// Parameter kinds of prototypes.
#[derive(Debug, Clone, Copy)]
enum P {
    /// Anything with a value (not void).
    Any,
    /// An integer (pointers accepted), shown with this type name.
    Int(&'static str),
    /// A pointer (arrays and strings accepted), shown with this type name.
    Ptr(&'static str),
    /// A string (`char *`, `char []`, string), shown with this type name.
    Str(&'static str),
}

/// Return kinds.
#[derive(Debug, Clone, Copy)]
enum R {
    Void,
    Named(&'static str),
    Stack,
    Sym,
    USym,
}

struct Proto {
    params: &'static [P],
    min: usize,
    /// `usize::MAX` for variadic.
    max: usize,
    ret: R,
}

const fn proto(params: &'static [P], min: usize, ret: R) -> Proto {
    Proto {
        params,
        min,
        max: params.len(),
        ret,
    }
}

fn subr_proto(s: Subr) -> Proto {
    use P::*;
    use R::*;
    match s {
        Subr::Rand => proto(&[], 0, Named("int")),
        Subr::MutexOwned
        | Subr::MutexTypeAdaptive
        | Subr::MutexTypeSpin
        | Subr::RwReadHeld
        | Subr::RwWriteHeld
        | Subr::RwIswriter
        | Subr::SxSharedHeld
        | Subr::SxExclusiveHeld
        | Subr::SxIsexclusive => proto(&[Ptr("void *")], 1, Named("int")),
        Subr::MutexOwner => proto(&[Ptr("void *")], 1, Named("void *")),
        Subr::Copyin => proto(&[Int("uintptr_t"), Int("size_t")], 2, Named("void *")),
        Subr::Copyinstr => proto(&[Int("uintptr_t"), Int("size_t")], 1, Named("string")),
        Subr::Speculation => proto(&[], 0, Named("int")),
        Subr::Progenyof => proto(&[Int("pid_t")], 1, Named("int")),
        Subr::Strlen => proto(&[Str("const char *")], 1, Named("size_t")),
        Subr::Copyout => proto(&[Ptr("void *"), Int("uintptr_t"), Int("size_t")], 3, Void),
        Subr::Copyoutstr => proto(&[Str("char *"), Int("uintptr_t"), Int("size_t")], 3, Void),
        Subr::Alloca => proto(&[Int("size_t")], 1, Named("void *")),
        Subr::Bcopy => proto(&[Ptr("void *"), Ptr("void *"), Int("size_t")], 3, Void),
        Subr::Copyinto => proto(&[Int("uintptr_t"), Int("size_t"), Ptr("void *")], 3, Void),
        Subr::Msgdsize | Subr::Msgsize => proto(&[Ptr("mblk_t *")], 1, Named("size_t")),
        Subr::Getmajor | Subr::Getminor => proto(&[Int("dev_t")], 1, Named("dev_t")),
        Subr::DdiPathname => proto(&[Ptr("void *"), Int("int")], 2, Named("string")),
        Subr::Strjoin => proto(
            &[Str("const char *"), Str("const char *")],
            2,
            Named("string"),
        ),
        Subr::Lltostr => proto(&[Int("int64_t"), Int("int")], 1, Named("string")),
        Subr::Basename | Subr::Dirname | Subr::Cleanpath | Subr::Toupper | Subr::Tolower => {
            proto(&[Str("const char *")], 1, Named("string"))
        }
        Subr::Strchr | Subr::Strrchr => {
            proto(&[Str("const char *"), Int("char")], 2, Named("string"))
        }
        Subr::Strstr => proto(
            &[Str("const char *"), Str("const char *")],
            2,
            Named("string"),
        ),
        Subr::Strtok => proto(&[Str("char *"), Str("const char *")], 2, Named("string")),
        Subr::Substr => proto(
            &[Str("const char *"), Int("int"), Int("int")],
            2,
            Named("string"),
        ),
        Subr::Index | Subr::Rindex => proto(
            &[Str("const char *"), Str("const char *"), Int("int")],
            2,
            Named("int"),
        ),
        Subr::Htons | Subr::Ntohs => proto(&[Int("uint16_t")], 1, Named("uint16_t")),
        Subr::Htonl | Subr::Ntohl => proto(&[Int("uint32_t")], 1, Named("uint32_t")),
        Subr::Htonll | Subr::Ntohll => proto(&[Int("uint64_t")], 1, Named("uint64_t")),
        Subr::InetNtop => proto(&[Int("int"), Ptr("void *")], 2, Named("string")),
        Subr::InetNtoa => proto(&[Ptr("ipaddr_t *")], 1, Named("string")),
        Subr::InetNtoa6 => proto(&[Ptr("struct in6_addr *")], 1, Named("string")),
        Subr::Memref => proto(&[Ptr("void *"), Int("size_t")], 2, Named("uintptr_t *")),
        Subr::Memstr => proto(
            &[Ptr("void *"), Int("char"), Int("size_t")],
            3,
            Named("string"),
        ),
        Subr::Getf => proto(&[Int("int")], 1, Named("void *")),
        Subr::Json => proto(
            &[Str("const char *"), Str("const char *")],
            2,
            Named("string"),
        ),
        Subr::Strtoll => proto(&[Str("const char *"), Int("int")], 1, Named("int64_t")),
    }
}

/// Actions and their prototypes (`usize::MAX` max = variadic).
fn action_proto(name: &str) -> Option<Proto> {
    use P::*;
    use R::*;
    const ANY1: &[P] = &[Any];
    const FMT: &[P] = &[Any];
    Some(match name {
        "trace" | "print" => proto(ANY1, 1, Void),
        "tracemem" => proto(&[Any, Int("size_t"), Int("size_t")], 2, Void),
        "printf" | "system" | "freopen" => Proto {
            params: FMT,
            min: 1,
            max: usize::MAX,
            ret: Void,
        },
        "printa" => Proto {
            params: FMT,
            min: 1,
            max: usize::MAX,
            ret: Void,
        },
        "printm" => proto(&[Int("size_t"), Ptr("uintptr_t *")], 2, Void),
        "stack" => proto(&[Int("uint32_t")], 0, Stack),
        "ustack" | "jstack" => proto(&[Int("uint32_t"), Int("uint32_t")], 0, Stack),
        "exit" | "raise" | "chill" => proto(&[Int("int")], 1, Void),
        "speculate" | "commit" | "discard" => proto(&[Int("int")], 1, Void),
        "stop" | "panic" | "breakpoint" | "ftruncate" => proto(&[], 0, Void),
        "clear" | "denormalize" => proto(ANY1, 1, Void),
        "trunc" => proto(&[Any, Int("uint64_t")], 1, Void),
        "normalize" => proto(&[Any, Int("uint64_t")], 2, Void),
        "setopt" => proto(&[Str("const char *"), Str("const char *")], 1, Void),
        "sym" | "func" | "mod" => proto(&[Int("uintptr_t")], 1, Sym),
        "usym" | "ufunc" | "umod" | "uaddr" => proto(&[Int("uintptr_t")], 1, USym),
        _ => return None,
    })
}

const AGG_FUNCS: [&str; 9] = [
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "quantize",
    "lquantize",
    "llquantize",
];

pub fn is_agg_function(name: &str) -> bool {
    AGG_FUNCS.contains(&name)
}

pub fn is_action(name: &str) -> bool {
    action_proto(name).is_some()
}

/// Any name D knows as a function.
pub fn is_known_function(name: &str) -> bool {
    is_action(name) || is_agg_function(name) || Subr::from_name(name).is_some()
}

fn agg_func(name: &str) -> Option<AggFunc> {
    Some(match name {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "stddev" => AggFunc::Stddev,
        "quantize" => AggFunc::Quantize,
        "lquantize" => AggFunc::Lquantize,
        "llquantize" => AggFunc::Llquantize,
        _ => return None,
    })
}

fn proto_len_error(name: &str, n: usize, min: usize, max: usize, line: u32) -> CompileError {
    let expected = if n < min {
        if max > min {
            format!("at least {}", min)
        } else {
            min.to_string()
        }
    } else if max > min {
        format!("at most {}", max)
    } else {
        max.to_string()
    };
    CompileError::new(
        "D_PROTO_LEN",
        line,
        format!(
            "{}( ) prototype mismatch: {} arg{} passed, {} expected",
            name,
            n,
            if n == 1 { "" } else { "s" },
            expected
        ),
    )
}

fn proto_arg_error(
    ck: &Checker,
    name: &str,
    i: usize,
    proto: &str,
    arg: Ty,
    line: u32,
) -> CompileError {
    CompileError::new(
        "D_PROTO_ARG",
        line,
        format!(
            "{}( ) argument #{} is incompatible with prototype:\n\tprototype: {}\n\t argument: {}",
            name,
            i + 1,
            proto,
            ck.ty_name(arg)
        ),
    )
}

/// Checks one argument against a parameter kind.
fn arg_ok(ck: &Checker, p: P, a: &TExpr) -> bool {
    match p {
        P::Any => !ck.is_void(a.ty),
        P::Int(_) => ck.is_int(a.ty) || ck.is_ptr(a.ty) || matches!(a.ty, Ty::Sym | Ty::USym),
        P::Ptr(n) => {
            if !(ck.is_ptr(a.ty) || ck.is_array(a.ty) || ck.is_string(a.ty)) {
                return false;
            }
            if n == "void *" || n == "mblk_t *" {
                return true;
            }
            // A specific pointee: the argument must point to the same type (or be void *).
            let want = n.trim_end_matches(" *").trim();
            match ck.c(a.ty).and_then(|c| ck.repo.referenced(c)) {
                Some(p) => {
                    ck.repo.is_void(p)
                        || ck.repo.name(p) == want
                        || ck.repo.name(ck.repo.resolve(p)) == want
                }
                None => false,
            }
        }
        P::Str(_) => ck.is_stringish(a.ty) || ck.is_void_ptr(a.ty),
    }
}

fn param_name(p: P) -> &'static str {
    match p {
        P::Any => "@",
        P::Int(n) | P::Ptr(n) | P::Str(n) => n,
    }
}

fn ret_type(ck: &mut Checker, r: R) -> Ty {
    match r {
        R::Void => Ty::C(ck.repo.b.void),
        R::Stack => Ty::Stack,
        R::Sym => Ty::Sym,
        R::USym => Ty::USym,
        R::Named(n) => Ty::C(named_type(ck, n)),
    }
}

/// Resolves the small set of type names used in prototypes.
pub fn named_type(ck: &mut Checker, n: &str) -> u32 {
    if let Some(base) = n.strip_suffix(" *") {
        let b = named_type(ck, base);
        return ck.repo.pointer_to(b);
    }
    let b = ck.repo.b;
    match n {
        "void" => b.void,
        "int" => b.int,
        "char" => b.char,
        "string" => b.string,
        _ => ck.repo.typedef(n).unwrap_or(b.long),
    }
}

fn check_args(
    ck: &mut Checker,
    name: &str,
    pr: &Proto,
    args: &[Expr],
    line: u32,
) -> CResult<Vec<TExpr>> {
    if args.len() < pr.min || args.len() > pr.max {
        return Err(proto_len_error(name, args.len(), pr.min, pr.max, line));
    }
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let ta = ck.expr(a)?;
        let p = pr.params.get(i).copied().unwrap_or(P::Any);
        // A D string is not a pointer (libdtrace's dt_node_is_pointer): it cannot be the
        // buffer copyinto() writes to. (Other `void *` parameters keep accepting strings as
        // sources, which the suite relies on.)
        let string_as_destination = name == "copyinto" && i == 2 && ck.is_string(ta.ty);
        if string_as_destination || !arg_ok(ck, p, &ta) {
            return Err(proto_arg_error(ck, name, i, param_name(p), ta.ty, line));
        }
        out.push(ta);
    }
    Ok(out)
}

/// A call in expression context: subroutines give values; actions give `void`.
pub fn call_expr(ck: &mut Checker, name: &str, args: &[Expr], line: u32) -> CResult<TExpr> {
    if let Some(s) = Subr::from_name(name) {
        let pr = subr_proto(s);
        let targs = check_args(ck, name, &pr, args, line)?;
        if s == Subr::Alloca {
            if let Some(v) = targs.first().and_then(|a| ck.const_value(a)) {
                if (v as u64) > ck.opts.scratchsize {
                    return err(
                        "D_ALLOCA_SIZE",
                        line,
                        format!(
                            "alloca({}) size larger than scratchsize {}",
                            v as u64, ck.opts.scratchsize
                        ),
                    );
                }
            }
        }
        if s == Subr::Copyin {
            if let Some(v) = targs.get(1).and_then(|a| ck.const_value(a)) {
                if (v as u64) > ck.opts.scratchsize {
                    return err(
                        "D_ALLOCA_SIZE",
                        line,
                        format!(
                            "copyin({}) size larger than scratchsize {}",
                            v as u64, ck.opts.scratchsize
                        ),
                    );
                }
            }
        }
        let ty = ret_type(ck, pr.ret);
        return Ok(TExpr::new(TKind::Call(s.id(), targs), ty));
    }
    if let Some(pr) = action_proto(name) {
        // An action used as a value: check its arguments, its value is void (or a stack/symbol
        // value for the ones usable as aggregation keys).
        if matches!(name, "printf" | "printa" | "system" | "freopen") {
            // Used as a value: only its (void) type matters to the enclosing expression.
            return Ok(TExpr::new(TKind::Const(0), Ty::C(ck.repo.b.void)));
        }
        let targs = check_args(ck, name, &pr, args, line)?;
        let ty = ret_type(ck, pr.ret);
        let kind = match pr.ret {
            R::Stack => {
                let (frames, strsize) = stack_params(ck, name, &targs, line)?;
                let kind = match name {
                    "stack" => ActionKind::Stack.raw(),
                    "ustack" => ActionKind::Ustack.raw(),
                    _ => ActionKind::Jstack.raw(),
                };
                let arg = if name == "stack" {
                    u64::from(frames)
                } else {
                    u64::from(frames) | (u64::from(strsize) << 32)
                };
                TKind::Rec {
                    kind,
                    arg,
                    value: None,
                }
            }
            R::Sym | R::USym => {
                let kind = match name {
                    "sym" | "func" => ActionKind::Sym.raw(),
                    "mod" => ActionKind::Mod.raw(),
                    "usym" | "ufunc" => ActionKind::Usym.raw(),
                    "umod" => ActionKind::Umod.raw(),
                    _ => ActionKind::Uaddr.raw(),
                };
                TKind::Rec {
                    kind,
                    arg: 0,
                    value: targs.into_iter().next().map(Box::new),
                }
            }
            _ => TKind::Const(0),
        };
        return Ok(TExpr::new(kind, ty));
    }
    if is_agg_function(name) {
        return err(
            "D_AGG_FUNC",
            line,
            format!(
                "{}( ) may only be used as the value of an aggregation",
                name
            ),
        );
    }
    if ck.functions.contains_key(name) {
        return err(
            "D_FUNC_UNDEF",
            line,
            format!("function {}( ) has no implementation", name),
        );
    }
    if ck.globals.contains_key(name)
        || ck.inlines.contains_key(name)
        || rdtrace_ffi::dif::BuiltinVar::from_name(name).is_some()
    {
        return err("D_FUNC_IDENT", line, format!("{} is not a function", name));
    }
    err(
        "D_FUNC_UNDEF",
        line,
        format!("failed to resolve {}: Unknown function name", name),
    )
}

fn stack_params(ck: &Checker, name: &str, args: &[TExpr], line: u32) -> CResult<(u32, u32)> {
    let mut frames = 0u32;
    let mut strsize = 0u32;
    if let Some(a) = args.first() {
        match ck.const_value(a) {
            Some(v) if v > 0 && ck.is_int(a.ty) => frames = v as u32,
            _ => {
                let tag = if name == "stack" {
                    "D_STACK_SIZE"
                } else {
                    "D_USTACK_FRAMES"
                };
                return err(
                    tag,
                    line,
                    format!(
                        "{}( ) argument #1 must be a non-zero positive integer constant",
                        name
                    ),
                );
            }
        }
    }
    if let Some(a) = args.get(1) {
        match ck.const_value(a) {
            Some(v) if v >= 0 && ck.is_int(a.ty) => strsize = v as u32,
            _ => {
                return err(
                    "D_USTACK_STRSIZE",
                    line,
                    format!(
                        "{}( ) argument #2 must be a positive integer constant",
                        name
                    ),
                );
            }
        }
    }
    Ok((frames, strsize))
}

/// Ordering state of the actions of one clause (speculation rules).
#[derive(Debug, Default, Clone)]
pub struct ClauseState {
    speculate: bool,
    commit: bool,
    recorded: bool,
}

fn string_const(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

/// Checks one expression statement of a clause.
pub fn statement(ck: &mut Checker, e: &Expr, st: &mut ClauseState) -> CResult<Action> {
    let line = e.line;
    match &e.kind {
        ExprKind::Assign(op, lhs, rhs)
            if matches!(lhs.kind, ExprKind::AggName(_) | ExprKind::AggRef(..)) =>
        {
            if op.is_some() {
                return err(
                    "D_AGG_FUNC",
                    line,
                    "aggregations may only be assigned the result of an aggregating function",
                );
            }
            let (name, keys) = match &lhs.kind {
                ExprKind::AggName(n) => (n.clone(), Vec::new()),
                ExprKind::AggRef(n, k) => (n.clone(), k.clone()),
                _ => unreachable!("checked above"),
            };
            aggregation(ck, &name, &keys, rhs, st, line)
        }
        ExprKind::Assign(None, lhs, _) if matches!(&lhs.kind, ExprKind::Index(b, _) if matches!(b.kind, ExprKind::AggRef(..))) => {
            err(
                "D_AGG_MDIM",
                line,
                "aggregations may not be multi-dimensional",
            )
        }
        ExprKind::AggName(_) | ExprKind::AggRef(..) => err(
            "D_AGG_NULL",
            line,
            "aggregation has no value: expression has null effect",
        ),
        ExprKind::Call(name, args) if is_action(name) => action(ck, name, args, st, line),
        ExprKind::Call(name, args) if is_agg_function(name) => {
            let _ = args;
            err(
                "D_CG_EXPR",
                line,
                format!(
                    "{}( ) may only be used as the value of an aggregation",
                    name
                ),
            )
        }
        _ => {
            let te = ck.expr(e)?;
            if let TKind::Call(id, _) = &te.kind {
                if Subr::from_id(*id).is_some_and(|s| s.is_destructive()) && st.speculate {
                    return err(
                        "D_ACT_SPEC",
                        line,
                        "destructive actions may not follow speculate( )",
                    );
                }
            }
            Ok(Action::Eval(te))
        }
    }
}

fn record(st: &mut ClauseState, line: u32) -> CResult<()> {
    if st.commit {
        return err(
            "D_DREC_COMM",
            line,
            "data-recording actions may not follow commit( )",
        );
    }
    st.recorded = true;
    Ok(())
}

fn destructive(st: &ClauseState, line: u32) -> CResult<()> {
    if st.speculate {
        return err(
            "D_ACT_SPEC",
            line,
            "destructive actions may not follow speculate( )",
        );
    }
    Ok(())
}

fn agg_arg(ck: &mut Checker, name: &str, args: &[Expr], line: u32) -> CResult<String> {
    let a = &args[0];
    match &a.kind {
        ExprKind::AggName(n) => Ok(n.clone()),
        _ => {
            // An aggregating function's value has no type outside an aggregation.
            let ta = match &a.kind {
                ExprKind::Call(f, _) if is_agg_function(f) => {
                    TExpr::new(TKind::Const(0), Ty::C(ck.repo.b.void))
                }
                _ => ck.expr(a)?,
            };
            let tag = match name {
                "clear" => "D_CLEAR_AGGARG",
                "trunc" => "D_TRUNC_AGGARG",
                "normalize" => "D_NORMALIZE_AGGARG",
                "denormalize" => "D_DENORMALIZE_AGGARG",
                _ => "D_PRINTA_AGGARG",
            };
            err(
                tag,
                line,
                format!(
                    "{}( ) argument #1 is incompatible with prototype:\n\tprototype: aggregation\n\t argument: {}",
                    name,
                    ck.ty_name(ta.ty)
                ),
            )
        }
    }
}

fn action(
    ck: &mut Checker,
    name: &str,
    args: &[Expr],
    st: &mut ClauseState,
    line: u32,
) -> CResult<Action> {
    let pr = action_proto(name).expect("caller checked is_action");
    if args.len() < pr.min || args.len() > pr.max {
        return Err(proto_len_error(name, args.len(), pr.min, pr.max, line));
    }
    match name {
        "printf" | "system" | "freopen" => {
            let kind = match name {
                "printf" => ActionKind::Printf.raw(),
                "system" => ActionKind::System.raw(),
                _ => ActionKind::Freopen.raw(),
            };
            if kind != ActionKind::Printf.raw() {
                destructive(st, line)?;
            }
            let (format, targs) = printf_args(ck, name, args, line)?;
            if name == "freopen" && (format == "." || format == "..") {
                return err(
                    "D_FREOPEN_INVALID",
                    line,
                    format!("freopen( ) argument #1 cannot be \"{}\"", format),
                );
            }
            record(st, line)?;
            Ok(Action::Printflike {
                kind,
                format,
                args: targs,
            })
        }
        "printa" => {
            let a = printa(ck, args, line)?;
            record(st, line)?;
            Ok(a)
        }
        "trace" | "print" => {
            if let ExprKind::AggName(_) | ExprKind::AggRef(..) = args[0].kind {
                return err(
                    "D_TRACE_DYN",
                    line,
                    format!("{}( ) may not be applied to a dynamic expression", name),
                );
            }
            let ta = ck.expr(&args[0])?;
            if ck.is_void(ta.ty) {
                return err(
                    "D_TRACE_VOID",
                    line,
                    format!("{}( ) may not be applied to a void expression", name),
                );
            }
            if ta.ty == Ty::Agg {
                return err(
                    "D_TRACE_DYN",
                    line,
                    format!("{}( ) may not be applied to a dynamic expression", name),
                );
            }
            record(st, line)?;
            Ok(if name == "trace" {
                Action::Trace(ta)
            } else {
                Action::Print(ta)
            })
        }
        "tracemem" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            let size = match ck.const_value(&targs[1]) {
                Some(v) if v > 0 => v as u64,
                _ => {
                    return err(
                        "D_TRACEMEM_SIZE",
                        line,
                        "tracemem( ) argument #2 must be a non-zero positive integral constant expression",
                    )
                }
            };
            record(st, line)?;
            let mut it = targs.into_iter();
            let addr = it.next().expect("two args");
            let dynsize = it.nth(1);
            Ok(Action::Tracemem {
                addr,
                size,
                dynsize,
            })
        }
        "stack" | "ustack" | "jstack" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            let (frames, strsize) = stack_params(ck, name, &targs, line)?;
            record(st, line)?;
            Ok(if name == "stack" {
                Action::Stack(frames)
            } else {
                Action::Ustack {
                    frames,
                    strsize,
                    java: name == "jstack",
                }
            })
        }
        "exit" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            if st.speculate {
                return err(
                    "D_ACT_SPEC",
                    line,
                    "destructive actions may not follow speculate( )",
                );
            }
            record(st, line)?;
            let v = ck.convert_to(
                targs.into_iter().next().expect("one arg"),
                Ty::C(ck.repo.b.int),
            );
            Ok(Action::Exit(v))
        }
        "raise" | "chill" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            destructive(st, line)?;
            let v = targs.into_iter().next().expect("one arg");
            Ok(if name == "raise" {
                Action::Raise(v)
            } else {
                Action::Chill(v)
            })
        }
        "stop" | "panic" | "breakpoint" => {
            destructive(st, line)?;
            Ok(match name {
                "stop" => Action::Stop,
                "panic" => Action::Panic,
                _ => Action::Breakpoint,
            })
        }
        "speculate" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            if st.commit {
                return err("D_SPEC_COMM", line, "speculate( ) may not follow commit( )");
            }
            if st.speculate {
                return err(
                    "D_SPEC_SPEC",
                    line,
                    "only one speculate( ) may be used per enabling",
                );
            }
            if st.recorded {
                return err(
                    "D_SPEC_DREC",
                    line,
                    "speculate( ) may not follow data-recording actions",
                );
            }
            st.speculate = true;
            Ok(Action::Speculate(
                targs.into_iter().next().expect("one arg"),
            ))
        }
        "commit" | "discard" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            if st.speculate {
                let tag = if name == "commit" {
                    "D_COMM_SPEC"
                } else {
                    "D_DISC_SPEC"
                };
                return err(
                    tag,
                    line,
                    format!("{}( ) may not follow speculate( )", name),
                );
            }
            if name == "commit" {
                if st.commit {
                    return err("D_COMM_COMM", line, "commit( ) may not follow commit( )");
                }
                if st.recorded {
                    return err(
                        "D_COMM_DREC",
                        line,
                        "commit( ) may not follow data-recording actions",
                    );
                }
                st.commit = true;
            }
            let v = targs.into_iter().next().expect("one arg");
            Ok(if name == "commit" {
                Action::Commit(v)
            } else {
                Action::Discard(v)
            })
        }
        "clear" | "denormalize" | "trunc" | "normalize" => {
            let agg = agg_arg(ck, name, args, line)?;
            let mut rest = Vec::new();
            for (i, a) in args.iter().enumerate().skip(1) {
                let ta = ck.expr(a)?;
                if !ck.is_scalar(ta.ty) {
                    return Err(proto_arg_error(ck, name, i, "uint64_t", ta.ty, line));
                }
                rest.push(ta);
            }
            let act = match name {
                "clear" => LibAct::Clear,
                "denormalize" => LibAct::Denormalize,
                "trunc" => LibAct::Trunc,
                _ => LibAct::Normalize,
            };
            Ok(Action::Lib {
                act,
                agg: Some(agg),
                args: rest,
            })
        }
        "setopt" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            if string_const(&args[0]).is_none() {
                return Err(proto_arg_error(
                    ck,
                    name,
                    0,
                    "string constant",
                    targs[0].ty,
                    line,
                ));
            }
            Ok(Action::Lib {
                act: LibAct::Setopt,
                agg: None,
                args: targs,
            })
        }
        "ftruncate" => Ok(Action::Lib {
            act: LibAct::Ftruncate,
            agg: None,
            args: Vec::new(),
        }),
        "sym" | "func" | "mod" | "usym" | "ufunc" | "umod" | "uaddr" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            let kind = match name {
                "sym" | "func" => ActionKind::Sym.raw(),
                "mod" => ActionKind::Mod.raw(),
                "usym" | "ufunc" => ActionKind::Usym.raw(),
                "umod" => ActionKind::Umod.raw(),
                _ => ActionKind::Uaddr.raw(),
            };
            record(st, line)?;
            Ok(Action::Symbolic {
                kind,
                value: targs.into_iter().next().expect("one arg"),
            })
        }
        "printm" => {
            let targs = check_args(ck, name, &pr, args, line)?;
            record(st, line)?;
            Ok(Action::Trace(targs.into_iter().nth(1).expect("two args")))
        }
        _ => err(
            "D_FUNC_UNDEF",
            line,
            format!("failed to resolve {}: Unknown function name", name),
        ),
    }
}

/// Checks printf-style arguments: returns the format and the value arguments.
fn printf_args(
    ck: &mut Checker,
    name: &str,
    args: &[Expr],
    line: u32,
) -> CResult<(String, Vec<TExpr>)> {
    let Some(fmt) = string_const(&args[0]) else {
        let ta = ck.expr(&args[0])?;
        if ck.is_stringish(ta.ty) {
            return err(
                "D_PRINTF_ARG_FMT",
                line,
                format!(
                    "{}( ) argument #1 is incompatible with prototype:\n\tprototype: string constant\n\t argument: {}",
                    name,
                    ck.ty_name(ta.ty)
                ),
            );
        }
        return Err(proto_arg_error(ck, name, 0, "string", ta.ty, line));
    };
    let mut targs = Vec::new();
    for a in &args[1..] {
        targs.push(ck.expr(a)?);
    }
    if fmt.is_empty() && name == "printf" {
        return err(
            "D_PRINTF_FMT_EMPTY",
            line,
            format!("{}( ) format string is empty", name),
        );
    }
    let pieces = parse_format(&fmt).map_err(|m| CompileError::new("D_SYNTAX", line, m))?;
    let mut next = 0usize;
    let mut n = 0usize;
    for p in &pieces {
        let Piece::Conv(c) = p else { continue };
        n += 1;
        if c.agg {
            return err(
                "D_PRINTF_AGG_CONV",
                line,
                format!(
                    "%@ conversion requires an aggregation and is not for use with {}( )",
                    name
                ),
            );
        }
        for (star, what) in [(c.width_star, "*"), (c.prec_star, ".*")] {
            if !star {
                continue;
            }
            let Some(a) = targs.get(next) else {
                return err(
                    "D_PRINTF_DYN_PROTO",
                    line,
                    format!(
                        "{}( ) prototype mismatch: conversion #{} ({}) is missing a corresponding \"{}\" argument",
                        name,
                        n,
                        c.short(),
                        what
                    ),
                );
            };
            if !ck.is_int(a.ty) {
                return err(
                    "D_PRINTF_DYN_TYPE",
                    line,
                    format!(
                        "{}( ) argument #{} is incompatible with conversion #{} prototype:\n\tconversion: {}\n\t prototype: int\n\t  argument: {}",
                        name,
                        next + 2,
                        n,
                        c.display(),
                        ck.ty_name(a.ty)
                    ),
                );
            }
            next += 1;
        }
        let Some(a) = targs.get(next) else {
            return err(
                "D_PRINTF_ARG_PROTO",
                line,
                format!(
                    "{}( ) prototype mismatch: conversion #{} ({}) is missing a corresponding value argument",
                    name,
                    n,
                    c.short()
                ),
            );
        };
        if !conv_accepts(ck, c.class, c.conv, a.ty) {
            return err(
                "D_PRINTF_ARG_TYPE",
                line,
                format!(
                    "{}( ) argument #{} is incompatible with conversion #{} prototype:\n\tconversion: {}\n\t prototype: {}\n\t  argument: {}",
                    name,
                    next + 2,
                    n,
                    c.short(),
                    class_prototype(c.class),
                    ck.ty_name(a.ty)
                ),
            );
        }
        next += 1;
    }
    if next < targs.len() {
        return err(
            "D_PRINTF_ARG_EXTRA",
            line,
            format!(
                "{}( ) prototype mismatch: only {} arguments required by this format string",
                name, next
            ),
        );
    }
    Ok((fmt, targs))
}

/// Whether a conversion accepts a value of type `t`.
fn conv_accepts(ck: &Checker, class: ArgClass, conv: char, t: Ty) -> bool {
    match class {
        ArgClass::Int => {
            ck.is_int(t)
                || (conv != 'd' && conv != 'i' && conv != 'c' && ck.is_ptr(t))
                || matches!(t, Ty::Sym | Ty::USym)
        }
        ArgClass::Time => ck.is_int(t),
        ArgClass::PtrOrInt => ck.is_int(t) || ck.is_ptr(t) || matches!(t, Ty::Sym | Ty::USym),
        ArgClass::Str => ck.is_stringish(t) || ck.is_array(t) || matches!(t, Ty::Sym | Ty::USym),
        ArgClass::Float => ck.is_arith(t) || ck.is_float(t),
        ArgClass::Stack => t == Ty::Stack,
        ArgClass::None => true,
    }
}

fn printa(ck: &mut Checker, args: &[Expr], line: u32) -> CResult<Action> {
    let mut format = None;
    let mut first = 0;
    if let Some(f) = string_const(&args[0]) {
        format = Some(f);
        first = 1;
        if args.len() < 2 {
            return err(
                "D_PRINTA_PROTO",
                line,
                format!(
                    "printa( ) prototype mismatch: {} args passed, 2 expected",
                    args.len()
                ),
            );
        }
    }
    let mut aggs = Vec::new();
    for (i, a) in args.iter().enumerate().skip(first) {
        match &a.kind {
            ExprKind::AggName(n) => aggs.push(n.clone()),
            _ => {
                let ta = ck.expr(a)?;
                return err(
                    "D_PRINTA_AGGARG",
                    line,
                    format!(
                        "printa( ) argument #{} is incompatible with prototype:\n\tprototype: {}\n\t argument: {}",
                        i + 1,
                        "aggregation",
                        ck.ty_name(ta.ty)
                    ),
                );
            }
        }
    }
    // All aggregations must have the same key signature.
    let infos: Vec<Option<AggInfo>> = aggs.iter().map(|n| ck.aggs.get(n).cloned()).collect();
    if let Some(Some(f)) = infos.first() {
        for (j, other) in infos.iter().enumerate().skip(1) {
            let Some(o) = other else { continue };
            if o.keys.len() != f.keys.len() {
                let plural = |n: usize| if n == 1 { "key" } else { "keys" };
                return err(
                    "D_PRINTA_AGGKEY",
                    line,
                    format!(
                        "printa( ): @{} and @{} do not have matching key signatures: @{} has {} {}, @{} has {} {}",
                        aggs[0],
                        aggs[j],
                        aggs[0],
                        f.keys.len(),
                        plural(f.keys.len()),
                        aggs[j],
                        o.keys.len(),
                        plural(o.keys.len())
                    ),
                );
            }
            for (k, (a, b)) in f.keys.iter().zip(o.keys.iter()).enumerate() {
                if ck.ty_name(*a) != ck.ty_name(*b) {
                    return err(
                        "D_PRINTA_AGGPROTO",
                        line,
                        format!(
                            "printa( ): @{}[ ] key #{} is incompatible with @{}:\n{:>9} key #{}: {}\n{:>9} key #{}: {}",
                            aggs[j],
                            k + 1,
                            aggs[0],
                            aggs[0],
                            k + 1,
                            ck.ty_name(*a),
                            aggs[j],
                            k + 1,
                            ck.ty_name(*b)
                        ),
                    );
                }
            }
        }
    }
    if let Some(f) = &format {
        let pieces = parse_format(f).map_err(|m| CompileError::new("D_SYNTAX", line, m))?;
        let keys: Vec<Ty> = infos
            .first()
            .cloned()
            .flatten()
            .map(|i| i.keys)
            .unwrap_or_default();
        let mut key_i = 0;
        let mut n = 0;
        for p in &pieces {
            let Piece::Conv(c) = p else { continue };
            n += 1;
            if c.agg {
                continue;
            }
            if let Some(kt) = keys.get(key_i) {
                if !conv_accepts(ck, c.class, c.conv, *kt) {
                    return err(
                        "D_PRINTF_ARG_TYPE",
                        line,
                        format!(
                            "printa( ) argument #{} is incompatible with conversion #{} prototype:\n\tconversion: {}\n\t prototype: {}\n\t  argument: {}",
                            first + 1,
                            n,
                            c.display(),
                            class_prototype(c.class),
                            ck.ty_name(*kt)
                        ),
                    );
                }
            }
            key_i += 1;
        }
    }
    Ok(Action::Printa { format, aggs })
}

fn const_of(ck: &Checker, e: &TExpr) -> Option<i64> {
    if ck.is_int(e.ty) {
        ck.const_value(e)
    } else {
        None
    }
}

fn aggregation(
    ck: &mut Checker,
    name: &str,
    keys: &[Expr],
    rhs: &Expr,
    st: &mut ClauseState,
    line: u32,
) -> CResult<Action> {
    let ExprKind::Call(fname, args) = &rhs.kind else {
        let _ = ck.expr(rhs)?;
        return err(
            "D_AGG_FUNC",
            line,
            format!(
                "@{} must be assigned the result of an aggregating function",
                name
            ),
        );
    };
    let Some(func) = agg_func(fname) else {
        if is_known_function(fname) {
            return err(
                "D_AGG_FUNC",
                line,
                format!("{}( ) is not a valid aggregating function", fname),
            );
        }
        let _ = ck.expr(rhs)?;
        return err(
            "D_AGG_FUNC",
            line,
            format!("{}( ) is not a valid aggregating function", fname),
        );
    };
    if st.speculate {
        return err(
            "D_AGG_SPEC",
            line,
            "aggregating actions may not follow speculate( )",
        );
    }
    if st.commit {
        return err(
            "D_AGG_COMM",
            line,
            "aggregating actions may not follow commit( )",
        );
    }
    // Keys.
    let mut tkeys = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if let ExprKind::AggName(_) | ExprKind::AggRef(..) = k.kind {
            return err(
                "D_KEY_TYPE",
                k.line,
                format!("tuple key #{} may not be of type aggregation", i + 1),
            );
        }
        let tk = ck.expr(k)?;
        if ck.is_void(tk.ty) || tk.ty == Ty::Agg {
            return err(
                "D_KEY_TYPE",
                k.line,
                format!(
                    "tuple key #{} may not be of type {}",
                    i + 1,
                    ck.ty_name(tk.ty)
                ),
            );
        }
        tkeys.push(tk);
    }
    let (min, max) = match func {
        AggFunc::Count => (0, 0),
        AggFunc::Sum | AggFunc::Avg | AggFunc::Min | AggFunc::Max | AggFunc::Stddev => (1, 1),
        AggFunc::Quantize => (1, 2),
        AggFunc::Lquantize => (3, 5),
        AggFunc::Llquantize => (5, 6),
    };
    if args.len() < min || args.len() > max {
        return Err(proto_len_error(fname, args.len(), min, max, line));
    }
    let mut targs = Vec::new();
    for a in args {
        targs.push(ck.expr(a)?);
    }
    if let Some(v) = targs.first() {
        if !ck.is_scalar(v.ty) {
            return err(
                "D_AGG_SCALAR",
                line,
                format!(
                    "{}( ) requires a scalar argument: argument #1 is of type {}",
                    fname,
                    ck.ty_name(v.ty)
                ),
            );
        }
    }
    let mut param = 0u64;
    let mut incr = None;
    match func {
        AggFunc::Quantize => incr = targs.get(1).cloned(),
        AggFunc::Lquantize => {
            let base = match targs.get(1).and_then(|a| const_of(ck, a)) {
                Some(v) => v,
                None => {
                    return err(
                        "D_LQUANT_BASETYPE",
                        line,
                        "lquantize( ) argument #2 must be an integer constant",
                    )
                }
            };
            if base < i64::from(i32::MIN) || base > i64::from(i32::MAX) {
                return err(
                    "D_LQUANT_BASEVAL",
                    line,
                    "lquantize( ) argument #2 must be a 32-bit quantity",
                );
            }
            let limit = match targs.get(2).and_then(|a| const_of(ck, a)) {
                Some(v) => v,
                None => {
                    return err(
                        "D_LQUANT_LIMTYPE",
                        line,
                        "lquantize( ) argument #3 must be an integer constant",
                    )
                }
            };
            if limit < i64::from(i32::MIN) || limit > i64::from(i32::MAX) {
                return err(
                    "D_LQUANT_LIMVAL",
                    line,
                    "lquantize( ) argument #3 must be a 32-bit quantity",
                );
            }
            if limit <= base {
                return err(
                    "D_LQUANT_MISMATCH",
                    line,
                    "lquantize( ) base (argument #2) must be less than limit (argument #3)",
                );
            }
            let step =
                match targs.get(3) {
                    None => 1,
                    Some(a) => match const_of(ck, a) {
                        Some(v) if v > 0 => v,
                        _ => return err(
                            "D_LQUANT_STEPTYPE",
                            line,
                            "lquantize( ) argument #4 must be a non-zero positive integer constant",
                        ),
                    },
                };
            if step > i64::from(u16::MAX) {
                return err(
                    "D_LQUANT_STEPVAL",
                    line,
                    "lquantize( ) argument #4 must be a 16-bit quantity",
                );
            }
            let levels = (limit - base) / step;
            if levels > i64::from(u16::MAX) {
                return err(
                    "D_LQUANT_STEPSMALL",
                    line,
                    format!("lquantize( ) step (argument #4) too small: number of levels ({}) exceeds {}", levels, u16::MAX),
                );
            }
            param = ((step as u64) << 48) | ((levels as u64) << 32) | u64::from(base as i32 as u32);
            incr = targs.get(4).cloned();
        }
        AggFunc::Llquantize => {
            let get = |i: usize| targs.get(i).and_then(|a| const_of(ck, a));
            let Some(factor) = get(1) else {
                return err(
                    "D_LLQUANT_FACTORTYPE",
                    line,
                    "llquantize( ) argument #2 (factor) must be an integer constant",
                );
            };
            if !(2..=i64::from(u16::MAX)).contains(&factor) {
                return err(
                    "D_LLQUANT_FACTORVAL",
                    line,
                    "llquantize( ) argument #2 (factor) must be greater than 1 and less than 65536",
                );
            }
            let Some(low) = get(2) else {
                return err(
                    "D_LLQUANT_LMAGTYPE",
                    line,
                    "llquantize( ) argument #3 (low magnitude) must be an integer constant",
                );
            };
            if !(0..=i64::from(u16::MAX)).contains(&low) {
                return err("D_LLQUANT_LMAGVAL", line, "llquantize( ) argument #3 (low magnitude) must be a non-negative 16-bit quantity");
            }
            let Some(high) = get(3) else {
                return err(
                    "D_LLQUANT_HMAGTYPE",
                    line,
                    "llquantize( ) argument #4 (high magnitude) must be an integer constant",
                );
            };
            if high < low || high > i64::from(u16::MAX) {
                return err(
                    "D_LLQUANT_HMAGVAL",
                    line,
                    "llquantize( ) argument #4 (high magnitude) must be at least argument #3 (low magnitude) and a 16-bit quantity",
                );
            }
            // factor^(high+1) must fit in 64 bits.
            let mut p: u64 = 1;
            for _ in 0..=high {
                match p.checked_mul(factor as u64) {
                    Some(v) => p = v,
                    None => {
                        return err(
                            "D_LLQUANT_HMAGVAL",
                            line,
                            "llquantize( ) factor (argument #2) raised to power of high magnitude (argument #4) plus 1 overflows 64-bits",
                        )
                    }
                }
            }
            let Some(nsteps) = get(4).filter(|v| *v > 0) else {
                return err("D_LLQUANT_STEPTYPE", line, "llquantize( ) argument #5 (number of steps) must be a non-zero positive integer constant");
            };
            if nsteps > i64::from(u16::MAX) {
                return err(
                    "D_LLQUANT_STEPVAL",
                    line,
                    "llquantize( ) argument #5 (number of steps) must be a 16-bit quantity",
                );
            }
            let mut v = factor;
            while v < nsteps {
                v *= factor;
            }
            // The kernel's rule: the steps divide a power of the factor and are a multiple of it.
            let steps_ok = v % nsteps == 0 && nsteps % factor == 0;
            if !steps_ok {
                return err(
                    "D_LLQUANT_STEPVAL",
                    line,
                    "llquantize( ) argument #5 (number of steps) must evenly divide a power of argument #2 (factor), and be a multiple of it",
                );
            }
            param = ((factor as u64) << 48)
                | ((low as u64) << 32)
                | ((high as u64) << 16)
                | nsteps as u64;
            incr = targs.get(5).cloned();
        }
        _ => {}
    }
    if let Some(i) = &incr {
        if !ck.is_scalar(i.ty) {
            let pos = targs.len();
            return Err(proto_arg_error(ck, fname, pos - 1, "uint64_t", i.ty, line));
        }
    }
    let key_tys: Vec<Ty> = tkeys.iter().map(|k| k.ty).collect();
    if let Some(prev) = ck.aggs.get(name).cloned() {
        let shown = if name.is_empty() {
            "@".to_string()
        } else {
            format!("@{}", name)
        };
        if prev.func != func {
            return err(
                "D_AGG_REDEF",
                line,
                format!(
                    "aggregation redefined: {}\n\t current: {}( )\n\tprevious: {}( ) (line {})",
                    shown,
                    func.name(),
                    prev.func.name(),
                    prev.line
                ),
            );
        }
        if prev.keys.len() != key_tys.len() {
            return err(
                "D_PROTO_LEN",
                line,
                format!(
                    "{}[ ] prototype mismatch: {} key{} passed, {} expected",
                    shown,
                    key_tys.len(),
                    if key_tys.len() == 1 { "" } else { "s" },
                    prev.keys.len()
                ),
            );
        }
        for (i, (a, b)) in prev.keys.iter().zip(key_tys.iter()).enumerate() {
            let compatible = (ck.is_int(*a) && ck.is_int(*b))
                || ck.ty_name(*a) == ck.ty_name(*b)
                || (ck.is_stringish(*a) && ck.is_stringish(*b));
            if !compatible {
                return err(
                    "D_PROTO_ARG",
                    line,
                    format!(
                        "{}[ ] key #{} is incompatible with prototype:\n\tprototype: {}\n\t      key: {}",
                        shown,
                        i + 1,
                        ck.ty_name(*a),
                        ck.ty_name(*b)
                    ),
                );
            }
        }
        if prev.param != param {
            let (tag, what, idx, shift, mask) = match func {
                AggFunc::Lquantize => {
                    let pb = prev.param as u32 as i32 as i64;
                    let nb = param as u32 as i32 as i64;
                    if pb != nb {
                        ("D_LQUANT_MATCHBASE", "base", 2, 0, 0)
                    } else if (prev.param >> 48) != (param >> 48) {
                        ("D_LQUANT_MATCHSTEP", "step", 4, 48, 0xffff)
                    } else {
                        ("D_LQUANT_MATCHLIM", "limit", 3, 32, 0xffff)
                    }
                }
                _ => {
                    if (prev.param >> 48) != (param >> 48) {
                        ("D_LLQUANT_MATCHFACTOR", "factor", 2, 48, 0xffff)
                    } else if ((prev.param >> 32) & 0xffff) != ((param >> 32) & 0xffff) {
                        ("D_LLQUANT_MATCHLMAG", "low magnitude", 3, 32, 0xffff)
                    } else if ((prev.param >> 16) & 0xffff) != ((param >> 16) & 0xffff) {
                        ("D_LLQUANT_MATCHHMAG", "high magnitude", 4, 16, 0xffff)
                    } else {
                        ("D_LLQUANT_MATCHSTEPS", "steps", 5, 0, 0xffff)
                    }
                }
            };
            let _ = (shift, mask);
            return err(
                tag,
                line,
                format!(
                    "{}( ) {} (argument #{}) doesn't match previous declaration",
                    func.name(),
                    what,
                    idx
                ),
            );
        }
    } else {
        let id = ck.agg_order.len() as u32 + 1;
        ck.agg_order.push(name.to_string());
        ck.aggs.insert(
            name.to_string(),
            AggInfo {
                func,
                keys: key_tys,
                id,
                line,
                param,
            },
        );
    }
    let value = match func {
        AggFunc::Count => None,
        _ => targs.into_iter().next(),
    };
    Ok(Action::Aggregate {
        name: name.to_string(),
        func,
        keys: tkeys,
        value,
        incr,
        param,
    })
}
