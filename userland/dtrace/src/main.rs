//! dtrace(1) for rdtrace: parses the command line ([`args`]), compiles every program
//! ([`compile`]), and — unless `-e` — hands them to the consumer ([`run`]).
//! Exit statuses follow FreeBSD: 0 success, 1 error, 2 usage error.

mod args;
mod compile;
mod list;
mod run;
mod stability;
mod target;

use std::process::ExitCode;

fn usage_text() -> &'static str {
    "Usage: dtrace [-CeFhlqSvVwZ] [-b bufsz] [-c cmd] [-D name[=def]]\n\t[-I path] [-L path] [-o output] [-p pid] [-s script] [-U name]\n\t[-x opt[=val]] [-X a|c|s|t]\n\n\t[-P provider [[ predicate ] action ]]\n\t[-m [ provider: ] module [[ predicate ] action ]]\n\t[-f [[ provider: ] module: ] func [[ predicate ] action ]]\n\t[-n [[[ provider: ] module: ] func: ] name [[ predicate ] action ]]\n\t[-i probe-id [[ predicate ] action ]] [ args ... ]\n"
}

fn usage(msg: &str, show_usage: bool) -> ExitCode {
    eprintln!("dtrace: {}", msg);
    if show_usage {
        eprint!("{}", usage_text());
    }
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
        Err(e) => return usage(&e.message, e.show_usage),
    };
    if cfg.version {
        // dtrace(1) prints the version and does nothing else.
        println!("dtrace: Sun D 1.13");
        return ExitCode::SUCCESS;
    }
    if std::env::args_os().len() <= 1 {
        // Without any argument dtrace(1) prints just its usage text.
        eprint!("{}", usage_text());
        return ExitCode::from(2);
    }
    if cfg.programs.is_empty() && !cfg.list {
        eprintln!("dtrace: no probes specified");
        return ExitCode::from(1);
    }
    if cfg.list {
        // -l implies -Z: a description that matches nothing is reported
        // while listing, not a compile error.
        cfg.zdefs = true;
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
        if cfg.verbose {
            // -e -v: the stability report of each program, without enabling it.
            match rdtrace_libdtrace::consumer::device::open_default() {
                Ok(device) => {
                    let client = rdtrace_libdtrace::consumer::client::Client::new(device);
                    for program in &programs {
                        let report = stability::report(&client, program, false);
                        stability::emit(cfg.output.as_deref(), &report);
                    }
                }
                Err(msg) => {
                    eprintln!("dtrace: {msg}");
                    return ExitCode::from(1);
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    ExitCode::from(run::execute(&cfg, &programs, &mut targets))
}
