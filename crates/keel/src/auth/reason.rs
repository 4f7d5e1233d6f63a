//! Why a token was refused: a small set of classes, safe to show a client and to count.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Missing,
    Malformed,
    TooLarge,
    UnsupportedAlgorithm,
    UnknownKey,
    InvalidSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    WrongIssuer,
    WrongAudience,
    WrongAuthorizedParty,
    MissingClaim,
    /// No verifier can check the token now (the issuer's keys were never fetched).
    Unavailable,
    /// A development token (`keel dev token`) where development tokens are not accepted.
    DevTokenRefused,
}

impl Reason {
    pub const ALL: [Reason; 15] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::TooLarge,
        Reason::UnsupportedAlgorithm,
        Reason::UnknownKey,
        Reason::InvalidSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::IssuedInFuture,
        Reason::WrongIssuer,
        Reason::WrongAudience,
        Reason::WrongAuthorizedParty,
        Reason::MissingClaim,
        Reason::Unavailable,
        Reason::DevTokenRefused,
    ];

    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::TooLarge => "too_large",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::UnknownKey => "unknown_key",
            Reason::InvalidSignature => "invalid_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::IssuedInFuture => "issued_in_future",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::WrongAuthorizedParty => "wrong_authorized_party",
            Reason::MissingClaim => "missing_claim",
            Reason::Unavailable => "unavailable",
            Reason::DevTokenRefused => "dev_token_refused",
        }
    }

    /// A sentence for the client. It never quotes the token or its claims.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Missing => "A bearer token is required.",
            Reason::Malformed => "The bearer token is malformed.",
            Reason::TooLarge => "The bearer token is larger than 8 KiB.",
            Reason::UnsupportedAlgorithm => "The token's signing algorithm is not accepted.",
            Reason::UnknownKey => "The token was signed with a key the issuer does not publish.",
            Reason::InvalidSignature => "The token's signature is invalid.",
            Reason::Expired => "The token has expired.",
            Reason::NotYetValid => "The token is not valid yet.",
            Reason::IssuedInFuture => "The token was issued in the future.",
            Reason::WrongIssuer => {
                "The token was issued by an issuer this service does not accept."
            }
            Reason::WrongAudience => "The token is meant for another audience.",
            Reason::WrongAuthorizedParty => {
                "The token was issued to a party this service does not accept."
            }
            Reason::MissingClaim => "The token lacks a required claim.",
            Reason::Unavailable => "Tokens cannot be verified right now; try again shortly.",
            Reason::DevTokenRefused => {
                "This is a development token (keel dev token), which this server does not accept: \
                 development tokens verify only with APP_ENV=development and AUTH_DEV_MODE on \
                 (its default when neither AUTH_JWKS_URL nor AUTH_HS256_SECRET is set)."
            }
        }
    }
}

/// Refusals counted by reason.
#[derive(Debug, Default)]
pub struct AuthStats {
    failures: [AtomicU64; Reason::ALL.len()],
    verified: AtomicU64,
    cache_hits: AtomicU64,
}

impl AuthStats {
    pub fn failure(&self, reason: Reason) {
        if let Some(i) = Reason::ALL.iter().position(|r| *r == reason) {
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn verified(&self, from_cache: bool) {
        self.verified.fetch_add(1, Ordering::Relaxed);
        if from_cache {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(reason, count)` for every reason.
    pub fn failures(&self) -> Vec<(Reason, u64)> {
        Reason::ALL
            .iter()
            .zip(&self.failures)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn verified_total(&self) -> (u64, u64) {
        (
            self.verified.load(Ordering::Relaxed),
            self.cache_hits.load(Ordering::Relaxed),
        )
    }
}
