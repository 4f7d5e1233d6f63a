// An Express app on Keel: Keel authenticates users, runs the app's jobs and tells it when
// entitlements change; the app keeps its own code in Node.
//
//   KEEL_URL            where Keel listens (http://127.0.0.1:8080)
//   KEEL_SERVICE_TOKEN  the secret of one SERVICE_TOKENS entry, for the jobs API
//   APP_WEBHOOK_SECRET  the same whsec_... secret Keel signs with
//   PORT                where this app listens (0 picks a free port)
"use strict";

const express = require("express");
const { Webhook } = require("standardwebhooks");

const KEEL_URL = (process.env.KEEL_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const SERVICE_TOKEN = process.env.KEEL_SERVICE_TOKEN || "";
const secrets = (process.env.APP_WEBHOOK_SECRET || "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
if (secrets.length === 0) {
  console.error("APP_WEBHOOK_SECRET is required: Keel signs every delivery with it");
  process.exit(2);
}
const verifiers = secrets.map((s) => new Webhook(s));

// What the app has seen. A real app keeps this in its own database.
const state = {
  welcomed: [], // user ids, one per handled welcome job
  deliveries: {}, // webhook-id -> times seen (a delivery may repeat: at least once)
  events: [], // {id, type, user_id, sequence}
  entitlements: {}, // user id -> entitlement names
  lastSequence: {}, // user id -> last applied sequence
};

// Verifies a Keel delivery against the raw body; throws when the signature does not hold.
function verified(req) {
  const body = req.body.toString("utf8");
  let lastError;
  for (const wh of verifiers) {
    try {
      return wh.verify(body, req.headers);
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

// A route that only Keel may call: a bad signature is refused with 401, which Keel treats as a
// permanent refusal of that delivery.
function fromKeel(handler) {
  return (req, res) => {
    let payload;
    try {
      payload = verified(req);
    } catch {
      return res.status(401).json({ error: "the webhook signature does not verify" });
    }
    const id = req.headers["webhook-id"];
    state.deliveries[id] = (state.deliveries[id] || 0) + 1;
    return handler(payload, req, res);
  };
}

// Asks Keel who the caller is (forward auth): 200 gives the user, 401/403 are passed on.
function keelAuth(entitlement) {
  return async (req, res, next) => {
    const query = entitlement ? `?entitlement=${encodeURIComponent(entitlement)}` : "";
    const answer = await fetch(`${KEEL_URL}/v1/auth/check${query}`, {
      headers: { authorization: req.headers.authorization || "" },
    }).catch(() => null);
    if (!answer) return res.status(502).json({ error: "Keel cannot be reached" });
    if (answer.status !== 200) {
      res.status(answer.status).type("application/problem+json");
      return res.send(await answer.text());
    }
    req.user = {
      id: answer.headers.get("x-user-id"),
      entitlements: (answer.headers.get("x-entitlements") || "").split(",").filter(Boolean),
    };
    return next();
  };
}

const app = express();
const raw = express.raw({ type: "*/*", limit: "1mb" });

// The job kind app.send_welcome_email, declared in keel.toml with path = "/keel/jobs/welcome".
app.post(
  "/keel/jobs/welcome",
  raw,
  fromKeel((job, req, res) => {
    if (state.deliveries[req.headers["webhook-id"]] === 1) state.welcomed.push(job.args.user_id);
    res.status(204).end();
  }),
);

// App events: applied in per-user sequence order; an older or repeated one changes nothing.
app.post(
  "/keel/events",
  raw,
  fromKeel((event, req, res) => {
    const user = event.user_id;
    state.events.push({ id: event.id, type: event.type, user_id: user, sequence: event.sequence });
    if ((state.lastSequence[user] || 0) < event.sequence) {
      state.lastSequence[user] = event.sequence;
      const held = new Set(state.entitlements[user] || []);
      if (event.type === "entitlement.activated") held.add(event.data.entitlement);
      if (event.type === "entitlement.deactivated") held.delete(event.data.entitlement);
      state.entitlements[user] = [...held].sort();
    }
    res.status(204).end();
  }),
);

// A signed-in user asks for the welcome email: the app enqueues through Keel's jobs API, with
// an idempotency key so a double click enqueues once.
app.post("/signup", keelAuth(), async (req, res) => {
  const answer = await fetch(`${KEEL_URL}/v1/jobs`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${SERVICE_TOKEN}`,
      "content-type": "application/json",
      "idempotency-key": `welcome-${req.user.id}`,
    },
    body: JSON.stringify({ kind: "app.send_welcome_email", args: { user_id: req.user.id } }),
  }).catch(() => null);
  if (!answer) return res.status(502).json({ error: "Keel cannot be reached" });
  res.status(answer.status).json(await answer.json());
});

// Paid content: Keel says whether the caller holds "premium".
app.get("/premium", keelAuth("premium"), (req, res) => {
  res.json({ user: req.user.id, content: "the premium feed" });
});

// What the app has seen, for a look while trying it out.
app.get("/state", (req, res) => res.json(state));

const server = app.listen(Number(process.env.PORT || 3000), "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
