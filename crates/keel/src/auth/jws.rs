//! Compact JWS: parsing and signature checks. The algorithm is fixed by the key, never by the
//! token: a key verifies only the one algorithm it was published for.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::Reason;

/// Tokens larger than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

#[derive(Debug)]
pub struct Token<'a> {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    pub signing_input: &'a [u8],
    pub signature: Vec<u8>,
}

pub fn parse(token: &str) -> Result<Token<'_>, Reason> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Reason::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reason::Malformed);
    };
    let header = decode_object(header)?;
    let claims = decode_object(payload)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Reason::Malformed)?
        .to_string();
    if header.contains_key("crit") {
        // No critical extension is understood here, so none may be present (RFC 7515 §4.1.11).
        return Err(Reason::UnsupportedAlgorithm);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(Reason::Malformed),
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Reason::Malformed)?;
    let signed_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
    Ok(Token {
        alg,
        kid,
        claims,
        signing_input: &token.as_bytes()[..signed_len],
        signature,
    })
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, Reason> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Reason::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Reason::Malformed),
    }
}

/// A public key (or shared secret) and the one algorithm it verifies.
pub enum VerifyingKey {
    Hs256(ring::hmac::Key),
    Rs256 {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed P-256 point: `0x04 || x || y`.
    Es256(Vec<u8>),
    EdDsa(Vec<u8>),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.alg())
    }
}

impl VerifyingKey {
    pub fn hs256(secret: &[u8]) -> Self {
        VerifyingKey::Hs256(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    pub fn alg(&self) -> &'static str {
        match self {
            VerifyingKey::Hs256(_) => "HS256",
            VerifyingKey::Rs256 { .. } => "RS256",
            VerifyingKey::Es256(_) => "ES256",
            VerifyingKey::EdDsa(_) => "EdDSA",
        }
    }

    /// Checks `token`'s signature, refusing a token whose header names another algorithm.
    pub fn verify(&self, token: &Token<'_>) -> Result<(), Reason> {
        if token.alg != self.alg() {
            return Err(Reason::InvalidSignature);
        }
        let (msg, sig) = (token.signing_input, token.signature.as_slice());
        let valid = match self {
            VerifyingKey::Hs256(key) => ring::hmac::verify(key, msg, sig).is_ok(),
            VerifyingKey::Rs256 { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                .is_ok(),
            VerifyingKey::Es256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, sig)
                    .is_ok()
            }
            VerifyingKey::EdDsa(x) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok(),
        };
        if valid {
            Ok(())
        } else {
            Err(Reason::InvalidSignature)
        }
    }
}

/// Signs `claims` with an HS256 secret (development tokens).
pub fn sign_hs256(secret: &[u8], kid: &str, claims: &Value) -> String {
    let header = serde_json::json!({ "alg": "HS256", "typ": "JWT", "kid": kid });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_round_trip_and_tamper() {
        let token = sign_hs256(
            b"secret-secret-secret-secret-1234",
            "k",
            &serde_json::json!({"sub": "u1"}),
        );
        let parsed = parse(&token).unwrap();
        let key = VerifyingKey::hs256(b"secret-secret-secret-secret-1234");
        assert!(key.verify(&parsed).is_ok());
        assert_eq!(parsed.claims["sub"], "u1");
        let other = VerifyingKey::hs256(b"another-secret-another-secret-12");
        assert_eq!(other.verify(&parsed), Err(Reason::InvalidSignature));
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert!(parse(&tampered)
            .map(|t| key.verify(&t))
            .map_or(true, |r| r.is_err()));
    }

    #[test]
    fn shapes_are_checked() {
        assert_eq!(parse("a.b").unwrap_err(), Reason::Malformed);
        assert_eq!(parse("a.b.c.d").unwrap_err(), Reason::Malformed);
        assert_eq!(parse("!!.e30.").unwrap_err(), Reason::Malformed);
        assert_eq!(
            parse(&"a".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err(),
            Reason::TooLarge
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        let parsed = parse(&none).unwrap();
        assert_eq!(
            VerifyingKey::hs256(b"x").verify(&parsed),
            Err(Reason::InvalidSignature)
        );
    }
}
