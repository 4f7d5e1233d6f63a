//! Reads each section of the settings from the source and has its subsystem check the values:
//! every problem is collected, and a bad value leaves its default in place.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::file::{self, FileSettings};
use super::problems::Problems;
use super::read::Reader;
use super::source::Source;
use super::{
    AppEnv, AppSettings, AuthSettings, BillingSettings, DataKey, DatabaseSettings, HttpSettings,
    JobSettings, LogFormat, RateLimitBackend, RateLimitSettings, Role, Settings, ShutdownSettings,
    StorageSettings, TelemetrySettings, WebhookProvider,
};
use crate::crypto::standard_webhooks::WebhookSecret;
use crate::store::PoolerMode;

pub(super) fn read_all(r: &mut Reader<'_>) -> Settings {
    let app_env = r.choice(
        "APP_ENV",
        AppEnv::Development,
        &[
            ("development", AppEnv::Development),
            ("staging", AppEnv::Staging),
            ("production", AppEnv::Production),
        ],
    );
    let dev = app_env == AppEnv::Development;
    let role = r.choice("PROCESS_ROLE", Role::All, Role::CHOICES);
    let http = read_http(r, dev);
    let database = read_database(r, dev);
    let mut file_problems = Problems::default();
    let config_file = file::locate(r.src, &mut file_problems);
    let file = config_file
        .as_deref()
        .map(|p| file::load(p, &mut file_problems))
        .unwrap_or_default();
    r.problems.extend(file_problems);
    let telemetry = read_telemetry(r, app_env);
    let rate_limit = read_rate_limit(r, &file, config_file.as_deref());
    let data_keys = read_data_keys(r);
    let data_dir = data_dir_of(r.src, &database.url);
    let auth = read_auth(r, dev);
    let billing = read_billing(r, app_env == AppEnv::Production, &file);
    let mut jobs = read_jobs(r);
    let app = read_app(r);
    let (http_kinds, problems) =
        crate::jobs::http_kind::resolve(&file.jobs.http, &app, jobs.lease, &file.queues);
    let origin = config_file
        .as_deref()
        .map_or_else(|| "keel.toml".into(), |p| p.display().to_string());
    for message in problems {
        r.problems
            .push("KEEL_CONFIG", format!("{origin}: {message}"));
    }
    jobs.http_kinds = http_kinds;
    let gateway = read_gateway(r, &file, &rate_limit, &origin);
    let storage = read_storage(r, &file, config_file.as_deref());
    Settings {
        app_env,
        role,
        http,
        database,
        config_file,
        file,
        auth,
        billing,
        jobs,
        app,
        telemetry,
        rate_limit,
        data_keys,
        storage,
        shutdown: ShutdownSettings {
            grace: r.seconds("SHUTDOWN_GRACE_SECONDS", 25, 0, 3600),
            drain: r.seconds("SHUTDOWN_DRAIN_SECONDS", 0, 0, 600),
        },
        gateway,
        data_dir,
    }
}

fn read_rate_limit(
    r: &mut Reader<'_>,
    file: &FileSettings,
    origin: Option<&Path>,
) -> RateLimitSettings {
    use crate::ratelimit::{ip, policy};
    let backend = r.choice(
        "RATE_LIMIT_BACKEND",
        RateLimitBackend::Memory,
        &[
            ("memory", RateLimitBackend::Memory),
            ("redis", RateLimitBackend::Redis),
        ],
    );
    let named: Vec<&str> = file
        .routes
        .iter()
        .filter_map(|rule| rule.rate_limit.as_deref())
        .collect();
    let policies = policy::resolve_with(&file.rate_limits, &named).unwrap_or_else(|problems| {
        let origin = origin.map_or_else(|| "keel.toml".into(), |p| p.display().to_string());
        for message in problems {
            r.problems
                .push("KEEL_CONFIG", format!("{origin}: {message}"));
        }
        policy::builtin()
    });
    let trusted_proxies = ip::parse_list(&r.list("TRUSTED_PROXIES")).unwrap_or_else(|errors| {
        for message in errors {
            r.problems.push("TRUSTED_PROXIES", message);
        }
        Vec::new()
    });
    let settings = RateLimitSettings {
        backend,
        fail_closed: r.bool("RATE_LIMIT_FAIL_CLOSED", false),
        trusted_proxies,
        policies,
        redis_url: r.secret("REDIS_URL"),
        redis_ca_file: r.string("REDIS_CA_FILE").map(Into::into),
    };
    use crate::redis_target::RedisTarget;
    let target = r.src.get("REDIS_URL").map(RedisTarget::parse);
    match (target, &settings.redis_ca_file) {
        (Some(Err(message)), _) => r.problems.push("REDIS_URL", message),
        (Some(Ok(target)), Some(path)) => {
            if let Err(message) = target.with_ca_file(path) {
                r.problems.push("REDIS_CA_FILE", message);
            }
        }
        (None, Some(_)) => r
            .problems
            .push("REDIS_CA_FILE", "is only used with REDIS_URL"),
        _ => {}
    }
    settings
}

