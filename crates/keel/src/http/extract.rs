//! Extractors whose rejections are problems: malformed JSON says where (400), wrong field types
//! say which field (422), a wrong content type is 415, an oversized body 413, a string holding a
//! NUL character (`\u0000`, which Postgres cannot store) 400.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::middleware::input;
use super::problem::{ApiError, FieldError};

/// A JSON body. Accepts `application/json` and `application/*+json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::from_status(rejection.status()))?;
        if input::json_has_nul(&bytes) {
            return Err(input::nul_refusal("body"));
        }
        parse(&bytes).map(Json)
    }
}

/// The raw bytes of a JSON body, for handlers that verify a signature over them before parsing.
#[derive(Debug, Clone)]
pub struct RawJson(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        Bytes::from_request(req, state)
            .await
            .map(RawJson)
            .map_err(|rejection| ApiError::from_status(rejection.status()))
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON document, mapping syntax errors to 400 and type errors to 422 with the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        classify(inner, path)
    })?;
    de.end().map_err(|e| classify(e, String::new()))?;
    Ok(value)
}

fn classify(e: serde_json::Error, path: String) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::malformed(format!(
            "malformed JSON at line {} column {}",
            e.line(),
            e.column()
        )),
        Category::Data => {
            let field = if path == "." || path.is_empty() {
                "body".to_string()
            } else {
                path
            };
            ApiError::validation(vec![FieldError {
                field,
                message: data_message(&e),
            }])
        }
    }
}

/// serde's message without the trailing position, which the field already locates.
fn data_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Query parameters, with a 400 problem naming the parameter on failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|rejection| ApiError::malformed(rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    #[test]
    fn syntax_errors_are_400_with_position() {
        let err = parse::<Body>(b"{\"name\": \"a\",\n \"count\": }").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.detail.contains("line 2"), "{}", err.detail);
    }

    #[test]
    fn type_errors_are_422_naming_the_field() {
        let err = parse::<Body>(br#"{"name": "a", "count": "three"}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.errors[0].field, "count");
        let err = parse::<Body>(br#"{"name": "a"}"#).unwrap_err();
        assert_eq!(err.errors[0].field, "body");
        assert!(err.errors[0].message.contains("count"));
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        let err = parse::<Body>(br#"{"name": "a", "count": 1} x"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }
}
