//! The compile side of dtrace(1): reads each `-s` script or `-n`-style specifier, sets up macro
//! variables and options, calls libdtrace's compiler and reports errors in dtrace's words
//! (`dtrace: failed to compile script F: ...`, `dtrace: invalid probe specifier S: ...`).
//! `-S` prints the DIF of every compiled program on standard error.

use rdtrace_libdtrace::compiler::{self, preprocess, CompileOptions, CompiledProgram};

use crate::args::{Config, ProgramSource};

/// One compiled program and where it came from.
pub struct Program {
    /// How dtrace names it in messages (`script 'x.d'` or `description 'BEGIN'`).
    pub label: String,
    pub compiled: CompiledProgram,
}

fn macro_vars(cfg: &Config) -> Vec<(String, String)> {
    // SAFETY: these libc calls take no arguments and cannot fail.
    let (pid, ppid, uid, gid, euid, egid, pgid, sid) = unsafe {
        (
            libc::getpid(),
            libc::getppid(),
            libc::getuid(),
            libc::getgid(),
            libc::geteuid(),
            libc::getegid(),
            libc::getpgrp(),
            libc::getsid(0),
        )
    };
    let target = cfg.pids.first().cloned().unwrap_or_else(|| "0".to_string());
    vec![
        ("pid".into(), pid.to_string()),
        ("ppid".into(), ppid.to_string()),
        ("uid".into(), uid.to_string()),
        ("gid".into(), gid.to_string()),
        ("euid".into(), euid.to_string()),
        ("egid".into(), egid.to_string()),
        ("pgid".into(), pgid.to_string()),
        ("sid".into(), sid.to_string()),
        ("projid".into(), "0".into()),
        ("taskid".into(), "0".into()),
        ("target".into(), target),
    ]
}

fn errtags(cfg: &Config) -> bool {
    cfg.options.iter().any(|(n, _)| n == "errtags")
}

/// Compiles every program; on failure prints the error and returns the exit status.
pub fn compile_all(cfg: &Config) -> Result<Vec<Program>, u8> {
    // Invalid -x options are reported before anything is compiled.
    for (n, v) in &cfg.options {
        if let Err(m) = compiler::options::validate(n, v.as_deref(), false) {
            eprintln!("dtrace: failed to set -x {}: {}", n, m);
            return Err(1);
        }
    }
    let tags = errtags(cfg);
    // Preprocessor options may also come as -x options.
    let mut cpp = cfg.cpp;
    let mut cpp_args = cfg.cpp_args.clone();
    for (n, v) in &cfg.options {
        match (n.as_str(), v) {
            ("cpp", _) => cpp = true,
            ("define", Some(v)) => cpp_args.push(format!("-D{}", v)),
            ("undef", Some(v)) => cpp_args.push(format!("-U{}", v)),
            ("incdir", Some(v)) => cpp_args.push(format!("-I{}", v)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for src in &cfg.programs {
        let (label, text, name, spec) = match src {
            ProgramSource::File(f) => {
                let text = match std::fs::read(f) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => {
                        eprintln!("dtrace: failed to open {}: {}", f, e);
                        return Err(1);
                    }
                };
                (format!("script '{}'", f), text, f.clone(), false)
            }
            ProgramSource::Spec(ch, s) => {
                let text = match ch {
                    'P' => format!("{}:::", s),
                    'm' => format!("{}::", s),
                    'f' => format!("{}:", s),
                    _ => s.clone(),
                };
                (format!("description '{}'", s), text, s.clone(), true)
            }
        };
        let mut macro_args = vec![if spec {
            "dtrace".to_string()
        } else {
            name.clone()
        }];
        macro_args.extend(cfg.macro_args.iter().cloned());
        let opts = CompileOptions {
            macro_args,
            macro_vars: macro_vars(cfg),
            cpp: cpp.then(|| preprocess::CppConfig {
                program: None,
                args: cpp_args.clone(),
            }),
            options: cfg.options.clone(),
            probe_spec: spec,
            zdefs: cfg.zdefs,
            matcher: None,
        };
        match compiler::compile(&text, &opts) {
            Ok(p) => {
                if !p.cpp_diagnostics.is_empty() {
                    eprint!("{}", p.cpp_diagnostics);
                }
                if cfg.show_dif {
                    eprint!("{}", p.disassembly());
                }
                out.push(Program { label, compiled: p });
            }
            Err(e) => {
                let (diag, msg) = preprocess::split_cpp_error(&e.message);
                if !diag.is_empty() {
                    eprint!("{}", diag);
                }
                let mut e2 = e.clone();
                e2.message = msg.to_string();
                let rendered = e2.render(tags);
                if spec {
                    eprintln!("dtrace: invalid probe specifier {}: {}", name, rendered);
                } else {
                    eprintln!("dtrace: failed to compile script {}: {}", name, rendered);
                }
                return Err(1);
            }
        }
    }
    Ok(out)
}
