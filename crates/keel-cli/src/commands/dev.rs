use clap::Subcommand;
use keel::auth::dev::{self, DevClaims};
use keel::config::AppEnv;
use serde_json::json;

use crate::exit::{Exit, Output};
use crate::settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Mint a token the local instance accepts (APP_ENV=development with AUTH_DEV_MODE on, its
    /// default when no verifier is configured).
    Token {
        #[arg(long)]
        user: String,
        #[arg(long)]
        tenant: Option<String>,
        /// Give the token the admin role.
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
    },
    /// Run Keel here and show the quick start's flow against it: a development token, a signed
    /// purchase, the entitlement and forward auth; then keep serving.
    Demo,
    /// Send a correctly signed sample event of a billing provider to a running instance.
    Webhook {
        /// revenuecat, stripe or whop
        provider: String,
        /// The event type, e.g. INITIAL_PURCHASE or customer.subscription.created.
        #[arg(long)]
        event: String,
        #[arg(long)]
        user: String,
        /// The store product (RevenueCat), Stripe product id or Whop product id.
        #[arg(long)]
        product: Option<String>,
        /// Base URL of the instance; default: HOST and PORT of this configuration.
        #[arg(long)]
        url: Option<String>,
    },
}

pub async fn run(args: Args, out: Output) -> Exit {
    match args.command {
        DevCommand::Demo => super::demo::run().await,
        DevCommand::Token {
            user,
            tenant,
            admin,
            ttl,
        } => token(user, tenant, admin, ttl, out),
        DevCommand::Webhook {
            provider,
            event,
            user,
            product,
            url,
        } => {
            webhook(
                &provider,
                &event,
                &user,
                product.as_deref(),
                url.as_deref(),
                out,
            )
            .await
        }
    }
}

fn token(user: String, tenant: Option<String>, admin: bool, ttl: i64, out: Output) -> Exit {
    let src = match settings::source() {
        Ok(src) => src,
        Err(exit) => return exit,
    };
    let (settings, _) = keel::Settings::load_lenient(&src);
    if settings.app_env != AppEnv::Development {
        eprintln!("error: development tokens exist only with APP_ENV=development");
        return Exit::Usage;
    }
    if user.is_empty() || user.chars().count() > 255 || !(1..=31_536_000).contains(&ttl) {
        eprintln!("error: --user must be 1 to 255 characters and --ttl 1 to 31536000 seconds");
        return Exit::Usage;
    }
    let key = match dev::load_or_create(&settings.data_dir) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
    };
    let claims = DevClaims {
        user: &user,
        tenant: tenant.as_deref(),
        tenant_claim: &settings.auth.tenant_claim,
        admin,
        ttl_s: ttl,
    };
    let token = dev::mint(&key, &claims, chrono::Utc::now().timestamp());
    if out.json {
        out.print_json(
            &json!({ "token": token, "user_id": user, "tenant_id": tenant, "admin": admin }),
        );
    } else {
        println!("{token}");
    }
    if !settings.auth.dev_mode {
        eprintln!(
            "note: this configuration does not accept development tokens (AUTH_DEV_MODE is off; \
             it is on by default only when neither AUTH_JWKS_URL nor AUTH_HS256_SECRET is set)"
        );
    }
    Exit::Ok
}

async fn webhook(
    provider: &str,
    event: &str,
    user: &str,
    product: Option<&str>,
    url: Option<&str>,
    out: Output,
) -> Exit {
    let src = match settings::source() {
        Ok(src) => src,
        Err(exit) => return exit,
    };
    let (settings, _) = keel::Settings::load_lenient(&src);
    if settings.app_env == AppEnv::Production {
        eprintln!("error: sample webhooks are for development and staging, not production");
        return Exit::Usage;
    }
    if user.is_empty() || user.chars().count() > 255 || user.chars().any(char::is_control) {
        eprintln!("error: --user must be 1 to 255 characters without control characters");
        return Exit::Usage;
    }
    match keel::ops::dev_webhook::send(&settings, provider, event, user, product, url).await {
        Ok(delivery) => {
            let ok = (200..300).contains(&delivery.status);
            if out.json {
                out.print_json(&json!(delivery));
            } else {
                println!(
                    "{} {} {} -> {} {}",
                    delivery.event_type,
                    delivery.event_id,
                    delivery.url,
                    delivery.status,
                    delivery.body
                );
            }
            if ok {
                Exit::Ok
            } else {
                Exit::Failed
            }
        }
        Err(keel::ops::dev_webhook::DevWebhookError::Usage(e)) => {
            eprintln!("error: {e}");
            Exit::Usage
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Failed
        }
    }
}
