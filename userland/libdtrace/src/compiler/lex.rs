//! Lexer: D source text to tokens, with libdtrace's special states.
//!
//! * Probe descriptions are lexed on request of the parser ([`Lexer::try_probe_spec`]) because
//!   whether `foo-bar*` is a probe description or an expression depends on where the parser is.
//! * `$1`, `$$1`, `$pid`, ... macro variables are replaced as they are lexed (also inside probe
//!   descriptions), using a [`MacroEnv`].
//! * Control lines (`#pragma`, `#line`, `# N "file"`) are handled here; `#pragma D ...` lines are
//!   handed to a [`PragmaSink`] immediately, in source order, as libdtrace does.
//! * Unbalanced `)`/`]` are reported by the lexer, as libdtrace does ("extra ) in input stream").
//!
//! Userland only.

use super::errors::{err, CResult, CompileError};

/// Integer literal details needed to give the constant its C type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntLit {
    pub value: u64,
    /// `u`/`U` suffix present.
    pub unsigned: bool,
    /// Number of `l`/`L` in the suffix (0, 1 or 2).
    pub longs: u8,
    /// Written in decimal (affects which types the constant may take).
    pub decimal: bool,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokKind {
    Ident(String),
    Int(IntLit),
    Str(Vec<u8>),
    /// An aggregation name without the `@` (empty for the anonymous `@`).
    Agg(String),
    Punct(&'static str),
    /// A probe description, already macro-expanded.
    ProbeSpec(String),
    /// The `/` that closes a predicate (a `/` followed by optional space and `{`).
    EndPred,
    Eof,
}

/// A token with its line and its source text (for "syntax error near" messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokKind,
    pub line: u32,
    pub text: String,
}

/// Macro variables: `$0..$N` (script name and arguments) and named ones (`$pid`, `$target`, ...).
#[derive(Debug, Clone, Default)]
pub struct MacroEnv {
    /// `$0` is the script name, `$1..` the macro arguments.
    pub args: Vec<String>,
    /// Named macro variables without the `$`.
    pub vars: Vec<(String, String)>,
    /// `-x defaultargs`: undefined `$N` become 0 / "".
    pub default_args: bool,
}

/// Receives `#pragma D ...` lines as they are lexed: (line, words after `#pragma D`).
pub trait PragmaSink {
    fn pragma(&mut self, line: u32, words: &[String]) -> CResult<()>;
    /// `#pragma D option pspec`: everything at the top level is a probe description.
    fn pspec(&self) -> bool {
        false
    }
}

const PUNCTS: [&str; 48] = [
    "<<=", ">>=", "...", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "^^",
    "+=", "-=", "*=", "/=", "%=", "&=", "^=", "|=", "+", "-", "*", "/", "%", "<", ">", "=", "!",
    "~", "&", "|", "^", "?", ":", ";", ",", ".", "(", ")", "[", "]", "{", "}", "@",
];

/// D's reserved words (libdtrace's lexer keywords).
const D_RESERVED: [&str; 46] = [
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "counter",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "import",
    "inline",
    "int",
    "long",
    "offsetof",
    "probe",
    "provider",
    "register",
    "restrict",
    "return",
    "self",
    "short",
    "signed",
    "sizeof",
    "static",
    "string",
    "stringof",
    "struct",
    "switch",
    "this",
    "translator",
    "typedef",
    "union",
    "unsigned",
    "userland",
    "void",
    "volatile",
    "while",
    "xlate",
];

/// Words that start a declaration rather than a probe description at the top level.
pub const DECL_KEYWORDS: [&str; 28] = [
    "auto",
    "char",
    "const",
    "double",
    "enum",
    "extern",
    "float",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "self",
    "short",
    "signed",
    "static",
    "string",
    "struct",
    "this",
    "translator",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "provider",
    "userland",
    "import",
];

