//! MLflow's webhooks, received: `POST /hooks/mlflow` tells the daemon that a model changed
//! in the registry, so it reconciles now instead of at the next resync.
//!
//! Every delivery is authenticated before anything else is read from it, as MLflow signs it
//! (`mlflow/webhooks/delivery.py`): `X-MLflow-Signature: v1,<base64 HMAC-SHA256>` of
//! `"{X-MLflow-Delivery-Id}.{X-MLflow-Timestamp}.{raw body}"` with the shared secret,
//! compared in constant time. A timestamp more than five minutes from now, or a delivery id
//! already seen (kept for the last [`REMEMBERED_DELIVERIES`]), is refused too, so a captured
//! request cannot be replayed. Any refusal is answered 401 with no detail (a caller without
//! the secret learns nothing) and counted by reason in `/metrics`.
//!
//! A verified event only names a model: the daemon then reads the registry itself, so a
//! payload is never trusted for the state it describes.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use base64::Engine as _;
use ring::hmac;

/// How far a delivery's timestamp may be from now, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;

/// How many delivery ids are remembered to refuse replays (bounded memory).
pub const REMEMBERED_DELIVERIES: usize = 4096;

/// The headers MLflow sends with a delivery.
pub const SIGNATURE_HEADER: &str = "x-mlflow-signature";
/// The delivery id header.
pub const DELIVERY_ID_HEADER: &str = "x-mlflow-delivery-id";
/// The Unix-time header.
pub const TIMESTAMP_HEADER: &str = "x-mlflow-timestamp";

/// Why a delivery was refused (the label of `mlreg_webhook_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A header is missing or not text.
    MissingHeader,
    /// The signature is not `v1,<base64>` or does not match.
    BadSignature,
    /// The timestamp is not a number or too far from now.
    Stale,
    /// The delivery id was seen before.
    Replayed,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingHeader => "missing_header",
            Refusal::BadSignature => "bad_signature",
            Refusal::Stale => "stale",
            Refusal::Replayed => "replayed",
        }
    }
}

/// One delivery as received.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-MLflow-Delivery-Id`.
    pub id: Option<&'a str>,
    /// `X-MLflow-Timestamp` (Unix seconds, as text).
    pub timestamp: Option<&'a str>,
    /// `X-MLflow-Signature`.
    pub signature: Option<&'a str>,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
}

/// Checks deliveries against the shared secret and the deliveries already seen.
pub struct Verifier {
    key: hmac::Key,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

/// Delivery ids seen, oldest first, at most [`REMEMBERED_DELIVERIES`].
#[derive(Default)]
struct Seen {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Verifier {
    /// A verifier for deliveries signed with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Verifier {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Authenticates `delivery` at `now` (Unix seconds) and remembers its id; `Err` says
    /// why it is refused. The signature is checked before the id is remembered, so a forged
    /// request cannot make a genuine one look replayed.
    pub fn verify(&self, delivery: &Delivery<'_>, now: i64) -> Result<(), Refusal> {
        let (Some(id), Some(timestamp), Some(signature)) =
            (delivery.id, delivery.timestamp, delivery.signature)
        else {
            return Err(Refusal::MissingHeader);
        };
        let expected = signature
            .strip_prefix("v1,")
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .ok_or(Refusal::BadSignature)?;
        let mut signed = Vec::with_capacity(id.len() + timestamp.len() + delivery.body.len() + 2);
        signed.extend_from_slice(id.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(delivery.body);
        hmac::verify(&self.key, &signed, &expected).map_err(|_| Refusal::BadSignature)?;
        let sent: i64 = timestamp.trim().parse().map_err(|_| Refusal::Stale)?;
        if (now - sent).abs() > MAX_SKEW_SECONDS {
            return Err(Refusal::Stale);
        }
        let Ok(mut seen) = self.seen.lock() else {
            // A poisoned lock means a panic elsewhere; refusing is the safe answer.
            return Err(Refusal::Replayed);
        };
        if !seen.ids.insert(id.to_owned()) {
            return Err(Refusal::Replayed);
        }
        seen.order.push_back(id.to_owned());
        while seen.order.len() > REMEMBERED_DELIVERIES {
            if let Some(oldest) = seen.order.pop_front() {
                seen.ids.remove(&oldest);
            }
        }
        Ok(())
    }
}

/// The registered model a verified delivery is about (`data.name`), if any.
pub fn model_of(body: &[u8]) -> Option<String> {
    let payload: serde_json::Value = serde_json::from_slice(body).ok()?;
    payload
        .get("data")?
        .get("name")?
        .as_str()
        .map(str::to_owned)
}

/// The signature header MLflow would send for `body` (tests, and the daemon's own checks).
pub fn sign(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = Vec::new();
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let tag = hmac::sign(&key, &signed);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"entity": "model_version_alias", "action": "created", "timestamp": "2026-12-01T00:00:00+00:00", "data": {"name": "fraud", "alias": "champion", "version": "3"}}"#;

