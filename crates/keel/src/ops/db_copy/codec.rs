//! Reading cells into [`Value`]s and binding [`Value`]s as parameters, per engine.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Postgres, Row, Sqlite, TypeInfo, ValueRef};

use super::value::{Kind, Value, Width};

pub(super) fn decode_sqlite(row: &SqliteRow, i: usize) -> Result<Value, sqlx::Error> {
    let storage = {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(Value::Null);
        }
        raw.type_info().name().to_string()
    };
    Ok(match storage.as_str() {
        "INTEGER" => Value::Int(row.try_get(i)?),
        "REAL" => Value::Real(row.try_get(i)?),
        "BLOB" => Value::Bytes(row.try_get(i)?),
        _ => Value::Text(row.try_get(i)?),
    })
}

pub(super) fn decode_postgres(row: &PgRow, i: usize, kind: Kind) -> Result<Value, sqlx::Error> {
    fn or_null<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map(f).unwrap_or(Value::Null)
    }
    Ok(match kind {
        Kind::Int(Width::I16) => {
            or_null(row.try_get::<Option<i16>, _>(i)?, |v| Value::Int(v.into()))
        }
        Kind::Int(Width::I32) => {
            or_null(row.try_get::<Option<i32>, _>(i)?, |v| Value::Int(v.into()))
        }
        Kind::Int(Width::I64) => or_null(row.try_get::<Option<i64>, _>(i)?, Value::Int),
        Kind::Real(true) => or_null(row.try_get::<Option<f32>, _>(i)?, |v| Value::Real(v.into())),
        Kind::Real(false) => or_null(row.try_get::<Option<f64>, _>(i)?, Value::Real),
        Kind::Text => or_null(row.try_get::<Option<String>, _>(i)?, Value::Text),
        Kind::Bytes => or_null(row.try_get::<Option<Vec<u8>>, _>(i)?, Value::Bytes),
        Kind::Bool => or_null(row.try_get::<Option<bool>, _>(i)?, Value::Bool),
        Kind::Time => or_null(row.try_get::<Option<DateTime<Utc>>, _>(i)?, Value::Time),
        Kind::Json(_) => or_null(row.try_get::<Option<serde_json::Value>, _>(i)?, Value::Json),
        Kind::Uuid => or_null(row.try_get::<Option<uuid::Uuid>, _>(i)?, Value::Uuid),
    })
}

pub(super) type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;
pub(super) type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

/// SQLite stores what it is given; every value has one natural storage class.
pub(super) fn bind_sqlite(query: SqliteQuery<'_>, value: Value) -> SqliteQuery<'_> {
    match value {
        Value::Null => query.bind(None::<i64>),
        Value::Int(i) => query.bind(i),
        Value::Real(f) => query.bind(f),
        Value::Text(s) => query.bind(s),
        Value::Bytes(b) => query.bind(b),
        Value::Bool(b) => query.bind(i64::from(b)),
        Value::Time(t) => query.bind(t.timestamp_millis()),
        Value::Json(j) => query.bind(j.to_string()),
        Value::Uuid(u) => query.bind(u.hyphenated().to_string()),
    }
}

/// Binds `value` (already converted to `kind`) with the Postgres type of `kind`, NULLs included.
pub(super) fn bind_postgres(
    query: PgQuery<'_>,
    value: Value,
    kind: Kind,
) -> Result<PgQuery<'_>, sqlx::Error> {
    let query = match (kind, value) {
        (Kind::Int(Width::I16), Value::Null) => query.bind(None::<i16>),
        (Kind::Int(Width::I32), Value::Null) => query.bind(None::<i32>),
        (Kind::Int(Width::I64), Value::Null) => query.bind(None::<i64>),
        (Kind::Real(true), Value::Null) => query.bind(None::<f32>),
        (Kind::Real(false), Value::Null) => query.bind(None::<f64>),
        (Kind::Text, Value::Null) => query.bind(None::<String>),
        (Kind::Bytes, Value::Null) => query.bind(None::<Vec<u8>>),
        (Kind::Bool, Value::Null) => query.bind(None::<bool>),
        (Kind::Time, Value::Null) => query.bind(None::<DateTime<Utc>>),
        (Kind::Json(_), Value::Null) => query.bind(None::<serde_json::Value>),
        (Kind::Uuid, Value::Null) => query.bind(None::<uuid::Uuid>),
        (Kind::Int(Width::I16), Value::Int(i)) => query.bind(i16::try_from(i).map_err(encode)?),
        (Kind::Int(Width::I32), Value::Int(i)) => query.bind(i32::try_from(i).map_err(encode)?),
        (Kind::Int(Width::I64), Value::Int(i)) => query.bind(i),
        (Kind::Real(true), Value::Real(f)) => query.bind(f as f32),
        (Kind::Real(false), Value::Real(f)) => query.bind(f),
        (Kind::Text, Value::Text(s)) => query.bind(s),
        (Kind::Bytes, Value::Bytes(b)) => query.bind(b),
        (Kind::Bool, Value::Bool(b)) => query.bind(b),
        (Kind::Time, Value::Time(t)) => query.bind(t),
        (Kind::Json(_), Value::Json(j)) => query.bind(j),
        (Kind::Uuid, Value::Uuid(u)) => query.bind(u),
        (kind, _) => {
            return Err(encode(format!(
                "internal: an unconverted value reached a {kind:?} column"
            )))
        }
    };
    Ok(query)
}

fn encode(e: impl ToString) -> sqlx::Error {
    sqlx::Error::Encode(e.to_string().into())
}
