use clap::Subcommand;
use keel::Settings;
use serde_json::json;

use crate::exit::{Exit, Output};
use crate::settings;
use crate::Build;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the environment exactly as `serve` would; list every problem.
    Check,
}

pub fn run(args: Args, out: Output, build: Build<'_>) -> Exit {
    match args.command {
        ConfigCommand::Check => check(out, build),
    }
}

fn check(out: Output, build: Build<'_>) -> Exit {
    let src = match settings::source() {
        Ok(src) => src,
        Err(exit) => return exit,
    };
    let (settings, mut problems) = Settings::load_lenient(&src);
    // The kinds this binary's processes run: built in, Keel's own, the application's handlers
    // and the HTTP kinds.
    let declared = build(settings.clone()).job_kinds();
    let origin = settings
        .config_file
        .as_ref()
        .map_or_else(|| "keel.toml".to_string(), |p| p.display().to_string());
    for message in keel::schedule::decl::undeclared_kinds(&settings.file.schedules, &declared) {
        problems.push(keel::config::Problem {
            variable: "KEEL_CONFIG".into(),
            message: format!("{origin}: {message}"),
        });
    }
    if out.json {
        out.print_json(&json!({
            "ok": problems.is_empty(),
            "app_env": settings.app_env,
            "role": settings.role,
            "problems": problems,
        }));
    } else if problems.is_empty() {
        println!(
            "configuration ok: {} environment, role {}, {} database{}",
            settings.app_env.as_str(),
            settings.role.as_str(),
            engine_name(&settings),
            settings
                .config_file
                .as_ref()
                .map(|p| format!(", settings file {}", p.display()))
                .unwrap_or_default()
        );
    } else {
        let noun = if problems.len() == 1 {
            "problem"
        } else {
            "problems"
        };
        println!("configuration has {} {noun}:", problems.len());
        for p in &problems {
            println!("  {}: {}", p.variable, p.message);
        }
    }
    if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

fn engine_name(settings: &Settings) -> &'static str {
    match keel::store::Db::engine_of(&settings.database.url) {
        Some(keel::store::Engine::Sqlite) => "sqlite",
        Some(keel::store::Engine::Postgres) => "postgres",
        None => "unknown",
    }
}
