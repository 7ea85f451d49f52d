/* aws-iid: the EC2 instance identity document.
 *
 * The workload sends what the instance metadata service gave it, wrapped as one JSON
 * object (the form SPIRE's aws_iid attestor uses):
 *     {"document": "<the document text, exactly as served>", "signature": "<base64>"}
 * `signature` is the RSA PKCS#1 v1.5 SHA-256 signature AWS makes over the document bytes
 * (IMDS path /latest/dynamic/instance-identity/signature), verified against the AWS
 * public certificate of the region that the trust block names. Standard base64 with the
 * line breaks IMDS puts in it is accepted; nothing else.
 *
 * The parser (idm_iid_parse) does no crypto and no I/O so it can be fuzzed: both JSON
 * layers reject duplicate keys, the identifiers must have AWS's shapes, and pendingTime
 * must be exactly "YYYY-MM-DDTHH:MM:SSZ". The document has no expiry; the trust block's
 * max_age bounds how old its pendingTime (the instance's launch) may be, and the cache
 * keeps an identity no longer than pendingTime + max_age. */
#include <ctype.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/bytestring.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "attest/internal.h"
#include "core/file.h"
#include "core/json.h"
#include "core/limits.h"

static bool all_of(const char *s, size_t n, const char *set) {
  for (size_t i = 0; i < n; i++)
    if (!strchr(set, s[i]) || s[i] == '\0')
      return false;
  return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's algorithm. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int num(const char *s, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (s[i] - '0');
  return v;
}

int64_t idm_iid_parse_time(const char *s, size_t n) {
  /* 0123456789012345678 9 */
  /* 2016-11-19T16:32:11 Z */
  if (n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
      s[19] != 'Z')
    return -1;
  static const int pos[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
  for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
    if (s[pos[i]] < '0' || s[pos[i]] > '9')
      return -1;
  int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
  int h = num(s + 11, 2), mi = num(s + 14, 2), se = num(s + 17, 2);
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
      se > 59)
    return -1;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap)
    return -1;
  return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
}

