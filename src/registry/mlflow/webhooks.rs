//! MLflow's webhook API (OSS MLflow 3.3+), as `mlflow/server/handlers.py` serves it:
//!
//! | call | request |
//! |---|---|
//! | list | `GET webhooks?max_results=&page_token=` → `{"webhooks": [...], "next_page_token"}` |
//! | create | `POST webhooks` `{"name", "url", "events", "description", "secret", "status"}` |
//! | update | `PATCH webhooks/{webhook_id}` with the fields to change |
//! | delete | `DELETE webhooks/{webhook_id}` |
//!
//! Events are `{"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}` (the protobuf enum
//! names). Names are not unique on the server, and the secret is never sent back: a caller
//! that wants one webhook per name must list before it creates, and re-send the secret to
//! be sure the server holds the current one. A server without the API (MLflow 2.x) answers
//! the list with a bare 404 (or `ENDPOINT_NOT_FOUND`): see [`Error::is_missing_endpoint`].

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Call, MlflowClient, Page, Verb, endpoint, is_missing};
use crate::registry::retry::Policy;
use crate::registry::wire::Empty;
use crate::registry::{Error, Result};

/// How many webhooks one list page asks for (the server's maximum is 1000).
const PAGE_SIZE: u32 = 100;

/// One event a webhook subscribes to, in the API's spelling (`MODEL_VERSION_ALIAS`,
/// `CREATED`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookEvent {
    /// `REGISTERED_MODEL`, `MODEL_VERSION`, `MODEL_VERSION_TAG`, `MODEL_VERSION_ALIAS`, ...
    pub entity: String,
    /// `CREATED`, `UPDATED`, `DELETED`, `SET`.
    pub action: String,
}

impl WebhookEvent {
    /// The event `entity`/`action`, upper-cased as the API spells them.
    pub fn new(entity: &str, action: &str) -> Self {
        WebhookEvent {
            entity: entity.to_ascii_uppercase(),
            action: action.to_ascii_uppercase(),
        }
    }
}

/// A webhook as the server lists it (never with its secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Webhook {
    /// The server's id.
    pub webhook_id: String,
    /// The name (not unique on the server).
    pub name: String,
    /// Where deliveries go.
    pub url: String,
    /// The description (`""` when none).
    pub description: String,
    /// The events subscribed to.
    pub events: Vec<WebhookEvent>,
    /// `ACTIVE` or `DISABLED`.
    pub status: String,
    /// Creation time, Unix milliseconds.
    pub creation_timestamp: i64,
}

/// What a webhook should be: the fields mlreg creates it with or updates it to.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// The name.
    pub name: String,
    /// Where deliveries go.
    pub url: String,
    /// A description for people looking at the server's webhooks.
    pub description: String,
    /// The events subscribed to.
    pub events: Vec<WebhookEvent>,
    /// The signing secret.
    pub secret: String,
}

impl std::fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("WebhookSpec")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl WebhookSpec {
    /// The request body: every field, the status `ACTIVE` (a webhook someone disabled is
    /// enabled again, since the daemon relies on it).
    fn body(&self) -> Value {
        json!({
            "name": self.name,
            "url": self.url,
            "description": self.description,
            "events": self.events,
            "secret": self.secret,
            "status": "ACTIVE",
        })
    }
}

/// `{"webhooks": [...], "next_page_token": "..."}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListWebhooksResponse {
    webhooks: Vec<Webhook>,
    next_page_token: String,
}

impl Page for ListWebhooksResponse {
    type Item = Webhook;
    fn split(self) -> (Vec<Webhook>, String) {
        (self.webhooks, self.next_page_token)
    }
}

/// `{"webhook": {...}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WebhookResponse {
    webhook: Option<Webhook>,
}

impl WebhookResponse {
    fn into_webhook(self) -> Result<Webhook> {
        self.webhook.ok_or_else(|| Error::Decode {
            endpoint: endpoint::WEBHOOKS,
            detail: "the answer holds no webhook".into(),
        })
    }
}

