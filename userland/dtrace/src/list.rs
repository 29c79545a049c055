//! `dtrace -l`: list the probes the device offers, or those a program's
//! descriptions match, in FreeBSD's layout (`%5d %10s %17s %33s %s`).

use rdtrace_ffi::pod::Pod;
use rdtrace_ffi::probe::ProbeDesc;
use rdtrace_libdtrace::consumer::client::Client;

use crate::args::Config;
use crate::compile::Program;

fn row(p: &ProbeDesc) -> String {
    format!(
        "{:>5} {:>10} {:>17} {:>33} {}\n",
        p.id,
        p.provider_str().unwrap_or(""),
        p.module_str().unwrap_or(""),
        p.function_str().unwrap_or(""),
        p.name_str().unwrap_or("")
    )
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

/// Prints the listing; returns the exit status.
pub fn list(client: &Client, _cfg: &Config, programs: &[Program]) -> u8 {
    let mut text = format!(
        "{:>5} {:>10} {:>17} {:>33} {}\n",
        "ID", "PROVIDER", "MODULE", "FUNCTION", "NAME"
    );
    if programs.is_empty() {
        match client.probes(None) {
            Ok(all) => all.iter().for_each(|p| text.push_str(&row(p))),
            Err(e) => {
                eprintln!("dtrace: failed to list probes: {e}");
                return 1;
            }
        }
    } else {
        for program in programs {
            for ecb in &program.compiled.ecbs {
                for d in &ecb.descs {
                    match matching(client, &d.provider, &d.module, &d.function, &d.name) {
                        Ok(found) => found.iter().for_each(|p| text.push_str(&row(p))),
                        Err(e) => {
                            eprintln!(
                                "dtrace: failed to match {}:{}:{}:{}: {e}",
                                d.provider, d.module, d.function, d.name
                            );
                            return 1;
                        }
                    }
                }
            }
        }
    }
    print!("{text}");
    0
}
