//! Standard Webhooks (standardwebhooks.com): the signature scheme Keel uses for what it sends to
//! the app (HTTP job deliveries, app events) and accepts from providers that follow it (Whop).
//!
//! A message carries three headers: `webhook-id` (unique per message, the same on every retry),
//! `webhook-timestamp` (unix seconds) and `webhook-signature`, a space-separated list of
//! `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`. A secret is written `whsec_<base64>`
//! (the key is the decoded bytes); a secret without that prefix is used as its raw UTF-8 bytes,
//! which is how some providers hand theirs out.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretSlice};

use super::constant_time_eq;

/// The header names, lowercase as HTTP/2 and most frameworks present them.
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// How far a message's timestamp may be from now, either way, before it is refused.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// The prefix of a secret written in the standard's own form.
const SECRET_PREFIX: &str = "whsec_";

/// One signing key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct WebhookSecret {
    key: SecretSlice<u8>,
}

/// Why a secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("is empty")]
    Empty,
    #[error("starts with whsec_ but the rest is not valid base64")]
    NotBase64,
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` as its decoded bytes and anything else as its raw UTF-8 bytes.
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let raw = raw.trim();
        let key = match raw.strip_prefix(SECRET_PREFIX) {
            Some(encoded) => STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::NotBase64)?,
            None => raw.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self { key: key.into() })
    }

    /// Reads a comma-separated list (newest first, as during a rotation).
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, SecretError> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect()
    }

    /// A new random secret in the `whsec_` form, for development and tests; `None` only when
    /// the system's random source fails.
    pub fn generate() -> Option<String> {
        let mut bytes = [0u8; 24];
        SystemRandom::new().fill(&mut bytes).ok()?;
        Some(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// The number of key bytes (production rules ask for enough of them).
    pub fn len(&self) -> usize {
        self.key.expose_secret().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `v1,<base64>` signature of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.key.expose_secret());
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }

    /// HMAC-SHA256 under this key of `parts` joined as they are, for a provider's other scheme
    /// signed with the same secret (Whop's legacy `x-whop-signature`).
    pub fn mac(&self, parts: &[&[u8]]) -> hmac::Tag {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.key.expose_secret());
        let mut ctx = hmac::Context::with_key(&key);
        for part in parts {
            ctx.update(part);
        }
        ctx.sign()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// The three headers of one outgoing message, signed with every secret given (so a receiver
/// that holds either the old or the new key during a rotation accepts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
}

impl SignedHeaders {
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (ID_HEADER, self.id.as_str()),
            (TIMESTAMP_HEADER, self.timestamp.as_str()),
            (SIGNATURE_HEADER, self.signature.as_str()),
        ]
    }
}

/// Signs `body` as message `id` at `timestamp` (unix seconds) with each of `secrets`.
pub fn sign(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
    let signature = secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ");
    SignedHeaders {
        id: id.to_owned(),
        timestamp: timestamp.to_string(),
        signature,
    }
}

/// Why an incoming message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the webhook-timestamp header is not a unix time in seconds")]
    BadTimestamp,
    #[error("the message timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches a configured secret")]
    Mismatch,
}

/// The three headers as received (any may be absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Received<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Verifies a message: a `v1` signature in the list matching any of `secrets`, with the
/// timestamp within [`TOLERANCE`] of `now` (unix seconds). Other versions are ignored.
pub fn verify(
    received: Received<'_>,
    body: &[u8],
    secrets: &[WebhookSecret],
    now: i64,
) -> Result<(), VerifyError> {
    let id = received.id.ok_or(VerifyError::Missing(ID_HEADER))?;
    let timestamp = received
        .timestamp
        .ok_or(VerifyError::Missing(TIMESTAMP_HEADER))?;
    let signatures = received
        .signature
        .ok_or(VerifyError::Missing(SIGNATURE_HEADER))?;
    let t: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if now.abs_diff(t) > TOLERANCE.as_secs() {
        return Err(VerifyError::Stale);
    }
    let offered: Vec<&str> = signatures
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .collect();
    for secret in secrets {
        let expected = secret.sign(id, t, body);
        if offered
            .iter()
            .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
        {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from the Standard Webhooks specification's reference libraries.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec_secret() -> Vec<WebhookSecret> {
        vec![WebhookSecret::parse(SPEC_SECRET).unwrap()]
    }

    fn received<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Received<'a> {
        Received {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn signs_the_specification_example() {
        let headers = sign(&spec_secret(), SPEC_ID, SPEC_TS, SPEC_BODY);
        assert_eq!(headers.signature, SPEC_SIGNATURE);
        assert_eq!(headers.timestamp, SPEC_TS.to_string());
    }

    #[test]
    fn verifies_within_tolerance_and_refuses_the_rest() {
        let ts = SPEC_TS.to_string();
        let ok = received(SPEC_ID, &ts, SPEC_SIGNATURE);
        assert_eq!(verify(ok, SPEC_BODY, &spec_secret(), SPEC_TS + 299), Ok(()));
        assert_eq!(
            verify(ok, SPEC_BODY, &spec_secret(), SPEC_TS + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(ok, SPEC_BODY, &spec_secret(), SPEC_TS - 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(ok, br#"{"test": 2432232315}"#, &spec_secret(), SPEC_TS),
            Err(VerifyError::Mismatch)
        );
        let other_id = received("msg_other", &ts, SPEC_SIGNATURE);
        assert_eq!(
            verify(other_id, SPEC_BODY, &spec_secret(), SPEC_TS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(
                received(SPEC_ID, "soon", SPEC_SIGNATURE),
                SPEC_BODY,
                &spec_secret(),
                SPEC_TS
            ),
            Err(VerifyError::BadTimestamp)
        );
        let missing = Received {
            signature: None,
            ..ok
        };
        assert_eq!(
            verify(missing, SPEC_BODY, &spec_secret(), SPEC_TS),
            Err(VerifyError::Missing(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn any_listed_signature_and_any_secret_will_do_during_a_rotation() {
        let old = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let new = WebhookSecret::parse(&WebhookSecret::generate().unwrap()).unwrap();
        let both = sign(&[new.clone(), old.clone()], SPEC_ID, SPEC_TS, SPEC_BODY);
        assert_eq!(both.signature.split(' ').count(), 2);
        let r = received(&both.id, &both.timestamp, &both.signature);
        assert_eq!(verify(r, SPEC_BODY, &[old], SPEC_TS), Ok(()));
        assert_eq!(
            verify(r, SPEC_BODY, std::slice::from_ref(&new), SPEC_TS),
            Ok(())
        );
        let v2_only = received(SPEC_ID, "1614265330", "v2,abc");
        assert_eq!(
            verify(v2_only, SPEC_BODY, &[new], SPEC_TS),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn a_secret_without_the_prefix_is_its_raw_bytes() {
        let raw = WebhookSecret::parse("dashboard-secret").unwrap();
        let encoded =
            WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode("dashboard-secret")))
                .unwrap();
        assert_eq!(raw.sign("m", 1, b"x"), encoded.sign("m", 1, b"x"));
        assert_eq!(
            WebhookSecret::parse("whsec_%%%").unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(WebhookSecret::parse("  ").unwrap_err(), SecretError::Empty);
        assert_eq!(WebhookSecret::parse_list("a, b,").unwrap().len(), 2);
        assert!(!format!("{raw:?}").contains("dashboard"));
    }
}
