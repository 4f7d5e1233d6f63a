#!/usr/bin/env bash
# Queue benchmark: Keel on Postgres vs BullMQ on Redis, same workload, same machine.
#
# Each system runs three phases in one go (see `keel bench queue` and bench/peers/bullmq/bench.mjs):
#   1. insert JOBS no-op jobs in batches                        -> insert jobs/s
#   2. a worker with concurrency 50 drains them                 -> processed jobs/s
#   3. idle running worker; enqueue one job at a time at 200/s
#      for 5 s; handler records start - enqueue time           -> p50 / p99 latency (ms)
# Writes the section "## Queue: Keel on Postgres vs BullMQ on Redis" of docs/BENCHMARKS.md
# (replacing it if present, keeping the rest of the file).
#
# Usage: bash bench/queue.sh
# Env:   JOBS (default 20000), ROUNDS (default 3), REDIS_URL (default redis://127.0.0.1:6379),
#        PG_URL (default postgres://postgres@127.0.0.1:5432/test), CARGO_TARGET_DIR,
#        KEEL_BIN (use this keel binary, skip the build), BENCH_DOC (default docs/BENCHMARKS.md)
set -euo pipefail

cd "$(dirname "$0")/.."
JOBS=${JOBS:-20000}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=50
RATE=200
LAT_SECONDS=5
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
# Keel's tables go to a schema of their own, so the benchmark leaves the database as it found it.
BENCH_SCHEMA=keel_bench
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
BENCH_DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
PEER=bench/peers/bullmq

die() { echo "bench/queue.sh: $*" >&2; exit 1; }
for tool in psql redis-cli node npm python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

# (a) Services.
PG_VERSION=$(psql "$PG_URL" -XtAc 'show server_version' 2>/dev/null) \
  || die "Postgres is not reachable at $PG_URL"
redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG \
  || die "Redis is not reachable at $REDIS_URL"
REDIS_VERSION=$(redis-cli -u "$REDIS_URL" info server | tr -d '\r' | sed -n 's/^redis_version://p')

# (b) Keel, release build.
if [[ -z "${KEEL_BIN:-}" ]]; then
  cargo build --release -p keel-cli >&2 || die "cargo build --release -p keel-cli failed"
  KEEL_BIN=${CARGO_TARGET_DIR:-target}/release/keel
fi
[[ -x "$KEEL_BIN" ]] || die "no keel binary at $KEEL_BIN"
KEEL_BIN=$(realpath "$KEEL_BIN")

# (c) BullMQ peer.
# `npm ci` refuses a lock that lacks optional per-platform packages the registry here does not
# serve (msgpackr-extract's darwin/win32 builds); `npm install --no-save` still installs the locked
# versions without rewriting the lock.
if [[ ! -d "$PEER/node_modules" ]]; then
  if [[ -f "$PEER/package-lock.json" ]]; then
    (cd "$PEER" && { npm ci >&2 2>/dev/null || npm install --no-save >&2; }) || die "npm install failed in $PEER"
  else
    (cd "$PEER" && npm install >&2) || die "npm install failed in $PEER"
  fi
fi

# (d) Runs: throughput and latency, Keel then BullMQ, alternating for ROUNDS rounds with the same
# numbers. This machine is shared and noisy; the report gives each round and the medians.
ARGS=(--jobs "$JOBS" --concurrency "$CONCURRENCY" --rate "$RATE" --seconds "$LAT_SECONDS")
psql "$PG_URL" -XqAc "CREATE SCHEMA IF NOT EXISTS $BENCH_SCHEMA" || die "cannot create schema $BENCH_SCHEMA"
KEEL_DB="$PG_URL?options=-c%20search_path%3D$BENCH_SCHEMA"
DATABASE_URL="$KEEL_DB" "$KEEL_BIN" migrate up >&2 || die "keel migrate up failed"
KEEL_JSON=""
BULLMQ_JSON=""
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS keel: ${ARGS[*]}" >&2
  line=$(DATABASE_URL="$KEEL_DB" timeout 1200 "$KEEL_BIN" bench queue "${ARGS[@]}" --json | tail -n 1) \
    || die "keel bench queue failed"
  echo "$line"
  KEEL_JSON+="$line"$'\n'
  echo "round $round/$ROUNDS bullmq: ${ARGS[*]}" >&2
  line=$(timeout 1200 node "$PEER/bench.mjs" "${ARGS[@]}" | tail -n 1) || die "bullmq bench failed"
  echo "$line"
  BULLMQ_JSON+="$line"$'\n'
done

# One more Keel run, traced: where an idle worker's insert-to-start time goes (its figures are not
# among the rounds above: the trace adds a listener of its own).
echo "breakdown keel: ${ARGS[*]} --breakdown" >&2
BREAKDOWN_JSON=$(DATABASE_URL="$KEEL_DB" timeout 1200 "$KEEL_BIN" bench queue "${ARGS[@]}" --breakdown --json | tail -n 1) \
  || die "keel bench queue --breakdown failed"
echo "$BREAKDOWN_JSON"

# (e) Report.
export JOBS ROUNDS KEEL_JSON BULLMQ_JSON BREAKDOWN_JSON BENCH_DOC PG_VERSION REDIS_VERSION
export NPROC=$(nproc) DATE=$(date -u +%Y-%m-%d)
export BULLMQ_VERSION=$(node -p "require('./$PEER/node_modules/bullmq/package.json').version")
python3 - <<'EOF'
import json, os, re, sys

import statistics

def runs(name):
    return [json.loads(l) for l in os.environ[name].splitlines() if l.strip()]

