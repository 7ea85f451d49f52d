/* Test issuers for the attestation tests and benchmarks: keys generated with BoringSSL at
 * run time (RSA-2048, P-256, P-384, Ed25519), their JWK Sets, JWS signing for every
 * algorithm (and deliberately broken ones: none, HS256 keyed with the public key), and an
 * AWS-style signed instance identity document with a self-signed test certificate.
 * Header-only (static functions) so C tests and the C++ benchmark share it. No private
 * key is ever written to disk. */
#ifndef IDM_TESTS_ATTEST_FIXTURES_H
#define IDM_TESTS_ATTEST_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/base64.h>
#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/b64url.h"

#define FX_FN static __attribute__((unused))

typedef enum fx_kty { FX_RSA, FX_EC256, FX_EC384, FX_ED25519 } fx_kty_t;

typedef struct fx_key {
  EVP_PKEY *pkey;
  fx_kty_t kty;
  char kid[40];
} fx_key_t;

FX_FN void fx_die(const char *what) {
  fprintf(stderr, "fixture failure: %s\n", what);
  abort();
}

FX_FN void fx_key_new(fx_key_t *k, fx_kty_t kty, const char *kid) {
  memset(k, 0, sizeof *k);
  k->kty = kty;
  snprintf(k->kid, sizeof k->kid, "%s", kid);
  k->pkey = EVP_PKEY_new();
  if (kty == FX_RSA) {
    RSA *rsa = RSA_new();
    BIGNUM *e = BN_new();
    BN_set_word(e, 65537);
    if (!RSA_generate_key_ex(rsa, 2048, e, NULL))
      fx_die("RSA keygen");
    BN_free(e);
    EVP_PKEY_assign_RSA(k->pkey, rsa);
  } else if (kty == FX_EC256 || kty == FX_EC384) {
    EC_KEY *ec = EC_KEY_new_by_curve_name(kty == FX_EC256 ? NID_X9_62_prime256v1 : NID_secp384r1);
    if (!ec || !EC_KEY_generate_key(ec))
      fx_die("EC keygen");
    EVP_PKEY_assign_EC_KEY(k->pkey, ec);
  } else {
    uint8_t pub[32], priv[64];
    ED25519_keypair(pub, priv);
    EVP_PKEY_free(k->pkey);
    k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
    if (!k->pkey)
      fx_die("Ed25519 key");
  }
}

FX_FN void fx_key_free(fx_key_t *k) {
  EVP_PKEY_free(k->pkey);
  k->pkey = NULL;
}

FX_FN size_t fx_b64(char *out, size_t cap, const uint8_t *in, size_t n) {
  size_t len = idm_b64url_encode(out, cap, in, n);
  out[len] = '\0';
  return len;
}

FX_FN void fx_bn_b64(char *out, size_t cap, const BIGNUM *bn, size_t pad) {
  uint8_t buf[1024];
  size_t n = pad ? pad : BN_num_bytes(bn);
  if (!BN_bn2bin_padded(buf, n, bn))
    fx_die("bn");
  fx_b64(out, cap, buf, n);
}

/* The public JWK as JSON, with "kid" and, if alg is not NULL, "alg". */
FX_FN void fx_jwk_json(const fx_key_t *k, const char *alg, char *out, size_t cap) {
  char a[64] = "";
  if (alg)
    snprintf(a, sizeof a, ",\"alg\":\"%s\"", alg);
  if (k->kty == FX_RSA) {
    const RSA *rsa = EVP_PKEY_get0_RSA(k->pkey);
    char n[600], e[16];
    fx_bn_b64(n, sizeof n, RSA_get0_n(rsa), 0);
    fx_bn_b64(e, sizeof e, RSA_get0_e(rsa), 0);
    snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"%s}",
             k->kid, n, e, a);
  } else if (k->kty == FX_EC256 || k->kty == FX_EC384) {
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k->pkey);
    uint8_t pt[200];
    size_t plen = EC_POINT_point2oct(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec),
                                     POINT_CONVERSION_UNCOMPRESSED, pt, sizeof pt, NULL);
    size_t c = (plen - 1) / 2;
    char x[80], y[80];
    fx_b64(x, sizeof x, pt + 1, c);
    fx_b64(y, sizeof y, pt + 1 + c, c);
    snprintf(out, cap, "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
             k->kid, k->kty == FX_EC256 ? "P-256" : "P-384", x, y, a);
  } else {
    uint8_t pub[32];
    size_t pl = sizeof pub;
    EVP_PKEY_get_raw_public_key(k->pkey, pub, &pl);
    char x[64];
    fx_b64(x, sizeof x, pub, 32);
    snprintf(out, cap, "{\"kty\":\"OKP\",\"kid\":\"%s\",\"crv\":\"Ed25519\",\"x\":\"%s\"%s}", k->kid,
             x, a);
  }
}

