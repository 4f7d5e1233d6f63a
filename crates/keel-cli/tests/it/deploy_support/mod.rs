//! Shared by the deployment-file tests: reading the repository's files and the small line
//! parsers (TOML sections, YAML documents, Markdown code) they use.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Files checked for variables, health paths and `keel` command lines.
pub const DEPLOY_FILES: &[&str] = &[
    "deploy/Dockerfile",
    "deploy/fly.toml",
    "deploy/railway.json",
    "deploy/keel.service",
    "deploy/kubernetes.yaml",
    "deploy/README.md",
];
pub const SCALING: &str = "docs/SCALING.md";

/// `keel` subcommands (README's command section; `backup`, `restore` and `db` are SPEC §1).
pub const SUBCOMMANDS: &[&str] = &[
    "serve",
    "migrate",
    "config",
    "smoke",
    "queue",
    "flags",
    "schedules",
    "report",
    "bench",
    "dev",
    "backup",
    "restore",
    "db",
    "webhooks",
    "sentry",
    "storage",
];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

pub fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A name shaped like an environment variable: `A-Z`, digits and `_`, starting with a letter.
pub fn is_env_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && !s.ends_with('_')
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Joins lines ending in a backslash with the next one (Dockerfile, shell).
pub fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A markdown file split into prose (fenced blocks removed) and the lines of its fenced blocks.
pub fn markdown(text: &str) -> (String, Vec<String>) {
    let (mut prose, mut code, mut fenced) = (String::new(), Vec::new(), false);
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            code.push(line.to_string());
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    (prose, code)
}

/// The contents of `inline code` spans.
pub fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Items of a flow sequence such as `["serve", "--role", "api"]`.
pub fn flow_items(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .split(',')
            .map(|item| item.trim().trim_matches('"').to_string())
            .filter(|item| !item.is_empty())
            .collect(),
    )
}

/// Every `NAME=` where NAME looks like an environment variable and starts a word.
pub fn assignments(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices('=') {
        let head = &text[..i];
        let start = head
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(0, |(p, c)| p + c.len_utf8());
        let name = &head[start..];
        let before = head[..start].chars().next_back();
        let boundary = before.is_none_or(|c| c.is_whitespace() || "`\"'=([{,-".contains(c));
        if boundary && is_env_name(name) {
            names.insert(name.to_string());
        }
    }
    names
}

/// The variables documented in docs/CONFIGURATION.md: backticked names.
pub fn documented_variables() -> BTreeSet<String> {
    let names: BTreeSet<String> = code_spans(&markdown(&read("docs/CONFIGURATION.md")).0)
        .into_iter()
        .filter(|s| is_env_name(s))
        .collect();
    assert!(
        names.contains("DATABASE_URL") && names.contains("PORT") && names.len() > 40,
        "docs/CONFIGURATION.md: too few documented variables found: {names:?}"
    );
    names
}

/// The names of the sections (`[env]`, `[[vm]]`, …) of fly.toml with their `key = value` lines.
pub fn toml_sections(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut sections = vec![(String::new(), Vec::new())];
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            sections.push((line.to_string(), Vec::new()));
        } else if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().trim_matches('"').to_string();
            sections
                .last_mut()
                .expect("a section")
                .1
                .push((key.trim().to_string(), value));
        }
    }
    sections
}

pub fn toml_value<'a>(
    text: &'a [(String, Vec<(String, String)>)],
    section: &str,
    key: &str,
) -> &'a str {
    text.iter()
        .filter(|(name, _)| name == section)
        .flat_map(|(_, pairs)| pairs)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("deploy/fly.toml: no {key} in {section}"))
}

/// The YAML documents of kubernetes.yaml.
pub fn yaml_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().expect("a document");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs
}

/// The value of the first `key: value` line (any indentation) at or after `from`.
pub fn yaml_value_after<'a>(doc: &'a str, from: usize, key: &str) -> Option<&'a str> {
    doc[from..]
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

pub fn yaml_name(doc: &str) -> &str {
    let metadata = doc.find("\nmetadata:").expect("metadata");
    yaml_value_after(doc, metadata + 1, "name").expect("metadata.name")
}

/// Default of a variable from its row in docs/CONFIGURATION.md.
pub fn documented_default(name: &str) -> u64 {
    let doc = read("docs/CONFIGURATION.md");
    let row = doc
        .lines()
        .find(|l| l.starts_with(&format!("| `{name}` |")))
        .unwrap_or_else(|| panic!("docs/CONFIGURATION.md has no row for {name}"));
    row.split('|')
        .nth(2)
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or_else(|| panic!("no numeric default in {row:?}"))
}

pub fn seconds(value: &str) -> u64 {
    let value = value.trim().trim_matches('"');
    value
        .strip_suffix('s')
        .unwrap_or(value)
        .parse()
        .unwrap_or_else(|_| panic!("not a number of seconds: {value:?}"))
}

/// The subcommand of every `keel …` command line in `text`: in shell segments (code, comments,
/// `inline code`, quoted strings, exec-form arrays, `Exec…=` lines), after `keel` or `…bin/keel`.
pub fn keel_subcommands(text: &str, is_markdown: bool) -> Vec<(String, String)> {
    let mut lines: Vec<String> = Vec::new();
    if is_markdown {
        let (prose, code) = markdown(text);
        lines.extend(code);
        lines.extend(code_spans(&prose));
    } else {
        for line in logical_lines(text) {
            let line = line.trim().trim_start_matches('#').trim().to_string();
            lines.extend(code_spans(&line));
            // Exec-form arrays and quoted strings, as one command line each.
            if let Some(start) = line.find('[') {
                if let Some(items) = line[start..]
                    .find(']')
                    .and_then(|end| flow_items(&line[start..=start + end]))
                {
                    lines.push(items.join(" "));
                }
            }
            lines.extend(line.split('"').skip(1).step_by(2).map(str::to_string));
            match line.split_once('=') {
                Some((key, value)) if key.starts_with("Exec") => lines.push(value.to_string()),
                _ => lines.push(line),
            }
        }
    }

    let mut found = Vec::new();
    for line in &lines {
        let line = line.split(" #").next().unwrap_or_default();
        let segments = line
            .split("&&")
            .flat_map(|s| s.split("||"))
            .flat_map(|s| s.split(';'))
            .flat_map(|s| s.split('|'))
            .flat_map(|s| s.split("$("))
            .flat_map(|s| s.split(" -- "));
        for segment in segments {
            let words: Vec<&str> = segment
                .split_whitespace()
                .map(|w| w.trim_matches(|c| "`\"'()[]".contains(c)))
                .filter(|w| !w.is_empty())
                .collect();
            let first = words
                .iter()
                .position(|w| !(w.contains('=') || ["$", "-", "sudo", "exec", "env"].contains(w)));
            for (i, word) in words.iter().enumerate() {
                let is_keel = (Some(i) == first && *word == "keel") || word.ends_with("bin/keel");
                if !is_keel {
                    continue;
                }
                let next = words[i + 1..]
                    .iter()
                    .find(|w| !w.starts_with("--"))
                    .filter(|w| !w.starts_with('/') && **w != "\\");
                if let Some(next) = next {
                    found.push((segment.trim().to_string(), next.to_string()));
                }
            }
        }
    }
    found
}
