//! Users' files: uploads started within the limits, confirmed, listed, fetched, deleted,
//! exported and erased.

use super::{
    key, metrics, settings, visibility, FileView, LinkOp, NewUpload, Storage, StorageError, Upload,
};
use crate::store::storage::StoredObject;

impl Storage {
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
}
