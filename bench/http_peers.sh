#!/usr/bin/env bash
# HTTP against what users would pick instead: Keel's GET /v1/me (`keel bench http-serve`: the full
# edge stack, SQLite) against the same route in Express with jose and in Fastify with @fastify/jwt
# (bench/peers/http), all verifying one RS256 token against the same key, loaded by one external
# generator (wrk) with the same connections and duration, in alternating rounds; medians.
# Every server runs on the same cores (SERVER_CPUS, taskset); each peer is a Node cluster with one
# process per core there, as Keel runs one worker thread per core.
# Writes the section "## HTTP: Keel against Express and Fastify" of docs/BENCHMARKS.md.
#
# Usage: bash bench/http_peers.sh
# Env:   CONNECTIONS (64), BENCH_SECONDS (10), ROUNDS (5), WRK_THREADS (2),
#        SERVER_CPUS (0,1), LOAD_CPUS (SERVER_CPUS on a machine of 2 cores or fewer, else the
#        cores after the first two), PEER_WORKERS (the number of SERVER_CPUS),
#        KEEL_BIN (use this keel binary, skip the build), BENCH_DOC (docs/BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
SECONDS_PER_ROUND=${BENCH_SECONDS:-10}
ROUNDS=${ROUNDS:-5}
WRK_THREADS=${WRK_THREADS:-2}
BENCH_DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
PEER=bench/peers/http
NPROC=$(nproc)
SERVER_CPUS=${SERVER_CPUS:-0,1}
[[ "$NPROC" -ge 2 ]] || SERVER_CPUS=0
if [[ -z "${LOAD_CPUS:-}" ]]; then
  if [[ "$NPROC" -le 2 ]]; then LOAD_CPUS=$SERVER_CPUS; else LOAD_CPUS="2-$((NPROC - 1))"; fi
fi
PEER_WORKERS=${PEER_WORKERS:-$(taskset -c "$SERVER_CPUS" nproc)}

die() { echo "bench/http_peers.sh: $*" >&2; exit 1; }
for tool in node npm python3 taskset curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
if ! command -v wrk >/dev/null; then
  echo "bench/http_peers.sh: installing wrk" >&2
  { apt-get install -y wrk >&2 || sudo apt-get install -y wrk >&2; } || die "cannot install wrk (apt-get install wrk)"
fi

if [[ -z "${KEEL_BIN:-}" ]]; then
  cargo build --release -p keel-cli >&2 || die "cargo build --release -p keel-cli failed"
  KEEL_BIN=${CARGO_TARGET_DIR:-target}/release/keel
fi
[[ -x "$KEEL_BIN" ]] || die "no keel binary at $KEEL_BIN"
KEEL_BIN=$(realpath "$KEEL_BIN")

if [[ ! -d "$PEER/node_modules" ]]; then
  (cd "$PEER" && { npm ci --no-audit --no-fund >&2 || npm install --no-save --no-audit --no-fund >&2; }) \
    || die "npm install failed in $PEER"
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# (a) Keel, with a key generated for the run; it prints the URL, a token and the public key.
(cd "$WORK" && LOG_LEVEL=error exec taskset -c "$SERVER_CPUS" "$KEEL_BIN" bench http-serve >"$WORK/keel.json" 2>"$WORK/keel.err") &
PIDS+=($!)
KEEL_PID=$!
for _ in $(seq 1 600); do
  [[ -s "$WORK/keel.json" ]] && break
  kill -0 "$KEEL_PID" 2>/dev/null || die "keel bench http-serve ended: $(cat "$WORK/keel.err")"
  sleep 0.1
done
[[ -s "$WORK/keel.json" ]] || die "keel bench http-serve did not start within 60 s"
field() { python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]], end='')" "$WORK/keel.json" "$1"; }
KEEL_URL=$(field url)
TOKEN=$(field token)
ISSUER=$(field issuer)
AUDIENCE=$(field audience)
SUBJECT=$(field subject)
field public_key_pem >"$WORK/public.pem"