/* A required string member of the document with a bounded length and an alphabet. */
static idm_err_t field(json_t *doc, const char *key, const char *prefix, size_t min,
                       size_t max, const char *set, const char **out, size_t *out_len,
                       idm_why_t *why) {
  json_t *v = json_object_get(doc, key);
  if (!v)
    return idm_fail(why, IDM_ERR_IID_FORMAT, "instance identity document has no \"%s\"", key);
  if (!json_is_string(v))
    return idm_fail(why, IDM_ERR_IID_FORMAT, "instance identity \"%s\" must be a string", key);
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  size_t pl = prefix ? strlen(prefix) : 0;
  if (n < min || n > max || (pl && (n <= pl || memcmp(s, prefix, pl) != 0)) ||
      !all_of(s + pl, n - pl, set))
    return idm_fail(why, IDM_ERR_IID_FORMAT, "instance identity \"%s\" is malformed: \"%.64s\"",
                    key, s);
  *out = s;
  *out_len = n;
  return IDM_OK;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define HEX "0123456789abcdef"

idm_err_t idm_iid_parse(idm_iid_t *out, idm_arena_t *arena, const char *tok, size_t len,
                        idm_why_t *why) {
  memset(out, 0, sizeof *out);
  if (len > IDM_ATTEST_IID_MAX_BYTES)
    return idm_fail(why, IDM_ERR_TOO_LARGE,
                    "instance identity of %zu bytes exceeds the %d-byte limit", len,
                    IDM_ATTEST_IID_MAX_BYTES);
  idm_arena_t *prev = idm_json_use_arena(arena);
  idm_err_t e = IDM_OK;
  idm_why_t w;
  idm_why_clear(&w);
  json_t *outer = idm_json_parse(tok, len, &e, &w);
  if (!outer) {
    e = idm_fail(why, IDM_ERR_IID_FORMAT, "instance identity wrapper: %s", idm_why_str(&w, e));
    goto out;
  }
  if (!json_is_object(outer)) {
    e = idm_fail(why, IDM_ERR_IID_FORMAT,
                 "instance identity must be a JSON object {\"document\", \"signature\"}");
    goto out;
  }
  const char *key;
  json_t *val;
  json_object_foreach(outer, key, val) {
    if (strcmp(key, "document") != 0 && strcmp(key, "signature") != 0) {
      e = idm_fail(why, IDM_ERR_IID_FORMAT, "instance identity has unknown member \"%.40s\"",
                   key);
      goto out;
    }
  }
  json_t *jdoc = json_object_get(outer, "document");
  json_t *jsig = json_object_get(outer, "signature");
  if (!jdoc || !json_is_string(jdoc) || !jsig || !json_is_string(jsig)) {
    e = idm_fail(why, IDM_ERR_IID_FORMAT,
                 "instance identity needs string members \"document\" and \"signature\"");
    goto out;
  }
  out->document = json_string_value(jdoc);
  out->document_len = json_string_length(jdoc);

  /* The signature: standard base64, line breaks allowed (IMDS wraps at 64 columns). */
  const char *s64 = json_string_value(jsig);
  size_t n64 = json_string_length(jsig);
  char *clean = idm_arena_alloc(arena, n64 + 1, 1);
  uint8_t *sig = idm_arena_alloc(arena, n64 + 1, 8);
  if (!clean || !sig) {
    e = idm_fail(why, IDM_ERR_ARENA_FULL, "request arena exhausted");
    goto out;
  }
  size_t cn = 0;
  for (size_t i = 0; i < n64; i++) {
    char c = s64[i];
    if (c == '\n' || c == '\r')
      continue;
    if (!(isalnum((unsigned char)c) || c == '+' || c == '/' || c == '=')) {
      e = idm_fail(why, IDM_ERR_IID_FORMAT, "signature has a non-base64 byte at offset %zu", i);
      goto out;
    }
    clean[cn++] = c;
  }
  size_t sig_len = 0;
  if (cn == 0 || cn % 4 != 0 || !EVP_DecodeBase64(sig, &sig_len, n64 + 1, (const uint8_t *)clean, cn)) {
    e = idm_fail(why, IDM_ERR_IID_FORMAT, "signature is not valid base64");
    goto out;
  }
  out->signature = sig;
  out->signature_len = sig_len;

  /* The document itself. */
  json_t *doc = idm_json_parse(out->document, out->document_len, &e, &w);
  if (!doc) {
    e = idm_fail(why, IDM_ERR_IID_FORMAT, "instance identity document: %s", idm_why_str(&w, e));
    goto out;
  }
  if (!json_is_object(doc)) {
    e = idm_fail(why, IDM_ERR_IID_FORMAT, "instance identity document is not a JSON object");
    goto out;
  }
  const char *pt;
  size_t ptn;
  if ((e = field(doc, "accountId", NULL, 12, 12, "0123456789", &out->account,
                 &out->account_len, why)) ||
      (e = field(doc, "region", NULL, 1, 32, LOWER_DIGITS "-", &out->region,
                 &out->region_len, why)) ||
      (e = field(doc, "instanceId", "i-", 10, 19, HEX, &out->instance_id,
                 &out->instance_id_len, why)) ||
      (e = field(doc, "imageId", "ami-", 12, 21, HEX, &out->image_id, &out->image_id_len,
                 why)) ||
      (e = field(doc, "instanceType", NULL, 1, 64, LOWER_DIGITS ".-", &out->instance_type,
                 &out->instance_type_len, why)) ||
      (e = field(doc, "pendingTime", NULL, 20, 20, "0123456789-:TZ", &pt, &ptn, why)))
    goto out;
  out->pending_s = idm_iid_parse_time(pt, ptn);
  if (out->pending_s < 0) {
    e = idm_fail(why, IDM_ERR_IID_FORMAT, "pendingTime \"%s\" is not YYYY-MM-DDTHH:MM:SSZ", pt);
    goto out;
  }
  e = IDM_OK;
out:
  idm_json_use_arena(prev);
  if (e)
    memset(out, 0, sizeof *out);
  return e;
}

idm_err_t idm_iid_load_cert(const char *path, EVP_PKEY **out, idm_why_t *why) {
  char *pem = NULL;
  size_t n = 0;
  idm_err_t e = idm_file_read(path, IDM_KEYFILE_MAX_BYTES, &pem, &n, why);
  if (e)
    return e;
  BIO *bio = BIO_new_mem_buf(pem, (int)n);
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  free(pem);
  if (!x)
    return idm_fail(why, IDM_ERR_ATTEST_KEYS, "%s: not a PEM X.509 certificate", path);
  EVP_PKEY *k = X509_get_pubkey(x);
  X509_free(x);
  if (!k || EVP_PKEY_id(k) != EVP_PKEY_RSA) {
    EVP_PKEY_free(k);
    return idm_fail(why, IDM_ERR_ATTEST_KEYS,
                    "%s: the certificate's key is not RSA (AWS signs identity documents with "
                    "RSA)",
                    path);
  }
  unsigned bits = EVP_PKEY_bits(k);
  if (bits < 2048 || bits > 8192) {
    EVP_PKEY_free(k);
    return idm_fail(why, IDM_ERR_ATTEST_KEYS, "%s: RSA key of %u bits is not accepted", path,
                    bits);
  }
  *out = k;
  return IDM_OK;
}

idm_err_t idm_attest_iid(const idm_provider_t *p, idm_arena_t *arena, const char *doc,
                         size_t len, const idm_clock_t *clk, idm_identity_t *out,
                         idm_why_t *why) {
  idm_iid_t iid;
  idm_err_t e = idm_iid_parse(&iid, arena, doc, len, why);
  if (e)
    return e;
  if (iid.signature_len != (size_t)EVP_PKEY_size(p->iid_key))
    return idm_fail(why, IDM_ERR_IID_SIGNATURE,
                    "signature of %zu bytes does not fit the %d-byte RSA key of trust \"%s\"",
                    iid.signature_len, EVP_PKEY_size(p->iid_key), p->trust->name);
  EVP_MD_CTX ctx;
  EVP_MD_CTX_init(&ctx);
  int ok = EVP_DigestVerifyInit(&ctx, NULL, EVP_sha256(), NULL, p->iid_key) &&
           EVP_DigestVerify(&ctx, iid.signature, iid.signature_len,
                            (const uint8_t *)iid.document, iid.document_len);
  EVP_MD_CTX_cleanup(&ctx);
  if (!ok)
    return idm_fail(why, IDM_ERR_IID_SIGNATURE,
                    "instance identity signature does not verify with the certificate of "
                    "trust \"%s\"",
                    p->trust->name);
  int64_t now = idm_clock_now_s(clk);
  int64_t age = now - iid.pending_s;
  if (age > p->trust->max_age_s)
    return idm_fail(why, IDM_ERR_IID_TOO_OLD,
                    "instance identity document is %llds old (pendingTime), over the %llds "
                    "max_age of trust \"%s\"",
                    (long long)age, (long long)p->trust->max_age_s, p->trust->name);
  if (-age > p->leeway_s)
    return idm_fail(why, IDM_ERR_IID_FUTURE, "pendingTime is %llds in the future",
                    (long long)-age);
  idm_attest_set_common(p, out);
  pol_client_t *c = &out->client;
  idm_attr_set(c, POL_A_SUBJECT, iid.instance_id, iid.instance_id_len);
  idm_attr_set(c, POL_A_ACCOUNT, iid.account, iid.account_len);
  idm_attr_set(c, POL_A_REGION, iid.region, iid.region_len);
  idm_attr_set(c, POL_A_INSTANCE_ID, iid.instance_id, iid.instance_id_len);
  idm_attr_set(c, POL_A_IMAGE_ID, iid.image_id, iid.image_id_len);
  idm_attr_set(c, POL_A_INSTANCE_TYPE, iid.instance_type, iid.instance_type_len);
  out->exp_s = iid.pending_s + p->trust->max_age_s;
  return IDM_OK;
}
