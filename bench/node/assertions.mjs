// bench/node/assertions.mjs: the private_key_jwt scenario's key and client assertions (bench/scenarios/pkjwt.sh).
//   keys KID JWKS_OUT PEM_OUT: a fresh P-256 key pair; the public half as a JWK set (for `client create
//     --jwks`), the private key as PKCS#8 PEM (mode 0600, in the run's temporary directory only).
//   bodies PEM KID CLIENT_ID AUDIENCE SCOPE COUNT OUT: COUNT token request bodies, one a line, each with its own
//     ES256 assertion (RFC 7523: iss = sub = CLIENT_ID, aud = AUDIENCE, a fresh jti, exp 50 minutes ahead),
//     for wrk to send each once (bench/wrk/load.lua, BENCH_BODY_FILE).
import { createPrivateKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';

const [mode, ...args] = process.argv.slice(2);
const b64url = (buffer) => Buffer.from(buffer).toString('base64url');

if (mode === 'keys') {
  const [kid, jwksOut, pemOut] = args;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
  writeFileSync(jwksOut, JSON.stringify({ keys: [jwk] }));
  writeFileSync(pemOut, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
} else if (mode === 'bodies') {
  const [pem, kid, clientId, audience, scope, count, out] = args;
  const key = createPrivateKey(readFileSync(pem));
  const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid }));
  const now = Math.floor(Date.now() / 1000);
  const prefix =
    `grant_type=client_credentials&scope=${encodeURIComponent(scope)}&client_id=${encodeURIComponent(clientId)}` +
    '&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=';
  const stream = createWriteStream(out);
  let chunk = [];
  for (let i = 0; i < Number(count); i++) {
    const claims = { iss: clientId, sub: clientId, aud: audience, jti: randomUUID(), iat: now, exp: now + 3000 };
    const input = `${header}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    chunk.push(`${prefix}${input}.${b64url(signature)}\n`);
    if (chunk.length === 10_000) {
      if (!stream.write(chunk.join(''))) await new Promise((resolve) => stream.once('drain', resolve));
      chunk = [];
    }
  }
  stream.end(chunk.join(''));
  await new Promise((resolve, reject) => stream.on('finish', resolve).on('error', reject));
} else {
  console.error('usage: assertions.mjs keys KID JWKS_OUT PEM_OUT | bodies PEM KID CLIENT_ID AUDIENCE SCOPE COUNT OUT');
  process.exit(2);
}
