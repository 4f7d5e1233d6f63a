//! The deployment files in `deploy/` and `docs/SCALING.md`, read as text and held against what
//! they depend on: the Dockerfile's stages and user, the variables documented in
//! docs/CONFIGURATION.md, the health routes in docs/HTTP.md, the `keel` subcommands, the roles of
//! each platform's processes, stop timeouts longer than the shutdown grace, and the capacity
//! figures quoted from docs/BENCHMARKS.md. No network, no docker, no YAML or TOML parser: line
//! checks only (railway.json is parsed as JSON).

use crate::deploy_support;

use std::collections::BTreeSet;

use deploy_support::*;

#[test]
fn dockerfile_builds_keel_in_stages_and_runs_it_as_a_non_root_user_with_a_keel_healthcheck() {
    let text = read("deploy/Dockerfile");
    let lines = logical_lines(&text);
    let instructions: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let with = |keyword: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter_map(|l| l.strip_prefix(keyword)?.strip_prefix(' '))
            .map(str::trim)
            .collect()
    };

    let stages = with("FROM");
    assert!(
        stages.len() >= 2,
        "expected a multi-stage build: {stages:?}"
    );
    assert!(
        stages[0].starts_with("rust:1.") && stages[0].contains("-bookworm"),
        "builder stage: {stages:?}"
    );
    assert_eq!(
        stages.last(),
        Some(&"debian:bookworm-slim"),
        "runtime stage"
    );

    let runs = with("RUN");
    let builds: Vec<&&str> = runs.iter().filter(|l| l.contains("cargo build")).collect();
    assert!(
        !builds.is_empty()
            && builds
                .iter()
                .all(|b| b.contains("cargo build --release --locked -p keel-cli")),
        "every cargo build must be `cargo build --release --locked -p keel-cli`: {builds:?}"
    );

    let users = with("USER");
    let user = users.last().expect("a USER instruction");
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        !["root", "0", ""].contains(&name),
        "the image must not run as root: USER {user}"
    );

    let healthcheck = with("HEALTHCHECK");
    let [check] = healthcheck.as_slice() else {
        panic!("expected one HEALTHCHECK: {healthcheck:?}")
    };
    let cmd = check.split_once("CMD").expect("HEALTHCHECK … CMD").1;
    let argv = flow_items(cmd).expect("HEALTHCHECK CMD in exec form");
    assert_eq!(argv.first().map(String::as_str), Some("keel"), "{argv:?}");
    assert!(
        SUBCOMMANDS.contains(&argv[1].as_str()),
        "HEALTHCHECK runs an unknown subcommand: {argv:?}"
    );

    assert_eq!(with("ENTRYPOINT"), [r#"["keel"]"#]);
    assert_eq!(with("EXPOSE"), ["8080"]);

    // Everything COPY takes from the context exists, and the Dockerfile's ignore file keeps
    // none of it out (but keeps target/ out).
    let ignore = read("deploy/Dockerfile.dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(ignored.contains(&"target"), "{ignored:?}");
    let mut sources = Vec::new();
    for copy in with("COPY").iter().filter(|c| !c.contains("--from=")) {
        let words: Vec<&str> = copy
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        sources.extend_from_slice(&words[..words.len() - 1]);
    }
    for source in &sources {
        assert!(root().join(source).exists(), "COPY {source}: no such path");
        let top = source.split('/').next().unwrap_or_default();
        assert!(
            !ignored.contains(source) && !ignored.contains(&top),
            "COPY {source} is excluded by deploy/Dockerfile.dockerignore"
        );
    }
    // The dependency layer builds against every workspace member's manifest and a stub source.
    let manifest = read("Cargo.toml");
    let members = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = "))
        .and_then(flow_items)
        .expect("workspace members in Cargo.toml");
    for member in &members {
        let manifest = format!("{member}/Cargo.toml");
        assert!(
            sources.contains(&manifest.as_str())
                && runs.iter().any(|r| r.contains(member.as_str())),
            "deploy/Dockerfile: the dependency layer must COPY {manifest} and stub {member}/src"
        );
    }
    // The migrations are compiled in (include_str! from the repository root).
    assert!(
        sources.contains(&"migrations"),
        "COPY migrations: {sources:?}"
    );
}

#[test]
fn every_variable_the_deploy_files_set_is_documented() {
    let documented = documented_variables();
    let mut used: Vec<(String, &str)> = Vec::new();
    let mut add = |names: BTreeSet<String>, file: &'static str| {
        used.extend(names.into_iter().map(|n| (n, file)));
    };

    for &file in DEPLOY_FILES.iter().chain([&SCALING]) {
        let text = read(file);
        // NAME=value anywhere: ENV, Environment=, `fly secrets set`, --from-literal=, env files.
        add(assignments(&text), file);
        if file.ends_with(".md") {
            // `UPPER_SNAKE` names in prose and code.
            let (prose, _) = markdown(&text);
            let spans = code_spans(&prose)
                .into_iter()
                .filter(|s| is_env_name(s) && s.contains('_'))
                .collect();
            add(spans, file);
        }
    }

    let dockerfile_env: BTreeSet<String> = logical_lines(&read("deploy/Dockerfile"))
        .iter()
        .filter_map(|l| l.trim().strip_prefix("ENV "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    let expected = ["APP_ENV", "HOST", "LOG_FORMAT", "PORT"];
    assert!(
        expected.iter().all(|n| dockerfile_env.contains(*n)),
        "Dockerfile ENV: {dockerfile_env:?}"
    );
    add(dockerfile_env, "deploy/Dockerfile");

    let fly = toml_sections(&read("deploy/fly.toml"));
    let fly_env: BTreeSet<String> = fly
        .iter()
        .filter(|(name, _)| name == "[env]")
        .flat_map(|(_, pairs)| pairs.iter().map(|(k, _)| k.clone()))
        .collect();
    assert!(fly_env.contains("APP_ENV"), "fly.toml [env]: {fly_env:?}");
    add(fly_env, "deploy/fly.toml");
    let fly_secrets: BTreeSet<String> = read("deploy/fly.toml")
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .flat_map(assignments)
        .collect();
    for secret in [
        "DATABASE_URL",
        "METRICS_TOKEN",
        "DATA_ENCRYPTION_KEYS",
        "AUTH_JWKS_URL",
        "REVENUECAT_WEBHOOK_SECRET",
        "STRIPE_WEBHOOK_SECRET",
        "REDIS_URL",
    ] {
        assert!(
            fly_secrets.contains(secret),
            "deploy/fly.toml: `fly secrets set {secret}=…` is missing from the comments"
        );
    }

    let k8s_env: BTreeSet<String> = read("deploy/kubernetes.yaml")
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("name: "))
        .map(|n| n.trim().to_string())
        .filter(|n| is_env_name(n))
        .collect();
    assert!(k8s_env.contains("APP_ENV"), "kubernetes env: {k8s_env:?}");
    add(k8s_env, "deploy/kubernetes.yaml");

    // Build arguments (`ARG NAME=default`) are not runtime variables.
    let build_args: BTreeSet<String> = logical_lines(&read("deploy/Dockerfile"))
        .iter()
        .filter_map(|l| l.trim().strip_prefix("ARG "))
        .map(|a| a.split('=').next().unwrap_or_default().trim().to_string())
        .collect();
    let undocumented: Vec<String> = used
        .iter()
        .filter(|(name, _)| !documented.contains(name) && !build_args.contains(name))
        .map(|(name, file)| format!("{name} ({file})"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not documented in docs/CONFIGURATION.md: {undocumented:?}"
    );
}

#[test]
fn health_paths_in_the_deploy_files_are_routes_of_docs_http() {
    let http = read("docs/HTTP.md");
    let mut found = BTreeSet::new();
    for &file in DEPLOY_FILES.iter().chain([&SCALING]) {
        let text = read(file);
        for (i, _) in text.match_indices("/health") {
            let path: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '/')
                .collect();
            let path = path.trim_end_matches('/').to_string();
            assert!(
                http.contains(&format!("`GET {path}`")),
                "{file} uses {path}, which docs/HTTP.md does not list"
            );
            found.insert(path);
        }
    }
    for required in ["/health/live", "/health/ready"] {
        assert!(found.contains(required), "no deploy file uses {required}");
    }
}

#[test]
fn railway_json_builds_the_dockerfile_and_checks_readiness() {
    let text = read("deploy/railway.json");
    let config: serde_json::Value = serde_json::from_str(&text).expect("railway.json is JSON");
    assert_eq!(config["$schema"], "https://railway.app/railway.schema.json");
    assert_eq!(config["build"]["builder"], "DOCKERFILE");
    let dockerfile = config["build"]["dockerfilePath"]
        .as_str()
        .expect("build.dockerfilePath");
    assert!(
        root().join(dockerfile).is_file(),
        "railway.json names {dockerfile}, which does not exist"
    );
    assert_eq!(dockerfile, "deploy/Dockerfile");
    let deploy = &config["deploy"];
    assert_eq!(deploy["healthcheckPath"], "/health/ready");
    assert_eq!(deploy["restartPolicyType"], "ON_FAILURE");
    assert_eq!(
        deploy["preDeployCommand"],
        serde_json::json!(["keel migrate up"])
    );
    assert!(
        deploy.get("startCommand").is_none(),
        "a start command in railway.json would override the worker service's own"
    );
}

#[test]
fn fly_toml_runs_an_api_and_a_worker_process_and_migrates_on_release() {
    let fly = toml_sections(&read("deploy/fly.toml"));
    assert_eq!(toml_value(&fly, "[processes]", "api"), "serve --role api");
    assert_eq!(
        toml_value(&fly, "[processes]", "worker"),
        "serve --role worker"
    );
    assert_eq!(
        toml_value(&fly, "[deploy]", "release_command"),
        "migrate up"
    );
    assert_eq!(toml_value(&fly, "[env]", "APP_ENV"), "production");
    assert_eq!(toml_value(&fly, "[http_service]", "processes"), "[\"api\"]");
    assert_eq!(toml_value(&fly, "[http_service]", "internal_port"), "8080");
    assert_eq!(toml_value(&fly, "[http_service]", "force_https"), "true");
    assert_eq!(
        toml_value(&fly, "[[http_service.checks]]", "path"),
        "/health/ready"
    );
    let vm_processes: BTreeSet<&str> = fly
        .iter()
        .filter(|(name, _)| name == "[[vm]]")
        .flat_map(|(_, pairs)| pairs)
        .filter(|(k, _)| k == "processes")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        vm_processes,
        BTreeSet::from(["[\"api\"]", "[\"worker\"]"]),
        "one [[vm]] per process group"
    );
}

#[test]
fn kubernetes_deployments_have_probes_roles_and_a_non_root_read_only_pod() {
    let text = read("deploy/kubernetes.yaml");
    let docs = yaml_documents(&text);
    let uid = logical_lines(&read("deploy/Dockerfile"))
        .iter()
        .find_map(|l| l.trim().strip_prefix("USER ").map(str::to_string))
        .expect("USER")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();

    let mut deployments = Vec::new();
    for doc in docs.iter().filter(|d| d.contains("\nkind: Deployment")) {
        let name = yaml_name(doc).to_string();
        let replicas: u32 = yaml_value_after(doc, 0, "replicas")
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("{name}: replicas"));

        let args: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.trim().strip_prefix("args:"))
            .collect();
        let [args] = args.as_slice() else {
            panic!("{name}: expected one container with args: {args:?}")
        };
        let args = flow_items(args).expect("args as a flow sequence");
        let role = match args.as_slice() {
            [serve, flag, role] if serve == "serve" && flag == "--role" => role.clone(),
            other => panic!("{name}: args must be serve --role ROLE: {other:?}"),
        };

        for (probe, path) in [
            ("livenessProbe:", "/health/live"),
            ("readinessProbe:", "/health/ready"),
        ] {
            let at = doc
                .find(probe)
                .unwrap_or_else(|| panic!("{name}: no {probe}"));
            assert_eq!(
                yaml_value_after(doc, at, "path"),
                Some(path),
                "{name}: {probe}"
            );
        }

        let init = doc
            .find("initContainers:")
            .unwrap_or_else(|| panic!("{name}: migrations run in an initContainer"));
        let command = yaml_value_after(doc, init, "command").and_then(flow_items);
        assert_eq!(
            command,
            Some(vec!["keel".into(), "migrate".into(), "up".into()]),
            "{name}: initContainer"
        );

        for needed in [
            "runAsNonRoot: true",
            &format!("runAsUser: {uid}"),
            "readOnlyRootFilesystem: true",
            "mountPath: /app/data",
            "emptyDir: {}",
            "containerPort: 8080",
            "secretRef:",
            "name: keel-env",
        ] {
            assert!(doc.contains(needed), "{name}: missing `{needed}`");
        }
        deployments.push((name, replicas, role));
    }
    assert_eq!(
        deployments,
        [
            ("keel-api".to_string(), 2, "api".to_string()),
            ("keel-worker".to_string(), 1, "worker".to_string()),
        ]
    );

    let services: Vec<&String> = docs
        .iter()
        .filter(|d| d.contains("\nkind: Service"))
        .collect();
    let [service] = services.as_slice() else {
        panic!("expected one Service: {services:?}")
    };
    assert_eq!(yaml_name(service), "keel-api");
    assert!(
        service.contains("app.kubernetes.io/component: api"),
        "the Service selects the api pods"
    );
}

