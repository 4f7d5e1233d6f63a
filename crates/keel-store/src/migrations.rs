//! The migrations of each engine, embedded in the binary, and the tables and indexes they create.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::Engine;

/// One schema change with its inverse.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub up: &'static str,
    pub down: &'static str,
}

impl Migration {
    /// SHA-256 of the up script: an applied migration whose file changed is an error.
    pub fn checksum(&self) -> String {
        let digest = Sha256::digest(self.up.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

macro_rules! migrations {
    ($dir:literal: $(($version:literal, $file:literal)),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $file,
            up: include_str!(concat!("../../../migrations/", $dir, "/", $file, ".up.sql")),
            down: include_str!(concat!("../../../migrations/", $dir, "/", $file, ".down.sql")),
        }),*]
    };
}

const SQLITE: &[Migration] = migrations!("sqlite": (1, "0001_core"), (2, "0002_jobs"), (3, "0003_billing"), (4, "0004_app_events"), (5, "0005_billing_tenants"), (6, "0006_console"), (7, "0007_storage"));
const POSTGRES: &[Migration] = migrations!("postgres": (1, "0001_core"), (2, "0002_jobs"), (3, "0003_billing"), (4, "0004_app_events"), (5, "0005_billing_tenants"), (6, "0006_console"), (7, "0007_storage"));

pub fn for_engine(engine: Engine) -> &'static [Migration] {
    match engine {
        Engine::Sqlite => SQLITE,
        Engine::Postgres => POSTGRES,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    Table,
    Index,
}

impl ObjectKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Index => "index",
        }
    }
}

/// The tables and indexes that exist after applying `migrations` in order, read from their
/// `CREATE` and `DROP` statements.
pub fn expected_objects<'a>(
    migrations: impl IntoIterator<Item = &'a Migration>,
) -> BTreeSet<(ObjectKind, String)> {
    let mut objects = BTreeSet::new();
    objects.insert((ObjectKind::Table, "keel_migrations".to_string()));
    for migration in migrations {
        let tokens = tokens(migration.up);
        let mut i = 0;
        while i < tokens.len() {
            let (creating, kind_at) = match tokens[i].as_str() {
                "create" if tokens.get(i + 1).map(String::as_str) == Some("unique") => {
                    (true, i + 2)
                }
                "create" => (true, i + 1),
                "drop" => (false, i + 1),
                _ => {
                    i += 1;
                    continue;
                }
            };
            let kind = match tokens.get(kind_at).map(String::as_str) {
                Some("table") => ObjectKind::Table,
                Some("index") => ObjectKind::Index,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let mut at = kind_at + 1;
            while matches!(
                tokens.get(at).map(String::as_str),
                Some("if" | "not" | "exists" | "concurrently")
            ) {
                at += 1;
            }
            if let Some(name) = tokens.get(at) {
                let name = name.rsplit('.').next().unwrap_or(name).to_string();
                if creating {
                    objects.insert((kind, name));
                } else {
                    objects.remove(&(kind, name));
                }
            }
            i = at + 1;
        }
    }
    objects
}

fn tokens(sql: &str) -> Vec<String> {
    sql.lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .flat_map(|line| line.split(|c: char| c.is_whitespace() || c == '(' || c == ';'))
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_matches('"').to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_drops_are_followed() {
        let a = Migration {
            version: 1,
            name: "a",
            up: "CREATE TABLE users (id TEXT);\nCREATE UNIQUE INDEX IF NOT EXISTS users_id ON users(id);\n-- CREATE TABLE commented\n",
            down: "",
        };
        let b = Migration {
            version: 2,
            name: "b",
            up: "DROP INDEX users_id; create table \"jobs\"(id int);",
            down: "",
        };
        let objects = expected_objects([&a, &b]);
        assert!(objects.contains(&(ObjectKind::Table, "users".into())));
        assert!(objects.contains(&(ObjectKind::Table, "jobs".into())));
        assert!(!objects.contains(&(ObjectKind::Index, "users_id".into())));
        assert!(!objects.contains(&(ObjectKind::Table, "commented".into())));
    }

    #[test]
    fn both_engines_have_the_same_versions_and_objects() {
        let sqlite = for_engine(Engine::Sqlite);
        let postgres = for_engine(Engine::Postgres);
        let versions = |m: &[Migration]| m.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(versions(sqlite), versions(postgres));
        assert_eq!(expected_objects(sqlite), expected_objects(postgres));
        for pair in sqlite.windows(2) {
            assert!(pair[0].version < pair[1].version, "versions must increase");
        }
    }
}
