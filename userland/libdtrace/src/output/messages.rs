//! Drop, error and fault messages in libdtrace's wording, as dtrace(1)
//! prints them on stderr (`dtrace: ` prefix; when a message does not end in
//! a newline dtrace(1) appends `: <strerror(errno)>`). Drop texts go through
//! libdtrace's 80-byte buffer, so long tagged texts are cut to 79 bytes
//! exactly as on FreeBSD. Not probe context.

use super::model::{DropEvent, DropKind, ErrorEvent};

/// libdtrace formats drop messages into `char str[80]`.
const DROP_BUF: usize = 80;

fn plural(n: u64) -> &'static str {
    if n > 1 {
        "s"
    } else {
        ""
    }
}

/// The drop message body (without `dtrace: `), newline included unless the
/// 80-byte buffer cut it off. `droptags` adds `[DTRACEDROP_<KIND>] `.
pub fn drop_message(ev: &DropEvent, droptags: bool) -> String {
    let n = ev.count;
    let s = plural(n);
    let body = match ev.kind {
        DropKind::Principal => format!("{n} drop{s} on CPU {}\n", ev.cpu.unwrap_or(0)),
        DropKind::Aggregation => {
            format!("{n} aggregation drop{s} on CPU {}\n", ev.cpu.unwrap_or(0))
        }
        DropKind::Dynamic => format!("{n} dynamic variable drop{s}\n"),
        DropKind::DynRinse => format!("{n} dynamic variable drop{s} with non-empty rinsing list\n"),
        DropKind::DynDirty => format!("{n} dynamic variable drop{s} with non-empty dirty list\n"),
        DropKind::Spec => format!("{n} speculative drop{s}\n"),
        DropKind::SpecBusy => {
            format!("{n} failed speculation{s} (available buffer(s) still busy)\n")
        }
        DropKind::SpecUnavail => {
            format!("{n} failed speculation{s} (no speculative buffer available)\n")
        }
        DropKind::StackStringOverflow => {
            format!("{n} jstack()/ustack() string table overflow{s}\n")
        }
        DropKind::DoubleError => format!("{n} error{s} in ERROR probe enabling\n"),
    };
    let mut msg = if droptags {
        format!("[{}] {body}", ev.kind.tag())
    } else {
        body
    };
    if msg.len() > DROP_BUF - 1 {
        msg.truncate(DROP_BUF - 1);
    }
    msg
}

/// dtrace(1)'s rendering of a handler message on stderr: `dtrace: msg`,
/// plus `: <strerror>` when the message lacks a trailing newline.
pub fn dtrace_stderr_line(msg: &str, strerror: &str) -> String {
    if msg.ends_with('\n') {
        format!("dtrace: {msg}")
    } else {
        format!("dtrace: {msg}: {strerror}\n")
    }
}

/// dtrace(1)'s "matched" notice body (suppressed by `-q`): `kind` is
/// `script` for `-s` and `description` for `-n/-P/-m/-f/-i`.
pub fn matched_notice(kind: &str, name: &str, matches: u32) -> String {
    let s = if matches == 1 { "" } else { "s" };
    format!("{kind} '{name}' matched {matches} probe{s}\n")
}

/// How a traced process ended, for dtrace(1)'s process notices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    /// Exit status unknown (grabbed process).
    Exited,
    Status(i32),
    /// Killed by the named signal (`SIGKILL`).
    Signal(String),
}

/// `pid N has exited` / `pid N exited with status N` / `pid N terminated by SIGxxx`.
pub fn process_notice(pid: i32, end: &ProcessEnd) -> String {
    match end {
        ProcessEnd::Exited => format!("pid {pid} has exited\n"),
        ProcessEnd::Status(st) => format!("pid {pid} exited with status {st}\n"),
        ProcessEnd::Signal(sig) => format!("pid {pid} terminated by {sig}\n"),
    }
}

