use keel::config::{vars::VARIABLES, AppEnv, Role, Source};
use keel::Settings;
use secrecy::ExposeSecret;

fn load(pairs: &[(&str, &str)]) -> Result<Settings, keel::config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    Settings::load(&Source::from_pairs(pairs.iter().copied(), dir.path()))
}

fn problem_variables(pairs: &[(&str, &str)]) -> Vec<String> {
    load(pairs)
        .unwrap_err()
        .problems
        .into_iter()
        .map(|p| p.variable)
        .collect()
}

#[test]
fn development_defaults_need_no_setup() {
    let s = load(&[]).unwrap();
    assert_eq!(s.app_env, AppEnv::Development);
    assert_eq!(s.role, Role::All);
    assert_eq!(s.http.port, 8080);
    assert_eq!(s.http.host.to_string(), "127.0.0.1");
    assert_eq!(s.shutdown.grace.as_secs(), 25);
    assert_eq!(s.jobs.concurrency, 16);
    assert_eq!(s.http.body_limit_bytes, 1 << 20);
}

#[test]
fn production_lists_every_violation_at_once() {
    let vars = problem_variables(&[("APP_ENV", "production")]);
    for expected in [
        "DATABASE_URL",
        "AUTH_JWKS_URL",
        "METRICS_TOKEN",
        "DATA_ENCRYPTION_KEYS",
    ] {
        assert!(
            vars.iter().any(|v| v == expected),
            "{expected} missing from {vars:?}"
        );
    }
}

#[test]
fn production_refuses_unsafe_settings() {
    let vars = problem_variables(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://db/keel"),
        ("AUTH_HS256_SECRET", "short"),
        ("AUTH_DEV_MODE", "true"),
        ("METRICS_TOKEN", "0123456789abcdef0123456789abcdef"),
        (
            "DATA_ENCRYPTION_KEYS",
            "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        ("CORS_ALLOWED_ORIGINS", "https://*.example.com"),
        ("BILLING_PROVIDERS", "revenuecat,stripe"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_short"),
    ]);
    for expected in [
        "AUTH_HS256_SECRET",
        "AUTH_DEV_MODE",
        "CORS_ALLOWED_ORIGINS",
        "REVENUECAT_WEBHOOK_SECRET",
        "STRIPE_WEBHOOK_SECRET",
    ] {
        assert!(
            vars.iter().any(|v| v == expected),
            "{expected} missing from {vars:?}"
        );
    }
    assert!(!vars.iter().any(|v| v == "METRICS_TOKEN"), "{vars:?}");
}

#[test]
fn the_secret_length_rule_counts_characters() {
    let production =
        |admin: &str| problem_variables(&[("APP_ENV", "production"), ("ADMIN_TOKEN", admin)]);
    // 17 characters of two bytes each: 34 bytes, but short of 32 characters.
    let short = "é".repeat(17);
    assert!(production(&short).iter().any(|v| v == "ADMIN_TOKEN"));
    let long = "é".repeat(32);
    assert!(!production(&long).iter().any(|v| v == "ADMIN_TOKEN"));
}

#[test]
fn a_safe_production_configuration_loads() {
    let s = load(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://db/keel"),
        ("AUTH_JWKS_URL", "https://issuer.example.com/.well-known/jwks.json"),
        ("METRICS_TOKEN", "0123456789abcdef0123456789abcdef"),
        ("DATA_ENCRYPTION_KEYS", "k2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
    ])
    .unwrap();
    assert_eq!(s.http.host.to_string(), "0.0.0.0");
    assert_eq!(s.data_keys.len(), 2);
    assert_eq!(s.data_keys[0].id, "k2");
}

#[test]
fn bad_values_are_named() {
    let vars = problem_variables(&[
        ("PORT", "eighty"),
        ("PROCESS_ROLE", "boss"),
        ("APP_ENV", "prod"),
        ("SHUTDOWN_GRACE_SECONDS", "-1"),
        ("AUTH_DEV_MODE", "maybe"),
        ("LOG_LEVEL", "[[["),
        ("DATABASE_URL", "mysql://x"),
        ("DATA_ENCRYPTION_KEYS", "k1:c2hvcnQ="),
        ("RATE_LIMIT_BACKEND", "redis"),
    ]);
    for expected in [
        "PORT",
        "PROCESS_ROLE",
        "APP_ENV",
        "SHUTDOWN_GRACE_SECONDS",
        "AUTH_DEV_MODE",
        "LOG_LEVEL",
        "DATABASE_URL",
        "DATA_ENCRYPTION_KEYS",
        "REDIS_URL",
    ] {
        assert!(
            vars.iter().any(|v| v == expected),
            "{expected} missing from {vars:?}"
        );
    }
}

#[test]
fn problems_never_echo_secret_values() {
    let err = load(&[
        ("APP_ENV", "production"),
        ("ADMIN_TOKEN", "tiny-admin-secret"),
        ("DATABASE_URL", "postgres://user:hunter2-password@db/keel"),
    ])
    .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("tiny-admin-secret"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("ADMIN_TOKEN"));
    assert!(!format!(
        "{:?}",
        load(&[("ADMIN_TOKEN", "tiny-admin-secret")]).unwrap()
    )
    .contains("tiny-admin-secret"));
}

#[test]
fn keel_toml_is_read_from_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keel.toml"),
        "[products]\npro = [\"premium\"]\n",
    )
    .unwrap();
    let s = Settings::load(&Source::from_pairs(
        Vec::<(String, String)>::new(),
        dir.path(),
    ))
    .unwrap();
    assert_eq!(s.file.products["pro"], vec!["premium"]);

    std::fs::write(
        dir.path().join("keel.toml"),
        "[products]\npro = [\"premium\"]\nextra = 1\n",
    )
    .unwrap();
    let err = Settings::load(&Source::from_pairs(
        Vec::<(String, String)>::new(),
        dir.path(),
    ))
    .unwrap_err();
    assert_eq!(err.problems[0].variable, "KEEL_CONFIG");

    let missing = Settings::load(&Source::from_pairs(
        [("KEEL_CONFIG", "nope.toml")],
        dir.path(),
    ))
    .unwrap_err();
    assert!(missing.problems[0].message.contains("nope.toml"));
}