impl MlflowClient {
    /// Every webhook on the server (all pages).
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        self.search_all::<ListWebhooksResponse>(
            endpoint::WEBHOOKS,
            vec![("max_results", PAGE_SIZE.to_string())],
        )
        .await
    }

    /// Creates a webhook. Not idempotent (names are not unique): retried only when the
    /// server cannot have acted on it, so a lost answer is an error, and the caller lists
    /// again before it creates again.
    pub async fn create_webhook(&self, spec: &WebhookSpec) -> Result<Webhook> {
        let call = Call::with_body(Verb::Post, endpoint::WEBHOOKS, spec.body(), Policy::Create);
        self.call::<WebhookResponse>(&call).await?.into_webhook()
    }

    /// Sets every field of webhook `id` to `spec` (the secret included). Idempotent.
    pub async fn update_webhook(&self, id: &str, spec: &WebhookSpec) -> Result<Webhook> {
        let call =
            Call::with_body(Verb::Patch, endpoint::WEBHOOKS, spec.body(), Policy::Safe).at(id);
        self.call::<WebhookResponse>(&call).await?.into_webhook()
    }

    /// Deletes webhook `id`; one already gone when a retry arrives is deleted.
    pub async fn delete_webhook(&self, id: &str) -> Result<()> {
        let call =
            Call::with_body(Verb::Delete, endpoint::WEBHOOKS, json!({}), Policy::Safe).at(id);
        match self.call_counting::<Empty>(&call).await {
            (Ok(_), _) => Ok(()),
            (Err(error), attempts) if attempts > 1 && is_missing(&error) => Ok(()),
            (Err(error), _) => Err(error),
        }
    }
}

impl Error {
    /// Whether the server has no such endpoint at all (a bare 404, `ENDPOINT_NOT_FOUND`,
    /// 405 or 501), as MLflow 2.x answers the webhook API; a 404 about a missing resource
    /// (`RESOURCE_DOES_NOT_EXIST`) is not one.
    pub fn is_missing_endpoint(&self) -> bool {
        match self {
            Error::Api { status, code, .. } => match status {
                404 => matches!(code.as_deref(), None | Some("ENDPOINT_NOT_FOUND")),
                405 | 501 => true,
                _ => false,
            },
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>) -> Error {
        Error::Api {
            method: "GET",
            endpoint: endpoint::WEBHOOKS,
            status,
            code: code.map(str::to_owned),
            message: "m".into(),
        }
    }

    #[test]
    fn a_missing_endpoint_is_told_from_a_missing_webhook() {
        assert!(api(404, None).is_missing_endpoint());
        assert!(api(404, Some("ENDPOINT_NOT_FOUND")).is_missing_endpoint());
        assert!(api(501, None).is_missing_endpoint());
        assert!(!api(404, Some("RESOURCE_DOES_NOT_EXIST")).is_missing_endpoint());
        assert!(!api(503, None).is_missing_endpoint());
        assert!(!api(403, None).is_missing_endpoint());
    }

    #[test]
    fn the_body_carries_the_api_spelling_and_the_debug_form_hides_the_secret() {
        let spec = WebhookSpec {
            name: "mlreg".into(),
            url: "http://d/hooks/mlflow".into(),
            description: "d".into(),
            events: vec![WebhookEvent::new("model_version_alias", "created")],
            secret: "s3cret".into(),
        };
        let body = spec.body();
        assert_eq!(
            body["events"][0],
            json!({"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"})
        );
        assert_eq!(body["secret"], "s3cret");
        assert_eq!(body["status"], "ACTIVE");
        assert!(!format!("{spec:?}").contains("s3cret"));
        let listed: ListWebhooksResponse = serde_json::from_str(
            r#"{"webhooks": [{"webhook_id": "w1", "name": "mlreg", "url": "u",
                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
                "status": "ACTIVE", "creation_timestamp": 5}]}"#,
        )
        .expect("json");
        let (webhooks, next) = listed.split();
        assert_eq!(next, "");
        assert_eq!(
            webhooks[0].events[0],
            WebhookEvent::new("model_version", "created")
        );
        assert_eq!(webhooks[0].description, "");
    }
}
