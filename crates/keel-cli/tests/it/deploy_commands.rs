//! The `keel` command lines in `deploy/` and docs/SCALING.md use known subcommands, and
//! SCALING.md quotes the capacity figures of docs/BENCHMARKS.md as they stand.

use crate::deploy_support;

use std::collections::BTreeSet;

use deploy_support::*;

#[test]
fn every_keel_command_line_uses_a_known_subcommand() {
    // README's command section lists a subset of SUBCOMMANDS (SPEC §1 has the rest).
    let readme = read("README.md");
    let section = readme
        .split("## The command")
        .nth(1)
        .expect("README: ## The command")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let listed: BTreeSet<String> = markdown(section)
        .1
        .iter()
        .filter_map(|l| l.strip_prefix("keel "))
        .filter_map(|l| l.split([' ', '|']).next())
        .map(str::to_string)
        .collect();
    assert!(listed.len() >= 10, "README commands: {listed:?}");
    for name in &listed {
        assert!(
            SUBCOMMANDS.contains(&name.as_str()),
            "README lists `keel {name}`, unknown to this test"
        );
    }

    let mut seen = BTreeSet::new();
    let mut unknown = Vec::new();
    for &file in DEPLOY_FILES.iter().chain([&SCALING]) {
        for (line, sub) in keel_subcommands(&read(file), file.ends_with(".md")) {
            if !SUBCOMMANDS.contains(&sub.as_str()) {
                unknown.push(format!("{file}: {line}"));
            }
            seen.insert(sub);
        }
    }

    // Commands handed to the image's ENTRYPOINT (`keel`) start with the subcommand itself.
    let dockerfile = logical_lines(&read("deploy/Dockerfile"));
    let cmd = dockerfile
        .iter()
        .find_map(|l| l.trim().strip_prefix("CMD "))
        .and_then(flow_items)
        .expect("CMD in exec form");
    let fly = toml_sections(&read("deploy/fly.toml"));
    let mut implicit = vec![("deploy/Dockerfile CMD".to_string(), cmd.join(" "))];
    for (section, key) in [
        ("[processes]", "api"),
        ("[processes]", "worker"),
        ("[deploy]", "release_command"),
    ] {
        implicit.push((
            format!("deploy/fly.toml {key}"),
            toml_value(&fly, section, key).to_string(),
        ));
    }
    for line in read("deploy/kubernetes.yaml").lines() {
        if let Some(items) = line.trim().strip_prefix("args:").and_then(flow_items) {
            implicit.push(("deploy/kubernetes.yaml args".to_string(), items.join(" ")));
        }
    }
    for (place, command) in implicit {
        let sub = command.split_whitespace().next().unwrap_or_default();
        if !SUBCOMMANDS.contains(&sub) {
            unknown.push(format!("{place}: {command}"));
        }
        seen.insert(sub.to_string());
    }

    assert!(unknown.is_empty(), "unknown keel subcommands: {unknown:#?}");
    for expected in ["serve", "migrate", "smoke", "flags", "db"] {
        assert!(
            seen.contains(expected),
            "no `keel {expected}` found; the scan missed command lines: {seen:?}"
        );
    }
}

#[test]
fn scaling_quotes_the_capacity_figures_of_benchmarks_md() {
    let scaling = read(SCALING);
    let benchmarks = read("docs/BENCHMARKS.md");
    let section = scaling
        .split("\n## Capacity figures")
        .nth(1)
        .expect("docs/SCALING.md: ## Capacity figures")
        .split("\n## ")
        .next()
        .unwrap_or_default();

    // Every figure with a separator, a decimal point, % or × is quoted verbatim.
    let mut figures = Vec::new();
    let chars: Vec<char> = section.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len()
            && (chars[j].is_ascii_digit()
                || ((chars[j] == ',' || chars[j] == '.')
                    && chars.get(j + 1).is_some_and(char::is_ascii_digit)))
        {
            j += 1;
        }
        let number: String = chars[i..j].iter().collect();
        let suffix = chars.get(j).copied();
        if number.contains([',', '.']) || matches!(suffix, Some('%' | '×')) {
            let quoted = match suffix {
                Some(s @ ('%' | '×')) => format!("{number}{s}"),
                _ => number,
            };
            figures.push(quoted);
        }
        i = j.max(i + 1);
    }
    // The queue comparison (both processed medians and their ratio) and the HTTP table's two
    // ratios, as BENCHMARKS.md states them now.
    let queue_row = |system: &str| -> String {
        let row = benchmarks
            .lines()
            .find(|l| l.starts_with(&format!("| {system} (")))
            .unwrap_or_else(|| panic!("BENCHMARKS.md: no queue row for {system}"));
        row.split('|').nth(3).unwrap_or_default().trim().to_string()
    };
    let ratio = benchmarks
        .split("Keel/BullMQ: processed jobs/s ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("BENCHMARKS.md: the queue's ratio")
        .to_string();
    let mut required: Vec<String> = vec![queue_row("Keel"), queue_row("BullMQ"), ratio];
    required.extend(
        benchmarks
            .split("keeps **")
            .skip(1)
            .filter_map(|rest| rest.split_once("**").map(|(figure, _)| figure.to_string())),
    );
    for required in &required {
        assert!(
            figures.iter().any(|f| f == required),
            "SCALING.md does not quote {required}: {figures:?}"
        );
    }
    let missing: Vec<&String> = figures
        .iter()
        .filter(|f| !benchmarks.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "figures in SCALING.md's capacity section that docs/BENCHMARKS.md does not have \
         (re-quote them after a benchmark run): {missing:?}"
    );
    for command in ["bash bench/queue.sh", "bash bench/http.sh"] {
        assert!(section.contains(command), "SCALING.md: {command}");
    }
}
