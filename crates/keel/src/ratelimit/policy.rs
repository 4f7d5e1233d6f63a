//! Rate-limit policies: the built-in ones, the `[[rate_limits]]` of `keel.toml` over them, and
//! which policy a matched route falls under.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderValue, Method};
use serde::Deserialize;

use super::gcra::Rate;

pub const DEFAULT: &str = "default";
pub const WEBHOOKS: &str = "webhooks";
pub const SENSITIVE: &str = "sensitive";

/// One `[[rate_limits]]` entry of `keel.toml`, as written; [`resolve`] checks it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDecl {
    pub name: String,
    pub limit: u32,
    pub period: String,
    pub burst: Option<u32>,
    #[serde(default)]
    pub key: RateLimitKey,
    #[serde(default)]
    pub routes: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitKey {
    #[default]
    User,
    Ip,
    Tenant,
}

/// What a policy counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The verified token's user; the client IP when there is no valid token.
    User,
    /// The client IP.
    Ip,
    /// The verified token's tenant; else its user; else the client IP.
    Tenant,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::User => "user",
            KeyKind::Ip => "ip",
            KeyKind::Tenant => "tenant",
        }
    }

    pub fn needs_principal(self) -> bool {
        matches!(self, KeyKind::User | KeyKind::Tenant)
    }
}

impl From<RateLimitKey> for KeyKind {
    fn from(key: RateLimitKey) -> Self {
        match key {
            RateLimitKey::User => KeyKind::User,
            RateLimitKey::Ip => KeyKind::Ip,
            RateLimitKey::Tenant => KeyKind::Tenant,
        }
    }
}

/// One policy, resolved and ready to check.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub limit: u32,
    pub period: Duration,
    pub burst: u32,
    pub key: KeyKind,
    /// Each route gets a quota of its own (the built-in `webhooks`: one per provider).
    pub per_route: bool,
    pub routes: Vec<RouteRule>,
    pub rate: Rate,
    /// This policy's member of the `RateLimit-Policy` field: `"name";q=300;w=60`.
    pub header: HeaderValue,
    /// Its position in [`Policies::all`] (per-policy counters).
    pub index: usize,
}

impl Policy {
    fn new(name: &str, limit: u32, period: Duration, burst: Option<u32>, key: KeyKind) -> Self {
        let burst = burst.unwrap_or(limit);
        let header = HeaderValue::from_str(&format!("\"{name}\";q={limit};w={}", period.as_secs()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"invalid\";q=0"));
        Policy {
            name: name.to_string(),
            limit,
            period,
            burst,
            key,
            per_route: false,
            routes: Vec::new(),
            rate: Rate::new(limit, period, burst),
            header,
            index: 0,
        }
    }

    fn with_routes(mut self, routes: &[&str]) -> Self {
        self.routes = routes
            .iter()
            .filter_map(|r| RouteRule::parse(r).ok())
            .collect();
        self
    }

    /// `10 per 15m`.
    pub fn describe(&self) -> String {
        format!("{} per {}", self.limit, format_period(self.period))
    }
}

/// `METHOD /path/template`, `/path/template` (any method) or a `/prefix/*` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub method: Option<Method>,
    pub path: PathPattern,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathPattern {
    /// A route template exactly as declared in the router (`/v1/users/{id}`).
    Exact(String),
    /// Every route under this prefix (declared as `/prefix/*`; the prefix ends with `/`).
    Prefix(String),
}

impl RouteRule {
    pub fn parse(text: &str) -> Result<RouteRule, String> {
        let text = text.trim();
        let (method, path) = match text.split_once(char::is_whitespace) {
            Some((method, path)) => (Some(method), path.trim()),
            None => (None, text),
        };
        let method = match method {
            None | Some("*") => None,
            Some(m) => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("route {text:?}: {m:?} is not an HTTP method"))?,
            ),
        };
        if !path.starts_with('/') || path.contains(char::is_whitespace) {
            return Err(format!(
                "route {text:?} must be \"METHOD /path\" or \"/path\" (a path starting with /)"
            ));
        }
        let path = match path.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') => PathPattern::Prefix(prefix.to_string()),
            Some(_) => return Err(format!("route {text:?}: only a trailing /* is a wildcard")),
            None => PathPattern::Exact(path.to_string()),
        };
        Ok(RouteRule { method, path })
    }

    fn path_str(&self) -> &str {
        match &self.path {
            PathPattern::Exact(p) | PathPattern::Prefix(p) => p,
        }
    }
}

