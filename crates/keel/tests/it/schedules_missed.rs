//! `missed = "skip"` skips a tick that is more than a minute late; `missed = "once"` fires the
//! latest missed tick once when a scheduler comes back.

use crate::jobs_support;

use std::time::Duration;

use chrono::{Timelike, Utc};
use jobs_support::setup_with_toml;
use keel::jobs::JobFilter;
use keel::store::Db;
use keel_testkit::eventually;
use keel_testkit::TestDb;
use tokio::sync::watch;

const TOML: &str = r#"
[[schedules]]
name = "hourly-skip"
cron = "0 * * * *"
kind = "diag.noop"
missed = "skip"

[[schedules]]
name = "hourly-once"
cron = "0 * * * *"
kind = "diag.sleep"
args = { ms = 1 }
missed = "once"
"#;

async fn fired(db: &Db, kind: &str) -> usize {
    db.list_jobs(&JobFilter {
        kind: Some(kind.into()),
        limit: 100,
        ..Default::default()
    })
    .await
    .expect("list jobs")
    .len()
}

keel_testkit::engine_test!(a_late_scheduler_skips_or_catches_up);
async fn a_late_scheduler_skips_or_catches_up(db: TestDb) {
    let env = setup_with_toml(db, Some(TOML)).await;
    // Move the clock to half past the next hour: the latest tick is 30 minutes old.
    let now = Utc::now();
    let to_half_past = (90 - i64::from(now.minute())) * 60 - i64::from(now.second());
    env.clock.advance(Duration::from_secs(to_half_past as u64));
    assert_eq!(env.clock.now().minute(), 30);

    let (stop, stopped) = watch::channel(false);
    let task = keel::schedule::Scheduler::new(
        env.db.clone(),
        env.clock.clone(),
        env.flags.clone(),
        keel::schedule::declared(&env.settings.file.schedules).expect("schedules"),
    )
    .spawn(stopped);
    eventually(
        "the once schedule catches up",
        Duration::from_secs(10),
        || async { (fired(&env.db, "diag.sleep").await == 1).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        fired(&env.db, "diag.sleep").await,
        1,
        "caught up once, not again"
    );
    assert_eq!(
        fired(&env.db, "diag.noop").await,
        0,
        "the skip schedule skipped its late tick"
    );
    let _ = stop.send(true);
    let _ = task.await;
}
