//! A real S3 server in the test process: `s3s-fs` (objects as files under a temporary
//! directory) behind `s3s`, which checks every request's SigV4 signature and a presigned URL's
//! expiry, on 127.0.0.1 and a free port.

use std::net::SocketAddr;
use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::task::JoinHandle;

/// The credentials the server accepts.
pub const ACCESS_KEY: &str = "keeltestaccesskey";
pub const SECRET_KEY: &str = "keel-test-secret-key-0123456789";
/// The bucket every server starts with.
pub const BUCKET: &str = "keel-test";

/// A running S3 server; dropping it stops it and removes its files.
#[derive(Debug)]
pub struct S3Server {
    pub addr: SocketAddr,
    root: tempfile::TempDir,
    accept: JoinHandle<()>,
}

impl S3Server {
    /// Starts a server with the bucket [`BUCKET`]; panics when it cannot (a test harness).
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        std::fs::create_dir(root.path().join(BUCKET))
            .unwrap_or_else(|e| panic!("bucket directory: {e}"));
        let fs = s3s_fs::FileSystem::new(root.path())
            .unwrap_or_else(|e| panic!("s3s-fs cannot open its root: {e:?}"));
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("cannot bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local address: {e}"));
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server { addr, root, accept }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The variables that point Keel at this server's bucket.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("STORAGE_URL", format!("s3://{BUCKET}")),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The directory holding the bucket's objects (each at its key).
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
