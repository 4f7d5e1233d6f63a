//! Which tables are copied (read from the migrations of this build) and how each column maps
//! between the two sides.

use std::collections::BTreeSet;

use super::value::Kind;
use crate::store::migrate::Migration;

/// The migration history table: each side keeps its own.
pub const HISTORY: &str = "keel_migrations";
/// Copied first; the rest follow in alphabetical order (the schema has no foreign keys).
pub const FIRST: &str = "users";

/// Every table `migrations` leave behind except the history table, in copy order.
pub fn tables(migrations: &[Migration]) -> Vec<String> {
    let mut set = BTreeSet::new();
    for migration in migrations {
        let t = tokens(migration.up);
        let at = |i: usize| t.get(i).map(String::as_str);
        let skip = |mut i: usize, words: &[&str]| {
            while at(i).is_some_and(|w| words.contains(&w)) {
                i += 1;
            }
            i
        };
        for i in 0..t.len() {
            match (at(i), at(i + 1)) {
                (Some("create"), _) => {
                    let k = skip(i + 1, &["temp", "temporary", "unlogged"]);
                    if at(k) == Some("table") {
                        if let Some(name) = at(skip(k + 1, &["if", "not", "exists"])) {
                            set.insert(name.to_string());
                        }
                    }
                }
                (Some("drop"), Some("table")) => {
                    if let Some(name) = at(skip(i + 2, &["if", "exists"])) {
                        set.remove(name);
                    }
                }
                (Some("alter"), Some("table")) => {
                    let k = skip(i + 2, &["if", "exists", "only"]);
                    if let (Some(old), Some("rename"), Some("to"), Some(new)) =
                        (at(k), at(k + 1), at(k + 2), at(k + 3))
                    {
                        if set.remove(old) {
                            set.insert(new.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    set.remove(HISTORY);
    let mut ordered: Vec<String> = Vec::with_capacity(set.len());
    if set.remove(FIRST) {
        ordered.push(FIRST.to_string());
    }
    ordered.extend(set);
    ordered
}

fn tokens(sql: &str) -> Vec<String> {
    sql.lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .flat_map(|line| {
            line.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ';' | ','))
        })
        .filter(|t| !t.is_empty())
        .map(|t| {
            let t = t.trim_matches('"').to_ascii_lowercase();
            match t.rsplit_once('.') {
                Some((_, name)) => name.trim_matches('"').to_string(),
                None => t,
            }
        })
        .collect()
}

/// One column as a database describes it.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    /// The declared type (SQLite) or `data_type` (Postgres).
    pub declared: String,
    /// Position in the primary key, from 1.
    pub pk: Option<i64>,
    /// A Postgres identity column or one whose default draws from a sequence.
    pub sequence: bool,
}

/// A column copied: its name and kind on each side.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub source: Kind,
    pub target: Kind,
}

/// The plan for one table.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub name: String,
    /// The columns both sides have, in the target's order.
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the source's primary key, in key order; empty when the key is
    /// not entirely copied (then the table is read in one query).
    pub key: Vec<usize>,
    /// Target columns fed by a sequence (Postgres), reset after the copy.
    pub sequences: Vec<String>,
    /// Whether the target has an identity column (Postgres needs `OVERRIDING SYSTEM VALUE`).
    pub identity: bool,
}

/// Matches the two sides' columns. `kind_of_*` decide each side's kind from the declared type.
pub fn plan(
    table: &str,
    source: &[ColumnInfo],
    target: &[ColumnInfo],
    kind_of_source: fn(&str) -> Option<Kind>,
    kind_of_target: fn(&str) -> Option<Kind>,
) -> Result<TablePlan, (String, String, &'static str)> {
    let mut columns = Vec::new();
    for t in target {
        let Some(s) = source.iter().find(|s| s.name == t.name) else {
            continue;
        };
        let source_kind = kind_of_source(&s.declared)
            .ok_or_else(|| (t.name.clone(), s.declared.clone(), "source"))?;
        let target_kind = kind_of_target(&t.declared)
            .ok_or_else(|| (t.name.clone(), t.declared.clone(), "target"))?;
        columns.push(Column {
            name: t.name.clone(),
            source: source_kind,
            target: target_kind,
        });
    }
    let mut pk: Vec<&ColumnInfo> = source.iter().filter(|c| c.pk.is_some()).collect();
    pk.sort_by_key(|c| c.pk);
    let key: Option<Vec<usize>> = pk
        .iter()
        .map(|k| columns.iter().position(|c| c.name == k.name))
        .collect();
    let key = key.unwrap_or_default();
    Ok(TablePlan {
        name: table.to_string(),
        columns,
        key,
        sequences: target
            .iter()
            .filter(|c| c.sequence)
            .map(|c| c.name.clone())
            .collect(),
        identity: target.iter().any(|c| c.sequence),
    })
}

/// `"name"`, for table and column names.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_creates_drops_and_renames() {
        let a = Migration {
            version: 1,
            name: "a",
            up: "CREATE TABLE jobs (id INT);\nCREATE TABLE users(id TEXT);\n-- CREATE TABLE gone\nCREATE TABLE IF NOT EXISTS \"audit\" (x TEXT);\nCREATE INDEX users_x ON users (id);",
            down: "",
        };
        let b = Migration {
            version: 2,
            name: "b",
            up: "DROP TABLE IF EXISTS audit; ALTER TABLE jobs RENAME TO tasks; CREATE TABLE keel_migrations (v INT);",
            down: "",
        };
        assert_eq!(
            tables(&[a, b]),
            vec!["users".to_string(), "tasks".to_string()]
        );
    }
}
