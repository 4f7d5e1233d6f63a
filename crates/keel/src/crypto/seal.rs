//! AES-256-GCM sealing of values stored at rest, under the configured data keys.
//!
//! A sealed value is `version (1) | key-id length (1) | key id | nonce (12) | ciphertext | tag
//! (16)`. The header is authenticated together with the caller's aad, so neither the key id nor
//! the context a value was sealed for can be swapped.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::dev_key;
use super::keys::DataKey;

/// The only format version written and read.
const VERSION: u8 = 1;
/// The longest key id a sealed value can name.
const MAX_KID_LEN: usize = 64;
/// The AES-GCM authentication tag's length.
const TAG_LEN: usize = 16;

/// Why a value could not be sealed or opened. Messages never hold key bytes, plaintext or aad.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No data key is configured (set `DATA_ENCRYPTION_KEYS`).
    #[error("no data encryption keys are configured (set DATA_ENCRYPTION_KEYS)")]
    NoKeys,
    /// The value names a key id that is not configured.
    #[error("the value was sealed under key {0}, which is not configured")]
    UnknownKey(String),
    /// The value is not a sealed value (bad version, header or length).
    #[error("the sealed value is malformed")]
    Malformed,
    /// Authentication failed: wrong key, wrong aad or a tampered value.
    #[error("the sealed value failed authentication (wrong key, aad or tampered)")]
    Failed,
    /// The system random generator failed.
    #[error("no randomness available")]
    Random,
    /// A key is unusable: the development key file cannot be read or written, or a configured
    /// key has a bad id or length.
    #[error("data key: {0}")]
    KeyFile(String),
}

/// One usable key.
struct Entry {
    id: String,
    key: LessSafeKey,
    /// For pseudonyms: derived from the data key, never the key itself.
    pseudonym: ring::hmac::Key,
}

/// Seals and opens values under the configured data keys: seals with the newest, opens with
/// whichever key a value names. Cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    /// Newest first; never empty.
    keys: Arc<[Entry]>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

impl Sealer {
    /// A sealer over `keys`, newest first. Each id must be 1 to 64 bytes and each key 32 bytes.
    pub fn new(keys: &[DataKey]) -> Result<Sealer, SealError> {
        if keys.is_empty() {
            return Err(SealError::NoKeys);
        }
        let entries = keys
            .iter()
            .map(|k| {
                if k.id.is_empty() || k.id.len() > MAX_KID_LEN {
                    return Err(SealError::KeyFile(format!(
                        "key id {:?} must be 1 to {MAX_KID_LEN} bytes",
                        k.id
                    )));
                }
                let unbound = UnboundKey::new(&AES_256_GCM, k.bytes())
                    .map_err(|_| SealError::KeyFile(format!("key {} must be 32 bytes", k.id)))?;
                let derive = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.bytes());
                let derived = ring::hmac::sign(&derive, b"keel pseudonym v1");
                Ok(Entry {
                    id: k.id.clone(),
                    key: LessSafeKey::new(unbound),
                    pseudonym: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sealer {
            keys: entries.into(),
        })
    }

    /// A sealer over the configured `keys` (`DATA_ENCRYPTION_KEYS`). Without any: the development
    /// key in `dev_key_dir/data-encryption.key`, generated on first use, where the environment
    /// allows one (`None` in production, which then fails).
    pub fn configured(keys: &[DataKey], dev_key_dir: Option<&Path>) -> Result<Sealer, SealError> {
        if !keys.is_empty() {
            return Sealer::new(keys);
        }
        match dev_key_dir {
            Some(dir) => Sealer::new(&dev_key::load_or_create(dir)?),
            None => Err(SealError::NoKeys),
        }
    }

    /// An HMAC-SHA256 key for `purpose`, derived from the newest data key: every process with
    /// the same keys derives the same one, and it reveals nothing of the data key.
    pub fn derived_mac_key(&self, purpose: &str) -> ring::hmac::Key {
        let mut label = b"keel derived key v1: ".to_vec();
        label.extend_from_slice(purpose.as_bytes());
        let seed = match self.keys.first() {
            Some(entry) => ring::hmac::sign(&entry.pseudonym, &label),
            None => ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b""), &label),
        };
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed.as_ref())
    }

    /// The id of the newest key, which [`Sealer::seal`] uses.
    pub fn current_key_id(&self) -> &str {
        self.keys.first().map(|e| e.id.as_str()).unwrap_or_default()
    }

    /// A keyed hash of `value` under the newest key (`h1:` and 32 hex digits): the same value
    /// always maps to the same pseudonym while that key is the newest, and it cannot be reversed
    /// or recomputed without the key.
    pub fn pseudonym(&self, value: &str) -> String {
        let Some(entry) = self.keys.first() else {
            return "h1:".into();
        };
        let tag = ring::hmac::sign(&entry.pseudonym, value.as_bytes());
        let hex: String = tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("h1:{hex}")
    }

    /// Every configured key id, newest first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|e| e.id.as_str()).collect()
    }

    /// Seals `plaintext`, bound to `aad` (the caller passes e.g. "revenuecat:EVENT_ID"): a value
    /// opened with another aad fails.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let entry = self.keys.first().ok_or(SealError::NoKeys)?;
        let kid = entry.id.as_bytes();
        let kid_len = u8::try_from(kid.len()).map_err(|_| SealError::Malformed)?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;

        let header_len = 2 + kid.len();
        let body_start = header_len + NONCE_LEN;
        let mut out = Vec::with_capacity(body_start + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.push(kid_len);
        out.extend_from_slice(kid);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);

        let full_aad = [&out[..header_len], aad].concat();
        let tag = entry
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(full_aad.as_slice()),
                &mut out[body_start..],
            )
            .map_err(|_| SealError::Failed)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a value sealed under any configured key: the key id is read from the value itself.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let parts = Parts::parse(sealed).ok_or(SealError::Malformed)?;
        let entry = self
            .keys
            .iter()
            .find(|e| e.id == parts.kid)
            .ok_or_else(|| SealError::UnknownKey(parts.kid.to_string()))?;
        let nonce =
            Nonce::try_assume_unique_for_key(parts.nonce).map_err(|_| SealError::Malformed)?;
        let full_aad = [parts.header, aad].concat();
        let mut buf = parts.body.to_vec();
        let plain_len = entry
            .key
            .open_in_place(nonce, Aad::from(full_aad.as_slice()), &mut buf)
            .map_err(|_| SealError::Failed)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    /// The key id a sealed value names (None when the value is malformed).
    pub fn key_id_of(sealed: &[u8]) -> Option<&str> {
        Parts::parse(sealed).map(|p| p.kid)
    }
}

