//! Object storage: one interface over a local directory and S3-compatible services
//! (`backend.rs`), users' direct uploads and downloads through presigned URLs (or Keel's own
//! signed links on the filesystem backend, `token.rs`), the library API for handlers and jobs,
//! cleanup (`jobs.rs`) and moving objects between backends (`migrate.rs`).
//!
//! ```no_run
//! # async fn audio(services: &keel::services::Services) -> Result<(), keel::storage::StorageError> {
//! let storage = &services.storage;
//! storage.put("audio/episode-1.mp3", vec![0u8; 16], "audio/mpeg").await?;
//! let url = storage.url("audio/episode-1.mp3", None).await?;
//! # let _ = url; Ok(()) }
//! ```

pub mod backend;
pub mod cloudfront;
mod error;
pub mod jobs;
pub mod key;
mod library;
mod local_links;
mod metrics;
pub mod migrate;
pub mod settings;
pub mod token;
mod user_files;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use backend::{Backend, ObjectInfo};
pub use error::StorageError;
pub use settings::{S3Settings, StorageDecl, StorageRules, StorageSettings, StorageTarget};
pub use token::{LinkError, LinkOp};

use crate::clock::Clock;
use crate::store::storage::StoredObject;
use crate::store::Db;
use token::{LinkClaims, LinkSigner};

/// Where the filesystem backend's links are served.
pub const LINK_PATH: &str = "/v1/storage/files/";

/// A user's object as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = StoredFile)]
pub struct FileView {
    pub id: String,
    /// The object's key in storage (under the user's prefix).
    pub key: String,
    pub content_type: String,
    pub size: i64,
    /// `pending` until confirmed, then `confirmed`.
    pub state: String,
    /// `public` or `private`.
    pub visibility: String,
    pub created_at: DateTime<Utc>,
    /// Where to download it: a signed URL, or the CDN URL of a public object. Absent while
    /// pending.
    #[schema(required = true)]
    pub url: Option<String>,
    /// When `url` stops working; absent for a CDN URL.
    #[schema(required = true)]
    pub url_expires_at: Option<DateTime<Utc>>,
}

/// Where and how to send an object.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    /// `PUT` for an upload, `GET` for a download.
    pub method: &'static str,
    pub url: String,
    /// Headers the request must carry.
    pub headers: std::collections::BTreeMap<String, String>,
    /// When the URL stops working; absent for a CDN URL.
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A started upload: the object's id and where to send its bytes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Upload {
    pub id: String,
    pub key: String,
    #[serde(flatten)]
    pub link: Link,
}

/// What a user asks to upload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub content_type: String,
    pub size: u64,
    pub public: bool,
}

/// How the library stores an object.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// The user the object belongs to (erased with them); `None` for the app's own.
    pub user_id: Option<String>,
    /// Served through `STORAGE_PUBLIC_BASE_URL` when set.
    pub public: bool,
    /// Removed by `storage.cleanup` after this long (a temporary object).
    pub expires_in: Option<Duration>,
}

/// An object the app stored through a link, to record.
#[derive(Debug, Clone, Default)]
pub struct RecordObject {
    pub key: String,
    /// `application/octet-stream` when unset.
    pub content_type: Option<String>,
    /// The user the object belongs to: listed in their files, exported and erased with them.
    pub user_id: Option<String>,
    pub public: bool,
    /// Removed by `storage.cleanup` after this long.
    pub expires_in: Option<Duration>,
}

/// The storage service of a process.
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: StorageSettings,
    db: Db,
    clock: Clock,
    links: LinkSigner,
    /// Opened on first use (a directory is created then, not by every command).
    backend: Mutex<Option<Backend>>,
}

