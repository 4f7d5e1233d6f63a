//! Conformance of [`Cron`]: the fields and specials of classic cron, Vixie cron's rule for the
//! two day fields, the nicknames, and firings in a time zone across daylight-saving changes.

use chrono::{DateTime, Utc};
use keel::schedule::Cron;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The firings in `[from, to)`.
fn firings(c: &Cron, from: &str, to: &str) -> Vec<DateTime<Utc>> {
    let (mut t, end) = (at(from) - chrono::Duration::seconds(1), at(to));
    let mut out = Vec::new();
    while let Some(next) = c.next_after(t).filter(|n| *n < end) {
        out.push(next);
        t = next;
    }
    out
}

fn days(c: &Cron, from: &str, to: &str) -> Vec<u32> {
    use chrono::Datelike;
    firings(c, from, to).iter().map(|t| t.day()).collect()
}

#[test]
fn five_fields_fire_on_the_minute() {
    let c = Cron::parse("*/5 * * * *").unwrap();
    assert_eq!(
        c.next_after(at("2026-01-01T10:02:30Z")),
        Some(at("2026-01-01T10:05:00Z"))
    );
    assert_eq!(
        c.next_after(at("2026-01-01T10:05:00Z")),
        Some(at("2026-01-01T10:10:00Z"))
    );
    assert_eq!(
        c.latest_at_or_before(at("2026-01-01T10:07:00Z")),
        Some(at("2026-01-01T10:05:00Z"))
    );
    assert_eq!(
        c.latest_at_or_before(at("2026-01-01T10:05:00.700Z")),
        Some(at("2026-01-01T10:05:00Z"))
    );
}

#[test]
fn six_fields_have_seconds() {
    let c = Cron::parse("* * * * * *").unwrap();
    assert_eq!(
        c.next_after(at("2026-01-01T10:00:00.500Z")),
        Some(at("2026-01-01T10:00:01Z"))
    );
    let c = Cron::parse("30 0 12 * * *").unwrap();
    assert_eq!(
        c.next_after(at("2026-01-01T12:00:30Z")),
        Some(at("2026-01-02T12:00:30Z"))
    );
}

