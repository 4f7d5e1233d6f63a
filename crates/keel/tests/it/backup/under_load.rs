//! A backup taken while webhooks and jobs keep arriving holds everything acknowledged before it started.

use super::*;

keel_testkit::engine_test!(a_backup_under_load_holds_everything_acknowledged_before_it_started);
async fn a_backup_under_load_holds_everything_acknowledged_before_it_started(db: TestDb) {
    let (_config_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let url = app.db.url().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let webhooks = tokio::spawn(deliver_webhooks(app.base_url.clone(), stop.clone()));
    let jobs = tokio::spawn(enqueue_jobs(app.base_url.clone(), stop.clone()));

    // Let the load run a while, then back up in the middle of it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = backup_file(&dir, "keel.backup");
    let started = Instant::now();
    let manifest = backup::backup(&secret(&url), &file, TIMEOUT)
        .await
        .expect("backup");
    let finished = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let webhooks = webhooks.await.expect("webhook task");
    let jobs = jobs.await.expect("job task");

    let before = |acked: &[Acked]| -> BTreeSet<String> {
        acked
            .iter()
            .filter(|a| a.at < started)
            .map(|a| a.id.clone())
            .collect()
    };
    let (webhooks_before, jobs_before) = (before(&webhooks), before(&jobs));
    assert!(
        webhooks_before.len() >= 5,
        "only {} webhooks before the backup",
        webhooks_before.len()
    );
    assert!(
        jobs_before.len() >= 5,
        "only {} jobs before the backup",
        jobs_before.len()
    );
    let during = |acked: &[Acked]| {
        acked
            .iter()
            .filter(|a| a.at >= started && a.at < finished)
            .count()
    };
    eprintln!(
        "acknowledged before / during the backup: webhooks {} / {}, jobs {} / {}; it took {:?}",
        webhooks_before.len(),
        during(&webhooks),
        jobs_before.len(),
        during(&jobs),
        finished - started
    );

    let written: Manifest = serde_json::from_str(
        &std::fs::read_to_string(manifest_path(&file)).expect("the manifest is written"),
    )
    .expect("the manifest is JSON");
    assert_eq!(written, manifest);
    assert_eq!(manifest.migrations, vec![1, 2, 3, 4, 5, 6, 7]);
    assert!(
        manifest.tables["billing_events"] >= webhooks_before.len() as i64,
        "{manifest:#?}"
    );
    assert!(
        manifest.tables["jobs"] >= jobs_before.len() as i64,
        "{manifest:#?}"
    );

    let target = Target::for_source(&app.db).await;
    let report = backup::restore(&secret(target.url()), &file, options(false, false))
        .await
        .expect("restore");
    assert!(report.ok, "{report:#?}");
    assert!(!report.verified && report.scratch.is_none());
    assert!(
        report
            .tables
            .iter()
            .all(|t| t.matches && t.backup.is_some()),
        "{report:#?}"
    );
    assert_eq!(report.migrations_applied, vec![1, 2, 3, 4, 5, 6, 7]);

    let events: BTreeSet<String> = column(
        target.url(),
        "SELECT event_id FROM billing_events WHERE provider = 'revenuecat'",
    )
    .await
    .into_iter()
    .collect();
    let missing: Vec<_> = webhooks_before.difference(&events).collect();
    assert!(
        missing.is_empty(),
        "acknowledged webhooks missing from the restore: {missing:?}"
    );
    let ids: BTreeSet<String> = column(target.url(), "SELECT CAST(id AS TEXT) FROM jobs")
        .await
        .into_iter()
        .collect();
    let missing: Vec<_> = jobs_before.difference(&ids).collect();
    assert!(
        missing.is_empty(),
        "enqueued jobs missing from the restore: {missing:?}"
    );
    assert_counts(target.url(), &manifest).await;
    assert_schema_complete(target.url()).await;
    app.shutdown().await.expect("shutdown");
}
