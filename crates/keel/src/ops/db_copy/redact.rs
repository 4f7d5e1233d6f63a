//! Database messages may quote a URL or its password; both are masked before they are shown.

use super::error::{CopyError, Side};

/// Masks the URLs and their passwords in database messages.
pub(super) struct Redact {
    secrets: Vec<String>,
}

impl Redact {
    pub(super) fn new(urls: &[&str]) -> Redact {
        let mut secrets = Vec::new();
        for url in urls {
            secrets.push(url.to_string());
            let authority = url
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
                .unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if let Some((_, password)) = userinfo.split_once(':') {
                    secrets.push(password.to_string());
                    secrets.push(crate::percent::decode(password));
                }
            }
        }
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redact { secrets }
    }

    pub(super) fn text(&self, mut text: String) -> String {
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }

    pub(super) fn error(&self, e: &sqlx::Error) -> String {
        self.text(e.to_string())
    }

    pub(super) fn db(&self, side: Side, step: &str, e: &sqlx::Error) -> CopyError {
        CopyError::Database {
            side,
            step: step.to_string(),
            message: self.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_urls_are_masked() {
        let redact = Redact::new(&["sqlite://a.db", "postgres://keel:s%40cret@db:5432/keel"]);
        let text = redact.text("auth failed for s@cret and s%40cret at sqlite://a.db".into());
        assert!(!text.contains("cret"), "{text}");
        assert!(!text.contains("a.db"), "{text}");
    }
}
