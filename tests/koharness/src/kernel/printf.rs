//! printf(9), panic(9) and the variadic-call shims.
//!
//! Stable Rust cannot define C-variadic functions, so each variadic KPI
//! function (`printf`, `panic`, `make_dev_s`, `snprintf`) enters through a small
//! assembly shim that spills the six integer argument registers next to the
//! caller's stack arguments and calls a Rust function with a pointer to
//! each; [`VaArgs`] then walks them in SysV order. Kernel code never passes
//! floating-point varargs, so `%al` and the vector registers are ignored.
//! The formatter implements printf(9)'s conversions: `%d %i %u %x %X %o %c
//! %s %p %%`, flags `- 0 # + space`, width and precision (also `*`), length
//! modifiers `hh h l ll q j z t`, and FreeBSD's `%b` (bit-field decode).
//! Output goes to the kernel console. Not probe context.

use std::arch::global_asm;

use super::kpanic;

/// The integer arguments of a variadic call, in SysV order.
pub struct VaArgs {
    regs: *const u64,
    stack: *const u64,
    next: usize,
}

impl VaArgs {
    /// Arguments starting after the first `fixed` ones.
    ///
    /// # Safety
    /// `regs` must point to the six spilled argument registers and `stack`
    /// to the caller's stack arguments, as the shims arrange.
    pub unsafe fn new(regs: *const u64, stack: *const u64, fixed: usize) -> VaArgs {
        VaArgs {
            regs,
            stack,
            next: fixed,
        }
    }

    /// Argument number `i` (0-based, counting the fixed ones).
    pub fn get(&self, i: usize) -> u64 {
        // SAFETY: the shim spilled 6 registers; stack arguments are read only
        // as far as the format string asks, as a C callee would.
        unsafe {
            if i < 6 {
                *self.regs.add(i)
            } else {
                *self.stack.add(i - 6)
            }
        }
    }

    /// The next variadic argument.
    pub fn next_u64(&mut self) -> u64 {
        let v = self.get(self.next);
        self.next += 1;
        v
    }
}

macro_rules! variadic_shim {
    ($shim:literal, $target:path) => {
        global_asm!(
            concat!(".globl ", $shim),
            concat!(".type ", $shim, ",@function"),
            concat!($shim, ":"),
            "push rbp",
            "mov rbp, rsp",
            "sub rsp, 48",
            "mov [rsp], rdi",
            "mov [rsp + 8], rsi",
            "mov [rsp + 16], rdx",
            "mov [rsp + 24], rcx",
            "mov [rsp + 32], r8",
            "mov [rsp + 40], r9",
            "mov rdi, rsp",
            "lea rsi, [rbp + 16]",
            "call {target}",
            "leave",
            "ret",
            target = sym $target,
        );
    };
}

variadic_shim!("koharness_printf_shim", printf_impl);
variadic_shim!("koharness_panic_shim", panic_impl);
variadic_shim!("koharness_make_dev_s_shim", make_dev_s_impl);
variadic_shim!("koharness_snprintf_shim", snprintf_impl);

extern "C" {
    fn koharness_printf_shim();
    fn koharness_panic_shim();
    fn koharness_make_dev_s_shim();
    fn koharness_snprintf_shim();
}

extern "C" fn printf_impl(regs: *const u64, stack: *const u64) -> i64 {
    // SAFETY: called only from the shim, which passes the spilled registers.
    let mut args = unsafe { VaArgs::new(regs, stack, 1) };
    let text = format_c(args.get(0), &mut args);
    super::console_write(&text);
    text.len() as i64
}

extern "C" fn panic_impl(regs: *const u64, stack: *const u64) -> i64 {
    // SAFETY: as for printf_impl.
    let mut args = unsafe { VaArgs::new(regs, stack, 1) };
    let text = format_c(args.get(0), &mut args);
    kpanic(&format!("module called panic(): {text}"));
}

extern "C" fn make_dev_s_impl(regs: *const u64, stack: *const u64) -> i64 {
    // SAFETY: as for printf_impl; make_dev_s(args, cdev, fmt, ...).
    let mut args = unsafe { VaArgs::new(regs, stack, 3) };
    let name = format_c(args.get(2), &mut args);
    i64::from(super::devfs::make_dev_s(args.get(0), args.get(1), &name))
}

extern "C" fn snprintf_impl(regs: *const u64, stack: *const u64) -> i64 {
    // SAFETY: as for printf_impl; snprintf(buf, size, fmt, ...).
    let mut args = unsafe { VaArgs::new(regs, stack, 3) };
    let (buf, size) = (args.get(0), args.get(1) as usize);
    let text = format_c(args.get(2), &mut args);
    if size > 0 && buf != 0 {
        let n = text.len().min(size - 1);
        // SAFETY: the caller provides `size` writable bytes at `buf`.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, n);
            *((buf + n as u64) as *mut u8) = 0;
        }
    }
    text.len() as i64
}

