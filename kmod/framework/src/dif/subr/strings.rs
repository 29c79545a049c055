//! String subroutines: strlen, strjoin, lltostr, strtoll, basename, dirname,
//! cleanpath, strchr, strrchr, strstr, index, rindex, strtok, substr,
//! toupper, tolower — and the string comparison behind `SCMP`. Probe
//! context; results are built in scratch (at most `strsize` bytes).

use super::super::abi::{subr as s, FaultCode};
use super::super::memory::{fault, Machine};
use super::super::vm::Regs;
use super::super::Fault;
use super::arg;

/// Compare two D strings (NULL reads as ""), at most `limit` bytes:
/// negative, zero or positive like `strncmp`.
pub(crate) fn compare(m: &Machine<'_, '_>, a: u64, b: u64, limit: u64) -> Result<i32, Fault> {
    if a == b {
        return Ok(0);
    }
    let mut i = 0u64;
    while i < limit {
        let c1 = if a == 0 {
            0
        } else {
            m.byte(a.wrapping_add(i))?
        };
        let c2 = if b == 0 {
            0
        } else {
            m.byte(b.wrapping_add(i))?
        };
        if c1 != c2 {
            return Ok(i32::from(c1) - i32::from(c2));
        }
        if c1 == 0 {
            return Ok(0);
        }
        i += 1;
    }
    Ok(0)
}

