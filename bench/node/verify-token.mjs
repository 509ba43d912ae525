// Verifies one access token as an independent resource server would: node `jose` with the JWKS fetched over
// HTTP. Usage: node verify-token.mjs JWKS_URL ISSUER AUDIENCE SCOPE TOKEN. Prints the header and claims as
// JSON; exits non-zero when the token does not verify or lacks the expected claims.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, issuer, audience, scope, token] = process.argv.slice(2);
if (!token) {
  console.error('usage: verify-token.mjs JWKS_URL ISSUER AUDIENCE SCOPE TOKEN');
  process.exit(2);
}
try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    algorithms: ['ES256'],
    typ: 'at+jwt',
  });
  if (!String(payload.scope ?? '').split(' ').includes(scope)) throw new Error(`scope ${scope} missing`);
  if (!payload.client_id || !payload.jti || !payload.exp) throw new Error('client_id, jti or exp missing');
  console.log(JSON.stringify({ header: protectedHeader, claims: payload }));
} catch (err) {
  console.error(`token verification failed: ${err.message}`);
  process.exit(1);
}
