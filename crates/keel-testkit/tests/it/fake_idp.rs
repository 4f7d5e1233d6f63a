//! Signatures checked with ring's verifiers; the JWKS endpoint checked over real HTTP.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519,
    RSA_PKCS1_2048_8192_SHA256,
};
use serde_json::{json, Value};

use keel_testkit::{Alg, FakeIdp, KeyId};

/// One base64url public parameter of `key` as the JWKS lists it.
fn param(key: KeyId, name: &str) -> String {
    FakeIdp::jwk(key)[name]
        .as_str()
        .unwrap_or_else(|| panic!("the JWK of {key:?} lacks {name}"))
        .to_string()
}

/// One public parameter, decoded to bytes.
fn param_bytes(key: KeyId, name: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(param(key, name))
        .unwrap_or_else(|_| panic!("{key:?}.{name} is base64url"))
}

fn derived_public_key(key: KeyId) -> Vec<u8> {
    FakeIdp::derived_public_key(key)
}

const ALL: [KeyId; 4] = [KeyId::Rsa1, KeyId::Rsa2, KeyId::Ec1, KeyId::Ed1];

/// Splits a compact JWS into (header, claims, signing input, signature bytes).
fn parts(token: &str) -> (Value, Value, String, Vec<u8>) {
    let pieces: Vec<&str> = token.split('.').collect();
    assert_eq!(pieces.len(), 3, "three parts in {token}");
    for piece in &pieces {
        assert!(!piece.contains('='), "no padding in {token}");
    }
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).expect("base64url");
    let header = serde_json::from_slice(&decode(pieces[0])).expect("header JSON");
    let claims = serde_json::from_slice(&decode(pieces[1])).expect("claims JSON");
    let input = format!("{}.{}", pieces[0], pieces[1]);
    (header, claims, input, decode(pieces[2]))
}

fn verify_rs256(key: KeyId, input: &str, sig: &[u8]) -> bool {
    RsaPublicKeyComponents {
        n: param_bytes(key, "n"),
        e: param_bytes(key, "e"),
    }
    .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), sig)
    .is_ok()
}

fn ec_point() -> Vec<u8> {
    let mut point = vec![0x04];
    point.extend(param_bytes(KeyId::Ec1, "x"));
    point.extend(param_bytes(KeyId::Ec1, "y"));
    point
}

#[test]
fn public_json_matches_the_private_keys() {
    for key in [KeyId::Rsa1, KeyId::Rsa2] {
        // ring's RSA public key is the PKCS#1 RSAPublicKey DER: checks n, e and our encoder.
        assert_eq!(FakeIdp::rsa_public_key_der(key), derived_public_key(key));
        assert_eq!(param_bytes(key, "n").len(), 256);
    }
    assert_eq!(derived_public_key(KeyId::Ec1), ec_point());
    assert_eq!(derived_public_key(KeyId::Ed1), param_bytes(KeyId::Ed1, "x"));
}

#[test]
fn rsa_public_key_der_is_a_sequence_of_two_positive_integers() {
    let der = FakeIdp::rsa_public_key_der(KeyId::Rsa1);
    // SEQUENCE, long length; INTEGER n of 257 bytes (0x00 + 256, the top bit is set).
    assert_eq!(der[0], 0x30);
    assert_eq!(&der[1..2], &[0x82]);
    assert_eq!(
        usize::from(der[2]) << 8 | usize::from(der[3]),
        der.len() - 4
    );
    assert_eq!(&der[4..9], &[0x02, 0x82, 0x01, 0x01, 0x00]);
    assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
}

#[test]
#[should_panic(expected = "not an RSA key")]
fn rsa_public_key_der_rejects_other_keys() {
    FakeIdp::rsa_public_key_der(KeyId::Ec1);
}

#[tokio::test]
async fn default_token_is_rs256_rsa1_and_verifies() {
    let idp = FakeIdp::start().await;
    let claims = idp.claims("user-1");
    let (header, decoded, input, sig) = parts(&idp.token(&claims));
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"})
    );
    assert_eq!(decoded, claims);
    assert_eq!(sig.len(), 256);
    assert!(verify_rs256(KeyId::Rsa1, &input, &sig));
    assert!(!verify_rs256(KeyId::Rsa2, &input, &sig));
    let mut tampered = sig.clone();
    tampered[10] ^= 1;
    assert!(!verify_rs256(KeyId::Rsa1, &input, &tampered));
}

