//! Whop's wire formats read by `keel::billing::whop`: legacy signatures under rotated secrets, v1
//! and legacy membership bodies, and the fields a refused body lacks.

use std::collections::BTreeMap;

use serde_json::json;

use keel::billing::model::Effect;
use keel::billing::whop::{parse, sign_legacy, verify_legacy};
use keel::crypto::standard_webhooks::{VerifyError, WebhookSecret};

fn key(raw: &str) -> WebhookSecret {
    WebhookSecret::parse(raw).unwrap()
}

fn products() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([
        ("prod_pro".to_string(), vec!["pro".to_string()]),
        (
            "plan_yearly".to_string(),
            vec!["pro".to_string(), "vip".to_string()],
        ),
    ])
}

#[test]
fn legacy_signatures_verify_under_any_secret_within_the_tolerance() {
    let body = br#"{"action":"membership.went_valid","data":{}}"#;
    let (old, new) = (
        key("ws_old_secret_0123456789abcdef"),
        key("ws_new_secret_0123456789abcdef"),
    );
    let t = 1_700_000_000;
    let header = format!("t={t},v1={}", sign_legacy(&new, t, body));
    let both = [old.clone(), new.clone()];
    assert_eq!(verify_legacy(Some(&header), body, &both, t + 299), Ok(()));
    assert_eq!(
        verify_legacy(Some(&header), body, &both, t + 301),
        Err(VerifyError::Stale)
    );
    assert_eq!(
        verify_legacy(Some(&header), body, &[old], t),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify_legacy(Some(&header), b"{}", &both, t),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify_legacy(Some("v1=00"), body, &both, t),
        Err(VerifyError::BadTimestamp)
    );
    assert!(verify_legacy(None, body, &both, t).is_err());
}

#[test]
fn a_raw_secret_and_its_whsec_form_are_the_same_key() {
    use base64::Engine;
    let raw = "ws_dashboard_secret_0123456789abcdef";
    let encoded = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    assert_eq!(
        sign_legacy(&key(raw), 1, b"x"),
        sign_legacy(&key(&encoded), 1, b"x")
    );
}

#[test]
fn a_v1_membership_is_the_members_subscription_in_its_company() {
    let body = json!({
        "id": "msg_1", "api_version": "v1", "type": "membership.activated",
        "timestamp": "2026-01-02T03:04:05.000Z", "company_id": "biz_1",
        "data": {
            "id": "mem_1", "status": "active", "cancel_at_period_end": false,
            "renewal_period_end": "2026-02-02T03:04:05.000Z",
            "user": {"id": "user_1"}, "product": {"id": "prod_pro"},
            "plan": {"id": "plan_yearly"}, "company": {"id": "biz_1"}
        }
    });
    let event = parse(body.to_string().as_bytes(), &products()).unwrap();
    assert_eq!(event.user_id.as_deref(), Some("user_1"));
    let [Effect::Subscription(state)] = event.effects.as_slice() else {
        panic!("{:?}", event.effects)
    };
    assert_eq!(state.tenant.as_deref(), Some("biz_1"));
    assert_eq!(state.entitlements, ["pro", "vip"]);
    assert!(state.grants && state.will_renew);
    assert_eq!(state.expires_at.map(|t| t.timestamp()), Some(1_770_001_445));
}

#[test]
fn a_legacy_membership_without_an_id_is_named_by_its_body() {
    let body = json!({
        "api_version": "v5", "action": "membership.went_invalid",
        "data": {
            "id": "mem_1", "status": "expired", "valid": false, "user_id": "user_1",
            "product_id": "prod_pro", "plan_id": "plan_x", "company_id": "biz_1",
            "created_at": 1_700_000_000, "renewal_period_end": 1_700_086_400
        }
    })
    .to_string();
    let first = parse(body.as_bytes(), &products()).unwrap();
    let again = parse(body.as_bytes(), &products()).unwrap();
    assert_eq!(first.id, again.id);
    assert!(first.id.starts_with("v5_"));
    let [Effect::Subscription(state)] = first.effects.as_slice() else {
        panic!("{:?}", first.effects)
    };
    assert!(!state.grants);
    assert_eq!(state.tenant.as_deref(), Some("biz_1"));
    assert_eq!(state.entitlements, ["pro"]);
}

#[test]
fn bodies_without_what_an_event_needs_are_refused_by_field() {
    let problems = parse(br#"{"api_version":"v1","data":{}}"#, &products()).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
    assert_eq!(fields, ["type", "id", "timestamp"]);
    let no_user = json!({
        "id": "msg_2", "type": "membership.activated", "timestamp": "2026-01-02T03:04:05Z",
        "data": {"id": "mem_2"}
    });
    assert!(parse(no_user.to_string().as_bytes(), &products()).is_err());
    assert!(parse(b"not json", &products()).is_err());
}
