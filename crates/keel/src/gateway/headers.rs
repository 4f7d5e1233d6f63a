//! The headers of a request on its way to the app: every inbound copy of the identity and
//! forwarding headers is removed (a client cannot claim to be someone), the hop-by-hop headers
//! too, and Keel sets its own.

use std::net::IpAddr;

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");
pub const X_TENANT_ID: HeaderName = HeaderName::from_static("x-tenant-id");
pub const X_ENTITLEMENTS: HeaderName = HeaderName::from_static("x-entitlements");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_KEEL_SIGNATURE: HeaderName = HeaderName::from_static("x-keel-signature");

/// Removed from every request to the app, whatever the rule.
const IDENTITY: [HeaderName; 5] = [
    X_USER_ID,
    X_TENANT_ID,
    X_ENTITLEMENTS,
    X_REQUEST_ID,
    header::FORWARDED,
];

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the classic list), which concern one connection
/// only. `Host` goes too: the client sets the app's.
const HOP_BY_HOP: [HeaderName; 7] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::HOST,
];

/// Whether the request asks to switch protocols (a WebSocket handshake).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v, "upgrade"))
}

fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Removes the identity, forwarding, `x-keel-*` and hop-by-hop headers (and every header
/// `Connection` names). A protocol switch keeps `Connection: upgrade` and `Upgrade`.
pub fn strip(headers: &mut HeaderMap, upgrade: bool) {
    strip_connection_named(headers);
    for name in IDENTITY.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
    let prefixed = |name: &HeaderName| {
        let name = name.as_str();
        name.starts_with("x-forwarded-") || name.starts_with("x-keel-")
    };
    if headers.keys().any(prefixed) {
        let names: Vec<HeaderName> = headers.keys().filter(|n| prefixed(n)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
}

/// Removes what an answer from the app must not carry to the client: hop-by-hop headers (a
/// protocol switch keeps `Connection` and `Upgrade`).
pub fn strip_response(headers: &mut HeaderMap, upgrade: bool) {
    strip_connection_named(headers);
    for name in HOP_BY_HOP.iter().take(6) {
        headers.remove(name);
    }
    if !upgrade {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// Headers listed in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
fn strip_connection_named(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.eq_ignore_ascii_case("upgrade") && !t.eq_ignore_ascii_case("close"))
        .filter(|t| !t.eq_ignore_ascii_case("keep-alive"))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// Who the request is from, as the app hears it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: HeaderValue,
    pub tenant_id: Option<HeaderValue>,
    pub entitlements: HeaderValue,
}

impl Identity {
    /// `None` when a value cannot travel in a header (a control character).
    pub fn new(user_id: &str, tenant_id: Option<&str>, entitlements: &[String]) -> Option<Self> {
        let entitlements = match entitlements {
            [] => HeaderValue::from_static(""),
            [one] => HeaderValue::from_bytes(one.as_bytes()).ok()?,
            many => HeaderValue::from_maybe_shared(axum::body::Bytes::from(many.join(","))).ok()?,
        };
        Some(Identity {
            user_id: HeaderValue::from_bytes(user_id.as_bytes()).ok()?,
            tenant_id: match tenant_id {
                Some(t) => Some(HeaderValue::from_bytes(t.as_bytes()).ok()?),
                None => None,
            },
            entitlements,
        })
    }
}

/// Where the request came from: the client's address, the scheme it used and the host it named.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub client: Option<IpAddr>,
    pub https: bool,
    pub host: Option<HeaderValue>,
}

/// Sets the identity (when there is one), the request id and the forwarding headers.
pub fn set(
    headers: &mut HeaderMap,
    identity: Option<&Identity>,
    request_id: Option<HeaderValue>,
    forwarded: Forwarded,
) {
    headers.reserve(8);
    if let Some(identity) = identity {
        headers.insert(X_USER_ID, identity.user_id.clone());
        if let Some(tenant) = &identity.tenant_id {
            headers.insert(X_TENANT_ID, tenant.clone());
        }
        headers.insert(X_ENTITLEMENTS, identity.entitlements.clone());
    }
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID, id);
    }
    if let Some(client) = forwarded.client {
        let text = client.to_string();
        if let Ok(value) = HeaderValue::from_maybe_shared(axum::body::Bytes::from(text)) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if forwarded.https { "https" } else { "http" }),
    );
    if let Some(host) = forwarded.host {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn every_inbound_identity_and_forwarding_header_is_removed() {
        let mut headers = map(&[
            ("x-user-id", "admin"),
            ("X-User-Id", "root"),
            ("x-tenant-id", "acme"),
            ("x-entitlements", "premium"),
            ("x-request-id", "abc"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-prefix", "/x"),
            ("x-keel-signature", "t=1,v1=00"),
            ("x-keel-anything", "1"),
            ("forwarded", "for=1.2.3.4"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("host", "public.example"),
            ("authorization", "Bearer t"),
            ("x-app-header", "kept"),
        ]);
        strip(&mut headers, false);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "x-app-header"]);
    }

    #[test]
    fn a_protocol_switch_keeps_connection_upgrade() {
        let mut headers = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(is_upgrade(&headers));
        strip(&mut headers, true);
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");
        assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn keel_sets_identity_request_id_and_forwarding() {
        let mut headers = HeaderMap::new();
        let identity = Identity::new(
            "user_1",
            Some("org_1"),
            &["premium".to_string(), "pro".to_string()],
        )
        .unwrap();
        let forwarded = Forwarded {
            client: Some([10, 0, 0, 7].into()),
            https: true,
            host: Some(HeaderValue::from_static("api.example")),
        };
        set(
            &mut headers,
            Some(&identity),
            Some(HeaderValue::from_static("rid")),
            forwarded,
        );
        assert_eq!(headers["x-user-id"], "user_1");
        assert_eq!(headers["x-tenant-id"], "org_1");
        assert_eq!(headers["x-entitlements"], "premium,pro");
        assert_eq!(headers["x-request-id"], "rid");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.7");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "api.example");
        assert!(Identity::new("a\nb", None, &[]).is_none());
    }
}
