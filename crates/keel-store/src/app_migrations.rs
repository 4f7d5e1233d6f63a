//! The application's own migrations: schema changes an app built on Keel ships beside Keel's,
//! applied by the same runner but recorded in a history of their own (`keel_app_migrations`), so
//! their versions never collide with Keel's and either side can grow without renumbering.

use super::migrations::Migration;
use super::Engine;

/// The history table of the application's migrations (Keel's own is `keel_migrations`).
pub const APP_HISTORY: &str = "keel_app_migrations";

/// An application's migrations, for each engine Keel runs on.
///
/// Most applications write one portable set ([`AppMigrations::portable`]: plain `CREATE TABLE`
/// with `TEXT`, `BIGINT` and `BOOLEAN` columns runs on both SQLite and Postgres); one that needs
/// engine-specific SQL gives a set per engine with the same versions ([`AppMigrations::per_engine`]).
///
/// ```
/// use keel_store::migrate::{AppMigrations, Migration};
///
/// const MIGRATIONS: AppMigrations = AppMigrations::portable(&[Migration {
///     version: 1,
///     name: "0001_notes",
///     up: "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL);",
///     down: "DROP TABLE notes;",
/// }]);
/// assert!(MIGRATIONS.check().is_ok());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AppMigrations {
    sqlite: &'static [Migration],
    postgres: &'static [Migration],
}

impl AppMigrations {
    /// No migrations: an application without tables of its own.
    pub const fn none() -> Self {
        Self {
            sqlite: &[],
            postgres: &[],
        }
    }

    /// One set of migrations whose SQL runs unchanged on both engines.
    pub const fn portable(migrations: &'static [Migration]) -> Self {
        Self {
            sqlite: migrations,
            postgres: migrations,
        }
    }

    /// A set per engine; both must have the same versions and names.
    pub const fn per_engine(sqlite: &'static [Migration], postgres: &'static [Migration]) -> Self {
        Self { sqlite, postgres }
    }

    /// The migrations for `engine`, in version order.
    pub fn for_engine(&self, engine: Engine) -> &'static [Migration] {
        match engine {
            Engine::Sqlite => self.sqlite,
            Engine::Postgres => self.postgres,
        }
    }

    /// Whether there is nothing to apply on either engine.
    pub fn is_empty(&self) -> bool {
        self.sqlite.is_empty() && self.postgres.is_empty()
    }

    /// Checks that versions are positive and strictly increasing and that both engines' sets
    /// name the same versions; the message says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        for (engine, set) in [("SQLite", self.sqlite), ("Postgres", self.postgres)] {
            if let Some(m) = set.iter().find(|m| m.version <= 0) {
                return Err(format!(
                    "application migration {} ({engine}) has version {}; versions start at 1",
                    m.name, m.version
                ));
            }
            if let Some(pair) = set.windows(2).find(|p| p[0].version >= p[1].version) {
                return Err(format!(
                    "application migrations ({engine}) must be in increasing version order: {} comes after {}",
                    pair[1].name, pair[0].name
                ));
            }
        }
        let versions =
            |set: &[Migration]| set.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        if versions(self.sqlite) != versions(self.postgres) {
            return Err(
                "the SQLite and Postgres application migrations must have the same versions and names"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn migration(version: i64, name: &'static str) -> Migration {
        Migration {
            version,
            name,
            up: "",
            down: "",
        }
    }

    #[test]
    fn versions_must_increase_and_match_across_engines() {
        const ONE: &[Migration] = &[migration(1, "a"), migration(2, "b")];
        const BACKWARDS: &[Migration] = &[migration(2, "b"), migration(1, "a")];
        const ZERO: &[Migration] = &[migration(0, "z")];
        const OTHER: &[Migration] = &[migration(1, "a")];
        assert!(AppMigrations::portable(ONE).check().is_ok());
        assert!(AppMigrations::none().check().is_ok());
        let err = AppMigrations::portable(BACKWARDS).check().unwrap_err();
        assert!(err.contains("increasing"), "{err}");
        let err = AppMigrations::portable(ZERO).check().unwrap_err();
        assert!(err.contains("start at 1"), "{err}");
        let err = AppMigrations::per_engine(ONE, OTHER).check().unwrap_err();
        assert!(err.contains("same versions"), "{err}");
    }
}