fn read_gateway(
    r: &mut Reader<'_>,
    file: &FileSettings,
    rate_limit: &RateLimitSettings,
    origin: &str,
) -> crate::gateway::GatewaySettings {
    use crate::gateway::{rules, GatewaySettings, RawGateway};
    let raw = RawGateway {
        url: r.string("UPSTREAM_URL"),
        connect_timeout: r.seconds("UPSTREAM_CONNECT_TIMEOUT_SECONDS", 5, 1, 300),
        timeout: r.seconds("UPSTREAM_TIMEOUT_SECONDS", 60, 1, 3600),
        signing_secret: r.secret("UPSTREAM_SIGNING_SECRET"),
        health_path: r.string("UPSTREAM_HEALTH_PATH"),
        timeouts_set: [
            r.src.get("UPSTREAM_CONNECT_TIMEOUT_SECONDS").is_some(),
            r.src.get("UPSTREAM_TIMEOUT_SECONDS").is_some(),
        ],
    };
    let configured = raw.url.is_some();
    let (mut settings, problems) = GatewaySettings::parse(raw);
    for (variable, message) in problems {
        r.problems.push(variable, message);
    }
    if !file.routes.is_empty() && !configured {
        r.problems.push(
            "KEEL_CONFIG",
            format!("{origin}: [[routes]] are the gateway's rules and need UPSTREAM_URL"),
        );
    }
    let policies: Vec<&str> = rate_limit
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    match rules::compile(&file.routes, &policies) {
        Ok(rules) => settings.rules = rules,
        Err(problems) => {
            for message in problems {
                r.problems
                    .push("KEEL_CONFIG", format!("{origin}: {message}"));
            }
        }
    }
    settings
}

fn read_data_keys(r: &mut Reader<'_>) -> Vec<DataKey> {
    const NAME: &str = "DATA_ENCRYPTION_KEYS";
    let Some(raw) = r.src.get(NAME) else {
        return Vec::new();
    };
    let (keys, problems) = crate::crypto::keys::parse(raw);
    for message in problems {
        r.problems.push(NAME, message);
    }
    keys
}

fn read_http(r: &mut Reader<'_>, dev: bool) -> HttpSettings {
    let default_host: IpAddr = if dev {
        [127, 0, 0, 1].into()
    } else {
        [0, 0, 0, 0].into()
    };
    let host = match r.src.get("HOST") {
        None => default_host,
        Some("localhost") => [127, 0, 0, 1].into(),
        Some(raw) => raw.parse().unwrap_or_else(|_| {
            r.problems.push("HOST", "must be an IP address");
            default_host
        }),
    };
    HttpSettings {
        host,
        port: r.number("PORT", 8080u16, 0, u16::MAX),
        cors_allowed_origins: r.list("CORS_ALLOWED_ORIGINS"),
        body_limit_bytes: r.number("BODY_LIMIT_BYTES", 1_048_576usize, 1024, 1 << 30),
        request_timeout: r.seconds("REQUEST_TIMEOUT_SECONDS", 30, 1, 3600),
        metrics_token: r.secret("METRICS_TOKEN"),
    }
}

