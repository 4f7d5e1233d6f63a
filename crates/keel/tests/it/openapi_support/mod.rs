//! JSON helpers of the OpenAPI tests: `$ref` resolution, structural differences and a small
//! JSON Schema conformance check for the subset the document uses.

#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;

/// What a `$ref` points to (OpenAPI 3.1: a reference's own description overrides).
pub fn deref(doc: &Value, value: &Value) -> Value {
    let Some(reference) = value["$ref"].as_str() else {
        return value.clone();
    };
    let mut target = pointer(doc, reference).expect(reference).clone();
    if let Some(description) = value.get("description") {
        target["description"] = description.clone();
    }
    target
}

pub fn pointer<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

pub fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Pointers where two documents differ (the first 20), for a readable failure.
pub fn differences(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    if out.len() >= 20 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = &Value::Null;
                let (l, r) = (x.get(k).unwrap_or(null), y.get(k).unwrap_or(null));
                differences(l, r, format!("{at}/{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                differences(l, r, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(format!("{at}: {a} != {b}")),
    }
}

/// Checks `value` against `schema` (the subset of JSON Schema the document uses). An object
/// schema with `properties` lists every field: an unlisted one is an error.
pub fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = pointer(doc, reference).ok_or(format!("unresolved {reference}"))?;
        return conforms(doc, target, value, at);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.is_empty()
        || types.contains(&kind)
        || (kind == "integer" && types.contains(&"number"));
    if !fits {
        return Err(format!("{at}: {value} is not {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    if schema["format"] == "date-time" {
        if let Value::String(s) = value {
            chrono::DateTime::parse_from_rfc3339(s).map_err(|e| format!("{at}: {s}: {e}"))?;
        }
    }
    match value {
        Value::Array(items) if schema.get("items").is_some() => {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, &format!("{at}/{i}"))?;
            }
        }
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let extra = &schema["additionalProperties"];
            for required in schema["required"].as_array().into_iter().flatten() {
                if !map.contains_key(required.as_str().unwrap()) {
                    return Err(format!("{at}: {required} missing from {value}"));
                }
            }
            for (k, v) in map {
                match properties.and_then(|p| p.get(k)) {
                    Some(s) => conforms(doc, s, v, &format!("{at}/{k}"))?,
                    None if extra.is_object() => conforms(doc, extra, v, &format!("{at}/{k}"))?,
                    None if properties.is_some() => {
                        return Err(format!("{at}: {k} is not documented"))
                    }
                    None => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn property_names(doc: &Value, schema: &str) -> BTreeSet<String> {
    let properties = doc["components"]["schemas"][schema]["properties"].as_object();
    properties.expect(schema).keys().cloned().collect()
}