# (b) The peers, on the same cores, verifying the same token against the same key.
start_peer() {  # sets PEER_PID and PEER_URL
  local name=$1 port
  port=$(free_port)
  PORT=$port PUBLIC_KEY_FILE="$WORK/public.pem" ISSUER=$ISSUER AUDIENCE=$AUDIENCE WORKERS=$PEER_WORKERS \
    NODE_ENV=production taskset -c "$SERVER_CPUS" node "$PEER/$name.mjs" >"$WORK/$name.log" 2>&1 &
  PEER_PID=$!
  PIDS+=("$PEER_PID")
  PEER_URL="http://127.0.0.1:$port/v1/me"
}
start_peer express
EXPRESS_PID=$PEER_PID EXPRESS_URL=$PEER_URL
start_peer fastify
FASTIFY_PID=$PEER_PID FASTIFY_URL=$PEER_URL
# The token with one character of its signature changed.
FORGED=$(python3 -c "import sys; t=sys.argv[1]; i=len(t)-20; print(t[:i] + ('B' if t[i] == 'A' else 'A') + t[i+1:])" "$TOKEN")

# (c) Every server answers the token with the same subject, and refuses a bad one.
for target in "keel $KEEL_URL" "express $EXPRESS_URL" "fastify $FASTIFY_URL"; do
  read -r name url <<<"$target"
  ok=""
  for _ in $(seq 1 200); do
    body=$(curl -sf -H "Authorization: Bearer $TOKEN" "$url" 2>/dev/null) && { ok=1; break; }
    sleep 0.1
  done
  [[ -n "$ok" ]] || die "$name did not answer GET /v1/me with the token: $(tail -n 5 "$WORK/$name.log" "$WORK/$name.err" 2>/dev/null)"
  python3 -c "import json,sys; b=json.loads(sys.argv[1]); sys.exit(b.get('user_id') != sys.argv[2])" "$body" "$SUBJECT" \
    || die "$name answered $body, not the token's subject"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $FORGED" "$url")
  [[ "$code" == 401 ]] || die "$name answered $code to a token with a broken signature"
done

rss_kb() {  # the resident memory of a process and its children (a Node cluster's workers)
  local pid=$1
  ps -o rss= -p "$pid" --ppid "$pid" 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

# (d) Rounds: each server in turn, the order rotating every round; one warm-up run first.
NAMES=(keel express fastify)
URLS=("$KEEL_URL" "$EXPRESS_URL" "$FASTIFY_URL")
for i in 0 1 2; do
  taskset -c "$LOAD_CPUS" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s -H "Authorization: Bearer $TOKEN" "${URLS[$i]}" >/dev/null
done
for round in $(seq 1 "$ROUNDS"); do
  for k in 0 1 2; do
    i=$(( (round - 1 + k) % 3 ))
    echo "round $round/$ROUNDS: ${NAMES[$i]}" >&2
    taskset -c "$LOAD_CPUS" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" --latency \
      -H "Authorization: Bearer $TOKEN" "${URLS[$i]}" >"$WORK/${NAMES[$i]}.$round.wrk"
  done
done
KEEL_RSS=$(rss_kb "$KEEL_PID")
EXPRESS_RSS=$(rss_kb "$EXPRESS_PID")
FASTIFY_RSS=$(rss_kb "$FASTIFY_PID")

# (e) Report.
export WORK ROUNDS CONNECTIONS SECONDS_PER_ROUND WRK_THREADS BENCH_DOC NPROC SERVER_CPUS LOAD_CPUS PEER_WORKERS
export KEEL_RSS EXPRESS_RSS FASTIFY_RSS DATE=$(date -u +%Y-%m-%d)
export NODE_VERSION=$(node --version) WRK_VERSION=$(wrk --version 2>&1 | head -n 1 | awk '{print $2}')
export PEER_VERSIONS=$(cd "$PEER" && node -p "['express','jose','fastify','@fastify/jwt'].map(p => p + ' ' + require('./node_modules/' + p + '/package.json').version).join(', ')")
python3 - <<'PY'
import os, re, statistics as st

work = os.environ["WORK"]
rounds = int(os.environ["ROUNDS"])
UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}