/// The lexer. Holds the whole source and a cursor.
pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    macros: &'a MacroEnv,
    /// Highest `$N` referenced (for the unused-argument check).
    pub max_arg_used: usize,
    /// Stack of open `(`/`[` with their lines.
    nesting: Vec<u8>,
    /// Pending tokens produced by macro expansion.
    pending: Vec<Token>,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'`'
}
fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'`'
}
fn is_pspec_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || b"-$:_.?*\\[]!".contains(&c)
}
fn is_pspec_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-$:_.?*\\[]!`".contains(&c)
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, macros: &'a MacroEnv) -> Self {
        let mut lx = Lexer {
            src: src.as_bytes(),
            pos: 0,
            line: 1,
            macros,
            max_arg_used: 0,
            nesting: Vec::new(),
            pending: Vec::new(),
        };
        // An interpreter line (`#!/usr/sbin/dtrace -s`) is not part of the program.
        if lx.src.starts_with(b"#!") {
            while lx.pos < lx.src.len() && lx.src[lx.pos] != b'\n' {
                lx.pos += 1;
            }
        }
        lx
    }

    /// Current line (for errors raised between tokens).
    pub fn line(&self) -> u32 {
        self.line
    }

    fn peek_byte(&self, off: usize) -> u8 {
        self.src.get(self.pos + off).copied().unwrap_or(0)
    }

    /// Skips white space, comments and control lines. Control lines are only recognised at the
    /// start of a line.
    fn skip_space(&mut self, sink: &mut dyn PragmaSink) -> CResult<()> {
        let mut at_line_start = self.pos == 0 || self.src.get(self.pos - 1) == Some(&b'\n');
        loop {
            let c = self.peek_byte(0);
            if c == b'\n' {
                self.line += 1;
                self.pos += 1;
                at_line_start = true;
            } else if c == b' ' || c == b'\t' || c == b'\r' || c == 0x0b || c == 0x0c {
                self.pos += 1;
            } else if c == b'/' && self.peek_byte(1) == b'*' {
                self.pos += 2;
                loop {
                    if self.pos >= self.src.len() {
                        return err(
                            "D_SYNTAX",
                            self.line,
                            "end-of-file encountered before matching */",
                        );
                    }
                    if self.src[self.pos] == b'*' && self.peek_byte(1) == b'/' {
                        self.pos += 2;
                        break;
                    }
                    if self.src[self.pos] == b'\n' {
                        self.line += 1;
                    }
                    self.pos += 1;
                }
            } else if c == b'/' && self.peek_byte(1) == b'/' {
                while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
                    self.pos += 1;
                }
            } else if c == b'#' && at_line_start {
                self.control_line(sink)?;
            } else {
                return Ok(());
            }
        }
    }

    /// Handles one `#...` line (the cursor is on `#`).
    fn control_line(&mut self, sink: &mut dyn PragmaSink) -> CResult<()> {
        let start_line = self.line;
        let start = self.pos + 1;
        let mut end = start;
        while end < self.src.len() && self.src[end] != b'\n' {
            end += 1;
        }
        if end >= self.src.len() {
            return err(
                "D_SYNTAX",
                start_line,
                "end-of-file encountered before end of control line",
            );
        }
        let text = String::from_utf8_lossy(&self.src[start..end]).to_string();
        self.pos = end; // the newline is consumed by skip_space
        let words = split_control_words(&text);
        let Some(first) = words.first() else {
            return Ok(());
        };
        if first.chars().all(|c| c.is_ascii_digit()) || first == "line" {
            // `# 12 "file"` from cpp or `#line 12`: the next line has the given number.
            let num = if first == "line" {
                words.get(1)
            } else {
                Some(first)
            };
            if let Some(n) = num.and_then(|n| n.parse::<u32>().ok()) {
                // skip_space will add one for the newline that ends this control line
                self.line = n.saturating_sub(1);
                return Ok(());
            }
            return err(
                "D_PRAGCTL_INVAL",
                start_line,
                format!("invalid control directive: #{}", text.trim()),
            );
        }
        match first.as_str() {
            "pragma" => {
                if words.len() >= 2 && words[1] == "D" {
                    sink.pragma(start_line, &words[2..])
                } else if words.len() >= 2
                    && (words[1] == "ident" || words[1] == "error" || words[1] == "line")
                {
                    sink.pragma(start_line, &words[1..])
                } else {
                    Ok(()) // pragmas of other namespaces are ignored, as in C
                }
            }
            "ident" => Ok(()),
            _ => err(
                "D_PRAGCTL_INVAL",
                start_line,
                format!("invalid control directive: #{}", first),
            ),
        }
    }

    /// At a place where a probe description may start, lexes one if the text there is one.
    /// `is_type_name` tells whether an identifier names a type (then it is a declaration).
    pub fn try_probe_spec(
        &mut self,
        sink: &mut dyn PragmaSink,
        is_type_name: &dyn Fn(&str) -> bool,
    ) -> CResult<Option<Token>> {
        if !self.pending.is_empty() {
            return Ok(None);
        }
        self.skip_space(sink)?;
        let start = self.pos;
        let c = self.peek_byte(0);
        if c.is_ascii_digit() {
            return Ok(self.probe_id_spec(start));
        }
        if !is_pspec_start(c) {
            return Ok(None);
        }
        let mut end = start;
        while end < self.src.len() && is_pspec_char(self.src[end]) {
            end += 1;
        }
        let raw = String::from_utf8_lossy(&self.src[start..end]).to_string();
        let word_end = raw
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(raw.len());
        let word = &raw[..word_end];
        if !sink.pspec() && DECL_KEYWORDS.contains(&word)
            || (!word.is_empty() && is_type_name(word) && !raw.contains(':'))
        {
            return Ok(None);
        }
        // `$` alone or a description made only of `$` expansions still goes through expansion.
        let line = self.line;
        self.pos = end;
        let expanded = self.expand_in_pspec(&raw, line)?;
        Ok(Some(Token {
            kind: TokKind::ProbeSpec(expanded),
            line,
            text: raw,
        }))
    }

    /// A probe description that is a bare probe id (`1 { ... }`), which the type checker
    /// resolves through the device; digits followed by other description characters are not one.
    fn probe_id_spec(&mut self, start: usize) -> Option<Token> {
        let digits = self.src[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = start + digits;
        if self.src.get(end).is_some_and(|&b| is_pspec_char(b)) {
            return None;
        }
        let raw = String::from_utf8_lossy(&self.src[start..end]).to_string();
        let line = self.line;
        self.pos = end;
        Some(Token {
            kind: TokKind::ProbeSpec(raw.clone()),
            line,
            text: raw,
        })
    }

    /// Replaces `$N` / `$name` inside a probe description by the macro's text.
    fn expand_in_pspec(&mut self, raw: &str, line: u32) -> CResult<String> {
        let mut out = String::new();
        let b = raw.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                let mut j = i + 1;
                if j < b.len() && b[j] == b'$' {
                    j += 1;
                }
                let name_start = j;
                if j < b.len() && b[j].is_ascii_digit() {
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                } else {
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                }
                let name = &raw[name_start..j];
                if name.is_empty() {
                    out.push('$');
                    i += 1;
                    continue;
                }
                let val = self.macro_value(name, line)?;
                out.push_str(&val);
                i = j;
            } else {
                out.push(b[i] as char);
                i += 1;
            }
        }
        Ok(out)
    }

    /// The text of macro variable `name` (digits for `$N`).
    fn macro_value(&mut self, name: &str, line: u32) -> CResult<String> {
        if let Ok(n) = name.parse::<usize>() {
            if n > self.max_arg_used {
                self.max_arg_used = n;
            }
            if let Some(v) = self.macros.args.get(n) {
                return Ok(v.clone());
            }
            if self.macros.default_args {
                return Ok(String::new());
            }
            return err(
                "D_MACRO_UNDEF",
                line,
                format!("macro argument ${} is not defined", n),
            );
        }
        for (k, v) in &self.macros.vars {
            if k == name {
                return Ok(v.clone());
            }
        }
        err(
            "D_MACRO_UNDEF",
            line,
            format!("macro variable ${} is not defined", name),
        )
    }

    /// The next ordinary token.
    pub fn next_token(&mut self, sink: &mut dyn PragmaSink) -> CResult<Token> {
        if let Some(t) = self.pending.pop() {
            return Ok(t);
        }
        self.skip_space(sink)?;
        let line = self.line;
        let start = self.pos;
        let c = self.peek_byte(0);
        if self.pos >= self.src.len() {
            return Ok(Token {
                kind: TokKind::Eof,
                line,
                text: String::new(),
            });
        }
        if is_ident_start(c) {
            while is_ident_char(self.peek_byte(0)) {
                self.pos += 1;
            }
            let s = String::from_utf8_lossy(&self.src[start..self.pos]).to_string();
            // libdtrace's lexer reads ahead after an identifier, and its "syntax error near"
            // then quotes the identifier with the rest of its line; keywords are quoted alone.
            let text = if D_RESERVED.contains(&s.as_str()) {
                s.clone()
            } else {
                let eol = self.src[start..]
                    .iter()
                    .position(|b| *b == b'\n' || *b == b'\r')
                    .map_or(self.src.len(), |p| start + p);
                String::from_utf8_lossy(&self.src[start..eol]).into_owned()
            };
            return Ok(Token {
                kind: TokKind::Ident(s),
                line,
                text,
            });
        }
        if c.is_ascii_digit() {
            return self.lex_number(line);
        }
        if c == b'.' {
            self.reject_float(line)?;
        }
        if c == b'"' {
            self.pos += 1;
            let bytes = self.lex_quoted(b'"', line)?;
            let text = String::from_utf8_lossy(&self.src[start..self.pos]).to_string();
            return Ok(Token {
                kind: TokKind::Str(bytes),
                line,
                text,
            });
        }
        if c == b'\'' {
            self.pos += 1;
            let bytes = self.lex_quoted(b'\'', line)?;
            if bytes.is_empty() {
                return err("D_CHR_NULL", line, "empty character constant");
            }
            // Multi-character constants pack big-endian like C compilers do.
            let mut v: i64 = 0;
            for b in &bytes {
                v = (v << 8) | i64::from(*b as i8 as u8);
            }
            if bytes.len() == 1 {
                v = i64::from(bytes[0] as i8);
            }
            let text = String::from_utf8_lossy(&self.src[start..self.pos]).to_string();
            return Ok(Token {
                kind: TokKind::Int(IntLit {
                    value: v as u64,
                    unsigned: false,
                    longs: 0,
                    decimal: true,
                }),
                line,
                text,
            });
        }
        if c == b'@' {
            self.pos += 1;
            while is_ident_char(self.peek_byte(0)) && self.peek_byte(0) != b'`' {
                self.pos += 1;
            }
            let name = String::from_utf8_lossy(&self.src[start + 1..self.pos]).to_string();
            let text = String::from_utf8_lossy(&self.src[start..self.pos]).to_string();
            return Ok(Token {
                kind: TokKind::Agg(name),
                line,
                text,
            });
        }
        if c == b'$' {
            return self.lex_macro(line);
        }
        if c == b'/' && self.peek_byte(1) != b'=' {
            // A `/` followed by `{` ends a predicate.
            let mut j = self.pos + 1;
            while j < self.src.len()
                && (self.src[j] == b' '
                    || self.src[j] == b'\t'
                    || self.src[j] == b'\n'
                    || self.src[j] == b'\r')
            {
                j += 1;
            }
            if self.src.get(j) == Some(&b'{') {
                let brace_line = line
                    + self.src[self.pos..j]
                        .iter()
                        .filter(|b| **b == b'\n')
                        .count() as u32;
                if let Some(open) = self.nesting.last() {
                    let msg = if *open == b'(' {
                        "closing ) expected in predicate before /"
                    } else {
                        "closing ] expected in predicate before /"
                    };
                    return err("D_SYNTAX", brace_line, msg);
                }
                self.pos += 1;
                return Ok(Token {
                    kind: TokKind::EndPred,
                    line: brace_line,
                    text: "/".into(),
                });
            }
        }
        for p in PUNCTS.iter() {
            if self.src[self.pos..].starts_with(p.as_bytes()) {
                self.pos += p.len();
                match *p {
                    "(" => self.nesting.push(b'('),
                    "[" => self.nesting.push(b'['),
                    ")" | "]" => {
                        // Parentheses and brackets are counted separately, as libdtrace does.
                        let want = if *p == ")" { b'(' } else { b'[' };
                        match self.nesting.iter().rposition(|o| *o == want) {
                            Some(i) => {
                                self.nesting.remove(i);
                            }
                            None => {
                                return err(
                                    "D_SYNTAX",
                                    line,
                                    format!("extra {} in input stream", p),
                                )
                            }
                        }
                    }
                    _ => {}
                }
                return Ok(Token {
                    kind: TokKind::Punct(p),
                    line,
                    text: (*p).to_string(),
                });
            }
        }
        let ch = String::from_utf8_lossy(&self.src[self.pos..self.pos + 1]).to_string();
        err("D_SYNTAX", line, format!("invalid character '{}'", ch))
    }

    fn lex_macro(&mut self, line: u32) -> CResult<Token> {
        let start = self.pos;
        self.pos += 1;
        let as_string = self.peek_byte(0) == b'$';
        if as_string {
            self.pos += 1;
        }
        let name_start = self.pos;
        if self.peek_byte(0).is_ascii_digit() {
            while self.peek_byte(0).is_ascii_digit() {
                self.pos += 1;
            }
        } else {
            while self.peek_byte(0).is_ascii_alphanumeric() || self.peek_byte(0) == b'_' {
                self.pos += 1;
            }
        }
        let name = String::from_utf8_lossy(&self.src[name_start..self.pos]).to_string();
        let text = String::from_utf8_lossy(&self.src[start..self.pos]).to_string();
        if name.is_empty() {
            return err("D_SYNTAX", line, format!("syntax error near \"{}\"", text));
        }
        let value = self.macro_value(&name, line)?;
        if as_string {
            return Ok(Token {
                kind: TokKind::Str(value.into_bytes()),
                line,
                text,
            });
        }
        if value.is_empty() && self.macros.default_args {
            return Ok(Token {
                kind: TokKind::Int(IntLit {
                    value: 0,
                    unsigned: false,
                    longs: 0,
                    decimal: true,
                }),
                line,
                text,
            });
        }
        // The value is lexed as a D token of its own: an integer, a string or an identifier.
        let env = MacroEnv::default();
        let mut sub = Lexer::new(&value, &env);
        let mut nosink = NoPragmas;
        let tok = sub.next_token(&mut nosink);
        let after = sub.next_token(&mut nosink);
        match (tok, after) {
            (Ok(t), Ok(a))
                if a.kind == TokKind::Eof
                    && matches!(
                        t.kind,
                        TokKind::Int(_) | TokKind::Str(_) | TokKind::Ident(_)
                    ) =>
            {
                Ok(Token {
                    kind: t.kind,
                    line,
                    text,
                })
            }
            _ => err("D_SYNTAX", line, format!("syntax error near \"{}\"", text)),
        }
    }

    /// Length of the floating-point constant libdtrace's lexer would match at `at`
    /// (`digits[.digits][e[+-]digits][fFlL]` or `.digits...`), 0 if none.
    fn float_len(&self, at: usize) -> usize {
        let b = |i: usize| self.src.get(i).copied().unwrap_or(0);
        let mut i = at;
        let int_digits = {
            let s = i;
            while b(i).is_ascii_digit() {
                i += 1;
            }
            i - s
        };
        if int_digits > 0 {
            if b(i) == b'.' {
                i += 1;
            }
            while b(i).is_ascii_digit() {
                i += 1;
            }
        } else if b(i) == b'.' && b(i + 1).is_ascii_digit() {
            i += 1;
            while b(i).is_ascii_digit() {
                i += 1;
            }
        } else {
            return 0;
        }
        if matches!(b(i), b'e' | b'E') {
            let sign = usize::from(matches!(b(i + 1), b'+' | b'-'));
            if b(i + 1 + sign).is_ascii_digit() {
                i += 1 + sign;
                while b(i).is_ascii_digit() {
                    i += 1;
                }
            }
        }
        if matches!(b(i), b'f' | b'F' | b'l' | b'L') {
            i += 1;
        }
        i - at
    }

    /// Length of the integer constant libdtrace's lexer would match at `at`.
    fn int_len(&self, at: usize) -> usize {
        let b = |i: usize| self.src.get(i).copied().unwrap_or(0);
        let mut i = at;
        if b(i) == b'0' && matches!(b(i + 1), b'x' | b'X') && b(i + 2).is_ascii_hexdigit() {
            i += 2;
            while b(i).is_ascii_hexdigit() {
                i += 1;
            }
        } else {
            while b(i).is_ascii_digit() {
                i += 1;
            }
        }
        if matches!(b(i), b'u' | b'U') {
            i += 1;
        }
        for _ in 0..2 {
            if matches!(b(i), b'l' | b'L') {
                i += 1;
            }
        }
        i - at
    }

    /// D has no floating-point constants: libdtrace's lexer matches them (when that match is
    /// longer than an integer's) only to reject them.
    fn reject_float(&self, line: u32) -> CResult<()> {
        if self.float_len(self.pos) > self.int_len(self.pos) {
            return err(
                "D_SYNTAX",
                line,
                "floating-point constants are not permitted",
            );
        }
        Ok(())
    }

    fn lex_number(&mut self, line: u32) -> CResult<Token> {
        self.reject_float(line)?;
        let start = self.pos;
        let radix: u32 = if self.peek_byte(0) == b'0' && matches!(self.peek_byte(1), b'x' | b'X') {
            self.pos += 2;
            16
        } else if self.peek_byte(0) == b'0' {
            8
        } else {
            10
        };
        let digits_start = self.pos;
        // Like libdtrace's lexer: digits (hex digits after 0x), then an integer suffix; whatever
        // follows is the next token (`10ms` is `10` and `ms`).
        while if radix == 16 {
            self.peek_byte(0).is_ascii_hexdigit()
        } else {
            self.peek_byte(0).is_ascii_digit()
        } {
            self.pos += 1;
        }
        let digits_end = self.pos;
        while b"uUlL".contains(&self.peek_byte(0)) {
            self.pos += 1;
        }
        let text = String::from_utf8_lossy(&self.src[start..self.pos]).to_string();
        let digits = &self.src[digits_start..digits_end];
        let mut unsigned = false;
        let mut longs = 0u8;
        for s in &self.src[digits_end..self.pos] {
            match s {
                b'u' | b'U' => unsigned = true,
                _ => longs += 1,
            }
        }
        if longs > 2 || (radix == 16 && digits.is_empty()) {
            return err(
                "D_INT_DIGIT",
                line,
                format!("constant {} contains invalid digit", text),
            );
        }
        let mut value: u64 = 0;
        for d in digits {
            let dv = (*d as char).to_digit(16).filter(|v| *v < radix);
            let Some(dv) = dv else {
                return err(
                    "D_INT_DIGIT",
                    line,
                    format!("constant {} contains invalid digit {}", text, *d as char),
                );
            };
            value = match value
                .checked_mul(u64::from(radix))
                .and_then(|v| v.checked_add(u64::from(dv)))
            {
                Some(v) => v,
                None => {
                    return err(
                        "D_INT_OFLOW",
                        line,
                        format!("constant {} results in integer overflow", text),
                    )
                }
            };
        }
        Ok(Token {
            kind: TokKind::Int(IntLit {
                value,
                unsigned,
                longs,
                decimal: radix == 10,
            }),
            line,
            text,
        })
    }

    /// Lexes the body of a quoted literal (the opening quote is consumed), handling escapes.
    fn lex_quoted(&mut self, quote: u8, line: u32) -> CResult<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                let what = if quote == b'"' {
                    "string"
                } else {
                    "character constant"
                };
                return err("D_SYNTAX", line, format!("unterminated {}", what));
            };
            self.pos += 1;
            if c == quote {
                return Ok(out);
            }
            if c == b'\n' {
                let what = if quote == b'"' {
                    "string"
                } else {
                    "character constant"
                };
                return err("D_SYNTAX", line, format!("newline encountered in {}", what));
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let Some(&e) = self.src.get(self.pos) else {
                continue;
            };
            self.pos += 1;
            let v = match e {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'a' => 7,
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                b'\\' => b'\\',
                b'\'' => b'\'',
                b'"' => b'"',
                b'?' => b'?',
                b'\n' => {
                    self.line += 1;
                    continue;
                }
                b'0'..=b'7' => {
                    let mut v = u32::from(e - b'0');
                    for _ in 0..2 {
                        match self.src.get(self.pos) {
                            Some(&d) if (b'0'..=b'7').contains(&d) => {
                                v = v * 8 + u32::from(d - b'0');
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                    v as u8
                }
                b'x' => {
                    let mut v = 0u32;
                    let mut n = 0;
                    while let Some(d) = self
                        .src
                        .get(self.pos)
                        .and_then(|d| (*d as char).to_digit(16))
                    {
                        v = (v * 16 + d) & 0xff;
                        self.pos += 1;
                        n += 1;
                    }
                    if n == 0 {
                        return err("D_STR_ESC", line, "\\x used with no following hex digits");
                    }
                    v as u8
                }
                other => other,
            };
            out.push(v);
        }
    }
}

/// A sink for lexers that must not see pragmas (macro values).
pub struct NoPragmas;

impl PragmaSink for NoPragmas {
    fn pragma(&mut self, line: u32, _words: &[String]) -> CResult<()> {
        Err(CompileError::new(
            "D_SYNTAX",
            line,
            "unexpected control line",
        ))
    }
}

/// Splits a control line into words; a double-quoted string is one word (quotes kept).
fn split_control_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    for ch in text.chars() {
        if in_q {
            cur.push(ch);
            if ch == '"' {
                in_q = false;
            }
        } else if ch == '"' {
            in_q = true;
            cur.push(ch);
        } else if ch.is_whitespace() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(ch);
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<(u32, Vec<String>)>);
    impl PragmaSink for Collect {
        fn pragma(&mut self, line: u32, words: &[String]) -> CResult<()> {
            self.0.push((line, words.to_vec()));
            Ok(())
        }
    }

    fn kinds(src: &str) -> Vec<TokKind> {
        let env = MacroEnv::default();
        let mut lx = Lexer::new(src, &env);
        let mut sink = Collect(Vec::new());
        let mut v = Vec::new();
        loop {
            let t = lx.next_token(&mut sink).unwrap();
            if t.kind == TokKind::Eof {
                return v;
            }
            v.push(t.kind);
        }
    }

    #[test]
    fn integers_and_suffixes() {
        let k = kinds("0x10 010 42UL 'a'");
        assert_eq!(
            k[0],
            TokKind::Int(IntLit {
                value: 16,
                unsigned: false,
                longs: 0,
                decimal: false
            })
        );
        assert_eq!(
            k[1],
            TokKind::Int(IntLit {
                value: 8,
                unsigned: false,
                longs: 0,
                decimal: false
            })
        );
        assert_eq!(
            k[2],
            TokKind::Int(IntLit {
                value: 42,
                unsigned: true,
                longs: 1,
                decimal: true
            })
        );
        assert_eq!(
            k[3],
            TokKind::Int(IntLit {
                value: 97,
                unsigned: false,
                longs: 0,
                decimal: true
            })
        );
    }

    #[test]
    fn invalid_octal_digit() {
        let env = MacroEnv::default();
        let mut lx = Lexer::new("0128", &env);
        let e = lx.next_token(&mut NoPragmas).unwrap_err();
        assert_eq!(e.tag, "D_INT_DIGIT");
        assert_eq!(e.message, "constant 0128 contains invalid digit 8");
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            kinds(r#""a\n\x41\101\"""#),
            vec![TokKind::Str(b"a\nAA\"".to_vec())]
        );
    }

    #[test]
    fn longest_punctuator_and_endpred() {
        let k = kinds("a <<= b / {");
        assert_eq!(k[1], TokKind::Punct("<<="));
        assert_eq!(k[3], TokKind::EndPred);
    }

    #[test]
    fn pragma_goes_to_sink_in_order() {
        let env = MacroEnv::default();
        let mut lx = Lexer::new("#pragma D option quiet\nBEGIN\n", &env);
        let mut sink = Collect(Vec::new());
        let t = lx.next_token(&mut sink).unwrap();
        assert_eq!(t.line, 2);
        assert_eq!(
            sink.0,
            vec![(1, vec!["option".to_string(), "quiet".to_string()])]
        );
    }

    #[test]
    fn probe_spec_with_macro() {
        let env = MacroEnv {
            args: vec!["x.d".into(), "5".into()],
            ..Default::default()
        };
        let mut lx = Lexer::new("tick-$1s {", &env);
        let t = lx
            .try_probe_spec(&mut NoPragmas, &|_| false)
            .unwrap()
            .unwrap();
        assert_eq!(t.kind, TokKind::ProbeSpec("tick-5s".into()));
        let env2 = MacroEnv::default();
        let mut lx2 = Lexer::new("int x;", &env2);
        assert!(lx2
            .try_probe_spec(&mut NoPragmas, &|_| false)
            .unwrap()
            .is_none());
    }

    #[test]
    fn macro_args_become_tokens() {
        let env = MacroEnv {
            args: vec!["x.d".into(), "12".into(), "\"s\"".into()],
            ..Default::default()
        };
        let mut lx = Lexer::new("$1 $2 $$1 $3", &env);
        let mut s = NoPragmas;
        assert!(matches!(
            lx.next_token(&mut s).unwrap().kind,
            TokKind::Int(IntLit { value: 12, .. })
        ));
        assert_eq!(
            lx.next_token(&mut s).unwrap().kind,
            TokKind::Str(b"s".to_vec())
        );
        assert_eq!(
            lx.next_token(&mut s).unwrap().kind,
            TokKind::Str(b"12".to_vec())
        );
        assert_eq!(lx.next_token(&mut s).unwrap_err().tag, "D_MACRO_UNDEF");
    }

    #[test]
    fn unbalanced_parens() {
        let env = MacroEnv::default();
        let mut lx = Lexer::new("a))", &env);
        let mut s = NoPragmas;
        lx.next_token(&mut s).unwrap();
        let e = lx.next_token(&mut s).unwrap_err();
        assert_eq!(e.message, "extra ) in input stream");
    }

    #[test]
    fn eof_in_comment() {
        let env = MacroEnv::default();
        let mut lx = Lexer::new("/* never closed\n", &env);
        assert_eq!(
            lx.next_token(&mut NoPragmas).unwrap_err().message,
            "end-of-file encountered before matching */"
        );
    }
}