#[test]
fn ranges_steps_lists_and_names() {
    let c = Cron::parse("0 9-17/4,20 * * *").unwrap();
    let hours: Vec<_> = firings(&c, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
        .iter()
        .map(|t| t.format("%H").to_string())
        .collect();
    assert_eq!(hours, ["09", "13", "17", "20"]);
    let weekly = Cron::parse("0 3 * * 0").unwrap();
    // 2026-01-04 is a Sunday.
    assert_eq!(
        weekly.next_after(at("2026-01-01T00:00:00Z")),
        Some(at("2026-01-04T03:00:00Z"))
    );
    assert_eq!(Cron::parse("0 3 * * SUN").unwrap(), weekly);
    assert_eq!(Cron::parse("0 3 * * 7").unwrap(), weekly);
    assert_eq!(Cron::parse("0 3 * * sun").unwrap(), weekly);
    let leap = Cron::parse("0 0 29 FEB *").unwrap();
    assert_eq!(
        leap.next_after(at("2026-03-01T00:00:00Z")),
        Some(at("2028-02-29T00:00:00Z"))
    );
}

#[test]
fn nicknames() {
    let hourly = Cron::parse("@hourly").unwrap();
    assert_eq!(
        firings(&hourly, "2026-01-01T10:00:00Z", "2026-01-01T12:30:00Z"),
        [
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T11:00:00Z"),
            at("2026-01-01T12:00:00Z")
        ]
    );
    assert_eq!(hourly, Cron::parse("0 * * * *").unwrap());
    assert_eq!(
        Cron::parse("@daily").unwrap(),
        Cron::parse("0 0 * * *").unwrap()
    );
    assert_eq!(
        Cron::parse("@midnight").unwrap(),
        Cron::parse("0 0 * * *").unwrap()
    );
    assert_eq!(
        Cron::parse("@weekly").unwrap(),
        Cron::parse("0 0 * * 0").unwrap()
    );
    assert_eq!(
        Cron::parse("@monthly").unwrap(),
        Cron::parse("0 0 1 * *").unwrap()
    );
    assert_eq!(
        Cron::parse("@yearly").unwrap(),
        Cron::parse("0 0 1 1 *").unwrap()
    );
    assert!(Cron::parse("@fortnightly").is_err());
}

#[test]
fn last_nearest_weekday_and_nth() {
    // The last day of February 2026 and of February 2028 (a leap year).
    let last = Cron::parse("0 0 L * *").unwrap();
    assert_eq!(
        days(&last, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        [28]
    );
    assert_eq!(
        days(&last, "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"),
        [29]
    );
    // 2026-03-15 is a Sunday: the nearest weekday is Monday the 16th.
    let nearest = Cron::parse("0 0 15W * *").unwrap();
    assert_eq!(
        days(&nearest, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        [16]
    );
    // Mondays of March 2026: 2, 9, 16, 23, 30.
    let second_monday = Cron::parse("0 0 * * MON#2").unwrap();
    assert_eq!(
        days(
            &second_monday,
            "2026-03-01T00:00:00Z",
            "2026-04-01T00:00:00Z"
        ),
        [9]
    );
    let last_friday = Cron::parse("0 0 * * 5L").unwrap();
    assert_eq!(
        days(&last_friday, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        [27]
    );
}

#[test]
fn day_fields_combine_as_in_vixie_cron() {
    // Both restricted: either matches. March 2026: the 1st, and Mondays 2, 9, 16, 23, 30.
    let either = Cron::parse("0 0 1 * MON").unwrap();
    assert_eq!(
        days(&either, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        [1, 2, 9, 16, 23, 30]
    );
    // A day-of-month that starts with `*` counts as unrestricted (Vixie's `DOM_STAR`): both must
    // match, so odd days that are Mondays: 9, 23.
    let both = Cron::parse("0 0 */2 * MON").unwrap();
    assert_eq!(
        days(&both, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        [9, 23]
    );
    // The same days spelled without the star are restricted: odd days or Mondays.
    let union = Cron::parse("0 0 1-31/2 * MON").unwrap();
    assert_eq!(
        days(&union, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        [1, 2, 3, 5, 7, 9, 11, 13, 15, 16, 17, 19, 21, 23, 25, 27, 29, 30, 31]
    );
    // One field restricted: that field alone decides.
    let mondays = Cron::parse("0 0 * * MON").unwrap();
    assert_eq!(
        days(&mondays, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        [2, 9, 16, 23, 30]
    );
}

#[test]
fn nine_in_berlin_is_eight_utc_in_winter_and_seven_in_summer() {
    let c = Cron::parse("0 9 * * *")
        .unwrap()
        .in_zone("Europe/Berlin")
        .unwrap();
    assert_eq!(c.zone(), "Europe/Berlin");
    assert_eq!(
        c.next_after(at("2026-01-15T00:00:00Z")),
        Some(at("2026-01-15T08:00:00Z"))
    );
    assert_eq!(
        c.next_after(at("2026-07-15T00:00:00Z")),
        Some(at("2026-07-15T07:00:00Z"))
    );
    // Daylight saving starts on 2026-03-29 and ends on 2026-10-25: once each day.
    assert_eq!(
        firings(&c, "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z"),
        [
            at("2026-03-28T08:00:00Z"),
            at("2026-03-29T07:00:00Z"),
            at("2026-03-30T07:00:00Z")
        ]
    );
    assert_eq!(
        firings(&c, "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z"),
        [
            at("2026-10-24T07:00:00Z"),
            at("2026-10-25T08:00:00Z"),
            at("2026-10-26T08:00:00Z")
        ]
    );
    assert_eq!(
        c.latest_at_or_before(at("2026-03-29T12:00:00Z")),
        Some(at("2026-03-29T07:00:00Z"))
    );
}

#[test]
fn skipped_and_repeated_local_times_fire_once() {
    let c = Cron::parse("30 2 * * *")
        .unwrap()
        .in_zone("Europe/Berlin")
        .unwrap();
    // 02:30 does not exist on 2026-03-29 (02:00 → 03:00): it fires at 03:00 CEST, 01:00 UTC.
    assert_eq!(
        firings(&c, "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z"),
        [at("2026-03-29T01:00:00Z")]
    );
    // 02:30 happens twice on 2026-10-25 (03:00 → 02:00): it fires once.
    assert_eq!(
        firings(&c, "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z").len(),
        1
    );
    // Every-hour schedules keep an hour's spacing in UTC across both changes.
    let hourly = Cron::parse("@hourly")
        .unwrap()
        .in_zone("Europe/Berlin")
        .unwrap();
    let spring = firings(&hourly, "2026-03-28T23:00:00Z", "2026-03-29T03:00:00Z");
    assert_eq!(spring.len(), 4, "{spring:?}");
    let autumn = firings(&hourly, "2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z");
    assert_eq!(autumn.len(), 4, "{autumn:?}");
}

#[test]
fn unknown_zones_and_bad_expressions_say_why() {
    let error = Cron::parse("0 9 * * *")
        .unwrap()
        .in_zone("Europe/Berlyn")
        .unwrap_err();
    assert!(error.reason.contains("unknown time zone"), "{error}");
    for bad in [
        "* * * *",
        "61 * * * *",
        "*/0 * * * *",
        "a * * * *",
        "5-1 * * * *",
        "* * * * * * *",
        "",
    ] {
        assert!(Cron::parse(bad).is_err(), "{bad}");
    }
    assert!(Cron::parse("0 0 31 2 *")
        .unwrap()
        .next_after(at("2026-01-01T00:00:00Z"))
        .is_none());
}
