#!/usr/bin/env bash
# What the latency phase of bench/queue.sh pays for its insert before Keel adds anything: the
# statement Keel enqueues a job with (one insert with its pg_notify, a durable commit: the
# INSERT_AND_NOTIFY of crates/keel-store/src/postgres/jobs.rs, its parameters written in; keep the
# two alike), sent by
# pgbench on one connection at 200 per second for 5 s, three times. Prints p50 and p99 of each
# run in ms. No section of its own: docs/BENCHMARKS.md quotes it under "Queue: what the figures
# rest on". The rows it inserts (queue `bench-floor`) are deleted at the end.
#
# Usage: DATABASE_URL=postgres://… bash bench/queue_insert_floor.sh   (a database Keel migrated;
#        a schema of its own in `options=-c search_path=…` works too)
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL to a database Keel has migrated}"
command -v pgbench >/dev/null || { echo "bench/queue_insert_floor.sh: pgbench is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'psql "$DATABASE_URL" -qXc "DELETE FROM jobs WHERE queue = '"'"'bench-floor'"'"'" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
cat >"$WORK/insert.sql" <<'SQL'
WITH ins AS (
    INSERT INTO jobs (queue, kind, args, state, priority, run_at, max_attempts, timeout_ms, breaker_key, created_at)
    SELECT q, k, a, s, p, r, m, t, b, now()
    FROM UNNEST(ARRAY['bench-floor'], ARRAY['bench.floor'], ARRAY['{"t_us":0}']::jsonb[], ARRAY['available'],
                ARRAY[0]::smallint[], ARRAY[now()], ARRAY[20], ARRAY[60000]::bigint[], ARRAY[NULL]::text[])
      AS u(q, k, a, s, p, r, m, t, b)
    RETURNING id, queue, state),
  notified AS (
    SELECT count(pg_notify('keel_jobs', q)) AS n FROM (SELECT DISTINCT queue AS q FROM ins WHERE state = 'available') s)
SELECT id FROM ins, notified ORDER BY id;
SQL
for run in 1 2 3; do
  (cd "$WORK" && pgbench -n -M prepared -c 1 -R 200 -T 5 -f insert.sql --log --log-prefix=run "$DATABASE_URL" >/dev/null 2>&1)
  # pgbench logs each transaction's time in µs (third field) from when it was due; its lag behind
  # that schedule (seventh field) is pgbench's own and is taken off.
  cat "$WORK"/run.* | awk '{print $3 - $7}' | sort -n |
    awk -v run="$run" '{v[NR]=$1} END {printf "run %d: %d inserts, p50 %.2f ms, p99 %.2f ms\n", run, NR, v[int(NR*0.5)]/1000, v[int(NR*0.99)]/1000}'
  rm -f "$WORK"/run.*
done
