"""Runs Keel and one example app side by side on this machine and walks through what the app
gets from Keel, printing each step:

    python3 examples/demo.py node      # examples/node (Express)
    python3 examples/demo.py python    # examples/python (FastAPI)

Keel runs on SQLite in a temporary directory with no other service. The binary is $KEEL_BIN,
or target/debug/keel after `cargo build -p keel-cli`. The app's packages must be installed
(`npm ci` in examples/node; `pip install -r examples/python/requirements.txt`).
Exits 0 when every step held, 1 with the failing step otherwise.
"""

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WAIT = float(os.environ.get("DEMO_WAIT_SECONDS", "60"))

KEEL_TOML = """
[jobs.http."app.send_welcome_email"]
path = "/keel/jobs/welcome"
timeout = 10

[products]
"com.example.premium.monthly" = ["premium"]
"""


class Failed(Exception):
    pass


def step(text):
    print(f"-> {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, headers=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = dict(headers or {})
    if data is not None:
        headers["content-type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def until(what, check):
    """Polls `check` until it returns a true value, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"{what}: not within {WAIT:.0f} s")
        time.sleep(0.1)


def keel_binary():
    if os.environ.get("KEEL_BIN"):
        return os.path.abspath(os.environ["KEEL_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(os.path.abspath(target), "debug", "keel")
    if not os.path.exists(binary):
        subprocess.run(["cargo", "build", "-q", "-p", "keel-cli"], cwd=ROOT, check=True)
    return binary


def app_command(which):
    if which == "node":
        if not os.path.isdir(os.path.join(HERE, "node", "node_modules")):
            raise Failed("run `npm ci` in examples/node first")
        return ["node", os.path.join(HERE, "node", "server.js")]
    if which == "python":
        return [sys.executable, os.path.join(HERE, "python", "app.py")]
    raise Failed("say which app: node or python")


def start_keel(binary, workdir, env):
    log = open(os.path.join(workdir, "keel.log"), "w")
    process = subprocess.Popen(
        [binary, "serve"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{env['PORT']}"

    def ready():
        if process.poll() is not None:
            raise Failed("keel exited:\n" + open(log.name).read())
        try:
            return request("GET", url + "/health/ready")[0] == 200
        except OSError:
            return False

    until("keel ready", ready)
    return process, url


def start_app(command, env):
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("listening on"):
        raise Failed(f"the app did not start: {line!r}")
    return process, f"http://127.0.0.1:{line.split()[-1]}"


def keel_cli(binary, workdir, env, *args):
    out = subprocess.run(
        [binary, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise Failed(f"keel {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def walk(which):
    binary = keel_binary()
    workdir = tempfile.mkdtemp(prefix="keel-demo-")
    processes = []
    try:
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        service_token = secrets.token_urlsafe(32)
        keel_port, app_port = free_port(), free_port()
        with open(os.path.join(workdir, "keel.toml"), "w") as f:
            f.write(KEEL_TOML)
        keel_env = {
            "PATH": os.environ.get("PATH", ""),
            "PORT": str(keel_port),
            "APP_ENV": "development",
            "AUTH_DEV_MODE": "true",
            "LOG_FORMAT": "json",
            "REVENUECAT_WEBHOOK_SECRET": secrets.token_urlsafe(32),
            "APP_URL": f"http://127.0.0.1:{app_port}",
            "APP_EVENTS_URL": f"http://127.0.0.1:{app_port}/keel/events",
            "APP_WEBHOOK_SECRET": webhook_secret,
            "SERVICE_TOKENS": f"{which}-app:{service_token}",
        }
        step(f"keel serve on SQLite in {workdir}")
        keel, keel_url = start_keel(binary, workdir, keel_env)
        processes.append(keel)
        app_env = {
            "PATH": os.environ.get("PATH", ""),
            "PORT": str(app_port),
            "KEEL_URL": keel_url,
            "KEEL_SERVICE_TOKEN": service_token,
            "APP_WEBHOOK_SECRET": webhook_secret,
        }
        step(f"the {which} app on {app_env['PORT']}")
        app, app_url = start_app(app_command(which), app_env)
        processes.append(app)

        token = keel_cli(binary, workdir, keel_env, "dev", "token", "--user", "alice")
        bearer = {"authorization": f"Bearer {token}"}
        step("alice has a token from `keel dev token --user alice`")

        status, _ = request("GET", app_url + "/premium")
        expect("GET /premium without a token", status, 401)
        status, _ = request("GET", app_url + "/premium", bearer)
        expect("GET /premium before a purchase (Keel's forward auth)", status, 403)

        status, body = request("POST", app_url + "/signup", bearer, {})
        expect("POST /signup enqueues app.send_welcome_email through POST /v1/jobs", status, 201)

        def state():
            return json.loads(request("GET", app_url + "/state")[1])

        until("the welcome job delivered to the app", lambda: "alice" in state()["welcomed"])
        step("Keel's worker POSTed the job to the app, signed; standardwebhooks verified it")

        keel_cli(
            binary, workdir, keel_env, "dev", "webhook", "revenuecat",
            "--event", "INITIAL_PURCHASE", "--user", "alice",
            "--product", "com.example.premium.monthly", "--url", keel_url,
        )
        step("a signed RevenueCat INITIAL_PURCHASE for alice (`keel dev webhook`)")
        until(
            "entitlement.activated delivered to the app",
            lambda: "premium" in state()["entitlements"].get("alice", []),
        )
        step("the app received entitlement.activated (premium), signed, in sequence")
        status, _ = request("GET", app_url + "/premium", bearer)
        expect("GET /premium after the purchase", status, 200)

        welcomed = state()["welcomed"].count("alice")
        if welcomed != 1:
            raise Failed(f"alice was welcomed {welcomed} times, not once")
        print(f"the {which} app on Keel: every step held", flush=True)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if os.environ.get("DEMO_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)


def expect(what, status, wanted):
    if status != wanted:
        raise Failed(f"{what}: {status}, expected {wanted}")
    step(f"{what}: {status}")


if __name__ == "__main__":
    try:
        walk(sys.argv[1] if len(sys.argv) > 1 else "")
    except Failed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
