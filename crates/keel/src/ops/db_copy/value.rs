//! The engine-neutral value model and the conversions between the engines' representations.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// One cell, as read from the source or as it will be written to the target.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
    Time(DateTime<Utc>),
    Json(serde_json::Value),
    Uuid(Uuid),
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Int(i) => format!("integer {i}"),
            Value::Real(f) => format!("real {f}"),
            Value::Text(_) => "a text value".into(),
            Value::Bytes(b) => format!("{} bytes", b.len()),
            Value::Bool(b) => format!("boolean {b}"),
            Value::Time(t) => format!("time {}", t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            Value::Json(_) => "a JSON value".into(),
            Value::Uuid(u) => format!("UUID {u}"),
        }
    }
}

/// The width of an integer column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    I16,
    I32,
    I64,
}

/// What a column holds, decided from its engine and declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int(Width),
    /// `true`: single precision (Postgres `real`).
    Real(bool),
    Text,
    Bytes,
    Bool,
    /// Postgres `timestamp with time zone`. SQLite keeps times as INTEGER milliseconds.
    Time,
    /// `true`: `jsonb`, `false`: `json`.
    Json(bool),
    Uuid,
}

impl Kind {
    /// The kind of a SQLite column from its declared type, by SQLite's affinity rules; `None` for
    /// NUMERIC affinity (DATE, DECIMAL, BOOLEAN, ...), whose storage is ambiguous.
    pub fn of_sqlite(declared: &str) -> Option<Kind> {
        let t = declared.to_ascii_uppercase();
        if t.contains("INT") {
            Some(Kind::Int(Width::I64))
        } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
            Some(Kind::Text)
        } else if t.contains("BLOB") || t.trim().is_empty() {
            Some(Kind::Bytes)
        } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
            Some(Kind::Real(false))
        } else {
            None
        }
    }

    /// The kind of a Postgres column from `information_schema.columns.data_type`.
    pub fn of_postgres(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "smallint" => Kind::Int(Width::I16),
            "integer" => Kind::Int(Width::I32),
            "bigint" => Kind::Int(Width::I64),
            "real" => Kind::Real(true),
            "double precision" => Kind::Real(false),
            "text" | "character varying" | "character" => Kind::Text,
            "bytea" => Kind::Bytes,
            "boolean" => Kind::Bool,
            "timestamp with time zone" => Kind::Time,
            "jsonb" => Kind::Json(true),
            "json" => Kind::Json(false),
            "uuid" => Kind::Uuid,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Int(Width::I16) => "smallint",
            Kind::Int(Width::I32) => "integer",
            Kind::Int(Width::I64) => "integer (64-bit)",
            Kind::Real(_) => "real",
            Kind::Text => "text",
            Kind::Bytes => "bytes",
            Kind::Bool => "boolean",
            Kind::Time => "timestamp",
            Kind::Json(_) => "JSON",
            Kind::Uuid => "UUID",
        }
    }
}

