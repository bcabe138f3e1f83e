//! Two-stage shutdown for commands that write: the first SIGINT/SIGTERM cancels a token
//! (the change in flight finishes, the rest is skipped); a second one exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::exit::ExitStatus;

const NONE: u8 = 0;
const SIGINT: u8 = 2;
const SIGTERM: u8 = 15;

/// Listens for SIGINT and SIGTERM until dropped.
#[derive(Debug)]
pub struct Shutdown {
    token: CancellationToken,
    received: Arc<AtomicU8>,
    listener: tokio::task::JoinHandle<()>,
}

impl Shutdown {
    /// Starts listening. Must be called inside the runtime.
    pub fn install() -> Self {
        let token = CancellationToken::new();
        let received = Arc::new(AtomicU8::new(NONE));
        let listener = tokio::spawn({
            let token = token.clone();
            let received = Arc::clone(&received);
            async move {
                let (Ok(mut interrupt), Ok(mut terminate)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    tracing::warn!(
                        "cannot install signal handlers; interrupts end the process at once"
                    );
                    return;
                };
                loop {
                    let which = tokio::select! {
                        _ = interrupt.recv() => SIGINT,
                        _ = terminate.recv() => SIGTERM,
                    };
                    if received.swap(which, Ordering::SeqCst) != NONE {
                        eprintln!("second signal: aborting");
                        std::process::exit(i32::from(status_for(which).code()));
                    }
                    eprintln!(
                        "signal received: finishing the change in flight, then stopping (send it again to abort)"
                    );
                    token.cancel();
                }
            }
        });
        Shutdown {
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

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

fn status_for(signal: u8) -> ExitStatus {
    if signal == SIGTERM {
        ExitStatus::Terminated
    } else {
        ExitStatus::Interrupted
    }
}