/// `dtrace_faultstr`: the text of a `DTRACEFLT_*` code.
pub fn fault_text(fault: u32) -> &'static str {
    match fault {
        1 => "invalid address",
        2 => "invalid alignment",
        3 => "illegal operation",
        4 => "divide-by-zero",
        5 => "out of scratch space",
        6 => "invalid kernel access",
        7 => "invalid user access",
        8 => "tuple stack overflow",
        9 => "bad stack",
        1000 => "library-level fault",
        _ => "unknown fault",
    }
}

/// The default ERROR handler message (FreeBSD wording), newline included:
/// `error on enabled probe ID E (ID P: p:m:f:n): <fault>[ (0x<addr>)] in
/// <predicate|action #N>[ at DIF offset O]`.
pub fn error_message(ev: &ErrorEvent) -> String {
    let details = match ev.fault {
        1 | 2 | 9 => format!(" (0x{:x})", ev.address),
        _ => String::new(),
    };
    let place = if ev.action == 0 {
        "predicate".to_string()
    } else {
        format!("action #{}", ev.action)
    };
    let offset = match ev.dif_offset {
        Some(off) if off >= 0 => format!(" at DIF offset {off}"),
        _ => String::new(),
    };
    format!(
        "error on enabled probe ID {} (ID {}: {}:{}:{}:{}): {}{} in {}{}\n",
        ev.epid,
        ev.probe_id,
        ev.provider,
        ev.module,
        ev.function,
        ev.name,
        fault_text(ev.fault),
        details,
        place,
        offset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_texts() {
        let ev = |kind, count, cpu| DropEvent {
            kind,
            cpu,
            count,
            total: count,
        };
        assert_eq!(
            drop_message(&ev(DropKind::Principal, 1, Some(3)), false),
            "1 drop on CPU 3\n"
        );
        assert_eq!(
            drop_message(&ev(DropKind::Principal, 7, Some(0)), false),
            "7 drops on CPU 0\n"
        );
        assert_eq!(
            drop_message(&ev(DropKind::Dynamic, 2, None), false),
            "2 dynamic variable drops\n"
        );
        assert_eq!(
            drop_message(&ev(DropKind::Aggregation, 2, Some(1)), true),
            "[DTRACEDROP_AGGREGATION] 2 aggregation drops on CPU 1\n"
        );
        // The 80-byte buffer cuts the closing parenthesis and newline.
        let cut = drop_message(&ev(DropKind::SpecUnavail, 3, None), true);
        assert_eq!(
            cut,
            "[DTRACEDROP_SPECUNAVAIL] 3 failed speculations (no speculative buffer available"
        );
        assert_eq!(
            dtrace_stderr_line(&cut, "No such process"),
            "dtrace: [DTRACEDROP_SPECUNAVAIL] 3 failed speculations (no speculative buffer available: No such process\n"
        );
    }

    #[test]
    fn notices() {
        assert_eq!(
            matched_notice("script", "x.d", 1),
            "script 'x.d' matched 1 probe\n"
        );
        assert_eq!(
            matched_notice("description", "BEGIN ", 3),
            "description 'BEGIN ' matched 3 probes\n"
        );
        assert_eq!(
            process_notice(7, &ProcessEnd::Status(2)),
            "pid 7 exited with status 2\n"
        );
        assert_eq!(
            process_notice(7, &ProcessEnd::Signal("SIGKILL".into())),
            "pid 7 terminated by SIGKILL\n"
        );
    }

    #[test]
    fn error_text() {
        let ev = ErrorEvent {
            epid: 1,
            probe_id: 1,
            provider: "dtrace".into(),
            module: "".into(),
            function: "".into(),
            name: "BEGIN".into(),
            action: 1,
            dif_offset: Some(16),
            fault: 1,
            address: 4,
        };
        assert_eq!(
            error_message(&ev),
            "error on enabled probe ID 1 (ID 1: dtrace:::BEGIN): invalid address (0x4) in action #1 at DIF offset 16\n"
        );
        let ev2 = ErrorEvent {
            fault: 4,
            action: 0,
            dif_offset: None,
            ..ev
        };
        assert_eq!(
            error_message(&ev2),
            "error on enabled probe ID 1 (ID 1: dtrace:::BEGIN): divide-by-zero in predicate\n"
        );
    }
}
