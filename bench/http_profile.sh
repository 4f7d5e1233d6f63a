#!/usr/bin/env bash
# Where a request's time goes on the server: `keel bench http-serve` runs under callgrind, wrk
# sends the bare route (no edge stack), the trivial route (full edge stack) and GET /v1/me for a
# few seconds each with instrumentation on, and the instructions per request are split by stage
# (the edge stack's share is the trivial route's less the bare route's). Instruction counts are the same on a quiet or a
# loaded machine, so this explains the throughput figures of bench/http.sh without timing
# anything.
# Writes the section "## HTTP: where a request's instructions go" of docs/BENCHMARKS.md.
#
# Usage: bash bench/http_profile.sh   Env: KEEL_BIN, BENCH_DOC, PROFILE_SECONDS (6)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_DOC=${BENCH_DOC:-docs/BENCHMARKS.md}
PROFILE_SECONDS=${PROFILE_SECONDS:-6}
for tool in valgrind callgrind_control callgrind_annotate wrk python3; do
  command -v "$tool" >/dev/null || { echo "bench/http_profile.sh: $tool is not installed" >&2; exit 1; }
done
if [[ -z "${KEEL_BIN:-}" ]]; then
  cargo build --release -p keel-cli >&2
  KEEL_BIN=${CARGO_TARGET_DIR:-target}/release/keel
