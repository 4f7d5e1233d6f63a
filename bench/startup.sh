#!/usr/bin/env bash
# Startup: time to ready and idle resident memory of `keel serve` after a cold start on SQLite,
# with every feature on. Each round starts the binary in a fresh directory (no database yet: the
# migrations run at start), as `APP_ENV=staging` with API, worker and scheduler in one process,
# RS256 tokens from a JWKS served locally, RevenueCat, Stripe and Whop webhooks, app events, the
# admin and metrics tokens, service tokens, sealed payloads, Sentry, a rate limit, an HTTP job kind
# and a schedule from keel.toml, JSON logs. Ready: the first 200 from /health/ready, polled every
# 2 ms, counted from the moment the process was started. Idle RSS: VmRSS once the process has been
# idle for IDLE_SECONDS after turning ready.
# Writes the section "## Startup: time to ready and idle memory" of docs/BENCHMARKS.md.
#
# Usage: bash bench/startup.sh
# Env:   ROUNDS (7), IDLE_SECONDS (5), KEEL_BIN (use this keel binary, skip the build),
#        BENCH_DOC (docs/BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
IDLE_SECONDS=${IDLE_SECONDS:-5}
BENCH_DOC=${BENCH_DOC:-docs/BENCHMARKS.md}

die() { echo "bench/startup.sh: $*" >&2; exit 1; }
for tool in python3 openssl curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
# shellcheck source=bench/keel_features.sh
source bench/keel_features.sh

