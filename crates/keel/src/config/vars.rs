//! Every environment variable Keel reads, with its default and meaning.
//!
//! The loader refuses (in debug builds) to read a name that is not listed here, and a test checks
//! that each listed name is documented in docs/CONFIGURATION.md and `.env.example`.

/// One environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn var(name: &'static str, default: &'static str, meaning: &'static str) -> Var {
    Var {
        name,
        default,
        meaning,
    }
}

pub const VARIABLES: &[Var] = &[
    var(
        "APP_ENV",
        "development",
        "development, staging or production",
    ),
    var(
        "HOST",
        "127.0.0.1 in development, else 0.0.0.0",
        "listen address",
    ),
    var("PORT", "8080", "listen port"),
    var("PROCESS_ROLE", "all", "api, worker or all"),
    var(
        "DATABASE_URL",
        "sqlite://keel.db (development only)",
        "sqlite://PATH or postgres://...",
    ),
    var("DATABASE_POOL_SIZE", "10", "connections per process"),
    var(
        "DATABASE_POOLER",
        "none",
        "none, or transaction behind a transaction-mode pooler (PgBouncer, Supavisor, Neon pooled)",
    ),
    var(
        "DATABASE_DIRECT_URL",
        "unset",
        "Postgres URL without the pooler; migrations, backup and restore use it when set",
    ),
    var(
        "DATABASE_STATEMENT_TIMEOUT_MS",
        "30000",
        "Postgres statement timeout",
    ),
    var(
        "MIGRATE_ON_START",
        "true",
        "serve applies pending migrations before it turns ready",
    ),
    var(
        "MIGRATION_TIMEOUT_SECONDS",
        "300",
        "longest a migration run (lock wait included) may take",
    ),
    var(
        "REDIS_URL",
        "unset",
        "redis:// or rediss:// (TLS); required when RATE_LIMIT_BACKEND=redis; checked by /health when set, by readiness when the limiter fails closed",
    ),
    var(
        "REDIS_CA_FILE",
        "unset",
        "PEM file of the CA a rediss:// server's certificate must be signed by, in place of the public authorities",
    ),
    var(
        "KEEL_CONFIG",
        "keel.toml if present",
        "structured settings file",
    ),
    var(
        "AUTH_JWKS_URL",
        "unset",
        "JWKS endpoint for RS256/ES256/EdDSA tokens",
    ),
    var(
        "AUTH_HS256_SECRET",
        "unset",
        "shared secret for HS256 tokens",
    ),
    var(
        "AUTH_ISSUER",
        "unset",
        "accepted iss values (comma-separated)",
    ),
    var(
        "AUTH_AUDIENCE",
        "unset",
        "accepted aud values (comma-separated)",
    ),
    var(
        "AUTH_AUTHORIZED_PARTIES",
        "unset",
        "accepted azp values (comma-separated)",
    ),
    var(
        "AUTH_LEEWAY_SECONDS",
        "30",
        "clock skew allowed on exp/nbf/iat",
    ),
    var("AUTH_TENANT_CLAIM", "org_id", "claim that names the tenant"),
    var(
        "AUTH_TOKEN_HEADER",
        "authorization",
        "where a token is read from: authorization (Bearer), or a header holding the token alone (x-whop-user-token)",
    ),
    var(
        "WHOP_APP_ID",
        "unset",
        "the Whop app (app_...) whose user tokens are accepted: their aud",
    ),
    var(
        "WHOP_JWKS_URL",
        "https://api.whop.com/.well-known/jwks.json",
        "where the keys of Whop user tokens are fetched from",
    ),
    var(
        "AUTH_REQUIRED_CLAIMS",
        "sub,exp",
        "claims a token must carry",
    ),
    var(
        "AUTH_DEV_MODE",
        "true in development when neither AUTH_JWKS_URL nor AUTH_HS256_SECRET is set, else false",
        "development only: keel dev token tokens are accepted",
    ),
    var(
        "ADMIN_USER_IDS",
        "unset",
        "user ids with the admin role (comma-separated)",
    ),
    var("ADMIN_TOKEN", "unset", "bearer token for the admin API"),
    var(
        "SERVICE_TOKENS",
        "unset",
        "service credentials for the jobs API, name:secret,... (each secret >= 32 characters in production)",
    ),
    var(
        "ADMIN_READONLY_USER_IDS",
        "unset",
        "user ids who may sign in to the console read-only (comma-separated)",
    ),
    var(
        "BILLING_PROVIDERS",
        "providers whose secret is set",
        "revenuecat, stripe, whop (comma-separated)",
    ),
    var(
        "REVENUECAT_WEBHOOK_SECRET",
        "unset",
        "expected Authorization value of RevenueCat webhooks",
    ),
    var(
        "REVENUECAT_API_KEY",
        "unset",
        "RevenueCat REST key for entitlement sync",
    ),
    var(
        "REVENUECAT_API_URL",
        "https://api.revenuecat.com",
        "RevenueCat REST base URL",
    ),
    var(
        "STRIPE_WEBHOOK_SECRET",
        "unset",
        "Stripe endpoint secrets (comma-separated during rotation)",
    ),
    var(
        "STRIPE_PAST_DUE_GRACE_DAYS",
        "3",
        "days a past_due Stripe subscription keeps access after its period ends",
    ),
    var(
        "WHOP_WEBHOOK_SECRET",
        "unset",
        "Whop webhook secrets as the dashboard shows them, or whsec_... (comma-separated during rotation)",
    ),
    var(
        "BILLING_ACCEPT_SANDBOX",
        "true outside production, false in production",
        "whether sandbox and test-mode purchases grant entitlements",
    ),
    var(
        "SCHEDULER_SECRET_KEY",
        "unset",
        "bearer secret for external cron triggers",
    ),
    var(
        "SCHEDULER_ENABLED",
        "true",
        "default of the scheduler kill switch",
    ),
    var(
        "WORKER_ENABLED",
        "true",
        "default of the workers kill switch",
    ),
    var(
        "ENQUEUE_ENABLED",
        "true",
        "default of the enqueue kill switch",
    ),
    var(
        "WORKER_CONCURRENCY",
        "16",
        "jobs run at once per worker process",
    ),
    var(
        "JOB_LEASE_SECONDS",
        "60",
        "lease on a running job; expired leases return to available",
    ),
    var(
        "JOB_RETENTION_HOURS",
        "24",
        "how long completed jobs are kept",
    ),
    var(
        "RETENTION_RAW_EVENT_DAYS",
        "30",
        "days sealed raw webhook payloads are kept (the event projection stays)",
    ),
    var(
        "RETENTION_AUDIT_DAYS",
        "365",
        "days audit rows keep their detail (who, what and when stay)",
    ),
    var(
        "JOBS_POLL_ONLY",
        "false",
        "Postgres: poll instead of LISTEN/NOTIFY (implied by DATABASE_POOLER=transaction)",
    ),
    var(
        "METRICS_TOKEN",
        "unset",
        "bearer token for /metrics and /health/deep; required in production",
    ),
    var(
        "SENTRY_DSN",
        "unset",
        "Sentry DSN errors are reported to (https://KEY@HOST/PROJECT_ID; `keel sentry test` checks it)",
    ),
    var(
        "SENTRY_ENVIRONMENT",
        "APP_ENV",
        "environment tag of error reports",
    ),
    var(
        "SENTRY_RELEASE",
        "crate version",
        "release tag of error reports",
    ),
    var(
        "LOG_FORMAT",
        "pretty in development, else json",
        "pretty or json",
    ),
    var(
        "LOG_LEVEL",
        "info",
        "trace, debug, info, warn, error, or a tracing filter",
    ),
    var(
        "RUST_LOG",
        "unset",
        "read in place of LOG_LEVEL when LOG_LEVEL is unset",
    ),
    var(
        "CORS_ALLOWED_ORIGINS",
        "unset (no cross-origin access)",
        "comma-separated origins",
    ),
    var(
        "BODY_LIMIT_BYTES",
        "1048576",
        "largest request body accepted (413 above)",
    ),
    var(
        "REQUEST_TIMEOUT_SECONDS",
        "30",
        "longest a request may take (503 after)",
    ),
    var("RATE_LIMIT_BACKEND", "memory", "memory or redis"),
    var(
        "RATE_LIMIT_FAIL_CLOSED",
        "false",
        "refuse requests (503) instead of letting them through when the rate-limit backend is unreachable",
    ),
    var(
        "TRUSTED_PROXIES",
        "unset (X-Forwarded-For is ignored)",
        "proxy IPs/CIDRs (comma-separated) whose X-Forwarded-For names the client",
    ),
    var(
        "DATA_ENCRYPTION_KEYS",
        "development: a generated key",
        "kid:base64-32-bytes list, newest first",
    ),
    var(
        "APP_URL",
        "unset",
        "base URL of the app; HTTP job kinds declared with a path are sent under it",
    ),
    var(
        "APP_EVENTS_URL",
        "unset",
        "where Keel delivers app events (entitlement and user changes); unset, none are sent",
    ),
    var(
        "APP_WEBHOOK_SECRET",
        "unset",
        "Standard Webhooks signing secrets (whsec_...), newest first; every delivery to the app is signed with each",
    ),
    var(
        "STORAGE_URL",
        "file://./data/objects",
        "object storage (file:// or s3://bucket)",
    ),
    var(
        "STORAGE_PUBLIC_BASE_URL",
        "unset",
        "CDN base for stored objects",
    ),
    var(
        "PUBLIC_URL",
        "unset (the request's Host)",
        "where clients reach Keel; links of the filesystem storage backend are built on it",
    ),
    var(
        "STORAGE_REQUIRED",
        "false",
        "readiness waits for the storage backend to answer",
    ),
    var(
        "STORAGE_S3_PATH_STYLE",
        "true",
        "S3 requests as endpoint/bucket/key (false: bucket.endpoint/key)",
    ),
    var("AWS_REGION", "us-east-1", "region of the S3 bucket (auto for R2)"),
    var(
        "AWS_ENDPOINT_URL",
        "unset (AWS)",
        "endpoint of an S3-compatible service (R2, MinIO, ...)",
    ),
    var("AWS_ACCESS_KEY_ID", "unset", "S3 access key id"),
    var("AWS_SECRET_ACCESS_KEY", "unset", "S3 secret access key"),
    var(
        "STORAGE_CLOUDFRONT_KEY_ID",
        "unset",
        "CloudFront public key id: private objects are served through CloudFront signed URLs",
    ),
    var(
        "STORAGE_CLOUDFRONT_PRIVATE_KEY_FILE",
        "unset",
        "PEM file of the RSA private key of STORAGE_CLOUDFRONT_KEY_ID",
    ),
    var(
        "AWS_SESSION_TOKEN",
        "unset",
        "S3 session token of temporary credentials",
    ),
    var(
        "SHUTDOWN_GRACE_SECONDS",
        "25",
        "time in-flight requests and running jobs get on SIGTERM",
    ),
    var(
        "SHUTDOWN_DRAIN_SECONDS",
        "0",
        "time between readiness turning 503 and the listener closing",
    ),
    var(
        "UPSTREAM_URL",
        "unset",
        "gateway mode: the app's http:// URL; requests matching no Keel route are forwarded to it under the [[routes]] rules",
    ),
    var(
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS",
        "5",
        "how long opening a connection to the app may take (502 after)",
    ),
    var(
        "UPSTREAM_TIMEOUT_SECONDS",
        "60",
        "how long the app may take to start its answer (504 after), and a client to pause while sending a body (408 after)",
    ),
    var(
        "UPSTREAM_SIGNING_SECRET",
        "unset",
        "signs the identity headers sent to the app (x-keel-signature, HMAC-SHA256); at least 16 characters, 32 in production",
    ),
    var(
        "UPSTREAM_HEALTH_PATH",
        "unset",
        "a path of the app that /health/ready asks (2xx: ready)",
    ),
];

/// The entry for `name`, if Keel reads it.
pub fn lookup(name: &str) -> Option<&'static Var> {
    VARIABLES.iter().find(|v| v.name == name)
}