#[tokio::test]
async fn every_algorithm_verifies_with_its_public_key() {
    let idp = FakeIdp::start().await;
    let claims = idp.claims("u");

    let (h, _, input, sig) = parts(&idp.sign(Alg::Rs256(KeyId::Rsa2), Some("rsa-2"), &claims));
    assert_eq!(h["alg"], "RS256");
    assert!(verify_rs256(KeyId::Rsa2, &input, &sig));
    assert!(!verify_rs256(KeyId::Rsa1, &input, &sig));

    let (h, _, input, sig) = parts(&idp.sign(Alg::Es256, Some("ec-1"), &claims));
    assert_eq!(h, json!({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}));
    assert_eq!(sig.len(), 64, "fixed r||s");
    let ec = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, ec_point());
    assert!(ec.verify(input.as_bytes(), &sig).is_ok());
    assert!(ec.verify(b"other", &sig).is_err());

    let (h, _, input, sig) = parts(&idp.sign(Alg::EdDsa, Some("ed-1"), &claims));
    assert_eq!(h["alg"], "EdDSA");
    let ed = UnparsedPublicKey::new(&ED25519, param_bytes(KeyId::Ed1, "x"));
    assert!(ed.verify(input.as_bytes(), &sig).is_ok());
    assert!(ed.verify(b"other", &sig).is_err());

    let secret = b"shared-secret".to_vec();
    let (h, _, input, sig) = parts(&idp.sign(Alg::Hs256(secret.clone()), None, &claims));
    assert_eq!(
        h,
        json!({"alg": "HS256", "typ": "JWT"}),
        "no kid when none is given"
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    assert!(hmac::verify(&key, input.as_bytes(), &sig).is_ok());
}

#[tokio::test]
async fn hs256_with_the_rsa_public_key_as_secret() {
    let idp = FakeIdp::start().await;
    let der = FakeIdp::rsa_public_key_der(KeyId::Rsa1);
    let token = idp.sign(
        Alg::Hs256(der.clone()),
        Some("rsa-1"),
        &idp.claims("attacker"),
    );
    let (h, _, input, sig) = parts(&token);
    assert_eq!(h["alg"], "HS256");
    assert_eq!(h["kid"], "rsa-1");
    let key = hmac::Key::new(hmac::HMAC_SHA256, &der);
    assert!(hmac::verify(&key, input.as_bytes(), &sig).is_ok());
    assert!(!verify_rs256(KeyId::Rsa1, &input, &sig));
}

#[tokio::test]
async fn alg_none_has_an_empty_signature() {
    let idp = FakeIdp::start().await;
    let token = idp.sign(Alg::None, None, &idp.claims("u"));
    assert!(token.ends_with('.'));
    let (h, _, _, sig) = parts(&token);
    assert_eq!(h, json!({"alg": "none", "typ": "JWT"}));
    assert!(sig.is_empty());
}

#[tokio::test]
async fn sign_with_header_keeps_the_header_as_given() {
    let idp = FakeIdp::start().await;
    let header =
        json!({"alg": "RS256", "kid": "rsa-1", "jku": "http://evil.example/jwks", "crit": ["x"]});
    let claims = json!({"sub": "u"});
    let (h, c, input, sig) =
        parts(&idp.sign_with_header(&header, &claims, Alg::Rs256(KeyId::Rsa1)));
    assert_eq!(h, header);
    assert_eq!(c, claims);
    assert!(verify_rs256(KeyId::Rsa1, &input, &sig));

    // The header may lie about the algorithm; the signature follows `alg`.
    let lying = json!({"alg": "none"});
    let (h, _, input, sig) = parts(&idp.sign_with_header(&lying, &claims, Alg::Rs256(KeyId::Rsa1)));
    assert_eq!(h, lying);
    assert!(verify_rs256(KeyId::Rsa1, &input, &sig));

    let token = idp.sign_with_header(&json!({"alg": "none"}), &claims, Alg::None);
    assert!(token.ends_with('.') && token.matches('.').count() == 2);
}

#[tokio::test]
async fn default_claims() {
    let idp = FakeIdp::start().await;
    let c = idp.claims("user-7");
    assert_eq!(c["sub"], "user-7");
    assert_eq!(c["iss"], idp.issuer());
    assert_eq!(c["aud"], "keel-test");
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(c["nbf"].as_u64(), Some(iat));
    assert_eq!(c["exp"].as_u64(), Some(iat + 600));
    assert!(idp.issuer().starts_with("http://127.0.0.1:") && idp.issuer().ends_with('/'));
    assert_eq!(
        idp.jwks_url(),
        format!("{}.well-known/jwks.json", idp.issuer())
    );
}

