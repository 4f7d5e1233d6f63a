//! Where Keel reaches the app, and the secret it signs with: `APP_URL`, `APP_EVENTS_URL`,
//! `APP_WEBHOOK_SECRET`.

use crate::crypto::standard_webhooks::WebhookSecret;

/// The shortest key (in bytes, after decoding `whsec_…`) accepted in production.
pub const MIN_SECRET_BYTES: usize = 24;

/// The app's side of Keel's outbound calls.
#[derive(Debug, Clone, Default)]
pub struct AppSettings {
    /// The base URL HTTP job kinds declared with a path are joined to.
    pub url: Option<String>,
    /// Where app events are delivered; unset, none are written.
    pub events_url: Option<String>,
    /// Signing keys, newest first; every delivery is signed with each of them.
    pub webhook_secrets: Vec<WebhookSecret>,
}

impl AppSettings {
    /// Reads the raw values; each problem names its variable.
    pub fn parse(
        url: Option<String>,
        events_url: Option<String>,
        secrets: Option<&str>,
    ) -> (Self, Vec<(&'static str, String)>) {
        let mut problems = Vec::new();
        let mut check_url = |name: &'static str, value: Option<String>| {
            value.filter(|v| match reqwest::Url::parse(v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => true,
                _ => {
                    problems.push((name, "must be an absolute http(s) URL".to_owned()));
                    false
                }
            })
        };
        let url = check_url("APP_URL", url);
        let events_url = check_url("APP_EVENTS_URL", events_url);
        let webhook_secrets = match secrets.map(WebhookSecret::parse_list) {
            None => Vec::new(),
            Some(Ok(list)) => list,
            Some(Err(e)) => {
                problems.push(("APP_WEBHOOK_SECRET", format!("a secret {e}")));
                Vec::new()
            }
        };
        let settings = Self {
            url,
            events_url,
            webhook_secrets,
        };
        (settings, problems)
    }

    /// Rules that hold in every environment: nothing is sent unsigned.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.events_url.is_some() && self.webhook_secrets.is_empty() {
            problems.push((
                "APP_WEBHOOK_SECRET",
                "is required when APP_EVENTS_URL is set (every delivery is signed)".to_owned(),
            ));
        }
        problems
    }

    /// Production rules: keys long enough to resist guessing.
    pub fn production_problems(&self) -> Vec<(&'static str, String)> {
        if self
            .webhook_secrets
            .iter()
            .any(|s| s.len() < MIN_SECRET_BYTES)
        {
            vec![(
                "APP_WEBHOOK_SECRET",
                format!("each secret must hold at least {MIN_SECRET_BYTES} bytes in production"),
            )]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_and_events_need_a_secret() {
        let (s, problems) = AppSettings::parse(
            Some("ftp://app".into()),
            Some("http://app:3000/keel/events".into()),
            None,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "APP_URL");
        assert!(s.url.is_none());
        assert_eq!(s.problems()[0].0, "APP_WEBHOOK_SECRET");

        let (s, problems) = AppSettings::parse(
            Some("https://app.example".into()),
            Some("https://app.example/events".into()),
            Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, short"),
        );
        assert!(problems.is_empty() && s.problems().is_empty());
        assert_eq!(s.webhook_secrets.len(), 2);
        assert_eq!(s.production_problems()[0].0, "APP_WEBHOOK_SECRET");
    }

    #[test]
    fn a_bad_secret_is_reported_without_its_value() {
        let (_, problems) = AppSettings::parse(None, None, Some("whsec_%%%secret%%%"));
        assert_eq!(problems[0].0, "APP_WEBHOOK_SECRET");
        assert!(!problems[0].1.contains("secret%"));
    }
}