/// Health and metrics are never limited: probes and scrapers must always get through.
pub fn is_exempt(path: &str) -> bool {
    path == "/health" || path.starts_with("/health/") || path == "/metrics"
}

/// The built-in policies, before `keel.toml`.
pub fn builtin() -> Vec<Policy> {
    let mut webhooks = Policy::new(WEBHOOKS, 6000, Duration::from_secs(60), None, KeyKind::Ip)
        .with_routes(&[
            "POST /webhooks/revenuecat",
            "POST /webhooks/stripe",
            "POST /webhooks/whop",
        ]);
    webhooks.per_route = true;
    vec![
        Policy::new(DEFAULT, 300, Duration::from_secs(60), None, KeyKind::User),
        webhooks,
        Policy::new(SENSITIVE, 10, Duration::from_secs(900), None, KeyKind::User)
            .with_routes(&["POST /v1/me/entitlements/sync"]),
    ]
}

/// `keel.toml`'s declarations over the built-ins: a declaration named like a built-in replaces
/// its numbers and key, and its routes when it lists any; any other name adds a policy, which
/// must list routes. Every problem is returned.
pub fn resolve(decls: &[RateLimitDecl]) -> Result<Vec<Policy>, Vec<String>> {
    resolve_with(decls, &[])
}

/// [`resolve`], where the policies named in `named` (by the gateway's `[[routes]]` rules) may
/// list no routes of their own: the rules that name them are where they apply.
pub fn resolve_with(decls: &[RateLimitDecl], named: &[&str]) -> Result<Vec<Policy>, Vec<String>> {
    let mut policies = builtin();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for decl in decls {
        let name = decl.name.as_str();
        let at = format!("rate_limits.{name}");
        if !seen.insert(name) {
            problems.push(format!("{at} is declared twice"));
            continue;
        }
        if !is_valid_name(name) {
            problems.push(format!(
                "rate limit name {name:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
            ));
            continue;
        }
        let period = match parse_period(&decl.period) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{at}.period: {e}"));
                continue;
            }
        };
        if decl.limit == 0 || u128::from(decl.limit) > period.as_micros() {
            problems.push(format!(
                "{at}.limit must be from 1 to one per microsecond of the period"
            ));
            continue;
        }
        if decl.burst == Some(0) {
            problems.push(format!("{at}.burst must be at least 1"));
            continue;
        }
        let mut routes = Vec::new();
        for text in &decl.routes {
            match RouteRule::parse(text) {
                Ok(rule) if is_exempt(rule.path_str()) || rule.path_str() == "/" => problems.push(
                    format!("{at}: route {text:?}: health and metrics routes are never limited"),
                ),
                Ok(rule) => routes.push(rule),
                Err(e) => problems.push(format!("{at}: {e}")),
            }
        }
        let mut policy = Policy::new(name, decl.limit, period, decl.burst, decl.key.into());
        policy.routes = routes;
        match policies.iter_mut().find(|p| p.name == name) {
            Some(builtin) => {
                if name == DEFAULT && !policy.routes.is_empty() {
                    problems.push(format!(
                        "{at}.routes must be empty: default applies to every route no other policy lists"
                    ));
                }
                if policy.routes.is_empty() {
                    policy.routes = std::mem::take(&mut builtin.routes);
                }
                policy.per_route = builtin.per_route;
                *builtin = policy;
            }
            None if policy.routes.is_empty() && decl.routes.is_empty() && named.contains(&name) => {
                policies.push(policy)
            }
            None if policy.routes.is_empty() => {
                if decl.routes.is_empty() {
                    problems.push(format!("{at}.routes must list at least one route"));
                }
            }
            None => policies.push(policy),
        }
    }
    check_duplicates(&policies, &mut problems);
    if problems.is_empty() {
        Ok(policies)
    } else {
        Err(problems)
    }
}

