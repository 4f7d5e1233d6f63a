//! The storage section of the settings: where objects live (`STORAGE_URL` and the `AWS_*`
//! variables), how they are served (`STORAGE_PUBLIC_BASE_URL`, `PUBLIC_URL`) and what users may
//! upload (`[storage]` in `keel.toml`), with the checks of each value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// The largest object one upload may declare: S3's limit for a single PUT.
pub const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Where objects are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageTarget {
    /// A directory (`file://./data/objects`, relative to the working directory).
    File(PathBuf),
    /// An S3-compatible bucket, with an optional key prefix (`s3://bucket/prefix`).
    S3 { bucket: String, prefix: String },
}

impl StorageTarget {
    /// Reads `file://PATH` (relative paths under `base_dir`) or `s3://bucket[/prefix]`.
    pub fn parse(url: &str, base_dir: &Path) -> Result<StorageTarget, String> {
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a directory, e.g. file://./data/objects".into());
            }
            return Ok(StorageTarget::File(base_dir.join(path)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.')
                });
            if !valid_bucket {
                return Err(format!(
                    "{bucket:?} is not a bucket name (3 to 63 of a-z 0-9 . -)"
                ));
            }
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty() && super::key::check(prefix).is_err() {
                return Err(format!("the prefix {prefix:?} is not a valid key"));
            }
            return Ok(StorageTarget::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        Err("must be file://PATH or s3://BUCKET[/PREFIX]".into())
    }
}

/// The connection to an S3-compatible service: the usual `AWS_*` variables.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `AWS_REGION` (`us-east-1` when unset; `auto` for R2).
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: R2, MinIO or any other S3-compatible service.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    pub session_token: Option<SecretString>,
    /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted ones
    /// (`bucket.endpoint/key`).
    pub path_style: bool,
}

/// `[storage]` of `keel.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageDecl {
    /// Content type (`audio/mpeg`, `image/*`, `*/*`) → what users may upload of it.
    #[serde(default)]
    pub uploads: BTreeMap<String, UploadDecl>,
    /// How long a presigned upload URL is valid (`15m` by default).
    pub upload_url_ttl: Option<String>,
    /// How long a signed download URL is valid (`1h` by default).
    pub download_url_ttl: Option<String>,
    /// An upload not confirmed within this time is removed by `storage.cleanup` (`24h`).
    pub abandoned_after: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadDecl {
    /// `50MB`, `512KiB`, `2GB`: the largest object of this type a user may upload.
    pub max_size: String,
}

/// One allowed content type and its size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRule {
    /// `type/subtype`, `type/*` or `*/*`, lowercase.
    pub pattern: String,
    pub max_bytes: u64,
}

impl UploadRule {
    fn matches(&self, content_type: &str) -> bool {
        match self.pattern.split_once('/') {
            Some(("*", "*")) => true,
            Some((major, "*")) => content_type
                .split_once('/')
                .is_some_and(|(m, _)| m == major),
            _ => self.pattern == content_type,
        }
    }

    /// Exact types before `type/*` before `*/*`.
    fn specificity(&self) -> u8 {
        if self.pattern == "*/*" {
            0
        } else if self.pattern.ends_with("/*") {
            1
        } else {
            2
        }
    }
}

/// What users may upload, and how long links live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRules {
    /// Most specific first. Empty: users may upload nothing.
    pub uploads: Vec<UploadRule>,
    pub upload_url_ttl: Duration,
    pub download_url_ttl: Duration,
    pub abandoned_after: Duration,
}

impl Default for StorageRules {
    fn default() -> Self {
        Self {
            uploads: Vec::new(),
            upload_url_ttl: Duration::from_secs(15 * 60),
            download_url_ttl: Duration::from_secs(3600),
            abandoned_after: Duration::from_secs(86_400),
        }
    }
}

impl StorageRules {
    /// The rules of `[storage]`, or every problem found in it.
    pub fn resolve(decl: &StorageDecl) -> Result<StorageRules, Vec<String>> {
        let mut problems = Vec::new();
        let mut rules = StorageRules::default();
        for (pattern, upload) in &decl.uploads {
            let lower = pattern.to_ascii_lowercase();
            if !is_content_type_pattern(&lower) {
                problems.push(format!(
                    "storage.uploads.{pattern:?}: must be a content type (type/subtype, type/* or */*)"
                ));
                continue;
            }
            match parse_size(&upload.max_size) {
                Ok(max_bytes) => rules.uploads.push(UploadRule {
                    pattern: lower,
                    max_bytes,
                }),
                Err(message) => {
                    problems.push(format!("storage.uploads.{pattern:?}.max_size: {message}"))
                }
            }
        }
        rules
            .uploads
            .sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        let mut ttl = |name: &str, value: &Option<String>, into: &mut Duration| {
            if let Some(text) = value {
                match crate::ratelimit::policy::parse_period(text) {
                    Ok(d) => *into = d,
                    Err(message) => problems.push(format!("storage.{name}: {message}")),
                }
            }
        };
        ttl(
            "upload_url_ttl",
            &decl.upload_url_ttl,
            &mut rules.upload_url_ttl,
        );
        ttl(
            "download_url_ttl",
            &decl.download_url_ttl,
            &mut rules.download_url_ttl,
        );
        ttl(
            "abandoned_after",
            &decl.abandoned_after,
            &mut rules.abandoned_after,
        );
        if rules.upload_url_ttl.as_secs() > 7 * 86_400
            || rules.download_url_ttl.as_secs() > 7 * 86_400
        {
            problems.push("storage: presigned URLs live at most 7d (S3's limit)".into());
        }
        if problems.is_empty() {
            Ok(rules)
        } else {
            Err(problems)
        }
    }

