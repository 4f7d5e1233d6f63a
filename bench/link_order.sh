#!/usr/bin/env bash
# The link order of the release binary's functions: `keel serve` with every feature on (as
# bench/startup.sh runs it) starts under callgrind on a new SQLite database, answers a health
# check, a metrics scrape, `GET /v1/me` with an RS256 token and a signed RevenueCat webhook, idles,
# and stops. Every function of the binary that ran is written to crates/keel-cli/link-order.txt,
# hottest first; the release link (crates/keel-cli/build.rs) places them together at the start of
# the code, so the pages a running process touches hold little code it never runs.
#
# Usage: bash bench/link_order.sh
# Env:   KEEL_BIN (use this keel binary, skip the build), IDLE_SECONDS (5),
#        ORDER_FILE (crates/keel-cli/link-order.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE_SECONDS=${IDLE_SECONDS:-5}
ORDER_FILE=${ORDER_FILE:-crates/keel-cli/link-order.txt}

die() { echo "bench/link_order.sh: $*" >&2; exit 1; }
for tool in valgrind python3 openssl curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
# shellcheck source=bench/keel_features.sh
source bench/keel_features.sh

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
rs256_token() {
  local now header payload
  now=$(date +%s)
  header=$(printf '{"alg":"RS256","typ":"JWT","kid":"startup"}' | b64url)
  payload=$(printf '{"iss":"https://issuer.example/","aud":"keel-startup","sub":"user_order","iat":%d,"exp":%d}' \
    "$now" "$((now + 3600))" | b64url)
  printf '%s.%s.%s' "$header" "$payload" \
    "$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$WORK/rsa.pem" -binary | b64url)"
}
env_value() {
  local entry
  for entry in "${ENV[@]}"; do [[ $entry == "$1="* ]] && { echo "${entry#*=}"; return; }; done
  die "$1 is not in the environment of bench/keel_features.sh"
}

DIR="$WORK/run"
mkdir -p "$DIR"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
RUN_ENV=("${ENV[@]}" PORT="$PORT" DATABASE_URL="sqlite://$DIR/keel.db" STORAGE_URL="file://$DIR/objects")
(
  cd "$DIR"
  exec env -i PATH="$PATH" HOME="$DIR" "${RUN_ENV[@]}" \
    valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$WORK/callgrind.out" "$KEEL_BIN" serve >"$DIR/keel.log" 2>&1
) &
VPID=$!
PIDS+=("$VPID")
for _ in $(seq 1 1200); do
  curl -sf "$BASE/health/ready" >/dev/null 2>&1 && break
  kill -0 "$VPID" 2>/dev/null || die "keel serve ended: $(tail -n 20 "$DIR/keel.log")"
  sleep 0.25
done
curl -sf "$BASE/health/ready" >/dev/null || die "keel serve not ready under callgrind within 300 s"

curl -sf "$BASE/health" >/dev/null || die "GET /health failed"
curl -sf -H "authorization: Bearer $(env_value METRICS_TOKEN)" "$BASE/metrics" >/dev/null \
  || die "GET /metrics failed"
TOKEN=$(rs256_token)
for _ in 1 2 3; do
  curl -sf -H "authorization: Bearer $TOKEN" "$BASE/v1/me" >/dev/null || die "GET /v1/me failed"
done
env -i PATH="$PATH" HOME="$DIR" "${RUN_ENV[@]}" "$KEEL_BIN" dev webhook revenuecat \
  --event INITIAL_PURCHASE --user user_order --url "$BASE" >/dev/null \
  || die "the sample RevenueCat webhook was not accepted"
sleep "$IDLE_SECONDS"
kill -TERM "$VPID"
wait "$VPID" || true
[[ -s "$WORK/callgrind.out" ]] || die "callgrind wrote no profile"

python3 - "$WORK/callgrind.out" "$KEEL_BIN" "$ORDER_FILE" <<'PY'
import collections, sys
profile, binary, order_file = sys.argv[1:]
cost = collections.Counter()
in_binary, fn, call_line = False, None, False
with open(profile) as f:
    for line in f:
        if line.startswith("ob="):
            in_binary = line[3:].strip() == binary
        elif line.startswith("fn="):
            # callgrind names a recursion level of a function `name'2`, `name'3`, ...
            fn = line[3:].strip().split("'")[0] if in_binary else None
            if fn:
                cost[fn] += 0
        elif line.startswith("calls="):
            call_line = True  # the next cost line is the call's inclusive cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            if fn and not call_line:
                parts = line.split()
                cost[fn] += int(parts[1]) if len(parts) > 1 else 0
            call_line = False
names = [name for name, _ in sorted(cost.items(), key=lambda kv: (-kv[1], kv[0]))]
with open(order_file, "w") as out:
    out.write("\n".join(names) + "\n")
print(f"{len(names)} functions of the binary ran; their order is in {order_file}", file=sys.stderr)
PY