keel_runs, bull_runs = runs("KEEL_JSON"), runs("BULLMQ_JSON")
METRICS = ("insert_jobs_per_s", "processed_jobs_per_s", "latency_p50_ms", "latency_p99_ms")
for name, rs in (("keel", keel_runs), ("bullmq", bull_runs)):
    for r in rs:
        missing = [k for k in METRICS if r.get(k) is None]
        if missing:
            raise SystemExit(f"bench/queue.sh: {name} result lacks {missing}: {r}")
for k in ("jobs", "concurrency", "latency_rate"):
    values = {r.get(k) for r in keel_runs + bull_runs}
    if len(values) != 1:
        raise SystemExit(f"bench/queue.sh: runs differ in {k}: {values}")

def median(rs):
    out = dict(rs[0])
    for k in METRICS:
        out[k] = statistics.median(r[k] for r in rs)
    return out

keel, bull = median(keel_runs), median(bull_runs)

def ratio(a, b):
    return f"{a / b:.2f}×" if b else "n/a"

def row(label, r):
    return (f"| {label} | {r['insert_jobs_per_s']:,.0f} | {r['processed_jobs_per_s']:,.0f} "
            f"| {r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} |")

rounds = "\n".join(
    row(f"{i} | {label}", r)
    for i, (k, b) in enumerate(zip(keel_runs, bull_runs), 1)
    for label, r in (("Keel", k), ("BullMQ", b))
)
trace = json.loads(os.environ["BREAKDOWN_JSON"])
if not trace.get("breakdown"):
    raise SystemExit(f"bench/queue.sh: the traced run has no breakdown: {trace}")
stages = "\n".join(f"| {s['stage']} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} |" for s in trace["breakdown"])
cpus = [r["process_cpu"] for r in keel_runs if r.get("process_cpu")]
drain_cpu = ""
if len(cpus) == len(keel_runs):
    keel_us = statistics.median(c["keel_us"] for c in cpus)
    pg_us = statistics.median(c["postgres_us"] for c in cpus)
    drain_cpu = f"""
The drain's throughput is held by Postgres: CPU time per processed job, read from `/proc` during the
drain (medians), is {keel_us:,.1f} µs in the Keel process (worker, handlers, driver) and {pg_us:,.1f} µs in
Postgres (the claim and the outcome each write a new version of the job's row, with its index
entries), on {os.environ['NPROC']} shared cores.
"""
command = "bash bench/queue.sh" if os.environ["JOBS"] == "20000" else f"JOBS={os.environ['JOBS']} bash bench/queue.sh"
title = "## Queue: Keel on Postgres vs BullMQ on Redis"
section = f"""{title}

Measured {os.environ['DATE']} on one machine with `nproc` = {os.environ['NPROC']},
PostgreSQL {os.environ['PG_VERSION']}, Redis {os.environ['REDIS_VERSION']}, BullMQ {os.environ['BULLMQ_VERSION']}.
{keel['jobs']:,} no-op jobs inserted in batches, then drained by one worker with concurrency
{keel['concurrency']}; latency: one job at a time at {keel['latency_rate']} jobs/s to an idle running
worker ({keel['latency_jobs']} jobs for Keel, {bull['latency_jobs']} for BullMQ), start minus enqueue time.

Medians of {len(keel_runs)} alternating rounds:

| system | insert jobs/s | processed jobs/s | p50 ms | p99 ms |
| --- | ---: | ---: | ---: | ---: |
{row('Keel (Postgres)', keel)}
{row('BullMQ (Redis)', bull)}

Keel/BullMQ: processed jobs/s {ratio(keel['processed_jobs_per_s'], bull['processed_jobs_per_s'])},
p99 latency {ratio(keel['latency_p99_ms'], bull['latency_p99_ms'])} (higher is better for throughput, lower for latency).

Each round:

| round | system | insert jobs/s | processed jobs/s | p50 ms | p99 ms |
| --- | --- | ---: | ---: | ---: | ---: |
{rounds}

### Where the time goes

One more Keel run with `--breakdown` ({trace['latency_jobs']} jobs at {trace['latency_rate']} jobs/s, after the same
drain), each latency job observed on one clock: `t0` before its insert, `t1` when the insert (one
statement with its `pg_notify`, a durable commit) returned, `tn` when a listener of the benchmark's
own received the notification (the worker's listener gets the same message, sometimes first: the
stage after it can come out negative), `tc` when the runner
sent its claim (the `attempted_at` it writes), `ts` when the handler started.

| stage | p50 ms | p99 ms |
| --- | ---: | ---: |
{stages}

Postgres announces the job when its insert commits, so the notification arrives as the insert
returns: the durable commit (a WAL flush) is the insert's cost, and BullMQ's Redis here writes
nothing to disk. From the notification on, the worker's share is its wake-up and its claim, one
round trip (`FOR UPDATE SKIP LOCKED`, the outcomes of finished jobs written in the same statement),
then a task spawn. Pooled connections are pinged only after a second idle, so neither the insert nor
the claim pays a ping first; a wake-up reaches one claim lane with a free slot (a queue with 16 or
more slots has two), and a lane whose claim came back full wakes the other, so one new job costs one
claim statement.
{drain_cpu}
Command: `{command}`
"""

import sys

sys.path.insert(0, "bench")
import doc_section  # noqa: E402

path = os.environ["BENCH_DOC"]
doc_section.write(path, title, section)
print(f"bench/queue.sh: wrote {path}", file=sys.stderr)
EOF