pub(crate) fn call(
    m: &mut Machine<'_, '_>,
    id: u16,
    regs: &Regs,
    nargs: usize,
) -> Result<u64, Fault> {
    let size = m.ctx.strsize.max(1);
    let a0 = arg(regs, 0);
    let a1 = arg(regs, 1);
    let a2 = arg(regs, 2);
    match id {
        s::STRLEN => m.strlen(false, a0, size),
        s::STRCHR | s::STRRCHR => {
            let lim = m.strlen(false, a0, size)?.saturating_add(1).min(size);
            let target = a1 as u8;
            let mut found = 0u64;
            for i in 0..lim {
                let c = m.byte(a0.wrapping_add(i))?;
                if c == target {
                    found = a0.wrapping_add(i);
                    if id == s::STRCHR {
                        break;
                    }
                }
                if c == 0 {
                    break;
                }
            }
            Ok(found)
        }
        s::STRSTR | s::INDEX | s::RINDEX => search(m, id, a0, a1, a2, nargs == 3, size),
        s::STRTOK => strtok(m, a0, a1, size),
        s::SUBSTR => substr(m, a0, a1 as i64, a2 as i64, nargs > 2, size),
        s::STRJOIN => {
            let mut b = m.builder()?;
            let l1 = m.strlen(false, a0, size)?;
            let l2 = m.strlen(false, a1, size)?;
            if l1.saturating_add(l2) >= size {
                // The joined string (with its NUL) does not fit in strsize.
                return Err(fault(FaultCode::NoScratch, 0));
            }
            b.push_str(m, a0, l1)?;
            b.push_str(m, a1, l2)?;
            Ok(b.finish(m))
        }
        s::LLTOSTR => {
            let base = if nargs > 1 { a1 } else { 10 };
            if !(2..=36).contains(&base) {
                return Err(fault(FaultCode::IllOp, 0));
            }
            let text = lltostr(a0 as i64, base);
            let addr = m.scratch_alloc(66)?;
            m.write(addr, text.as_bytes())?;
            Ok(addr)
        }
        s::STRTOLL => {
            let base = if nargs > 1 { a1 } else { 10 };
            if !(2..=36).contains(&base) {
                return Err(fault(FaultCode::IllOp, 0));
            }
            let lim = m.strlen(false, a0, size)?;
            strtoll(m, a0, base, lim)
        }
        s::TOUPPER | s::TOLOWER => {
            let len = m.strlen(false, a0, size)?;
            let mut b = m.builder()?;
            for i in 0..len {
                let c = m.byte(a0.wrapping_add(i))?;
                let c = if id == s::TOUPPER {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
                if !b.push(m, c)? {
                    break;
                }
            }
            Ok(b.finish(m))
        }
        s::BASENAME | s::DIRNAME => path_part(m, a0, id == s::DIRNAME, size),
        s::CLEANPATH => cleanpath(m, a0, size),
        _ => Err(fault(FaultCode::IllOp, 0)),
    }
}

/// A small fixed-capacity text buffer for number formatting (no allocation).
pub(crate) struct Digits {
    buf: [u8; 72],
    start: usize,
}

impl Digits {
    /// An empty buffer.
    pub(crate) fn default_empty() -> Self {
        Digits::new()
    }
    fn new() -> Self {
        Digits {
            buf: [0; 72],
            start: 72,
        }
    }
    /// Prepend one byte (silently ignored when full).
    pub(crate) fn prepend(&mut self, b: u8) {
        if self.start > 0 {
            self.start -= 1;
            if let Some(slot) = self.buf.get_mut(self.start) {
                *slot = b;
            }
        }
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }
}

/// `lltostr(value, base)` text: base-10 negatives get '-', base 8 gets a
/// leading 0, base 16 a leading 0x; other bases print the two's-complement
/// value unsigned.
pub(crate) fn lltostr(value: i64, base: u64) -> Digits {
    let mut d = Digits::new();
    let mut v = if base == 10 && value < 0 {
        value.unsigned_abs()
    } else {
        value as u64
    };
    while v != 0 {
        let digit = (v % base) as u8;
        d.prepend(if digit < 10 {
            b'0' + digit
        } else {
            b'a' + digit - 10
        });
        v /= base;
    }
    if value == 0 && base == 16 {
        d.prepend(b'0');
    }
    if base == 16 {
        d.prepend(b'x');
    }
    if value == 0 || base == 8 || base == 16 {
        d.prepend(b'0');
    }
    if value < 0 && base == 10 {
        d.prepend(b'-');
    }
    d
}

fn digit_value(c: u8) -> Option<u64> {
    match c {
        b'0'..=b'9' => Some(u64::from(c - b'0')),
        b'a'..=b'z' => Some(u64::from(c - b'a') + 10),
        b'A'..=b'Z' => Some(u64::from(c - b'A') + 10),
        _ => None,
    }
}

/// `strtoll(s, base)`: optional blanks, sign and (base 16) `0x` prefix, then
/// digits until the first that is not valid in `base`; at most `lim` bytes.
pub(crate) fn strtoll(m: &Machine<'_, '_>, s: u64, base: u64, lim: u64) -> Result<u64, Fault> {
    let at = |i: u64| -> Result<u8, Fault> {
        if i >= lim {
            Ok(0)
        } else {
            m.byte(s.wrapping_add(i))
        }
    };
    let mut pos = 0u64;
    while matches!(at(pos)?, b' ' | b'\t') {
        pos += 1;
    }
    let mut neg = false;
    let c = at(pos)?;
    if c == b'-' || c == b'+' {
        neg = c == b'-';
        pos += 1;
    }
    if base == 16
        && at(pos)? == b'0'
        && matches!(at(pos + 1)?, b'x' | b'X')
        && at(pos + 2)?.is_ascii_hexdigit()
    {
        pos += 2;
    }
    let mut val: u64 = 0;
    while pos < lim {
        let Some(d) = digit_value(at(pos)?).filter(|d| *d < base) else {
            break;
        };
        val = val.wrapping_mul(base).wrapping_add(d);
        pos += 1;
    }
    Ok(if neg { val.wrapping_neg() } else { val })
}

/// strstr / index / rindex (Perl-style positions; see the D guide).
fn search(
    m: &mut Machine<'_, '_>,
    id: u16,
    hay: u64,
    needle: u64,
    pos_arg: u64,
    has_pos: bool,
    size: u64,
) -> Result<u64, Fault> {
    let len = m.strlen(false, hay, size)? as i64;
    let sublen = m.strlen(false, needle, size)?;
    let notfound: u64 = if id == s::STRSTR { 0 } else { u64::MAX };
    if sublen == 0 && len == 0 {
        return Ok(if id == s::STRSTR { hay } else { 0 });
    }
    let (mut pos, end, step): (i64, i64, i64) = if id == s::RINDEX {
        (len, -1, -1)
    } else {
        (0, len, 1)
    };
    if id != s::STRSTR && has_pos {
        let p = pos_arg as i64;
        if id == s::RINDEX {
            if p < 0 {
                return Ok(if sublen == 0 { 0 } else { notfound });
            }
            pos = p.min(len);
        } else {
            let p = p.max(0);
            if p >= len {
                return Ok(if sublen == 0 { len as u64 } else { notfound });
            }
            pos = p;
        }
    }
    while pos != end {
        let at = hay.wrapping_add(pos as u64);
        if prefix_eq(m, at, needle, sublen)? {
            return Ok(if id == s::STRSTR { at } else { pos as u64 });
        }
        pos += step;
    }
    Ok(notfound)
}

/// Whether the `n` bytes at `a` equal those at `b` (stopping at a shared NUL).
fn prefix_eq(m: &Machine<'_, '_>, a: u64, b: u64, n: u64) -> Result<bool, Fault> {
    for i in 0..n {
        let c1 = m.byte(a.wrapping_add(i))?;
        let c2 = m.byte(b.wrapping_add(i))?;
        if c1 != c2 {
            return Ok(false);
        }
        if c1 == 0 {
            break;
        }
    }
    Ok(true)
}

fn strtok(m: &mut Machine<'_, '_>, input: u64, tokens: u64, size: u64) -> Result<u64, Fault> {
    // A continuation reads the string the first call was given and checked;
    // it may live in another DIFO's string table, so (as in DTrace) the
    // privilege check is not repeated: the loads stay fault-checked.
    let visible = m.ctx.kernel_visible;
    if input == 0 {
        m.ctx.kernel_visible = true;
    }
    let result = strtok_inner(m, input, tokens, size);
    m.ctx.kernel_visible = visible;
    result
}

fn strtok_inner(m: &mut Machine<'_, '_>, input: u64, tokens: u64, size: u64) -> Result<u64, Fault> {
    let toklen = m.strlen(false, tokens, size)?;
    let mut map = [0u8; 32];
    for i in 0..toklen {
        let c = m.byte(tokens.wrapping_add(i))?;
        if let Some(slot) = map.get_mut(usize::from(c >> 3)) {
            *slot |= 1 << (c & 7);
        }
    }
    let is_tok = |c: u8| {
        map.get(usize::from(c >> 3))
            .is_some_and(|b| b & (1 << (c & 7)) != 0)
    };
    let (mut addr, limit) = if input == 0 {
        m.ctx.locals.strtok_state()
    } else {
        let lim = m.strlen(false, input, size)?;
        (input, input.wrapping_add(lim))
    };
    // Skip leading delimiters.
    let mut c = 0u8;
    while addr < limit {
        c = m.byte(addr)?;
        if c == 0 || !is_tok(c) {
            break;
        }
        addr += 1;
    }
    if addr >= limit || c == 0 {
        m.ctx.locals.set_strtok_state(0, 0);
        return Ok(0);
    }
    let mut b = m.builder()?;
    while addr < limit {
        let c = m.byte(addr)?;
        if c == 0 || is_tok(c) {
            break;
        }
        if !b.push(m, c)? {
            break;
        }
        addr += 1;
    }
    m.ctx.locals.set_strtok_state(addr, limit);
    Ok(b.finish(m))
}

fn substr(
    m: &mut Machine<'_, '_>,
    src: u64,
    index: i64,
    remaining: i64,
    has_len: bool,
    size: u64,
) -> Result<u64, Fault> {
    let len = m.strlen(false, src, size)? as i64;
    let size_i = i64::try_from(size).unwrap_or(i64::MAX);
    let mut index = index;
    let mut remaining = if has_len { remaining } else { size_i };
    if index < 0 {
        index = index.saturating_add(len);
        if index < 0 && index.saturating_add(remaining) > 0 {
            remaining = remaining.saturating_add(index);
            index = 0;
        }
    }
    if index >= len || index < 0 {
        remaining = 0;
    } else if remaining < 0 {
        remaining = remaining.saturating_add(len.saturating_sub(index));
    } else if index.saturating_add(remaining) > size_i {
        remaining = size_i.saturating_sub(index);
    }
    let mut b = m.builder()?;
    let mut i = 0i64;
    while i < remaining {
        let c = m.byte(src.wrapping_add(index.saturating_add(i) as u64))?;
        if c == 0 || !b.push(m, c)? {
            break;
        }
        i += 1;
    }
    Ok(b.finish(m))
}

/// basename()/dirname() with the usual POSIX answers ("." for "", "/" for
/// all-slashes, "." for a name without a directory).
fn path_part(m: &mut Machine<'_, '_>, src: u64, dirname: bool, size: u64) -> Result<u64, Fault> {
    let len = m.strlen(false, src, size)? as i64;
    let mut b = m.builder()?;
    if len == 0 {
        b.push(m, b'.')?;
        return Ok(b.finish(m));
    }
    let at = |m: &Machine<'_, '_>, i: i64| m.byte(src.wrapping_add(i as u64));
    let mut i = len - 1;
    while i >= 0 && at(m, i)? == b'/' {
        i -= 1;
    }
    if i < 0 {
        // Only slashes.
        b.push(m, b'/')?;
        return Ok(b.finish(m));
    }
    let last_base = i;
    while i >= 0 && at(m, i)? != b'/' {
        i -= 1;
    }
    let first_base = i + 1;
    if !dirname {
        for k in first_base..=last_base {
            let c = at(m, k)?;
            if !b.push(m, c)? {
                break;
            }
        }
        return Ok(b.finish(m));
    }
    if i < 0 {
        b.push(m, b'.')?;
        return Ok(b.finish(m));
    }
    while i >= 0 && at(m, i)? == b'/' {
        i -= 1;
    }
    let last_dir = i.max(0);
    for k in 0..=last_dir {
        let c = at(m, k)?;
        if !b.push(m, c)? {
            break;
        }
    }
    Ok(b.finish(m))
}

/// cleanpath(): collapse "//", drop "/./", resolve "/../" textually.
fn cleanpath(m: &mut Machine<'_, '_>, src: u64, size: u64) -> Result<u64, Fault> {
    let lim = m.strlen(false, src, size)?;
    let b = m.builder()?;
    let dest = b.addr;
    // Work directly on the reserved scratch bytes: j is the output length.
    let mut j: u64 = 0;
    let mut i: u64 = 0;
    let get = |m: &Machine<'_, '_>, i: &mut u64| -> Result<u8, Fault> {
        if *i >= lim {
            Ok(0)
        } else {
            let c = m.byte(src.wrapping_add(*i))?;
            *i += 1;
            Ok(c)
        }
    };
    let put = |m: &mut Machine<'_, '_>, j: &mut u64, c: u8| -> Result<(), Fault> {
        m.write(dest.wrapping_add(*j), &[c])?;
        *j += 1;
        Ok(())
    };
    let mut c = get(m, &mut i)?;
    loop {
        // Room for "/..c" plus NUL.
        if j + 5 >= size {
            break;
        }
        if c != b'/' {
            put(m, &mut j, c)?;
            if c == 0 {
                j -= 1;
                break;
            }
            c = get(m, &mut i)?;
            continue;
        }
        let c1 = get(m, &mut i)?;
        if c1 == b'/' {
            c = c1;
            continue;
        }
        if c1 != b'.' {
            put(m, &mut j, b'/')?;
            c = c1;
            continue;
        }
        let c2 = get(m, &mut i)?;
        if c2 == b'/' {
            c = c2;
            continue;
        }
        if c2 != b'.' {
            put(m, &mut j, b'/')?;
            put(m, &mut j, b'.')?;
            c = c2;
            continue;
        }
        let c3 = get(m, &mut i)?;
        if c3 != b'/' && c3 != 0 {
            put(m, &mut j, b'/')?;
            put(m, &mut j, b'.')?;
            put(m, &mut j, b'.')?;
            c = c3;
            continue;
        }
        // "/../" or "/..<end>": back up to the previous '/'.
        let had_output = j != 0;
        while j != 0 {
            j -= 1;
            if m.byte(dest.wrapping_add(j))? == b'/' {
                break;
            }
        }
        if c3 == 0 {
            // Keep the '/' (or first character) we backed up to; "/.." at
            // the very start is just "/".
            if !had_output {
                m.write(dest, b"/")?;
            }
            j += 1;
            break;
        }
        c = c3;
    }
    m.write(dest.wrapping_add(j), &[0])?;
    let mut b = b;
    b.len = j;
    Ok(b.finish(m))
}
