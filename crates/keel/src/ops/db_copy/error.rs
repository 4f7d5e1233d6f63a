//! What can go wrong in a copy. No message contains a URL.

/// Which end of the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// Why a copy failed. No message contains a URL.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the {side} URL {reason}")]
    Url { side: Side, reason: String },
    #[error("cannot connect to the {side} database ({engine}): {message}")]
    Connect {
        side: Side,
        engine: &'static str,
        message: String,
    },
    #[error("the source database is not fully migrated ({detail}); run `keel migrate up` against it (DATABASE_URL set to the source) first")]
    SourceNotMigrated { detail: String },
    #[error("the source database {detail}")]
    SourceSchema { detail: String },
    #[error("migrating the target database failed: {message}")]
    TargetMigration { message: String },
    #[error("the target is not empty ({table} has {rows} rows)")]
    TargetNotEmpty { table: String, rows: i64 },
    #[error("table {table} is missing from the {side} database")]
    MissingTable { side: Side, table: String },
    #[error("{table}.{column} has type {declared:?} in the {side} database, which db copy cannot convert")]
    UnknownType {
        side: Side,
        table: String,
        column: String,
        declared: String,
    },
    #[error("{table}.{column}: {message}")]
    Convert {
        table: String,
        column: String,
        message: String,
    },
    #[error("{step}: the {side} database failed: {message}")]
    Database {
        side: Side,
        step: String,
        message: String,
    },
    #[error("table {table}: the source has {source_rows} rows but the target has {target_rows} after the copy")]
    CountMismatch {
        table: String,
        source_rows: i64,
        target_rows: i64,
    },
}

impl CopyError {
    /// A bad URL: a usage error rather than a failed operation.
    pub fn is_usage(&self) -> bool {
        matches!(self, CopyError::Url { .. })
    }
}
