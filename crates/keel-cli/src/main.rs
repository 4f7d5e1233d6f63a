//! The stock `keel` binary: the command line over Keel's own routes, jobs and migrations.

fn main() -> std::process::ExitCode {
    keel_cli::run(keel::Server::new)
}