/* Writes {"keys":[...]} (plus extra top-level members, e.g. SPIFFE bundle fields). */
FX_FN void fx_jwks_write(const char *path, const fx_key_t *const *keys, size_t n,
                          const char *extra) {
  FILE *f = fopen(path, "w");
  if (!f)
    fx_die(path);
  fputs("{", f);
  if (extra)
    fprintf(f, "%s,", extra);
  fputs("\"keys\":[", f);
  for (size_t i = 0; i < n; i++) {
    char j[2048];
    fx_jwk_json(keys[i], NULL, j, sizeof j);
    fprintf(f, "%s%s", i ? "," : "", j);
  }
  fputs("]}", f);
  fclose(f);
}

FX_FN const EVP_MD *fx_md(const char *alg) {
  if (strstr(alg, "384"))
    return EVP_sha384();
  if (strstr(alg, "512"))
    return EVP_sha512();
  return EVP_sha256();
}

/* Signs header_json.payload_json with k under alg (RS*, PS*, ES*, EdDSA) into out. The
 * header is given whole so tests can shape it (kid, typ, duplicate members...). */
FX_FN size_t fx_sign_raw(const fx_key_t *k, const char *alg, const char *header_json,
                          const char *payload_json, char *out, size_t cap) {
  size_t hl = fx_b64(out, cap, (const uint8_t *)header_json, strlen(header_json));
  out[hl] = '.';
  size_t pl = fx_b64(out + hl + 1, cap - hl - 1, (const uint8_t *)payload_json,
                     strlen(payload_json));
  size_t si = hl + 1 + pl;
  uint8_t sig[1024];
  size_t sl = sizeof sig;
  EVP_MD_CTX ctx;
  EVP_MD_CTX_init(&ctx);
  EVP_PKEY_CTX *pctx = NULL;
  const EVP_MD *md = !strcmp(alg, "EdDSA") ? NULL : fx_md(alg);
  if (!EVP_DigestSignInit(&ctx, &pctx, md, NULL, k->pkey))
    fx_die("sign init");
  if (alg[0] == 'P') {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1);
  }
  if (!EVP_DigestSign(&ctx, sig, &sl, (const uint8_t *)out, si))
    fx_die("sign");
  EVP_MD_CTX_cleanup(&ctx);
  if (alg[0] == 'E' && alg[1] == 'S') { /* DER → JOSE r||s */
    ECDSA_SIG *es = ECDSA_SIG_from_bytes(sig, sl);
    size_t c = k->kty == FX_EC384 ? 48 : 32;
    if (!es)
      fx_die("ecdsa der");
    BN_bn2bin_padded(sig, c, ECDSA_SIG_get0_r(es));
    BN_bn2bin_padded(sig + c, c, ECDSA_SIG_get0_s(es));
    ECDSA_SIG_free(es);
    sl = 2 * c;
  }
  out[si] = '.';
  size_t gl = fx_b64(out + si + 1, cap - si - 1, sig, sl);
  return si + 1 + gl;
}

FX_FN size_t fx_sign(const fx_key_t *k, const char *alg, const char *payload_json, char *out,
                      size_t cap) {
  char h[200];
  snprintf(h, sizeof h, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, k->kid);
  return fx_sign_raw(k, alg, h, payload_json, out, cap);
}

/* HS256 over the token with secret (the algorithm-confusion attack when the secret is the
 * issuer's public key). */
