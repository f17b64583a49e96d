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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use backend::{
    CommandBackend, NotifyBackend, NotifyError, OffBackend, OffReason, backend_for,
    desktop_session_present, off_reason,
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
///
/// A state root removed while it waits (a test's, a cleaned-up one) leaves
/// nothing to summarise: it returns then, rather than wait out a long debounce
/// and create the directory again.
pub fn deliver_summary(
    gate: &NotifyGate,
    backend: &dyn NotifyBackend,
    due_ms: i64,
) -> Result<(), NotifyError> {
    let root_exists = || gate.path().parent().is_none_or(std::path::Path::exists);
    loop {
        let wait = due_ms - Timestamp::now().unix_ms();
        if wait <= 0 {
            break;
        }
        if !root_exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(wait.min(1000) as u64));
    }
    if !root_exists() {
        return Ok(());
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

/// Runs the calling thread, and every process it starts (a user's command, a
/// sound player), at a low CPU priority (nice 10): a notification is background
/// work, and on a busy machine it must take CPU from nobody, least of all the
/// agents and workers it reports on. Best effort: a refusal changes nothing else.
pub fn lower_priority() {
    // On Linux, PRIO_PROCESS with pid 0 names the calling thread alone. Elsewhere
    // it would name the whole process, which must keep its own priority: there,
    // this does nothing.
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// How long dropping a [`Notifier`] waits for the queue to be delivered. A hung
/// notification server can hold a D-Bus call for ~25 s; a worker must not take that
/// long to exit.
const DROP_WAIT: Duration = Duration::from_secs(2);

/// What the delivery thread receives.
enum Message {
    Event(Box<Event>),
    Deliver(Box<Delivery>),
    Stop,
}

/// Notifications for a long-lived process, delivered from a background thread
/// through a bounded queue; when the queue is full, events are dropped and counted.
///
/// Dropping it delivers what is queued, then stops the thread, waiting at most 2 s:
/// what is still undelivered then (a backend that hangs) is counted as dropped and
/// left undelivered. [`NotifyHandle`]s outliving it count what they offer
/// afterwards as dropped.
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
    shared: Arc<Shared>,
}

/// What the [`Notifier`], its handles and its delivery thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Events and deliveries dropped.
    dropped: AtomicU64,
    /// Events and deliveries queued and not yet finished by the thread (the one it
    /// is showing included): what a [`Notifier`] that stops waiting counts as dropped.
    pending: AtomicU64,
    /// The [`Notifier`] stopped waiting for the thread: it delivers nothing more.
    abandoned: AtomicBool,
    /// Whether the thread has ended, signalled on `ended`.
    finished: Mutex<bool>,
    ended: Condvar,
}

impl Shared {
    /// Waits up to `limit` for the delivery thread to end; true if it has.
    fn wait_ended(&self, limit: Duration) -> bool {
        let finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        let (finished, _) = self
            .ended
            .wait_timeout_while(finished, limit, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        *finished
    }

    /// One queued message is finished with. False when a [`Notifier`] that stopped
    /// waiting has already counted it as dropped.
    fn finish_one(&self) -> bool {
        self.pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_sub(1))
            .is_ok()
    }
}

/// Marks the delivery thread ended when dropped, even by a panic.
struct EndGuard(Arc<Shared>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        *self.0.finished.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.ended.notify_all();
    }
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
        let shared = Arc::new(Shared::default());
        let guard = EndGuard(shared.clone());
        let thread = std::thread::Builder::new()
            .name("swarm-obs-notify".into())
            .spawn(move || {
                lower_priority();
                let shared = guard.0.clone();
                let _guard = guard;
                let mut summary_due: Option<i64> = None;
                loop {
                    let timeout = summary_due.map_or(Duration::from_secs(3600), |due| {
                        Duration::from_millis((due - Timestamp::now().unix_ms()).max(0) as u64)
                    });
                    let message = rx.recv_timeout(timeout);
                    // What is left was counted as dropped by the Notifier that gave
                    // up on this thread.
                    if shared.abandoned.load(Ordering::SeqCst) {
                        return;
                    }
                    match message {
                        Ok(Message::Event(ev)) => {
                            if let Some(n) = rules.notification(&ev) {
                                match gate.check(&n, Timestamp::now().unix_ms()) {
                                    Ok(Verdict::Show) | Err(_) => {
                                        let _ = backend.send(&n);
                                    }
                                    Ok(Verdict::Suppressed { summary_at_ms }) => {
                                        summary_due = summary_due.or(summary_at_ms);
                                    }
                                }
                            }
                            let _ = shared.finish_one();
                        }
                        Ok(Message::Deliver(job)) => {
                            match *job {
                                Delivery::Show(n) => {
                                    let _ = backend.send(&n);
                                }
                                Delivery::SummaryAt(due) => {
                                    summary_due = Some(summary_due.map_or(due, |d| d.min(due)));
                                }
                            }
                            let _ = shared.finish_one();
                        }
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
            handle: NotifyHandle { tx, shared },
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
        self.offer(Message::Event(Box::new(ev.clone())));
    }

    /// Queues a notification another process has already passed through the rules
    /// and the gate; never blocks. Returns false (and counts it as dropped) when the
    /// queue is full or the [`Notifier`] is gone, so the caller can show it itself.
    pub fn deliver(&self, job: Delivery) -> bool {
        self.offer(Message::Deliver(Box::new(job)))
    }

    /// Events dropped so far, through any handle of the same [`Notifier`].
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn offer(&self, message: Message) -> bool {
        let shared = &self.shared;
        // Counted as pending before the send, so the thread never finishes a
        // message that was not counted yet.
        shared.pending.fetch_add(1, Ordering::SeqCst);
        let queued = !shared.abandoned.load(Ordering::SeqCst) && self.tx.try_send(message).is_ok();
        if !queued && shared.finish_one() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }
}

impl Drop for Notifier {
    /// Delivers what is queued, then stops the thread, waiting at most
    /// 2 s; what is then undelivered is counted as dropped.
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let shared = &self.handle.shared;
        let deadline = Instant::now() + DROP_WAIT;
        // A full queue makes room as the thread delivers; a hung backend does not.
        let ended = loop {
            match self.handle.tx.try_send(Message::Stop) {
                Ok(()) => {
                    break shared.wait_ended(deadline.saturating_duration_since(Instant::now()));
                }
                Err(TrySendError::Disconnected(_)) => break true,
                Err(TrySendError::Full(_)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if shared.wait_ended(left.min(Duration::from_millis(10))) {
                        break true;
                    }
                    if left.is_zero() {
                        break false;
                    }
                }
            }
        };
        if ended {
            let _ = thread.join();
            return;
        }
        // Let the thread go: it stops at its next message, and what it holds or
        // has queued is not shown.
        shared.abandoned.store(true, Ordering::SeqCst);
        let undelivered = shared.pending.swap(0, Ordering::SeqCst);
        shared.dropped.fetch_add(undelivered, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn command_config(command: String) -> NotifyConfig {
        NotifyConfig {
            backend: "command".into(),
            command: Some(command),
            ..NotifyConfig::default()
        }
    }

    fn start(root: &StateRoot, config: &NotifyConfig) -> Notifier {
        let backend = Box::new(CommandBackend::new(config.command.clone().unwrap()));
        Notifier::with_backend(root, config, backend)
    }

    #[test]
    fn dropping_delivers_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let out = dir.path().join("shown.txt");
        let config = command_config(format!(
            "printf '%s\\n' \"$SWARM_TITLE\" >> '{}'",
            out.display()
        ));
        let notifier = start(&root, &config);
        notifier.notify(&Event::new("a", Kind::Done, "one"));
        notifier.notify(&Event::new("b", Kind::Done, "two"));
        let handle = notifier.handle();
        drop(notifier);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "a: done\nb: done\n");
        assert_eq!(handle.dropped(), 0);
        handle.notify(&Event::new("c", Kind::Done, "late"));
        assert_eq!(handle.dropped(), 1, "offered after the drop");
    }

    #[test]
    fn a_summary_for_a_removed_state_root_is_dropped_without_recreating_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        std::fs::create_dir(&root).unwrap();
        let out = dir.path().join("shown.txt");
        let config = command_config(format!("printf x >> '{}'", out.display()));
        let gate = NotifyGate::new(gate_file(&StateRoot::new(&root)), &config);
        let held = Notification {
            kind: NotifyKind::Done,
            title: "t".into(),
            body: "b".into(),
            sound: None,
            linux_sound: None,
            urgency: Urgency::Normal,
            source: "s".into(),
            session: Some("one".into()),
        };
        let now = Timestamp::now().unix_ms();
        assert_eq!(gate.check(&held, now).unwrap(), gate::Verdict::Show);
        let due = match gate.check(&held, now + 1).unwrap() {
            gate::Verdict::Suppressed {
                summary_at_ms: Some(due),
            } => due,
            other => panic!("{other:?}"),
        };
        assert!(due - now >= 1000, "the summary is due later");
        std::fs::remove_dir_all(&root).unwrap();
        let t = Instant::now();
        let backend = backend_for(&config);
        deliver_summary(&gate, backend.as_ref(), due + 60_000).unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "waited {:?}",
            t.elapsed()
        );
        assert!(!root.exists(), "the state root was created again");
        assert!(
            !out.exists(),
            "a summary was shown for a removed state root"
        );
    }

    /// Delivery runs at a low priority, and so do the commands it starts; the
    /// process that owns the Notifier keeps its own.
    #[cfg(target_os = "linux")]
    #[test]
    fn delivery_runs_at_a_low_priority() {
        // SAFETY: getpriority only reads its integer arguments.
        let own = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let before = own();
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let out = dir.path().join("nice.txt");
        let config = command_config(format!("nice > '{}'", out.display()));
        let notifier = start(&root, &config);
        notifier.notify(&Event::new("a", Kind::Done, "how nice"));
        drop(notifier);
        let nice: i32 = std::fs::read_to_string(&out)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(nice, (before + 10).min(19));
        assert_eq!(own(), before, "the caller's thread keeps its priority");
    }

    #[test]
    fn dropping_with_a_hung_backend_returns_and_counts_the_undelivered() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let started = dir.path().join("started");
        let config = command_config(format!("touch '{}'; sleep 30", started.display()));
        let notifier = start(&root, &config);
        let handle = notifier.handle();
        notifier.notify(&Event::new("a", Kind::Done, "hangs"));
        notifier.notify(&Event::new("b", Kind::Done, "waits behind it"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !started.exists() {
            assert!(Instant::now() < deadline, "the command never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
        let t0 = Instant::now();
        drop(notifier);
        let waited = t0.elapsed();
        assert!(waited < Duration::from_secs(10), "drop waited {waited:?}");
        assert_eq!(handle.dropped(), 2, "the hung one and the one behind it");
        handle.notify(&Event::new("c", Kind::Done, "after"));
        assert_eq!(handle.dropped(), 3);
    }
}
