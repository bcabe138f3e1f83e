//! What SIGINT and SIGTERM do: the two shutdown policies, and the exit status they leave.
//!
//! - [`OneShot`], for commands that write once (`reconcile`): the first signal cancels a
//!   token, so the change in flight finishes (no transition is left without its audit tag)
//!   and the rest of the plan is skipped; a second signal exits at once.
//! - [`Daemon`], for `mlreg watch`: the first signal cancels [`Daemon::stop`]: the loop
//!   takes no new work, readiness turns to 503, an apply in flight runs to its end, and the
//!   process exits 0. The second cancels [`Daemon::abort`], the apply's cancellation token:
//!   the write in flight finishes, the rest is skipped, and the process exits 130/143
//!   (128 + the signal). A third exits at once, for a registry call that hangs.
//!
//! They differ on purpose: a daemon's first signal is a routine stop — a rolling update —
//! and must not leave a half-applied plan behind, while someone pressing Ctrl-C on a
//! `reconcile` wants it to stop soon. Both live here so the signal handling, the exit
//! statuses and the "exit at once" path are written once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::exit::ExitStatus;
use crate::output::Output;

const NONE: u8 = 0;
const SIGINT: u8 = 2;
const SIGTERM: u8 = 15;

/// The SIGINT and SIGTERM streams.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Registers both handlers; `None` when the OS refuses (a signal then keeps its default
    /// action: ending the process).
    fn install() -> Option<Self> {
        Some(Signals {
            interrupt: signal(SignalKind::interrupt()).ok()?,
            terminate: signal(SignalKind::terminate()).ok()?,
        })
    }

    /// The next signal and its name.
    async fn next(&mut self) -> (u8, &'static str) {
        tokio::select! {
            _ = self.interrupt.recv() => (SIGINT, "SIGINT"),
            _ = self.terminate.recv() => (SIGTERM, "SIGTERM"),
        }
    }
}

/// 128 + the signal.
fn status_for(signal: u8) -> ExitStatus {
    if signal == SIGINT {
        ExitStatus::Interrupted
    } else {
        ExitStatus::Terminated
    }
}

/// Ends the process now, with the status of `signal`: the last resort when a write hangs.
fn exit_now(signal: u8) -> ! {
    std::process::exit(i32::from(status_for(signal).code()))
}

/// Two-stage shutdown of a one-shot command. Listens for SIGINT and SIGTERM until dropped.
#[derive(Debug)]
pub struct OneShot {
    token: CancellationToken,
    received: Arc<AtomicU8>,
    listener: tokio::task::JoinHandle<()>,
}

impl OneShot {
    /// Starts listening; what happens is said through `output`. Must be called inside the
    /// runtime.
    pub fn install(output: Output) -> Self {
        let token = CancellationToken::new();
        let received = Arc::new(AtomicU8::new(NONE));
        let listener = tokio::spawn({
            let token = token.clone();
            let received = Arc::clone(&received);
            async move {
                let Some(mut signals) = Signals::install() else {
                    tracing::warn!(
                        "cannot install signal handlers; interrupts end the process at once"
                    );
                    return;
                };
                loop {
                    let (which, _) = signals.next().await;
                    if received.swap(which, Ordering::SeqCst) != NONE {
                        output.message("second signal: aborting");
                        exit_now(which);
                    }
                    output.message(
                        "signal received: finishing the change in flight, then stopping (send it again to abort)",
                    );
                    token.cancel();
                }
            }
        });
        OneShot {
            token,
            received,
            listener,
        }
    }

    /// The token cancelled by the first signal.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The exit status for the signal received, if one was.
    pub fn interrupted_status(&self) -> Option<ExitStatus> {
        match self.received.load(Ordering::SeqCst) {
            NONE => None,
            which => Some(status_for(which)),
        }
    }
}

impl Drop for OneShot {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// The daemon's shutdown tokens and the signal listener that cancels them. The listener
/// stops when this is dropped.
#[derive(Debug)]
pub struct Daemon {
    stop: CancellationToken,
    abort: CancellationToken,
    first: Arc<AtomicU8>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Daemon {
    /// Listens for SIGINT and SIGTERM. Must be called inside the runtime. The daemon says
    /// what happens in its log, as it does everything else.
    pub fn install() -> Self {
        let mut shutdown = Daemon::manual();
        let stop = shutdown.stop.clone();
        let abort = shutdown.abort.clone();
        let first = Arc::clone(&shutdown.first);
        shutdown.listener = Some(tokio::spawn(async move {
            let Some(mut signals) = Signals::install() else {
                tracing::warn!("cannot install signal handlers; a signal ends the daemon at once");
                return;
            };
            let mut count = 0_u32;
            loop {
                let (which, name) = signals.next().await;
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
                        exit_now(which);
                    }
                }
            }
        }));
        shutdown
    }

    /// Tokens that only [`Daemon::request_stop`] and [`Daemon::request_abort`] cancel
    /// (for tests and embedding).
    pub fn manual() -> Self {
        Daemon {
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
            SIGINT => ExitStatus::Interrupted,
            _ => ExitStatus::Terminated,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_exits_zero_and_an_abort_does_not() {
        let shutdown = Daemon::manual();
        assert!(!shutdown.stop().is_cancelled());
        shutdown.request_stop();
        assert!(shutdown.stop().is_cancelled());
        assert!(!shutdown.abort().is_cancelled());
        assert_eq!(shutdown.exit_status(), ExitStatus::Success);
        shutdown.request_abort();
        assert!(shutdown.abort().is_cancelled());
        assert_eq!(shutdown.exit_status(), ExitStatus::Terminated);
    }

    #[test]
    fn statuses_are_128_plus_the_signal() {
        assert_eq!(status_for(SIGINT).code(), 130);
        assert_eq!(status_for(SIGTERM).code(), 143);
    }

    #[tokio::test]
    async fn a_one_shot_command_is_not_interrupted_until_a_signal() {
        let shutdown = OneShot::install(Output::plain());
        assert_eq!(shutdown.interrupted_status(), None);
        assert!(!shutdown.token().is_cancelled());
    }
}
