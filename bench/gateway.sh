#!/usr/bin/env bash
# Gateway benchmark: an authenticated GET through Keel's gateway, against nginx (Debian's package)
# with `auth_request` to Keel's `GET /v1/auth/check` in front of the same app, against the app
# directly. Same machine, same run, alternating rounds; the app is `keel bench upstream` (200 and
# a small JSON body at once), the load generator wrk (or oha).
# Writes the section "## Gateway: Keel in front of the app vs nginx + auth_request" of
# docs/BENCHMARKS.md.
#
# Usage: bash bench/gateway.sh
# Env: CONNECTIONS (64), BENCH_SECONDS (10), ROUNDS (3), THREADS (2, wrk's), KEEL_BIN, BENCH_DOC
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
SECONDS_PER_ROUND=${BENCH_SECONDS:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
BENCH_DOC=${BENCH_DOC:-docs/BENCHMARKS.md}

need() {
  command -v "$1" >/dev/null && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >&2
  else
    echo "$1 is missing: apt-get install $2" >&2
    return 1
  fi
}
need nginx nginx
if ! command -v wrk >/dev/null && ! command -v oha >/dev/null; then
  need wrk wrk
fi
LOADGEN=$(command -v wrk >/dev/null && echo wrk || echo oha)

if [[ -z "${KEEL_BIN:-}" ]]; then
  cargo build --release -p keel-cli >&2
  KEEL_BIN=${CARGO_TARGET_DIR:-target}/release/keel
fi
[[ -x "$KEEL_BIN" ]] || { echo "no keel binary at $KEEL_BIN" >&2; exit 1; }
KEEL_BIN=$(realpath "$KEEL_BIN")

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not answer" >&2
  exit 1
}
UP_PORT=$(free_port); KEEL_PORT=$(free_port); NGINX_PORT=$(free_port)

# The app.
"$KEEL_BIN" bench upstream --port "$UP_PORT" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$UP_PORT/"

# Keel: the gateway in front of the app, and the forward-auth endpoint nginx asks. The default
# rate-limit policy is raised out of the way for both.
SECRET=gateway-bench-hs256-secret-0123456789abcdef
cat >"$WORK/keel.toml" <<'TOML'
[[rate_limits]]
name = "default"
limit = 1000000
period = "1s"
TOML
(
  cd "$WORK"
  env -i PATH="$PATH" PORT="$KEEL_PORT" DATABASE_URL="sqlite://$WORK/keel.db" \
    AUTH_HS256_SECRET="$SECRET" UPSTREAM_URL="http://127.0.0.1:$UP_PORT" LOG_LEVEL=warn \
    "$KEEL_BIN" serve >"$WORK/keel.log" 2>&1
) &
PIDS+=($!)
wait_for "http://127.0.0.1:$KEEL_PORT/health/ready"

