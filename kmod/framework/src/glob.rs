//! Shell-style glob matching for probe descriptions (`PROBEMATCH`, enablings):
//! `*`, `?`, `[...]` (with `!`/`^` negation and ranges) and `\` escapes, as
//! DTrace's probe-key matcher applies them to each of the four name fields.
//!
//! Probe context: no (but allocation-free and panic-free).

/// Whether `pat` contains glob metacharacters (otherwise it is matched exactly).
pub fn is_glob(pat: &str) -> bool {
    pat.bytes().any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
}

/// Whether a pattern is syntactically valid (every `[` closed, no trailing `\`).
pub fn is_valid(pat: &str) -> bool {
    let p = pat.as_bytes();
    let mut i = 0usize;
    while let Some(&c) = p.get(i) {
        match c {
            b'\\' => {
                if p.get(i + 1).is_none() {
                    return false;
                }
                i += 2;
            }
            b'[' => match class_end(p, i) {
                Some(end) => i = end + 1,
                None => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// Index of the `]` closing the class that starts at `start` (`p[start] == '['`).
fn class_end(p: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if matches!(p.get(i), Some(b'!') | Some(b'^')) {
        i += 1;
    }
    // A `]` right at the start of the class is a literal.
    if p.get(i) == Some(&b']') {
        i += 1;
    }
    while let Some(&c) = p.get(i) {
        if c == b']' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Whether byte `c` is in the class `p[start..=end]`.
fn class_matches(p: &[u8], start: usize, end: usize, c: u8) -> bool {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    while i < end {
        let Some(&lo) = p.get(i) else { break };
        if lo == b']' && !first {
            break;
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && i + 2 < end {
            let hi = p.get(i + 2).copied().unwrap_or(lo);
            if lo <= c && c <= hi {
                found = true;
            }
            i += 3;
        } else {
            if lo == c {
                found = true;
            }
            i += 1;
        }
    }
    found != negate
}

/// Glob-matches `s` against `pat` (iterative, with single-star backtracking,
/// so the cost is bounded by `len(s) * len(pat)`).
pub fn matches(pat: &str, s: &str) -> bool {
    let p = pat.as_bytes();
    let s = s.as_bytes();
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(&pc) = p.get(pi) {
            match pc {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    if si < s.len() {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                b'[' => {
                    if let (Some(end), Some(&c)) = (class_end(p, pi), s.get(si)) {
                        if class_matches(p, pi, end, c) {
                            pi = end + 1;
                            si += 1;
                            continue;
                        }
                    }
                }
                b'\\' => {
                    if let (Some(&lit), Some(&c)) = (p.get(pi + 1), s.get(si)) {
                        if lit == c {
                            pi += 2;
                            si += 1;
                            continue;
                        }
                    }
                }
                lit => {
                    if s.get(si) == Some(&lit) {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
            }
        } else if si == s.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more byte, if there is one.
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp + 1;
                si = ss + 1;
            }
            _ => return false,
        }
    }
}

/// DTrace's per-field rule: an empty pattern matches anything, a pattern without
/// metacharacters must match exactly, otherwise glob matching.
pub fn field_matches(pat: &str, s: &str) -> bool {
    if pat.is_empty() {
        true
    } else if is_glob(pat) {
        matches(pat, s)
    } else {
        pat == s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("*", "anything"));
        assert!(matches("BEG*", "BEGIN"));
        assert!(!matches("BEG*", "END"));
        assert!(matches("s?s_*", "sys_read"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[!a-c]x", "bx"));
        assert!(matches("a\\*b", "a*b"));
        assert!(!matches("a\\*b", "axb"));
        assert!(matches("*read*", "sys_pread64"));
        assert!(!matches("*read", "reader"));
        assert!(field_matches("", "x"));
        assert!(!field_matches("foo", "foobar"));
        assert!(!is_valid("[abc"));
        assert!(!is_valid("abc\\"));
        assert!(is_valid("a[]]b"));
    }
}
