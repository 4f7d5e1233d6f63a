//! Whop webhooks: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) or
//! the legacy `x-whop-signature: t=<unix>,v1=<hex>`, chosen by the headers a delivery carries;
//! memberships become subscriptions held in the member's company.

mod parse;
mod samples;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::model::{BillingEvent, Invalid, Provider};
use super::provider::{AuthHeaders, BillingProvider, Ownership};
use super::BillingError;
use crate::billing::{BillingSettings, WebhookProvider};
use crate::crypto::constant_time_eq;
use crate::crypto::standard_webhooks::{
    self, Received, VerifyError, WebhookSecret, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
    TOLERANCE,
};

pub use parse::parse;

/// The header of Whop's legacy (v5) signature.
pub const LEGACY_HEADER: &str = "x-whop-signature";

/// Whop as a [`BillingProvider`].
#[derive(Debug, Clone, Copy)]
pub struct Whop;

impl BillingProvider for Whop {
    fn id(&self) -> Provider {
        Provider::Whop
    }

    fn webhook_path(&self) -> &'static str {
        "/webhooks/whop"
    }

    fn auth_headers(&self) -> &'static [&'static str] {
        &[ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER, LEGACY_HEADER]
    }

    fn enabled(&self, billing: &BillingSettings) -> bool {
        billing.providers.contains(&WebhookProvider::Whop)
    }

    fn authenticate(
        &self,
        billing: &BillingSettings,
        headers: &AuthHeaders<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), BillingError> {
        let secrets = keys(&billing.whop_webhook_secrets)?;
        let standard = Received {
            id: headers.get(ID_HEADER),
            timestamp: headers.get(TIMESTAMP_HEADER),
            signature: headers.get(SIGNATURE_HEADER),
        };
        let uses_standard =
            standard.id.is_some() || standard.timestamp.is_some() || standard.signature.is_some();
        let result = if uses_standard {
            standard_webhooks::verify(standard, body, &secrets, now.timestamp())
        } else {
            verify_legacy(headers.get(LEGACY_HEADER), body, &secrets, now.timestamp())
        };
        result.map_err(|e| {
            BillingError::Unauthorized(match e {
                VerifyError::Missing(_) => "signature missing",
                VerifyError::BadTimestamp => "signature malformed",
                VerifyError::Stale => "timestamp outside tolerance",
                VerifyError::Mismatch => "signature mismatch",
            })
        })
    }

    fn parse(&self, billing: &BillingSettings, body: &[u8]) -> Result<BillingEvent, Vec<Invalid>> {
        parse(body, &billing.products)
    }

    fn ownership(&self) -> Ownership {
        Ownership::UserIds { anonymous: None }
    }

    fn sample_types(&self) -> &'static [&'static str] {
        samples::TYPES
    }

    fn sample_product(&self) -> &'static str {
        "prod_pro"
    }

    fn sample(&self, kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value> {
        samples::event(kind, user, product, now)
    }

    fn sign(
        &self,
        billing: &BillingSettings,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, String)>, BillingError> {
        let secrets = keys(&billing.whop_webhook_secrets)?;
        let newest = secrets
            .first()
            .ok_or(BillingError::NotConfigured("WHOP_WEBHOOK_SECRET"))?;
        let id = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
        let signed =
            standard_webhooks::sign(std::slice::from_ref(newest), &id, now.timestamp(), body);
        Ok(signed
            .pairs()
            .into_iter()
            .map(|(name, value)| (name, value.to_string()))
            .collect())
    }
}

/// The configured secrets as keys: a `whsec_…` secret's decoded bytes, any other its raw bytes
/// (as the Whop dashboard hands it out).
fn keys(configured: &[SecretString]) -> Result<Vec<WebhookSecret>, BillingError> {
    if configured.is_empty() {
        return Err(BillingError::NotConfigured("WHOP_WEBHOOK_SECRET"));
    }
    configured
        .iter()
        .map(|s| WebhookSecret::parse(s.expose_secret()))
        .collect::<Result<_, _>>()
        .map_err(|_| BillingError::NotConfigured("WHOP_WEBHOOK_SECRET"))
}

/// Verifies a legacy `x-whop-signature: t=<unix>,v1=<hex>` header: any `v1` signature, the
/// lowercase hex HMAC-SHA256 of `"{t}.{body}"` under any secret, with `t` within
/// [`TOLERANCE`] of `now` (Unix seconds).
pub fn verify_legacy(
    header: Option<&str>,
    body: &[u8],
    secrets: &[WebhookSecret],
    now: i64,
) -> Result<(), VerifyError> {
    let header = header.ok_or(VerifyError::Missing(SIGNATURE_HEADER))?;
    let mut timestamp = None;
    let mut offered = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.trim().parse::<i64>().ok(),
            Some(("v1", sig)) => offered.push(sig.trim()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(VerifyError::BadTimestamp)?;
    if offered.is_empty() {
        return Err(VerifyError::Mismatch);
    }
    if now.abs_diff(t) > TOLERANCE.as_secs() {
        return Err(VerifyError::Stale);
    }
    for secret in secrets {
        let expected = sign_legacy(secret, t, body);
        if offered
            .iter()
            .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
        {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// The legacy `v1` signature (lowercase hex) of `body` at `timestamp` under `secret`.
pub fn sign_legacy(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.mac(&[timestamp.to_string().as_bytes(), b".", body]);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
