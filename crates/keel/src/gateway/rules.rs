//! The `[[routes]]` rules of `keel.toml`: which requests to the app need a token, an
//! entitlement, a tenant, which rate-limit policy they fall under and how large a body may be.
//! The first rule whose path and methods match wins; a request no rule matches gets the defaults
//! (a token required), so a route nobody wrote a rule for is closed, not open.
//!
//! Paths: `/exact/path`, `*` for exactly one non-empty segment (`/api/*/items`), and a trailing
//! `/**` for the rest of the path, however deep, including none (`/api/**` matches `/api`,
//! `/api/` and `/api/a/b`).

use std::sync::Arc;

use axum::http::Method;
use serde::Deserialize;

/// Who may pass a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A valid token (401 otherwise). The default.
    #[default]
    Required,
    /// Anyone; a valid token's identity is passed on, an invalid one is refused.
    Optional,
    /// Anyone; no token is read and no identity passed on.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantMode {
    Required,
}

/// A size as written: a number of bytes or text such as `10MB`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeDecl {
    Bytes(u64),
    Text(String),
}

/// One `[[routes]]` entry as written; [`compile`] checks it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDecl {
    pub path: String,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub auth: AuthMode,
    pub entitlement: Option<String>,
    pub tenant: Option<TenantMode>,
    pub rate_limit: Option<String>,
    pub body_limit: Option<SizeDecl>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: one non-empty segment.
    Any,
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<Segment>,
    /// Ends in `/**`: any rest of the path.
    tail: bool,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("must start with /".into());
        };
        if text.contains(|c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '%' | '\\')
        }) {
            return Err("must be a plain path (no spaces, ?, #, % or \\)".into());
        }
        let mut segments = Vec::new();
        let mut tail = false;
        let parts: Vec<&str> = if rest.is_empty() {
            vec![]
        } else {
            rest.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            match *part {
                "**" if last => tail = true,
                "**" => return Err("** may only end the path (/prefix/**)".into()),
                "*" => segments.push(Segment::Any),
                "" if last => segments.push(Segment::Literal(String::new())),
                "" => return Err("must not contain //".into()),
                "." | ".." => return Err("must not contain . or .. segments".into()),
                p if p.contains('*') => {
                    return Err("* stands for a whole segment (/a/*/b), not part of one".into())
                }
                p => segments.push(Segment::Literal(p.to_string())),
            }
        }
        if parts.is_empty() {
            segments.push(Segment::Literal(String::new()));
        }
        Ok(Pattern { segments, tail })
    }

    /// Whether `path` (a normalised path starting with `/`) matches.
    fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for segment in &self.segments {
            let Some(part) = parts.next() else {
                return false;
            };
            match segment {
                Segment::Any if !part.is_empty() => {}
                Segment::Literal(l) if l == part => {}
                _ => return false,
            }
        }
        self.tail || parts.next().is_none()
    }

    /// Whether every path `other` matches, this one matches too.
    fn covers(&self, other: &Pattern) -> bool {
        for (i, mine) in self.segments.iter().enumerate() {
            let Some(theirs) = other.segments.get(i) else {
                return false;
            };
            match (mine, theirs) {
                (Segment::Any, Segment::Any) => {}
                (Segment::Any, Segment::Literal(l)) if !l.is_empty() => {}
                (Segment::Literal(a), Segment::Literal(b)) if a == b => {}
                _ => return false,
            }
        }
        if self.tail {
            return true;
        }
        other.segments.len() == self.segments.len() && !other.tail
    }
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `/api/premium/**`, or `GET,POST /api/items` when the rule names methods: the rule in
    /// logs and metrics.
    pub label: Arc<str>,
    pattern: Pattern,
    /// Empty: every method.
    methods: Vec<Method>,
    pub auth: AuthMode,
    pub entitlement: Option<String>,
    pub tenant: bool,
    pub rate_limit: Option<String>,
    pub body_limit: Option<u64>,
}

impl Rule {
    /// The rule a request matching none gets: a token required, nothing else.
    pub fn fallback() -> Rule {
        Rule {
            label: Arc::from("default"),
            pattern: Pattern {
                segments: Vec::new(),
                tail: true,
            },
            methods: Vec::new(),
            auth: AuthMode::Required,
            entitlement: None,
            tenant: false,
            rate_limit: None,
            body_limit: None,
        }
    }

