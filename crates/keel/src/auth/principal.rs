//! Who is calling: built from a verified token's claims.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value};

use super::Reason;

pub const ROLE_USER: &str = "user";
pub const ROLE_ADMIN: &str = "admin";

/// The caller behind a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: String,
    pub tenant_id: Option<String>,
    pub roles: Vec<String>,
    pub session_id: Option<String>,
    /// Unix seconds after which the token no longer verifies.
    #[serde(skip)]
    pub expires_at: i64,
    /// Verified as a Whop user token: the company a request names is checked against the
    /// member's Whop memberships.
    #[serde(skip)]
    pub whop_member: bool,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ROLE_ADMIN)
    }
}

/// What a token's claims must satisfy.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub authorized_parties: Vec<String>,
    pub leeway_s: i64,
    pub required: Vec<String>,
    /// A claim name, or a dotted path into nested objects (`o.id`).
    pub tenant_claim: String,
    pub admin_user_ids: HashSet<String>,
}

/// Tokens without `exp` are trusted from the cache for at most this long.
const NO_EXP_CACHE_S: i64 = 300;

impl Rules {
    /// Checks time, issuer, audience, authorized party and required claims; `admin` grants the
    /// admin role on top of `ADMIN_USER_IDS` (development tokens).
    pub fn principal(
        &self,
        claims: &Map<String, Value>,
        now: i64,
        admin: bool,
    ) -> Result<Principal, Reason> {
        for name in &self.required {
            if !claims.contains_key(name) {
                return Err(Reason::MissingClaim);
            }
        }
        let time = |name: &str| -> Result<Option<i64>, Reason> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v.as_f64().map(|f| Some(f as i64)).ok_or(Reason::Malformed),
            }
        };
        let exp = time("exp")?;
        if exp.is_some_and(|exp| now > exp.saturating_add(self.leeway_s)) {
            return Err(Reason::Expired);
        }
        if time("nbf")?.is_some_and(|nbf| now.saturating_add(self.leeway_s) < nbf) {
            return Err(Reason::NotYetValid);
        }
        if time("iat")?.is_some_and(|iat| now.saturating_add(self.leeway_s) < iat) {
            return Err(Reason::IssuedInFuture);
        }
        if !self.issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if !iss.is_some_and(|iss| self.issuers.iter().any(|i| i == iss)) {
                return Err(Reason::WrongIssuer);
            }
        }
        if !self.audiences.is_empty() {
            let matches = |a: &str| self.audiences.iter().any(|x| x == a);
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => matches(a),
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(matches),
                _ => false,
            };
            if !ok {
                return Err(Reason::WrongAudience);
            }
        }
        if !self.authorized_parties.is_empty() {
            let azp = claims.get("azp").and_then(Value::as_str);
            if !azp.is_some_and(|azp| self.authorized_parties.iter().any(|p| p == azp)) {
                return Err(Reason::WrongAuthorizedParty);
            }
        }
        let user_id = match claims.get("sub") {
            Some(Value::String(sub)) if is_identifier(sub) => sub.clone(),
            Some(_) => return Err(Reason::Malformed),
            None => return Err(Reason::MissingClaim),
        };
        let tenant_id = lookup(claims, &self.tenant_claim).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            _ => None,
        });
        if tenant_id.as_deref().is_some_and(|t| !is_identifier(t)) {
            return Err(Reason::Malformed);
        }
        let session_id = ["sid", "session_id"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .map(str::to_string);
        let mut roles = vec![ROLE_USER.to_string()];
        if admin || self.admin_user_ids.contains(&user_id) {
            roles.push(ROLE_ADMIN.to_string());
        }
        Ok(Principal {
            user_id,
            tenant_id,
            roles,
            session_id,
            expires_at: exp.map_or(now + NO_EXP_CACHE_S, |exp| {
                exp.saturating_add(self.leeway_s)
            }),
            whop_member: false,
        })
    }
}

/// An id that can travel in a header and a log line: 1 to 255 characters, no control characters.
fn is_identifier(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= 255 && !value.chars().any(char::is_control)
}

fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Rules {
        Rules {
            issuers: vec!["https://issuer".into()],
            audiences: vec!["api".into()],
            leeway_s: 30,
            required: vec!["sub".into(), "exp".into()],
            tenant_claim: "org_id".into(),
            ..Rules::default()
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({"sub": "u1", "iss": "https://issuer", "aud": ["api", "x"], "exp": 1000, "org_id": "t1"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base.as_object().unwrap().clone()
    }

    #[test]
    fn time_checks_allow_the_leeway() {
        let r = rules();
        assert!(r.principal(&claims(json!({})), 1029, false).is_ok());
        assert_eq!(
            r.principal(&claims(json!({})), 1031, false),
            Err(Reason::Expired)
        );
        assert_eq!(
            r.principal(&claims(json!({"nbf": 1100})), 1000, false),
            Err(Reason::NotYetValid)
        );
        assert_eq!(
            r.principal(&claims(json!({"iat": 1100})), 1000, false),
            Err(Reason::IssuedInFuture)
        );
        assert_eq!(
            r.principal(&claims(json!({"exp": "soon"})), 900, false),
            Err(Reason::Malformed)
        );
    }

    #[test]
    fn issuer_audience_and_claims() {
        let r = rules();
        assert_eq!(
            r.principal(&claims(json!({"iss": "https://evil"})), 900, false),
            Err(Reason::WrongIssuer)
        );
        assert_eq!(
            r.principal(&claims(json!({"aud": "other"})), 900, false),
            Err(Reason::WrongAudience)
        );
        let mut no_sub = claims(json!({}));
        no_sub.remove("sub");
        assert_eq!(r.principal(&no_sub, 900, false), Err(Reason::MissingClaim));
        let p = r
            .principal(&claims(json!({"sid": "s1"})), 900, false)
            .unwrap();
        assert_eq!(
            (p.tenant_id.as_deref(), p.session_id.as_deref()),
            (Some("t1"), Some("s1"))
        );
        assert!(!p.is_admin());
        let nested = Rules {
            tenant_claim: "o.id".into(),
            ..rules()
        };
        let p = nested
            .principal(&claims(json!({"o": {"id": "org_9"}})), 900, false)
            .unwrap();
        assert_eq!(p.tenant_id.as_deref(), Some("org_9"));
    }
}
