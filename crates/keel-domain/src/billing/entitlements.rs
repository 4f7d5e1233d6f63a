//! The entitlement view: what a user's subscriptions and manual overrides grant at a moment.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::model::{Environment, Provider};

/// One subscription as stored, owned by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub provider: Provider,
    pub environment: Environment,
    pub product_id: String,
    pub entitlements: Vec<String>,
    pub grants: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub grace_until: Option<DateTime<Utc>>,
    pub paid_through: Option<DateTime<Utc>>,
    pub will_renew: bool,
}

/// A manual grant (`revoked: false`) or revocation of one entitlement, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub entitlement: String,
    pub revoked: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub reason: String,
}

/// Everything the view of one user is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    pub subscriptions: Vec<Holding>,
    pub overrides: Vec<Override>,
}

// One entitlement as every entitlement route answers it. (A plain comment: a doc comment here
// would become the schema's description.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Entitlement {
    pub active: bool,
    /// When access ends (the grace period's end while in grace); null: never.
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(inline)]
    pub source: Provider,
    #[schema(required = true)]
    pub product_id: Option<String>,
    pub will_renew: bool,
    /// A payment failed and access continues through the store's grace period.
    pub in_grace_period: bool,
}

/// When access ends; `None` is never.
type End = Option<DateTime<Utc>>;

fn later(a: End, b: End) -> End {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
}

fn candidate(h: &Holding, now: DateTime<Utc>) -> Entitlement {
    // A paid invoice extends a subscription that grants; a lifetime purchase has no end.
    let paid_end = match h.expires_at {
        Some(end) => Some(later(Some(end), h.paid_through).unwrap_or(end)),
        None if h.paid_through.is_some() => h.paid_through,
        None => None,
    };
    let in_grace = h.grants && h.grace_until.is_some_and(|g| g > now);
    let end = if in_grace {
        later(paid_end, h.grace_until)
    } else {
        paid_end
    };
    let active = h.grants && end.is_none_or(|e| e > now);
    Entitlement {
        active,
        expires_at: end,
        source: h.provider,
        product_id: Some(h.product_id.clone()),
        will_renew: active && h.will_renew,
        in_grace_period: active && in_grace,
    }
}

/// Orders candidates: active before inactive, then the later end (never ending is latest).
fn better(a: &Entitlement, b: &Entitlement) -> bool {
    if a.active != b.active {
        return a.active;
    }
    match (a.expires_at, b.expires_at) {
        (None, Some(_)) => a.active,
        (Some(_), None) => !b.active,
        (Some(x), Some(y)) => x > y,
        (None, None) => false,
    }
}

/// The entitlements `holdings` grant at `now`. Sandbox purchases count only when
/// `include_sandbox`. An active revocation hides every source of its entitlement.
pub fn view(
    holdings: &Holdings,
    now: DateTime<Utc>,
    include_sandbox: bool,
) -> BTreeMap<String, Entitlement> {
    let mut out: BTreeMap<String, Entitlement> = BTreeMap::new();
    let mut offer = |name: &str, c: Entitlement| match out.get(name) {
        Some(current) if !better(&c, current) => {}
        _ => {
            out.insert(name.to_string(), c);
        }
    };
    for h in &holdings.subscriptions {
        if h.environment == Environment::Sandbox && !include_sandbox {
            continue;
        }
        let c = candidate(h, now);
        for name in &h.entitlements {
            offer(name, c.clone());
        }
    }
    for o in holdings.overrides.iter().filter(|o| !o.revoked) {
        let active = o.expires_at.is_none_or(|e| e > now);
        offer(
            &o.entitlement,
            Entitlement {
                active,
                expires_at: o.expires_at,
                source: Provider::Manual,
                product_id: None,
                will_renew: false,
                in_grace_period: false,
            },
        );
    }
    for o in holdings.overrides.iter().filter(|o| o.revoked) {
        if o.expires_at.is_none_or(|e| e > now) {
            out.insert(
                o.entitlement.clone(),
                Entitlement {
                    active: false,
                    expires_at: None,
                    source: Provider::Manual,
                    product_id: None,
                    will_renew: false,
                    in_grace_period: false,
                },
            );
        }
    }
    out
}

/// The names of the active entitlements, sorted.
pub fn active_names(view: &BTreeMap<String, Entitlement>) -> Vec<String> {
    view.iter()
        .filter(|(_, e)| e.active)
        .map(|(n, _)| n.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn sub(grants: bool, expires_in: Option<i64>, names: &[&str]) -> Holding {
        Holding {
            provider: Provider::RevenueCat,
            environment: Environment::Production,
            product_id: "p".into(),
            entitlements: names.iter().map(|s| s.to_string()).collect(),
            grants,
            expires_at: expires_in.map(|d| Utc::now() + Duration::days(d)),
            grace_until: None,
            paid_through: None,
            will_renew: true,
        }
    }

    #[test]
    fn active_beats_inactive_and_later_beats_earlier() {
        let now = Utc::now();
        let h = Holdings {
            subscriptions: vec![
                sub(false, Some(30), &["pro"]),
                sub(true, Some(3), &["pro"]),
                sub(true, Some(10), &["pro"]),
            ],
            overrides: vec![],
        };
        let v = view(&h, now, false);
        assert!(v["pro"].active);
        assert!(v["pro"].expires_at.unwrap() > now + Duration::days(9));
    }

    #[test]
    fn expired_grants_are_inactive_but_grace_keeps_access() {
        let now = Utc::now();
        let mut grace = sub(true, Some(-1), &["pro"]);
        grace.grace_until = Some(now + Duration::days(2));
        let v = view(
            &Holdings {
                subscriptions: vec![grace],
                overrides: vec![],
            },
            now,
            false,
        );
        assert!(v["pro"].active && v["pro"].in_grace_period);
        let v = view(
            &Holdings {
                subscriptions: vec![sub(true, Some(-1), &["pro"])],
                overrides: vec![],
            },
            now,
            false,
        );
        assert!(!v["pro"].active && !v["pro"].will_renew);
    }

    #[test]
    fn revocation_hides_and_grant_adds() {
        let now = Utc::now();
        let h = Holdings {
            subscriptions: vec![sub(true, None, &["pro"])],
            overrides: vec![
                Override {
                    entitlement: "pro".into(),
                    revoked: true,
                    expires_at: Some(now + Duration::hours(1)),
                    reason: "abuse".into(),
                },
                Override {
                    entitlement: "beta".into(),
                    revoked: false,
                    expires_at: None,
                    reason: "tester".into(),
                },
            ],
        };
        let v = view(&h, now, false);
        assert!(!v["pro"].active);
        assert!(v["beta"].active);
        assert_eq!(v["beta"].source, Provider::Manual);
        let later = view(&h, now + Duration::hours(2), false);
        assert!(later["pro"].active, "the revocation expired");
    }

    #[test]
    fn sandbox_counts_only_when_allowed() {
        let mut s = sub(true, Some(5), &["pro"]);
        s.environment = Environment::Sandbox;
        let h = Holdings {
            subscriptions: vec![s],
            overrides: vec![],
        };
        assert!(view(&h, Utc::now(), false).is_empty());
        assert!(view(&h, Utc::now(), true)["pro"].active);
    }
}