#[test]
fn stop_timeouts_outlast_the_shutdown_grace_period() {
    let grace = documented_default("SHUTDOWN_GRACE_SECONDS");
    let fly = toml_sections(&read("deploy/fly.toml"));
    let fly_drain = seconds(toml_value(&fly, "[env]", "SHUTDOWN_DRAIN_SECONDS"));
    let fly_kill = seconds(toml_value(&fly, "", "kill_timeout"));
    assert!(
        fly_kill > fly_drain + grace,
        "fly.toml kill_timeout {fly_kill}s <= drain {fly_drain}s + grace {grace}s"
    );
    assert_eq!(toml_value(&fly, "", "kill_signal"), "SIGTERM");

    let unit = read("deploy/keel.service");
    let directive = |key: &str| -> String {
        unit.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("keel.service: no {key}="))
            .trim()
            .to_string()
    };
    assert!(seconds(&directive("TimeoutStopSec")) > grace);
    assert_eq!(directive("KillSignal"), "SIGTERM");
    assert_eq!(directive("User"), "keel");
    assert_eq!(directive("ExecStartPre"), "/usr/local/bin/keel migrate up");
    assert_eq!(directive("ExecStart"), "/usr/local/bin/keel serve");
    for hardening in [
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/keel",
        "PrivateTmp=true",
        "ProtectHome=true",
    ] {
        assert!(
            unit.lines().any(|l| l == hardening),
            "keel.service: {hardening}"
        );
    }

    let railway: serde_json::Value =
        serde_json::from_str(&read("deploy/railway.json")).expect("railway.json");
    let draining = railway["deploy"]["drainingSeconds"]
        .as_u64()
        .expect("deploy.drainingSeconds, a number");
    assert!(draining > grace, "railway.json drainingSeconds {draining}");

    for doc in yaml_documents(&read("deploy/kubernetes.yaml"))
        .iter()
        .filter(|d| d.contains("\nkind: Deployment"))
    {
        let name = yaml_name(doc);
        let period = seconds(
            yaml_value_after(doc, 0, "terminationGracePeriodSeconds")
                .unwrap_or_else(|| panic!("{name}: terminationGracePeriodSeconds")),
        );
        let drain = doc
            .find("name: SHUTDOWN_DRAIN_SECONDS")
            .and_then(|at| yaml_value_after(doc, at, "value"))
            .map_or(0, seconds);
        assert!(
            period > drain + grace,
            "{name}: terminationGracePeriodSeconds {period} <= drain {drain} + grace {grace}"
        );
    }
}

