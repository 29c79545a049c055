//! `inet_ntop`, `inet_ntoa`, `inet_ntoa6` (probe context). Addresses are
//! read through the fault-checked loads; the text goes to scratch.

use super::super::abi::{subr as s, FaultCode, AF_INET, AF_INET6};
use super::super::memory::{fault, Machine};
use super::super::Fault;
use super::strings::Digits;

/// `INET6_ADDRSTRLEN`: the scratch reserved for one address.
const ADDR_TEXT: u64 = 46;

pub(crate) fn inet(m: &mut Machine<'_, '_>, id: u16, a0: u64, a1: u64) -> Result<u64, Fault> {
    let (af, addr) = match id {
        s::INET_NTOP => (a0, a1),
        s::INET_NTOA => (AF_INET, a0),
        _ => (AF_INET6, a0),
    };
    let mut text = Text::new();
    if af == AF_INET {
        let mut b = [0u8; 4];
        m.load(addr, &mut b)?;
        format_v4(&mut text, &b);
    } else if af == AF_INET6 {
        let mut b = [0u8; 16];
        m.load(addr, &mut b)?;
        format_v6(&mut text, &b, id == s::INET_NTOA6);
    } else {
        return Err(fault(FaultCode::IllOp, 0));
    }
    let dst = m.scratch_alloc(ADDR_TEXT)?;
    m.write(dst, text.as_bytes())?;
    Ok(dst)
}

/// A fixed 48-byte text buffer.
pub(crate) struct Text {
    buf: [u8; 48],
    len: usize,
}

impl Text {
    pub(crate) fn new() -> Self {
        Text {
            buf: [0; 48],
            len: 0,
        }
    }
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }
    fn push_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

fn push_decimal(t: &mut Text, v: u8) {
    let mut d = Digits::default_empty();
    let mut v = v;
    loop {
        d.prepend(b'0' + v % 10);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    t.push_all(d.as_bytes());
}

fn push_hex(t: &mut Text, v: u16) {
    let mut d = Digits::default_empty();
    let mut v = v;
    loop {
        let x = (v % 16) as u8;
        d.prepend(if x < 10 { b'0' + x } else { b'a' + x - 10 });
        v /= 16;
        if v == 0 {
            break;
        }
    }
    t.push_all(d.as_bytes());
}

/// Dotted quad of the 4 bytes in memory (network) order.
pub(crate) fn format_v4(t: &mut Text, b: &[u8]) {
    for (i, &octet) in b.iter().take(4).enumerate() {
        if i > 0 {
            t.push(b'.');
        }
        push_decimal(t, octet);
    }
}

/// RFC 1884 text as DTrace prints it: lower-case hex groups, one run of
/// zero groups compressed to "::", IPv4-mapped and -compatible addresses
/// with the dotted quad at the end; `v4_only` (inet_ntoa6) prints just the
/// dotted quad for those two forms.
///
/// The zero run is chosen the way the C implementation scans bytes, quirks
/// included (so output matches byte for byte): a single zero group is
/// compressed, the first of equally long runs normally wins, but a later
/// equal run wins when it is ended by a group whose high byte is zero.
pub(crate) fn format_v6(t: &mut Text, b: &[u8; 16], v4_only: bool) {
    let byte = |i: usize| b.get(i).copied().unwrap_or(0);
    let first10_zero = b.iter().take(10).all(|&x| x == 0);
    let mapped = first10_zero && byte(10) == 0xff && byte(11) == 0xff;
    let tail = u32::from_be_bytes([byte(12), byte(13), byte(14), byte(15)]);
    let compat = first10_zero && byte(10) == 0 && byte(11) == 0 && tail > 1;
    let embedded = mapped || compat;
    if embedded && v4_only {
        format_v4(t, b.get(12..16).unwrap_or(&[]));
        return;
    }
    // Byte-level scan for the zero run: (first byte, length in bytes).
    let (mut first_zero, mut num_zero): (i32, i32) = (-1, 1);
    let mut try_zero: i32 = -1;
    for i in 0..16i32 {
        let v = byte(i as usize);
        if v == 0 && try_zero == -1 && i % 2 == 0 {
            try_zero = i;
            continue;
        }
        if try_zero != -1 && (v != 0 || i == 15) {
            if i - try_zero <= num_zero {
                try_zero = -1;
                continue;
            }
            first_zero = try_zero;
            num_zero = i - i % 2 - try_zero;
            try_zero = -1;
            if v == 0 && i == 15 {
                num_zero += 2;
            }
        }
    }
    // Walk the groups backwards as the C code does, collecting pieces, then
    // emit them in forward order.
    let v6_end: i32 = if embedded { 10 } else { 14 };
    let mut pieces: [(u8, u16); 16] = [(0, 0); 16]; // (kind, value): 0 hex, 1 ':', 2 "::"
    let mut n = 0usize;
    let mut push = |kind: u8, value: u16| {
        if let Some(slot) = pieces.get_mut(n) {
            *slot = (kind, value);
            n += 1;
        }
    };
    let mut i = v6_end;
    while i >= 0 {
        if i == first_zero + num_zero - 2 {
            push(2, 0);
            i -= num_zero - 2;
            i -= 2;
            continue;
        }
        if i < 14 && i != first_zero - 2 {
            push(1, 0);
        }
        let hi = byte(i as usize);
        let lo = byte(i as usize + 1);
        push(0, u16::from_be_bytes([hi, lo]));
        i -= 2;
    }
    for &(kind, value) in pieces.iter().take(n).rev() {
        match kind {
            0 => push_hex(t, value),
            1 => t.push(b':'),
            _ => t.push_all(b"::"),
        }
    }
    if embedded {
        format_v4(t, b.get(12..16).unwrap_or(&[]));
    }
}
