//! Typed settings, loaded once at start-up from the environment, `.env` and `keel.toml`.
//! Nothing reads the environment after [`Settings::load`].

mod compose;
mod file;
pub(crate) mod problems;
mod read;
mod rules;
mod source;
pub mod vars;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;

pub use file::{FileSettings, HealthThresholds};
pub use problems::{ConfigError, Problem};
pub use source::Source;

// Each subsystem owns its section; these are re-exported so a whole configuration can be named
// from here.
pub use crate::auth::AuthSettings;
pub use crate::billing::{BillingSettings, WebhookProvider};
pub use crate::crypto::DataKey;
pub use crate::gateway::GatewaySettings;
pub use crate::jobs::{JobSettings, QueueSettings};
pub use crate::outbound::AppSettings;
pub use crate::ratelimit::{RateLimitBackend, RateLimitDecl, RateLimitKey, RateLimitSettings};
pub use crate::schedule::{Missed, ScheduleDecl};
pub use crate::storage::StorageSettings;
pub use crate::store::DatabaseSettings;
pub use crate::telemetry::{LogFormat, TelemetrySettings};

use read::Reader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    Development,
    Staging,
    Production,
}

impl AppEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Staging => "staging",
            AppEnv::Production => "production",
        }
    }
}

/// Which parts of Keel a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Api,
    Worker,
    All,
}

impl Role {
    pub const CHOICES: &'static [(&'static str, Role)] = &[
        ("api", Role::Api),
        ("worker", Role::Worker),
        ("all", Role::All),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
            Role::All => "all",
        }
    }

    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    pub fn runs_jobs(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }

    /// The tags every error report of a process in this role carries: `service` (`api` or
    /// `worker`: what the process mainly is) and `role`.
    pub fn report_tags(self) -> [(&'static str, &'static str); 2] {
        let service = match self {
            Role::Worker => "worker",
            Role::Api | Role::All => "api",
        };
        [("service", service), ("role", self.as_str())]
    }
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    pub cors_allowed_origins: Vec<String>,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub metrics_token: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct ShutdownSettings {
    pub grace: Duration,
    pub drain: Duration,
}

/// Everything a Keel process is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub app_env: AppEnv,
    pub role: Role,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub config_file: Option<PathBuf>,
    pub file: FileSettings,
    pub auth: AuthSettings,
    pub billing: BillingSettings,
    pub jobs: JobSettings,
    pub app: AppSettings,
    pub telemetry: TelemetrySettings,
    pub rate_limit: RateLimitSettings,
    pub data_keys: Vec<DataKey>,
    pub storage: StorageSettings,
    pub shutdown: ShutdownSettings,
    /// Gateway mode: `UPSTREAM_*` and the `[[routes]]` rules.
    pub gateway: GatewaySettings,
    /// Directory for files Keel keeps beside the database (development keys, objects).
    pub data_dir: PathBuf,
}

impl Settings {
    /// Reads every setting, then applies the cross-field and production rules. All problems are
    /// returned together.
    pub fn load(src: &Source) -> Result<Settings, ConfigError> {
        let (settings, problems) = Self::load_lenient(src);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Settings with defaults in place of bad values, and the problems found. For commands that
    /// need only part of the configuration (the database for `keel migrate`).
    pub fn load_lenient(src: &Source) -> (Settings, Vec<Problem>) {
        let mut r = Reader::new(src);
        let settings = compose::read_all(&mut r);
        rules::check(&settings, src, &mut r.problems);
        (settings, r.problems.into_vec())
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }
}
