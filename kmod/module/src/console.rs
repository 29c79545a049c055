//! Console messages from the module (kldload errors and the like).
//!
//! Messages are formatted into a fixed buffer on the stack (no allocation),
//! prefixed with "rdtrace: ", and printed through the shim's printf(9)
//! wrapper (see `rdtrace_shim_console`). Not for probe context: printf takes
//! the console lock.

use core::fmt::{self, Write};

use crate::panic::MessageBuffer;

/// Format `"rdtrace: <message>\n"` into `buf`.
pub fn format_message(buf: &mut MessageBuffer, message: fmt::Arguments<'_>) {
    let _ = buf.write_str("rdtrace: ");
    let _ = buf.write_fmt(message);
    let _ = buf.write_str("\n");
}

/// Print a message on the console.
#[cfg(target_os = "none")]
pub fn console(message: fmt::Arguments<'_>) {
    let mut buf = MessageBuffer::new();
    format_message(&mut buf, message);
    // SAFETY: buf is NUL-terminated (MessageBuffer never writes its last byte).
    unsafe { rdtrace_ffi::kpi::rdtrace_shim_console(buf.as_c_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_prefixed_and_terminated() {
        let mut buf = MessageBuffer::new();
        format_message(
            &mut buf,
            format_args!("cannot create {} (error {})", "x", 17),
        );
        assert_eq!(buf.as_bytes(), b"rdtrace: cannot create x (error 17)\n");
    }
}
