//! Signed links of the filesystem backend, its equivalent of S3's presigned URLs: a token that
//! names one operation on one key until a deadline, signed with HMAC-SHA256 under a key derived
//! from the data key (every process with the same keys accepts the others' links).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a link allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkOp {
    Get,
    Put,
}

/// The signed content of a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    #[serde(rename = "o")]
    pub op: LinkOp,
    #[serde(rename = "k")]
    pub key: String,
    /// Expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires: i64,
    /// The most bytes an upload may send.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// The content type an upload is stored with.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not valid")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

/// Signs and checks links.
#[derive(Clone)]
pub struct LinkSigner {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner")
    }
}

impl LinkSigner {
    pub fn new(key: ring::hmac::Key) -> Self {
        Self { key }
    }

    /// `payload.signature`, both base64url.
    pub fn sign(&self, claims: &LinkClaims) -> String {
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = ring::hmac::sign(&self.key, payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of `token` when its signature holds and it has not expired by `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkError> {
        let (payload, signature) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::Invalid)?;
        ring::hmac::verify(&self.key, payload.as_bytes(), &signature)
            .map_err(|_| LinkError::Invalid)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| LinkError::Invalid)?;
        let claims: LinkClaims = serde_json::from_slice(&json).map_err(|_| LinkError::Invalid)?;
        if now.timestamp() >= claims.expires {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &[u8]) -> LinkSigner {
        LinkSigner::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    #[test]
    fn links_hold_until_they_expire_and_refuse_any_change() {
        let now = Utc::now();
        let claims = LinkClaims {
            op: LinkOp::Put,
            key: "users/a/b".into(),
            expires: now.timestamp() + 60,
            max_size: Some(10),
            content_type: Some("audio/mpeg".into()),
        };
        let s = signer(b"one");
        let token = s.sign(&claims);
        assert_eq!(s.verify(&token, now), Ok(claims.clone()));
        assert_eq!(
            s.verify(&token, now + chrono::Duration::seconds(60)),
            Err(LinkError::Expired)
        );
        assert_eq!(signer(b"two").verify(&token, now), Err(LinkError::Invalid));
        let (payload, sig) = token.split_once('.').unwrap();
        let mut changed = claims;
        changed.max_size = Some(10_000);
        let forged = format!(
            "{}.{sig}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&changed).unwrap())
        );
        assert_eq!(s.verify(&forged, now), Err(LinkError::Invalid));
        assert_eq!(s.verify(payload, now), Err(LinkError::Invalid));
        assert_eq!(s.verify("", now), Err(LinkError::Invalid));
    }
}
