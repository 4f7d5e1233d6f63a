//! A small builder for operation objects, and the schema and parameter shorthands the path
//! modules share.

use serde_json::{json, Map, Value};

use super::components::PROBLEMS;

/// One operation (`paths.PATH.METHOD`).
pub(super) struct Op(Map<String, Value>);

impl Op {
    pub fn new(tag: &str, id: &str, summary: &str) -> Self {
        let mut op = Map::new();
        op.insert("tags".into(), json!([tag]));
        op.insert("operationId".into(), json!(id));
        op.insert("summary".into(), json!(summary));
        op.insert("responses".into(), Value::Object(Map::new()));
        Op(op)
    }

    pub fn text(mut self, description: &str) -> Self {
        self.0.insert("description".into(), json!(description));
        self
    }

    /// Who may call: a list of alternatives (`[]` for none needed).
    pub fn security(mut self, alternatives: Value) -> Self {
        self.0.insert("security".into(), alternatives);
        self
    }

    pub fn param(mut self, param: Value) -> Self {
        let params = self
            .0
            .entry("parameters")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = params {
            list.push(param);
        }
        self
    }

    /// A required JSON body.
    pub fn body(mut self, schema: Value) -> Self {
        self.0.insert(
            "requestBody".into(),
            json!({
                "required": true,
                "content": { "application/json": { "schema": schema } }
            }),
        );
        self
    }

    pub fn answer(mut self, status: u16, response: Value) -> Self {
        if let Some(Value::Object(responses)) = self.0.get_mut("responses") {
            responses.insert(status.to_string(), response);
        }
        self
    }

    /// A problem answer: the shared response for `status`, with what it means here.
    pub fn problem(self, status: u16, description: &str) -> Self {
        let name = PROBLEMS
            .iter()
            .find(|(s, _, _)| *s == status)
            .map(|(_, name, _)| *name)
            .unwrap_or("Unavailable");
        let reference = json!({
            "$ref": format!("#/components/responses/{name}"),
            "description": description,
        });
        self.answer(status, reference)
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// `{"$ref": "#/components/schemas/NAME"}`.
pub(super) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema`, with `null` also allowed (OpenAPI 3.1: a type list).
pub(super) fn nullable(mut schema: Value) -> Value {
    if let Some(Value::String(kind)) = schema.get("type").cloned() {
        schema["type"] = json!([kind, "null"]);
    }
    schema
}

/// A JSON answer.
pub(super) fn json_answer(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } }
    })
}

pub(super) fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": schema
    })
}

pub(super) fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": false,
        "description": description,
        "schema": schema
    })
}

pub(super) fn header_param(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "header",
        "required": false,
        "description": description,
        "schema": schema
    })
}
