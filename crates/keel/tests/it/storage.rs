//! Object storage over real HTTP, the same suite on both backends: the filesystem (Keel's own
//! signed links) and a real S3 server in the process (`s3s-fs` behind `s3s`, which checks every
//! signature and expiry). Each test named in `both_backends!` runs as `<test>::file` and
//! `<test>::s3`. A static file server over the objects' directory stands in for the CDN.

use std::path::PathBuf;

use keel_testkit::{send, Reply, S3Server, StaticFiles, TestApp, TestAppBuilder, TestDb};
use serde_json::{json, Value};

mod cleanup;
mod cloudfront;
mod config;
mod library;
mod links;
mod privacy;
mod readiness;
mod store;
mod uploads;

pub const HS_SECRET: &str = "storage-tests-hs256-secret-0123456789abcdef";
pub const ADMIN: &str = "storage-tests-admin-token-0123456789abcdef";
pub const SERVICE: &str = "storage-tests-service-token-0123456789abcd";

/// What users may upload in these tests.
pub const RULES: &str = r#"
[storage]
upload_url_ttl = "15m"
download_url_ttl = "1h"
abandoned_after = "1h"
[storage.uploads."audio/mpeg"]
max_size = "1MB"
[storage.uploads."image/*"]
max_size = "10KB"
"#;

/// Runs each named `async fn name(fx: Fixture)` on the filesystem backend and on S3.
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn file() {
                    super::$name(crate::storage::Fixture::file().await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn s3() {
                    super::$name(crate::storage::Fixture::s3().await).await
                }
            }
        )+
    };
}
pub(crate) use both_backends;

/// One backend, its objects' directory and a CDN over it.
pub struct Fixture {
    pub s3: Option<S3Server>,
    dir: tempfile::TempDir,
    pub cdn: StaticFiles,
    /// The CloudFront key pair id and its private key's PEM file, when the CDN checks signatures.
    cloudfront: Option<(String, PathBuf)>,
}

impl Fixture {
    pub async fn file() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let cdn = StaticFiles::serve(dir.path()).await;
        Fixture {
            s3: None,
            dir,
            cdn,
            cloudfront: None,
        }
    }

    pub async fn s3() -> Fixture {
        let s3 = S3Server::start().await;
        let cdn = StaticFiles::serve(&s3.bucket_dir()).await;
        let dir = tempfile::tempdir().expect("temporary directory");
        Fixture {
            s3: Some(s3),
            dir,
            cdn,
            cloudfront: None,
        }
    }

    /// The CDN checks CloudFront signatures of a key pair generated for the test, whose private
    /// key the app signs with.
    pub async fn with_cloudfront(mut self) -> Fixture {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("PEM");
        let path = self.dir.path().join("cloudfront-key.pem");
        std::fs::write(&path, pem.as_bytes()).expect("key file");
        let key_id = "K2JCJMDEHXQW5F".to_string();
        self.cdn =
            StaticFiles::serve_signed(&self.objects_dir(), &key_id, key.to_public_key()).await;
        self.cloudfront = Some((key_id, path));
        self
    }

    pub fn is_s3(&self) -> bool {
        self.s3.is_some()
    }

    /// Where the backend keeps each object, at its key.
    pub fn objects_dir(&self) -> PathBuf {
        match &self.s3 {
            Some(s3) => s3.bucket_dir(),
            None => self.dir.path().to_path_buf(),
        }
    }

    /// Whether the backend holds an object under `key`.
    pub fn holds(&self, key: &str) -> bool {
        self.objects_dir().join(key).is_file()
    }

    /// The variables that select this backend.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match &self.s3 {
            Some(s3) => s3.env(),
            None => vec![(
                "STORAGE_URL",
                format!("file://{}", self.dir.path().display()),
            )],
        }
    }

    /// An app on this backend with the test rules, the CDN, user tokens, an admin token and a
    /// service token.
    pub fn app(&self, db: TestDb) -> TestAppBuilder {
        let mut builder = TestApp::builder(db)
            .env("AUTH_HS256_SECRET", HS_SECRET)
            .env("ADMIN_TOKEN", ADMIN)
            .env("SERVICE_TOKENS", &format!("jobs:{SERVICE}"))
            .env("STORAGE_PUBLIC_BASE_URL", &self.cdn.base_url())
            .keel_toml(RULES);
        for (name, value) in self.env() {
            builder = builder.env(name, &value);
        }
        if let Some((key_id, path)) = &self.cloudfront {
            builder = builder.env("STORAGE_CLOUDFRONT_KEY_ID", key_id).env(
                "STORAGE_CLOUDFRONT_PRIVATE_KEY_FILE",
                &path.display().to_string(),
            );
        }
        builder
    }
}

/// An HS256 token for `user`, valid for a day (tests move the app's clock by hours).
pub fn token(user: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": user, "iat": now, "exp": now + 86_400 });
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HS_SECRET.as_bytes());
    let sig = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// A call of `user` to the API.
pub async fn call(
    app: &TestApp,
    user: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token(user));
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

/// Starts an upload of `size` bytes of `content_type` for `user`; the answer.
pub async fn start_upload(
    app: &TestApp,
    user: &str,
    content_type: &str,
    size: usize,
    public: bool,
) -> Reply {
    call(
        app,
        user,
        reqwest::Method::POST,
        "/v1/me/uploads",
        Some(json!({ "content_type": content_type, "size": size, "public": public })),
    )
    .await
}

/// Sends `bytes` as the upload answered in `upload` says; the status.
pub async fn put_bytes(upload: &Value, bytes: Vec<u8>) -> u16 {
    assert_eq!(upload["method"], "PUT", "{upload}");
    let mut request = reqwest::Client::new()
        .put(upload["url"].as_str().expect("url"))
        .body(bytes);
    for (name, value) in upload["headers"].as_object().expect("headers") {
        request = request.header(name.as_str(), value.as_str().expect("header value"));
    }
    request.send().await.expect("upload").status().as_u16()
}

/// `GET url`: the status and body.
pub async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.expect("download");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

/// `n` bytes of a pattern that differs per `seed`.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Uploads and confirms a file of `user`; the confirmed file.
pub async fn upload_file(app: &TestApp, user: &str, content: &[u8], public: bool) -> Value {
    let started = start_upload(app, user, "audio/mpeg", content.len(), public).await;
    let upload = started.ok(201).clone();
    assert_eq!(put_bytes(&upload, content.to_vec()).await / 100, 2);
    let id = upload["id"].as_str().expect("id");
    call(
        app,
        user,
        reqwest::Method::POST,
        &format!("/v1/me/files/{id}/confirm"),
        None,
    )
    .await
    .ok(200)
    .clone()
}
