//! Run a test body in a child process.
//!
//! A module panic (or a wild jump) aborts the whole process, so each harness
//! test body runs in a re-executed copy of the test binary, filtered to that
//! one test and told which case to run through `KOHARNESS_CASE`. The parent
//! fails the test with the child's output if the child did not exit
//! successfully or did not actually run the test.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CASE_VAR: &str = "KOHARNESS_CASE";
/// How long a child may run before it is killed as hung (a deadlock in
/// module or harness code); `RDTRACE_KOHARNESS_TIMEOUT` (seconds) overrides.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// What a finished child left behind.
struct ChildOutput {
    success: bool,
    status: String,
    stdout: String,
    stderr: String,
}

/// Run this test binary filtered to `test_name` with `case`, killing it
/// if it outlives the timeout.
fn run_child(test_name: &str, case: &str) -> ChildOutput {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            test_name,
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(CASE_VAR, case)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child test process");
    let mut out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let timeout = std::env::var("RDTRACE_KOHARNESS_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let start = Instant::now();
    let (success, status) = loop {
        match child.try_wait().expect("wait for child") {
            Some(st) => break (st.success(), st.to_string()),
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break (
                    false,
                    format!("killed after {}s: hung (deadlock?)", timeout.as_secs()),
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    ChildOutput {
        success,
        status,
        stdout,
        stderr,
    }
}

/// Run `body` for `case` of test `test_name` (its exact name in the test
/// binary) in a child process; panic with the child's output if it failed.
pub fn run_isolated(test_name: &str, case: &str, body: impl FnOnce()) {
    if let Ok(current) = std::env::var(CASE_VAR) {
        if current == case {
            body();
        }
        return;
    }
    let ChildOutput {
        success,
        status,
        stdout,
        stderr,
    } = run_child(test_name, case);
    let ran = stdout.contains("1 passed");
    if !success || !ran {
        panic!(
            "harness case `{case}` of `{test_name}` failed in its child process ({status})\n--- child stdout ---\n{stdout}\n--- child stderr ---\n{stderr}"
        );
    }
    // Let the parent's output show what the child printed (SKIPPED lines, figures).
    for line in stdout.lines().chain(stderr.lines()) {
        if let Some(at) = line.find("koharness:") {
            println!("{}", &line[at..]);
        }
    }
}

/// Like [`run_isolated`], for a body that must make the kernel panic: the
/// child must die (abort) rather than pass. Returns the child's stderr in
/// the parent (None in the child).
pub fn run_isolated_expecting_panic(
    test_name: &str,
    case: &str,
    body: impl FnOnce(),
) -> Option<String> {
    if let Ok(current) = std::env::var(CASE_VAR) {
        if current == case {
            body();
        }
        return None;
    }
    let ChildOutput {
        success,
        status,
        stderr,
        ..
    } = run_child(test_name, case);
    assert!(
        !status.starts_with("killed"),
        "case `{case}` of `{test_name}` hung: {status}"
    );
    assert!(
        !success,
        "case `{case}` of `{test_name}` was expected to panic the kernel but passed\n{stderr}"
    );
    assert!(
        stderr.contains("panic: "),
        "the child failed without a kernel panic:\n{stderr}"
    );
    Some(stderr)
}