    fn applies(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method)) && self.pattern.matches(path)
    }

    fn shadows(&self, other: &Rule) -> bool {
        let methods = self.methods.is_empty()
            || (!other.methods.is_empty()
                && other.methods.iter().all(|m| self.methods.contains(m)));
        methods && self.pattern.covers(&other.pattern)
    }
}

/// The index of the first rule of `rules` that applies to the request; `None` for the defaults.
pub fn find(rules: &[Rule], method: &Method, path: &str) -> Option<usize> {
    rules.iter().position(|r| r.applies(method, path))
}

/// Checks every rule and compiles them; `policies` are the rate-limit policy names there are.
/// Every problem is returned, each naming its rule (`routes[2] (/api/**)`).
pub fn compile(decls: &[RouteDecl], policies: &[&str]) -> Result<Vec<Rule>, Vec<String>> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut problems = Vec::new();
    for (i, decl) in decls.iter().enumerate() {
        let at = format!("routes[{}] ({})", i + 1, decl.path);
        let before = problems.len();
        let pattern = Pattern::parse(&decl.path)
            .map_err(|e| problems.push(format!("{at}: path {e}")))
            .ok();
        let mut methods = Vec::new();
        for m in &decl.methods {
            match Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()) {
                Ok(method) if !m.trim().is_empty() => methods.push(method),
                _ => problems.push(format!("{at}: {m:?} is not an HTTP method")),
            }
        }
        if let Some(name) = &decl.entitlement {
            if !valid_entitlement(name) {
                problems.push(format!(
                    "{at}: entitlement {name:?} must be 1 to 255 characters without commas, spaces or control characters"
                ));
            }
            if decl.auth != AuthMode::Required {
                problems.push(format!(
                    "{at}: entitlement needs auth = \"required\" (an entitlement belongs to a user)"
                ));
            }
        }
        if decl.tenant.is_some() && decl.auth != AuthMode::Required {
            problems.push(format!(
                "{at}: tenant = \"required\" needs auth = \"required\" (a tenant comes from the token)"
            ));
        }
        if let Some(name) = &decl.rate_limit {
            if !policies.contains(&name.as_str()) {
                problems.push(format!(
                    "{at}: rate_limit {name:?} is no policy (there are: {})",
                    policies.join(", ")
                ));
            }
        }
        let body_limit = match &decl.body_limit {
            None => None,
            Some(size) => match parse_size(size) {
                Ok(n) => Some(n),
                Err(e) => {
                    problems.push(format!("{at}: body_limit {e}"));
                    None
                }
            },
        };
        let (Some(pattern), true) = (pattern, problems.len() == before) else {
            continue;
        };
        let label = if methods.is_empty() {
            decl.path.clone()
        } else {
            let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
            format!("{} {}", names.join(","), decl.path)
        };
        let rule = Rule {
            label: Arc::from(label),
            pattern,
            methods,
            auth: decl.auth,
            entitlement: decl.entitlement.clone(),
            tenant: decl.tenant.is_some(),
            rate_limit: decl.rate_limit.clone(),
            body_limit,
        };
        if let Some(earlier) = rules.iter().find(|earlier| earlier.shadows(&rule)) {
            problems.push(format!(
                "{at} is never used: the earlier rule {} matches every request it would (first match wins; put the narrower rule first)",
                earlier.label
            ));
            continue;
        }
        rules.push(rule);
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

fn valid_entitlement(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 255
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == ',')
}