    /// The largest upload allowed for `content_type`, or `None` when the type is not allowed.
    pub fn limit_for(&self, content_type: &str) -> Option<u64> {
        let content_type = essence(content_type);
        self.uploads
            .iter()
            .find(|r| r.matches(&content_type))
            .map(|r| r.max_bytes)
    }
}

/// The content type without parameters, lowercase (`Audio/MPEG; x=1` → `audio/mpeg`).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_token(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 127
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

/// Whether `value` is `type/subtype` (lowercase essence, no parameters).
pub fn is_content_type(value: &str) -> bool {
    value
        .split_once('/')
        .is_some_and(|(a, b)| is_token(a) && is_token(b))
}

fn is_content_type_pattern(value: &str) -> bool {
    value == "*/*" || value.strip_suffix("/*").is_some_and(is_token) || is_content_type(value)
}

/// `50MB`, `512KiB`, `1GB`, `100B`, `1000`: decimal (KB, MB, GB) or binary (KiB, MiB, GiB)
/// units, from 1 byte to 5 GiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    crate::bytesize::parse(text)
        .filter(|n| (1..=MAX_OBJECT_BYTES).contains(n))
        .ok_or_else(|| format!("{text:?} must be from 1 byte to 5GiB: 100B, 512KiB, 50MB, 1GB"))
}

/// Everything about object storage a process is configured with.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// `STORAGE_URL` as given.
    pub url: String,
    pub target: StorageTarget,
    /// `STORAGE_PUBLIC_BASE_URL`: the CDN in front of the bucket; public objects are served
    /// at `BASE/KEY`.
    pub public_base_url: Option<String>,
    /// `PUBLIC_URL`: where clients reach Keel; the filesystem backend's links are built on it
    /// (on the request's `Host` when unset).
    pub links_base_url: Option<String>,
    pub s3: S3Settings,
    /// `STORAGE_REQUIRED`: readiness waits for the backend to answer.
    pub required: bool,
    pub rules: StorageRules,
    /// `STORAGE_CLOUDFRONT_KEY_ID` and `STORAGE_CLOUDFRONT_PRIVATE_KEY_FILE`: private objects
    /// are served by the CDN through CloudFront signed URLs.
    pub cloudfront: Option<super::cloudfront::CloudFrontSigner>,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            url: "file://./data/objects".into(),
            target: StorageTarget::File(PathBuf::from("./data/objects")),
            public_base_url: None,
            links_base_url: None,
            s3: S3Settings::default(),
            required: false,
            rules: StorageRules::default(),
            cloudfront: None,
        }
    }
}

impl StorageSettings {
    /// Problems of the section, each with the variable it names.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (name, url) in [
            ("STORAGE_PUBLIC_BASE_URL", &self.public_base_url),
            ("PUBLIC_URL", &self.links_base_url),
            ("AWS_ENDPOINT_URL", &self.s3.endpoint),
        ] {
            if let Some(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://"))
                    || reqwest::Url::parse(url).is_err()
                {
                    out.push((name, "must be an http:// or https:// URL".to_string()));
                }
            }
        }
        if self.cloudfront.is_some() && self.public_base_url.is_none() {
            out.push((
                "STORAGE_PUBLIC_BASE_URL",
                "is required with STORAGE_CLOUDFRONT_KEY_ID (the CloudFront domain)".to_string(),
            ));
        }
        if self.s3.access_key_id.is_some() != self.s3.secret_access_key.is_some() {
            out.push((
                "AWS_SECRET_ACCESS_KEY",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set together".to_string(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50MB"), Ok(50_000_000));
        assert_eq!(parse_size("512KiB"), Ok(524_288));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        for bad in ["", "0", "MB", "10XB", "6GiB", "-1MB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn targets() {
        let base = Path::new("/srv");
        assert_eq!(
            StorageTarget::parse("file://./data/objects", base),
            Ok(StorageTarget::File(PathBuf::from("/srv/./data/objects")))
        );
        assert_eq!(
            StorageTarget::parse("file:///var/objects", base),
            Ok(StorageTarget::File(PathBuf::from("/var/objects")))
        );
        assert_eq!(
            StorageTarget::parse("s3://my-bucket/app/", base),
            Ok(StorageTarget::S3 {
                bucket: "my-bucket".into(),
                prefix: "app".into()
            })
        );
        for bad in ["s3://", "s3://A", "gs://bucket", "file://", "s3://b/../x"] {
            assert!(StorageTarget::parse(bad, base).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let mut decl = StorageDecl::default();
        for (pattern, size) in [("*/*", "1KB"), ("audio/*", "10MB"), ("Audio/MPEG", "50MB")] {
            decl.uploads.insert(
                pattern.into(),
                UploadDecl {
                    max_size: size.into(),
                },
            );
        }
        let rules = StorageRules::resolve(&decl).unwrap();
        assert_eq!(rules.limit_for("audio/mpeg; charset=x"), Some(50_000_000));
        assert_eq!(rules.limit_for("audio/wav"), Some(10_000_000));
        assert_eq!(rules.limit_for("image/png"), Some(1_000));
        assert_eq!(StorageRules::default().limit_for("image/png"), None);
        decl.uploads.insert(
            "not a type".into(),
            UploadDecl {
                max_size: "1MB".into(),
            },
        );
        decl.download_url_ttl = Some("8d".into());
        let problems = StorageRules::resolve(&decl).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
