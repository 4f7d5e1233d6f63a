//! Joining the application's documented routes into Keel's document, and the conventions every
//! operation follows whoever wrote it.

use serde_json::{json, Map, Value};

use super::components::PROBLEMS;

/// The methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The operations of a path item.
pub(super) fn operations(item: &mut Value) -> impl Iterator<Item = &mut Value> {
    item.as_object_mut()
        .into_iter()
        .flat_map(|ops| ops.iter_mut())
        .filter(|(method, op)| METHODS.contains(&method.as_str()) && op.is_object())
        .map(|(_, op)| op)
}

/// Adds `app`'s paths, components and tags to `document`. Keel's own win a clash: an
/// application cannot redefine a Keel operation, schema or tag.
pub(super) fn app_into(document: &mut Value, app: &Value) {
    let paths = document["paths"].as_object_mut();
    if let (Some(paths), Some(theirs)) = (paths, app["paths"].as_object()) {
        for (path, item) in theirs {
            let ours = paths.entry(path.clone()).or_insert_with(|| json!({}));
            add_missing(ours, item);
        }
    }
    if let Some(theirs) = app["components"].as_object() {
        for (kind, entries) in theirs {
            let ours = document["components"]
                .as_object_mut()
                .map(|all| all.entry(kind.clone()).or_insert_with(|| json!({})));
            if let Some(ours) = ours {
                add_missing(ours, entries);
            }
        }
    }
    let mut theirs: Vec<Value> = app["tags"].as_array().cloned().unwrap_or_default();
    let named = app["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values());
    let named = named.flat_map(|item| item.as_object().into_iter().flat_map(|ops| ops.values()));
    for name in named.flat_map(|op| op["tags"].as_array().cloned().unwrap_or_default()) {
        theirs.push(json!({ "name": name }));
    }
    if let Some(tags) = document["tags"].as_array_mut() {
        for tag in theirs {
            if !tags.iter().any(|t| t["name"] == tag["name"]) {
                tags.push(tag);
            }
        }
    }
}

/// Copies each entry of `from` that `into` lacks.
fn add_missing(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (key, value) in from {
            into.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
}

/// A 4xx or 5xx answer documented without a body is a problem (RFC 9457): it becomes a reference
/// to the shared response of its status (`components.responses`), keeping its own description of
/// when it happens here.
pub(super) fn problems(paths: &mut Map<String, Value>) {
    for item in paths.values_mut() {
        for op in operations(item) {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                if let Some(reference) = problem(status, response) {
                    *response = reference;
                }
            }
        }
    }
}

/// A header has no `null`: an optional header parameter (an `Option` in Rust, which utoipa makes
/// nullable) is a string that may be absent.
pub(super) fn headers_not_null(paths: &mut Map<String, Value>) {
    for item in paths.values_mut() {
        for op in operations(item) {
            let params = op.get_mut("parameters").and_then(Value::as_array_mut);
            let params = params.into_iter().flatten();
            for param in params.filter(|p| p["in"] == "header") {
                let Some(kinds) = param["schema"]["type"].as_array() else {
                    continue;
                };
                let kinds: Vec<Value> = kinds.iter().filter(|k| *k != "null").cloned().collect();
                param["schema"]["type"] = match kinds.as_slice() {
                    [one] => one.clone(),
                    _ => Value::Array(kinds),
                };
            }
        }
    }
}

/// utoipa writes an inlined schema that carries its own description as a `oneOf` of that one
/// schema; it is written here as the schema itself, which the `/docs` page renders field by field.
pub(super) fn single_one_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let single = match map.get("oneOf") {
                Some(Value::Array(members)) if members.len() == 1 => {
                    members[0].as_object().cloned()
                }
                _ => None,
            };
            if let Some(member) = single {
                map.remove("oneOf");
                for (key, field) in member {
                    map.entry(key).or_insert(field);
                }
            }
            map.values_mut().for_each(single_one_of);
        }
        Value::Array(items) => items.iter_mut().for_each(single_one_of),
        _ => {}
    }
}

fn problem(status: &str, response: &Value) -> Option<Value> {
    let code: u16 = status.parse().ok()?;
    if code < 400 || response.get("content").is_some() || response.get("$ref").is_some() {
        return None;
    }
    let (_, name, _) = PROBLEMS.iter().find(|(s, _, _)| *s == code)?;
    let mut reference = Map::new();
    reference.insert(
        "$ref".into(),
        json!(format!("#/components/responses/{name}")),
    );
    if let Some(description) = response["description"].as_str() {
        reference.insert("description".into(), json!(description));
    }
    Some(Value::Object(reference))
}
