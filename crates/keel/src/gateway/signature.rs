//! `x-keel-signature`: an HMAC-SHA256 under `UPSTREAM_SIGNING_SECRET` over the time and the
//! identity Keel passes to the app, so the app can refuse a request that did not come through
//! Keel (one sent to its private address directly, with identity headers of the sender's choice).
//!
//! The header is `t=<unix seconds>,v1=<64 lowercase hex digits>`; the signed text is these
//! fields joined by `\n`: `t`, the method, the path and query as forwarded, `x-user-id`,
//! `x-tenant-id`, `x-entitlements`, `x-request-id` (an absent header is an empty field).
//! docs/GATEWAY.md shows how an app checks it.

use axum::http::HeaderValue;
use ring::hmac;

pub struct Signer {
    key: hmac::Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

/// What is signed, besides the time.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub user_id: &'a [u8],
    pub tenant_id: &'a [u8],
    pub entitlements: &'a [u8],
    pub request_id: &'a [u8],
}

impl Signer {
    pub fn new(secret: &str) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    /// The header value for `signed` at `unix_seconds`.
    pub fn sign(&self, unix_seconds: i64, signed: &Signed<'_>) -> HeaderValue {
        let time = unix_seconds.to_string();
        let time = time.as_str();
        let mut context = hmac::Context::with_key(&self.key);
        let fields: [&[u8]; 7] = [
            time.as_bytes(),
            signed.method.as_bytes(),
            signed.path_and_query.as_bytes(),
            signed.user_id,
            signed.tenant_id,
            signed.entitlements,
            signed.request_id,
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                context.update(b"\n");
            }
            context.update(field);
        }
        let tag = context.sign();
        let mut out = String::with_capacity(time.len() + 70);
        out.push_str("t=");
        out.push_str(time);
        out.push_str(",v1=");
        for byte in tag.as_ref() {
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        }
        HeaderValue::from_maybe_shared(axum::body::Bytes::from(out))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_the_documented_text() {
        let signer = Signer::new("a-shared-secret-of-enough-length");
        let signed = Signed {
            method: "GET",
            path_and_query: "/api/items?page=2",
            user_id: b"user_1",
            tenant_id: b"",
            entitlements: b"premium,pro",
            request_id: b"abc",
        };
        let value = signer.sign(1_700_000_000, &signed);
        let value = value.to_str().unwrap();
        let text = "1700000000\nGET\n/api/items?page=2\nuser_1\n\npremium,pro\nabc";
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"a-shared-secret-of-enough-length");
        let expected: String = hmac::sign(&key, text.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(value, format!("t=1700000000,v1={expected}"));
        let other = Signed {
            user_id: b"user_2",
            ..signed
        };
        assert_ne!(signer.sign(1_700_000_000, &other).to_str().unwrap(), value);
    }
}
