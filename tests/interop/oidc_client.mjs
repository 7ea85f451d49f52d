// A standard OAuth/OIDC client library (openid-client 6) against a running idmint:
// discover the issuer, perform the RFC 8693 token exchange, and verify the returned JWT
// against the published JWKS with jose. Also checks that a policy denial surfaces as the
// documented OAuth error. Usage: node oidc_client.mjs ISSUER SUBJECT_TOKEN_FILE DENIED_FILE
import * as client from 'openid-client';
import * as jose from 'jose';
import { readFileSync } from 'node:fs';

const [issuer, subjectFile, deniedFile] = process.argv.slice(2);
const subject = readFileSync(subjectFile, 'utf8').trim();
const denied = readFileSync(deniedFile, 'utf8').trim();

const config = await client.discovery(new URL(issuer), 'idmint-interop', undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});
const md = config.serverMetadata();
if (md.issuer !== issuer) throw new Error(`issuer mismatch: ${md.issuer}`);
console.log(`discovered ${md.token_endpoint} and ${md.jwks_uri}`);

const params = {
  subject_token: subject,
  subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
  audience: 'payments-db',
};
const grant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const tokens = await client.genericGrantRequest(config, grant, params);
if (tokens.token_type.toLowerCase() !== 'bearer') throw new Error('token_type');
if (tokens.issued_token_type !== 'urn:ietf:params:oauth:token-type:jwt') throw new Error('issued_token_type');
console.log(`exchanged: expires_in=${tokens.expires_in} scope=${tokens.scope}`);

const jwks = jose.createRemoteJWKSet(new URL(md.jwks_uri));
const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
  issuer,
  audience: 'spiffe://t/payments/db',
});
if (protectedHeader.typ !== 'JWT' || !['EdDSA', 'ES256'].includes(protectedHeader.alg))
  throw new Error(`header ${JSON.stringify(protectedHeader)}`);
if (payload.sub !== 'spiffe://t/payments/api' || payload.scope !== 'db.read db.write' || !payload.jti)
  throw new Error(`claims ${JSON.stringify(payload)}`);
console.log(`verified with jose: alg=${protectedHeader.alg} sub=${payload.sub}`);

try {
  await client.genericGrantRequest(config, grant, { ...params, subject_token: denied });
  throw new Error('denied exchange succeeded');
} catch (e) {
  if (!(e instanceof client.ResponseBodyError) || e.error !== 'access_denied' || e.status !== 403)
    throw e;
  console.log(`denial surfaced as ${e.status} ${e.error}`);
}