fn read_database(r: &mut Reader<'_>, dev: bool) -> DatabaseSettings {
    let url = match r.src.get("DATABASE_URL") {
        Some(url) => {
            if let Err(message) = crate::store::check_url(url) {
                r.problems.push("DATABASE_URL", message);
            }
            url.to_string()
        }
        None => {
            if !dev {
                r.problems.push(
                    "DATABASE_URL",
                    "is required outside development (the SQLite default is for development only)",
                );
            }
            "sqlite://keel.db".to_string()
        }
    };
    let pooler = read_pooler(r, &url);
    DatabaseSettings {
        url: SecretString::from(url),
        pool_size: r.number("DATABASE_POOL_SIZE", 10u32, 1, 1000),
        statement_timeout: Duration::from_millis(r.number(
            "DATABASE_STATEMENT_TIMEOUT_MS",
            30_000u64,
            100,
            3_600_000,
        )),
        migrate_on_start: r.bool("MIGRATE_ON_START", true),
        migration_timeout: r.seconds("MIGRATION_TIMEOUT_SECONDS", 300, 1, 86_400),
        pooler,
        direct_url: read_direct_url(r),
    }
}

fn read_service_tokens(r: &mut Reader<'_>) -> crate::auth::ServiceTokens {
    let Some(raw) = r.secret("SERVICE_TOKENS") else {
        return Default::default();
    };
    let (tokens, problems) = crate::auth::ServiceTokens::parse(raw.expose_secret());
    for message in problems {
        r.problems.push("SERVICE_TOKENS", message);
    }
    tokens
}

fn read_pooler(r: &mut Reader<'_>, url: &str) -> PoolerMode {
    let pooler = r.choice(
        "DATABASE_POOLER",
        PoolerMode::Direct,
        &[
            ("none", PoolerMode::Direct),
            ("transaction", PoolerMode::Transaction),
        ],
    );
    if pooler == PoolerMode::Transaction && url.starts_with("sqlite:") {
        r.problems.push(
            "DATABASE_POOLER",
            "applies to Postgres only; DATABASE_URL names SQLite",
        );
    }
    pooler
}

fn read_direct_url(r: &mut Reader<'_>) -> Option<SecretString> {
    let url = r.src.get("DATABASE_DIRECT_URL")?;
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        r.problems.push(
            "DATABASE_DIRECT_URL",
            "must be a postgres:// URL (it serves migrations behind a pooler)",
        );
    } else if let Err(message) = crate::store::check_url(url) {
        r.problems.push("DATABASE_DIRECT_URL", message);
    }
    Some(SecretString::from(url.to_string()))
}

fn read_auth(r: &mut Reader<'_>, development: bool) -> AuthSettings {
    let jwks_url = r.string("AUTH_JWKS_URL");
    let hs256_secret = r.secret("AUTH_HS256_SECRET");
    // In development with no verifier configured, development tokens are accepted unless
    // AUTH_DEV_MODE turns them off.
    let dev_mode = r.bool(
        "AUTH_DEV_MODE",
        development && jwks_url.is_none() && hs256_secret.is_none(),
    );
    let required_claims = match r.list("AUTH_REQUIRED_CLAIMS") {
        list if list.is_empty() => vec!["sub".into(), "exp".into()],
        list => list,
    };
    AuthSettings {
        token_header: r
            .string("AUTH_TOKEN_HEADER")
            .map(|h| h.to_ascii_lowercase())
            .unwrap_or_else(|| "authorization".into()),
        whop_app_id: r.string("WHOP_APP_ID"),
        whop_jwks_url: r
            .string("WHOP_JWKS_URL")
            .unwrap_or_else(|| crate::auth::WHOP_JWKS_URL.into()),
        jwks_url,
        hs256_secret,
        issuers: r.list("AUTH_ISSUER"),
        audiences: r.list("AUTH_AUDIENCE"),
        authorized_parties: r.list("AUTH_AUTHORIZED_PARTIES"),
        leeway: r.seconds("AUTH_LEEWAY_SECONDS", 30, 0, 600),
        tenant_claim: r
            .string("AUTH_TENANT_CLAIM")
            .unwrap_or_else(|| "org_id".into()),
        required_claims,
        dev_mode,
        admin_user_ids: r.list("ADMIN_USER_IDS"),
        admin_token: r.secret("ADMIN_TOKEN"),
        service_tokens: read_service_tokens(r),
        admin_readonly_user_ids: r.list("ADMIN_READONLY_USER_IDS"),
    }
}

