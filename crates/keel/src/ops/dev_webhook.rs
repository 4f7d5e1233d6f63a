//! `keel dev webhook`: a realistic provider event, authenticated the way the provider would,
//! sent to a running instance.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::billing::{registry as providers, BillingError};
use crate::config::Settings;

/// What the instance answered.
#[derive(Debug, Serialize)]
pub struct Delivery {
    pub url: String,
    pub event_id: String,
    pub event_type: String,
    pub status: u16,
    pub body: serde_json::Value,
}

/// Why nothing could be sent: bad usage (exit 2) or a failed request (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum DevWebhookError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

/// Sends one `kind` event of `provider` (a registered provider's name) for `user` to `url` (default:
/// this configuration's own address), authenticated with the configured secret.
pub async fn send(
    settings: &Settings,
    provider: &str,
    kind: &str,
    user: &str,
    product: Option<&str>,
    url: Option<&str>,
) -> Result<Delivery, DevWebhookError> {
    let now = Utc::now();
    let base = url.map(str::to_string).unwrap_or_else(|| {
        let host = if settings.http.host.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            settings.http.host.to_string()
        };
        format!("http://{host}:{}", settings.http.port)
    });
    let SignedSample {
        path,
        event_id,
        headers,
        body,
    } = signed_sample(settings, provider, kind, user, product, now)?;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| DevWebhookError::Failed(format!("{url} did not answer: {e}")))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok(Delivery {
        url,
        event_id,
        event_type: kind.to_string(),
        status,
        body,
    })
}

/// One sample event, ready to send: the path it goes to, the headers that authenticate it, and
/// the exact body they cover.
#[derive(Debug, Clone)]
pub struct SignedSample {
    pub path: &'static str,
    pub event_id: String,
    /// Header names and values.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// One `kind` event of `provider` (a registered provider's name) for `user` buying `product`
/// (default: the provider's sample product), happening `now`, authenticated with the configured
/// secret.
pub fn signed_sample(
    settings: &Settings,
    provider: &str,
    kind: &str,
    user: &str,
    product: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SignedSample, DevWebhookError> {
    let source = providers::named(provider).ok_or_else(|| {
        DevWebhookError::Usage(format!(
            "unknown provider {provider:?} ({})",
            providers::names().join(" or ")
        ))
    })?;
    let product = product.unwrap_or(source.sample_product());
    let event = source
        .sample(kind, user, product, now)
        .ok_or_else(|| unknown(kind, source.sample_types()))?;
    let body = event.to_string();
    let billing = crate::billing::dev_secret::effective(
        &settings.billing,
        &settings.data_dir,
        settings.app_env == crate::config::AppEnv::Development,
    )
    .map_err(DevWebhookError::Failed)?;
    let headers = source
        .sign(&billing, body.as_bytes(), now)
        .map_err(|e| match e {
            BillingError::NotConfigured(variable) => {
                DevWebhookError::Usage(format!("{variable} is not set"))
            }
            other => DevWebhookError::Failed(other.to_string()),
        })?;
    let event_id = event
        .pointer("/event/id")
        .or_else(|| event.get("id"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    Ok(SignedSample {
        path: source.webhook_path(),
        event_id,
        headers,
        body,
    })
}

fn unknown(kind: &str, known: &[&str]) -> DevWebhookError {
    DevWebhookError::Usage(format!(
        "unknown event type {kind:?}; one of: {}",
        known.join(", ")
    ))
}