fn check_duplicates(policies: &[Policy], problems: &mut Vec<String>) {
    let mut owners: HashMap<(Option<&Method>, &PathPattern), &str> = HashMap::new();
    for policy in policies {
        for rule in &policy.routes {
            if let Some(other) = owners.insert((rule.method.as_ref(), &rule.path), &policy.name) {
                if other != policy.name {
                    problems.push(format!(
                        "rate_limits: route {} {} is listed by both {other} and {}",
                        rule.method.as_ref().map_or("*", Method::as_str),
                        rule.path_str(),
                        policy.name
                    ));
                }
            }
        }
    }
}

pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `30s`, `15m`, `1h`, `1d`: a whole number and a unit, from one second to 30 days.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_s: u64 = match unit.trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => {
            return Err(format!(
                "{text:?} must be a number and a unit: 30s, 15m, 1h, 1d"
            ))
        }
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_s))
        .filter(|s| (1..=30 * 86_400).contains(s))
        .ok_or_else(|| format!("{text:?} must be from 1s to 30d"))?;
    Ok(Duration::from_secs(seconds))
}

fn format_period(period: Duration) -> String {
    let s = period.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The policies of a process, indexed for the per-request lookup.
#[derive(Debug)]
pub struct Policies {
    list: Vec<Policy>,
    /// (method or any, template) → policy index.
    /// Route template → (method, policy index) rules; a method rule before the any-method one.
    exact: HashMap<String, Vec<(Option<Method>, usize)>>,
    /// Prefix rules, longest prefix first.
    prefixes: Vec<(Option<Method>, String, usize)>,
    default: usize,
}

impl Policies {
    pub fn new(list: Vec<Policy>) -> Policies {
        let mut list = list;
        if !list.iter().any(|p| p.name == DEFAULT) {
            list.insert(0, builtin().remove(0));
        }
        for (i, policy) in list.iter_mut().enumerate() {
            policy.index = i;
        }
        let default = list.iter().position(|p| p.name == DEFAULT).unwrap_or(0);
        let mut exact = HashMap::new();
        let mut prefixes = Vec::new();
        for (i, policy) in list.iter().enumerate() {
            for rule in &policy.routes {
                match &rule.path {
                    PathPattern::Exact(p) => {
                        let rules: &mut Vec<(Option<Method>, usize)> =
                            exact.entry(p.clone()).or_default();
                        if !rules.iter().any(|(m, _)| *m == rule.method) {
                            rules.push((rule.method.clone(), i));
                        }
                    }
                    PathPattern::Prefix(p) => prefixes.push((rule.method.clone(), p.clone(), i)),
                }
            }
        }
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
        Policies {
            list,
            exact,
            prefixes,
            default,
        }
    }

    /// The policy for a request to the route template `route`; `None` when exempt.
    pub fn for_route(&self, method: &Method, route: &str) -> Option<&Policy> {
        if is_exempt(route) {
            return None;
        }
        let rules = self.exact.get(route).map(Vec::as_slice).unwrap_or_default();
        let index = rules
            .iter()
            .find(|(m, _)| m.as_ref() == Some(method))
            .or_else(|| rules.iter().find(|(m, _)| m.is_none()))
            .map(|(_, i)| *i)
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(m, prefix, _)| {
                        m.as_ref().is_none_or(|m| m == method) && route.starts_with(prefix.as_str())
                    })
                    .map(|(_, _, i)| *i)
            })
            .unwrap_or(self.default);
        self.list.get(index)
    }

    pub fn by_name(&self, name: &str) -> Option<&Policy> {
        self.list.iter().find(|p| p.name == name)
    }

    pub fn all(&self) -> &[Policy] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(
        name: &str,
        limit: u32,
        period: &str,
        key: RateLimitKey,
        routes: &[&str],
    ) -> RateLimitDecl {
        RateLimitDecl {
            name: name.into(),
            limit,
            period: period.into(),
            burst: None,
            key,
            routes: routes.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn periods() {
        assert_eq!(parse_period("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_period("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_period("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_period("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["15", "m", "0s", "1w", "-1m", "31d", "1.5m"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert_eq!(format_period(Duration::from_secs(900)), "15m");
    }

    #[test]
    fn builtins_and_route_matching() {
        let p = Policies::new(builtin());
        let name = |m: Method, r: &str| p.for_route(&m, r).map(|p| p.name.as_str());
        assert_eq!(name(Method::GET, "/v1/me"), Some(DEFAULT));
        assert_eq!(
            name(Method::POST, "/v1/me/entitlements/sync"),
            Some(SENSITIVE)
        );
        assert_eq!(name(Method::GET, "/v1/me/entitlements/sync"), Some(DEFAULT));
        assert_eq!(name(Method::POST, "/webhooks/stripe"), Some(WEBHOOKS));
        assert_eq!(name(Method::GET, "/health/ready"), None);
        assert_eq!(name(Method::GET, "/metrics"), None);
        let d = p.by_name(DEFAULT).unwrap();
        assert_eq!(d.header.to_str().unwrap(), "\"default\";q=300;w=60");
        assert_eq!(p.by_name(SENSITIVE).unwrap().describe(), "10 per 15m");
    }

    #[test]
    fn keel_toml_overrides_and_adds() {
        let policies = resolve(&[
            decl(SENSITIVE, 5, "1h", RateLimitKey::User, &[]),
            decl(
                "uploads",
                20,
                "1m",
                RateLimitKey::Tenant,
                &["POST /v1/files/*", "/v1/x"],
            ),
            decl(DEFAULT, 1000, "1m", RateLimitKey::Ip, &[]),
        ])
        .unwrap();
        let p = Policies::new(policies);
        let s = p
            .for_route(&Method::POST, "/v1/me/entitlements/sync")
            .unwrap();
        assert_eq!((s.name.as_str(), s.limit, s.burst), (SENSITIVE, 5, 5));
        let u = p.for_route(&Method::POST, "/v1/files/{id}/parts").unwrap();
        assert_eq!((u.name.as_str(), u.key), ("uploads", KeyKind::Tenant));
        assert_eq!(
            p.for_route(&Method::GET, "/v1/files/{id}").unwrap().name,
            DEFAULT
        );
        assert_eq!(
            p.for_route(&Method::DELETE, "/v1/x").unwrap().name,
            "uploads"
        );
        let d = p.for_route(&Method::GET, "/v1/me").unwrap();
        assert_eq!((d.limit, d.key), (1000, KeyKind::Ip));
    }

    #[test]
    fn a_policy_the_gateway_names_may_list_no_routes() {
        let decls = [decl("payments", 5, "1h", RateLimitKey::User, &[])];
        assert!(resolve(&decls).is_err());
        let policies = resolve_with(&decls, &["payments"]).unwrap();
        let p = Policies::new(policies);
        assert_eq!(p.by_name("payments").map(|p| p.limit), Some(5));
        assert_eq!(
            p.for_route(&Method::POST, "/payments").unwrap().name,
            DEFAULT
        );
    }

    #[test]
    fn bad_declarations_are_all_reported() {
        let errors = resolve(&[
            decl("no routes", 1, "1m", RateLimitKey::User, &["/a"]),
            decl("orphan", 1, "1m", RateLimitKey::User, &[]),
            decl("zero", 0, "1m", RateLimitKey::User, &["/b"]),
            decl("period", 1, "soon", RateLimitKey::User, &["/c"]),
            decl(
                "health",
                1,
                "1m",
                RateLimitKey::User,
                &["GET /health/ready"],
            ),
            decl(
                "dup",
                1,
                "1m",
                RateLimitKey::User,
                &["POST /v1/me/entitlements/sync"],
            ),
            decl("verb", 1, "1m", RateLimitKey::User, &["G(T /x"]),
            decl(DEFAULT, 1, "1m", RateLimitKey::User, &["/d"]),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 8, "{errors:#?}");
        assert!(
            errors.iter().any(|e| e.contains("listed by both")),
            "{errors:#?}"
        );
    }

    #[test]
    fn route_rules() {
        let r = RouteRule::parse("post /v1/pay").unwrap();
        assert_eq!(r.method, Some(Method::POST));
        assert_eq!(
            RouteRule::parse("* /v1/*").unwrap().path,
            PathPattern::Prefix("/v1/".into())
        );
        assert!(RouteRule::parse("GET v1").is_err());
        assert!(RouteRule::parse("GET /v1*").is_err());
    }
}
