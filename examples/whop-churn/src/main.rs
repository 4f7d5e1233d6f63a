//! `whop-churn`: Keel with the churn-recovery jobs and routes. Configured like `keel serve`, plus
//! `CHURN_NOTIFY_URL`; the schedule comes from the `keel.toml` `KEEL_CONFIG` names (see
//! `whop_churn::SCHEDULES`).

use std::process::ExitCode;

use keel::clock::Clock;
use keel::config::{Settings, Source};
use whop_churn::{store, Churn};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whop-churn: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let source = Source::from_process()?;
    let settings = Settings::load(&source).map_err(|e| e.to_string())?;
    let notify_url =
        std::env::var("CHURN_NOTIFY_URL").map_err(|_| "CHURN_NOTIFY_URL is not set".to_string())?;
    let db = keel::store::Db::connect_lazy(&settings.database).map_err(|e| e.to_string())?;
    store::ensure_schema(&db).await.map_err(|e| e.to_string())?;
    let churn = Churn::new(notify_url, Clock::system());
    whop_churn::server(settings, churn)
        .run()
        .await
        .map_err(|e| e.to_string())
}
