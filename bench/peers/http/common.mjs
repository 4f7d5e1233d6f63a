// Shared by the peers: settings from the environment, and a cluster of WORKERS processes sharing
// one port (Node runs JavaScript on one core per process; a cluster is how it uses several).
//
// Env: PORT (required), PUBLIC_KEY_FILE (PEM, required), ISSUER, AUDIENCE, WORKERS (default: the
// cores this process may run on).
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export function settings() {
  const { PORT, PUBLIC_KEY_FILE, ISSUER, AUDIENCE } = process.env;
  if (!PORT || !PUBLIC_KEY_FILE) {
    throw new Error('PORT and PUBLIC_KEY_FILE are required');
  }
  return {
    port: Number(PORT),
    publicKey: readFileSync(PUBLIC_KEY_FILE, 'utf8'),
    issuer: ISSUER,
    audience: AUDIENCE,
  };
}

// The answer to GET /v1/me, shaped like Keel's (user id, tenant, roles, first seen).
const createdAt = new Date().toISOString();
export function me(sub) {
  return { user_id: sub, tenant_id: null, roles: ['user'], created_at: createdAt };
}

export const unauthorized = {
  type: 'about:blank',
  title: 'Unauthorized',
  status: 401,
};

// Runs `serve` in WORKERS forked processes; the primary only supervises.
export function clustered(serve) {
  const workers = Number(process.env.WORKERS || availableParallelism());
  if (cluster.isPrimary && workers > 1) {
    for (let i = 0; i < workers; i++) cluster.fork();
    cluster.on('exit', (_worker, code) => {
      if (code !== 0) process.exit(code ?? 1);
    });
    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.on(signal, () => {
        for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
        process.exit(0);
      });
    }
  } else {
    serve().catch((e) => {
      console.error(e);
      process.exit(1);
    });
  }
}
