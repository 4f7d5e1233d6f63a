//! The application's queries on its own table, through Keel's pool. One statement text serves
//! both engines (`$1` placeholders work on SQLite too).

use keel::store::Db;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

/// A recipe as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recipe {
    /// The recipe's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Who sent its card, once the `recipes.send_card` job has run.
    pub card_sent_by: Option<String>,
}

const INSERT: &str = "INSERT INTO recipes (id, user_id, title, created_at) VALUES ($1, $2, $3, $4)";
const BY_USER: &str =
    "SELECT id, title, card_sent_by FROM recipes WHERE user_id = $1 ORDER BY created_at, id";
const MARK_SENT: &str = "UPDATE recipes SET card_sent_by = $1 WHERE id = $2";

/// Stores a new recipe of `user_id`.
pub async fn insert(
    db: &Db,
    id: &str,
    user_id: &str,
    title: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    match db {
        Db::Sqlite(pool) => {
            let q = sqlx::query(INSERT)
                .bind(id)
                .bind(user_id)
                .bind(title)
                .bind(at);
            q.execute(pool).await.map(|_| ())
        }
        Db::Postgres(pool) => {
            let q = sqlx::query(INSERT)
                .bind(id)
                .bind(user_id)
                .bind(title)
                .bind(at);
            q.execute(pool).await.map(|_| ())
        }
    }
}

/// Every recipe of `user_id`, oldest first.
pub async fn by_user(db: &Db, user_id: &str) -> Result<Vec<Recipe>, sqlx::Error> {
    fn recipe<R: Row>(row: &R) -> Result<Recipe, sqlx::Error>
    where
        for<'r> &'r str: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Recipe {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            card_sent_by: row.try_get("card_sent_by")?,
        })
    }
    match db {
        Db::Sqlite(pool) => {
            let rows = sqlx::query(BY_USER).bind(user_id).fetch_all(pool).await?;
            rows.iter().map(recipe).collect()
        }
        Db::Postgres(pool) => {
            let rows = sqlx::query(BY_USER).bind(user_id).fetch_all(pool).await?;
            rows.iter().map(recipe).collect()
        }
    }
}

/// Records that the card of `recipe_id` was sent by `sender`; false when there is no such recipe.
pub async fn mark_card_sent(db: &Db, recipe_id: &str, sender: &str) -> Result<bool, sqlx::Error> {
    let done = match db {
        Db::Sqlite(pool) => {
            let q = sqlx::query(MARK_SENT).bind(sender).bind(recipe_id);
            q.execute(pool).await?.rows_affected()
        }
        Db::Postgres(pool) => {
            let q = sqlx::query(MARK_SENT).bind(sender).bind(recipe_id);
            q.execute(pool).await?.rows_affected()
        }
    };
    Ok(done > 0)
}
