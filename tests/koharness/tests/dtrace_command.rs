//! Our unmodified `dtrace` command driving the real rdtrace.ko: the
//! `dtrace_preload` example (an LD_PRELOAD shim) routes the command's
//! `/dev/dtrace/dtrace` to the harness inside the command's own process.
//! Needs the workspace's `dtrace` binary (`cargo build -p rdtrace-dtrace`,
//! or the release build `make` makes) and the shim (built by `cargo test`);
//! without them the test prints SKIPPED.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn target_dir() -> PathBuf {
    // .../target/<profile>/deps/<this test binary>
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf()
}

/// The dtrace command and the preload shim, or None (after a SKIPPED line)
/// when either is not built.
fn command_and_shim(test: &str) -> Option<(PathBuf, PathBuf)> {
    common::ko_bytes(test)?;
    let dir = target_dir();
    // The command of this profile, else a release build (`make build`).
    let dtrace = [dir.join("dtrace"), dir.join("../release/dtrace")]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| dir.join("dtrace"));
    let shim = dir.join("examples/libdtrace_preload.so");
    for (what, p) in [("the dtrace command", &dtrace), ("the preload shim", &shim)] {
        if !p.exists() {
            println!(
                "koharness: SKIPPED {test}: {what} ({}) is not built",
                p.display()
            );
            return None;
        }
    }
    Some((dtrace, shim))
}

/// Runs the dtrace command with `args` on rdtrace.ko through the preload
/// shim (`ncpu` harness CPUs, or the harness default), asserts that it
/// succeeded and really used the module, and returns (stdout, stderr).
fn run_on_module(
    dtrace: &Path,
    shim: &Path,
    args: &[&str],
    ncpu: Option<usize>,
) -> (String, String) {
    let mut command = Command::new(dtrace);
    command
        .args(args)
        .env("LD_PRELOAD", shim)
        .env("RDTRACE_KO", common::ko_path());
    match ncpu {
        Some(n) => command.env("RDTRACE_KOHARNESS_NCPU", n.to_string()),
        None => command.env_remove("RDTRACE_KOHARNESS_NCPU"),
    };
    let out = command.output().expect("run dtrace");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "dtrace failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("koharness-preload: rdtrace.ko loaded into the harness"),
        "the real module was not used:\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn dtrace_command_runs_on_the_real_module_through_the_preload_shim() {
    let Some((dtrace, shim)) =
        command_and_shim("dtrace_command_runs_on_the_real_module_through_the_preload_shim")
    else {
        return;
    };
    let (stdout, stderr) = run_on_module(
        &dtrace,
        &shim,
        &[
            "-n",
            "BEGIN { @a[\"x\"] = count(); printf(\"hello %d\\n\", 7); trace(42); exit(0); }",
        ],
        None,
    );
    assert!(stderr.contains("matched 1 probe"), "{stderr}");
    assert!(
        stdout.contains(":BEGIN") && stdout.contains("hello 7") && stdout.contains("42"),
        "{stdout}"
    );
    let agg = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('x'))
        .unwrap_or("");
    assert_eq!(
        agg.split_whitespace().collect::<Vec<_>>(),
        vec!["x", "1"],
        "{stdout}"
    );
    println!("koharness: dtrace on rdtrace.ko printed:\n{stdout}");

    // Timer-driven probes and aggregation snapshots through the command's
    // own work loop: ~100 firings of tick-10ms in one second.
    let (stdout, _) = run_on_module(
        &dtrace,
        &shim,
        &[
            "-q",
            "-n",
            "tick-10ms { @n[\"ticks\"] = count(); } tick-1s { exit(0); }",
        ],
        None,
    );
    let ticks: i64 = stdout
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix("ticks")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    println!("koharness: dtrace counted {ticks} tick-10ms firings in one second");
    assert!(
        ticks >= 30,
        "tick-10ms fired {ticks} times in a second:\n{stdout}"
    );
}

/// With the harness's default 4 CPUs (more than this machine may have), the
/// command learns the CPU count from the device side (the shim's `sysconf`)
/// and reads every CPU's principal and aggregation buffers: records made
/// only on CPUs 2 and 3 reach its output.
#[test]
fn dtrace_command_reads_the_buffers_of_every_harness_cpu() {
    let Some((dtrace, shim)) =
        command_and_shim("dtrace_command_reads_the_buffers_of_every_harness_cpu")
    else {
        return;
    };
    let (stdout, stderr) = run_on_module(
        &dtrace,
        &shim,
        &[
            "-q",
            "-n",
            "profile-50hz /cpu >= 2/ { printf(\"fired-on-cpu %d\\n\", cpu); @on[cpu] = count(); }",
            "-n",
            "tick-1s { exit(0); }",
        ],
        None,
    );
    let printed = |cpu: u32| {
        stdout
            .lines()
            .filter(|l| l.trim() == format!("fired-on-cpu {cpu}"))
            .count()
    };
    // Aggregation lines: "<cpu> <count>".
    let aggregated = |cpu: u32| -> i64 {
        stdout
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 2 && f[0] == cpu.to_string()).then(|| f[1].parse().unwrap_or(0))
            })
            .unwrap_or(0)
    };
    println!(
        "koharness: principal records from CPUs 2/3: {}/{}, aggregated {}/{}",
        printed(2),
        printed(3),
        aggregated(2),
        aggregated(3)
    );
    for cpu in [2, 3] {
        assert!(
            printed(cpu) >= 5,
            "CPU {cpu}'s principal buffer was not read:\n{stdout}\n{stderr}"
        );
        // Both come from the same clause; the aggregation is read last, so
        // it may have counted firings after the final buffer read.
        assert!(
            aggregated(cpu) >= printed(cpu) as i64,
            "CPU {cpu}'s aggregation was not read:\n{stdout}"
        );
    }
    assert_eq!(
        printed(0) + printed(1),
        0,
        "the predicate leaked:\n{stdout}"
    );
}

/// The same with more harness CPUs than this machine has, whatever the
/// machine: the last harness CPU's records reach the command's output.
#[test]
fn dtrace_command_reads_cpus_beyond_the_host_count() {
    let Some((dtrace, shim)) = command_and_shim("dtrace_command_reads_cpus_beyond_the_host_count")
    else {
        return;
    };
    let host = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ncpu = (host + 2).min(64);
    let last = ncpu - 1;
    let (stdout, stderr) = run_on_module(
        &dtrace,
        &shim,
        &[
            "-q",
            "-n",
            &format!("profile-50hz /cpu == {last}/ {{ printf(\"last-cpu %d\\n\", cpu); }}"),
            "-n",
            "tick-1s { exit(0); }",
        ],
        Some(ncpu),
    );
    let records = stdout
        .lines()
        .filter(|l| l.trim() == format!("last-cpu {last}"))
        .count();
    println!(
        "koharness: {ncpu} harness CPUs on a {host}-CPU host: {records} records from CPU {last}"
    );
    assert!(
        records >= 5,
        "CPU {last} of {ncpu} was not read:\n{stdout}\n{stderr}"
    );
}
