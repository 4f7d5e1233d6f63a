//! The /docs page: self-contained, its script and style allowed by hash, nothing fetched from elsewhere.

use super::*;

fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("'sha256-{}'", STANDARD.encode(digest))
}

/// The text of the one `<tag>…</tag>` element of `html`.
fn element<'a>(html: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    assert_eq!(html.matches(&open).count(), 1, "one <{tag}>");
    let start = html.find(&open).unwrap() + open.len();
    let end = start + html[start..].find(&close).expect("closed");
    &html[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_is_self_contained() {
    let app = spawn(&[]).await;
    let r = app.get("/docs").await;
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert_eq!(header(&headers, "x-frame-options"), "DENY");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    let csp = header(&headers, "content-security-policy").to_string();
    let html = r.text().await.unwrap();

    for forbidden in "'unsafe-eval' 'unsafe-inline' http: https: * data:".split(' ') {
        assert!(!csp.contains(forbidden), "{forbidden} in {csp}");
    }
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for wanted in CSP_NEEDS.split(';') {
        assert!(directives.contains(&wanted), "{wanted} not in {csp}");
    }
    // Exactly the inline script and style are allowed, by hash.
    let script = element(&html, "script");
    let style = element(&html, "style");
    let allows = |directive: String| directives.contains(&directive.as_str());
    assert!(allows(format!("script-src {}", csp_hash(script))), "{csp}");
    assert!(allows(format!("style-src {}", csp_hash(style))), "{csp}");
    assert!(
        !html.contains(" style=\""),
        "a style attribute would need 'unsafe-hashes'"
    );
    assert!(!html.contains(" onclick=") && !html.contains(" onload="));

    // Nothing from the internet: no absolute URL anywhere in the HTML, script or CSS.
    assert!(!html.contains("http://") && !html.contains("https://"));
    for attr in ["src=\"", "href=\""] {
        for value in html.split(attr).skip(1) {
            let url = &value[..value.find('"').unwrap()];
            assert!(!url.contains("//") && !url.contains(':'), "{attr}{url}");
        }
    }
    assert!(!html.contains("@import") && !html.contains("url("));
    // It renders the same-origin document: operations by tag, parameters, bodies, responses.
    assert!(script.contains("fetch(\"openapi.json\""));
    for part in "Parameters|Request body|Responses|Authentication|Schemas".split('|') {
        assert!(script.contains(part), "{part}");
    }
}
