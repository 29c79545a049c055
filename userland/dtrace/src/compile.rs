//! The compile side of dtrace(1): reads each `-s` script or `-n`-style specifier, sets up macro
//! variables and options, calls libdtrace's compiler and reports errors in dtrace's words
//! (`dtrace: failed to compile script F: ...`, `dtrace: invalid probe specifier S: ...`).
//! `-S` prints the DIF of every compiled program on standard error.

use rdtrace_ffi::pod::Pod;
use rdtrace_ffi::probe::ProbeDesc as KernelProbeDesc;
use rdtrace_libdtrace::compiler::pdesc::{
    profile_name_valid, ProbeDesc, ProbeMatcher, StaticProbes,
};
use rdtrace_libdtrace::compiler::{self, preprocess, CompileOptions, CompiledProgram};
use rdtrace_libdtrace::consumer::client::Client;
use rdtrace_libdtrace::consumer::device;

use crate::args::{Config, ProgramSource};

/// One compiled program and where it came from.
pub struct Program {
    /// How dtrace names it in messages (`script 'x.d'` or `description 'BEGIN'`).
    pub label: String,
    /// dtrace(1)'s `dc_desc`: `script` or `description`.
    pub kind: &'static str,
    /// dtrace(1)'s `dc_name`: the script path, or the specifier cut before its clause.
    pub name: String,
    pub compiled: CompiledProgram,
}

/// Answers the compiler's "does this description match any probe?" from the DTrace device
/// (`DTRACEIOC_PROBEMATCH`), as libdtrace does at compile time. The profile provider creates
/// `profile-N`/`tick-N` probes on demand, so a valid such name counts as a match. Without a
/// device the hosted kernel's fixed list is used.
///
/// For `-l` (which implies `-Z`) every description is kept even when it
/// matches nothing, as libdtrace keeps zero-match descriptions under `-Z`:
/// the listing then reports each unmatched one.
struct DeviceMatcher {
    client: Option<Client>,
    fallback: StaticProbes,
    keep_unmatched: bool,
}

impl DeviceMatcher {
    fn new() -> Self {
        let client = device::open_default().ok().map(Client::new);
        DeviceMatcher {
            client,
            fallback: StaticProbes::hosted(),
            keep_unmatched: false,
        }
    }

    fn matches(&self, d: &ProbeDesc) -> Option<Vec<KernelProbeDesc>> {
        let client = self.client.as_ref()?;
        let mut p = KernelProbeDesc::zeroed();
        p.set_provider(&d.provider).ok()?;
        p.set_module(&d.module).ok()?;
        p.set_function(&d.function).ok()?;
        p.set_name(&d.name).ok()?;
        client.probes(Some(&p)).ok()
    }
}

impl ProbeMatcher for DeviceMatcher {
    fn count_matches(&self, d: &ProbeDesc) -> usize {
        let found = self.device_count(d);
        if self.keep_unmatched {
            found.max(1)
        } else {
            found
        }
    }

    /// A bare integer description inside a program: the same `DTRACEIOC_PROBES`
    /// lookup as `-i` ([`probe_with_id`]); without a device, the fixed list.
    fn probe_by_id(&self, id: u32) -> Option<ProbeDesc> {
        match &self.client {
            Some(client) => probe_with_id(client, id).map(|p| ProbeDesc {
                provider: p.provider_str().unwrap_or("").to_string(),
                module: p.module_str().unwrap_or("").to_string(),
                function: p.function_str().unwrap_or("").to_string(),
                name: p.name_str().unwrap_or("").to_string(),
            }),
            None => self.fallback.probe_by_id(id),
        }
    }

    fn typed_args(&self, d: &ProbeDesc) -> Option<usize> {
        // The dtrace and profile providers give no argument types; others may.
        let untyped = |prov: &str| prov == "dtrace" || prov == "profile";
        match self.matches(d) {
            Some(found) if !found.is_empty() => found
                .iter()
                .all(|p| untyped(p.provider_str().unwrap_or("")))
                .then_some(0),
            _ => untyped(&d.provider).then_some(0),
        }
    }
}

impl DeviceMatcher {
    /// How many probes the device (or the fallback list) has for `d`.
    fn device_count(&self, d: &ProbeDesc) -> usize {
        match self.matches(d) {
            Some(found) if !found.is_empty() => found.len(),
            Some(_) => {
                let on_demand = (d.provider.is_empty() || d.provider == "profile")
                    && d.module.is_empty()
                    && d.function.is_empty()
                    && !d.name.contains(['*', '?', '[', '\\'])
                    && profile_name_valid(&d.name);
                usize::from(on_demand)
            }
            None => self.fallback.count_matches(d),
        }
    }
}

/// The name dtrace(1) reports a probe specifier by: its text up to the
/// first `{`, `/` or `;` (the start of a predicate, action or next clause).
pub fn notice_name(spec: &str) -> &str {
    match spec.find(['{', '/', ';']) {
        Some(cut) => &spec[..cut],
        None => spec,
    }
}

/// The probe whose identifier is `id`, asked of the device (`DTRACEIOC_PROBES`
/// from `id`); `None` for id 0 or an id no probe has.
fn probe_with_id(client: &Client, id: u32) -> Option<KernelProbeDesc> {
    match client.probes_from(id) {
        Ok(Some(p)) if p.id == id && id != 0 => Some(p),
        _ => None,
    }
}

/// The provider-field names libdtrace uses when an integer probe identifier
/// is given where only part of a description is allowed.
fn spec_context(option: char) -> Option<&'static str> {
    match option {
        'P' => Some("providers"),
        'm' => Some("modules"),
        'f' => Some("functions"),
        _ => None,
    }
}

