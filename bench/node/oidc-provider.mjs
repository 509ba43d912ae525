// The peer measured by bench/run: node-oidc-provider 9 with its in-memory adapter, one ES256 signing key and
// one client-credentials client whose tokens are JWTs (RFC 9068 style, through resourceIndicators), so each
// token costs what a partnergate token costs: client authentication, scope check, one ES256 signature.
// Configuration comes from the environment; the server listens on loopback only.
import http from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const port = Number(env('BENCH_PEER_PORT'));
const clientId = env('BENCH_PEER_CLIENT_ID');
const clientSecret = env('BENCH_PEER_CLIENT_SECRET');
const scope = env('BENCH_PEER_SCOPE');
const audience = env('BENCH_PEER_AUDIENCE');
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // The only key is ES256; the default (RS256) would be refused as client metadata.
      id_token_signed_response_alg: 'ES256',
      scope,
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: [scope],
  ttl: { ClientCredentials: 600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Without a `resource` parameter the token is for the one resource server, like partnergate's
      // single-audience client.
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== audience) throw new errors.InvalidTarget();
        return { scope, audience, accessTokenTTL: 600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
});

http.createServer(provider.callback()).listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
