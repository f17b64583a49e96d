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

/// The signals that ask a program to stop (the user signals do not).
pub const STOPS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Blocks [`FORWARDED`] in this thread and every thread it starts afterwards. Call
/// it first in `main`'s command, before any thread exists. A child inherits the
/// mask (`std::process::Command` does not reset it): start children through
/// [`unblocked_in_child`] or they never see a forwarded signal.
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

/// Makes `cmd`'s child start with [`FORWARDED`] unblocked again, so the signals
/// passed on (or sent by the terminal) reach it as they would reach it from a shell.
pub fn unblocked_in_child(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure only calls sigemptyset, sigaddset
    // and sigprocmask, which are async-signal-safe, on a set on its own stack.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in FORWARDED {
                libc::sigaddset(&mut set, sig);
            }
            if libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// The blocked signals, to wait for.
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// Calls `on_signal` with each signal that arrives, and whether the terminal
    /// sent it (Ctrl-C, a hang-up: the terminal signals its whole foreground process
    /// group, so a child there has it already), from a thread of its own, for the
    /// rest of the process's life.
    pub fn spawn_waiter(
        self,
        mut on_signal: impl FnMut(Received) + Send + 'static,
    ) -> io::Result<()> {
        std::thread::Builder::new()
            .name("swarm-obs-signals".into())
            .spawn(move || {
                loop {
                    if let Some(received) = self.wait() {
                        on_signal(received);
                    }
                }
            })
            .map(drop)
    }

    #[cfg(target_os = "linux")]
    fn wait(&self) -> Option<Received> {
        // SAFETY: the set is initialised; info is a valid out pointer.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let sig = unsafe { libc::sigwaitinfo(&self.0, &mut info) };
        (sig > 0).then_some(Received {
            signal: sig,
            // The kernel sends terminal signals; kill(2) and friends are SI_USER etc.
            from_terminal: info.si_code == libc::SI_KERNEL,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn wait(&self) -> Option<Received> {
        let mut sig: libc::c_int = 0;
        // SAFETY: the set is initialised; sig is a valid out pointer.
        let rc = unsafe { libc::sigwait(&self.0, &mut sig) };
        (rc == 0).then_some(Received {
            signal: sig,
            from_terminal: false,
        })
    }
}

/// A signal taken by the waiter.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// Its number.
    pub signal: libc::c_int,
    /// Whether the terminal sent it to the foreground process group.
    pub from_terminal: bool,
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
