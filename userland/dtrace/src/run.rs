//! The run side of dtrace(1): open the DTrace device (`/dev/dtrace/dtrace`, or the hosted kernel
//! where that node does not exist), enable the default ERROR handler and every compiled program,
//! run libdtrace's session loop with FreeBSD's text output, and exit with the status `exit()`
//! gave (0 if none, 1 on errors).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use rdtrace_libdtrace::compiler::{self, CompileOptions};
use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::decode::agg_kind_for;
use rdtrace_libdtrace::consumer::device;
use rdtrace_libdtrace::consumer::session::{ConsumerActions, RunConfig, Session, StopRequest};
use rdtrace_libdtrace::consumer::symbolizer::{KernelKind, SystemSymbols};
use rdtrace_libdtrace::output::folded::FoldedOutput;
use rdtrace_libdtrace::output::json::JsonOutput;
use rdtrace_libdtrace::output::text::TextOutput;
use rdtrace_libdtrace::output::OutputOptions;
use rdtrace_libdtrace::output::OutputSink;

use crate::args::Config;
use crate::compile::Program;
use crate::list;
use crate::target::TargetProcess;

/// libdtrace's default ERROR handler: its records become the
/// "error on enabled probe ID …" messages.
const ERROR_HANDLER: &str =
    "dtrace:::ERROR { trace(arg1); trace(arg2); trace(arg3); trace(arg4); trace(arg5); }";

/// Where probe output goes: standard output, a `-o` file, or whatever
/// `freopen()` last named. Shared by the output backend and the
/// consumer-action handler.
#[derive(Clone)]
struct OutputTarget(Rc<RefCell<Box<dyn Write>>>);

impl Write for OutputTarget {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// dtrace(1)'s `system()` and `freopen()` (libdtrace runs both in the consumer).
struct CommandActions {
    target: OutputTarget,
    /// The output dtrace started with (standard output or the `-o` file).
    original: Option<Box<dyn Write>>,
}

impl ConsumerActions for CommandActions {
    fn system(&mut self, sink: &mut dyn OutputSink, command: &str) -> std::io::Result<()> {
        sink.finish()?;
        // The command writes to dtrace's own standard output, as system(3) does.
        if let Err(e) = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .status()
        {
            eprintln!("dtrace: failed to run system(\"{command}\"): {e}");
        }
        Ok(())
    }

    fn freopen(&mut self, sink: &mut dyn OutputSink, path: &str) -> std::io::Result<()> {
        sink.finish()?;
        let mut current = self.target.0.borrow_mut();
        if path.is_empty() {
            if let Some(original) = self.original.take() {
                *current = original;
            }
            return Ok(());
        }
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => {
                let previous =
                    std::mem::replace(&mut *current, Box::new(std::io::BufWriter::new(file)));
                if self.original.is_none() {
                    self.original = Some(previous);
                }
            }
            Err(e) => eprintln!("dtrace: couldn't freopen() \"{path}\": {e}"),
        }
        Ok(())
    }
}

/// SIGINT/SIGTERM count: the first asks the loop to stop; a second makes
/// dtrace(1) impatient: it stops at once without printing the remaining
/// records or the final aggregations.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_interrupt(_sig: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and (as on FreeBSD) SIGUSR1 stop tracing, unless the
/// signal was ignored when dtrace started (e.g. under nohup), as dtrace(1)
/// leaves ignored signals alone.
fn install_signal_handlers() {
    let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: a zeroed sigaction is a valid out-parameter; querying
        // with a null new action changes nothing.
        let ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            continue;
        }
        // SAFETY: the handler only performs an atomic increment, which is
        // async-signal-safe; installing it has no other preconditions.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

/// The value of option `name` after the command line and the programs'
/// pragmas (later settings win, as in libdtrace).
fn option<'a>(cfg: &'a Config, programs: &'a [Program], name: &str) -> Option<Option<&'a str>> {
    let mut found = None;
    for (n, v) in cfg
        .options
        .iter()
        .chain(programs.iter().flat_map(|p| p.compiled.options.iter()))
    {
        if n == name {
            found = Some(v.as_deref());
        } else if *n == format!("no{name}") {
            found = None;
        }
    }
    found
}

fn output_options(cfg: &Config, programs: &[Program]) -> OutputOptions {
    let mut options = OutputOptions::default();
    for (name, value) in cfg
        .options
        .iter()
        .chain(programs.iter().flat_map(|p| p.compiled.options.iter()))
    {
        options.apply(name, value.as_deref());
    }
    options
}

fn matched_notice(label: &str, matched: i32) -> String {
    format!(
        "dtrace: {label} matched {matched} probe{}\n",
        if matched == 1 { "" } else { "s" }
    )
}

