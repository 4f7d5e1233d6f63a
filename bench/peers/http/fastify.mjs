// GET /v1/me in Fastify, the RS256 bearer token verified by @fastify/jwt against a public key.
import Fastify from 'fastify';
import fastifyJwt from '@fastify/jwt';
import { clustered, me, settings, unauthorized } from './common.mjs';

clustered(async () => {
  const s = settings();
  const app = Fastify({ logger: false });
  await app.register(fastifyJwt, {
    secret: { public: s.publicKey },
    verify: { algorithms: ['RS256'], allowedIss: s.issuer, allowedAud: s.audience },
  });
  app.get('/v1/me', async (request, reply) => {
    try {
      await request.jwtVerify();
    } catch {
      return reply.code(401).type('application/problem+json').send(unauthorized);
    }
    return me(request.user.sub);
  });
  await app.listen({ port: s.port, host: '127.0.0.1' });
});