fn repo_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_variable_is_documented() {
    let docs = repo_file("docs/CONFIGURATION.md");
    let example = repo_file(".env.example");
    for var in VARIABLES {
        assert!(
            docs.contains(&format!("`{}`", var.name)),
            "{} is not in docs/CONFIGURATION.md",
            var.name
        );
        assert!(
            example.lines().any(|l| l
                .trim_start_matches("# ")
                .starts_with(&format!("{}=", var.name))),
            "{} is not in .env.example",
            var.name
        );
    }
}

#[test]
fn every_spec_variable_is_read() {
    let spec = repo_file("docs/CONFIGURATION.md");
    for line in spec.lines().filter(|l| l.starts_with("| `")) {
        let name = line.trim_start_matches("| `").split('`').next().unwrap();
        assert!(
            keel::config::vars::lookup(name).is_some(),
            "docs/CONFIGURATION.md documents {name}, which Keel does not read"
        );
    }
}

#[test]
fn the_pooler_mode_is_read_and_checked() {
    use keel::store::PoolerMode;
    let pg = "postgres://keel@127.0.0.1:6432/keel";
    let direct = "postgres://keel@127.0.0.1:5432/keel";
    let s = load(&[("DATABASE_URL", pg)]).unwrap();
    assert_eq!(s.database.pooler, PoolerMode::Direct);
    assert_eq!(s.database.migration_target().1, PoolerMode::Direct);

    let s = load(&[("DATABASE_URL", pg), ("DATABASE_POOLER", "transaction")]).unwrap();
    assert_eq!(s.database.pooler, PoolerMode::Transaction);
    let (url, mode) = s.database.migration_target();
    assert_eq!((url.expose_secret(), mode), (pg, PoolerMode::Transaction));

    let s = load(&[
        ("DATABASE_URL", pg),
        ("DATABASE_POOLER", "transaction"),
        ("DATABASE_DIRECT_URL", direct),
    ])
    .unwrap();
    let (url, mode) = s.database.migration_target();
    assert_eq!((url.expose_secret(), mode), (direct, PoolerMode::Direct));

    for bad in [
        vec![("DATABASE_URL", pg), ("DATABASE_POOLER", "statement")],
        vec![
            ("DATABASE_URL", "sqlite://keel.db"),
            ("DATABASE_POOLER", "transaction"),
        ],
    ] {
        assert_eq!(problem_variables(&bad), ["DATABASE_POOLER"], "{bad:?}");
    }
    assert_eq!(
        problem_variables(&[
            ("DATABASE_URL", pg),
            ("DATABASE_DIRECT_URL", "sqlite://x.db")
        ]),
        ["DATABASE_DIRECT_URL"]
    );
}

#[test]
fn schedule_time_zones_are_iana_names() {
    let dir = tempfile::tempdir().unwrap();
    let toml = |zone: &str| {
        format!("[[schedules]]\nname = \"report\"\ncron = \"0 9 * * *\"\ntimezone = {zone:?}\nkind = \"diag.noop\"\n")
    };
    let load_with = |zone: &str| {
        std::fs::write(dir.path().join("keel.toml"), toml(zone)).unwrap();
        Settings::load(&Source::from_pairs(
            Vec::<(String, String)>::new(),
            dir.path(),
        ))
    };
    let s = load_with("Europe/Berlin").unwrap();
    assert_eq!(
        s.file.schedules[0].timezone.as_deref(),
        Some("Europe/Berlin")
    );
    for bad in ["Europe/Berlyn", "CEST", "+02:00"] {
        let err = load_with(bad).unwrap_err();
        assert_eq!(err.problems[0].variable, "KEEL_CONFIG", "{bad}");
        assert!(
            err.problems[0].message.contains("unknown time zone"),
            "{bad}: {}",
            err.problems[0].message
        );
    }
}
