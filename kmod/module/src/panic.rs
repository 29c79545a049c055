//! Rust panics in rdtrace.ko become kernel panics, reported through panic(9).
//!
//! The module is built with panic=abort and there is nothing to unwind to:
//! a Rust panic means an invariant of the module is broken, and continuing
//! could corrupt the kernel. The message (location and text) is formatted
//! into a fixed buffer on the stack, truncated if needed, so reporting never
//! allocates. Probe context must never reach this (no panicking operations on
//! probe paths); if it does, the kernel panics with the message.
//!
//! The formatting buffer is host-testable; the handler is kernel-only.

use core::fmt::{self, Write};

/// Capacity of the panic message buffer, including the terminating NUL.
pub const PANIC_MESSAGE_CAPACITY: usize = 256;

/// A NUL-terminated message buffer that silently truncates.
pub struct MessageBuffer {
    bytes: [u8; PANIC_MESSAGE_CAPACITY],
    len: usize,
}

impl MessageBuffer {
    pub const fn new() -> Self {
        MessageBuffer {
            bytes: [0; PANIC_MESSAGE_CAPACITY],
            len: 0,
        }
    }

    /// The text so far (without the NUL).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Pointer to the NUL-terminated text (the last byte is never written).
    pub fn as_c_ptr(&self) -> *const core::ffi::c_char {
        self.bytes.as_ptr() as *const core::ffi::c_char
    }
}

impl Default for MessageBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for MessageBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            // Keep one byte for the NUL; a NUL inside the text would cut it
            // short in printf, so replace it.
            if self.len + 1 >= PANIC_MESSAGE_CAPACITY {
                break;
            }
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = if b == 0 { b'?' } else { b };
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Format a panic report: `"<file>:<line>: <message>"`.
pub fn format_report(
    buf: &mut MessageBuffer,
    location: Option<(&str, u32)>,
    message: fmt::Arguments<'_>,
) {
    if let Some((file, line)) = location {
        let _ = write!(buf, "{file}:{line}: ");
    }
    let _ = buf.write_fmt(message);
}

#[cfg(target_os = "none")]
#[panic_handler]
fn rdtrace_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut buf = MessageBuffer::new();
    let location = info.location().map(|l| (l.file(), l.line()));
    format_report(&mut buf, location, format_args!("{}", info.message()));
    // SAFETY: panic(9) takes a printf format; ours is a constant "%s" format
    // with a NUL-terminated argument. It never returns.
    unsafe { rdtrace_ffi::kpi::panic(c"rdtrace: %s".as_ptr(), buf.as_c_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_location_and_message() {
        let mut buf = MessageBuffer::new();
        format_report(&mut buf, Some(("src/x.rs", 12)), format_args!("bad {}", 7));
        assert_eq!(buf.as_bytes(), b"src/x.rs:12: bad 7");
        // NUL-terminated right after the text.
        assert_eq!(buf.bytes[buf.len], 0);
    }

    #[test]
    fn long_messages_are_truncated_and_terminated() {
        let mut buf = MessageBuffer::new();
        let long = "x".repeat(1000);
        format_report(&mut buf, None, format_args!("{long}"));
        assert_eq!(buf.as_bytes().len(), PANIC_MESSAGE_CAPACITY - 1);
        assert_eq!(buf.bytes[PANIC_MESSAGE_CAPACITY - 1], 0);
    }

    #[test]
    fn interior_nul_is_replaced() {
        let mut buf = MessageBuffer::new();
        format_report(&mut buf, None, format_args!("a\0b"));
        assert_eq!(buf.as_bytes(), b"a?b");
    }
}