RESULTS=()
for round in $(seq 1 "$ROUNDS"); do
  DIR="$WORK/round-$round"
  mkdir -p "$DIR"
  PORT=$(free_port)
  ready_ms=$(
    cd "$DIR"
    env -i PATH="$PATH" HOME="$DIR" "${ENV[@]}" PORT="$PORT" \
      DATABASE_URL="sqlite://$DIR/keel.db" STORAGE_URL="file://$DIR/objects" \
      python3 - "$KEEL_BIN" "$PORT" "$DIR/keel.log" "$DIR/pid" <<'PY'
import os, subprocess, sys, time, urllib.request
binary, port, log, pidfile = sys.argv[1:]
url = f"http://127.0.0.1:{port}/health/ready"
started = time.monotonic()
proc = subprocess.Popen([binary, "serve"], stdout=open(log, "w"), stderr=subprocess.STDOUT)
open(pidfile, "w").write(str(proc.pid))
while True:
    if proc.poll() is not None:
        sys.exit(f"keel serve exited with {proc.returncode}:\n" + open(log).read()[-3000:])
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                break
    except Exception:
        pass
    if time.monotonic() - started > 60:
        sys.exit("not ready within 60 s:\n" + open(log).read()[-3000:])
    time.sleep(0.002)
print(f"{(time.monotonic() - started) * 1000:.1f}")
PY
  ) || die "round $round: $ready_ms"
  PID=$(cat "$DIR/pid")
  PIDS+=("$PID")
  sleep "$IDLE_SECONDS"
  kill -0 "$PID" 2>/dev/null || die "round $round: keel serve ended while idle: $(tail -n 20 "$DIR/keel.log")"
  rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
  anon_kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$PID/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$PID/status")
  # The binary's executable mapping: how much of its machine code is resident, of how much.
  read -r code_kb code_size_kb < <(awk -v bin="$KEEL_BIN" '
    /^[0-9a-f]+-[0-9a-f]+ / { code = ($6 == bin && $2 ~ /x/); next }
    code && /^Size:/ { size += $2 }
    code && /^Rss:/ { rss += $2 }
    END { print rss + 0, size + 0 }' "/proc/$PID/smaps")
  kill -TERM "$PID"
  for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  echo "round $round: ready ${ready_ms} ms, idle RSS ${rss_kb} kB (anonymous ${anon_kb} kB), ${threads} threads" >&2
  grep -E '"level":"(WARN|ERROR)"' "$DIR/keel.log" | head -n 3 >&2 || true
  RESULTS+=("$ready_ms $rss_kb $threads $anon_kb $code_kb $code_size_kb")
done

export RESULTS_TEXT=$(printf '%s\n' "${RESULTS[@]}") ROUNDS IDLE_SECONDS BENCH_DOC
# How many of the functions crates/keel-cli/link-order.txt lists this binary has: the release link
# places those first (crates/keel-cli/build.rs); a code change, a dependency or a toolchain
# update renames some.
ORDER_FILE=crates/keel-cli/link-order.txt
LISTED=0 LINKED=0
if [[ -f $ORDER_FILE ]] && command -v nm >/dev/null; then
  LISTED=$(wc -l <"$ORDER_FILE")
  LINKED=$(nm "$KEEL_BIN" | awk 'NR == FNR { have[$NF] = 1; next } have[$0] { n++ } END { print n + 0 }' - "$ORDER_FILE")
fi
export LISTED LINKED
export NPROC=$(nproc) DATE=$(date -u +%Y-%m-%d) KEEL_VERSION=$("$KEEL_BIN" --version 2>/dev/null | head -n 1)
python3 - <<'PY'
import os, re, statistics as st
rows = [tuple(map(float, l.split())) for l in os.environ["RESULTS_TEXT"].splitlines() if l.strip()]
ready = st.median(r[0] for r in rows)
rss_mb = st.median(r[1] for r in rows) / 1024
anon_mb = st.median(r[3] for r in rows) / 1024
code_mb = st.median(r[4] for r in rows) / 1024
code_size_mb = st.median(r[5] for r in rows) / 1024
env = os.environ
per_round = "\n".join(f"| {i} | {r[0]:.1f} | {r[1] / 1024:.1f} | {r[3] / 1024:.1f} | {int(r[2])} |" for i, r in enumerate(rows, 1))
title = "## Startup: time to ready and idle memory"
section = f"""{title}

Measured {env['DATE']} on one machine with `nproc` = {env['NPROC']} ({env['KEEL_VERSION']}): `keel serve`
started {len(rows)} times, each in a fresh directory on a new SQLite database (the migrations run at
start), as `APP_ENV=staging` (production refuses a JWKS on plain http) with every feature on: API, worker and scheduler in one process;
RS256 tokens through a JWKS served locally; RevenueCat, Stripe and Whop webhooks; app events;
admin, metrics, service and scheduler tokens; sealed payloads; Sentry; a rate limit, an HTTP job
kind and a schedule from keel.toml; JSON logs. Ready: the first 200 from `/health/ready` (polled
every 2 ms) after the process started. Idle RSS: `VmRSS` after {env['IDLE_SECONDS']} s idle. Medians.

| measure | median | goal |
| --- | ---: | ---: |
| time to ready, cold start | {ready:.0f} ms | ≤ 100 ms |
| idle resident memory | {rss_mb:.1f} MB | ≤ 20 MB |
| of which anonymous (heap, stacks) | {anon_mb:.1f} MB | |
| of which the binary's machine code | {code_mb:.1f} MB of {code_size_mb:.1f} MB | |

The rest of the resident memory is file-backed: the pages of the `keel` binary (and the C
library) the process touched, clean and shared through the page cache (`RssFile` in
`/proc/PID/status`), most of it machine code (the executable mapping's `Rss` in
`/proc/PID/smaps`). The kernel maps a file's cached pages around each page a process touches (up
to 64 KiB at a time), so code spread over the binary leaves most of it resident though little of
it runs. The release link therefore places the functions a running `keel serve` uses (start-up,
idle, health, metrics, an authenticated request, a webhook: `crates/keel-cli/link-order.txt`,
written by `bash bench/link_order.sh`) together at the start of the code; this binary has
{env['LINKED']} of the {env['LISTED']} functions listed. Changes to the code (generic instances,
the link-time optimizer's names for local functions), dependencies or the toolchain rename some of
them: rerun `bench/link_order.sh` and commit the list when that count drops.

| round | ready ms | idle RSS MB | anonymous MB | threads |
| --- | ---: | ---: | ---: | ---: |
{per_round}

Command: `bash bench/startup.sh`
"""
import sys

sys.path.insert(0, "bench")
import doc_section  # noqa: E402

path = env["BENCH_DOC"]
doc_section.write(path, title, section)
print(f"ready {ready:.0f} ms, idle RSS {rss_mb:.1f} MB")
PY
echo "bench/startup.sh: wrote $BENCH_DOC" >&2
