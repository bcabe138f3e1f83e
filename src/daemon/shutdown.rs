//! Two-stage shutdown of the daemon, on SIGINT and SIGTERM.
//!
//! - The first signal cancels [`Shutdown::stop`]: the loop takes no new work, readiness
//!   turns to 503, an apply in flight runs to its end, and the process exits 0.
//! - The second cancels [`Shutdown::abort`], which is the apply's cancellation token: the
//!   write in flight finishes (so no transition is left without its audit tag), the rest of
//!   the plan is skipped, and the process exits 130/143 (128 + the signal).
//! - A third exits at once, for a registry call that hangs.
//!
//! Unlike `commands::signals` (one-shot commands, where the first signal already cancels the
//! apply), a daemon's first signal is a routine stop — a rolling update — and must not leave
//! a half-applied plan behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::exit::ExitStatus;

const NONE: u8 = 0;
const SIGINT: u8 = 2;
const SIGTERM: u8 = 15;

/// The daemon's shutdown tokens and the signal listener that cancels them. The listener
/// stops when this is dropped.
#[derive(Debug)]
pub struct Shutdown {
    stop: CancellationToken,
    abort: CancellationToken,
    first: Arc<AtomicU8>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Shutdown {
    /// Listens for SIGINT and SIGTERM. Must be called inside the runtime.
    pub fn install() -> Self {
        let mut shutdown = Shutdown::manual();
        let stop = shutdown.stop.clone();
        let abort = shutdown.abort.clone();
        let first = Arc::clone(&shutdown.first);
        shutdown.listener = Some(tokio::spawn(async move {
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!("cannot install signal handlers; a signal ends the daemon at once");
                return;
            };
            let mut count = 0_u32;
            loop {
                let (which, name) = tokio::select! {
                    _ = interrupt.recv() => (SIGINT, "SIGINT"),
                    _ = terminate.recv() => (SIGTERM, "SIGTERM"),
                };
                count += 1;
                match count {
                    1 => {
                        first.store(which, Ordering::SeqCst);
                        tracing::info!(
                            signal = name,
                            "stopping: finishing the apply in flight, if any (send the signal again to abort it)"
                        );
                        stop.cancel();
                    }
                    2 => {
                        tracing::warn!(
                            signal = name,
                            "second signal: aborting after the registry write in flight (send it again to exit at once)"
                        );
                        stop.cancel();
                        abort.cancel();
                    }
                    _ => {
                        tracing::error!(signal = name, "third signal: exiting now");
                        std::process::exit(i32::from(status_for(which).code()));
                    }
                }
            }
        }));
        shutdown
    }

    /// Tokens that only [`Shutdown::request_stop`] and [`Shutdown::request_abort`] cancel
    /// (for tests and embedding).
    pub fn manual() -> Self {
        Shutdown {
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            first: Arc::new(AtomicU8::new(NONE)),
            listener: None,
        }
    }

    /// Cancelled by the first signal: take no new work.
    pub fn stop(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Cancelled by the second signal: abort the apply in flight after its current write.
    pub fn abort(&self) -> CancellationToken {
        self.abort.clone()
    }

    /// Stops the daemon as a first signal would.
    pub fn request_stop(&self) {
        self.stop.cancel();
    }

    /// Aborts as a second signal would.
    pub fn request_abort(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }

    /// How the process should exit once the loop has ended: 0 after a graceful stop,
    /// 128 + the first signal after an abort.
    pub fn exit_status(&self) -> ExitStatus {
        if !self.abort.is_cancelled() {
            return ExitStatus::Success;
        }
        match self.first.load(Ordering::SeqCst) {
            SIGTERM => ExitStatus::Terminated,
            SIGINT => ExitStatus::Interrupted,
            _ => ExitStatus::Terminated,
        }
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

fn status_for(signal: u8) -> ExitStatus {
    if signal == SIGINT {
        ExitStatus::Interrupted
    } else {
        ExitStatus::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_exits_zero_and_an_abort_does_not() {
        let shutdown = Shutdown::manual();
        assert!(!shutdown.stop().is_cancelled());
        shutdown.request_stop();
        assert!(shutdown.stop().is_cancelled());
        assert!(!shutdown.abort().is_cancelled());
        assert_eq!(shutdown.exit_status(), ExitStatus::Success);
        shutdown.request_abort();
        assert!(shutdown.abort().is_cancelled());
        assert_eq!(shutdown.exit_status(), ExitStatus::Terminated);
    }
}