/// `1048576`, `512KB`, `10MB`, `1GB` (powers of 1000) or `10MiB` (powers of 1024); at least 1.
fn parse_size(size: &SizeDecl) -> Result<u64, String> {
    let text = match size {
        SizeDecl::Bytes(0) => return Err("must be at least 1 byte".into()),
        SizeDecl::Bytes(n) => return Ok(*n),
        SizeDecl::Text(text) => text.trim(),
    };
    crate::bytesize::parse(text)
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("{text:?} must be a number of bytes or like 512KB, 10MB, 1GiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(path: &str) -> RouteDecl {
        RouteDecl {
            path: path.into(),
            methods: Vec::new(),
            auth: AuthMode::Required,
            entitlement: None,
            tenant: None,
            rate_limit: None,
            body_limit: None,
        }
    }

    fn matches(pattern: &str, path: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(path)
    }

    #[test]
    fn patterns_match_exact_paths_single_segments_and_tails() {
        assert!(matches("/health-of-app", "/health-of-app"));
        assert!(!matches("/a", "/a/"));
        assert!(matches("/a/", "/a/"));
        assert!(!matches("/a", "/ab"));
        assert!(matches("/api/*/items", "/api/42/items"));
        assert!(!matches("/api/*/items", "/api//items"));
        assert!(!matches("/api/*/items", "/api/42/items/1"));
        assert!(matches("/api/*", "/api/x"));
        assert!(!matches("/api/*", "/api/x/y"));
        assert!(!matches("/api/*", "/api"));
        for path in ["/api", "/api/", "/api/a/b/c"] {
            assert!(matches("/api/**", path), "{path}");
        }
        assert!(!matches("/api/**", "/apix"));
        assert!(matches("/**", "/"));
        assert!(matches("/**", "/anything/at/all"));
        assert!(matches("/", "/"));
        assert!(!matches("/", "/a"));
        assert!(!matches("/**", ""));
        assert!(!matches("/**", "*"));
    }

    #[test]
    fn the_first_matching_rule_wins_and_methods_narrow_a_rule() {
        let mut pay = decl("/api/pay");
        pay.methods = vec!["post".into()];
        pay.rate_limit = Some("sensitive".into());
        let mut public = decl("/api/public/**");
        public.auth = AuthMode::None;
        let rules = compile(&[pay, public, decl("/api/**")], &["default", "sensitive"]).unwrap();
        assert_eq!(find(&rules, &Method::POST, "/api/pay"), Some(0));
        assert_eq!(&*rules[0].label, "POST /api/pay");
        assert_eq!(find(&rules, &Method::GET, "/api/pay"), Some(2));
        assert_eq!(find(&rules, &Method::GET, "/api/public/x/y"), Some(1));
        assert_eq!(find(&rules, &Method::GET, "/other"), None);
    }

    #[test]
    fn every_bad_rule_is_named() {
        let mut entitled_anonymous = decl("/a");
        entitled_anonymous.auth = AuthMode::None;
        entitled_anonymous.entitlement = Some("premium".into());
        let mut bad_method = decl("/b");
        bad_method.methods = vec!["GE T".into()];
        let mut bad_policy = decl("/c");
        bad_policy.rate_limit = Some("nope".into());
        let mut bad_size = decl("/d");
        bad_size.body_limit = Some(SizeDecl::Text("ten megs".into()));
        let mut tenant_optional = decl("/e");
        tenant_optional.auth = AuthMode::Optional;
        tenant_optional.tenant = Some(TenantMode::Required);
        let decls = [
            decl("api"),
            decl("/a//b"),
            decl("/a/../b"),
            decl("/a/**/b"),
            decl("/a/b*"),
            decl("/x?y=1"),
            entitled_anonymous,
            bad_method,
            bad_policy,
            bad_size,
            tenant_optional,
            decl("/wide/**"),
            decl("/wide/narrow"),
        ];
        let problems = compile(&decls, &["default"]).unwrap_err();
        // Every rule but the 12th (/wide/**, which is fine) is named, in order.
        let named: Vec<usize> = (1..=11).chain([13]).collect();
        assert_eq!(problems.len(), named.len(), "{problems:#?}");
        for (problem, n) in problems.iter().zip(named) {
            assert!(problem.starts_with(&format!("routes[{n}] ")), "{problem}");
        }
        assert!(problems[11].contains("never used"), "{}", problems[11]);
    }

    #[test]
    fn a_narrower_rule_after_a_wider_one_of_other_methods_is_reachable() {
        let mut get = decl("/api/**");
        get.methods = vec!["GET".into()];
        let mut post = decl("/api/x");
        post.methods = vec!["POST".into()];
        assert!(compile(&[get.clone(), post], &[]).is_ok());
        let mut also_get = decl("/api/*");
        also_get.methods = vec!["GET".into()];
        assert!(compile(&[get, also_get], &[]).is_err());
        assert!(compile(&[decl("/a/*"), decl("/a/")], &[]).is_ok());
        assert!(compile(&[decl("/a/*/c"), decl("/a/b/c")], &[]).is_err());
    }

    #[test]
    fn sizes_read_in_bytes_and_units() {
        let size = |t: &str| parse_size(&SizeDecl::Text(t.into()));
        assert_eq!(size("10MB"), Ok(10_000_000));
        assert_eq!(size("1 MiB"), Ok(1 << 20));
        assert_eq!(size("512kb"), Ok(512_000));
        assert_eq!(parse_size(&SizeDecl::Bytes(42)), Ok(42));
        assert!(parse_size(&SizeDecl::Bytes(0)).is_err());
        assert!(size("0MB").is_err());
        assert!(size("lots").is_err());
    }
}
