//! CloudFront signed URLs (canned policy): a private object served by the CDN until a deadline.
//! The URL carries `Expires`, `Signature` (RSA-SHA1 over the policy, in CloudFront's URL-safe
//! base64) and `Key-Pair-Id`, which CloudFront checks against the public key of the key group.

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use sha1::Sha1;

/// Signs CloudFront URLs with one key of a key group.
#[derive(Clone)]
pub struct CloudFrontSigner {
    key_id: String,
    key: Arc<SigningKey<Sha1>>,
}

impl std::fmt::Debug for CloudFrontSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudFrontSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CloudFrontSigner {
    /// The signer of `key_id` with the RSA private key in the PEM file at `path` (PKCS#1 or
    /// PKCS#8, as CloudFront's key pairs come).
    pub fn load(key_id: &str, path: &Path) -> Result<CloudFrontSigner, String> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_pem(key_id, &pem).map_err(|message| format!("{}: {message}", path.display()))
    }

    pub fn from_pem(key_id: &str, pem: &str) -> Result<CloudFrontSigner, String> {
        if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("the key id is letters and digits (K2JCJMDEHXQW5F)".into());
        }
        let key = RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|_| "not an RSA private key in PEM (PKCS#1 or PKCS#8)".to_string())?;
        Ok(CloudFrontSigner {
            key_id: key_id.to_string(),
            key: Arc::new(SigningKey::<Sha1>::new(key)),
        })
    }

    /// `url` signed to work until `expires` (Unix seconds).
    pub fn sign(&self, url: &str, expires: i64) -> String {
        let signature = self.key.sign(canned_policy(url, expires).as_bytes());
        let encoded = url_safe(&STANDARD.encode(signature.to_bytes()));
        let separator = if url.contains('?') { '&' } else { '?' };
        format!(
            "{url}{separator}Expires={expires}&Signature={encoded}&Key-Pair-Id={}",
            self.key_id
        )
    }
}

/// The canned policy CloudFront rebuilds from a signed URL: the resource and its deadline, no
/// whitespace.
pub fn canned_policy(url: &str, expires: i64) -> String {
    format!(
        r#"{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    )
}

/// CloudFront's base64 for URLs: `+` → `-`, `=` → `_`, `/` → `~`.
pub fn url_safe(base64: &str) -> String {
    base64
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canned_policy_is_cloudfronts() {
        assert_eq!(
            canned_policy("https://d111111abcdef8.cloudfront.net/a.mp3", 1357034400),
            r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/a.mp3","Condition":{"DateLessThan":{"AWS:EpochTime":1357034400}}}]}"#
        );
        assert_eq!(url_safe("a+b/c=="), "a-b~c__");
        assert!(CloudFrontSigner::from_pem("K1", "not a key").is_err());
        assert!(CloudFrontSigner::from_pem("bad id", "").is_err());
    }
}
