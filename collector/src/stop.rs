//! The collector's stop signal. Its background threads (catch-up, maintenance, the
//! heartbeat and session watches, probes, export) wait on it between rounds: each
//! sleeps its whole interval in one wait, not in short polls of a flag, and still
//! wakes the moment the collector stops. An idle collector so wakes a few times a
//! second in all, where polling every 25 ms woke it 40 times a second per thread.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Set once, when the collector stops; cheap to clone, shared by every thread.
///
/// ```
/// use std::time::Duration;
/// use swarm_obs_collector::Stop;
/// let stop = Stop::default();
/// let waiter = std::thread::spawn({
///     let stop = stop.clone();
///     // Would sleep an hour; returns as soon as the stop is set.
///     move || stop.sleep(Duration::from_secs(3600))
/// });
/// stop.set();
/// assert!(waiter.join().unwrap());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Stop {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Stop {
    /// Sets the signal and wakes every thread waiting on it.
    pub fn set(&self) {
        let (set, woken) = &*self.inner;
        *set.lock().unwrap_or_else(PoisonError::into_inner) = true;
        woken.notify_all();
    }

    /// Whether the signal is set.
    pub fn is_set(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `d`, or until the signal is set if that comes first; returns
    /// whether it is set.
    pub fn sleep(&self, d: Duration) -> bool {
        let (set, woken) = &*self.inner;
        let guard = set.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = woken
            .wait_timeout_while(guard, d, |set| !*set)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn sleeps_the_whole_interval_unless_set() {
        let stop = Stop::default();
        let t = Instant::now();
        assert!(!stop.sleep(Duration::from_millis(30)));
        assert!(t.elapsed() >= Duration::from_millis(30));
        stop.set();
        assert!(stop.is_set());
        // Once set, a wait returns at once.
        assert!(stop.sleep(Duration::from_secs(3600)));
    }
}
