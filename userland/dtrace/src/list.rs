//! `dtrace -l`: list the probes the device offers, or those each compiled
//! description matches, in FreeBSD's layout (`%5d %10s %17s %33s %s`), to
//! standard output or the `-o` file; with `-v`, each row is followed by the
//! probe's stability attributes and argument types. A description that
//! matches nothing is reported (`failed to match …`) without failing the
//! command, since `-l` implies `-Z`.

use std::io::Write;

use rdtrace_ffi::pod::Pod;
use rdtrace_ffi::probe::ProbeDesc;
use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::probeinfo::ProbeInfoSource;
use rdtrace_libdtrace::output::listing;

use crate::args::Config;
use crate::compile::Program;

/// libdtrace's message for a description that matches no probe.
const NO_PROBE: &str = "No probe matches description";

/// One listed probe: its row, and with `-v` its stability block.
fn entry(p: &ProbeDesc, info: Option<&mut ProbeInfoSource<'_>>) -> String {
    let mut text = listing::row(
        p.id,
        p.provider_str().unwrap_or(""),
        p.module_str().unwrap_or(""),
        p.function_str().unwrap_or(""),
        p.name_str().unwrap_or(""),
    );
    if let Some(report) = info.and_then(|source| source.info(p)) {
        text.push_str(&listing::verbose_block(
            &report.attributes.into(),
            &report.argument_attributes.into(),
            &report.argument_types,
        ));
    }
    text
}

/// The probes matching one compiled description.
fn matching(
    client: &Client,
    provider: &str,
    module: &str,
    function: &str,
    name: &str,
) -> Result<Vec<ProbeDesc>, String> {
    let mut pattern = ProbeDesc::zeroed();
    let too_long = |_| "probe description too long".to_string();
    pattern.set_provider(provider).map_err(too_long)?;
    pattern.set_module(module).map_err(too_long)?;
    pattern.set_function(function).map_err(too_long)?;
    pattern.set_name(name).map_err(too_long)?;
    client.probes(Some(&pattern)).map_err(|e| e.to_string())
}

/// Where the listing goes: the `-o` file (appended to, as dtrace(1) does)
/// or standard output.
fn open_output(cfg: &Config) -> Result<Box<dyn Write>, u8> {
    match &cfg.output {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => Ok(Box::new(std::io::BufWriter::new(f))),
            Err(e) => {
                eprintln!(
                    "dtrace: failed to open output file '{path}': {}",
                    crate::os_error_text(&e)
                );
                Err(1)
            }
        },
        None => Ok(Box::new(std::io::stdout())),
    }
}

/// Prints the listing; returns the exit status.
pub fn list(client: &Client, cfg: &Config, programs: &[Program]) -> u8 {
    let mut out = match open_output(cfg) {
        Ok(o) => o,
        Err(status) => return status,
    };
    let mut source = ProbeInfoSource::new(client);
    let mut verbose = cfg.verbose.then_some(&mut source);
    let mut text = listing::heading();
    if programs.is_empty() {
        match client.probes(None) {
            Ok(all) => all
                .iter()
                .for_each(|p| text.push_str(&entry(p, verbose.as_deref_mut()))),
            Err(e) => {
                eprintln!("dtrace: failed to list probes: {e}");
                return 1;
            }
        }
    } else {
        for program in programs {
            // A clause with if/else compiles to several ECBs over the same
            // descriptions; dtrace(1) lists each clause's descriptions once.
            let mut last_clause = None;
            for ecb in &program.compiled.ecbs {
                if last_clause == Some(ecb.clause) {
                    continue;
                }
                last_clause = Some(ecb.clause);
                for d in &ecb.descs {
                    let found = matching(client, &d.provider, &d.module, &d.function, &d.name)
                        .and_then(|found| {
                            if found.is_empty() {
                                Err(NO_PROBE.to_string())
                            } else {
                                Ok(found)
                            }
                        });
                    match found {
                        Ok(found) => found
                            .iter()
                            .for_each(|p| text.push_str(&entry(p, verbose.as_deref_mut()))),
                        // dtrace(1) reports it and goes on listing.
                        Err(e) => eprintln!(
                            "dtrace: failed to match {}:{}:{}:{}: {e}",
                            d.provider, d.module, d.function, d.name
                        ),
                    }
                }
            }
        }
    }
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        let target = cfg.output.as_deref().unwrap_or("<stdout>");
        eprintln!(
            "dtrace: failed to write to {target}: {}",
            crate::os_error_text(&e)
        );
        return 1;
    }
    0
}
