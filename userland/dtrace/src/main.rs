//! dtrace(1) for rdtrace: parses the command line ([`args`]), compiles every program
//! ([`compile`]), and — unless `-e` — hands them to the consumer ([`run`]).
//! Exit statuses follow FreeBSD: 0 success, 1 error, 2 usage error.

mod args;
mod compile;
mod list;
mod run;
mod target;

use std::process::ExitCode;

fn usage(msg: &str) -> ExitCode {
    eprintln!("dtrace: {}", msg);
    eprintln!(
        "Usage: dtrace [-CeFhlqSvVwZ] [-b bufsz] [-c cmd] [-D name[=def]]\n\t[-I path] [-L path] [-o output] [-p pid] [-s script] [-U name]\n\t[-x opt[=val]] [-X a|c|s|t]\n\n\t[-P provider [[ predicate ] action ]]\n\t[-m [ provider: ] module [[ predicate ] action ]]\n\t[-f [[ provider: ] module: ] func [[ predicate ] action ]]\n\t[-n [[[ provider: ] module: ] func: ] name [[ predicate ] action ]]\n\t[-i probe-id [[ predicate ] action ]] [ args ... ]"
    );
    ExitCode::from(2)
}

/// An I/O error as the C library words it (no Rust " (os error N)" suffix).
fn os_error_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(errno) => rdtrace_libdtrace::consumer::device::errno_text(errno),
        None => e.to_string(),
    }
}

fn main() -> ExitCode {
    let mut cfg = match args::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => return usage(&e.0),
    };
    if cfg.version {
        println!("dtrace: Sun D 1.13");
        if cfg.programs.is_empty() {
            return ExitCode::SUCCESS;
        }
    }
    if cfg.programs.is_empty() && !cfg.list {
        return usage("no probe specifiers or scripts given");
    }
    // -c / -p: the processes $target names, known before compiling.
    let mut targets = Vec::new();
    if !cfg.compile_only && !cfg.list {
        for command in &cfg.commands {
            match target::TargetProcess::create(command) {
                Ok(t) => targets.push(t),
                Err(e) => {
                    eprintln!("dtrace: failed to execute {command}: {}", os_error_text(&e));
                    return ExitCode::from(1);
                }
            }
        }
        for pid in &cfg.pids {
            match target::TargetProcess::grab(pid) {
                Ok(t) => targets.push(t),
                Err(e) => {
                    eprintln!("dtrace: failed to grab pid {pid}: {}", os_error_text(&e));
                    return ExitCode::from(1);
                }
            }
        }
        cfg.pids = targets.iter().map(|t| t.pid().to_string()).collect();
    }
    let programs = match compile::compile_all(&cfg) {
        Ok(p) => p,
        Err(status) => return ExitCode::from(status),
    };
    if cfg.compile_only {
        return ExitCode::SUCCESS;
    }
    ExitCode::from(run::execute(&cfg, &programs, &mut targets))
}