TOKEN=$(SECRET="$SECRET" python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
claims = b64(json.dumps({"sub": "bench-user", "exp": int(time.time()) + 86400}).encode())
mac = hmac.new(os.environ["SECRET"].encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
print(f"{head}.{claims}.{b64(mac)}")
PY
)

# nginx: auth_request to Keel, the identity it answers passed to the app, keep-alive both ways.
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
error_log $WORK/nginx/logs/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  upstream app { server 127.0.0.1:$UP_PORT; keepalive 256; }
  upstream keel { server 127.0.0.1:$KEEL_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /_auth {
      internal;
      proxy_pass http://keel/v1/auth/check;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
    }
    location / {
      auth_request /_auth;
      auth_request_set \$user_id \$upstream_http_x_user_id;
      auth_request_set \$tenant_id \$upstream_http_x_tenant_id;
      auth_request_set \$entitlements \$upstream_http_x_entitlements;
      proxy_set_header x-user-id \$user_id;
      proxy_set_header x-tenant-id \$tenant_id;
      proxy_set_header x-entitlements \$entitlements;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
  }
}
NGINX
nginx -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
# nginx answers 401 without a token, so wait for the port rather than a 200.
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break
  sleep 0.1
done

check() { # NAME URL: the authenticated GET answers 200 with the app's body
  local body
  body=$(curl -fsS -H "authorization: Bearer $TOKEN" "$2") || { echo "$1: $2 failed" >&2; exit 1; }
  [[ "$body" == '{"ok":true}' ]] || { echo "$1 answered $body" >&2; exit 1; }
}
check app "http://127.0.0.1:$UP_PORT/api/items"
check keel "http://127.0.0.1:$KEEL_PORT/api/items"
check nginx "http://127.0.0.1:$NGINX_PORT/api/items"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$KEEL_PORT/api/items") == 401 ]] \
  || { echo "keel let a request without a token through" >&2; exit 1; }

run() { # URL -> "requests_per_s p50_ms p99_ms errors"
  if [[ $LOADGEN == wrk ]]; then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" --latency \
      -H "authorization: Bearer $TOKEN" "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(\w+)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
count = (int(errors.group(1)) if errors else 0) + (sum(map(int, socket.groups())) if socket else 0)
print(rps, p50, p99, count)'
  else
    oha -z "${SECONDS_PER_ROUND}s" -c "$CONNECTIONS" --no-tui -j \
      -H "authorization: Bearer $TOKEN" "$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)
codes = r.get("statusCodeDistribution", {})
errors = sum(n for code, n in codes.items() if code != "200") + sum(r.get("errorDistribution", {}).values())
p = r["latencyPercentiles"]
print(r["summary"]["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000, errors)'
  fi
}

declare -A URL=(
  [app]="http://127.0.0.1:$UP_PORT/api/items"
  [keel]="http://127.0.0.1:$KEEL_PORT/api/items"
  [nginx]="http://127.0.0.1:$NGINX_PORT/api/items"
)
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  for name in app keel nginx; do
    echo "round $round: $name" >&2
    echo "$name $(run "${URL[$name]}")" | tee -a "$WORK/results" >&2
  done
done

export RESULTS_FILE="$WORK/results" BENCH_DOC CONNECTIONS SECONDS_PER_ROUND ROUNDS LOADGEN \
  NPROC=$(nproc) DATE=$(date -u +%Y-%m-%d) NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*nginx\///')
python3 - <<'PY'
import os, re, statistics
rows = {}
for line in open(os.environ["RESULTS_FILE"]):
    name, rps, p50, p99, errors = line.split()
    rows.setdefault(name, []).append((float(rps), float(p50), float(p99), int(errors)))
med = {n: [statistics.median(c) for c in zip(*r)] for n, r in rows.items()}
labels = {
    "app": "the app directly (no authentication)",
    "keel": "Keel's gateway (token verified, identity headers)",
    "nginx": f"nginx {os.environ['NGINX_VERSION']} + auth_request to Keel's /v1/auth/check",
}
table = "\n".join(
    f"| {labels[n]} | {med[n][0]:,.0f} | {med[n][1]:.2f} | {med[n][2]:.2f} | {int(sum(r[3] for r in rows[n]))} |"
    for n in ("app", "keel", "nginx")
)
ratio = med["keel"][0] / med["nginx"][0]
title = "## Gateway: Keel in front of the app vs nginx + auth_request"
section = f"""{title}

Measured {os.environ['DATE']} on one machine with `nproc` = {os.environ['NPROC']}: an authenticated
`GET /api/items` (HS256 bearer token, the same one throughout) through Keel's gateway, through
nginx with `auth_request` to Keel's `GET /v1/auth/check` (keep-alive to Keel and to the app,
the identity headers passed on), and to the app directly. The app is `keel bench upstream`;
Keel runs on SQLite with `LOG_LEVEL=warn` and the default rate-limit policy raised out of the way
(both paths count each request); nginx runs `worker_processes auto` without an access log.
{os.environ['LOADGEN']}, {os.environ['CONNECTIONS']} keep-alive connections,
{os.environ['ROUNDS']} alternating rounds of {os.environ['SECONDS_PER_ROUND']} s per target; medians.

| target | req/s | p50 ms | p99 ms | errors |
| --- | ---: | ---: | ---: | ---: |
{table}

Keel's gateway serves **{ratio:.2f}×** the requests per second of nginx + auth_request, at a p99
of {med['keel'][2]:.2f} ms against {med['nginx'][2]:.2f} ms.

Command: `bash bench/gateway.sh`
"""
import sys

sys.path.insert(0, "bench")
import doc_section  # noqa: E402

path = os.environ["BENCH_DOC"]
doc_section.write(path, title, section)
print(section)
PY
