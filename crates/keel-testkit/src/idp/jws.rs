//! The fake identity provider's key material and JWS signing, with ring only.
//!
//! The keys are fixed test keys embedded in the crate (`src/keys/`), so tokens and JWKS
//! documents are reproducible across runs; they protect nothing.

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};

use super::{Alg, KeyId};

const RSA1_PEM: &str = include_str!("../keys/rsa1.pem");
const RSA2_PEM: &str = include_str!("../keys/rsa2.pem");
const EC1_PEM: &str = include_str!("../keys/ec1.pem");
const ED1_PEM: &str = include_str!("../keys/ed1.pem");
const PUBLIC_JSON: &str = include_str!("../keys/public.json");

/// The private keys, parsed once per process.
pub(super) struct Keys {
    pub(super) rsa1: RsaKeyPair,
    pub(super) rsa2: RsaKeyPair,
    pub(super) ec1: EcdsaKeyPair,
    pub(super) ed1: Ed25519KeyPair,
    pub(super) rng: SystemRandom,
}

pub(super) fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        Keys {
            rsa1: RsaKeyPair::from_pkcs8(&pem_to_der(RSA1_PEM)).expect("rsa1.pem is PKCS#8 RSA"), // invariant: the keys are constants embedded in this crate
            rsa2: RsaKeyPair::from_pkcs8(&pem_to_der(RSA2_PEM)).expect("rsa2.pem is PKCS#8 RSA"), // invariant: the keys are constants embedded in this crate
            ec1: EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &pem_to_der(EC1_PEM),
                &rng,
            )
            .expect("ec1.pem is PKCS#8 P-256"), // invariant: the keys are constants embedded in this crate
            ed1: Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pem_to_der(ED1_PEM))
                .expect("ed1.pem is PKCS#8 Ed25519"), // invariant: the keys are constants embedded in this crate
            rng,
        }
    })
}

/// `public.json`: `{"rsa1":{"n","e"},"rsa2":{"n","e"},"ec1":{"x","y"},"ed1":{"x"}}`.
fn public_params() -> &'static Value {
    static PUBLIC: OnceLock<Value> = OnceLock::new();
    // invariant: public.json is a constant embedded in this crate
    let parse = || serde_json::from_str(PUBLIC_JSON).expect("public.json is JSON"); // invariant: embedded constant
    PUBLIC.get_or_init(parse)
}

/// One base64url public parameter of a key, as stored in `public.json`.
pub(super) fn param(key: KeyId, name: &str) -> &'static str {
    public_params()[key.file_stem()][name]
        .as_str()
        .unwrap_or_else(|| panic!("public.json lacks {}.{name}", key.file_stem()))
}

/// One public parameter, decoded to bytes.
pub(super) fn param_bytes(key: KeyId, name: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(param(key, name))
        .unwrap_or_else(|_| panic!("{}.{name} is base64url", key.file_stem()))
}

/// PEM → DER: drop the armor lines, base64-decode the rest (standard alphabet).
pub(super) fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).expect("PEM body is base64") // invariant: the keys are constants embedded in this crate
}

pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public JWK of a key.
pub(super) fn jwk(key: KeyId) -> Value {
    match key {
        KeyId::Rsa1 | KeyId::Rsa2 => json!({
            "kty": "RSA",
            "kid": key.kid(),
            "use": "sig",
            "alg": "RS256",
            "n": param(key, "n"),
            "e": param(key, "e"),
        }),
        KeyId::Ec1 => json!({
            "kty": "EC",
            "crv": "P-256",
            "kid": key.kid(),
            "use": "sig",
            "alg": "ES256",
            "x": param(key, "x"),
            "y": param(key, "y"),
        }),
        KeyId::Ed1 => json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": key.kid(),
            "use": "sig",
            "alg": "EdDSA",
            "x": param(key, "x"),
        }),
    }
}

/// The JWS signature over `signing_input` (`b64(header).b64(claims)`) with `alg`.
pub(super) fn signature(alg: &Alg, signing_input: &[u8]) -> Vec<u8> {
    let keys = keys();
    match alg {
        Alg::Rs256(key) => {
            let pair = match key {
                KeyId::Rsa1 => &keys.rsa1,
                KeyId::Rsa2 => &keys.rsa2,
                other => panic!("RS256 needs an RSA key, not {other:?}"),
            };
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &keys.rng, signing_input, &mut sig)
                .expect("RSA signing"); // invariant: signing with a valid key into a correctly sized buffer
            sig
        }
        Alg::Es256 => keys
            .ec1
            .sign(&keys.rng, signing_input)
            .expect("ECDSA signing") // invariant: signing with a valid key into a correctly sized buffer
            .as_ref()
            .to_vec(),
        Alg::EdDsa => keys.ed1.sign(signing_input).as_ref().to_vec(),
        Alg::Hs256(secret) => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
            hmac::sign(&key, signing_input).as_ref().to_vec()
        }
        Alg::None => Vec::new(),
    }
}

/// A compact JWS: `b64(header).b64(claims).b64(signature)`.
pub(super) fn compact(header: &Value, claims: &Value, alg: &Alg) -> String {
    let header = serde_json::to_vec(header).expect("header serializes"); // invariant: a serde_json::Value always serializes
    let claims = serde_json::to_vec(claims).expect("claims serialize"); // invariant: a serde_json::Value always serializes
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let sig = signature(alg, signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&sig))
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`, DER-encoded.
pub(super) fn rsa_public_key_der(key: KeyId) -> Vec<u8> {
    assert!(
        matches!(key, KeyId::Rsa1 | KeyId::Rsa2),
        "{key:?} is not an RSA key"
    );
    let mut body = der_integer(&param_bytes(key, "n"));
    body.extend(der_integer(&param_bytes(key, "e")));
    der_tlv(0x30, &body)
}

/// A non-negative DER INTEGER from big-endian magnitude bytes.
fn der_integer(magnitude: &[u8]) -> Vec<u8> {
    let first = magnitude.iter().position(|&b| b != 0);
    let trimmed = first.map_or(&[][..], |i| &magnitude[i..]);
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        // Zero is one 0x00 byte; a set top bit needs a 0x00 so the value stays positive.
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    der_tlv(0x02, &content)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The public key ring derives from a private key, for consistency checks in tests.
pub(super) fn derived_public_key(key: KeyId) -> Vec<u8> {
    use ring::signature::KeyPair;

    let keys = keys();
    match key {
        KeyId::Rsa1 => keys.rsa1.public_key().as_ref().to_vec(),
        KeyId::Rsa2 => keys.rsa2.public_key().as_ref().to_vec(),
        KeyId::Ec1 => keys.ec1.public_key().as_ref().to_vec(),
        KeyId::Ed1 => keys.ed1.public_key().as_ref().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integers() {
        assert_eq!(der_integer(&[]), [0x02, 0x01, 0x00]);
        assert_eq!(der_integer(&[0x00, 0x00]), [0x02, 0x01, 0x00]);
        assert_eq!(
            der_integer(&[0x01, 0x00, 0x01]),
            [0x02, 0x03, 0x01, 0x00, 0x01]
        );
        assert_eq!(der_integer(&[0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(der_integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_tlv(0x04, &[0; 0x7f])[..2], [0x04, 0x7f]);
        assert_eq!(der_tlv(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(der_tlv(0x04, &[0; 0x101])[..4], [0x04, 0x82, 0x01, 0x01]);
    }
}