fi
[[ -x "$KEEL_BIN" ]] || { echo "no keel binary at $KEEL_BIN" >&2; exit 1; }
KEEL_BIN=$(realpath "$KEEL_BIN")
WORK=$(mktemp -d)
VPID=""
cleanup() {
  [[ -n "$VPID" ]] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
  "$KEEL_BIN" bench http-serve --json >"$WORK/serving.json" 2>"$WORK/serve.log" &
VPID=$!
# Under callgrind the run's RSA key takes a while to generate.
for _ in $(seq 1 300); do
  [[ -s "$WORK/serving.json" ]] && break
  kill -0 "$VPID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 1
done
[[ -s "$WORK/serving.json" ]] || { echo "keel bench http-serve did not start" >&2; exit 1; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/serving.json" "$1"; }
ME_URL=$(field url)
TOKEN=$(field token)
TRIVIAL_URL=${ME_URL%/v1/me}/bench/trivial
BARE_URL=$(field bare_url)

# profile NAME URL [wrk option…]: the instructions while wrk sends URL, and how many requests it
# sent, into $WORK/NAME.txt and $WORK/NAME.requests.
profile() {
  local name=$1 url=$2
  shift 2
  wrk -t1 -c4 -d2s "$@" "$url" >/dev/null
  callgrind_control -z "$VPID" >/dev/null 2>&1
  callgrind_control -i on "$VPID" >/dev/null 2>&1
  wrk -t1 -c4 -d"${PROFILE_SECONDS}s" "$@" "$url" | awk '/requests in/ {print $1}' >"$WORK/$name.requests"
  callgrind_control -i off "$VPID" >/dev/null 2>&1
  callgrind_control --dump="$name" "$VPID" >/dev/null 2>&1
  local dump
  dump=$(ls -v "$WORK"/cg.out.* | tail -n 1)
  callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$WORK/$name.txt" 2>/dev/null
}
profile bare "$BARE_URL"
profile trivial "$TRIVIAL_URL"
profile me "$ME_URL" -H "Authorization: Bearer $TOKEN"
kill "$VPID"; wait "$VPID" 2>/dev/null || true; VPID=""

export WORK BENCH_DOC NPROC=$(nproc) DATE=$(date -u +%Y-%m-%d)
python3 - <<'PY'
import os, re
work = os.environ["WORK"]

def load(name):
    """Inclusive instructions by function, and the requests sent, of one profile."""
    requests = int(open(f"{work}/{name}.requests").read().split()[0])
    costs, total = {}, 0
    for line in open(f"{work}/{name}.txt"):
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        n, fn = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in fn:
            total = n
        else:
            costs.setdefault(fn, n)
    return requests, costs, total

def per_request(profile, fragment=None):
    """Inclusive instructions per request of the first function whose name holds `fragment`
    (of the whole server without one)."""
    requests, costs, total = profile
    if fragment is None:
        return total / requests
    return next((n for fn, n in costs.items() if fragment in fn), 0) / requests

bare, trivial, me = load("bare"), load("trivial"), load("me")
requests = trivial[0]
stages = [
    ("the bare route's whole server (accept loop, HTTP/1.1, routing, the handler)", per_request(bare)),
    ("the whole server (accept loop, HTTP/1.1, the stack, the handler)", per_request(trivial)),
    ("the edge stack's share: the whole server, less the bare route's", per_request(trivial) - per_request(bare)),
    ("reading the socket and parsing the request head (hyper)", per_request(trivial, "Conn<I,B,T>::poll_read_head")),
    ("writing the answer's head (hyper)", per_request(trivial, "Conn<I,B,T>::write_head")),
    ("the service: edge stack, routing and handler", per_request(trivial, "Oneshot<S,Req> as core::future::future::Future>::poll")),
    ("of which routing (axum's router)", per_request(trivial, "PathRouter<S,_>::call_with_state")),
    # The limiter's call is inlined into whichever wrapper the compiler picks; its parts are not.
    ("of which rate limiting (policy lookup, key, memory backend, header values)", sum(
        per_request(trivial, f"keel::{part} [") for part in (
            "ratelimit::policy::Policies::for_route", "http::middleware::rate_limit::key_now",
            "ratelimit::RateLimiter::check_now", "http::middleware::rate_limit::headers"))),
    ("of which security headers", per_request(trivial, "middleware::security::apply")),
    ("of which access log and metrics", per_request(trivial, "middleware::access_log::record")),
    ("allocator (malloc and free, everywhere)", per_request(trivial, "malloc.c:malloc ") + per_request(trivial, "malloc.c:free ")),
]
me_stages = [
    ("the whole server", per_request(me)),
    ("the token: read from the header, found in the verified-token cache", per_request(me, "Verifier::verify_uncounted")),
    ("the answer's JSON", per_request(me, "Json<T> as axum_core::response::into_response::IntoResponse>::into_response")),
]
rows = "\n".join(f"| {label} | {n:,.0f} |" for label, n in stages)
me_rows = "\n".join(f"| {label} | {n:,.0f} |" for label, n in me_stages)
title = "## HTTP: where a request's instructions go"
section = f"""{title}

Measured {os.environ['DATE']} on one machine with `nproc` = {os.environ['NPROC']}: `keel bench http-serve`
(the instance `bench/http.sh` measures) under callgrind, {requests:,} requests to the trivial route
(full edge stack, rate limit on the memory backend) and {bare[0]:,} to the bare route (the same
handler with no edge stack, on the same accept loop) from wrk over 4 keep-alive connections, with
instrumentation on only while they ran. Instructions per request, inclusive (a stage counts what it
calls); callgrind counts instructions, not time, so the figures hold on a loaded machine too.

| stage | instructions per request |
| --- | ---: |
{rows}

`GET /v1/me` with a valid RS256 token, {me[0]:,} requests the same way:

| stage | instructions per request |
| --- | ---: |
{me_rows}

The socket is read into hyper's buffer as it is, without zeroing it first (`http/conn_io.rs`): the
zeroing cost about 16,000 instructions a request, a third of the server's work, before 2026-12-03.
The verified-token cache is keyed by a SipHash-2-4 MAC of the token; its SHA-256 cost about 19,000
instructions a request for an RS256 token before then.

Command: `bash bench/http_profile.sh`
"""
import sys

sys.path.insert(0, "bench")
import doc_section  # noqa: E402

path = os.environ["BENCH_DOC"]
doc_section.write(path, title, section)
PY
echo "bench/http_profile.sh: wrote $BENCH_DOC" >&2
