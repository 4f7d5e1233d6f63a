//! `keel storage ls | du | migrate`: the objects of the configured backend, usage per owner, and
//! a resumable, verified move between backends.

use std::collections::HashMap;

use clap::Subcommand;
use keel::storage::migrate::migrate;
use keel::storage::{Backend, StorageTarget};
use serde_json::json;

use crate::context::{self, failed};
use crate::exit::{Exit, Output};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// The objects of the configured backend (STORAGE_URL), in key order.
    Ls {
        /// Only keys under this prefix (whole segments: `users/` or `users/ab12`).
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Objects and bytes in the backend, and confirmed files per owner.
    Du,
    /// Copy every object of one backend to another, each verified by size and SHA-256. Objects
    /// the target already holds unchanged are skipped, so a rerun finishes an interrupted run.
    Migrate {
        /// The source: file://PATH or s3://BUCKET[/PREFIX].
        #[arg(long)]
        from: String,
        /// The target: file://PATH or s3://BUCKET[/PREFIX] (S3 through the AWS_* variables).
        #[arg(long)]
        to: String,
        /// Copy at most this many objects in this run.
        #[arg(long)]
        limit: Option<u64>,
    },
}

pub async fn run(args: Args, out: Output) -> Exit {
    let services = match context::services() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    match args.command {
        StorageCommand::Ls { prefix } => {
            let backend = match services.storage.backend() {
                Ok(backend) => backend,
                Err(e) => return failed(e),
            };
            let mut objects = match backend.list(&prefix).await {
                Ok(objects) => objects,
                Err(e) => return failed(e),
            };
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            if out.json {
                let list: Vec<_> = objects
                    .iter()
                    .map(|o| json!({ "key": o.key, "size": o.size }))
                    .collect();
                out.print_json(&json!({ "backend": backend.describe(), "objects": list }));
            } else {
                for o in &objects {
                    println!("{:>12}  {}", o.size, o.key);
                }
                println!("{} objects in {}", objects.len(), backend.describe());
            }
            Exit::Ok
        }
        StorageCommand::Du => {
            let backend = match services.storage.backend() {
                Ok(backend) => backend,
                Err(e) => return failed(e),
            };
            let objects = match backend.list("").await {
                Ok(objects) => objects,
                Err(e) => return failed(e),
            };
            let bytes: u64 = objects.iter().map(|o| o.size).sum();
            let owners = match services.db.storage_usage().await {
                Ok(owners) => owners,
                Err(e) => return failed(e),
            };
            if out.json {
                let owners: Vec<_> = owners
                    .iter()
                    .map(
                        |o| json!({ "user_id": o.user_id, "objects": o.objects, "bytes": o.bytes }),
                    )
                    .collect();
                out.print_json(&json!({
                    "backend": { "url": backend.describe(), "objects": objects.len(), "bytes": bytes },
                    "owners": owners,
                }));
            } else {
                println!(
                    "{}: {} objects, {bytes} bytes",
                    backend.describe(),
                    objects.len()
                );
                for o in &owners {
                    let owner = o.user_id.as_deref().unwrap_or("(the app)");
                    println!("{:>12} bytes  {:>8} files  {owner}", o.bytes, o.objects);
                }
            }
            Exit::Ok
        }
        StorageCommand::Migrate { from, to, limit } => {
            let s3 = &services.settings.storage.s3;
            let open = |url: &str| {
                let dir = std::env::current_dir().unwrap_or_default();
                StorageTarget::parse(url, &dir)
                    .map_err(|message| format!("{url}: {message}"))
                    .and_then(|target| Backend::open(&target, s3).map_err(|e| e.to_string()))
            };
            let (source, target) = match (open(&from), open(&to)) {
                (Ok(source), Ok(target)) => (source, target),
                (Err(message), _) | (_, Err(message)) => {
                    eprintln!("error: {message}");
                    return Exit::Usage;
                }
            };
            if source.describe() == target.describe() {
                eprintln!("error: --from and --to name the same storage");
                return Exit::Usage;
            }
            let types = content_types(&services).await;
            let report = match migrate(&source, &target, limit, &types).await {
                Ok(report) => report,
                Err(e) => return failed(e),
            };
            if out.json {
                out.print_json(&json!(report));
            } else {
                println!(
                    "{} copied ({} bytes), {} already there, {} left for another run, {} failed",
                    report.copied,
                    report.bytes,
                    report.skipped,
                    report.remaining,
                    report.failed.len()
                );
                for f in &report.failed {
                    eprintln!("failed: {}: {}", f.key, f.error);
                }
            }
            if report.failed.is_empty() {
                Exit::Ok
            } else {
                Exit::Failed
            }
        }
    }
}

/// The content type of each object Keel recorded; without the database, none (objects are then
/// stored as `application/octet-stream`).
async fn content_types(services: &keel::services::Services) -> HashMap<String, String> {
    let mut types = HashMap::new();
    let mut after = String::new();
    loop {
        match services.db.storage_objects_page(&after, 1000).await {
            Ok(page) if page.is_empty() => return types,
            Ok(page) => {
                for object in page {
                    after.clone_from(&object.key);
                    types.insert(object.key, object.content_type);
                }
            }
            Err(e) => {
                eprintln!("warning: content types are not known without the database: {e}");
                return types;
            }
        }
    }
}
