// GET /v1/me in Express, the RS256 bearer token verified with jose against a public key.
import express from 'express';
import { importSPKI, jwtVerify } from 'jose';
import { clustered, me, settings, unauthorized } from './common.mjs';

clustered(async () => {
  const s = settings();
  const key = await importSPKI(s.publicKey, 'RS256');
  const options = { algorithms: ['RS256'], issuer: s.issuer, audience: s.audience };
  const app = express();
  app.disable('x-powered-by');
  app.get('/v1/me', async (req, res) => {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Bearer ')) {
      return res.status(401).type('application/problem+json').send(unauthorized);
    }
    try {
      const { payload } = await jwtVerify(header.slice(7), key, options);
      res.json(me(payload.sub));
    } catch {
      res.status(401).type('application/problem+json').send(unauthorized);
    }
  });
  app.listen(s.port, '127.0.0.1');
});
