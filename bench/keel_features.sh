# Sourced by bench/startup.sh and bench/link_order.sh (after their die() and tool checks): `keel
# serve` with every feature on. Resolves KEEL_BIN (the release build unless it is set), makes WORK
# (a scratch directory) and PIDS (processes stopped, and WORK removed, on exit), serves a JWKS with
# an RSA key of the run's own on a local port, writes "$WORK/keel.toml" and sets ENV, the
# environment of one instance (PORT, DATABASE_URL and STORAGE_URL are the caller's).

if [[ -z "${KEEL_BIN:-}" ]]; then
  cargo build --release -p keel-cli >&2 || die "cargo build --release -p keel-cli failed"
  KEEL_BIN=${CARGO_TARGET_DIR:-target}/release/keel
fi
[[ -x "$KEEL_BIN" ]] || die "no keel binary at $KEEL_BIN"
KEEL_BIN=$(realpath "$KEEL_BIN")

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' ; }
whsec() { echo "whsec_$(head -c 24 /dev/urandom | base64)"; }  # 24 bytes: base64 without padding

# A JWKS with an RSA key of the run's own, served on a local port.
openssl genrsa -out "$WORK/rsa.pem" 2048 2>/dev/null || die "openssl cannot generate a key"
MODULUS=$(openssl rsa -in "$WORK/rsa.pem" -noout -modulus | cut -d= -f2)
mkdir -p "$WORK/jwks/.well-known"
python3 - "$MODULUS" >"$WORK/jwks/.well-known/jwks.json" <<'PY'
import base64, json, sys
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
n = bytes.fromhex(sys.argv[1])
print(json.dumps({"keys": [{"kty": "RSA", "kid": "startup", "use": "sig", "alg": "RS256",
                            "n": b64(n), "e": b64((65537).to_bytes(3, "big"))}]}))
PY
JWKS_PORT=$(free_port)
python3 -m http.server "$JWKS_PORT" --bind 127.0.0.1 --directory "$WORK/jwks" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$JWKS_PORT/.well-known/jwks.json" >/dev/null && break
  sleep 0.05
done

cat >"$WORK/keel.toml" <<'TOML'
[[rate_limits]]
name = "api"
limit = 100
period = "1m"
key = "user"
routes = ["GET /v1/me"]

[jobs.http."app.welcome"]
path = "/keel/jobs/welcome"
timeout = 10

[[schedules]]
name = "nightly"
cron = "0 3 * * *"
kind = "app.welcome"
args = {}
TOML

ENV=(
  APP_ENV=staging
  LOG_FORMAT=json LOG_LEVEL=info
  MIGRATE_ON_START=true
  KEEL_CONFIG="$WORK/keel.toml"
  AUTH_JWKS_URL="http://127.0.0.1:$JWKS_PORT/.well-known/jwks.json"
  AUTH_ISSUER=https://issuer.example/ AUTH_AUDIENCE=keel-startup
  ADMIN_TOKEN="admin-$(secret)" METRICS_TOKEN="metrics-$(secret)"
  SERVICE_TOKENS="app:service-$(secret)" SCHEDULER_SECRET_KEY="scheduler-$(secret)"
  REVENUECAT_WEBHOOK_SECRET="revenuecat-$(secret)" REVENUECAT_API_KEY="sk_$(secret)"
  STRIPE_WEBHOOK_SECRET="$(whsec)" WHOP_WEBHOOK_SECRET="$(whsec)"
  BILLING_PROVIDERS=revenuecat,stripe,whop
  APP_URL=http://127.0.0.1:9/ APP_EVENTS_URL=http://127.0.0.1:9/keel-events
  APP_WEBHOOK_SECRET="app-webhook-$(secret)"
  DATA_ENCRYPTION_KEYS="k1:$(head -c 32 /dev/urandom | base64)"
  SENTRY_DSN=http://public@127.0.0.1:9/1
  CORS_ALLOWED_ORIGINS=https://app.example
)