/// Runs the programs; returns the exit status.
pub fn execute(cfg: &Config, programs: &[Program], targets: &mut [TargetProcess]) -> u8 {
    let device = match device::open_default() {
        Ok(d) => d,
        Err(msg) => {
            eprintln!("dtrace: {msg}");
            return 1;
        }
    };
    let client = Client::new(device);
    if cfg.list {
        return list::list(&client, cfg, programs);
    }
    let quiet = output_options(cfg, programs).quiet;
    let names: HashMap<u64, String> = programs
        .iter()
        .flat_map(|p| p.compiled.aggregations.iter())
        .map(|a| (u64::from(a.varid), a.name.clone()))
        .collect();
    // A program that sets statusrate gets libdtrace's pacing: STATUS at
    // that rate, and the end only when STATUS reports the exit.
    let config = RunConfig {
        strict_statusrate: option(cfg, programs, "statusrate").is_some(),
        ..RunConfig::default()
    };
    let mut session = Session::new(client, config, names);
    session.set_aggregation_kinds(
        programs
            .iter()
            .flat_map(|p| p.compiled.aggregations.iter())
            .filter_map(|a| {
                let kind = agg_kind_for(a.func.action_kind(), a.param)?;
                Some((u64::from(a.varid), kind))
            })
            .collect(),
    );

    for program in programs {
        let signedness = program
            .compiled
            .ecbs
            .iter()
            .map(|e| e.recorded_signedness())
            .collect();
        match session.enable_typed(&program.compiled.dof, signedness) {
            Ok(matched) => {
                if !quiet {
                    eprint!("{}", matched_notice(&program.label, matched));
                }
                if cfg.verbose {
                    let report = crate::stability::report(session.client(), program, true);
                    crate::stability::emit(cfg.output.as_deref(), &report);
                }
            }
            Err(e) => {
                eprintln!("dtrace: could not enable tracing: {e}");
                return 1;
            }
        }
    }

    // Like libdtrace at dtrace_go() time: after the programs, so their
    // ECBs get EPIDs from 1.
    match compiler::compile(ERROR_HANDLER, &CompileOptions::default()) {
        Ok(handler) => {
            if let Err(e) = session.enable_error_handler(&handler.dof) {
                eprintln!("dtrace: could not enable tracing: {e}");
                return 1;
            }
        }
        Err(e) => {
            eprintln!(
                "dtrace: internal error compiling the default ERROR handler: {}",
                e.render(false)
            );
            return 1;
        }
    }
    let out: Box<dyn Write> = match &cfg.output {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!(
                    "dtrace: failed to open output file '{path}': {}",
                    crate::os_error_text(&e)
                );
                return 1;
            }
        },
        None => Box::new(std::io::stdout()),
    };
    let target = OutputTarget(Rc::new(RefCell::new(out)));
    session.set_consumer_actions(Box::new(CommandActions {
        target: target.clone(),
        original: None,
    }));
    // stack()/ustack()/sym()…: the hosted kernel's "kernel" is this process.
    let symbols = SystemSymbols::new(if session.client().device().is_hosted() {
        KernelKind::Hosted
    } else {
        KernelKind::System
    });
    let options = output_options(cfg, programs);
    // `-x oformat=` / `--libxo`: json[,pretty], folded (stack aggregations
    // for flame graphs), or FreeBSD's text output.
    let format = option(cfg, programs, "oformat")
        .flatten()
        .unwrap_or("text")
        .to_ascii_lowercase();
    let mut sink: Box<dyn OutputSink + '_> = if format.split(',').any(|f| f == "json") {
        let pretty = format.split(',').any(|f| f == "pretty");
        Box::new(JsonOutput::new(
            target,
            std::io::stderr(),
            options,
            &symbols,
            pretty,
        ))
    } else if format == "folded" {
        Box::new(FoldedOutput::new(
            target,
            std::io::stderr(),
            options,
            &symbols,
        ))
    } else {
        Box::new(TextOutput::new(
            target,
            std::io::stderr(),
            options,
            &symbols,
        ))
    };
    install_signal_handlers();
    if let Err(e) = session.go() {
        eprintln!("dtrace: {e}");
        return 1;
    }
    // dtrace(1)'s notice after GO (quiet suppresses it, as every notice).
    if option(cfg, programs, "destructive").is_some() && !quiet {
        eprintln!("dtrace: allowing destructive actions");
    }
    // Tracing has started: let the -c processes run their commands.
    targets.iter_mut().for_each(TargetProcess::release);
    // Stop at ^C, or once every -c/-p process has gone (saying so once each).
    let gone = RefCell::new(vec![false; targets.len()]);
    let remaining = RefCell::new(targets);
    // Keep a fresh view of the -c/-p processes' mappings (once a second),
    // so their ustack()s still symbolize after they exit.
    let last_refresh: std::cell::Cell<Option<std::time::Instant>> = std::cell::Cell::new(None);
    let stop = || {
        match INTERRUPTS.load(Ordering::SeqCst) {
            0 => {}
            1 => return StopRequest::Interrupted,
            _ => return StopRequest::Abandon,
        }
        let mut targets = remaining.borrow_mut();
        let mut gone = gone.borrow_mut();
        if targets.is_empty() {
            return StopRequest::Continue;
        }
        if last_refresh
            .get()
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
        {
            last_refresh.set(Some(std::time::Instant::now()));
            for (t, done) in targets.iter().zip(gone.iter()) {
                if !*done {
                    symbols.refresh_process(u64::try_from(t.pid()).unwrap_or(0));
                }
            }
        }
        for (t, done) in targets.iter_mut().zip(gone.iter_mut()) {
            if !*done {
                if let Some(ending) = t.ended() {
                    // dtrace(1)'s notices are silent under -q.
                    if !quiet {
                        eprintln!("{}", t.notice(&ending));
                    }
                    *done = true;
                }
            }
        }
        if gone.iter().all(|d| *d) {
            StopRequest::Finished
        } else {
            StopRequest::Continue
        }
    };
    match session.run_until(sink.as_mut(), &stop) {
        Ok(status) => {
            drop(sink);
            let _ = std::io::stdout().flush();
            status.map(|s| (s & 0xff) as u8).unwrap_or(0)
        }
        Err(e) => {
            drop(sink);
            eprintln!("dtrace: {e}");
            1
        }
    }
}
