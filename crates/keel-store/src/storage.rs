//! The objects of object storage that Keel knows of (`storage_objects`): uploads users started,
//! pending until confirmed, and objects the app or its jobs stored. The bytes are in the backend.

use chrono::{DateTime, Utc};

use super::sql::{on_db, Cols, Ts};
use super::{Db, StoreError};

/// One known object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub id: String,
    /// The user whose object it is; `None` for objects of the app or its jobs.
    pub user_id: Option<String>,
    pub key: String,
    pub content_type: String,
    /// Declared at upload; the stored size once confirmed.
    pub size: i64,
    /// `pending` (a user's upload not confirmed yet) or `confirmed`.
    pub state: String,
    /// `public` (served through `STORAGE_PUBLIC_BASE_URL` when set) or `private`.
    pub visibility: String,
    /// SHA-256 (hex) of the stored bytes, when Keel saw them.
    pub checksum: Option<String>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When the object is removed by the cleanup (a pending upload's deadline, or a temporary
    /// object's end).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Objects and bytes of one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUsage {
    /// `None` for the app's own objects.
    pub user_id: Option<String>,
    pub objects: i64,
    pub bytes: i64,
}

const COLUMNS: &str = "id, user_id, key, content_type, size, state, visibility, checksum, \
                       created_at, confirmed_at, expires_at";

fn object_row(r: &impl Cols) -> Result<StoredObject, sqlx::Error> {
    Ok(StoredObject {
        id: r.text("id")?,
        user_id: r.text_opt("user_id")?,
        key: r.text("key")?,
        content_type: r.text("content_type")?,
        size: r.int("size")?,
        state: r.text("state")?,
        visibility: r.text("visibility")?,
        checksum: r.text_opt("checksum")?,
        created_at: r.at("created_at")?,
        confirmed_at: r.at_opt("confirmed_at")?,
        expires_at: r.at_opt("expires_at")?,
    })
}

impl Db {
    /// Records an object. A second record of the same key replaces the first (a library `put`
    /// over an existing key).
    pub async fn insert_storage_object(&self, o: &StoredObject) -> Result<(), StoreError> {
        let q = format!(
            "INSERT INTO storage_objects ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (key) DO UPDATE SET id = excluded.id, user_id = excluded.user_id,
                 content_type = excluded.content_type, size = excluded.size,
                 state = excluded.state, visibility = excluded.visibility,
                 checksum = excluded.checksum, created_at = excluded.created_at,
                 confirmed_at = excluded.confirmed_at, expires_at = excluded.expires_at"
        );
        on_db!(self, |pool| {
            sqlx::query(&q)
                .bind(&o.id)
                .bind(&o.user_id)
                .bind(&o.key)
                .bind(&o.content_type)
                .bind(o.size)
                .bind(&o.state)
                .bind(&o.visibility)
                .bind(&o.checksum)
                .bind(Ts(o.created_at))
                .bind(o.confirmed_at.map(Ts))
                .bind(o.expires_at.map(Ts))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The object `id` of `user_id` (`None` also when it is another user's).
    pub async fn user_storage_object(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        let q = format!("SELECT {COLUMNS} FROM storage_objects WHERE id = $1 AND user_id = $2");
        Ok(on_db!(self, |pool| sqlx::query(&q)
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
            .map(|r| object_row(&r))
            .transpose()?))
    }

    /// The object recorded under `key`.
    pub async fn storage_object_by_key(
        &self,
        key: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        let q = format!("SELECT {COLUMNS} FROM storage_objects WHERE key = $1");
        Ok(on_db!(self, |pool| sqlx::query(&q)
            .bind(key)
            .fetch_optional(pool)
            .await?
            .map(|r| object_row(&r))
            .transpose()?))
    }

    /// The objects of `user_id`, oldest first; pending uploads too when `pending`.
    pub async fn user_storage_objects(
        &self,
        user_id: &str,
        pending: bool,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let q = format!(
            "SELECT {COLUMNS} FROM storage_objects
             WHERE user_id = $1 AND ($2 OR state = 'confirmed')
             ORDER BY created_at, id"
        );
        Ok(on_db!(self, |pool| sqlx::query(&q)
            .bind(user_id)
            .bind(pending)
            .fetch_all(pool)
            .await?
            .iter()
            .map(object_row)
            .collect::<Result<Vec<_>, _>>()?))
    }

    /// Up to `limit` objects in key order after `after`, for listings.
    pub async fn storage_objects_page(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let q =
            format!("SELECT {COLUMNS} FROM storage_objects WHERE key > $1 ORDER BY key LIMIT $2");
        Ok(on_db!(self, |pool| sqlx::query(&q)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(object_row)
            .collect::<Result<Vec<_>, _>>()?))
    }

    /// Marks a pending upload confirmed with the stored size and checksum; whether it was
    /// pending.
    pub async fn confirm_storage_object(
        &self,
        id: &str,
        size: i64,
        checksum: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let q = "UPDATE storage_objects
                 SET state = 'confirmed', size = $2, checksum = $3, confirmed_at = $4,
                     expires_at = $5
                 WHERE id = $1 AND state = 'pending'";
        Ok(on_db!(self, |pool| sqlx::query(q)
            .bind(id)
            .bind(size)
            .bind(checksum)
            .bind(Ts(now))
            .bind(expires_at.map(Ts))
            .execute(pool)
            .await?
            .rows_affected()
            > 0))
    }

    /// Forgets the object recorded under `key`; whether one was.
    pub async fn delete_storage_object(&self, key: &str) -> Result<bool, StoreError> {
        let q = "DELETE FROM storage_objects WHERE key = $1";
        Ok(on_db!(self, |pool| sqlx::query(q)
            .bind(key)
            .execute(pool)
            .await?
            .rows_affected()
            > 0))
    }

    /// Up to `limit` objects whose `expires_at` passed by `now`: abandoned uploads and expired
    /// temporary objects.
    pub async fn expired_storage_objects(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let q = format!(
            "SELECT {COLUMNS} FROM storage_objects
             WHERE expires_at IS NOT NULL AND expires_at <= $1
             ORDER BY expires_at, id LIMIT $2"
        );
        Ok(on_db!(self, |pool| sqlx::query(&q)
            .bind(Ts(now))
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(object_row)
            .collect::<Result<Vec<_>, _>>()?))
    }

    /// Confirmed objects and their bytes per owner, largest first.
    pub async fn storage_usage(&self) -> Result<Vec<StorageUsage>, StoreError> {
        let q = "SELECT user_id, COUNT(*) AS objects, CAST(SUM(size) AS BIGINT) AS bytes FROM storage_objects
                 WHERE state = 'confirmed' GROUP BY user_id ORDER BY bytes DESC, user_id";
        Ok(on_db!(self, |pool| sqlx::query(q)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok::<_, sqlx::Error>(StorageUsage {
                    user_id: r.text_opt("user_id")?,
                    objects: r.int("objects")?,
                    bytes: r.int_opt("bytes")?.unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, _>>()?))
    }
}
