#!/usr/bin/env bash
# HTTP job benchmark (see `keel bench http-jobs`): no-op jobs of an HTTP kind, POSTed signed to a
# receiver in the same process that answers 204, against no-op in-process Rust jobs in the same
# run, on a scratch Postgres database created for the run and dropped afterwards.
# Writes the section "## Jobs: HTTP kinds vs in-process Rust handlers" of docs/BENCHMARKS.md.
#
# Usage: bash bench/http_jobs.sh   Env: JOBS (20000), CONCURRENCY (50), ROUNDS (5), KEEL_BIN, BENCH_DOC,
#                                  PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-20000}
CONCURRENCY=${CONCURRENCY:-50}
ROUNDS=${ROUNDS:-5}
BENCH_DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [[ -z "${KEEL_BIN:-}" ]]; then
  cargo build --release -p keel-cli >&2
  KEEL_BIN=${CARGO_TARGET_DIR:-target}/release/keel
fi
DB=keel_bench_http_jobs_$$
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DB" >&2
trap 'psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB" >&2' EXIT
WORK=$(mktemp -d)
export DATABASE_URL="${PG_ADMIN_URL%/*}/$DB" LOG_LEVEL=warn
(cd "$WORK" && "$KEEL_BIN" migrate up >&2)
RESULT=$(cd "$WORK" && "$KEEL_BIN" bench http-jobs --jobs "$JOBS" --concurrency "$CONCURRENCY" --rounds "$ROUNDS" --json | tail -n 1)
echo "$RESULT" >&2
export RESULT BENCH_DOC NPROC=$(nproc) DATE=$(date -u +%Y-%m-%d)
export PG_VERSION=$(psql "$PG_ADMIN_URL" -tAc "SHOW server_version" | cut -d' ' -f1)
python3 - <<'PY'
import json, os, re
r = json.loads(os.environ["RESULT"])
title = "## Jobs: HTTP kinds vs in-process Rust handlers"
rows = "\n".join(
    f"| {i + 1} | {x['rust_jobs_per_s']:,.0f} | {x['http_jobs_per_s']:,.0f} | {x['http_jobs_per_s'] / x['rust_jobs_per_s']:.2f} |"
    for i, x in enumerate(r["rounds"])
)
section = f"""{title}

Measured {os.environ['DATE']} on one machine with `nproc` = {os.environ['NPROC']}, Postgres
{os.environ['PG_VERSION']} on the same machine: each round enqueues {r['jobs']} no-op jobs of a Rust
handler and has one worker of concurrency {r['concurrency']} drain them, then does the same with
{r['jobs']} jobs of an HTTP kind, each POSTed (JSON body, Standard Webhooks signature) to a receiver
in the same process that answers 204; jobs/s from the worker's start to the last completion
written. {len(r['rounds'])} rounds, medians.

| kind | jobs/s |
| --- | ---: |
| in-process Rust no-op | {r['rust_jobs_per_s']:,.0f} |
| HTTP no-op (signed POST, 204) | {r['http_jobs_per_s']:,.0f} |

HTTP jobs run at **{r['http_over_rust']:.2f}×** the rate of in-process jobs (the median of each
round's ratio); the receiver answered {r['deliveries']:,} deliveries. The receiver, the worker and Postgres
share the same {os.environ['NPROC']} cores, so the HTTP figure also pays for the app's side of each call (accepting
the connection's requests and answering them); a receiver on another machine adds its network
round trip instead.

| round | Rust jobs/s | HTTP jobs/s | ratio |
| --- | ---: | ---: | ---: |
{rows}

Command: `bash bench/http_jobs.sh`
"""
import sys

sys.path.insert(0, "bench")
import doc_section  # noqa: E402

path = os.environ["BENCH_DOC"]
doc_section.write(path, title, section)
PY
rm -rf "$WORK"
echo "bench/http_jobs.sh: wrote $BENCH_DOC" >&2