    fn delivery<'a>(id: &'a str, timestamp: &'a str, signature: &'a str) -> Delivery<'a> {
        Delivery {
            id: Some(id),
            timestamp: Some(timestamp),
            signature: Some(signature),
            body: BODY,
        }
    }

    #[test]
    fn a_signed_fresh_delivery_passes_once() {
        let verifier = Verifier::new(b"s3cret");
        let signature = sign(b"s3cret", "d1", "1000", BODY);
        assert_eq!(
            verifier.verify(&delivery("d1", "1000", &signature), 1010),
            Ok(())
        );
        assert_eq!(
            verifier.verify(&delivery("d1", "1000", &signature), 1010),
            Err(Refusal::Replayed)
        );
        assert_eq!(model_of(BODY).as_deref(), Some("fraud"));
    }

    #[test]
    fn forged_stale_and_incomplete_deliveries_are_refused() {
        let verifier = Verifier::new(b"s3cret");
        let wrong_key = sign(b"other", "d2", "1000", BODY);
        assert_eq!(
            verifier.verify(&delivery("d2", "1000", &wrong_key), 1000),
            Err(Refusal::BadSignature)
        );
        // The id of a forged request is not remembered: the genuine one still passes.
        let genuine = sign(b"s3cret", "d2", "1000", BODY);
        assert_eq!(
            verifier.verify(&delivery("d2", "1000", &genuine), 1000),
            Ok(())
        );
        // A body changed after signing.
        let mut tampered = delivery("d3", "1000", &genuine);
        tampered.body = br#"{"data": {"name": "other"}}"#;
        assert_eq!(verifier.verify(&tampered, 1000), Err(Refusal::BadSignature));
        let old = sign(b"s3cret", "d4", "1000", BODY);
        assert_eq!(
            verifier.verify(&delivery("d4", "1000", &old), 1000 + MAX_SKEW_SECONDS + 1),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verifier.verify(&delivery("d5", "1000", "v2,abc"), 1000),
            Err(Refusal::BadSignature)
        );
        let mut missing = delivery("d6", "1000", &old);
        missing.signature = None;
        assert_eq!(verifier.verify(&missing, 1000), Err(Refusal::MissingHeader));
    }

    #[test]
    fn remembered_ids_are_bounded() {
        let verifier = Verifier::new(b"k");
        for n in 0..REMEMBERED_DELIVERIES + 10 {
            let id = format!("id-{n}");
            let signature = sign(b"k", &id, "5", BODY);
            assert_eq!(verifier.verify(&delivery(&id, "5", &signature), 5), Ok(()));
        }
        let seen = verifier.seen.lock().expect("lock");
        assert_eq!(seen.ids.len(), REMEMBERED_DELIVERIES);
        assert_eq!(seen.order.len(), REMEMBERED_DELIVERIES);
    }
}