fn read_byte(p: u64) -> u8 {
    // SAFETY: format strings and %s arguments are C strings in kernel memory.
    unsafe { *(p as *const u8) }
}

/// Format a printf(9) format string at `fmt` with `args`.
pub fn format_c(fmt: u64, args: &mut VaArgs) -> String {
    let mut out = String::new();
    if fmt == 0 {
        return "(null format)".into();
    }
    let mut p = fmt;
    loop {
        let c = read_byte(p);
        p += 1;
        if c == 0 {
            break;
        }
        if c != b'%' {
            out.push(c as char);
            continue;
        }
        let (mut left, mut zero, mut alt, mut plus, mut space) =
            (false, false, false, false, false);
        loop {
            match read_byte(p) {
                b'-' => left = true,
                b'0' => zero = true,
                b'#' => alt = true,
                b'+' => plus = true,
                b' ' => space = true,
                _ => break,
            }
            p += 1;
        }
        let mut width = 0usize;
        if read_byte(p) == b'*' {
            let w = args.next_u64() as i32;
            if w < 0 {
                left = true;
            }
            width = w.unsigned_abs() as usize;
            p += 1;
        } else {
            while read_byte(p).is_ascii_digit() {
                width = width * 10 + (read_byte(p) - b'0') as usize;
                p += 1;
            }
        }
        let mut precision: Option<usize> = None;
        if read_byte(p) == b'.' {
            p += 1;
            if read_byte(p) == b'*' {
                precision = Some((args.next_u64() as i32).max(0) as usize);
                p += 1;
            } else {
                let mut v = 0;
                while read_byte(p).is_ascii_digit() {
                    v = v * 10 + (read_byte(p) - b'0') as usize;
                    p += 1;
                }
                precision = Some(v);
            }
        }
        let mut bits = 32u32;
        loop {
            match read_byte(p) {
                b'h' => bits = if bits == 16 { 8 } else { 16 },
                b'l' | b'q' | b'j' | b'z' | b't' => bits = 64,
                _ => break,
            }
            p += 1;
        }
        let conv = read_byte(p);
        p += 1;
        let body = match conv {
            b'd' | b'i' => {
                let raw = args.next_u64();
                let v: i64 = match bits {
                    8 => raw as i8 as i64,
                    16 => raw as i16 as i64,
                    32 => raw as i32 as i64,
                    _ => raw as i64,
                };
                let mut s = v.unsigned_abs().to_string();
                if let Some(pr) = precision {
                    while s.len() < pr {
                        s.insert(0, '0');
                    }
                }
                let sign = if v < 0 {
                    "-"
                } else if plus {
                    "+"
                } else if space {
                    " "
                } else {
                    ""
                };
                pad_number(sign, &s, width, left, zero && precision.is_none())
            }
            b'u' | b'x' | b'X' | b'o' | b'p' => {
                let raw = args.next_u64();
                let v = if conv == b'p' {
                    raw
                } else {
                    match bits {
                        8 => raw as u8 as u64,
                        16 => raw as u16 as u64,
                        32 => raw as u32 as u64,
                        _ => raw,
                    }
                };
                let mut s = match conv {
                    b'u' => v.to_string(),
                    b'x' | b'p' => format!("{v:x}"),
                    b'X' => format!("{v:X}"),
                    _ => format!("{v:o}"),
                };
                if let Some(pr) = precision {
                    while s.len() < pr {
                        s.insert(0, '0');
                    }
                }
                let prefix = match conv {
                    b'p' => "0x",
                    b'x' if alt && v != 0 => "0x",
                    b'X' if alt && v != 0 => "0X",
                    b'o' if alt => "0",
                    _ => "",
                };
                pad_number(prefix, &s, width, left, zero && precision.is_none())
            }
            b'c' => pad(&((args.next_u64() as u8) as char).to_string(), width, left),
            b's' => {
                let ptr = args.next_u64();
                let max = precision.unwrap_or(1 << 20);
                // SAFETY: %s arguments are C strings (or NULL, printed as "(null)").
                let s = unsafe { super::c_str(ptr, max) };
                pad(&s, width, left)
            }
            b'b' => {
                let v = args.next_u64() as u32;
                let desc = args.next_u64();
                format_bits(v, desc)
            }
            b'%' => "%".to_string(),
            0 => break,
            other => format!("%{}", other as char),
        };
        out.push_str(&body);
    }
    out
}