fn read_billing(r: &mut Reader<'_>, production: bool, file: &FileSettings) -> BillingSettings {
    let revenuecat_webhook_secret = r.secret("REVENUECAT_WEBHOOK_SECRET");
    let stripe_webhook_secrets: Vec<SecretString> = r
        .list("STRIPE_WEBHOOK_SECRET")
        .into_iter()
        .map(SecretString::from)
        .collect();
    let whop_webhook_secrets: Vec<SecretString> = r
        .list("WHOP_WEBHOOK_SECRET")
        .into_iter()
        .map(SecretString::from)
        .collect();
    if whop_webhook_secrets
        .iter()
        .any(|s| WebhookSecret::parse(s.expose_secret()).is_err())
    {
        r.problems.push(
            "WHOP_WEBHOOK_SECRET",
            "a secret starts with whsec_ but the rest is not valid base64".to_string(),
        );
    }
    let providers = match r.src.get("BILLING_PROVIDERS") {
        Some(_) => {
            let mut providers = Vec::new();
            for name in r.list("BILLING_PROVIDERS") {
                match WebhookProvider::parse(&name) {
                    Ok(provider) => providers.push(provider),
                    Err(message) => r.problems.push("BILLING_PROVIDERS", message),
                }
            }
            providers
        }
        None => {
            let mut providers = Vec::new();
            if revenuecat_webhook_secret.is_some() {
                providers.push(WebhookProvider::RevenueCat);
            }
            if !stripe_webhook_secrets.is_empty() {
                providers.push(WebhookProvider::Stripe);
            }
            if !whop_webhook_secrets.is_empty() {
                providers.push(WebhookProvider::Whop);
            }
            providers
        }
    };
    BillingSettings {
        providers,
        revenuecat_webhook_secret,
        revenuecat_api_key: r.secret("REVENUECAT_API_KEY"),
        revenuecat_api_url: r
            .string("REVENUECAT_API_URL")
            .unwrap_or_else(|| "https://api.revenuecat.com".into()),
        stripe_webhook_secrets,
        stripe_past_due_grace: Duration::from_secs(
            86_400 * r.number("STRIPE_PAST_DUE_GRACE_DAYS", 3u64, 0, 365),
        ),
        whop_webhook_secrets,
        accept_sandbox: r.bool("BILLING_ACCEPT_SANDBOX", !production),
        products: file.products.clone(),
    }
}

fn read_jobs(r: &mut Reader<'_>) -> JobSettings {
    JobSettings {
        scheduler_enabled: r.bool("SCHEDULER_ENABLED", true),
        worker_enabled: r.bool("WORKER_ENABLED", true),
        enqueue_enabled: r.bool("ENQUEUE_ENABLED", true),
        concurrency: r.number("WORKER_CONCURRENCY", 16u32, 1, 10_000),
        lease: r.seconds("JOB_LEASE_SECONDS", 60, 5, 86_400),
        retention: Duration::from_secs(3600 * r.number("JOB_RETENTION_HOURS", 24u64, 0, 24 * 3650)),
        raw_event_retention: Duration::from_secs(
            86_400 * r.number("RETENTION_RAW_EVENT_DAYS", 30u64, 0, 3650),
        ),
        audit_retention: Duration::from_secs(
            86_400 * r.number("RETENTION_AUDIT_DAYS", 365u64, 0, 3650),
        ),
        poll_only: r.bool("JOBS_POLL_ONLY", false),
        scheduler_secret_key: r.secret("SCHEDULER_SECRET_KEY"),
        http_kinds: Default::default(),
    }
}

fn read_app(r: &mut Reader<'_>) -> AppSettings {
    let secrets = r.secret("APP_WEBHOOK_SECRET");
    let (app, problems) = AppSettings::parse(
        r.string("APP_URL"),
        r.string("APP_EVENTS_URL"),
        secrets.as_ref().map(|s| s.expose_secret()),
    );
    for (variable, message) in problems {
        r.problems.push(variable, message);
    }
    app
}

