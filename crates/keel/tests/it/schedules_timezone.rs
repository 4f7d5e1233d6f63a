//! A schedule declared in a time zone fires at that zone's wall-clock time: `0 9 * * *` in
//! Europe/Berlin fires once on the next daylight-saving change day, at 09:00 Berlin time, which
//! is 07:00 UTC on the spring change day and 08:00 UTC on the autumn one.

use crate::jobs_support;

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use jobs_support::setup_with_toml;
use keel::jobs::JobFilter;
use keel_testkit::{eventually, TestDb};
use tokio::sync::watch;

const TOML: &str = r#"
[[schedules]]
name = "berlin-morning"
cron = "0 9 * * *"
timezone = "Europe/Berlin"
kind = "diag.noop"

# Fires every second (UTC): its ticks show how far the scheduler's passes have got.
[[schedules]]
name = "heartbeat"
cron = "* * * * * *"
kind = "diag.sleep"
args = { ms = 1 }
"#;

/// The first day after `from` on which Berlin's UTC offset changes.
fn next_change_day(from: DateTime<Utc>) -> NaiveDate {
    let offset_at = |day: NaiveDate, hour: u32| {
        let utc = Utc.from_utc_datetime(&day.and_hms_opt(hour, 0, 0).unwrap());
        utc.with_timezone(&Berlin).offset().fix().local_minus_utc()
    };
    let mut day = from.date_naive() + Days::new(1);
    while offset_at(day, 0) == offset_at(day, 12) {
        day = day + Days::new(1);
    }
    day
}

/// The fire times (RFC 3339, UTC) of `schedule`'s jobs of `kind`, oldest first.
async fn fire_times(env: &jobs_support::Env, schedule: &str, kind: &str) -> Vec<String> {
    let jobs = env
        .db
        .list_jobs(&JobFilter {
            kind: Some(kind.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("list jobs");
    let prefix = format!("schedule:{schedule}:");
    let mut keys: Vec<String> = jobs
        .into_iter()
        .filter_map(|j| j.unique_key?.strip_prefix(&prefix).map(String::from))
        .collect();
    keys.sort();
    keys
}

keel_testkit::engine_test!(nine_in_berlin_fires_once_on_a_daylight_saving_change_day);
async fn nine_in_berlin_fires_once_on_a_daylight_saving_change_day(db: TestDb) {
    let env = setup_with_toml(db, Some(TOML)).await;
    let day = next_change_day(env.clock.now());
    let spring = day.format("%m").to_string() == "03";
    let nine = Berlin
        .from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
        .single()
        .expect("09:00 exists on a change day")
        .with_timezone(&Utc);
    let expected_hour = if spring { "07:00:00Z" } else { "08:00:00Z" };
    assert!(nine.to_rfc3339().contains(&expected_hour[..5]), "{nine}");

    // 09:00 Berlin time, and the other hour it could wrongly be taken for in UTC, in order.
    let other = if spring {
        nine + chrono::Duration::hours(1)
    } else {
        nine - chrono::Duration::hours(1)
    };
    let mut moments = [(nine, true), (other, false)];
    moments.sort();

    // Just before the first: the previous day's tick is long past (skipped).
    let to = |at: DateTime<Utc>| (at - env.clock.now()).to_std().expect("ahead");
    env.clock
        .advance(to(moments[0].0 - chrono::Duration::seconds(2)));
    let (stop, stopped) = watch::channel(false);
    let task = keel::schedule::Scheduler::new(
        env.db.clone(),
        env.clock.clone(),
        env.flags.clone(),
        keel::schedule::declared(&env.settings.file.schedules).expect("schedules"),
    )
    .spawn(stopped);

    let expected = format!("{}T{expected_hour}", day.format("%Y-%m-%d"));
    let mut fired = Vec::new();
    for (moment, fires) in moments {
        env.clock.advance(to(moment + chrono::Duration::seconds(1)));
        // A pass that fired the heartbeat at or after `moment` has also looked at the Berlin
        // schedule (declared first), while its tick at `moment`, if any, was on time.
        let mark = moment.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        eventually(
            "a scheduler pass after the moment",
            Duration::from_secs(10),
            || async {
                fire_times(&env, "heartbeat", "diag.sleep")
                    .await
                    .last()
                    .is_some_and(|t| *t >= mark)
            },
        )
        .await;
        if fires {
            fired.push(expected.clone());
        }
        assert_eq!(
            fire_times(&env, "berlin-morning", "diag.noop").await,
            fired,
            "after {moment}"
        );
    }
    assert_eq!(fired.len(), 1);

    stop.send(true).unwrap();
    task.await.unwrap();
}