FX_FN size_t fx_sign_hs256(const uint8_t *secret, size_t secret_len, const char *header_json,
                            const char *payload_json, char *out, size_t cap) {
  size_t hl = fx_b64(out, cap, (const uint8_t *)header_json, strlen(header_json));
  out[hl] = '.';
  size_t pl = fx_b64(out + hl + 1, cap - hl - 1, (const uint8_t *)payload_json,
                     strlen(payload_json));
  size_t si = hl + 1 + pl;
  uint8_t mac[32];
  unsigned ml = 0;
  HMAC(EVP_sha256(), secret, secret_len, (const uint8_t *)out, si, mac, &ml);
  out[si] = '.';
  return si + 1 + fx_b64(out + si + 1, cap - si - 1, mac, ml);
}

/* A self-signed certificate for k (the "AWS public certificate" of the tests), PEM. */
FX_FN void fx_cert_write(const fx_key_t *k, const char *path) {
  X509 *x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_NAME *nm = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const uint8_t *)"Amazon Web Services LLC (test)", -1, -1, 0);
  X509_set_issuer_name(x, nm);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
  X509_set_pubkey(x, k->pkey);
  if (!X509_sign(x, k->pkey, EVP_sha256()))
    fx_die("x509 sign");
  FILE *f = fopen(path, "w");
  if (!f)
    fx_die(path);
  PEM_write_X509(f, x);
  fclose(f);
  X509_free(x);
}

/* An instance identity document shaped like IMDS's, and its wrapper
 * {"document": ..., "signature": base64 RSA-SHA256 with 64-column line breaks}. */
FX_FN void fx_iid_doc(char *out, size_t cap, const char *account, const char *instance,
                       const char *pending) {
  snprintf(out, cap,
           "{\n  \"accountId\" : \"%s\",\n  \"architecture\" : \"x86_64\",\n"
           "  \"availabilityZone\" : \"eu-west-1b\",\n  \"billingProducts\" : null,\n"
           "  \"devpayProductCodes\" : null,\n  \"marketplaceProductCodes\" : null,\n"
           "  \"imageId\" : \"ami-0a1b2c3d4e5f60718\",\n  \"instanceId\" : \"%s\",\n"
           "  \"instanceType\" : \"m5.large\",\n  \"kernelId\" : null,\n"
           "  \"pendingTime\" : \"%s\",\n  \"privateIp\" : \"10.0.3.17\",\n"
           "  \"ramdiskId\" : null,\n  \"region\" : \"eu-west-1\",\n  \"version\" : \"2017-09-30\"\n}",
           account, instance, pending);
}

FX_FN size_t fx_iid_wrap(const fx_key_t *k, const char *doc, char *out, size_t cap) {
  uint8_t sig[1024];
  size_t sl = sizeof sig;
  EVP_MD_CTX ctx;
  EVP_MD_CTX_init(&ctx);
  if (!EVP_DigestSignInit(&ctx, NULL, EVP_sha256(), NULL, k->pkey) ||
      !EVP_DigestSign(&ctx, sig, &sl, (const uint8_t *)doc, strlen(doc)))
    fx_die("iid sign");
  EVP_MD_CTX_cleanup(&ctx);
  char b64[2048], wrapped[2100];
  size_t bl = 0;
  EVP_EncodeBlock((uint8_t *)b64, sig, sl);
  bl = strlen(b64);
  size_t w = 0;
  for (size_t i = 0; i < bl; i++) {
    if (i && i % 64 == 0) {
      wrapped[w++] = '\\';
      wrapped[w++] = 'n';
    }
    wrapped[w++] = b64[i];
  }
  wrapped[w] = '\0';
  /* The document goes in as a JSON string: escape quotes and newlines. */
  size_t o = 0;
  o += (size_t)snprintf(out, cap, "{\"document\":\"");
  for (const char *p = doc; *p && o + 4 < cap; p++) {
    if (*p == '"' || *p == '\\') {
      out[o++] = '\\';
      out[o++] = *p;
    } else if (*p == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else
      out[o++] = *p;
  }
  o += (size_t)snprintf(out + o, cap - o, "\",\"signature\":\"%s\"}", wrapped);
  return o;
}

/* "YYYY-MM-DDTHH:MM:SSZ" for t. */
FX_FN void fx_time(char *out, size_t cap, long long t) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#endif
