//! Which failed registry calls may be repeated, and how long to wait before doing so.
//!
//! The policy follows MLflow's own Python client (mlflow-api.md §7.2), decided per call
//! rather than by a generic middleware, because whether repeating a request is harmless
//! depends on what the request does, not on its HTTP method:
//!
//! - [`Policy::Safe`]: reads, `PATCH`/`DELETE` and writes that set a target state. Retried
//!   on 408, 429, 500, 502, 503, 504 and on any transport failure (connection refused,
//!   reset, timeout, truncated answer).
//! - [`Policy::Upsert`]: set-tag and set-alias. Like `Safe`, and also on the 400
//!   `BAD_REQUEST` a concurrent upsert of the same new key gets from the database
//!   ("UNIQUE constraint failed" / `IntegrityError`, mlflow-api.md §6).
//! - [`Policy::Create`]: creations, which are not idempotent. Retried only when the server
//!   provably did not act: 408 and 429, and connection failures (the request never left).
//!   A 5xx may come after the server committed the write, so it is not retried.

use std::time::Duration;

use backon::ExponentialBuilder;

use super::{Error, RegistryConfig};

/// How a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    /// Repeating the request leaves the registry in the same state.
    Safe,
    /// An upsert: safe, and a lost race on a UNIQUE constraint is worth a retry.
    Upsert,
    /// A creation: only retried when the server cannot have acted on it.
    Create,
}

/// One failed attempt: the error, and the delay the server asked for (`Retry-After`).
#[derive(Debug)]
pub(super) struct Attempt {
    /// What went wrong.
    pub error: Error,
    /// `Retry-After`, in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
}

impl From<Error> for Attempt {
    fn from(error: Error) -> Self {
        Attempt {
            error,
            retry_after: None,
        }
    }
}

impl Policy {
    /// Whether the attempt's failure is worth another try under this policy.
    pub fn allows(self, attempt: &Attempt) -> bool {
        match &attempt.error {
            Error::Transport { source, .. } => match self {
                Policy::Safe | Policy::Upsert => !source.is_builder(),
                // Only when the connection was never established: the request was not sent.
                Policy::Create => source.is_connect(),
            },
            Error::Api {
                status,
                code,
                message,
                ..
            } => match status {
                408 | 429 => true,
                500 | 502 | 503 | 504 => self != Policy::Create,
                400 => self == Policy::Upsert && is_unique_race(code.as_deref(), message),
                _ => false,
            },
            Error::Decode { .. } | Error::Inconsistent(_) | Error::Config(_) => false,
        }
    }
}

/// Whether a 400 is the database's answer to two concurrent upserts of the same new key.
fn is_unique_race(code: Option<&str>, message: &str) -> bool {
    matches!(code, None | Some("BAD_REQUEST"))
        && (message.contains("UNIQUE constraint")
            || message.contains("IntegrityError")
            || message.contains("duplicate key"))
}

/// The backoff schedule of one call: exponential from `min_backoff`, doubled each time,
/// with jitter, at most `max_backoff`, `max_retries` times.
pub(super) fn backoff(config: &RegistryConfig) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(config.min_backoff)
        .with_max_delay(config.max_backoff)
        .with_factor(2.0)
        .with_max_times(config.max_retries)
        .with_jitter()
}

/// The delay before the next attempt: the server's `Retry-After` when it sent one, else the
/// backoff's; both capped at `max_backoff` (jitter may push the backoff above it). `None`
/// when the backoff is exhausted.
pub(super) fn next_delay(
    attempt: &Attempt,
    backoff: Option<Duration>,
    max_backoff: Duration,
) -> Option<Duration> {
    let delay = backoff?;
    Some(attempt.retry_after.unwrap_or(delay).min(max_backoff))
}

/// Parses `Retry-After` given in seconds (the HTTP-date form is not used by MLflow or the
/// proxies in front of it, and is ignored).
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>, message: &str) -> Attempt {
        Attempt::from(Error::Api {
            method: "POST",
            endpoint: "registered-models/alias",
            status,
            code: code.map(str::to_owned),
            message: message.to_owned(),
        })
    }

    #[test]
    fn statuses_by_policy() {
        for status in [408, 429] {
            for policy in [Policy::Safe, Policy::Upsert, Policy::Create] {
                assert!(policy.allows(&api(status, None, "")), "{policy:?} {status}");
            }
        }
        for status in [500, 502, 503, 504] {
            assert!(Policy::Safe.allows(&api(status, None, "")));
            assert!(Policy::Upsert.allows(&api(status, None, "")));
            assert!(!Policy::Create.allows(&api(status, None, "")), "{status}");
        }
        for status in [400, 401, 403, 404, 405, 409, 501] {
            assert!(
                !Policy::Safe.allows(&api(status, Some("X"), "")),
                "{status}"
            );
        }
    }

    #[test]
    fn unique_races_are_retried_for_upserts_only() {
        let race = api(
            400,
            Some("BAD_REQUEST"),
            "(sqlite3.IntegrityError) UNIQUE constraint failed: registered_model_aliases.name",
        );
        assert!(Policy::Upsert.allows(&race));
        assert!(!Policy::Safe.allows(&race));
        assert!(!Policy::Create.allows(&race));
        let invalid = api(400, Some("INVALID_PARAMETER_VALUE"), "alias is reserved");
        assert!(!Policy::Upsert.allows(&invalid));
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let mut attempt = api(429, None, "");
        let max = Duration::from_secs(5);
        assert_eq!(
            next_delay(&attempt, Some(Duration::from_millis(100)), max),
            Some(Duration::from_millis(100))
        );
        attempt.retry_after = parse_retry_after(" 2 ");
        assert_eq!(
            next_delay(&attempt, Some(Duration::from_millis(100)), max),
            Some(Duration::from_secs(2))
        );
        attempt.retry_after = parse_retry_after("120");
        assert_eq!(next_delay(&attempt, Some(Duration::ZERO), max), Some(max));
        assert_eq!(next_delay(&attempt, None, max), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
