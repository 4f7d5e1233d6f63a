#!/usr/bin/env bash
# Webhook ingestion benchmark (see `keel bench webhooks`): signed RevenueCat webhooks through the
# HTTP API into Postgres, beside single-job inserts measured in the same run, on a scratch
# database created for the run and dropped afterwards.
# Writes the section "## Webhooks: signed RevenueCat ingestion on Postgres" of docs/BENCHMARKS.md.
#
# Usage: bash bench/webhooks.sh   Env: EVENTS (5000), CONCURRENCY (16), ROUNDS (3), KEEL_BIN, BENCH_DOC,
#                                 PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-5000}
CONCURRENCY=${CONCURRENCY:-16}
ROUNDS=${ROUNDS:-3}
BENCH_DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [[ -z "${KEEL_BIN:-}" ]]; then
  cargo build --release -p keel-cli >&2
  KEEL_BIN=${CARGO_TARGET_DIR:-target}/release/keel
fi
# The binary runs from a scratch directory: resolve a relative path (KEEL_BIN or CARGO_TARGET_DIR)
# against the repository first.
[[ -x "$KEEL_BIN" ]] || { echo "no keel binary at $KEEL_BIN" >&2; exit 1; }
KEEL_BIN=$(realpath "$KEEL_BIN")
DB=keel_bench_webhooks_$$
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DB" >&2
WORK=$(mktemp -d)
trap 'psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB" >&2; rm -rf "$WORK"' EXIT
export DATABASE_URL="${PG_ADMIN_URL%/*}/$DB" LOG_LEVEL=warn
(cd "$WORK" && "$KEEL_BIN" migrate up >&2)
RESULTS=()
for round in $(seq 1 "$ROUNDS"); do
  R=$(cd "$WORK" && "$KEEL_BIN" bench webhooks --events "$EVENTS" --concurrency "$CONCURRENCY" --json | tail -n 1)
  echo "round $round: $R" >&2
  RESULTS+=("$R")
done
export RESULTS_JSON="[$(IFS=,; echo "${RESULTS[*]}")]" BENCH_DOC NPROC=$(nproc) DATE=$(date -u +%Y-%m-%d)
export PG_VERSION=$(psql "$PG_ADMIN_URL" -tAc "SHOW server_version" | cut -d' ' -f1)
python3 - <<'PY'
import json, os, re, statistics as st
rs = json.loads(os.environ["RESULTS_JSON"])
med = lambda k: st.median(r[k] for r in rs)
r0 = rs[0]
title = "## Webhooks: signed RevenueCat ingestion on Postgres"
cpu = lambda key, side: st.median(r[key][side] for r in rs) if all(r.get(key) for r in rs) else None
wk, wp, ck, cp = (cpu("webhook_cpu", "keel_us"), cpu("webhook_cpu", "postgres_us"),
                  cpu("row_commit_cpu", "keel_us"), cpu("row_commit_cpu", "postgres_us"))
cpu_text = "" if wp is None else f"""
Where the time goes: CPU time per unit of work, read from `/proc` during each phase (medians), this
process (HTTP client and server, Keel, the driver) against every `postgres` process. Both share the
machine's {os.environ['NPROC']} cores, so the phase with more CPU per unit gets fewer units per second.

| per unit | Keel process µs | Postgres µs |
| --- | ---: | ---: |
| signed webhook | {wk:,.0f} | {wp:,.0f} |
| one-row transaction | {ck:,.0f} | {cp:,.0f} |

A webhook costs Postgres **{wp / max(cp, 1):.1f}×** the CPU of a one-row transaction: four rows
written with their indexes (the event with its sealed payload, the link, the subscription, the audit
row) and a recursive lookup, where the one-row transaction writes one. The round trips are not where
the time goes: reaching 80% of the one-row rate would take writing about one row per webhook
before answering, and applying the rest after.
"""
section = f"""{title}

Measured {os.environ['DATE']} on one machine with `nproc` = {os.environ['NPROC']}, Postgres
{os.environ['PG_VERSION']} on the same machine: {r0['events']} distinct INITIAL_PURCHASE events from
{r0['concurrency']} concurrent connections to an in-process API, then {r0['events']} single-job
inserts and {r0['events']} one-row transactions from {r0['concurrency']} concurrent tasks each, in the same run;
{len(rs)} rounds, medians.

| measure | per second | p50 ms | p99 ms |
| --- | ---: | ---: | ---: |
| signed webhook ingested (auth, parse, seal, store, apply, audit, commit) | {med('webhooks_per_s'):,.0f} | {med('webhook_p50_ms'):.2f} | {med('webhook_p99_ms'):.2f} |
| job insert (one per transaction) | {med('job_inserts_per_s'):,.0f} | | |
| one-row transaction (`BEGIN`, an audit row, `COMMIT`) | {med('row_commits_per_s'):,.0f} | | |

Webhooks reach **{med('webhooks_over_row_commits'):.0%}** of the one-row transactions' rate, the
limit of one durable commit each, and **{med('webhooks_over_job_inserts'):.2f}×** the job inserts'
rate (a job insert also sends `pg_notify`, and Postgres serializes the commits of notifying
transactions, so concurrent job inserts share fewer WAL flushes).
A webhook is one transaction of four round trips: `BEGIN`; the per-subject advisory locks in one
statement; one statement that stores the event row with its sealed payload and, only when that row
is new, the alias links (one `unnest` insert), the subscription upsert that keeps the newest state
(its owner found by following later transfers in a recursive CTE) and the audit row; `COMMIT`. A job
insert is one statement in its own commit. Pooled connections are pinged only after a second idle,
not on every checkout. Errors across all rounds: {sum(r['errors'] for r in rs)}.
{cpu_text}

Command: `bash bench/webhooks.sh`
"""
import sys

sys.path.insert(0, "bench")
import doc_section  # noqa: E402

path = os.environ["BENCH_DOC"]
doc_section.write(path, title, section)
PY

echo "bench/webhooks.sh: wrote $BENCH_DOC" >&2
