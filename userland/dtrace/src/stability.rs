//! `dtrace -v` without `-l`: the stability report printed for each program after it is
//! enabled (or, under `-e`, after it is compiled), as dtrace(1) prints it. The minimums come
//! from the compiler's per-clause attributes and, for each probe description, the provider of
//! its representative probe (`DTRACEIOC_PROBEMATCH` and `DTRACEIOC_PROVIDER`).

use rdtrace_libdtrace::compiler::attrs::program_stability;
use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::probeinfo::{argument_types, ProbeInfoSource};
use rdtrace_libdtrace::output::listing;

use crate::compile::Program;

/// Writes a report where dtrace(1)'s `oprintf` goes: appended to the `-o` file, else
/// standard output.
pub fn emit(output: Option<&str>, report: &str) {
    use std::io::Write;
    match output {
        Some(path) => {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(report.as_bytes()));
            if let Err(e) = written {
                eprintln!(
                    "dtrace: failed to open output file '{path}': {}",
                    crate::os_error_text(&e)
                );
            }
        }
        None => {
            print!("{report}");
            let _ = std::io::stdout().flush();
        }
    }
}

/// The report for `program`. `enabled` says whether dtrace enabled it (a blank line ends the
/// report) or only compiled it (`-e`: each enabling's description and probe information
/// follow).
pub fn report(client: &Client, program: &Program, enabled: bool) -> String {
    let mut source = ProbeInfoSource::new(client);
    let minimums = program_stability(&program.compiled.stability, &mut |d| {
        source.representative(d).map(|(pattr, _)| pattr)
    });
    let mut text = listing::program_stability(
        program.kind,
        &program.name,
        &minimums.description.into(),
        &minimums.statement.into(),
    );
    if enabled {
        text.push('\n');
        return text;
    }
    for clause in &program.compiled.stability {
        for desc in &clause.descs {
            let info = source.representative(desc).map(|(pattr, id)| {
                let types = id
                    .and_then(|id| argument_types(client, id).ok())
                    .unwrap_or_default();
                let attributes =
                    rdtrace_libdtrace::compiler::attrs::description_attribute(desc, Some(&pattr));
                listing::verbose_block(&attributes.into(), &pattr.args.into(), &types)
            });
            text.push_str(&listing::statement_block(&desc.full(), info));
        }
    }
    text
}