impl Storage {
    /// The service over `settings`; `link_key` signs the filesystem backend's links.
    pub fn new(settings: StorageSettings, db: Db, clock: Clock, link_key: ring::hmac::Key) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                db,
                clock,
                links: LinkSigner::new(link_key),
                backend: Mutex::new(None),
            }),
        }
    }

    pub fn settings(&self) -> &StorageSettings {
        &self.inner.settings
    }

    /// The configured backend.
    pub fn backend(&self) -> Result<Backend, StorageError> {
        let mut slot = self
            .inner
            .backend
            .lock()
            .map_err(|_| StorageError::Backend("the backend is unavailable".into()))?;
        if let Some(backend) = slot.as_ref() {
            return Ok(backend.clone());
        }
        let settings = &self.inner.settings;
        let backend = Backend::open(&settings.target, &settings.s3)?;
        *slot = Some(backend.clone());
        Ok(backend)
    }

    /// One round trip to the backend within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Result<Duration, StorageError> {
        self.backend()?.probe(timeout).await
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn deadline(&self, ttl: Duration) -> DateTime<Utc> {
        self.now() + chrono::Duration::from_std(ttl).unwrap_or_default()
    }

    /// A link of the filesystem backend, under `PUBLIC_URL` or else `base`.
    fn local_link(&self, claims: &LinkClaims, base: Option<&str>) -> String {
        let base = self
            .inner
            .settings
            .links_base_url
            .as_deref()
            .or(base)
            .unwrap_or_default()
            .trim_end_matches('/');
        format!("{base}{LINK_PATH}{}", self.inner.links.sign(claims))
    }

    /// A signed `op` link to `key` valid for `ttl`: presigned by the service, or Keel's own.
    async fn signed(
        &self,
        op: LinkOp,
        key: &str,
        ttl: Duration,
        upload: Option<(u64, &str)>,
        base: Option<&str>,
    ) -> Result<Link, StorageError> {
        let expires_at = self.deadline(ttl);
        let method = match op {
            LinkOp::Get => reqwest::Method::GET,
            LinkOp::Put => reqwest::Method::PUT,
        };
        let url = match self.backend()?.presign(method.clone(), key, ttl).await? {
            Some(url) => url,
            None => self.local_link(
                &LinkClaims {
                    op,
                    key: key.to_string(),
                    expires: expires_at.timestamp(),
                    max_size: upload.map(|(size, _)| size),
                    content_type: upload.map(|(_, t)| t.to_string()),
                },
                base,
            ),
        };
        let mut headers = std::collections::BTreeMap::new();
        if let Some((_, content_type)) = upload {
            headers.insert("content-type".to_string(), content_type.to_string());
        }
        Ok(Link {
            method: if op == LinkOp::Put { "PUT" } else { "GET" },
            url,
            headers,
            expires_at: Some(expires_at),
        })
    }

    /// The CDN URL of `key`, when `STORAGE_PUBLIC_BASE_URL` is set.
    fn public_url(&self, key: &str) -> Option<String> {
        let base = self.inner.settings.public_base_url.as_deref()?;
        let prefix = match &self.inner.settings.target {
            StorageTarget::S3 { prefix, .. } if !prefix.is_empty() => format!("{prefix}/"),
            _ => String::new(),
        };
        Some(format!("{}/{prefix}{key}", base.trim_end_matches('/')))
    }

    /// Where to download `key`: the CDN URL when public and a CDN is set; a CloudFront signed
    /// URL valid for `ttl` when private and CloudFront keys are set; else a signed URL of the
    /// backend.
    async fn download(
        &self,
        key: &str,
        public: bool,
        ttl: Duration,
        base: Option<&str>,
    ) -> Result<Link, StorageError> {
        if let Some(url) = self.public_url(key) {
            let cdn = |url: String, expires_at| Link {
                method: "GET",
                url,
                headers: Default::default(),
                expires_at,
            };
            if public {
                return Ok(cdn(url, None));
            }
            if let Some(signer) = &self.inner.settings.cloudfront {
                let expires_at = self.deadline(ttl);
                return Ok(cdn(
                    signer.sign(&url, expires_at.timestamp()),
                    Some(expires_at),
                ));
            }
        }
        self.signed(LinkOp::Get, key, ttl, None, base).await
    }

    /// Where to download `object` (see [`Storage::download`]), for the download TTL.
    async fn download_link(
        &self,
        object: &StoredObject,
        base: Option<&str>,
    ) -> Result<Link, StorageError> {
        let ttl = self.inner.settings.rules.download_url_ttl;
        self.download(&object.key, object.visibility == "public", ttl, base)
            .await
    }

    async fn view(
        &self,
        object: StoredObject,
        base: Option<&str>,
    ) -> Result<FileView, StorageError> {
        let link = if object.state == "confirmed" {
            Some(self.download_link(&object, base).await?)
        } else {
            None
        };
        Ok(FileView {
            id: object.id,
            key: object.key,
            content_type: object.content_type,
            size: object.size,
            state: object.state,
            visibility: object.visibility,
            created_at: object.created_at,
            url_expires_at: link.as_ref().and_then(|l| l.expires_at),
            url: link.map(|l| l.url),
        })
    }
}

fn visibility(public: bool) -> &'static str {
    if public {
        "public"
    } else {
        "private"
    }
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