fn read_telemetry(r: &mut Reader<'_>, app_env: AppEnv) -> TelemetrySettings {
    let default_format = if app_env == AppEnv::Development {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    };
    TelemetrySettings {
        log_format: r.choice(
            "LOG_FORMAT",
            default_format,
            &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
        ),
        log_level: {
            // LOG_LEVEL wins; RUST_LOG, the Rust ecosystem's usual name, is read when it is unset.
            let (name, level) = match r.string("LOG_LEVEL") {
                Some(level) => ("LOG_LEVEL", Some(level)),
                None => ("RUST_LOG", r.string("RUST_LOG")),
            };
            match level {
                Some(level) if tracing_subscriber::EnvFilter::try_new(&level).is_err() => {
                    r.problems.push(
                        name,
                        "must be a level (error, warn, info, debug, trace) or a tracing filter",
                    );
                    "info".into()
                }
                Some(level) => level,
                None => "info".into(),
            }
        },
        sentry_dsn: r.secret("SENTRY_DSN"),
        sentry_environment: r
            .string("SENTRY_ENVIRONMENT")
            .unwrap_or_else(|| app_env.as_str().into()),
        sentry_release: r
            .string("SENTRY_RELEASE")
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
    }
}

/// Beside the SQLite file, or `./data` for Postgres.
fn data_dir_of(src: &Source, url: &SecretString) -> PathBuf {
    let url = url.expose_secret();
    let sqlite_path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.is_empty() && !p.starts_with(":memory:"));
    match sqlite_path.map(|p| src.dir().join(p)) {
        Some(path) => path
            .parent()
            .map(|dir| dir.join("data"))
            .unwrap_or_else(|| src.dir().join("data")),
        None => src.dir().join("data"),
    }
}

fn read_storage(r: &mut Reader<'_>, file: &FileSettings, origin: Option<&Path>) -> StorageSettings {
    use crate::storage::{S3Settings, StorageRules, StorageTarget};
    let defaults = StorageSettings::default();
    let url = r
        .string("STORAGE_URL")
        .unwrap_or_else(|| defaults.url.clone());
    let target = StorageTarget::parse(&url, r.src.dir()).unwrap_or_else(|message| {
        r.problems.push("STORAGE_URL", message);
        defaults.target.clone()
    });
    let rules = StorageRules::resolve(&file.storage).unwrap_or_else(|problems| {
        let origin = origin.map_or_else(|| "keel.toml".into(), |p| p.display().to_string());
        for message in problems {
            r.problems
                .push("KEEL_CONFIG", format!("{origin}: {message}"));
        }
        StorageRules::default()
    });
    StorageSettings {
        url,
        target,
        public_base_url: r
            .string("STORAGE_PUBLIC_BASE_URL")
            .map(|u| u.trim_end_matches('/').to_string()),
        links_base_url: r
            .string("PUBLIC_URL")
            .map(|u| u.trim_end_matches('/').to_string()),
        s3: S3Settings {
            region: r.string("AWS_REGION"),
            endpoint: r.string("AWS_ENDPOINT_URL"),
            access_key_id: r.string("AWS_ACCESS_KEY_ID"),
            secret_access_key: r.secret("AWS_SECRET_ACCESS_KEY"),
            session_token: r.secret("AWS_SESSION_TOKEN"),
            path_style: r.bool("STORAGE_S3_PATH_STYLE", true),
        },
        required: r.bool("STORAGE_REQUIRED", false),
        rules,
        cloudfront: read_cloudfront(r),
    }
}

fn read_cloudfront(r: &mut Reader<'_>) -> Option<crate::storage::cloudfront::CloudFrontSigner> {
    const ID: &str = "STORAGE_CLOUDFRONT_KEY_ID";
    const FILE: &str = "STORAGE_CLOUDFRONT_PRIVATE_KEY_FILE";
    match (r.string(ID), r.string(FILE)) {
        (None, None) => None,
        (Some(id), Some(file)) => {
            let path = r.src.dir().join(file);
            match crate::storage::cloudfront::CloudFrontSigner::load(&id, &path) {
                Ok(signer) => Some(signer),
                Err(message) => {
                    r.problems.push(FILE, message);
                    None
                }
            }
        }
        (Some(_), None) | (None, Some(_)) => {
            r.problems
                .push(ID, format!("{ID} and {FILE} are set together"));
            None
        }
    }
}
