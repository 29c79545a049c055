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

/// RFC 1884 text: lower-case hex groups, the first longest run of zero
/// groups compressed to "::", IPv4-mapped and -compatible addresses with
/// the dotted quad at the end. `v4_only` (inet_ntoa6) prints just the
/// dotted quad for those two forms.
pub(crate) fn format_v6(t: &mut Text, b: &[u8; 16], v4_only: bool) {
    let first10_zero = b.iter().take(10).all(|&x| x == 0);
    let mapped = first10_zero && b[10] == 0xff && b[11] == 0xff;
    let tail = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
    let compat = first10_zero && b[10] == 0 && b[11] == 0 && tail > 1;
    let embedded = mapped || compat;
    if embedded && v4_only {
        format_v4(t, &b[12..16]);
        return;
    }
    let ngroups = if embedded { 6 } else { 8 };
    let mut groups = [0u16; 8];
    for (g, pair) in groups.iter_mut().zip(b.chunks_exact(2)) {
        if let [hi, lo] = pair {
            *g = u16::from_be_bytes([*hi, *lo]);
        }
    }
    let zero_at = |i: usize| groups.get(i).is_some_and(|g| *g == 0);
    // First longest run of zero groups.
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < ngroups {
        if zero_at(i) {
            let start = i;
            while i < ngroups && zero_at(i) {
                i += 1;
            }
            if i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let mut g = 0;
    while g < ngroups {
        if best_len > 0 && g == best_start {
            t.push_all(b"::");
            g += best_len;
            continue;
        }
        if g > 0 && !(best_len > 0 && g == best_start + best_len) {
            t.push(b':');
        }
        push_hex(t, groups.get(g).copied().unwrap_or(0));
        g += 1;
    }
    if embedded {
        if !(best_len > 0 && best_start + best_len == ngroups) {
            t.push(b':');
        }
        format_v4(t, &b[12..16]);
    }
}
