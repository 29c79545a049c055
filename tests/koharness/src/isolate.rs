//! Run a test body in a child process.
//!
//! A module panic (or a wild jump) aborts the whole process, so each harness
//! test body runs in a re-executed copy of the test binary, filtered to that
//! one test and told which case to run through `KOHARNESS_CASE`. The parent
//! fails the test with the child's output if the child did not exit
//! successfully or did not actually run the test.

use std::process::Command;

const CASE_VAR: &str = "KOHARNESS_CASE";

/// Run `body` for `case` of test `test_name` (its exact name in the test
/// binary) in a child process; panic with the child's output if it failed.
pub fn run_isolated(test_name: &str, case: &str, body: impl FnOnce()) {
    if let Ok(current) = std::env::var(CASE_VAR) {
        if current == case {
            body();
        }
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, case)
        .output()
        .expect("spawn child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ran = stdout.contains("1 passed");
    if !out.status.success() || !ran {
        panic!(
            "harness case `{case}` of `{test_name}` failed in its child process ({})\n--- child stdout ---\n{stdout}\n--- child stderr ---\n{stderr}",
            out.status
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
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, case)
        .output()
        .expect("spawn child test process");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "case `{case}` of `{test_name}` was expected to panic the kernel but passed\n{stderr}"
    );
    assert!(
        stderr.contains("panic: "),
        "the child failed without a kernel panic:\n{stderr}"
    );
    Some(stderr)
}
