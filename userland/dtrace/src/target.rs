//! `-c cmd` and `-p pid`: the process `$target` names.
//!
//! Like libdtrace's `dtrace_proc_create`, `-c` creates the process held
//! before it runs its command, so its pid is known when the programs are
//! compiled (`$target`) and it runs only once tracing has started. Tracing
//! ends when the process is gone, and dtrace says so on stderr.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// How the traced process ended.
pub enum Ending {
    Exited(i32),
    Signalled(i32),
    /// A `-p` process that is no longer there (its status is not ours to read).
    Gone,
}

enum Kind {
    /// `-c`: our child, held at a pipe until [`TargetProcess::release`];
    /// `status` once reaped.
    Created {
        hold: Option<OwnedFd>,
        status: Option<i32>,
    },
    /// `-p`: someone else's process.
    Grabbed,
}

pub struct TargetProcess {
    pid: i32,
    kind: Kind,
}

/// A close-on-exec pipe: neither the traced command nor any other program
/// started later inherits a hold.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2(2) to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe(2) succeeded, so both descriptors are open and now owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl TargetProcess {
    /// `-c command`: split on white space as dtrace(1) does (no shell), and
    /// create the process held before exec. (std's spawn cannot do this: it
    /// waits for the exec, which the hold prevents.)
    pub fn create(command: &str) -> io::Result<TargetProcess> {
        let words: Vec<CString> = command
            .split_whitespace()
            .map(|w| CString::new(w).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
            .collect::<io::Result<_>>()?;
        if words.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
        }
        if !is_executable_on_path(command.split_whitespace().next().unwrap_or("")) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let mut argv: Vec<*const libc::c_char> = words.iter().map(|w| w.as_ptr()).collect();
        argv.push(std::ptr::null());
        let (hold_read, hold_write) = pipe()?;
        // SAFETY: fork(2) has no preconditions; the child below only calls
        // async-signal-safe functions (close, read, execvp, _exit) and reads
        // errno, on memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid == -1 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: in the child: descriptors we own, argv built above and
            // NULL-terminated; _exit never returns.
            unsafe {
                libc::close(hold_write.as_raw_fd());
                let mut byte = 0u8;
                // Blocks until dtrace writes the release byte or exits
                // (EOF). Waiting for the byte rather than for EOF matters:
                // another child forked meanwhile may hold a copy of the
                // write end until it execs.
                while libc::read(hold_read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) == -1
                    && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {
                }
                libc::close(hold_read.as_raw_fd());
                libc::execvp(argv[0], argv.as_ptr());
                libc::_exit(127);
            }
        }
        drop(hold_read);
        Ok(TargetProcess {
            pid,
            kind: Kind::Created {
                hold: Some(hold_write),
                status: None,
            },
        })
    }

    /// `-p pid`: an existing process.
    pub fn grab(pid: &str) -> io::Result<TargetProcess> {
        let pid: i32 = pid.trim().parse().map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("invalid pid '{pid}'"))
        })?;
        if pid <= 0 || !process_exists(pid) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(TargetProcess {
            pid,
            kind: Kind::Grabbed,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Let a created process run its command (tracing has started).
    pub fn release(&mut self) {
        if let Kind::Created { hold, .. } = &mut self.kind {
            if let Some(fd) = hold.take() {
                // A failed write (the child is gone) changes nothing: the
                // descriptor closes right after.
                // SAFETY: writing one byte from a local to our own descriptor.
                let _ = unsafe { libc::write(fd.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
            }
        }
    }

    /// Whether the process has ended, without waiting.
    pub fn ended(&mut self) -> Option<Ending> {
        let pid = self.pid;
        match &mut self.kind {
            Kind::Created { status, .. } => {
                if status.is_none() {
                    let mut raw = 0;
                    // SAFETY: waitpid on our own child with a valid status pointer.
                    let r = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
                    if r == pid {
                        *status = Some(raw);
                    } else if r == -1 {
                        return Some(Ending::Gone);
                    }
                }
                let raw = (*status)?;
                Some(if libc::WIFSIGNALED(raw) {
                    Ending::Signalled(libc::WTERMSIG(raw))
                } else {
                    Ending::Exited(libc::WEXITSTATUS(raw))
                })
            }
            Kind::Grabbed => (!process_exists(pid)).then_some(Ending::Gone),
        }
    }

    /// dtrace(1)'s notice for how the process ended.
    pub fn notice(&self, ending: &Ending) -> String {
        match ending {
            Ending::Exited(0) | Ending::Gone => format!("dtrace: pid {} has exited", self.pid),
            Ending::Exited(code) => format!("dtrace: pid {} exited with status {code}", self.pid),
            Ending::Signalled(sig) => format!(
                "dtrace: pid {} terminated by {}",
                self.pid,
                signal_name(*sig)
            ),
        }
    }
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        // A created process still held (e.g. after a compile error) must not
        // run its command: kill and reap it.
        if let Kind::Created {
            hold: Some(_),
            status: None,
        } = &self.kind
        {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Whether process `pid` exists (it may belong to another user: EPERM
/// still means it is there).
fn process_exists(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 sends nothing; it only checks the pid.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether execvp(3) would find `program` (so a missing command fails
/// before tracing starts, as libdtrace's process creation does).
fn is_executable_on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path).any(|dir| executable(&dir.join(program)))
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_process_waits_for_release_then_runs() {
        let mut t = TargetProcess::create("true").expect("spawns");
        // Held: it cannot have run its command yet.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(t.ended().is_none());
        t.release();
        let ending = loop {
            if let Some(e) = t.ended() {
                break e;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert!(matches!(ending, Ending::Exited(_)));
    }

    #[test]
    fn a_release_is_not_held_up_by_a_later_held_process() {
        // The second child is forked while the first is held, so it holds a
        // copy of the first hold's write end until it execs.
        let mut first = TargetProcess::create("true").expect("spawns");
        let second = TargetProcess::create("true").expect("spawns");
        first.release();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while first.ended().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the released process did not run while another one was held"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(second);
    }

    #[test]
    fn exit_status_and_notice() {
        let mut t = TargetProcess::create("false").expect("spawns");
        t.release();
        let ending = loop {
            if let Some(e) = t.ended() {
                break e;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(
            t.notice(&ending),
            format!("dtrace: pid {} exited with status 1", t.pid())
        );
    }

    #[test]
    fn a_missing_command_fails_before_anything_runs() {
        let err = TargetProcess::create("/nonexistent/program arg")
            .err()
            .expect("refused");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert!(TargetProcess::create("   ").is_err());
    }

    #[test]
    fn grabbing_a_missing_process_fails() {
        assert!(TargetProcess::grab("999999999").is_err());
        assert!(TargetProcess::grab("abc").is_err());
        let me = std::process::id().to_string();
        let mut t = TargetProcess::grab(&me).expect("our own pid exists");
        assert!(t.ended().is_none());
    }
}