/// `keel backup` and `keel restore` on Postgres run pg_dump and pg_restore: the runtime image
/// installs the client tools of one PostgreSQL major version, and deploy/README.md and
/// docs/OPERATIONS.md say which, and how to pick another.
#[test]
fn the_runtime_image_carries_the_postgres_client_tools_of_a_chosen_major_version() {
    let lines = logical_lines(&read("deploy/Dockerfile"));
    let runtime_start = lines
        .iter()
        .rposition(|l| l.trim().starts_with("FROM "))
        .expect("a FROM");
    let runtime: Vec<&str> = lines[runtime_start..].iter().map(|l| l.trim()).collect();
    let default_major = runtime
        .iter()
        .find_map(|l| l.strip_prefix("ARG PG_MAJOR="))
        .expect("the runtime stage declares ARG PG_MAJOR=<default>");
    let major: u32 = default_major.parse().expect("PG_MAJOR is a major version");
    assert!((13..=17).contains(&major), "PG_MAJOR={major}");
    let install = runtime
        .iter()
        .find(|l| l.starts_with("RUN ") && l.contains("postgresql-client-${PG_MAJOR}"))
        .expect("a RUN that installs postgresql-client-${PG_MAJOR} in the runtime stage");
    let repository = install
        .find("apt.postgresql.org.sh -y")
        .expect("the PGDG repository is added (postgresql-common's script)");
    let client = install.find("postgresql-client-${PG_MAJOR}").unwrap();
    assert!(
        install
            .find("postgresql-common")
            .is_some_and(|i| i < repository)
            && repository < client,
        "postgresql-common, then the repository, then the client: {install}"
    );
    for tool in ["pg_dump --version", "pg_restore --version"] {
        assert!(
            install.contains(tool),
            "the build checks `{tool}`: {install}"
        );
    }
    let user = runtime
        .iter()
        .position(|l| l.starts_with("USER "))
        .expect("USER");
    let run = runtime.iter().position(|l| l == install).unwrap();
    assert!(run < user, "installed as root, before USER");

    let readme = read("deploy/README.md");
    let operations = read("docs/OPERATIONS.md");
    for (name, text) in [
        ("deploy/README.md", &readme),
        ("docs/OPERATIONS.md", &operations),
    ] {
        for needle in [
            format!("postgresql-client-{major}"),
            "PG_MAJOR".to_string(),
            "pg_restore".to_string(),
        ] {
            assert!(text.contains(&needle), "{name} does not say {needle:?}");
        }
        assert!(!text.contains("no Postgres client tools"), "{name}");
    }
}
