//! Service credentials: `SERVICE_TOKENS=name:secret,…`, the app's own credentials for the jobs
//! API. They are not user tokens: a secret matches in constant time, and its name is the actor
//! of the audit rows it causes.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::constant_time_eq;

/// The shortest secret accepted in production.
pub const MIN_SERVICE_SECRET_LEN: usize = 32;

/// One named credential. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct ServiceToken {
    pub name: String,
    secret: SecretString,
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The configured service credentials.
#[derive(Debug, Clone, Default)]
pub struct ServiceTokens(Vec<ServiceToken>);

/// Names: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl ServiceTokens {
    /// Parses `name:secret,…`; each problem names the entry by its name or position, never by
    /// its secret.
    pub fn parse(raw: &str) -> (Self, Vec<String>) {
        let mut tokens: Vec<ServiceToken> = Vec::new();
        let mut problems = Vec::new();
        for (index, entry) in raw.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let Some((name, secret)) = entry.split_once(':') else {
                problems.push(format!("entry {} must be name:secret", index + 1));
                continue;
            };
            let (name, secret) = (name.trim(), secret.trim());
            if !is_valid_name(name) {
                problems.push(format!(
                    "entry {}: the name must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                    index + 1
                ));
                continue;
            }
            if secret.is_empty() {
                problems.push(format!("{name}: the secret is empty"));
                continue;
            }
            if tokens.iter().any(|t| t.name == name) {
                problems.push(format!("{name} is named twice"));
                continue;
            }
            if tokens.iter().any(|t| t.secret.expose_secret() == secret) {
                problems.push(format!("{name} shares its secret with another name"));
                continue;
            }
            tokens.push(ServiceToken {
                name: name.to_string(),
                secret: SecretString::from(secret.to_string()),
            });
        }
        (Self(tokens), problems)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|t| t.name.as_str())
    }

    /// The name whose secret is `presented`. Every secret is compared, each in constant time.
    pub fn identify(&self, presented: &str) -> Option<&str> {
        let mut found = None;
        for token in &self.0 {
            if constant_time_eq(
                token.secret.expose_secret().as_bytes(),
                presented.as_bytes(),
            ) {
                found = Some(token.name.as_str());
            }
        }
        found
    }

    /// Production rules: secrets long enough to resist guessing.
    pub fn production_problems(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|t| t.secret.expose_secret().chars().count() < MIN_SERVICE_SECRET_LEN)
            .map(|t| {
                format!(
                    "{}: the secret must be at least {MIN_SERVICE_SECRET_LEN} characters in production",
                    t.name
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_secrets_and_their_problems() {
        let long = "s".repeat(32);
        let (tokens, problems) =
            ServiceTokens::parse(&format!("api:{long}, cron:short-secret-value ,"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(tokens.names().collect::<Vec<_>>(), ["api", "cron"]);
        assert_eq!(tokens.identify(&long), Some("api"));
        assert_eq!(tokens.identify("short-secret-value"), Some("cron"));
        assert_eq!(tokens.identify("nope"), None);
        let production = tokens.production_problems();
        assert_eq!(production.len(), 1);
        assert!(production[0].starts_with("cron:"), "{production:?}");

        let (tokens, problems) = ServiceTokens::parse(
            "nocolon-hunter2, bad name:x, a:, b:dup-hunter2, b:x, c:dup-hunter2",
        );
        assert_eq!(tokens.names().collect::<Vec<_>>(), ["b"]);
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems.iter().all(|p| !p.contains("hunter2")),
            "{problems:?}"
        );
        assert!(format!("{tokens:?}").contains("\"b\"") && !format!("{tokens:?}").contains("dup"));
    }
}
