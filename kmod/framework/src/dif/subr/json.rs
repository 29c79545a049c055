//! `json(text, selector)`: the value at a path such as `"a.b[2].c"` in a
//! JSON document, as a string (objects and arrays are returned as their
//! text, strings without quotes and with escapes kept), or NULL when the
//! path is absent or the document malformed. Probe context; a single pass
//! over the text with no recursion.

use super::super::memory::Machine;
use super::super::Fault;
use super::strings::strtoll;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Rest,
    Object,
    String,
    StringEscape,
    StringEscapeUnicode,
    Colon,
    Comma,
    Identifier,
    Number,
    NumberFrac,
    NumberExp,
    Value,
    CollectObject,
}

/// Scratch output cursor.
struct Out {
    base: u64,
    len: u64,
}

impl Out {
    fn put(&mut self, m: &mut Machine<'_, '_>, c: u8) -> Result<(), Fault> {
        m.write(self.base.wrapping_add(self.len), &[c])?;
        self.len += 1;
        Ok(())
    }
    /// NUL-terminate and restart.
    fn terminate(&mut self, m: &mut Machine<'_, '_>) -> Result<(), Fault> {
        m.write(self.base.wrapping_add(self.len), &[0])?;
        self.len = 0;
        Ok(())
    }
}

/// Compare the NUL-terminated strings at `a` and `b`.
fn str_eq(m: &Machine<'_, '_>, a: u64, b: u64, limit: u64) -> Result<bool, Fault> {
    Ok(super::strings::compare(m, a, b, limit)? == 0)
}

pub(crate) fn json(m: &mut Machine<'_, '_>, text: u64, selector: u64) -> Result<u64, Fault> {
    let size = m.ctx.strsize.max(1);
    let text_len = m.strlen(false, text, size)?;
    let sel_len = m.strlen(false, selector, size)?;
    let mark = m.ctx.scratch.used();
    let dest = m.scratch_alloc(text_len + 1 + sel_len + 1)?;
    let result = run(m, text, text_len, selector, sel_len, dest, size);
    match result {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => {
            m.ctx.scratch.shrink_to(mark);
            Ok(0)
        }
        Err(f) => Err(f),
    }
}

