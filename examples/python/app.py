"""A FastAPI app on Keel: Keel authenticates users, runs the app's jobs and tells it when
entitlements change; the app keeps its own code in Python.

    KEEL_URL            where Keel listens (http://127.0.0.1:8080)
    KEEL_SERVICE_TOKEN  the secret of one SERVICE_TOKENS entry, for the jobs API
    APP_WEBHOOK_SECRET  the same whsec_... secret Keel signs with
    PORT                where this app listens (0 picks a free port)
"""

import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

KEEL_URL = os.environ.get("KEEL_URL", "http://127.0.0.1:8080").rstrip("/")
SERVICE_TOKEN = os.environ.get("KEEL_SERVICE_TOKEN", "")
SECRETS = [s.strip() for s in os.environ.get("APP_WEBHOOK_SECRET", "").split(",") if s.strip()]
if not SECRETS:
    sys.exit("APP_WEBHOOK_SECRET is required: Keel signs every delivery with it")
VERIFIERS = [Webhook(s) for s in SECRETS]

# What the app has seen. A real app keeps this in its own database.
state = {
    "welcomed": [],  # user ids, one per handled welcome job
    "deliveries": {},  # webhook-id -> times seen (a delivery may repeat: at least once)
    "events": [],  # {id, type, user_id, sequence}
    "entitlements": {},  # user id -> entitlement names
    "last_sequence": {},  # user id -> last applied sequence
}

app = FastAPI(title="An app on Keel")


async def from_keel(request: Request) -> dict:
    """Verifies a Keel delivery against the raw body; 401 when the signature does not hold,
    which Keel treats as a permanent refusal of that delivery."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    for verifier in VERIFIERS:
        try:
            payload = verifier.verify(body, headers)
        except WebhookVerificationError:
            continue
        delivery = headers["webhook-id"]
        state["deliveries"][delivery] = state["deliveries"].get(delivery, 0) + 1
        return {"payload": payload, "first": state["deliveries"][delivery] == 1}
    raise HTTPException(status_code=401, detail="the webhook signature does not verify")


def call_keel(method: str, path: str, headers: dict, body: bytes | None = None):
    """One request to Keel: (status, headers, body text); (502, {}, reason) when unreachable."""
    request = urllib.request.Request(KEEL_URL + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read().decode()
    except OSError:
        return 502, {}, json.dumps({"error": "Keel cannot be reached"})


class KeelAuth:
    """Asks Keel who the caller is (forward auth): 200 gives the user, 401/403 are passed on."""

    def __init__(self, entitlement: str | None = None):
        self.query = "?entitlement=" + urllib.parse.quote(entitlement) if entitlement else ""

    def __call__(self, request: Request) -> dict:
        authorization = request.headers.get("authorization", "")
        status, headers, text = call_keel(
            "GET", "/v1/auth/check" + self.query, {"authorization": authorization}
        )
        if status != 200:
            raise HTTPException(status_code=status, detail=json.loads(text or "{}"))
        lower = {k.lower(): v for k, v in headers.items()}
        return {
            "id": lower.get("x-user-id"),
            "entitlements": [e for e in lower.get("x-entitlements", "").split(",") if e],
        }


@app.post("/keel/jobs/welcome", status_code=204)
async def welcome(delivery: dict = Depends(from_keel)):
    """The job kind app.send_welcome_email, declared with path = "/keel/jobs/welcome"."""
    if delivery["first"]:
        state["welcomed"].append(delivery["payload"]["args"]["user_id"])
    return Response(status_code=204)


@app.post("/keel/events", status_code=204)
async def events(delivery: dict = Depends(from_keel)):
    """App events, applied in per-user sequence order; an older or repeated one changes nothing."""
    event = delivery["payload"]
    user = event["user_id"]
    state["events"].append(
        {k: event[k] for k in ("id", "type", "user_id", "sequence")}
    )
    if state["last_sequence"].get(user, 0) < event["sequence"]:
        state["last_sequence"][user] = event["sequence"]
        held = set(state["entitlements"].get(user, []))
        if event["type"] == "entitlement.activated":
            held.add(event["data"]["entitlement"])
        elif event["type"] == "entitlement.deactivated":
            held.discard(event["data"]["entitlement"])
        state["entitlements"][user] = sorted(held)
    return Response(status_code=204)


@app.post("/signup")
def signup(user: dict = Depends(KeelAuth())):
    """A signed-in user asks for the welcome email: enqueued through Keel's jobs API, with an
    idempotency key so a double click enqueues once."""
    body = json.dumps({"kind": "app.send_welcome_email", "args": {"user_id": user["id"]}})
    status, _, text = call_keel(
        "POST",
        "/v1/jobs",
        {
            "authorization": f"Bearer {SERVICE_TOKEN}",
            "content-type": "application/json",
            "idempotency-key": f"welcome-{user['id']}",
        },
        body.encode(),
    )
    return JSONResponse(status_code=status, content=json.loads(text or "{}"))


@app.get("/premium")
def premium(user: dict = Depends(KeelAuth("premium"))):
    """Paid content: Keel says whether the caller holds "premium"."""
    return {"user": user["id"], "content": "the premium feed"}


@app.get("/state")
def seen():
    """What the app has seen, for a look while trying it out."""
    return state


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(os.environ.get("PORT", "8000"))))
    listener.listen(128)
    print(f"listening on {listener.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[listener])


if __name__ == "__main__":
    main()
