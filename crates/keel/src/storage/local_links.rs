//! The filesystem backend's links, served by Keel itself: uploads and downloads under a signed
//! token.

use bytes::Bytes;
use futures_util::stream::BoxStream;

use super::{settings, LinkError, LinkOp, Storage, StorageError};

impl Storage {
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
}