def parse(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return float(m.group(1)) * UNIT[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "errors": errors}

labels = {"keel": "Keel `GET /v1/me`", "express": "Express + jose", "fastify": "Fastify + @fastify/jwt"}
rss = {"keel": os.environ["KEEL_RSS"], "express": os.environ["EXPRESS_RSS"], "fastify": os.environ["FASTIFY_RSS"]}
runs = {n: [parse(f"{work}/{n}.{r}.wrk") for r in range(1, rounds + 1)] for n in labels}
med = {n: {k: st.median(x[k] for x in rs) for k in ("rps", "p50", "p99")} | {"errors": sum(x["errors"] for x in rs)}
       for n, rs in runs.items()}
failed = {n: m["errors"] for n, m in med.items() if m["errors"]}
if failed:
    raise SystemExit(f"bench/http_peers.sh: answers other than 200 (wrk's non-2xx and socket errors): {failed}; nothing written")
faster = max(("express", "fastify"), key=lambda n: med[n]["rps"])
rps_ratio = med["keel"]["rps"] / med[faster]["rps"]
p99_ratio = med["keel"]["p99"] / med[faster]["p99"]
rows = "\n".join(
    f"| {labels[n]} | {m['rps']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['errors']} | {int(rss[n]) / 1024:.1f} |"
    for n, m in med.items()
)
per_round = "\n".join(
    f"| {r + 1} | " + " | ".join(f"{runs[n][r]['rps']:,.0f} / {runs[n][r]['p99']:.2f}" for n in labels) + " |"
    for r in range(rounds)
)
title = "## HTTP: Keel against Express and Fastify"
env = os.environ
section = f"""{title}

Measured {env['DATE']} on one machine with `nproc` = {env['NPROC']}: `GET /v1/me` with one valid RS256
token, the same for all three, verified against the same public key (Keel through its JWKS, the
peers from the PEM). Keel is `keel bench http-serve` (the full edge stack, SQLite; its rate limiter checks every
request under a policy far above what one machine sends, where the peers limit nothing); the peers are
bench/peers/http ({env['PEER_VERSIONS']}; Node {env['NODE_VERSION']}), each a cluster of
{env['PEER_WORKERS']} processes. Every server is pinned to cores `{env['SERVER_CPUS']}` (taskset); the load
generator, wrk {env['WRK_VERSION']} with {env['WRK_THREADS']} threads and {env['CONNECTIONS']} keep-alive connections, runs on
cores `{env['LOAD_CPUS']}`. {rounds} rounds of {env['SECONDS_PER_ROUND']} s per server, the order rotating each round;
medians. RSS is each server's resident memory after the runs (a cluster's processes summed).

| server | req/s | p50 ms | p99 ms | errors | RSS MB |
| --- | ---: | ---: | ---: | ---: | ---: |
{rows}

Keel / {labels[faster]} (the faster peer): **{rps_ratio:.2f}×** the requests per second, at
**{p99_ratio:.2f}×** its p99 latency (lower is better). Keel answers a repeated token from its
verified-token cache (keyed by a MAC of the token); neither peer caches a verification by default,
so each of their requests checks the RSA signature.

Each round, req/s / p99 ms:

| round | Keel | Express | Fastify |
| --- | ---: | ---: | ---: |
{per_round}

Command: `bash bench/http_peers.sh`
"""
import sys

sys.path.insert(0, "bench")
import doc_section  # noqa: E402

path = env["BENCH_DOC"]
doc_section.write(path, title, section)
print(f"Keel/{faster}: req/s {rps_ratio:.2f}x, p99 {p99_ratio:.2f}x")
PY
echo "bench/http_peers.sh: wrote $BENCH_DOC" >&2
