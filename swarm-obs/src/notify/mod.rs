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

/// A notification the sound rules and the gate have already let through, ready to
/// show: what the hook hands to its detached delivery process, or to a collector
/// that shows notifications ([`NotifyHandle::deliver`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Show this notification now.
    Show(Notification),
    /// At this time (Unix ms), show a summary of what the gate held back.
    SummaryAt(i64),
}

impl Delivery {
    /// Shows it through `backend`, waiting first for a summary's time.
    pub fn carry_out(
        self,
        gate: &NotifyGate,
        backend: &dyn NotifyBackend,
    ) -> Result<(), NotifyError> {
        match self {
            Delivery::Show(n) => backend.send(&n),
            Delivery::SummaryAt(due) => deliver_summary(gate, backend, due),
        }
    }
}

/// What the delivery thread receives.
enum Message {
    Event(Box<Event>),
    Deliver(Box<Delivery>),
    Stop,
}

/// Notifications for a long-lived process, delivered from a background thread
/// through a bounded queue; when the queue is full, events are dropped and counted.
///
/// Dropping it delivers what is queued, then stops the thread; [`NotifyHandle`]s
/// outliving it count what they offer afterwards as dropped.
#[derive(Debug)]
#[must_use = "dropping the Notifier stops delivery"]
pub struct Notifier {
    handle: NotifyHandle,
    backend: &'static str,
    thread: Option<JoinHandle<()>>,
}

/// A cheap, clonable way to offer events to a [`Notifier`] from any thread.
#[derive(Clone, Debug)]
pub struct NotifyHandle {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Event(ev) => f.debug_tuple("Event").field(&ev.id).finish(),
            Message::Deliver(job) => f.debug_tuple("Deliver").field(job).finish(),
            Message::Stop => f.write_str("Stop"),
        }
    }
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
        let (tx, rx) = mpsc::sync_channel::<Message>(256);
        let rules = SoundRules::new(config.clone());
        let gate = NotifyGate::new(gate_file(root), config);
        let name = backend.name();
        let thread = std::thread::Builder::new()
            .name("swarm-obs-notify".into())
            .spawn(move || {
                let mut summary_due: Option<i64> = None;
                loop {
                    let timeout = summary_due.map_or(Duration::from_secs(3600), |due| {
                        Duration::from_millis((due - Timestamp::now().unix_ms()).max(0) as u64)
                    });
                    match rx.recv_timeout(timeout) {
                        Ok(Message::Event(ev)) => {
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
                        Ok(Message::Deliver(job)) => match *job {
                            Delivery::Show(n) => {
                                let _ = backend.send(&n);
                            }
                            Delivery::SummaryAt(due) => {
                                summary_due = Some(summary_due.map_or(due, |d| d.min(due)));
                            }
                        },
                        Err(RecvTimeoutError::Timeout) => {
                            if let Some(due) = summary_due.take() {
                                let _ = deliver_summary(&gate, backend.as_ref(), due);
                            }
                        }
                        // A pending summary is left to the gate's file: the next
                        // process to notify, or none, decides; stopping must not wait
                        // out a debounce window.
                        Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .ok();
        Self {
            handle: NotifyHandle {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            backend: name,
            thread,
        }
    }

    /// Offers an event; never blocks. Events the rules ignore cost a channel send.
    pub fn notify(&self, ev: &Event) {
        self.handle.notify(ev);
    }

    /// A handle for other threads (a tracing layer, a server task).
    pub fn handle(&self) -> NotifyHandle {
        self.handle.clone()
    }

    /// Events dropped because the queue was full or delivery had stopped.
    pub fn dropped(&self) -> u64 {
        self.handle.dropped()
    }

    /// The backend's name: `desktop`, `command` or `off`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }
}

impl NotifyHandle {
    /// Offers an event; never blocks. When the queue is full, or the [`Notifier`]
    /// is gone, the event is counted as dropped.
    pub fn notify(&self, ev: &Event) {
        if self
            .tx
            .try_send(Message::Event(Box::new(ev.clone())))
            .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a notification another process has already passed through the rules
    /// and the gate; never blocks. Returns false (and counts it as dropped) when the
    /// queue is full or the [`Notifier`] is gone, so the caller can show it itself.
    pub fn deliver(&self, job: Delivery) -> bool {
        let queued = self.tx.try_send(Message::Deliver(Box::new(job))).is_ok();
        if !queued {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// Events dropped so far, through any handle of the same [`Notifier`].
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Notifier {
    /// Delivers what is queued, then stops the thread.
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            // Blocks only while the queue is full, which the thread is draining.
            if self.handle.tx.send(Message::Stop).is_ok() {
                let _ = t.join();
            }
        }
    }
}
