//! `keel dev demo`: Keel on this configuration (SQLite by default) and, once it is ready, the
//! quick start's flow against it as a client would run it: a development token for `alice`, a
//! signed RevenueCat purchase, her entitlements, forward auth. Then it keeps serving until
//! SIGTERM or Ctrl-C, so the flow can be repeated by hand.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keel::auth::dev::{self, DevClaims};
use keel::config::{AppEnv, Settings};
use keel::Server;
use tokio::net::TcpListener;

use crate::exit::Exit;
use crate::settings;

const USER: &str = "alice";
/// The product the demo buys and the entitlement it grants when `keel.toml` maps nothing.
const PRODUCT: &str = "premium_monthly";
const ENTITLEMENT: &str = "premium";

pub async fn run() -> Exit {
    let src = match settings::source() {
        Ok(src) => src,
        Err(exit) => return exit,
    };
    let mut settings = match settings::load(&src) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    if settings.app_env != AppEnv::Development {
        eprintln!("error: the demo runs only with APP_ENV=development");
        return Exit::Usage;
    }
    if !settings.billing.products.contains_key(PRODUCT) {
        settings
            .billing
            .products
            .insert(PRODUCT.into(), vec![ENTITLEMENT.into()]);
    }
    keel::telemetry::init(&settings.telemetry);
    let addr = SocketAddr::new(settings.http.host, settings.http.port);
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return Exit::Failed;
        }
    };
    let base = match listener.local_addr() {
        Ok(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}", a.port()),
        Ok(a) => format!("http://{a}"),
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
    };
    let server = tokio::spawn(
        Server::new(settings.clone()).run_on(listener, keel::runtime::shutdown_signal()),
    );
    match flow(&settings, &base).await {
        Ok(()) => println!(
            "\nKeel keeps running at {base} (SQLite database and data directory as configured); \
             Ctrl-C stops it.\nTry: keel dev webhook revenuecat --event EXPIRATION --user {USER}"
        ),
        Err(e) => {
            eprintln!("error: {e}");
            server.abort();
            return Exit::Failed;
        }
    }
    match server.await {
        Ok(Ok(())) => Exit::Ok,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            Exit::Failed
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Failed
        }
    }
}

/// The flow, each step printed with the command that repeats it.
async fn flow(settings: &Settings, base: &str) -> Result<(), String> {
    let client = reqwest::Client::new();
    wait_ready(&client, base).await?;
    println!("1. Keel is ready: {base}/health/ready");

    let key = dev::load_or_create(&settings.data_dir)?;
    let claims = DevClaims {
        user: USER,
        tenant: None,
        tenant_claim: &settings.auth.tenant_claim,
        admin: false,
        ttl_s: 86_400,
    };
    let token = dev::mint(&key, &claims, chrono::Utc::now().timestamp());
    println!("2. a development token for {USER}:  TOKEN=$(keel dev token --user {USER})");

    let delivery = keel::ops::dev_webhook::send(
        settings,
        "revenuecat",
        "INITIAL_PURCHASE",
        USER,
        Some(PRODUCT),
        Some(base),
    )
    .await
    .map_err(|e| e.to_string())?;
    if delivery.status != 200 {
        return Err(format!(
            "the purchase was answered {}: {}",
            delivery.status, delivery.body
        ));
    }
    println!(
        "3. {USER} buys {PRODUCT} (a signed RevenueCat webhook): {} {}\n   \
         keel dev webhook revenuecat --event INITIAL_PURCHASE --user {USER} --product {PRODUCT}",
        delivery.status, delivery.body
    );

    let url = format!("{base}/v1/me/entitlements");
    let answer = get(&client, &url, &token).await?;
    println!(
        "4. her entitlements: {} {}\n   curl -H \"Authorization: Bearer $TOKEN\" {url}",
        answer.0, answer.1
    );

    let url = format!("{base}/v1/auth/check?entitlement={ENTITLEMENT}");
    let answer = get(&client, &url, &token).await?;
    println!(
        "5. forward auth for {ENTITLEMENT}: {}\n   curl -i -H \"Authorization: Bearer $TOKEN\" \"{url}\"",
        answer.0
    );
    if answer.0 != 200 {
        return Err(format!("forward auth answered {}: {}", answer.0, answer.1));
    }
    Ok(())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let ready = client.get(format!("{base}/health/ready")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{base} was not ready within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<(u16, String), String> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}
