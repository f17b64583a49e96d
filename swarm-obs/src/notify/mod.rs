//! Desktop notifications with sound rules: how a person hears that an agent is
//! done, stuck or broken without watching a screen.
//!
//! [`SoundRules`] turn an [`Event`] into a [`Notification`]; a [`NotifyGate`]
//! debounces per (session, kind) and caps the rate across every process; a
//! [`NotifyBackend`] shows it. A [`Notifier`] runs all three on a background thread
//! for long-lived processes, so the caller never waits for a notification server.
//!
//! ```no_run
//! use swarm_obs::{Config, Event, Kind, StateRoot};
//! use swarm_obs::notify::Notifier;
//! let root = StateRoot::resolve();
//! let notifier = Notifier::start(&root, &Config::default().notify);
//! notifier.notify(&Event::new("backend", Kind::Done, "TASK_123 finished"));
//! ```

mod backend;
#[cfg(feature = "desktop")]
mod desktop;
mod gate;
mod rules;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

pub use backend::{
    CommandBackend, NotifyBackend, NotifyError, OffBackend, backend_for, desktop_session_present,
};
#[cfg(feature = "desktop")]
pub use desktop::DesktopBackend;
pub use gate::{NotifyGate, Suppressed, Verdict};
pub use rules::{Notification, NotifyConfig, NotifyKind, RuleOverride, SoundRules, Urgency};

use crate::{Event, StateRoot, Timestamp};

/// The gate's state file under a state root.
pub fn gate_file(root: &StateRoot) -> std::path::PathBuf {
    root.dir().join("notify-state.json")
}

/// Waits until `due_ms`, then shows one summary of what the gate held back, if
/// anything still is. Used by the hook's detached delivery process and by
/// [`Notifier`].
pub fn deliver_summary(
    gate: &NotifyGate,
    backend: &dyn NotifyBackend,
    due_ms: i64,
) -> Result<(), NotifyError> {
    let wait = due_ms - Timestamp::now().unix_ms();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    let held = gate
        .take_suppressed()
        .map_err(|e| NotifyError::Desktop(format!("cannot read {}: {e}", gate.path().display())))?;
    match held.summary() {
        Some(n) => backend.send(&n),
        None => Ok(()),
    }
}

/// Notifications for a long-lived process, delivered from a background thread
/// through a bounded queue; when the queue is full, events are dropped and counted.
#[derive(Debug)]
pub struct Notifier {
    tx: Option<SyncSender<Event>>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Notifier {
    /// Starts the delivery thread with the rules, gate and backend of `config`.
    pub fn start(root: &StateRoot, config: &NotifyConfig) -> Self {
        Self::with_backend(root, config, backend_for(config))
    }

    /// Starts the delivery thread with an explicit backend.
    pub fn with_backend(
        root: &StateRoot,
        config: &NotifyConfig,
        backend: Box<dyn NotifyBackend>,
    ) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Event>(256);
        let rules = SoundRules::new(config.clone());
        let gate = NotifyGate::new(gate_file(root), config);
        let thread = std::thread::Builder::new()
            .name("swarm-obs-notify".into())
            .spawn(move || {
                let mut summary_due: Option<i64> = None;
                loop {
                    let timeout = summary_due.map_or(Duration::from_secs(3600), |due| {
                        Duration::from_millis((due - Timestamp::now().unix_ms()).max(0) as u64)
                    });
                    match rx.recv_timeout(timeout) {
                        Ok(ev) => {
                            let Some(n) = rules.notification(&ev) else {
                                continue;
                            };
                            match gate.check(&n, Timestamp::now().unix_ms()) {
                                Ok(Verdict::Show) | Err(_) => {
                                    let _ = backend.send(&n);
                                }
                                Ok(Verdict::Suppressed { summary_at_ms }) => {
                                    summary_due = summary_due.or(summary_at_ms);
                                }
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            if let Some(due) = summary_due.take() {
                                let _ = deliver_summary(&gate, backend.as_ref(), due);
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
            thread,
        }
    }

    /// Offers an event; never blocks. Events the rules ignore cost a channel send.
    pub fn notify(&self, ev: &Event) {
        if let Some(tx) = &self.tx
            && tx.try_send(ev.clone()).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Notifier {
    /// Delivers what is queued, then stops the thread.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
