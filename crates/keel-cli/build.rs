//! The release binary's functions that a running `keel serve` uses are linked together, in the
//! order `link-order.txt` lists them (written by `bench/link_order.sh`), so the code pages a process
//! touches hold little code it never runs. Only on x86_64 Linux with rustc 1.90 or later, which
//! links there with LLD, and never when `KEEL_LINK_ORDER=off`; names the file lists that the build
//! no longer has are skipped.

use std::env;
use std::path::Path;
use std::process::Command;

/// Whether this rustc links x86_64 Linux binaries with LLD by default (1.90 and later).
fn links_with_lld() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(release) = text.lines().find_map(|l| l.strip_prefix("release: ")) else {
        return false;
    };
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=KEEL_LINK_ORDER");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let off = env::var("KEEL_LINK_ORDER").is_ok_and(|v| v == "off");
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = Path::new(&dir).join("link-order.txt");
    if release && lld_target && !off && order.is_file() && links_with_lld() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
