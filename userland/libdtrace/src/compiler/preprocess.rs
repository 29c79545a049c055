//! Preprocessing (`dtrace -C`): runs the system C preprocessor over the program, as FreeBSD's
//! dtrace does, feeding the source on standard input (so cpp names it `/dev/stdin` in its
//! messages) and keeping line markers so errors point at the original lines.
//! Userland only.

use std::io::Write;
use std::process::{Command, Stdio};

use super::errors::{CResult, CompileError};

/// How to run the preprocessor.
#[derive(Debug, Clone, Default)]
pub struct CppConfig {
    /// The preprocessor command (default `cpp`).
    pub program: Option<String>,
    /// `-D`, `-U`, `-I`, `-H` arguments as given.
    pub args: Vec<String>,
}

/// Result of preprocessing: the text, and cpp's diagnostics (to be shown even on success).
#[derive(Debug, Clone)]
pub struct Preprocessed {
    pub text: String,
    pub diagnostics: String,
}

/// Runs cpp. An interpreter line (`#!...`) is blanked first (it is not C), keeping line numbers.
pub fn run_cpp(source: &str, cfg: &CppConfig) -> CResult<Preprocessed> {
    let body = if source.starts_with("#!") {
        match source.find('\n') {
            Some(i) => format!("\n{}", &source[i + 1..]),
            None => String::new(),
        }
    } else {
        source.to_string()
    };
    let program = cfg.program.clone().unwrap_or_else(|| "cpp".to_string());
    let mut cmd = Command::new(&program);
    cmd.arg("-E")
        .arg("-x")
        .arg("c")
        .arg("-fno-show-column")
        .arg("-D__FreeBSD__")
        .arg("-D__rdtrace__");
    cmd.args(&cfg.args);
    cmd.arg("/dev/stdin");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        CompileError::unlocated(
            "D_PREPROC",
            format!("failed to run preprocessor {}: {}", program, e),
        )
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A broken pipe just means cpp stopped reading; its exit status reports the problem.
        let _ = stdin.write_all(body.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| {
        CompileError::unlocated("D_PREPROC", format!("failed to run preprocessor: {}", e))
    })?;
    let diagnostics = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let mut e =
            CompileError::unlocated("D_PREPROC", "Preprocessor failed to process input program");
        e.message = format!("{}\u{0}{}", diagnostics, e.message);
        return Err(e);
    }
    Ok(Preprocessed {
        text: String::from_utf8_lossy(&out.stdout).into_owned(),
        diagnostics,
    })
}

/// Splits an error produced by [`run_cpp`] into (cpp diagnostics, message).
pub fn split_cpp_error(message: &str) -> (&str, &str) {
    match message.split_once('\u{0}') {
        Some((d, m)) => (d, m),
        None => ("", message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defines_and_keeps_lines() {
        let cfg = CppConfig {
            program: None,
            args: vec!["-DVALUE=5".into()],
        };
        let Ok(p) = run_cpp("#!/usr/sbin/dtrace -s\nBEGIN\n{ x = VALUE; }\n", &cfg) else {
            // No cpp on this machine: nothing to test.
            return;
        };
        assert!(p.text.contains("x = 5;"));
        assert!(p.text.contains("# 1 \"/dev/stdin\""));
    }

    #[test]
    fn failure_reports_diagnostics() {
        let cfg = CppConfig::default();
        match run_cpp("#if 1\nBEGIN {}\n", &cfg) {
            Err(e) => {
                let (diag, msg) = split_cpp_error(&e.message);
                assert_eq!(msg, "Preprocessor failed to process input program");
                assert!(diag.contains("unterminated"));
            }
            Ok(_) => panic!("cpp accepted an unterminated #if"),
        }
    }
}
