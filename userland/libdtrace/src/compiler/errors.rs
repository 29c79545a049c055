//! Compile errors: a `D_*` tag, an optional source line and a message worded as libdtrace words it.
//!
//! The tag names are the ones libdtrace reports under `-xerrtags`; scripts and test suites match on
//! them, so they are part of the interface. Runs in userland only.

use std::fmt;

/// One compile error. `line == 0` means "no line" (errors not tied to the source text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The libdtrace error tag, e.g. `"D_SYNTAX"`.
    pub tag: &'static str,
    /// 1-based source line, 0 when the error has no position.
    pub line: u32,
    /// The message text (may span several lines, e.g. prototype mismatches).
    pub message: String,
    /// Where the error belongs: a script failing to compile, or an invalid `-n`-style specifier.
    pub kind: ErrorKind,
}

/// How the command should introduce the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An ordinary compile error located in the program text.
    Compile,
    /// An error without a line (e.g. the preprocessor failed, too many tuple registers).
    NoLine,
}

impl CompileError {
    /// A located error.
    pub fn new(tag: &'static str, line: u32, message: impl Into<String>) -> Self {
        CompileError {
            tag,
            line,
            message: message.into(),
            kind: ErrorKind::Compile,
        }
    }

    /// An error that libdtrace reports without a line number.
    pub fn unlocated(tag: &'static str, message: impl Into<String>) -> Self {
        CompileError {
            tag,
            line: 0,
            message: message.into(),
            kind: ErrorKind::NoLine,
        }
    }

    /// An error libdtrace reports as an error number rather than a compiler diagnostic
    /// (`EDT_NOREG`, `EDT_NOTUPREG`): no tag, even under `-xerrtags`, and no line.
    pub fn errno(message: impl Into<String>) -> Self {
        CompileError::unlocated("", message)
    }

    /// The text after `dtrace: failed to compile script F: `, with the tag if `errtags` is set
    /// and the error has one.
    pub fn render(&self, errtags: bool) -> String {
        let mut s = String::new();
        if errtags && !self.tag.is_empty() {
            s.push('[');
            s.push_str(self.tag);
            s.push_str("] ");
        }
        if self.line != 0 && self.kind == ErrorKind::Compile {
            s.push_str(&format!("line {}: ", self.line));
        }
        s.push_str(&self.message);
        s
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for CompileError {}

/// Shorthand for results inside the compiler.
pub type CResult<T> = Result<T, CompileError>;

/// Builds an `Err` for a located error.
pub fn err<T>(tag: &'static str, line: u32, message: impl Into<String>) -> CResult<T> {
    Err(CompileError::new(tag, line, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tag_before_line() {
        let e = CompileError::new("D_SYNTAX", 7, "syntax error near \"}\"");
        assert_eq!(e.render(true), "[D_SYNTAX] line 7: syntax error near \"}\"");
        assert_eq!(e.render(false), "line 7: syntax error near \"}\"");
    }

    #[test]
    fn unlocated_has_no_line() {
        let e =
            CompileError::unlocated("D_PREPROC", "Preprocessor failed to process input program");
        assert_eq!(
            e.render(false),
            "Preprocessor failed to process input program"
        );
    }
}
