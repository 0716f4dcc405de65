//! Signal masks and synchronous signal waiting.
//!
//! The master blocks the signals it acts on and takes them with `sigtimedwait`,
//! so no handler ever runs asynchronously. Workers take theirs through a
//! signalfd registered in their event loop.

use std::io;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};

/// The signals the server acts on; blocked everywhere and received synchronously.
pub fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGCHLD,
    ] {
        set.add(signal);
    }
    set
}

/// Blocks `set` in this process so the signals queue up instead of killing it.
pub fn block(set: &SigSet) -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(set), None).map_err(io::Error::from)
}

/// Unblocks `set`, restoring default delivery.
pub fn unblock(set: &SigSet) -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(set), None).map_err(io::Error::from)
}

/// Restores the default disposition of the handled signals. A shell starts
/// background commands with SIGINT and SIGQUIT ignored, and an ignored
/// signal is discarded instead of queued, so `wait` would never see it.
pub fn reset_handled() {
    for signal in handled_set().iter() {
        // SAFETY: installing SIG_DFL has no handler code to be unsafe.
        unsafe {
            libc::signal(signal as libc::c_int, libc::SIG_DFL);
        }
    }
}

/// Ignores SIGPIPE: a client that goes away must show up as EPIPE, not kill us.
pub fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN has no handler code to be unsafe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Waits up to `timeout` for one of the blocked signals in `set`.
pub fn wait(set: &SigSet, timeout: Duration) -> io::Result<Option<libc::c_int>> {
    let spec = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` and `spec` are valid for the call; the info pointer may be null.
    let signal = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &spec) };
    if signal >= 0 {
        return Ok(Some(signal));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
        _ => Err(err),
    }
}

/// Sends `signal` to process `pid`; a process that is already gone is not an error.
pub fn send(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill takes integers only.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// How a child process ended, from `waitpid`.
pub enum ChildExit {
    Exited(libc::c_int),
    Signalled(libc::c_int),
}

/// Reaps one finished child without blocking.
pub fn reap_child() -> Option<(libc::pid_t, ChildExit)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid int to fill in.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let exit = if libc::WIFSIGNALED(status) {
        ChildExit::Signalled(libc::WTERMSIG(status))
    } else {
        ChildExit::Exited(libc::WEXITSTATUS(status))
    };
    Some((pid, exit))
}

/// Waits (blocking) for child `pid` to end; used only after SIGKILL.
pub fn wait_for(pid: libc::pid_t) {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid int to fill in; EINTR is retried.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
}

/// A signal's name for log lines ("SIGKILL").
pub fn name(signal: libc::c_int) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}
