#!/usr/bin/env bash
# HTTP benchmark (see `keel bench http`): requests per second on one in-process server for a
# bare route (no edge stack), the same route behind Keel's full edge stack, and GET /v1/me with a
# valid RS256 token.
# Writes the section "## HTTP: authenticated route vs trivial route" of docs/BENCHMARKS.md.
#
# Usage: bash bench/http.sh      Env: CONNECTIONS (16), BENCH_SECONDS (3), ROUNDS (5), KEEL_BIN, BENCH_DOC,
#                                KEEL_BENCH_REDIS_URL (redis://127.0.0.1:6379: adds the limiter scenarios)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-16}
SECONDS_PER_ROUND=${BENCH_SECONDS:-3}
ROUNDS=${ROUNDS:-5}
BENCH_DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
if [[ -z "${KEEL_BIN:-}" ]]; then
  cargo build --release -p keel-cli >&2
  KEEL_BIN=${CARGO_TARGET_DIR:-target}/release/keel
fi
[[ -x "$KEEL_BIN" ]] || { echo "no keel binary at $KEEL_BIN" >&2; exit 1; }
KEEL_BIN=$(realpath "$KEEL_BIN")
export KEEL_BENCH_REDIS_URL=${KEEL_BENCH_REDIS_URL:-redis://127.0.0.1:6379}
RESULT=$("$KEEL_BIN" bench http --connections "$CONNECTIONS" --seconds "$SECONDS_PER_ROUND" --rounds "$ROUNDS" --json | tail -n 1)
echo "$RESULT"
export RESULT BENCH_DOC NPROC=$(nproc) DATE=$(date -u +%Y-%m-%d)
python3 - <<'PY'
import json, os, re
r = json.loads(os.environ["RESULT"])
title = "## HTTP: authenticated route vs trivial route"
rows = "\n".join(
    f"| {s['name']} | `{s['path']}` | {s['requests_per_s']:,.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['errors']} |"
    for s in r["scenarios"]
)
section = f"""{title}

Measured {os.environ['DATE']} on one machine with `nproc` = {os.environ['NPROC']}: one in-process Keel
on SQLite, {r['connections']} keep-alive connections from a client in the same process,
{r['rounds']} alternating rounds of {r['seconds_per_round']} s per scenario; medians. The bare
route is the same handler with no middleware on the same accept loop; the trivial route runs the
full edge stack (request id, limits and timeout, problem bodies, security headers, access log and
metrics, panic capture, rate limiting with the memory backend).

| scenario | path | req/s | p50 ms | p99 ms | errors |
| --- | --- | ---: | ---: | ---: | ---: |
{rows}

The full edge stack keeps **{r['edge_over_bare']:.0%}** of the bare route's throughput.
`GET /v1/me` with a valid RS256 token keeps **{r['me_over_trivial']:.0%}** of the trivial route's
throughput: a repeated token is answered from the verified-token cache (keyed by a MAC of the token), and
the user row from memory for a minute, so the hot path touches neither the signature nor the
database.

Command: `bash bench/http.sh`
"""
import sys

sys.path.insert(0, "bench")
import doc_section  # noqa: E402

path = os.environ["BENCH_DOC"]
doc_section.write(path, title, section)
PY
echo "bench/http.sh: wrote $BENCH_DOC" >&2
