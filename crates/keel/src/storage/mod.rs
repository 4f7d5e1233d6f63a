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
pub mod jobs;
pub mod key;
mod metrics;
pub mod migrate;
pub mod settings;
pub mod token;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use backend::{Backend, ObjectInfo};
pub use settings::{S3Settings, StorageDecl, StorageRules, StorageSettings, StorageTarget};
pub use token::{LinkError, LinkOp};

use crate::clock::Clock;
use crate::store::storage::StoredObject;
use crate::store::{Db, StoreError};
use token::{LinkClaims, LinkSigner};

/// Where the filesystem backend's links are served.
pub const LINK_PATH: &str = "/v1/storage/files/";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("content type {0:?} may not be uploaded")]
    TypeRefused(String),
    #[error("sent as {sent}, not the {expected} the link names")]
    TypeMismatch { expected: String, sent: String },
    #[error("{size} bytes is more than the {max} allowed")]
    SizeRefused { size: u64, max: u64 },
    #[error("the body is larger than the {max} bytes allowed")]
    TooLarge { max: u64 },
    #[error("the body could not be read: {0}")]
    Body(String),
    #[error("no such object")]
    NotFound,
    #[error("nothing was uploaded yet")]
    NotUploaded,
    #[error("{stored} bytes were uploaded, not the {declared} declared")]
    SizeMismatch { declared: u64, stored: u64 },
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("object storage: {0}")]
    Backend(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

    // Users' objects.

    /// Starts an upload for `user_id` within the `[storage.uploads]` limits: the object is
    /// recorded as pending, under a key Keel chooses in the user's prefix, and the answer says
    /// where to send it.
    pub async fn start_upload(
        &self,
        user_id: &str,
        request: NewUpload,
        base: Option<&str>,
    ) -> Result<Upload, StorageError> {
        let content_type = settings::essence(&request.content_type);
        if !settings::is_content_type(&content_type) {
            return Err(StorageError::Invalid {
                field: "content_type",
                message: "must be a content type such as audio/mpeg".into(),
            });
        }
        if request.size == 0 {
            return Err(StorageError::Invalid {
                field: "size",
                message: "must be at least 1 byte".into(),
            });
        }
        let rules = &self.inner.settings.rules;
        let max = rules
            .limit_for(&content_type)
            .ok_or_else(|| StorageError::TypeRefused(content_type.clone()))?;
        if request.size > max {
            return Err(StorageError::SizeRefused {
                size: request.size,
                max,
            });
        }
        let id = uuid::Uuid::now_v7().to_string();
        let key = key::user_object(user_id, &id);
        let link = self
            .signed(
                LinkOp::Put,
                &key,
                rules.upload_url_ttl,
                Some((request.size, &content_type)),
                base,
            )
            .await?;
        let abandoned = rules.abandoned_after.max(rules.upload_url_ttl);
        self.inner
            .db
            .insert_storage_object(&StoredObject {
                id: id.clone(),
                user_id: Some(user_id.to_string()),
                key: key.clone(),
                content_type,
                size: request.size as i64,
                state: "pending".into(),
                visibility: visibility(request.public).into(),
                checksum: None,
                created_at: self.now(),
                confirmed_at: None,
                expires_at: Some(self.deadline(abandoned)),
            })
            .await?;
        Ok(Upload { id, key, link })
    }

    /// Confirms `user_id`'s upload `id` once the backend holds it with the declared size. An
    /// object of another size is removed and refused.
    pub async fn confirm(
        &self,
        user_id: &str,
        id: &str,
        base: Option<&str>,
    ) -> Result<FileView, StorageError> {
        let db = &self.inner.db;
        let object = db
            .user_storage_object(user_id, id)
            .await?
            .ok_or(StorageError::NotFound)?;
        if object.state == "confirmed" {
            return self.view(object, base).await;
        }
        let backend = self.backend()?;
        let stored = backend
            .head(&object.key)
            .await?
            .ok_or(StorageError::NotUploaded)?;
        let declared = u64::try_from(object.size).unwrap_or_default();
        if stored.size != declared {
            backend.delete(&object.key).await?;
            return Err(StorageError::SizeMismatch {
                declared,
                stored: stored.size,
            });
        }
        db.confirm_storage_object(id, object.size, None, None, self.now())
            .await?;
        metrics::bytes("upload", stored.size);
        let object = db
            .user_storage_object(user_id, id)
            .await?
            .ok_or(StorageError::NotFound)?;
        self.view(object, base).await
    }

    /// `user_id`'s confirmed objects, oldest first, each with a download URL.
    pub async fn files(
        &self,
        user_id: &str,
        base: Option<&str>,
    ) -> Result<Vec<FileView>, StorageError> {
        let objects = self.inner.db.user_storage_objects(user_id, false).await?;
        let mut out = Vec::with_capacity(objects.len());
        for object in objects {
            out.push(self.view(object, base).await?);
        }
        Ok(out)
    }

    /// Every object of `user_id`, pending ones included (for an export).
    pub async fn export(
        &self,
        user_id: &str,
        base: Option<&str>,
    ) -> Result<Vec<FileView>, StorageError> {
        let objects = self.inner.db.user_storage_objects(user_id, true).await?;
        let mut out = Vec::with_capacity(objects.len());
        for object in objects {
            out.push(self.view(object, base).await?);
        }
        Ok(out)
    }

    /// `user_id`'s object `id`; another user's is [`StorageError::NotFound`].
    pub async fn file(
        &self,
        user_id: &str,
        id: &str,
        base: Option<&str>,
    ) -> Result<FileView, StorageError> {
        let object = self
            .inner
            .db
            .user_storage_object(user_id, id)
            .await?
            .ok_or(StorageError::NotFound)?;
        self.view(object, base).await
    }

    /// Removes `user_id`'s object `id` from the backend, then forgets it.
    pub async fn delete_file(&self, user_id: &str, id: &str) -> Result<(), StorageError> {
        let object = self
            .inner
            .db
            .user_storage_object(user_id, id)
            .await?
            .ok_or(StorageError::NotFound)?;
        self.backend()?.delete(&object.key).await?;
        self.inner.db.delete_storage_object(&object.key).await?;
        Ok(())
    }

    /// Removes every object of `user_id` from the backend: those recorded and anything else
    /// under the user's prefix. Their rows go with the user's erasure.
    pub async fn erase_user(&self, user_id: &str) -> Result<u64, StorageError> {
        let backend = self.backend()?;
        let mut removed = 0;
        for object in self.inner.db.user_storage_objects(user_id, true).await? {
            backend.delete(&object.key).await?;
            removed += 1;
        }
        for object in backend.list(&key::user_prefix(user_id)).await? {
            backend.delete(&object.key).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes abandoned uploads and expired temporary objects; how many.
    pub async fn cleanup(&self) -> Result<u64, StorageError> {
        let backend = self.backend()?;
        let mut removed = 0;
        loop {
            let expired = self
                .inner
                .db
                .expired_storage_objects(self.now(), 100)
                .await?;
            if expired.is_empty() {
                return Ok(removed);
            }
            for object in expired {
                backend.delete(&object.key).await?;
                self.inner.db.delete_storage_object(&object.key).await?;
                removed += 1;
            }
        }
    }

    // The filesystem backend's links.

    /// Stores the body of an upload through a link of the filesystem backend; the bytes stored.
    /// A body sent as another content type than the link names is refused.
    pub async fn accept_upload(
        &self,
        token: &str,
        content_type: Option<&str>,
        content_length: Option<u64>,
        body: BoxStream<'static, Result<Bytes, String>>,
    ) -> Result<u64, StorageError> {
        let claims = self.inner.links.verify(token, self.now())?;
        if claims.op != LinkOp::Put {
            return Err(LinkError::Invalid.into());
        }
        if let (Some(expected), Some(sent)) = (&claims.content_type, content_type) {
            let sent = settings::essence(sent);
            if &sent != expected {
                return Err(StorageError::TypeMismatch {
                    expected: expected.clone(),
                    sent,
                });
            }
        }
        let max = claims.max_size.unwrap_or(settings::MAX_OBJECT_BYTES);
        if content_length.is_some_and(|n| n > max) {
            return Err(StorageError::TooLarge { max });
        }
        self.backend()?.put_stream(&claims.key, body, max).await
    }

    /// Opens a download through a link of the filesystem backend: the content type, size and
    /// bytes.
    pub async fn open_download(
        &self,
        token: &str,
    ) -> Result<
        (
            String,
            u64,
            BoxStream<'static, Result<Bytes, std::io::Error>>,
        ),
        StorageError,
    > {
        let claims = self.inner.links.verify(token, self.now())?;
        if claims.op != LinkOp::Get {
            return Err(LinkError::Invalid.into());
        }
        let content_type = self
            .inner
            .db
            .storage_object_by_key(&claims.key)
            .await?
            .map_or_else(
                || "application/octet-stream".to_string(),
                |o| o.content_type,
            );
        let (size, stream) = self.backend()?.get_stream(&claims.key).await?;
        Ok((content_type, size, stream))
    }

    // The library API, for Rust handlers and jobs.

    /// Stores `bytes` under `key` as the app's own private object, and records it.
    pub async fn put(
        &self,
        key: &str,
        bytes: impl Into<Bytes>,
        content_type: &str,
    ) -> Result<StoredObject, StorageError> {
        self.put_with(key, bytes, content_type, PutOptions::default())
            .await
    }

    /// Stores `bytes` under `key` with `options`, and records it (with its SHA-256).
    pub async fn put_with(
        &self,
        key: &str,
        bytes: impl Into<Bytes>,
        content_type: &str,
        options: PutOptions,
    ) -> Result<StoredObject, StorageError> {
        key::check(key).map_err(StorageError::InvalidKey)?;
        let bytes: Bytes = bytes.into();
        let checksum = sha256_hex(&bytes);
        let size = bytes.len() as i64;
        self.backend()?.put(key, bytes, content_type).await?;
        let now = self.now();
        let object = StoredObject {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: options.user_id,
            key: key.to_string(),
            content_type: content_type.to_string(),
            size,
            state: "confirmed".into(),
            visibility: visibility(options.public).into(),
            checksum: Some(checksum),
            created_at: now,
            confirmed_at: Some(now),
            expires_at: options.expires_in.map(|ttl| self.deadline(ttl)),
        };
        self.inner.db.insert_storage_object(&object).await?;
        Ok(object)
    }

    /// The object under `key`, whole.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.backend()?.get(key).await
    }

    /// Removes the object under `key` and its record.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.backend()?.delete(key).await?;
        self.inner.db.delete_storage_object(key).await?;
        Ok(())
    }

    /// A URL to download `key`: the CDN URL of a recorded public object; else a signed URL
    /// (CloudFront's when configured, or the backend's) valid for `ttl` (the download TTL of
    /// `[storage]` by default).
    pub async fn url(&self, key: &str, ttl: Option<Duration>) -> Result<String, StorageError> {
        key::check(key).map_err(StorageError::InvalidKey)?;
        let public = match self.inner.db.storage_object_by_key(key).await? {
            Some(object) => object.visibility == "public",
            None => false,
        };
        let ttl = ttl.unwrap_or(self.inner.settings.rules.download_url_ttl);
        Ok(self.download(key, public, ttl, None).await?.url)
    }

    /// Records an object the backend holds under `key` (stored through a link by a job or the
    /// app's backend), with its stored size; [`StorageError::NotFound`] when there is none.
    pub async fn record(
        &self,
        object: RecordObject,
        base: Option<&str>,
    ) -> Result<FileView, StorageError> {
        key::check(&object.key).map_err(StorageError::InvalidKey)?;
        let stored = self
            .backend()?
            .head(&object.key)
            .await?
            .ok_or(StorageError::NotFound)?;
        let now = self.now();
        let row = StoredObject {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: object.user_id,
            key: object.key,
            content_type: object
                .content_type
                .map(|t| settings::essence(&t))
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: i64::try_from(stored.size).unwrap_or(i64::MAX),
            state: "confirmed".into(),
            visibility: visibility(object.public).into(),
            checksum: None,
            created_at: now,
            confirmed_at: Some(now),
            expires_at: object.expires_in.map(|ttl| self.deadline(ttl)),
        };
        self.inner.db.insert_storage_object(&row).await?;
        self.view(row, base).await
    }

    /// A presigned link for `op` on `key` valid for `ttl`, for the app's services and HTTP job
    /// kinds (any language can send or fetch an object with it). An upload link of the
    /// filesystem backend accepts at most `max_size` bytes.
    pub async fn link(
        &self,
        op: LinkOp,
        key: &str,
        ttl: Duration,
        content_type: Option<&str>,
        base: Option<&str>,
    ) -> Result<Link, StorageError> {
        key::check(key).map_err(StorageError::InvalidKey)?;
        let upload = match op {
            LinkOp::Put => Some((
                settings::MAX_OBJECT_BYTES,
                content_type.unwrap_or("application/octet-stream"),
            )),
            LinkOp::Get => None,
        };
        self.signed(op, key, ttl, upload, base).await
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