/// An integer probe specifier (`-i 2`, or `-n 2`): the probe with that id,
/// looked up through the device (`DTRACEIOC_PROBES`) and written back as its
/// full description followed by the rest of the specifier (predicate and
/// actions). `None` if the specifier does not start with a bare integer.
fn probe_id_spec(option: char, spec: &str) -> Option<Result<String, String>> {
    let head = notice_name(spec);
    let digits = head.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &spec[head.len()..];
    let Ok(id) = digits.parse::<u32>() else {
        return Some(Err(format!("identifier {digits} exceeds maximum probe id")));
    };
    if let Some(context) = spec_context(option) {
        return Some(Err(format!(
            "probe identifier {id} not permitted when specifying {context}"
        )));
    }
    let unknown = || format!("invalid probe identifier {id}: Unknown probe identifier");
    let client = match device::open_default() {
        Ok(d) => Client::new(d),
        Err(_) => return Some(Err(unknown())),
    };
    match probe_with_id(&client, id) {
        Some(p) => Some(Ok(format!(
            "{}:{}:{}:{}{}",
            p.provider_str().unwrap_or(""),
            p.module_str().unwrap_or(""),
            p.function_str().unwrap_or(""),
            p.name_str().unwrap_or(""),
            rest
        ))),
        _ => Some(Err(unknown())),
    }
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
                        eprintln!("dtrace: failed to open {}: {}", f, crate::os_error_text(&e));
                        return Err(1);
                    }
                };
                (format!("script '{}'", f), text, f.clone(), false)
            }
            ProgramSource::Spec(ch, s) => {
                let text = match probe_id_spec(*ch, s) {
                    Some(Ok(described)) => described,
                    Some(Err(message)) => {
                        eprintln!("dtrace: invalid probe specifier {}: {}", s, message);
                        return Err(1);
                    }
                    None => match ch {
                        'P' => format!("{}:::", s),
                        'm' => format!("{}::", s),
                        'f' => format!("{}:", s),
                        _ => s.clone(),
                    },
                };
                (
                    format!("description '{}'", notice_name(s)),
                    text,
                    s.clone(),
                    true,
                )
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
            matcher: Some(Box::new(DeviceMatcher {
                keep_unmatched: cfg.list,
                ..DeviceMatcher::new()
            })),
        };
        match compiler::compile(&text, &opts) {
            Ok(p) => {
                if !p.cpp_diagnostics.is_empty() {
                    eprint!("{}", p.cpp_diagnostics);
                }
                if cfg.show_dif {
                    eprint!("{}", p.disassembly());
                }
                let (kind, short) = if spec {
                    ("description", notice_name(&name).to_string())
                } else {
                    ("script", name.clone())
                };
                out.push(Program {
                    label,
                    kind,
                    name: short,
                    compiled: p,
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(s: &str) -> ProbeDesc {
        compiler::pdesc::split_desc(s, 1).expect("valid description")
    }

    #[test]
    fn notice_name_stops_at_the_clause() {
        assert_eq!(notice_name("BEGIN { exit(0); }"), "BEGIN ");
        assert_eq!(
            notice_name("syscall:::entry/pid == 1/{}"),
            "syscall:::entry"
        );
        assert_eq!(notice_name("BEGIN;END"), "BEGIN");
        assert_eq!(notice_name("tick-1s"), "tick-1s");
    }

    #[test]
    fn integer_specifiers_name_a_probe_by_id() {
        // The dtrace provider's probes are always 1-3.
        assert_eq!(
            probe_id_spec('i', "2"),
            Some(Ok("dtrace:::END".to_string()))
        );
        assert_eq!(
            probe_id_spec('n', "1 { exit(0); }"),
            Some(Ok("dtrace:::BEGIN{ exit(0); }".to_string()))
        );
        assert_eq!(probe_id_spec('n', "BEGIN"), None);
        assert_eq!(probe_id_spec('i', "tick-1s"), None);
        assert_eq!(
            probe_id_spec('i', "4000000000"),
            Some(Err(
                "invalid probe identifier 4000000000: Unknown probe identifier".to_string()
            ))
        );
        assert_eq!(
            probe_id_spec('P', "2"),
            Some(Err(
                "probe identifier 2 not permitted when specifying providers".to_string()
            ))
        );
        assert!(matches!(probe_id_spec('i', "99999999999"), Some(Err(e)) if e.contains("exceeds")));
    }

    #[test]
    fn bare_integer_descriptions_resolve_through_the_device() {
        use rdtrace_libdtrace::compiler::pdesc::resolve_probe_id;
        let m = DeviceMatcher::new();
        assert_eq!(
            resolve_probe_id("3", 1, &m).map(|r| r.map(|d| d.full())),
            Some(Ok("dtrace:::ERROR".to_string()))
        );
        let unknown = resolve_probe_id("4000000000", 1, &m)
            .expect("an integer")
            .expect_err("no such probe");
        assert_eq!(
            unknown.message,
            "invalid probe identifier 4000000000: Unknown probe identifier"
        );
    }

    #[test]
    fn device_matcher_uses_the_probe_list() {
        let m = DeviceMatcher::new();
        assert_eq!(m.count_matches(&desc("dtrace:::BEGIN")), 1);
        assert_eq!(m.count_matches(&desc("dtrace:::")), 3);
        // On-demand profile probes count; impossible ones do not.
        assert_eq!(m.count_matches(&desc("tick-7ms")), 1);
        assert_eq!(m.count_matches(&desc("profile-1ns")), 0);
        assert_eq!(m.count_matches(&desc("nosuch:::probe")), 0);
        assert_eq!(m.typed_args(&desc("BEGIN")), Some(0));
    }
}
