//! When the next reconcile runs: the resync interval with jitter, and the exponential
//! backoff after a failure.
//!
//! Jitter keeps a fleet of daemons (one per namespace, say) from hitting the registry in
//! lockstep. The backoff starts at 1 s, doubles on every consecutive failure, never exceeds
//! the resync interval, and is reset by a success.

use std::time::Duration;

use rand::Rng as _;

/// `base` scaled by a random factor in `[1 - spread, 1 + spread]`.
pub fn jitter(base: Duration, spread: f64) -> Duration {
    let spread = spread.clamp(0.0, 1.0);
    if spread == 0.0 || base.is_zero() {
        return base;
    }
    let factor = rand::rng().random_range((1.0 - spread)..=(1.0 + spread));
    base.mul_f64(factor)
}

/// The resync delay: the interval ±10 %.
pub fn resync_delay(interval: Duration) -> Duration {
    jitter(interval, 0.1)
}

/// Exponential backoff with jitter between consecutive failures.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Starts at `min` and never exceeds `max` (before jitter).
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// The delay after one more failure: `min * 2^(failures - 1)`, capped at `max`, ±20 %.
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .checked_mul(2_u32.saturating_pow(self.failures.min(31)))
            .unwrap_or(self.max)
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        jitter(base, 0.2)
    }

    /// How many failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets the failures, after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_spread() {
        let base = Duration::from_secs(60);
        for _ in 0..200 {
            let delay = resync_delay(base);
            assert!(delay >= Duration::from_secs(54) && delay <= Duration::from_secs(66));
        }
        assert_eq!(jitter(Duration::ZERO, 0.1), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let bases = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0];
        for base in bases {
            let delay = backoff.next_delay().as_secs_f64();
            assert!(
                delay >= base * 0.8 - 1e-9 && delay <= base * 1.2 + 1e-9,
                "{delay} vs {base}"
            );
        }
        assert_eq!(backoff.failures(), 6);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(1200));
        // Many failures never overflow.
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(12));
        }
    }
}
