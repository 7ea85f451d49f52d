// Generates tests/crypto/data/jose_vectors.json: a JWK Set and one token per JOSE
// algorithm, signed by the npm `jose` package (an independent implementation), so the
// C verifier's unit tests check real third-party signatures for every algorithm.
// Run: cd tests/interop && node gen_jose_vectors.mjs > ../crypto/data/jose_vectors.json
import * as jose from 'jose';
import { generateKeyPairSync } from 'node:crypto';

const algs = [
  ['RS256', 'RSA'], ['RS384', 'RSA'], ['RS512', 'RSA'],
  ['PS256', 'RSA'], ['PS384', 'RSA'], ['PS512', 'RSA'],
  ['ES256', 'P-256'], ['ES384', 'P-384'], ['EdDSA', 'Ed25519'],
];
const keys = [];
const tokens = {};
const made = {};
for (const [alg, kind] of algs) {
  if (!made[kind]) {
    const opts = { extractable: true };
    if (kind === 'RSA') opts.modulusLength = 2048;
    if (kind === 'Ed25519') opts.crv = 'Ed25519';
    const { publicKey, privateKey } = await jose.generateKeyPair(kind === 'RSA' ? 'RS256' : kind === 'P-256' ? 'ES256' : kind === 'P-384' ? 'ES384' : 'EdDSA', opts);
    const jwk = await jose.exportJWK(publicKey);
    jwk.kid = 'k-' + kind.toLowerCase();
    keys.push(jwk);
    made[kind] = { priv: await jose.exportJWK(privateKey), kid: jwk.kid };
  }
  const { priv, kid } = made[kind];
  const privateKey = await jose.importJWK(priv, alg);
  tokens[alg] = await new jose.SignJWT({ sub: 'vector', alg_under_test: alg })
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuedAt(1700000000).setExpirationTime(4000000000)
    .setIssuer('https://vectors.example').setAudience('idmint')
    .sign(privateKey);
}
// A 1024-bit RSA key (must be skipped) for the JWKS edge cases.
const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
const weakJwk = weak.publicKey.export({ format: 'jwk' });
weakJwk.kid = 'weak';
const thumbprints = {};
for (const k of keys) thumbprints[k.kid] = await jose.calculateJwkThumbprint(k, 'sha256');
process.stdout.write(JSON.stringify({ jwks: { keys }, tokens, thumbprints, weak_rsa: weakJwk }, null, 1) + '\n');