fn pad(s: &str, width: usize, left: bool) -> String {
    if s.len() >= width {
        return s.to_string();
    }
    let fill = " ".repeat(width - s.len());
    if left {
        format!("{s}{fill}")
    } else {
        format!("{fill}{s}")
    }
}

fn pad_number(prefix: &str, digits: &str, width: usize, left: bool, zero: bool) -> String {
    let len = prefix.len() + digits.len();
    if len >= width {
        return format!("{prefix}{digits}");
    }
    if left {
        format!("{prefix}{digits}{}", " ".repeat(width - len))
    } else if zero {
        format!("{prefix}{}{digits}", "0".repeat(width - len))
    } else {
        format!("{}{prefix}{digits}", " ".repeat(width - len))
    }
}

/// FreeBSD's `%b`: the first byte of `desc` is the output base, then
/// (bit number 1-based, name) pairs; prints `value<name,name>`.
fn format_bits(value: u32, desc: u64) -> String {
    let base = read_byte(desc);
    let mut out = if base == 8 {
        format!("{value:o}")
    } else if base == 16 {
        format!("{value:x}")
    } else {
        value.to_string()
    };
    let mut p = desc + 1;
    let mut any = false;
    loop {
        let bit = read_byte(p);
        if bit == 0 {
            break;
        }
        p += 1;
        let mut name = String::new();
        while read_byte(p) > 32 {
            name.push(read_byte(p) as char);
            p += 1;
        }
        if bit <= 32 && value & (1u32 << (bit - 1)) != 0 {
            out.push(if any { ',' } else { '<' });
            out.push_str(&name);
            any = true;
        }
    }
    if any {
        out.push('>');
    }
    out
}

pub(super) fn functions() -> Vec<(&'static str, usize)> {
    vec![
        ("printf", koharness_printf_shim as *const () as usize),
        ("panic", koharness_panic_shim as *const () as usize),
        (
            "make_dev_s",
            koharness_make_dev_s_shim as *const () as usize,
        ),
        ("snprintf", koharness_snprintf_shim as *const () as usize),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(format: &str, args: &[u64]) -> String {
        let f = std::ffi::CString::new(format).unwrap();
        let mut regs = [0u64; 6];
        regs[0] = f.as_ptr() as u64;
        let mut stack = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i + 1 < 6 {
                regs[i + 1] = *a;
            } else {
                stack.push(*a);
            }
        }
        stack.push(0);
        // SAFETY: regs/stack outlive the VaArgs, laid out as the shim does.
        let mut va = unsafe { VaArgs::new(regs.as_ptr(), stack.as_ptr(), 1) };
        format_c(regs[0], &mut va)
    }

    #[test]
    fn printf9_conversions() {
        let s = std::ffi::CString::new("str").unwrap();
        assert_eq!(
            fmt("%d|%5d|%-5d|%05d", &[(-3i64) as u64, 42, 42, 42]),
            "-3|   42|42   |00042"
        );
        assert_eq!(
            fmt("%u %x %X %#x %o", &[7, 255, 255, 255, 8]),
            "7 ff FF 0xff 10"
        );
        assert_eq!(
            fmt("%ld %lu %jd %zu", &[u64::MAX, u64::MAX, 5, 6]),
            "-1 18446744073709551615 5 6"
        );
        assert_eq!(fmt("%hhd %hd", &[0x1ff, 0x1ffff]), "-1 -1");
        assert_eq!(
            fmt("[%s] [%.2s] [%6s] [%-6s]", &[s.as_ptr() as u64; 4]),
            "[str] [st] [   str] [str   ]"
        );
        assert_eq!(fmt("%c%c %%", &[b'o' as u64, b'k' as u64]), "ok %");
        assert_eq!(fmt("%p", &[0x1234]), "0x1234");
        assert_eq!(fmt("%*d|%.*d", &[4, 7, 3, 7]), "   7|007");
        assert_eq!(fmt("%s", &[0]), "(null)");
        // Arguments beyond the six registers come from the stack.
        assert_eq!(
            fmt("%d %d %d %d %d %d %d", &[1, 2, 3, 4, 5, 6, 7]),
            "1 2 3 4 5 6 7"
        );
    }

    #[test]
    fn printf9_bit_fields() {
        let desc = b"\x10\x01ONE\x02TWO\x04FOUR\0";
        let s = std::ffi::CString::new(&desc[..desc.len() - 1]).unwrap();
        assert_eq!(fmt("%b", &[0b1011, s.as_ptr() as u64]), "b<ONE,TWO,FOUR>");
        assert_eq!(fmt("%b", &[0, s.as_ptr() as u64]), "0");
    }
}
