//! Debouncing: many filesystem events become one reconcile.
//!
//! A `git checkout` or `git pull` that touches 50 manifests, or an editor's save (temporary
//! file, write, rename), emits a burst of events. After the first event of a burst,
//! [`settle`] keeps collecting until the directory has been quiet for the quiet window
//! (default 300 ms), or until the longest wait (default 5 s) has passed, so a directory that
//! never stops changing still gets reconciled. The result is one [`Batch`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::watcher::FsEvent;

/// How many paths a batch remembers (for the log line); the count is always exact.
const MAX_PATHS: usize = 20;

/// The timing of debouncing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// A burst ends after this long without an event.
    pub quiet: Duration,
    /// A burst ends after this long in any case.
    pub max: Duration,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            quiet: Duration::from_millis(300),
            max: Duration::from_secs(5),
        }
    }
}

/// The events of one burst.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// How many events the burst held.
    pub events: usize,
    /// Some of the paths changed (at most 20), sorted.
    pub paths: BTreeSet<PathBuf>,
    /// Errors the watcher reported during the burst.
    pub errors: Vec<String>,
}

impl Batch {
    fn add(&mut self, event: FsEvent) {
        self.events += 1;
        match event {
            FsEvent::Changed(paths) => {
                for path in paths {
                    if self.paths.len() >= MAX_PATHS {
                        break;
                    }
                    self.paths.insert(path);
                }
            }
            FsEvent::Error(error) => self.errors.push(error),
        }
    }
}

/// Collects the burst that `first` starts, until `window.quiet` passes without an event,
/// `window.max` passes since the start, or the channel closes.
pub async fn settle(
    receiver: &mut mpsc::Receiver<FsEvent>,
    first: FsEvent,
    window: Window,
) -> Batch {
    let mut batch = Batch::default();
    batch.add(first);
    let deadline = Instant::now() + window.max;
    loop {
        let quiet_end = (Instant::now() + window.quiet).min(deadline);
        match timeout_at(quiet_end, receiver.recv()).await {
            Ok(Some(event)) => batch.add(event),
            Ok(None) | Err(_) => return batch,
        }
        if Instant::now() >= deadline {
            return batch;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(path: &str) -> FsEvent {
        FsEvent::Changed(vec![PathBuf::from(path)])
    }

    #[tokio::test]
    async fn a_burst_of_fifty_events_is_one_batch() {
        let (sender, mut receiver) = mpsc::channel(256);
        for index in 0..50 {
            sender
                .try_send(changed(&format!("/d/m{index:02}.yaml")))
                .expect("send");
        }
        let first = receiver.recv().await.expect("first event");
        let window = Window {
            quiet: Duration::from_millis(50),
            max: Duration::from_secs(30),
        };
        let batch = settle(&mut receiver, first, window).await;
        assert_eq!(batch.events, 50);
        assert_eq!(batch.paths.len(), MAX_PATHS);
        assert!(receiver.try_recv().is_err(), "nothing left over");
    }

    #[tokio::test]
    async fn events_after_the_quiet_window_start_a_new_batch() {
        let (sender, mut receiver) = mpsc::channel(16);
        let window = Window {
            quiet: Duration::from_millis(20),
            max: Duration::from_secs(30),
        };
        let batch = settle(&mut receiver, changed("/d/a.yaml"), window).await;
        assert_eq!(batch.events, 1);
        sender.try_send(changed("/d/b.yaml")).expect("send");
        sender
            .try_send(FsEvent::Error("queue overflow".into()))
            .expect("send");
        let first = receiver.recv().await.expect("event");
        let batch = settle(&mut receiver, first, window).await;
        assert_eq!(batch.events, 2);
        assert_eq!(batch.errors, vec!["queue overflow".to_string()]);
    }

    #[tokio::test]
    async fn a_closed_channel_ends_the_batch() {
        let (sender, mut receiver) = mpsc::channel(4);
        drop(sender);
        let batch = settle(&mut receiver, changed("/d/a.yaml"), Window::default()).await;
        assert_eq!(batch.events, 1);
    }
}
