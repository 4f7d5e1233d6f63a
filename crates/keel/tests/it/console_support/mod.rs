//! A signed-in browser-like client for the console tests: it keeps the session cookie, reads the
//! CSRF token from the pages, and sends forms with an `Origin`.

use keel_testkit::TestApp;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{redirect, Client, Response};

pub const ADMIN: &str = "admin-token-for-console-tests-0123456789";

/// What a browser would send: the session cookie, and the headers a proxy adds.
pub struct Operator<'a> {
    pub app: &'a TestApp,
    pub client: Client,
    pub cookie: Option<String>,
    pub origin: String,
    pub extra: HeaderMap,
}

pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Page {
    async fn of(r: Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Page {
            status,
            headers,
            text,
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token of the page's first form that carries one.
    pub fn csrf(&self) -> String {
        let marker = r#"name="csrf" value=""#;
        let start = self
            .text
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field: {}", self.text))
            + marker.len();
        let end = start + self.text[start..].find('"').unwrap();
        self.text[start..end].to_string()
    }
}

impl<'a> Operator<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let origin = app.base_url.clone();
        Operator::with_origin(app, &origin, HeaderMap::new())
    }

    pub fn with_origin(app: &'a TestApp, origin: &str, extra: HeaderMap) -> Self {
        let client = Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap();
        Operator {
            app,
            client,
            cookie: None,
            origin: origin.into(),
            extra,
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut h = self.extra.clone();
        if let Some(c) = &self.cookie {
            h.insert(
                "cookie",
                HeaderValue::from_str(&format!("keel_console={c}")).unwrap(),
            );
        }
        h
    }

    pub async fn get(&self, path: &str) -> Page {
        Page::of(
            self.client
                .get(self.app.url(path))
                .headers(self.headers())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Posts `fields` as a form with this operator's `Origin` (none when empty).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut headers = self.headers();
        if !self.origin.is_empty() {
            headers.insert(
                HeaderName::from_static("origin"),
                HeaderValue::from_str(&self.origin).unwrap(),
            );
        }
        let r = self
            .client
            .post(self.app.url(path))
            .headers(headers)
            .form(fields)
            .send()
            .await
            .unwrap();
        Page::of(r).await
    }

    /// Posts `fields` with the CSRF token of `page_path`.
    pub async fn act(&self, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(page_path).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    /// Signs in with `token`: the answer is a redirect to the console with the session cookie.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let page = self.post("/admin/login", &[("token", token)]).await;
        assert_eq!(page.status, 303, "{}", page.text);
        let cookie = page.header("set-cookie").to_string();
        let value = cookie
            .strip_prefix("keel_console=")
            .and_then(|v| v.split(';').next())
            .unwrap();
        self.cookie = Some(value.to_string());
        page
    }
}

pub mod browser;
