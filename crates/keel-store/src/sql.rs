//! The dialect layer: what lets one statement text serve both engines.
//!
//! - Placeholders are `$1`, `$2`, … on both (SQLite reads `$NNN` as a numbered parameter).
//! - Values whose storage differs go through a codec: [`Ts`] is `INTEGER` milliseconds in SQLite
//!   and `TIMESTAMPTZ` in Postgres; [`Uid`] is `TEXT` in SQLite and `UUID` in Postgres. Booleans,
//!   integers, text, bytes and JSON (through `sqlx::types::Json`) map natively on both.
//! - Rows are read through [`Cols`], implemented once per engine's row type, so a row mapping is
//!   one generic function.
//! - [`on_tx!`] and [`on_db!`] run one body against whichever engine the handle holds; the body is
//!   written once and compiled for each engine.
//!
//! - A list parameter is a [`List`], tested with [`in_list`]: `json_each` in SQLite, `ANY` in
//!   Postgres.
//!
//! Statements avoid engine-only syntax: `CAST($1 AS TEXT)` rather than `$1::text`, `CASE` rather
//! than `GREATEST`/`MAX(a, b)`, a list of placeholders rather than `= ANY($1)`; the one expression
//! the engines spell differently, a difference of timestamps in milliseconds, comes from
//! [`millis_between`]. What truly differs (claims, `NOTIFY`, advisory locks, backup)
//! stays in `sqlite/` and `postgres/`.

use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgRow, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteRow, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Database, Decode, Encode, Postgres, Row, Sqlite, Type};

use super::Engine;

/// A timestamp as either engine stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ts(pub DateTime<Utc>);

/// A UUID as either engine stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Uid(pub uuid::Uuid);

impl Type<Sqlite> for Ts {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(self.0.timestamp_millis(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let ms = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        DateTime::from_timestamp_millis(ms)
            .map(Ts)
            .ok_or_else(|| format!("{ms} ms is not a representable timestamp").into())
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(Ts)
    }
}

impl Type<Sqlite> for Uid {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Uid {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.0.to_string(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Uid {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Uid(uuid::Uuid::parse_str(text)?))
    }
}

impl Type<Postgres> for Uid {
    fn type_info() -> PgTypeInfo {
        <uuid::Uuid as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <uuid::Uuid as Type<Postgres>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Postgres> for Uid {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <uuid::Uuid as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Uid {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <uuid::Uuid as Decode<'r, Postgres>>::decode(value).map(Uid)
    }
}

/// A list bound as one parameter: a JSON array in SQLite (read with `json_each`), an array in
/// Postgres. [`in_list`] writes the matching membership test.
#[derive(Debug, Clone, Copy)]
pub(crate) struct List<'a, T>(pub &'a [T]);

macro_rules! impl_list {
    ($t:ty) => {
        impl Type<Sqlite> for List<'_, $t> {
            fn type_info() -> SqliteTypeInfo {
                <String as Type<Sqlite>>::type_info()
            }
        }

        impl<'q> Encode<'q, Sqlite> for List<'_, $t> {
            fn encode_by_ref(
                &self,
                buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                <String as Encode<'q, Sqlite>>::encode(serde_json::to_string(self.0)?, buf)
            }
        }

        impl Type<Postgres> for List<'_, $t> {
            fn type_info() -> PgTypeInfo {
                <&[$t] as Type<Postgres>>::type_info()
            }
        }

        impl<'q> Encode<'q, Postgres> for List<'_, $t> {
            fn encode_by_ref(
                &self,
                buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                <&[$t] as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
            }
        }
    };
}

impl_list!(i64);
impl_list!(String);
impl_list!(&str);

/// `IN (…)` over a [`List`] bound at `param` (for example `"$2"`), in the engine's syntax.
pub(crate) fn in_list(engine: Engine, param: &str) -> String {
    match engine {
        Engine::Sqlite => format!("IN (SELECT value FROM json_each({param}))"),
        Engine::Postgres => format!("= ANY({param})"),
    }
}

