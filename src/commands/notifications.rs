//! The receivers of one run's notifications, each with the events it wants: `--notify URL`
//! (every event) and the project file's `notifications` (the events it lists).
//!
//! Each receiver gets its own [`Notifier`] (a bounded queue and a delivery task), so one
//! slow receiver never holds up another and the filter is applied before queueing.

use std::time::Duration;

use crate::notify::{Delivery, Event, Notifier};
use crate::settings::NotifySettings;

/// One run's receivers.
pub(super) struct Notifiers {
    receivers: Vec<(Notifier, Delivery)>,
}

impl Notifiers {
    /// Starts delivering to every receiver of `settings`. Must be called in the runtime.
    pub(super) fn start(settings: &NotifySettings) -> Self {
        Notifiers {
            receivers: settings
                .targets
                .iter()
                .map(|target| Notifier::start(vec![target.clone()], settings.secret.clone()))
                .collect(),
        }
    }

    /// Queues `event` for every receiver (each sends it only if its filter accepts it);
    /// never waits.
    pub(super) fn notify(&self, event: Event) {
        for (notifier, _) in &self.receivers {
            notifier.notify(event.clone());
        }
    }

    /// Waits for the undelivered notifications, at most `deadline` in all.
    pub(super) async fn finish(self, deadline: Duration) {
        let deliveries = self.receivers.into_iter().map(|(notifier, delivery)| {
            drop(notifier);
            delivery.finish(deadline)
        });
        futures_util::future::join_all(deliveries).await;
    }
}