/// The pieces of a well-formed sealed value.
struct Parts<'a> {
    /// Version, key-id length and key id: authenticated with the caller's aad.
    header: &'a [u8],
    kid: &'a str,
    nonce: &'a [u8],
    /// Ciphertext followed by the tag.
    body: &'a [u8],
}

impl<'a> Parts<'a> {
    fn parse(sealed: &'a [u8]) -> Option<Parts<'a>> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION {
            return None;
        }
        let (&kid_len, rest) = rest.split_first()?;
        let kid_len = usize::from(kid_len);
        if kid_len == 0 || kid_len > MAX_KID_LEN || rest.len() < kid_len + NONCE_LEN + TAG_LEN {
            return None;
        }
        let (kid, rest) = rest.split_at(kid_len);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        Some(Parts {
            header: sealed.get(..2 + kid_len)?,
            kid: std::str::from_utf8(kid).ok()?,
            nonce,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretSlice;

    use super::*;

    fn key(id: &str, byte: u8) -> DataKey {
        DataKey {
            id: id.to_string(),
            key: SecretSlice::from(vec![byte; 32]),
        }
    }

    fn sealer(keys: &[DataKey]) -> Sealer {
        Sealer::new(keys).expect("valid keys")
    }

    #[test]
    fn round_trip() {
        let s = sealer(&[key("k1", 1)]);
        let sealed = s.seal(b"hello world", b"revenuecat:evt_1").expect("seal");
        assert_eq!(Sealer::key_id_of(&sealed), Some("k1"));
        let opened = s.open(&sealed, b"revenuecat:evt_1").expect("open");
        assert_eq!(opened, b"hello world");

        let empty = s.seal(b"", b"").expect("seal empty");
        assert_eq!(s.open(&empty, b"").expect("open empty"), b"");
    }

    #[test]
    fn accessors_and_debug_show_ids_only() {
        let s = sealer(&[key("new", 0xAB), key("old", 0xCD)]);
        assert_eq!(s.current_key_id(), "new");
        assert_eq!(s.key_ids(), vec!["new", "old"]);
        let debug = format!("{s:?}");
        assert!(debug.contains("new") && debug.contains("old"), "{debug}");
        assert!(!debug.contains("171") && !debug.contains("205"), "{debug}");
    }

    #[test]
    fn rejects_no_keys_and_bad_keys() {
        assert!(matches!(Sealer::new(&[]), Err(SealError::NoKeys)));
        let short = DataKey {
            id: "short".into(),
            key: SecretSlice::from(vec![7u8; 16]),
        };
        assert!(matches!(Sealer::new(&[short]), Err(SealError::KeyFile(_))));
        let long_id = key(&"x".repeat(65), 1);
        assert!(matches!(
            Sealer::new(&[long_id]),
            Err(SealError::KeyFile(_))
        ));
        assert!(Sealer::new(&[key(&"x".repeat(64), 1)]).is_ok());
    }

    #[test]
    fn opens_under_an_older_key_after_rotation() {
        let old = sealer(&[key("old", 1)]);
        let sealed = old.seal(b"secret", b"aad").expect("seal");
        let rotated = sealer(&[key("new", 2), key("old", 1)]);
        assert_eq!(rotated.open(&sealed, b"aad").expect("open"), b"secret");
        let resealed = rotated.seal(b"secret", b"aad").expect("seal");
        assert_eq!(Sealer::key_id_of(&resealed), Some("new"));
    }

    #[test]
    fn unknown_key_id() {
        let sealed = sealer(&[key("gone", 1)]).seal(b"x", b"").expect("seal");
        match sealer(&[key("k1", 1)]).open(&sealed, b"") {
            Err(SealError::UnknownKey(id)) => assert_eq!(id, "gone"),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }

    #[test]
    fn same_id_other_key_fails() {
        let sealed = sealer(&[key("k1", 1)]).seal(b"x", b"").expect("seal");
        assert!(matches!(
            sealer(&[key("k1", 2)]).open(&sealed, b""),
            Err(SealError::Failed)
        ));
    }

    #[test]
    fn wrong_aad_fails() {
        let s = sealer(&[key("k1", 1)]);
        let sealed = s.seal(b"payload", b"revenuecat:evt_1").expect("seal");
        assert!(matches!(
            s.open(&sealed, b"revenuecat:evt_2"),
            Err(SealError::Failed)
        ));
        assert!(matches!(s.open(&sealed, b""), Err(SealError::Failed)));
    }

    #[test]
    fn tampering_any_byte_is_rejected() {
        let s = sealer(&[key("k1", 1)]);
        let sealed = s.seal(b"short", b"aad").expect("seal");
        let header_len = 2 + "k1".len();
        for i in 0..sealed.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut bad = sealed.clone();
                bad[i] ^= flip;
                let result = s.open(&bad, b"aad");
                if i < header_len {
                    // A changed header is malformed or names another (unknown) key.
                    assert!(
                        matches!(
                            result,
                            Err(SealError::Malformed
                                | SealError::Failed
                                | SealError::UnknownKey(_))
                        ),
                        "byte {i} flip {flip:#x}: {result:?}"
                    );
                } else {
                    assert!(
                        matches!(result, Err(SealError::Failed)),
                        "byte {i} flip {flip:#x}: {result:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn swapping_the_key_id_to_another_configured_key_fails() {
        let s = sealer(&[key("k1", 1), key("k2", 2)]);
        let mut sealed = s.seal(b"payload", b"aad").expect("seal");
        sealed[3] = b'2';
        assert_eq!(Sealer::key_id_of(&sealed), Some("k2"));
        assert!(matches!(s.open(&sealed, b"aad"), Err(SealError::Failed)));
    }

    #[test]
    fn sealed_bytes_hide_the_plaintext() {
        let s = sealer(&[key("k1", 1)]);
        let plaintext = b"very-recognisable-plaintext";
        let sealed = s.seal(plaintext, b"aad").expect("seal");
        assert!(!sealed
            .windows(8)
            .any(|w| plaintext.windows(8).any(|p| p == w)));
    }

    #[test]
    fn two_seals_differ() {
        let s = sealer(&[key("k1", 1)]);
        let a = s.seal(b"same", b"aad").expect("seal");
        let b = s.seal(b"same", b"aad").expect("seal");
        assert_ne!(a, b);
    }

    #[test]
    fn truncated_inputs_never_panic() {
        let s = sealer(&[key("k1", 1)]);
        let sealed = s.seal(b"some plaintext", b"aad").expect("seal");
        for len in 0..sealed.len() {
            let result = s.open(&sealed[..len], b"aad");
            assert!(
                matches!(result, Err(SealError::Malformed | SealError::Failed)),
                "prefix {len}: {result:?}"
            );
            let _ = Sealer::key_id_of(&sealed[..len]);
        }
        assert_eq!(Sealer::key_id_of(&[]), None);
        assert_eq!(Sealer::key_id_of(&[2, 2, b'k', b'1']), None);
    }

    #[test]
    fn error_messages_hold_no_secrets() {
        let s = sealer(&[key("k1", 0x41)]);
        let sealed = s.seal(b"PLAINTEXT", b"AADVALUE").expect("seal");
        let errors = [
            s.open(&sealed, b"OTHERAAD").err(),
            s.open(&sealed[..5], b"AADVALUE").err(),
            sealer(&[key("k9", 0x41)]).open(&sealed, b"AADVALUE").err(),
        ];
        for e in errors.into_iter().flatten() {
            let text = format!("{e} {e:?}");
            for secret in ["PLAINTEXT", "AAD", "AAAA"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
}