/// Whether a job's `args` match the argument filter whose key is bound at `key` and value at
/// `value` (both `NULL`: no filter). The top-level key's value is compared as text: a string as
/// it is, a number, `true` or `false` as JSON writes it; `null`, objects and arrays never match.
pub(crate) fn arg_matches(engine: Engine, key: &str, value: &str) -> String {
    match engine {
        Engine::Sqlite => format!(
            "({key} IS NULL OR EXISTS (SELECT 1 FROM json_each(args) arg WHERE arg.key = {key}
               AND arg.type IN ('text', 'integer', 'real', 'true', 'false')
               AND (CASE arg.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                    ELSE CAST(arg.value AS TEXT) END) = {value}))"
        ),
        Engine::Postgres => format!(
            "(CAST({key} AS TEXT) IS NULL OR (jsonb_typeof(args -> CAST({key} AS TEXT))
               IN ('string', 'number', 'boolean') AND args ->> CAST({key} AS TEXT) = CAST({value} AS TEXT)))"
        ),
    }
}

/// Typed column reads that mean the same on both engines. `col` is a column name or, for the
/// positional readers, a zero-based index.
pub(crate) trait Cols {
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn text_opt(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn int_opt(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn int_at(&self, index: usize) -> Result<i64, sqlx::Error>;
    /// A 32-bit integer column (`INTEGER` in Postgres).
    fn int4(&self, col: &str) -> Result<i32, sqlx::Error>;
    /// A 16-bit integer column (`SMALLINT` in Postgres).
    fn int2(&self, col: &str) -> Result<i16, sqlx::Error>;
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error>;
    fn at(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    fn at_opt(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    fn float_opt(&self, col: &str) -> Result<Option<f64>, sqlx::Error>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error>;
    fn bytes_opt(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
    fn json(&self, col: &str) -> Result<serde_json::Value, sqlx::Error>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn text_opt(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn int_opt(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn int_at(&self, index: usize) -> Result<i64, sqlx::Error> {
                self.try_get(index)
            }
            fn int4(&self, col: &str) -> Result<i32, sqlx::Error> {
                self.try_get(col)
            }
            fn int2(&self, col: &str) -> Result<i16, sqlx::Error> {
                self.try_get(col)
            }
            fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
                self.try_get(col)
            }
            fn at(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
                self.try_get::<Ts, _>(col).map(|t| t.0)
            }
            fn at_opt(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
                self.try_get::<Option<Ts>, _>(col).map(|t| t.map(|t| t.0))
            }
            fn float_opt(&self, col: &str) -> Result<Option<f64>, sqlx::Error> {
                self.try_get(col)
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(col)
            }
            fn bytes_opt(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                self.try_get(col)
            }
            fn json(&self, col: &str) -> Result<serde_json::Value, sqlx::Error> {
                self.try_get::<sqlx::types::Json<serde_json::Value>, _>(col)
                    .map(|j| j.0)
            }
        }
    };
}

impl_cols!(SqliteRow);
impl_cols!(PgRow);

/// The milliseconds from timestamp `earlier` to timestamp `later` (column names or expressions),
/// as a number: the one timestamp expression the engines spell differently, since SQLite stores
/// milliseconds and Postgres subtracts to an interval.
pub(crate) fn millis_between(engine: Engine, later: &str, earlier: &str) -> String {
    match engine {
        Engine::Sqlite => format!("({later} - {earlier})"),
        Engine::Postgres => format!("(EXTRACT(EPOCH FROM {later} - {earlier}) * 1000)"),
    }
}

/// Maps every row with `f`, stopping at the first error.
pub(crate) fn map_rows<R, T>(
    rows: &[R],
    f: impl Fn(&R) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(f).collect()
}

/// Runs `$body` with `$c` bound to the transaction of whichever engine `$tx` (a `&mut Tx`) holds.
/// Use `&mut **$c` as the executor.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite($c) => $body,
            $crate::Tx::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$p` bound to the pool of whichever engine `$db` (a `&Db`) holds.
macro_rules! on_db {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite($p) => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

pub(crate) use {on_db, on_tx};
