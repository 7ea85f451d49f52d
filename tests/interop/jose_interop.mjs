// Interop helper for tests/interop/jose_test.sh: the npm `jose` package, an independent
// JOSE implementation, checks idmint's tokens and produces tokens for idmint to check.
//
//   node jose_interop.mjs verify JWKS_FILE TOKEN AUDIENCE ISSUER
//       exit 0 and print the payload if jose accepts TOKEN against the JWK Set, else exit 1
//   node jose_interop.mjs sign KEY_FILE AUDIENCE ISSUER [normal|expired|wrong-key|none]
//       print a token signed by jose with the private JWK of an idmint key file
//       (wrong-key: a fresh key of the same type but idmint's kid; none: alg "none")
import { readFileSync } from 'node:fs';
import * as jose from 'jose';

const [mode, ...args] = process.argv.slice(2);

async function verify(jwksFile, token, audience, issuer) {
  const jwks = jose.createLocalJWKSet(JSON.parse(readFileSync(jwksFile, 'utf8')));
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      audience, issuer, algorithms: ['EdDSA', 'ES256'], typ: 'JWT',
    });
    process.stdout.write(JSON.stringify({ header: protectedHeader, payload }) + '\n');
  } catch (e) {
    process.stderr.write(`jose refused: ${e.code || ''} ${e.message}\n`);
    process.exit(1);
  }
}

async function sign(keyFile, audience, issuer, variant = 'normal') {
  const file = JSON.parse(readFileSync(keyFile, 'utf8'));
  const alg = file.alg;
  const kid = file.jwk.kid;
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'signed-by-jose', jti: `jose-${now}-${Math.random()}`, scope: 'x' };
  if (variant === 'none') {
    const t = new jose.UnsecuredJWT(claims).setIssuedAt(now).setExpirationTime(now + 300)
      .setIssuer(issuer).setAudience(audience).encode();
    // UnsecuredJWT writes {"alg":"none"}; add our kid/typ so only the alg is wrong.
    const [, p] = t.split('.');
    const h = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT', kid })).toString('base64url');
    process.stdout.write(`${h}.${p}.\n`);
    return;
  }
  let key;
  if (variant === 'wrong-key') {
    key = (await jose.generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {})).privateKey;
  } else {
    key = await jose.importJWK(file.jwk, alg);
  }
  const iat = variant === 'expired' ? now - 3600 : now;
  const t = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'JWT', kid })
    .setIssuedAt(iat).setNotBefore(iat).setExpirationTime(iat + 300)
    .setIssuer(issuer).setAudience(audience)
    .sign(key);
  process.stdout.write(t + '\n');
}

if (mode === 'verify') await verify(...args);
else if (mode === 'sign') await sign(...args);
else { process.stderr.write('usage: jose_interop.mjs verify|sign ...\n'); process.exit(2); }
