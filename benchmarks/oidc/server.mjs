// oidc-provider (panva's certified OpenID provider) configured like OpenPayer's token endpoint, for
// bench_token.py: a private_key_jwt client for client credentials (RS384 assertions, jti replay detection),
// a confidential client_secret_basic client whose refresh tokens rotate on every use, ID tokens signed
// RS256, and every token, grant and replay record stored in Redis (the adapter below).
//
//   node oidc/server.mjs CONFIG.json     CONFIG: {port, redis, signingKey, backendJwks, refreshClientSecret,
//                                                seedRefreshTokens, seedOut, scopes}
// It writes `seedRefreshTokens` refresh tokens (one grant each) to `seedOut`, one per line, then listens.
import { readFileSync, writeFileSync } from 'node:fs';
import Redis from 'ioredis';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const redis = new Redis(config.redis, { keyPrefix: `oidc-bench:${config.port}:` });

const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'ClientCredentials']);

// The Redis adapter of oidc-provider's documentation, in short: one JSON value per record with its expiry,
// grant members in a list so that revoking a grant removes its tokens.
class RedisAdapter {
  constructor(name) { this.name = name; }
  key(id) { return `${this.name}:${id}`; }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const multi = redis.multi();
    if (expiresIn) multi.set(key, JSON.stringify(payload), 'EX', expiresIn);
    else multi.set(key, JSON.stringify(payload));
    if (grantable.has(this.name) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      multi.rpush(grantKey, key);
      const ttl = await redis.ttl(grantKey);
      if (expiresIn > ttl) multi.expire(grantKey, expiresIn);
    }
    await multi.exec();
  }
  async find(id) {
    const data = await redis.get(this.key(id));
    return data ? JSON.parse(data) : undefined;
  }
  async findByUid() { return undefined; }
  async findByUserCode() { return undefined; }
  async consume(id) {
    const data = await this.find(id);
    if (!data) return;
    data.consumed = Math.floor(Date.now() / 1000);
    const ttl = await redis.ttl(this.key(id));
    await this.upsert(id, data, ttl > 0 ? ttl : undefined);
  }
  async destroy(id) { await redis.del(this.key(id)); }
  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    const tokens = await redis.lrange(grantKey, 0, -1);
    const multi = redis.multi();
    tokens.forEach((token) => multi.del(token.slice(redis.options.keyPrefix.length)));
    multi.del(grantKey);
    await multi.exec();
  }
}

const issuer = `http://127.0.0.1:${config.port}`;
const provider = new Provider(issuer, {
  adapter: RedisAdapter,
  clients: [
    {
      client_id: 'backend',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'RS384',
      jwks: config.backendJwks,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: config.scopes.join(' '),
    },
    {
      client_id: 'app',
      client_secret: config.refreshClientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: ['https://bench.example/callback'],
    },
  ],
  jwks: { keys: [config.signingKey] },
  scopes: ['openid', 'offline_access', ...config.scopes],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  clientAuthMethods: ['client_secret_basic', 'private_key_jwt'],
  enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384'] },
  rotateRefreshToken: true,
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  ttl: { AccessToken: 3600, ClientCredentials: 300, RefreshToken: 90 * 24 * 3600, IdToken: 3600,
    Grant: 90 * 24 * 3600 },
});
provider.proxy = false;

const tokens = [];
const client = await provider.Client.find('app');
for (let i = 0; i < config.seedRefreshTokens; i += 1) {
  const accountId = `member-${i}`;
  const grant = new provider.Grant({ accountId, clientId: 'app' });
  grant.addOIDCScope('openid offline_access');
  const grantId = await grant.save();
  const token = new provider.RefreshToken({ client, accountId, grantId, scope: 'openid offline_access',
    gty: 'authorization_code', authTime: Math.floor(Date.now() / 1000), expiresWithSession: false });
  tokens.push(await token.save());
}
writeFileSync(config.seedOut, tokens.join('\n') + '\n');
provider.listen(config.port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