#[test]
fn jwk_shapes() {
    let rsa = FakeIdp::jwk(KeyId::Rsa2);
    let keys: Vec<&str> = rsa
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 6);
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["kid"], "rsa-2");
    assert_eq!(rsa["use"], "sig");
    assert_eq!(rsa["alg"], "RS256");
    assert_eq!(rsa["n"], param(KeyId::Rsa2, "n"));
    assert_eq!(rsa["e"], "AQAB");
    assert_eq!(
        FakeIdp::jwk(KeyId::Ec1),
        json!({"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
               "x": param(KeyId::Ec1, "x"), "y": param(KeyId::Ec1, "y")})
    );
    let ed = FakeIdp::jwk(KeyId::Ed1);
    assert_eq!(
        (&ed["kty"], &ed["crv"], &ed["kid"], &ed["alg"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("ed-1"),
            &json!("EdDSA")
        )
    );
    assert_eq!(ed["x"], param(KeyId::Ed1, "x"));
    assert_eq!(ed.as_object().unwrap().len(), 6);
    for key in ALL {
        assert_eq!(FakeIdp::jwk(key)["kid"], key.kid());
    }
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("JWKS request")
}

fn kids(body: &Value) -> Vec<&str> {
    body["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn jwks_over_http() {
    let idp = FakeIdp::start().await;
    assert_eq!(idp.fetches(), 0);

    let response = get(&idp.jwks_url()).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("cache-control").is_none());
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(kids(&body), ["rsa-1", "ec-1", "ed-1"]);
    assert_eq!(body["keys"][0], FakeIdp::jwk(KeyId::Rsa1));
    assert_eq!(body["keys"][1], FakeIdp::jwk(KeyId::Ec1));
    assert_eq!(body["keys"][2], FakeIdp::jwk(KeyId::Ed1));
    assert_eq!(idp.fetches(), 1);

    // Rotation, through a clone: same server, same state.
    let other = idp.clone();
    other.publish(&[KeyId::Rsa2, KeyId::Rsa1]);
    let body: Value = get(&idp.jwks_url()).await.json().await.unwrap();
    assert_eq!(kids(&body), ["rsa-2", "rsa-1"]);
    other.publish(&[]);
    let body: Value = get(&idp.jwks_url()).await.json().await.unwrap();
    assert_eq!(body, json!({"keys": []}));
    assert_eq!(idp.fetches(), 3);

    idp.set_max_age(Some(300));
    let response = get(&idp.jwks_url()).await;
    assert_eq!(response.headers()["cache-control"], "max-age=300");
    idp.set_max_age(None);
    assert!(get(&idp.jwks_url())
        .await
        .headers()
        .get("cache-control")
        .is_none());
    assert_eq!(idp.fetches(), 5);

    idp.set_down(true);
    let url = idp.jwks_url();
    assert_eq!(get(&url).await.status(), 503);
    assert_eq!(get(&url).await.status(), 503);
    assert_eq!(idp.fetches(), 5, "503s are not counted");
    idp.set_down(false);
    assert_eq!(idp.jwks_url(), url);
    assert_eq!(get(&url).await.status(), 200);
    assert_eq!(idp.fetches(), 6);

    let other_path = idp.issuer() + "jwks";
    assert_eq!(get(&other_path).await.status(), 404);
    assert_eq!(idp.fetches(), 6);
}

#[tokio::test]
async fn servers_are_independent() {
    let a = FakeIdp::start().await;
    let b = FakeIdp::start().await;
    assert_ne!(a.jwks_url(), b.jwks_url());
    a.publish(&[KeyId::Ed1]);
    let body: Value = get(&b.jwks_url()).await.json().await.unwrap();
    assert_eq!(kids(&body), ["rsa-1", "ec-1", "ed-1"]);
    assert_eq!((a.fetches(), b.fetches()), (0, 1));
}

#[tokio::test]
async fn server_stops_with_the_last_handle() {
    let idp = FakeIdp::start().await;
    let url = idp.jwks_url();
    let clone = idp.clone();
    drop(idp);
    assert_eq!(get(&url).await.status(), 200, "a clone keeps it running");
    drop(clone);
    for _ in 0..100 {
        let client = reqwest::Client::new();
        if client.get(&url).send().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the fake IdP still answers after its last handle was dropped");
}
