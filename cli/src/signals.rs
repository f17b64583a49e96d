//! Termination signals received on one thread instead of by a handler: the signals
//! are blocked in every thread, and a waiter thread takes them with `sigwait`, so
//! what happens next (forwarding to a child, a clean shutdown) is ordinary code.

use std::io;

/// The signals a supervisor passes on to its child, or treats as a request to stop.
pub const FORWARDED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Blocks [`FORWARDED`] in this thread and every thread it starts afterwards. Call
/// it first in `main`'s command, before any thread exists. Children started with
/// `std::process::Command` get an empty signal mask again.
pub fn block() -> io::Result<SignalSet> {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask only
    // reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(SignalSet(set))
    }
}

/// The blocked signals, to wait for.
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// Calls `on_signal` with each signal that arrives, from a thread of its own, for
    /// the rest of the process's life.
    pub fn spawn_waiter(
        self,
        mut on_signal: impl FnMut(libc::c_int) + Send + 'static,
    ) -> io::Result<()> {
        std::thread::Builder::new()
            .name("swarm-obs-signals".into())
            .spawn(move || {
                loop {
                    let mut sig: libc::c_int = 0;
                    // SAFETY: the set is initialised; sig is a valid out pointer.
                    let rc = unsafe { libc::sigwait(&self.0, &mut sig) };
                    if rc == 0 {
                        on_signal(sig);
                    }
                }
            })
            .map(drop)
    }
}

/// The name of a signal for messages (`SIGTERM`), or its number.
pub fn name(sig: libc::c_int) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        other => format!("signal {other}"),
    }
}
