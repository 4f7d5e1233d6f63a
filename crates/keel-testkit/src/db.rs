//! A fresh, empty database per test: a SQLite file in a temporary directory, or a Postgres schema
//! of its own (named in the URL's `search_path`) that is dropped when the test ends.

use std::path::{Path, PathBuf};

use sqlx::Connection;

const POSTGRES_ENV: &str = "KEEL_TEST_POSTGRES_URL";
const REQUIRE_POSTGRES_ENV: &str = "KEEL_TEST_REQUIRE_POSTGRES";
const REDIS_ENV: &str = "KEEL_TEST_REDIS_URL";

/// `KEEL_TEST_POSTGRES_URL`, or `None` (a failure when `KEEL_TEST_REQUIRE_POSTGRES=1`).
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV).ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url),
        None if required(REQUIRE_POSTGRES_ENV) => {
            panic!(
                "{POSTGRES_ENV} is unset but {REQUIRE_POSTGRES_ENV}=1: the Postgres suite must run"
            )
        }
        None => {
            eprintln!("note: {POSTGRES_ENV} is unset; this Postgres test ran nothing");
            None
        }
    }
}

/// `KEEL_TEST_REDIS_URL`, or `None` (a failure when `KEEL_TEST_REQUIRE_REDIS=1`).
pub fn redis_url() -> Option<String> {
    match std::env::var(REDIS_ENV).ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url),
        None if required("KEEL_TEST_REQUIRE_REDIS") => {
            panic!("{REDIS_ENV} is unset but KEEL_TEST_REQUIRE_REDIS=1: the Redis suite must run")
        }
        None => {
            eprintln!("note: {REDIS_ENV} is unset; this Redis test ran nothing");
            None
        }
    }
}

fn required(name: &str) -> bool {
    matches!(std::env::var(name).as_deref(), Ok("1" | "true"))
}

pub enum TestDb {
    Sqlite {
        dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        base: String,
        schema: String,
        url: String,
    },
}

impl TestDb {
    /// A SQLite database in a new temporary directory; panics when none can be made.
    pub fn sqlite() -> TestDb {
        match Self::try_sqlite() {
            Ok(db) => db,
            Err(e) => panic!("cannot make a temporary directory: {e}"),
        }
    }

    pub fn try_sqlite() -> std::io::Result<TestDb> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("keel.db").display());
        Ok(TestDb::Sqlite { dir, url })
    }

    /// A new schema on the test server, or `None` when Postgres tests are not configured.
    pub async fn postgres() -> Option<TestDb> {
        let base = postgres_url()?;
        let schema = format!("keel_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
        if let Err(e) = sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
        {
            panic!("cannot create the test schema {schema}: {e}");
        }
        let _ = conn.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        Some(TestDb::Postgres { base, schema, url })
    }

    /// The `DATABASE_URL` of this database.
    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }

    /// A directory that lives as long as this database (SQLite: the database's own).
    pub fn dir(&self) -> Option<&Path> {
        match self {
            TestDb::Sqlite { dir, .. } => Some(dir.path()),
            TestDb::Postgres { .. } => None,
        }
    }

    /// Runs one SQL script directly, outside Keel (to break things on purpose). Panics with the
    /// script and the error when it fails: a failed setup fails the test.
    pub async fn execute(&self, sql: &str) {
        if let Err(e) = self.try_execute(sql).await {
            panic!("{sql}: {e}");
        }
    }

    pub async fn try_execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            TestDb::Sqlite { url, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await?;
                sqlx::raw_sql(sql).execute(&mut conn).await?;
            }
            TestDb::Postgres { url, .. } => {
                let mut conn = sqlx::PgConnection::connect(url).await?;
                sqlx::raw_sql(sql).execute(&mut conn).await?;
            }
        }
        Ok(())
    }

    /// The first column of the first row of `sql`, as an integer. Panics with the query and the
    /// error when it fails.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.try_scalar(sql).await {
            Ok(n) => n,
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    pub async fn try_scalar(&self, sql: &str) -> Result<i64, sqlx::Error> {
        match self {
            TestDb::Sqlite { url, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await?;
                sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut conn).await
            }
            TestDb::Postgres { url, .. } => {
                let mut conn = sqlx::PgConnection::connect(url).await?;
                sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut conn).await
            }
        }
    }

    pub fn path(&self) -> Option<PathBuf> {
        self.dir().map(|d| d.join("keel.db"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let TestDb::Postgres { base, schema, .. } = self else {
            return;
        };
        if !execute_detached(base, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")) {
            eprintln!("note: test schema {schema} was not dropped");
        }
    }
}

/// Runs one statement on Postgres at `url` from a thread and runtime of its own, so that `Drop`
/// of a test's resources can clean up inside or outside a runtime. Whether it succeeded.
pub fn execute_detached(url: &str, sql: &str) -> bool {
    let (url, sql) = (url.to_string(), sql.to_string());
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
            sqlx::raw_sql(&sql).execute(&mut conn).await.ok()
        })
    })
    .join();
    matches!(done, Ok(Some(_)))
}