/// Converts `value` to the representation a column of `kind` takes. The message says what did
/// not fit; the caller adds the table and column.
pub fn convert(value: Value, kind: Kind) -> Result<Value, String> {
    let cannot = |v: &Value| Err(format!("cannot store {} as {}", v.describe(), kind.name()));
    let converted = match (kind, value) {
        (_, Value::Null) => Value::Null,
        (Kind::Int(width), v) => {
            let i = match v {
                Value::Int(i) => i,
                Value::Bool(b) => i64::from(b),
                Value::Time(t) => t.timestamp_millis(),
                Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
                other => return cannot(&other),
            };
            let fits = match width {
                Width::I16 => i16::try_from(i).is_ok(),
                Width::I32 => i32::try_from(i).is_ok(),
                Width::I64 => true,
            };
            if !fits {
                return Err(format!("integer {i} does not fit {}", kind.name()));
            }
            Value::Int(i)
        }
        (Kind::Real(_), Value::Real(f)) => Value::Real(f),
        (Kind::Real(_), Value::Int(i)) => Value::Real(i as f64),
        (Kind::Text, Value::Text(s)) => Value::Text(s),
        (Kind::Text, Value::Json(j)) => Value::Text(j.to_string()),
        (Kind::Text, Value::Uuid(u)) => Value::Text(u.hyphenated().to_string()),
        (Kind::Text, Value::Time(t)) => Value::Text(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        (Kind::Bytes, Value::Bytes(b)) => Value::Bytes(b),
        (Kind::Bytes, Value::Text(s)) => Value::Bytes(s.into_bytes()),
        (Kind::Bool, Value::Bool(b)) => Value::Bool(b),
        (Kind::Bool, Value::Int(0)) => Value::Bool(false),
        (Kind::Bool, Value::Int(1)) => Value::Bool(true),
        (Kind::Time, Value::Time(t)) => Value::Time(t),
        (Kind::Time, Value::Int(ms)) => match DateTime::<Utc>::from_timestamp_millis(ms) {
            Some(t) => Value::Time(t),
            None => return Err(format!("{ms} ms since the epoch is out of range")),
        },
        (Kind::Time, Value::Text(s)) => match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => Value::Time(t.with_timezone(&Utc)),
            Err(e) => return Err(format!("a text value is not an RFC 3339 time: {e}")),
        },
        (Kind::Json(_), Value::Json(j)) => Value::Json(j),
        (Kind::Json(_), Value::Text(s)) => match serde_json::from_str(&s) {
            Ok(j) => Value::Json(j),
            Err(e) => return Err(format!("a text value is not JSON: {e}")),
        },
        (Kind::Uuid, Value::Uuid(u)) => Value::Uuid(u),
        (Kind::Uuid, Value::Text(s)) => match Uuid::parse_str(&s) {
            Ok(u) => Value::Uuid(u),
            Err(e) => return Err(format!("a text value is not a UUID: {e}")),
        },
        (Kind::Uuid, Value::Bytes(b)) => match Uuid::from_slice(&b) {
            Ok(u) => Value::Uuid(u),
            Err(_) => return cannot(&Value::Bytes(b)),
        },
        (_, other) => return cannot(&other),
    };
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_postgres_representations_convert_both_ways() {
        let ms = 1_658_726_378_679;
        let time = convert(Value::Int(ms), Kind::Time).unwrap();
        assert_eq!(
            convert(time, Kind::Int(Width::I64)).unwrap(),
            Value::Int(ms)
        );
        assert_eq!(
            convert(Value::Int(1), Kind::Bool).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            convert(Value::Bool(false), Kind::Int(Width::I64)).unwrap(),
            Value::Int(0)
        );
        assert!(convert(Value::Int(2), Kind::Bool).is_err());
        let json = convert(Value::Text(r#"{"a":[1,2]}"#.into()), Kind::Json(true)).unwrap();
        assert_eq!(
            convert(json, Kind::Text).unwrap(),
            Value::Text(r#"{"a":[1,2]}"#.into())
        );
        let id = "0190a4b2-7c3d-7e8f-9a0b-1c2d3e4f5a6b";
        let uuid = convert(Value::Text(id.into()), Kind::Uuid).unwrap();
        assert_eq!(convert(uuid, Kind::Text).unwrap(), Value::Text(id.into()));
        assert!(convert(Value::Int(70_000), Kind::Int(Width::I16)).is_err());
        assert_eq!(convert(Value::Null, Kind::Uuid).unwrap(), Value::Null);
    }

    #[test]
    fn declared_types_map_to_kinds() {
        assert_eq!(Kind::of_sqlite("INTEGER"), Some(Kind::Int(Width::I64)));
        assert_eq!(Kind::of_sqlite("TEXT"), Some(Kind::Text));
        assert_eq!(Kind::of_sqlite("BLOB"), Some(Kind::Bytes));
        assert_eq!(Kind::of_sqlite("NUMERIC"), None);
        assert_eq!(
            Kind::of_postgres("timestamp with time zone"),
            Some(Kind::Time)
        );
        assert_eq!(Kind::of_postgres("jsonb"), Some(Kind::Json(true)));
        assert_eq!(Kind::of_postgres("numeric"), None);
    }
}