fn run(
    m: &mut Machine<'_, '_>,
    text: u64,
    text_len: u64,
    selector: u64,
    sel_len: u64,
    dest: u64,
    size: u64,
) -> Result<Option<u64>, Fault> {
    // Pack the selector into NUL-separated elements after the output area.
    let elems = dest + text_len + 1;
    let mut nelems: u32 = 1;
    let mut w = 0u64;
    for k in 0..sel_len {
        let mut c = m.byte(selector.wrapping_add(k))?;
        if k == 0 && c == b'[' {
            continue;
        }
        if c == b']' {
            continue;
        }
        if c == b'.' || c == b'[' {
            nelems += 1;
            c = 0;
        }
        m.write(elems + w, &[c])?;
        w += 1;
    }
    m.write(elems + w, &[0])?;

    let mut elem = elems;
    let mut out = Out { base: dest, len: 0 };
    let mut state = State::Rest;
    let mut array_elem: i64 = i64::MIN;
    let mut array_pos: i64 = 0;
    let mut unicode_digits = 0u8;
    let mut string_is_key = false;
    let mut collecting = false;
    let mut found_key = false;
    let mut in_array = false;
    let (mut braces, mut brackets) = (0u32, 0u32);

    let mut cur = 0u64;
    while cur < text_len {
        let c = m.byte(text.wrapping_add(cur))?;
        cur += 1;
        if c == 0 {
            return Ok(None);
        }
        match state {
            State::Rest => {
                if c.is_ascii_whitespace() {
                    continue;
                }
                if c == b'{' {
                    state = State::Object;
                } else if c == b'[' {
                    in_array = true;
                    array_pos = 0;
                    array_elem = strtoll(m, elem, 10, size)? as i64;
                    found_key = array_elem == 0;
                    state = State::Value;
                } else {
                    return Ok(None);
                }
            }
            State::Object => {
                if c.is_ascii_whitespace() {
                    continue;
                }
                if c != b'"' {
                    return Ok(None);
                }
                state = State::String;
                string_is_key = true;
            }
            State::String => {
                if c == b'\\' {
                    out.put(m, c)?;
                    state = State::StringEscape;
                } else if c == b'"' {
                    if collecting {
                        out.put(m, c)?;
                        collecting = false;
                        state = State::CollectObject;
                        continue;
                    }
                    out.terminate(m)?;
                    if string_is_key {
                        if str_eq(m, dest, elem, size)? {
                            found_key = true;
                        }
                    } else if found_key {
                        return Ok(if nelems > 1 { None } else { Some(dest) });
                    }
                    state = if string_is_key {
                        State::Colon
                    } else {
                        State::Comma
                    };
                    string_is_key = false;
                } else {
                    out.put(m, c)?;
                }
            }
            State::StringEscape => {
                out.put(m, c)?;
                if c == b'u' {
                    unicode_digits = 0;
                    state = State::StringEscapeUnicode;
                } else {
                    state = State::String;
                }
            }
            State::StringEscapeUnicode => {
                if !c.is_ascii_hexdigit() {
                    return Ok(None);
                }
                out.put(m, c)?;
                unicode_digits += 1;
                if unicode_digits == 4 {
                    state = State::String;
                }
            }
            State::Colon => {
                if c.is_ascii_whitespace() {
                    continue;
                }
                if c != b':' {
                    return Ok(None);
                }
                state = State::Value;
            }
            State::Comma => {
                if c.is_ascii_whitespace() {
                    continue;
                }
                if c != b',' {
                    return Ok(None);
                }
                if in_array {
                    state = State::Value;
                    array_pos += 1;
                    if array_pos == array_elem {
                        found_key = true;
                    }
                } else {
                    state = State::Object;
                }
            }
            State::Identifier => {
                if c.is_ascii_lowercase() {
                    out.put(m, c)?;
                    continue;
                }
                out.terminate(m)?;
                let known = [&b"true"[..], b"false", b"null"];
                let mut is_known = false;
                for word in known {
                    if bytes_eq(m, dest, word)? {
                        is_known = true;
                    }
                }
                if !is_known {
                    return Ok(None);
                }
                if found_key {
                    return Ok(if nelems > 1 { None } else { Some(dest) });
                }
                cur -= 1; // look at this character again
                state = State::Comma;
            }
            State::Number | State::NumberFrac | State::NumberExp => {
                if state == State::Number {
                    if c == b'.' {
                        out.put(m, c)?;
                        state = State::NumberFrac;
                        continue;
                    }
                    if c == b'x' || c == b'X' {
                        return Ok(None);
                    }
                }
                if state != State::NumberExp {
                    if c == b'e' || c == b'E' {
                        out.put(m, c)?;
                        state = State::NumberExp;
                        continue;
                    }
                    if c == b'+' || c == b'-' {
                        return Ok(None);
                    }
                }
                if c.is_ascii_digit() || c == b'+' || c == b'-' {
                    out.put(m, c)?;
                    continue;
                }
                out.terminate(m)?;
                if found_key {
                    return Ok(if nelems > 1 { None } else { Some(dest) });
                }
                cur -= 1;
                state = State::Comma;
            }
            State::Value => {
                if c.is_ascii_whitespace() {
                    continue;
                }
                if c == b'{' || c == b'[' {
                    if nelems > 1 && found_key {
                        // Descend: move to the next selector element.
                        in_array = c == b'[';
                        let rest = m.strlen(false, elem, size)?;
                        elem = elem + rest + 1;
                        nelems -= 1;
                        out.len = 0;
                        if in_array {
                            state = State::Value;
                            array_pos = 0;
                            array_elem = strtoll(m, elem, 10, size)? as i64;
                            found_key = array_elem == 0;
                        } else {
                            found_key = false;
                            state = State::Object;
                        }
                        continue;
                    }
                    if c == b'[' {
                        brackets = 1;
                    } else {
                        braces = 1;
                    }
                    out.put(m, c)?;
                    state = State::CollectObject;
                } else if c == b'"' {
                    state = State::String;
                } else if c.is_ascii_lowercase() {
                    out.put(m, c)?;
                    state = State::Identifier;
                } else if c == b'-' || c.is_ascii_digit() {
                    out.put(m, c)?;
                    state = State::Number;
                } else {
                    return Ok(None);
                }
            }
            State::CollectObject => {
                out.put(m, c)?;
                match c {
                    b'"' => {
                        collecting = true;
                        state = State::String;
                        continue;
                    }
                    b']' => {
                        if brackets == 0 {
                            return Ok(None);
                        }
                        brackets -= 1;
                    }
                    b'}' => {
                        if braces == 0 {
                            return Ok(None);
                        }
                        braces -= 1;
                    }
                    b'{' => braces += 1,
                    b'[' => brackets += 1,
                    _ => {}
                }
                if brackets == 0 && braces == 0 {
                    if found_key {
                        out.terminate(m)?;
                        return Ok(Some(dest));
                    }
                    out.len = 0;
                    state = State::Comma;
                }
            }
        }
    }
    Ok(None)
}

/// Whether the NUL-terminated string at `a` equals `word`.
fn bytes_eq(m: &Machine<'_, '_>, a: u64, word: &[u8]) -> Result<bool, Fault> {
    for (i, &w) in word.iter().enumerate() {
        if m.byte(a.wrapping_add(i as u64))? != w {
            return Ok(false);
        }
    }
    Ok(m.byte(a.wrapping_add(word.len() as u64))? == 0)
}
