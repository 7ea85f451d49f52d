/* The configuration language: lexer, parser, type checker and block validation.
 *
 * One pass over the text builds the compiled representation directly (interned strings,
 * flat expression nodes, rules); nothing is kept of the source but its hash. Names may be
 * used before they are declared, so references (a rule's targets, `trust == "x"`) are
 * recorded with their position and resolved after the last block, followed by the kind
 * analysis (an attribute must exist for some kind the condition can match).
 *
 * Errors never stop the pass: each is recorded as "file:line:col: message" with the
 * source line and a caret, and the parser resynchronises at the next line (statements
 * end at a line end or a closing brace), so one run reports every independent mistake,
 * up to POL_ERRORS_MAX. Any error means no configuration is returned.
 *
 * The lexer is deliberately small: strings, punctuation, comparison operators and
 * "words", a run of [A-Za-z0-9_.:/-] that covers identifiers, numbers, durations, times
 * (06:00..22:00), IPv4/IPv6 CIDRs and attribute paths (claims.email). What a word means
 * is decided by the parser from the key or attribute it belongs to, so every value is
 * checked against the type its position demands. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"

uint64_t pol_random_seed(void);
bool pol_config_build_names(pol_config_t *c);

enum {
  T_EOF, T_WORD, T_STR, T_LBRACE, T_RBRACE, T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN,
  T_COMMA, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_BAD,
};

typedef struct tok {
  int t;
  uint32_t off, n; /* for T_STR: the raw text between the quotes */
  uint32_t line, col;
  bool bol; /* first token on its line */
} tok_t;

typedef struct pos {
  uint32_t off, line, col;
} pos_t;

enum { REF_TRUST, REF_TARGET };
typedef struct ref {
  uint8_t kind;
  uint32_t sid;
  pos_t at;
} ref_t;

enum { DEF_TRUST, DEF_TARGET, DEF_RULE, DEF_TKEY, DEF__N };

typedef struct parser {
  const char *src;
  size_t len, pos;
  uint32_t line;
  size_t line_off;
  bool at_bol;
  const char *file;
  pol_diag_t *diag;
  uint32_t nerr;
  bool oom;
  tok_t tok;
  pol_config_t *c;
  char *dir; /* directory of the file, for relative paths */
  ref_t *refs;
  uint32_t refs_n, refs_cap;
  pos_t *npos; /* position of every node */
  uint32_t npos_cap;
  pos_t *rpos; /* position of every rule's name, client and target */
  uint32_t rpos_cap;
  uint32_t *def[DEF__N]; /* sid -> line + 1 of its definition */
  uint32_t def_cap[DEF__N];
  bool server_seen;
  bool trust_kindless; /* a trust block without a valid kind was seen */
  char sbuf[POL_STRING_MAX_BYTES + 1];
} parser_t;

/* ---- diagnostics ------------------------------------------------------------------ */
__attribute__((format(printf, 3, 0))) static void verr(parser_t *p, pos_t at, const char *fmt,
                                                     va_list ap) {
  p->nerr++;
  if (!p->diag || p->oom) /* after running out of memory, that is the one error to tell */
    return;
  uint32_t k = p->diag->count++;
  if (k >= POL_DIAG_MAX)
    return;
  char msg[256];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t off = at.off > p->len ? p->len : at.off;
  size_t ls = off;
  while (ls > 0 && p->src[ls - 1] != '\n')
    ls--;
  /* a long line is shown as a window around the column, so the caret stays under it */
  bool cut = off - ls > 100;
  if (cut)
    ls = off - 60;
  size_t le = ls;
  while (le < p->len && p->src[le] != '\n' && le - ls < 150)
    le++;
  char line[161], caret[161];
  size_t n = 0, cn = 0;
  if (cut) {
    memcpy(line, "...", 3);
    memcpy(caret, "   ", 3);
    n = cn = 3;
  }
  for (size_t i = ls; i < le; i++)
    line[n++] = (p->src[i] == '\t' || isprint((unsigned char)p->src[i])) ? p->src[i] : '?';
  line[n] = 0;
  for (size_t i = ls; i < off && cn < 159; i++)
    caret[cn++] = (i < le && p->src[i] == '\t') ? '\t' : ' ';
  caret[cn++] = '^';
  caret[cn] = 0;
  /* a very long file name or message is cut at the entry's size, on purpose */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
  snprintf(p->diag->text[k], sizeof p->diag->text[k], "%s:%u:%u: %s\n%s\n%s", p->file, at.line,
           at.col, msg, line, caret);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

__attribute__((format(printf, 3, 4))) static void err_at(parser_t *p, pos_t at,
                                                          const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr(p, at, fmt, ap);
  va_end(ap);
}

static pos_t tpos(const tok_t *t) {
  pos_t q = {t->off, t->line, t->col};
  if (t->t == T_STR && q.off > 0) { /* point at the opening quote */
    q.off--;
    q.col--;
  }
  return q;
}

__attribute__((format(printf, 2, 3))) static void err(parser_t *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr(p, tpos(&p->tok), fmt, ap);
  va_end(ap);
}

static bool stopped(const parser_t *p) { return p->oom || p->nerr >= POL_ERRORS_MAX; }

/* ---- lexer ------------------------------------------------------------------------ */
static bool word_char(unsigned char ch) {
  return isalnum(ch) || ch == '_' || ch == '.' || ch == ':' || ch == '/' || ch == '-';
}

static void next(parser_t *p) {
  for (;;) {
    while (p->pos < p->len) {
      char ch = p->src[p->pos];
      if (ch == '\n') {
        p->pos++;
        p->line++;
        p->line_off = p->pos;
        p->at_bol = true;
      } else if (ch == ' ' || ch == '\t' || ch == '\r') {
        p->pos++;
      } else if (ch == '#') {
        while (p->pos < p->len && p->src[p->pos] != '\n')
          p->pos++;
      } else {
        break;
      }
    }
    tok_t *t = &p->tok;
    t->bol = p->at_bol;
    p->at_bol = false;
    t->off = (uint32_t)p->pos;
    t->line = p->line;
    t->col = (uint32_t)(p->pos - p->line_off + 1);
    t->n = 0;
    if (p->pos >= p->len) {
      t->t = T_EOF;
      return;
    }
    unsigned char ch = (unsigned char)p->src[p->pos];
    char c2 = p->pos + 1 < p->len ? p->src[p->pos + 1] : 0;
    p->pos++;
    switch (ch) {
    case '{': t->t = T_LBRACE; return;
    case '}': t->t = T_RBRACE; return;
    case '[': t->t = T_LBRACK; return;
    case ']': t->t = T_RBRACK; return;
    case '(': t->t = T_LPAREN; return;
    case ')': t->t = T_RPAREN; return;
    case ',': t->t = T_COMMA; return;
    case '=':
      if (c2 == '=') {
        p->pos++;
        t->t = T_EQ;
        return;
      }
      err(p, "'=' is not an operator; did you mean '=='?");
      t->t = T_BAD;
      return;
    case '!':
      if (c2 == '=') {
        p->pos++;
        t->t = T_NE;
        return;
      }
      err(p, "'!' is not an operator; use '!=' or 'not'");
      t->t = T_BAD;
      return;
    case '<':
    case '>':
      t->t = ch == '<' ? T_LT : T_GT;
      if (c2 == '=') {
        p->pos++;
        t->t++;
      }
      return;
    case '"': {
      t->t = T_STR;
      t->off = (uint32_t)p->pos;
      t->col++;
      while (p->pos < p->len && p->src[p->pos] != '"' && p->src[p->pos] != '\n') {
        if (p->src[p->pos] == '\\' && p->pos + 1 < p->len && p->src[p->pos + 1] != '\n')
          p->pos++;
        p->pos++;
      }
      if (p->pos >= p->len || p->src[p->pos] != '"') {
        err_at(p, (pos_t){t->off - 1, t->line, t->col - 1}, "unterminated string");
        t->t = T_BAD;
        return;
      }
      t->n = (uint32_t)(p->pos - t->off);
      p->pos++;
      return;
    }
    default:
      if (word_char(ch)) {
        while (p->pos < p->len && word_char((unsigned char)p->src[p->pos]))
          p->pos++;
        t->t = T_WORD;
        t->n = (uint32_t)(p->pos - t->off);
        return;
      }
      if (isprint(ch))
        err(p, "unexpected character '%c'", ch);
      else
        err(p, "unexpected byte 0x%02x", ch);
      t->t = T_BAD;
      return;
    }
  }
}

static bool is_word(const parser_t *p, const char *w) {
  size_t n = strlen(w);
  return p->tok.t == T_WORD && p->tok.n == n && memcmp(p->src + p->tok.off, w, n) == 0;
}

static const char *tok_desc(const parser_t *p, char *buf, size_t cap) {
  const tok_t *t = &p->tok;
  switch (t->t) {
  case T_EOF: return "end of file";
  case T_WORD: snprintf(buf, cap, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), p->src + t->off); return buf;
  case T_STR: snprintf(buf, cap, "string \"%.*s\"", (int)(t->n > 40 ? 40 : t->n), p->src + t->off); return buf;
  case T_LBRACE: return "'{'";
  case T_RBRACE: return "'}'";
  case T_LBRACK: return "'['";
  case T_RBRACK: return "']'";
  case T_LPAREN: return "'('";
  case T_RPAREN: return "')'";
  case T_COMMA: return "','";
  case T_EQ: return "'=='";
  case T_NE: return "'!='";
  case T_LT: return "'<'";
  case T_LE: return "'<='";
  case T_GT: return "'>'";
  case T_GE: return "'>='";
  default: return "an invalid token";
  }
}
#define TOKD(p) tok_desc((p), (char[64]){0}, 64)

/* Decodes the current string token into p->sbuf. Returns its length or -1 (reported). */
static long str_decode(parser_t *p) {
  const char *s = p->src + p->tok.off;
  size_t n = p->tok.n, o = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '\\') {
      char e = s[++i];
      if (e == '"' || e == '\\') {
        ch = e;
      } else if (e == 'n') {
        ch = '\n';
      } else if (e == 't') {
        ch = '\t';
      } else {
        err_at(p, (pos_t){p->tok.off + (uint32_t)i - 1, p->tok.line, p->tok.col + (uint32_t)i - 1},
               "unknown escape '\\%c' (use \\\", \\\\, \\n or \\t)", isprint((unsigned char)e) ? e : '?');
        return -1;
      }
    } else if ((unsigned char)ch < 0x20 && ch != '\t') {
      err(p, "control character in string");
      return -1;
    }
    if (o >= POL_STRING_MAX_BYTES) {
      err(p, "string longer than %u bytes", POL_STRING_MAX_BYTES);
      return -1;
    }
    p->sbuf[o++] = ch;
  }
  p->sbuf[o] = 0;
  return (long)o;
}

/* ---- storage helpers -------------------------------------------------------------- */
static bool oom(parser_t *p) {
  if (!p->oom) {
    err(p, "out of memory");
    p->oom = true;
  }
  return false;
}

static uint32_t intern(parser_t *p, const char *s, size_t n) {
  uint32_t id = pol_intern(p->c, s, n);
  if (id == POL_NONE)
    oom(p);
  return id;
}

static uint32_t u32_push(parser_t *p, const uint32_t *v, uint32_t n) {
  pol_config_t *c = p->c;
  if (!pol_grow((void **)&c->u32, &c->u32_cap, (uint64_t)c->u32_n + n, sizeof *c->u32)) {
    oom(p);
    return POL_NONE;
  }
  uint32_t off = c->u32_n;
  if (n)
    memcpy(c->u32 + off, v, n * sizeof *v);
  c->u32_n += n;
  return off;
}

static uint32_t node_new(parser_t *p, pos_t at, uint8_t op, uint8_t src, uint16_t attr,
                         uint32_t name, uint32_t a, uint32_t b) {
  pol_config_t *c = p->c;
  if (!pol_grow((void **)&c->nodes, &c->nodes_cap, (uint64_t)c->nodes_n + 1, sizeof *c->nodes)) {
    oom(p);
    return POL_NONE;
  }
  if (!pol_grow((void **)&p->npos, &p->npos_cap, (uint64_t)c->nodes_n + 1, sizeof *p->npos)) {
    oom(p);
    return POL_NONE;
  }
  uint32_t id = c->nodes_n++;
  c->nodes[id] = (pol_node_t){op, src, attr, name, a, b};
  p->npos[id] = at;
  return id;
}

static char *own_str(parser_t *p, const char *s, size_t n) {
  char *d = pol_malloc(n + 1);
  if (!d || !pol_own(p->c, d)) {
    oom(p);
    return NULL;
  }
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

static char *own_path(parser_t *p, const char *s, size_t n) {
  if (n > 0 && s[0] == '/')
    return own_str(p, s, n);
  size_t dn = strlen(p->dir);
  char *d = pol_malloc(dn + 1 + n + 1);
  if (!d || !pol_own(p->c, d)) {
    oom(p);
    return NULL;
  }
  memcpy(d, p->dir, dn);
  d[dn] = '/';
  memcpy(d + dn + 1, s, n);
  d[dn + 1 + n] = 0;
  return d;
}

static void ref_add(parser_t *p, uint8_t kind, uint32_t sid, pos_t at) {
  if (!pol_grow((void **)&p->refs, &p->refs_cap, (uint64_t)p->refs_n + 1, sizeof *p->refs)) {
    oom(p);
    return;
  }
  p->refs[p->refs_n++] = (ref_t){kind, sid, at};
}

/* Records a definition; returns the line of an earlier one with the same name, or 0. */
static uint32_t define(parser_t *p, int cat, uint32_t sid, uint32_t line) {
  if (sid == POL_NONE)
    return 0;
  uint32_t old = p->def_cap[cat];
  if (!pol_grow((void **)&p->def[cat], &p->def_cap[cat], (uint64_t)sid + 1, sizeof(uint32_t))) {
    oom(p);
    return 0;
  }
  if (p->def_cap[cat] > old)
    memset(p->def[cat] + old, 0, (p->def_cap[cat] - old) * sizeof(uint32_t));
  if (p->def[cat][sid])
    return p->def[cat][sid];
  p->def[cat][sid] = line;
  return 0;
}

/* ---- value parsers (each reports its own error and returns false) ------------------ */
/* A statement ends at the end of its line or at the block's closing brace. */
static bool end_of_statement(parser_t *p, const char *what) {
  if (p->tok.t == T_EOF || p->tok.t == T_RBRACE || p->tok.bol)
    return true;
  err(p, "unexpected %s after %s (one setting per line)", TOKD(p), what);
  return false;
}

static bool val_str(parser_t *p, const char *key, long *n) {
  if (p->tok.t != T_STR) {
    err(p, "'%s' takes a quoted string, not %s", key, TOKD(p));
    return false;
  }
  *n = str_decode(p);
  if (*n < 0)
    return false;
  if (*n == 0) {
    err(p, "'%s' must not be empty", key);
    return false;
  }
  next(p);
  return true;
}

/* "a" | "a", "b" | ["a", "b"] into a NULL-terminated owned array. */
static bool val_strlist(parser_t *p, const char *key, const char *const **out, uint32_t *count) {
  char **v = NULL;
  uint32_t n = 0, cap = 0;
  bool bracket = p->tok.t == T_LBRACK;
  if (bracket)
    next(p);
  for (;;) {
    if (bracket && p->tok.t == T_RBRACK && n > 0)
      break;
    if (p->tok.t != T_STR) {
      err(p, "'%s' takes quoted strings, not %s", key, TOKD(p));
      free(v);
      return false;
    }
    long len = str_decode(p);
    if (len < 0) {
      free(v);
      return false;
    }
    if (len == 0) {
      err(p, "'%s' values must not be empty", key);
      free(v);
      return false;
    }
    if (n >= POL_LIST_MAX || !pol_grow((void **)&v, &cap, (uint64_t)n + 2, sizeof *v)) {
      free(v);
      return oom(p);
    }
    if (!(v[n++] = own_str(p, p->sbuf, (size_t)len))) {
      free(v);
      return false;
    }
    next(p);
    if (p->tok.t != T_COMMA)
      break;
    next(p);
  }
  if (bracket) {
    if (p->tok.t != T_RBRACK) {
      err(p, "expected ',' or ']' in the list of '%s', got %s", key, TOKD(p));
      free(v);
      return false;
    }
    next(p);
  }
  v[n] = NULL;
  if (!pol_own(p->c, v))
    return oom(p);
  *out = (const char *const *)v;
  *count = n;
  return true;
}

/* A word or a quoted string (enumerations accept either); copies into p->sbuf. */
static long val_word(parser_t *p, const char *key) {
  if (p->tok.t == T_STR)
    return str_decode(p);
  if (p->tok.t != T_WORD) {
    err(p, "'%s' takes a name, not %s", key, TOKD(p));
    return -1;
  }
  if (p->tok.n > POL_STRING_MAX_BYTES) {
    err(p, "value too long");
    return -1;
  }
  memcpy(p->sbuf, p->src + p->tok.off, p->tok.n);
  p->sbuf[p->tok.n] = 0;
  return p->tok.n;
}

/* One of n names (a word or a quoted string): its index, the token consumed; else -1 with
 * "unknown KEY X (expected A or B)". */
static int val_choice(parser_t *p, const char *key, const char *const *names, int n) {
  if (val_word(p, key) < 0)
    return -1;
  for (int i = 0; i < n; i++)
    if (!strcmp(p->sbuf, names[i])) {
      next(p);
      return i;
    }
  char want[128];
  size_t w = 0;
  for (int i = 0; i < n && w < sizeof want; i++) {
    int k = snprintf(want + w, sizeof want - w, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ",
                     names[i]);
    if (k < 0)
      break;
    w += (size_t)k;
  }
  err(p, "unknown %s %s (expected %s)", key, TOKD(p), want);
  return -1;
}

/* "30s" "5m" "1h" "2d" (and "250ms" when ms_ok) into milliseconds; "0" is allowed bare. */
static bool parse_duration_ms(const char *s, size_t n, bool ms_ok, int64_t *out) {
  size_t i = 0;
  int64_t v = 0;
  while (i < n && s[i] >= '0' && s[i] <= '9') {
    v = v * 10 + (s[i] - '0');
    if (v > 100000000000ll)
      return false;
    i++;
  }
  if (i == 0)
    return false;
  const char *u = s + i;
  size_t un = n - i;
  int64_t mult;
  if (un == 0 && v == 0)
    mult = 0;
  else if (un == 2 && !memcmp(u, "ms", 2) && ms_ok)
    mult = 1;
  else if (un == 1 && *u == 's')
    mult = 1000;
  else if (un == 1 && *u == 'm')
    mult = 60000;
  else if (un == 1 && *u == 'h')
    mult = 3600000;
  else if (un == 1 && *u == 'd')
    mult = 86400000;
  else
    return false;
  if (v > 10ll * 366 * 86400 * 1000 / (mult ? mult : 1))
    return false;
  *out = v * mult;
  return true;
}

static bool val_duration_s(parser_t *p, const char *key, int64_t *out) {
  int64_t ms;
  if (p->tok.t != T_WORD ||
      !parse_duration_ms(p->src + p->tok.off, p->tok.n, false, &ms) || ms % 1000) {
    err(p, "'%s' takes a duration like 30s, 5m or 1h, not %s", key, TOKD(p));
    return false;
  }
  *out = ms / 1000;
  next(p);
  return true;
}

static bool val_uint(parser_t *p, const char *key, uint32_t max, uint32_t *out) {
  uint64_t v = 0;
  bool ok = p->tok.t == T_WORD && p->tok.n > 0 && p->tok.n <= 10;
  for (uint32_t i = 0; ok && i < p->tok.n; i++) {
    char ch = p->src[p->tok.off + i];
    ok = ch >= '0' && ch <= '9';
    v = v * 10 + (uint64_t)(ch - '0');
  }
  if (!ok) {
    err(p, "'%s' takes a whole number, not %s", key, TOKD(p));
    return false;
  }
  if (v > max) {
    err(p, "'%s' is %llu; the most allowed is %u", key, (unsigned long long)v, max);
    return false;
  }
  *out = (uint32_t)v;
  next(p);
  return true;
}

/* One CIDR ("10.0.0.0/8", "::1/128", a bare address meaning one host) from a word or string. */
static bool parse_cidr(parser_t *p, pol_cidr_t *out) {
  long n = val_word(p, "CIDR");
  if (n < 0)
    return false;
  char *slash = strchr(p->sbuf, '/');
  long bits = -1;
  if (slash) {
    *slash = 0;
    char *end;
    if (!slash[1] || !isdigit((unsigned char)slash[1]) || strlen(slash + 1) > 3) {
      err(p, "bad prefix length in CIDR");
      return false;
    }
    bits = strtol(slash + 1, &end, 10);
    if (*end) {
      err(p, "bad prefix length in CIDR");
      return false;
    }
  }
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, p->sbuf, out->addr) == 1) {
    out->family = 4;
    if (bits < 0)
      bits = 32;
    if (bits > 32) {
      err(p, "IPv4 prefix length %ld is more than 32", bits);
      return false;
    }
  } else if (inet_pton(AF_INET6, p->sbuf, out->addr) == 1) {
    out->family = 6;
    if (bits < 0)
      bits = 128;
    if (bits > 128) {
      err(p, "IPv6 prefix length %ld is more than 128", bits);
      return false;
    }
  } else {
    err(p, "expected a CIDR like 10.0.0.0/8 or fd00::/8, not %s", TOKD(p));
    return false;
  }
  out->prefix = (uint8_t)bits;
  uint32_t nbytes = out->family == 4 ? 4 : 16;
  for (uint32_t i = 0; i < nbytes * 8; i++) {
    if (i >= (uint32_t)bits && (out->addr[i / 8] >> (7 - i % 8)) & 1) {
      err(p, "CIDR has bits set after its /%ld prefix", bits);
      return false;
    }
  }
  next(p);
  return true;
}

static bool val_cidrlist(parser_t *p, const char *key, pol_cidr_t **out, uint32_t *count) {
  pol_cidr_t *v = NULL;
  uint32_t n = 0, cap = 0;
  bool bracket = p->tok.t == T_LBRACK;
  if (bracket)
    next(p);
  for (;;) {
    if (bracket && p->tok.t == T_RBRACK)
      break;
    if (n >= POL_LIST_MAX || !pol_grow((void **)&v, &cap, (uint64_t)n + 1, sizeof *v)) {
      free(v);
      return oom(p);
    }
    if (!parse_cidr(p, &v[n])) {
      free(v);
      return false;
    }
    n++;
    if (p->tok.t != T_COMMA)
      break;
    next(p);
  }
  if (bracket) {
    if (p->tok.t != T_RBRACK) {
      err(p, "expected ',' or ']' in the list of '%s', got %s", key, TOKD(p));
      free(v);
      return false;
    }
    next(p);
  }
  if (v && !pol_own(p->c, v))
    return oom(p);
  *out = v;
  *count = n;
  return true;
}

/* Skips to the next statement: a token that starts a line, a '}' or the end. */
static void sync_line(parser_t *p) {
  do
    next(p);
  while (p->tok.t != T_EOF && p->tok.t != T_RBRACE && !p->tok.bol);
}

/* ---- the server block ------------------------------------------------------------- */
static bool valid_listen(const char *s) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
    return false;
  long port = 0;
  for (const char *q = colon + 1; *q; q++) {
    if (!isdigit((unsigned char)*q))
      return false;
    port = port * 10 + (*q - '0');
  }
  if (port < 1 || port > 65535)
    return false;
  if (s[0] == '[')
    return colon > s + 2 && colon[-1] == ']';
  return memchr(s, ':', (size_t)(colon - s)) == NULL;
}

static bool valid_issuer(const char *s) {
  return (!strncmp(s, "https://", 8) && s[8]) || (!strncmp(s, "http://", 7) && s[7]);
}

static const char *const server_keys[] = {"listen", "issuer", "keys", "audit", "threads",
                                          "trusted_proxies", "fsync", "batch_max",
                                          "max_connections", "unix_socket", "node_id",
                                          "audit_preallocate", NULL};

static int key_index(parser_t *p, const char *const *keys) {
  for (int i = 0; keys[i]; i++)
    if (is_word(p, keys[i]))
      return i;
  return -1;
}

static void list_keys(char *buf, size_t cap, const char *const *keys) {
  size_t o = 0;
  buf[0] = 0;
  for (int i = 0; keys[i] && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", keys[i]);
}

/* Opens a block: expects '{'. */
static bool open_block(parser_t *p, const char *what) {
  if (p->tok.t != T_LBRACE) {
    err(p, "expected '{' to open the %s block, got %s", what, TOKD(p));
    return false;
  }
  next(p);
  return true;
}

/* Common loop of a block's body: calls item(p, key index, ud) for every statement, and
 * handles unknown keys, duplicates (positions in seen[]), statement ends and recovery.
 * Consumes the closing '}'; reports a block left open at the end of the file. */
typedef bool (*item_fn)(parser_t *p, int key, void *ud);
static void block_body(parser_t *p, const char *what, pos_t opened, const char *const *keys,
                       item_fn item, void *ud, pos_t *seen) {
  while (p->tok.t != T_RBRACE && !stopped(p)) {
    if (p->tok.t == T_EOF) {
      err_at(p, opened, "%s block is never closed with '}'", what);
      return;
    }
    int k = p->tok.t == T_WORD ? key_index(p, keys) : -1;
    if (k < 0) {
      char list[400];
      list_keys(list, sizeof list, keys);
      if (p->tok.t == T_WORD)
        err(p, "unknown key %s in %s block (expected one of: %s)", TOKD(p), what, list);
      else
        err(p, "expected a key in %s block, got %s", what, TOKD(p));
      sync_line(p);
      continue;
    }
    pos_t at = tpos(&p->tok);
    if (seen[k].line) {
      err(p, "duplicate '%s' in %s block (first set at line %u)", keys[k], what, seen[k].line);
      sync_line(p);
      continue;
    }
    seen[k] = at;
    next(p);
    if (!item(p, k, ud) || !end_of_statement(p, keys[k])) {
      if (p->tok.t != T_RBRACE && !(p->tok.bol && p->tok.t != T_BAD))
        sync_line(p);
    }
  }
  if (p->tok.t == T_RBRACE)
    next(p);
}

static bool server_item(parser_t *p, int k, void *ud) {
  pol_server_t *s = &p->c->server;
  long n;
  switch (k) {
  case 0: {
    pos_t at = tpos(&p->tok);
    if (!val_strlist(p, "listen", &s->listen, &s->listen_count))
      return false;
    for (uint32_t i = 0; i < s->listen_count; i++)
      if (!valid_listen(s->listen[i])) {
        err_at(p, at, "listen address \"%s\" is not host:port (IPv6 as [addr]:port)", s->listen[i]);
        return false;
      }
    return true;
  }
  case 1:
    if (!val_str(p, "issuer", &n))
      return false;
    if (!valid_issuer(p->sbuf)) {
      err_at(p, (pos_t){p->tok.off, p->tok.line, p->tok.col}, "issuer must be an http:// or https:// URL");
      return false;
    }
    return (s->issuer = own_str(p, p->sbuf, (size_t)n)) != NULL;
  case 2: return val_str(p, "keys", &n) && (s->keys_dir = own_path(p, p->sbuf, (size_t)n));
  case 3: return val_str(p, "audit", &n) && (s->audit_path = own_path(p, p->sbuf, (size_t)n));
  case 4: return val_uint(p, "threads", 1024, &s->threads);
  case 5: {
    pol_cidr_t *v;
    if (!val_cidrlist(p, "trusted_proxies", &v, &s->trusted_proxy_count))
      return false;
    s->trusted_proxies = v;
    return true;
  }
  case 6: {
    n = val_word(p, "fsync");
    if (n < 0)
      return false;
    int64_t ms;
    if (strcmp(p->sbuf, "none") && strcmp(p->sbuf, "batch") &&
        (!parse_duration_ms(p->sbuf, (size_t)n, true, &ms) || ms == 0)) {
      err(p, "fsync is none, batch or an interval like 100ms or 1s, not %s", TOKD(p));
      return false;
    }
    next(p);
    return (s->fsync = own_str(p, p->sbuf, (size_t)n)) != NULL;
  }
  case 7:
    if (!val_uint(p, "batch_max", 65536, &s->batch_max))
      return false;
    if (s->batch_max == 0) {
      err_at(p, ((pos_t *)ud)[7], "batch_max must be at least 1");
      return false;
    }
    return true;
  case 8:
    if (!val_uint(p, "max_connections", 1u << 20, &s->max_connections))
      return false;
    if (s->max_connections == 0) {
      err_at(p, ((pos_t *)ud)[8], "max_connections must be at least 1");
      return false;
    }
    return true;
  case 9: return val_str(p, "unix_socket", &n) && (s->unix_socket = own_path(p, p->sbuf, (size_t)n));
  case 10:
    if (!val_str(p, "node_id", &n))
      return false;
    for (long i = 0; i < n; i++)
      if (!isalnum((unsigned char)p->sbuf[i]) && !strchr("._-", p->sbuf[i])) {
        err_at(p, ((pos_t *)ud)[10], "node_id may hold only letters, digits, '.', '_' and '-'");
        return false;
      }
    if (n > 64) {
      err_at(p, ((pos_t *)ud)[10], "node_id is longer than 64 characters");
      return false;
    }
    return (s->node_id = own_str(p, p->sbuf, (size_t)n)) != NULL;
  case 11: /* MiB; the engine's IDM_AUDIT_PREALLOC_MAX_MIB */
    return val_uint(p, "audit_preallocate", 16384, &s->audit_preallocate);
  }
  return false;
}

static void parse_server(parser_t *p) {
  pos_t at = tpos(&p->tok);
  if (p->server_seen)
    err(p, "more than one server block");
  p->server_seen = true;
  next(p);
  if (!open_block(p, "server")) {
    sync_line(p);
    return;
  }
  pos_t seen[16] = {{0}};
  block_body(p, "server", at, server_keys, server_item, seen, seen);
}

/* ---- trust blocks ----------------------------------------------------------------- */
enum {
  K_KIND, K_ISSUER, K_JWKS, K_AUDIENCE, K_ALGS, K_LEEWAY, K_MAXLIFE, K_TD, K_CERT, K_MAXAGE,
  K_STORE, K__N
};
static const char *const trust_keys[] = {"kind", "issuer", "jwks", "audience", "algorithms",
                                         "leeway", "max_lifetime", "trust_domain",
                                         "certificate", "max_age", "store", NULL};
#define JWT_KEYS ((1u << K_KIND) | (1u << K_ISSUER) | (1u << K_JWKS) | (1u << K_AUDIENCE) | \
                  (1u << K_ALGS) | (1u << K_LEEWAY) | (1u << K_MAXLIFE))
static const uint32_t kind_allowed[POL_KIND__COUNT] = {
    [POL_KIND_KUBERNETES] = JWT_KEYS,
    [POL_KIND_GITHUB] = JWT_KEYS,
    [POL_KIND_GITLAB] = JWT_KEYS,
    [POL_KIND_SPIFFE] = JWT_KEYS | (1u << K_TD),
    [POL_KIND_OIDC] = JWT_KEYS,
    [POL_KIND_AWS_IID] = (1u << K_KIND) | (1u << K_CERT) | (1u << K_MAXAGE),
    [POL_KIND_JOIN_TOKEN] = (1u << K_KIND) | (1u << K_STORE),
    [POL_KIND_UNIX] = (1u << K_KIND),
};
static const uint32_t kind_required[POL_KIND__COUNT] = {
    [POL_KIND_KUBERNETES] = (1u << K_ISSUER) | (1u << K_JWKS) | (1u << K_AUDIENCE),
    [POL_KIND_GITHUB] = (1u << K_JWKS) | (1u << K_AUDIENCE),
    [POL_KIND_GITLAB] = (1u << K_JWKS) | (1u << K_AUDIENCE),
    [POL_KIND_SPIFFE] = (1u << K_TD) | (1u << K_JWKS) | (1u << K_AUDIENCE),
    [POL_KIND_OIDC] = (1u << K_ISSUER) | (1u << K_JWKS) | (1u << K_AUDIENCE),
    [POL_KIND_AWS_IID] = (1u << K_CERT),
    [POL_KIND_JOIN_TOKEN] = (1u << K_STORE),
    [POL_KIND_UNIX] = 0,
};
static const char *const known_algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                         "ES256", "ES384", "ES512", "EdDSA", NULL};

static int kind_from(const char *s) {
  for (int k = 0; k < POL_KIND__COUNT; k++)
    if (!strcmp(s, pol_kind_name((pol_kind_t)k)))
      return k;
  return -1;
}

typedef struct trust_ud {
  pol_trust_t *t;
  int kind;
} trust_ud_t;

static bool trust_item(parser_t *p, int k, void *ud) {
  trust_ud_t *u = ud;
  pol_trust_t *t = u->t;
  long n;
  switch (k) {
  case K_KIND:
    n = val_word(p, "kind");
    if (n < 0)
      return false;
    u->kind = kind_from(p->sbuf);
    if (u->kind < 0) {
      err(p, "unknown trust kind %s (expected kubernetes, github, gitlab, spiffe, oidc, "
             "aws-iid, join-token or unix)", TOKD(p));
      return false;
    }
    t->kind = (pol_kind_t)u->kind;
    next(p);
    return true;
  case K_ISSUER:
    if (!val_str(p, "issuer", &n))
      return false;
    return (t->issuer = own_str(p, p->sbuf, (size_t)n)) != NULL;
  case K_JWKS: return val_str(p, "jwks", &n) && (t->jwks = own_path(p, p->sbuf, (size_t)n));
  case K_AUDIENCE: return val_strlist(p, "audience", &t->audience, &t->audience_count);
  case K_ALGS: {
    pos_t at = tpos(&p->tok);
    if (p->tok.t != T_LBRACK) {
      err(p, "'algorithms' takes a list like [ES256, RS256]");
      return false;
    }
    next(p);
    char **v = NULL;
    uint32_t cnt = 0, cap = 0;
    while (p->tok.t != T_RBRACK) {
      n = val_word(p, "algorithms");
      if (n < 0) {
        free(v);
        return false;
      }
      int ok = 0;
      for (int i = 0; known_algs[i]; i++)
        ok |= !strcmp(known_algs[i], p->sbuf);
      if (!ok) {
        err(p, "unknown algorithm %s (expected RS256..RS512, PS256..PS512, ES256..ES512 or EdDSA)",
            TOKD(p));
        free(v);
        return false;
      }
      if (cnt >= 16 || !pol_grow((void **)&v, &cap, (uint64_t)cnt + 2, sizeof *v) ||
          !(v[cnt++] = own_str(p, p->sbuf, (size_t)n))) {
        free(v);
        return oom(p);
      }
      next(p);
      if (p->tok.t == T_COMMA)
        next(p);
      else if (p->tok.t != T_RBRACK) {
        err(p, "expected ',' or ']' in algorithms, got %s", TOKD(p));
        free(v);
        return false;
      }
    }
    next(p);
    if (!cnt) {
      err_at(p, at, "algorithms must not be empty");
      free(v);
      return false;
    }
    v[cnt] = NULL;
    if (!pol_own(p->c, v))
      return oom(p);
    t->algorithms = (const char *const *)v;
    t->algorithm_count = cnt;
    return true;
  }
  case K_LEEWAY: return val_duration_s(p, "leeway", &t->leeway_s);
  case K_MAXLIFE: return val_duration_s(p, "max_lifetime", &t->max_lifetime_s);
  case K_TD:
    if (!val_str(p, "trust_domain", &n))
      return false;
    return (t->trust_domain = own_str(p, p->sbuf, (size_t)n)) != NULL;
  case K_CERT: return val_str(p, "certificate", &n) && (t->certificate = own_path(p, p->sbuf, (size_t)n));
  case K_MAXAGE: return val_duration_s(p, "max_age", &t->max_age_s);
  case K_STORE: return val_str(p, "store", &n) && (t->store = own_path(p, p->sbuf, (size_t)n));
  }
  return false;
}

/* The quoted name after trust/target/permit/forbid: interned, and checked for duplicates. */
static uint32_t block_name(parser_t *p, const char *what, int cat, uint32_t line) {
  if (p->tok.t != T_STR) {
    err(p, "%s needs a quoted name, got %s", what, TOKD(p));
    return POL_NONE;
  }
  long n = str_decode(p);
  if (n < 0)
    return POL_NONE;
  if (n == 0) {
    err(p, "%s name must not be empty", what);
    return POL_NONE;
  }
  uint32_t sid = intern(p, p->sbuf, (size_t)n);
  uint32_t old = define(p, cat, sid, line);
  if (old)
    err(p, "duplicate %s name \"%s\" (first defined at line %u)", what, p->sbuf, old);
  next(p);
  return sid;
}

static void parse_trust(parser_t *p) {
  pos_t at = tpos(&p->tok);
  next(p);
  pos_t name_at = tpos(&p->tok);
  uint32_t sid = block_name(p, "trust", DEF_TRUST, at.line);
  if (sid == POL_NONE || !open_block(p, "trust")) {
    sync_line(p);
    return;
  }
  pol_trust_t t = {.name = own_str(p, pol_sid(p->c, sid).ptr, pol_sid(p->c, sid).len), .leeway_s = 30, .max_lifetime_s = 86400,
                   .max_age_s = 600};
  trust_ud_t u = {&t, -1};
  pos_t seen[K__N] = {{0}};
  block_body(p, "trust", at, trust_keys, trust_item, &u, seen);
  if (u.kind < 0) {
    p->trust_kindless = true;
    if (!seen[K_KIND].line)
      err_at(p, name_at, "trust \"%s\" needs a kind", t.name);
    return;
  }
  for (int k = 0; k < K__N; k++) {
    if (seen[k].line && !(kind_allowed[u.kind] & (1u << k)))
      err_at(p, seen[k], "key '%s' does not apply to trust kind %s", trust_keys[k],
             pol_kind_name(t.kind));
    if (!seen[k].line && (kind_required[u.kind] & (1u << k)))
      err_at(p, name_at, "trust \"%s\" (kind %s) needs '%s'", t.name, pol_kind_name(t.kind),
             trust_keys[k]);
  }
  if (!t.issuer && t.kind == POL_KIND_GITHUB)
    t.issuer = "https://token.actions.githubusercontent.com";
  if (!t.issuer && t.kind == POL_KIND_GITLAB)
    t.issuer = "https://gitlab.com";
  pol_config_t *c = p->c;
  if (c->trusts_n >= POL_BLOCKS_MAX ||
      !pol_grow((void **)&c->trusts, &c->trusts_cap, (uint64_t)c->trusts_n + 1, sizeof t)) {
    oom(p);
    return;
  }
  t.index = c->trusts_n;
  c->trusts[c->trusts_n++] = t;
}

/* ---- target blocks ---------------------------------------------------------------- */
static const char *const target_keys[] = {"audience", "format", "alg", "ttl", NULL};

static bool target_item(parser_t *p, int k, void *ud) {
  pol_target_t *t = ud;
  long n;
  switch (k) {
  case 0: return val_str(p, "audience", &n) && (t->audience = own_str(p, p->sbuf, (size_t)n));
  case 1: {
    static const char *const formats[] = {"jwt", "batch"}; /* pol_format_t order */
    int v = val_choice(p, "format", formats, 2);
    if (v < 0)
      return false;
    t->format = (pol_format_t)v;
    return true;
  }
  case 2: {
    static const char *const algs[] = {"EdDSA", "ES256"}; /* pol_alg_t order */
    int v = val_choice(p, "alg", algs, 2);
    if (v < 0)
      return false;
    t->alg = (pol_alg_t)v;
    return true;
  }
  case 3: {
    pos_t at = tpos(&p->tok);
    if (!val_duration_s(p, "ttl", &t->ttl_s))
      return false;
    if (t->ttl_s <= 0) {
      err_at(p, at, "ttl must be more than 0");
      return false;
    }
    return true;
  }
  }
  return false;
}

static void parse_target(parser_t *p) {
  pos_t at = tpos(&p->tok);
  next(p);
  uint32_t sid = block_name(p, "target", DEF_TARGET, at.line);
  if (sid == POL_NONE || !open_block(p, "target")) {
    sync_line(p);
    return;
  }
  pol_target_t t = {.name = own_str(p, pol_sid(p->c, sid).ptr, pol_sid(p->c, sid).len), .ttl_s = 300};
  if (!t.name)
    return;
  pos_t seen[8] = {{0}};
  block_body(p, "target", at, target_keys, target_item, &t, seen);
  if (!t.audience)
    t.audience = t.name;
  /* names and audiences share one namespace: a request names a target by either */
  uint32_t aud = intern(p, t.audience, strlen(t.audience));
  uint32_t old = p->def[DEF_TARGET] && p->def[DEF_TARGET][sid] == at.line ? define(p, DEF_TKEY, sid, at.line) : 0;
  if (old && old != at.line)
    err_at(p, at, "target name \"%s\" is already the audience of the target at line %u", t.name, old);
  if (aud != sid && (old = define(p, DEF_TKEY, aud, at.line)) != 0)
    err_at(p, seen[0].line ? seen[0] : at,
           "audience \"%s\" is already used by the target at line %u", t.audience, old);
  pol_config_t *c = p->c;
  if (c->targets_n >= POL_BLOCKS_MAX ||
      !pol_grow((void **)&c->targets, &c->targets_cap, (uint64_t)c->targets_n + 1, sizeof t)) {
    oom(p);
    return;
  }
  t.index = c->targets_n;
  c->targets[c->targets_n++] = t;
}

/* ---- expressions ------------------------------------------------------------------ */
enum { TY_STR, TY_NUM, TY_POSTURE, TY_IP, TY_TIME, TY_DAY };

typedef struct operand {
  uint8_t src, type;
  uint16_t attr;
  uint32_t name;
} operand_t;

static const char *const context_names[] = {"source_ip", "time", "day", NULL};

static bool resolve_attr(parser_t *p, bool client, operand_t *o) {
  const char *w = p->src + p->tok.off;
  uint32_t n = p->tok.n;
  char shown[80];
  snprintf(shown, sizeof shown, "%.*s", (int)(n > 60 ? 60 : n), w);
  for (int i = 0; i < POL_A__COUNT; i++) {
    const char *an = pol_attr_name((pol_attr_id_t)i);
    if (strlen(an) == n && !memcmp(an, w, n)) {
      if (!client) {
        err(p, "'%s' is a client attribute; test it in 'client', not 'when'", shown);
        return false;
      }
      o->src = POL_SRC_CLIENT;
      o->attr = (uint16_t)i;
      o->type = (i == POL_A_UID || i == POL_A_GID) ? TY_NUM : TY_STR;
      return true;
    }
  }
  for (int i = 0; context_names[i]; i++) {
    if (strlen(context_names[i]) == n && !memcmp(context_names[i], w, n)) {
      if (client) {
        err(p, "'%s' is a context attribute; test it in 'when', not 'client'", shown);
        return false;
      }
      o->src = (uint8_t)(POL_SRC_IP + i);
      o->type = (uint8_t)(TY_IP + i);
      return true;
    }
  }
  bool claim = n > 7 && !memcmp(w, "claims.", 7);
  bool posture = n > 8 && !memcmp(w, "posture.", 8);
  if (claim || posture) {
    size_t skip = claim ? 7 : 8;
    for (size_t i = skip; i < n; i++)
      if (!isalnum((unsigned char)w[i]) && w[i] != '_' && w[i] != '-') {
        err(p, "bad name in '%s' (letters, digits, '_' and '-')", shown);
        return false;
      }
    if (claim != client) {
      err(p, claim ? "'%s' is a client attribute; test it in 'client', not 'when'"
                   : "'%s' is a context attribute; test it in 'when', not 'client'",
          shown);
      return false;
    }
    o->src = claim ? POL_SRC_CLAIM : POL_SRC_POSTURE;
    o->type = claim ? TY_STR : TY_POSTURE;
    o->attr = 0;
    o->name = intern(p, w + skip, n - skip);
    return o->name != POL_NONE;
  }
  err(p, "unknown %s attribute '%s'", client ? "client" : "context", shown);
  return false;
}

static bool parse_number_tok(parser_t *p, double *v) {
  if (p->tok.t != T_WORD || !pol_parse_number(p->src + p->tok.off, p->tok.n, v))
    return false;
  next(p);
  return true;
}

static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL};

static int day_from(parser_t *p) {
  if (p->tok.t == T_WORD)
    for (int i = 0; day_names[i]; i++)
      if (is_word(p, day_names[i]))
        return i;
  err(p, "expected a day (mon, tue, wed, thu, fri, sat, sun), got %s", TOKD(p));
  return -1;
}

static int parse_hhmm(const char *s, size_t n, bool end) {
  size_t i = 0;
  int h = 0, m = 0;
  if (n < 4 || n > 5)
    return -1;
  while (i < n && s[i] != ':') {
    if (!isdigit((unsigned char)s[i]))
      return -1;
    h = h * 10 + (s[i++] - '0');
  }
  if (i == 0 || i > 2 || i + 3 != n || s[i] != ':' || !isdigit((unsigned char)s[i + 1]) ||
      !isdigit((unsigned char)s[i + 2]))
    return -1;
  m = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
  if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
    return -2;
  return h * 60 + m;
}

/* String value for attribute o (kind values may be bare words). Returns sid or NONE. */
static uint32_t str_value(parser_t *p, const operand_t *o) {
  bool kind = o->src == POL_SRC_CLIENT && o->attr == POL_A_KIND;
  if (p->tok.t != T_STR && !(kind && p->tok.t == T_WORD)) {
    if (p->tok.t == T_WORD)
      err(p, "type mismatch: this attribute holds strings; quote the value %s", TOKD(p));
    else
      err(p, "expected a quoted string, got %s", TOKD(p));
    return POL_NONE;
  }
  pos_t at = tpos(&p->tok);
  long n = p->tok.t == T_STR ? str_decode(p) : val_word(p, "kind");
  if (n < 0)
    return POL_NONE;
  if (kind && kind_from(p->sbuf) < 0) {
    err(p, "unknown kind %s (expected kubernetes, github, gitlab, spiffe, oidc, aws-iid, "
           "join-token or unix)", TOKD(p));
    return POL_NONE;
  }
  uint32_t sid = intern(p, p->sbuf, (size_t)n);
  if (o->src == POL_SRC_CLIENT && o->attr == POL_A_TRUST && sid != POL_NONE)
    ref_add(p, REF_TRUST, sid, at);
  next(p);
  return sid;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t sort_unique(uint32_t *v, uint32_t n) {
  if (n < 2)
    return n;
  qsort(v, n, sizeof *v, cmp_u32);
  uint32_t o = 1;
  for (uint32_t i = 1; i < n; i++)
    if (v[i] != v[o - 1])
      v[o++] = v[i];
  return o;
}

static bool nums_push(parser_t *p, double v, uint32_t *idx) {
  pol_config_t *c = p->c;
  if (!pol_grow((void **)&c->nums, &c->nums_cap, (uint64_t)c->nums_n + 1, sizeof *c->nums))
    return oom(p);
  *idx = c->nums_n;
  c->nums[c->nums_n++] = v;
  return true;
}

static uint32_t parse_comparison(parser_t *p, bool client) {
  pos_t at = tpos(&p->tok);
  operand_t o = {0};
  if (!resolve_attr(p, client, &o))
    return POL_NONE;
  char aname[80];
  snprintf(aname, sizeof aname, "%.*s", (int)(p->tok.n > 60 ? 60 : p->tok.n), p->src + p->tok.off);
  next(p);
  int t = p->tok.t;
  bool in = is_word(p, "in"), like = is_word(p, "like");
  if (!(in || like || (t >= T_EQ && t <= T_GE))) {
    err(p, "expected an operator (==, !=, in, like, <, <=, >, >=) after '%s', got %s", aname,
        TOKD(p));
    return POL_NONE;
  }
  pos_t opat = tpos(&p->tok);
  const char *opname = in ? "in" : like ? "like" : TOKD(p);
  char opbuf[16];
  snprintf(opbuf, sizeof opbuf, "%s", opname);
  next(p);
  bool ordered = t >= T_LT && t <= T_GE && !in && !like;
  switch (o.type) {
  case TY_IP:
    if (!in) {
      err_at(p, opat, "type mismatch: source_ip is tested against CIDRs with 'in', not %s", opbuf);
      return POL_NONE;
    } else {
      pol_cidr_t *v = NULL;
      uint32_t n = 0;
      if (!val_cidrlist(p, "source_ip", &v, &n))
        return POL_NONE;
      if (n == 0) {
        err_at(p, opat, "empty CIDR list");
        return POL_NONE;
      }
      pol_config_t *c = p->c;
      if (!pol_grow((void **)&c->cidrs, &c->cidrs_cap, (uint64_t)c->cidrs_n + n, sizeof *v)) {
        oom(p);
        return POL_NONE;
      }
      memcpy(c->cidrs + c->cidrs_n, v, n * sizeof *v);
      c->cidrs_n += n;
      return node_new(p, at, POL_OP_CIDR, POL_SRC_IP, 0, 0, c->cidrs_n - n, n);
    }
  case TY_TIME: {
    if (!in) {
      err_at(p, opat, "time is tested with 'in HH:MM..HH:MM', not %s", opbuf);
      return POL_NONE;
    }
    const char *w = p->src + p->tok.off;
    const char *dots = p->tok.t == T_WORD ? memmem(w, p->tok.n, "..", 2) : NULL;
    if (!dots) {
      err(p, "expected a time range like 06:00..22:00 (UTC), got %s", TOKD(p));
      return POL_NONE;
    }
    int a = parse_hhmm(w, (size_t)(dots - w), false);
    int b = parse_hhmm(dots + 2, p->tok.n - (size_t)(dots + 2 - w), true);
    if (a == -1 || b == -1) {
      err(p, "expected a time range like 06:00..22:00 (UTC), got %s", TOKD(p));
      return POL_NONE;
    }
    if (a == -2 || b == -2) {
      err(p, "impossible time in %s (hours 00-23, minutes 00-59; 24:00 only as an end)", TOKD(p));
      return POL_NONE;
    }
    if (a == b || (a == 0 && b == 1440)) {
      err(p, "time range %s %s; leave the condition out to mean all day",
          TOKD(p), a == b ? "is empty" : "covers the whole day");
      return POL_NONE;
    }
    next(p);
    return node_new(p, at, POL_OP_TIME, POL_SRC_TIME, 0, 0, (uint32_t)a, (uint32_t)b);
  }
  case TY_DAY: {
    uint32_t mask = 0;
    if (t == T_EQ && !in && !like) {
      int d = day_from(p);
      if (d < 0)
        return POL_NONE;
      mask = 1u << d;
      next(p);
    } else if (in) {
      if (p->tok.t != T_LBRACK) {
        err(p, "expected a list of days like [mon, tue], got %s", TOKD(p));
        return POL_NONE;
      }
      next(p);
      while (p->tok.t != T_RBRACK) {
        int d = day_from(p);
        if (d < 0)
          return POL_NONE;
        mask |= 1u << d;
        next(p);
        if (p->tok.t == T_COMMA)
          next(p);
        else if (p->tok.t != T_RBRACK) {
          err(p, "expected ',' or ']' in the list of days, got %s", TOKD(p));
          return POL_NONE;
        }
      }
      next(p);
      if (!mask) {
        err_at(p, opat, "empty list of days");
        return POL_NONE;
      }
    } else {
      err_at(p, opat, "day is tested with '==' or 'in [mon, ...]', not %s", opbuf);
      return POL_NONE;
    }
    return node_new(p, at, POL_OP_DAY, POL_SRC_DAY, 0, 0, mask, 0);
  }
  default:
    break;
  }
  /* strings, numbers and posture values */
  bool want_num;
  if (ordered) {
    if (o.type == TY_STR) {
      err_at(p, opat, "type mismatch: %s compares numbers and '%s' is a string", opbuf, aname);
      return POL_NONE;
    }
    want_num = true;
  } else if (like) {
    if (o.type == TY_NUM) {
      err_at(p, opat, "type mismatch: 'like' matches strings and '%s' is a number", aname);
      return POL_NONE;
    }
    if (p->tok.t != T_STR) {
      err(p, "'like' takes a quoted glob like \"sandbox-*\", got %s", TOKD(p));
      return POL_NONE;
    }
    long n = str_decode(p);
    if (n < 0)
      return POL_NONE;
    uint32_t sid = intern(p, p->sbuf, (size_t)n);
    next(p);
    return node_new(p, at, POL_OP_LIKE, o.src, o.attr, o.name, sid, 0);
  } else if (o.type == TY_NUM) {
    want_num = true;
  } else if (o.type == TY_POSTURE) {
    /* posture values are strings or numbers; the literal decides */
    bool first_is_str = in ? false : p->tok.t == T_STR;
    if (in && p->tok.t == T_LBRACK) {
      /* peek at the first element without consuming: words are numbers */
      size_t q = p->pos;
      while (q < p->len && (p->src[q] == ' ' || p->src[q] == '\t'))
        q++;
      first_is_str = q < p->len && p->src[q] == '"';
    }
    want_num = !first_is_str;
  } else {
    want_num = false;
  }
  if (p->tok.t == T_STR && want_num && !in) {
    err(p, "type mismatch: '%s' %s compares numbers, not strings", aname, opbuf);
    return POL_NONE;
  }
  if (!in) {
    if (want_num) {
      double v;
      if (!parse_number_tok(p, &v)) {
        err(p, "expected a number, got %s", TOKD(p));
        return POL_NONE;
      }
      uint32_t idx;
      if (!nums_push(p, v, &idx))
        return POL_NONE;
      uint8_t op = t == T_EQ ? POL_OP_NUM_EQ : t == T_NE ? POL_OP_NUM_NE
                 : t == T_LT ? POL_OP_LT : t == T_LE ? POL_OP_LE : t == T_GT ? POL_OP_GT : POL_OP_GE;
      return node_new(p, at, op, o.src, o.attr, o.name, idx, 0);
    }
    uint32_t sid = str_value(p, &o);
    if (sid == POL_NONE)
      return POL_NONE;
    return node_new(p, at, t == T_EQ ? POL_OP_EQ : POL_OP_NE, o.src, o.attr, o.name, sid, 0);
  }
  /* in [ ... ] */
  if (p->tok.t != T_LBRACK) {
    err(p, "'in' takes a list like [\"a\", \"b\"], got %s", TOKD(p));
    return POL_NONE;
  }
  next(p);
  uint32_t *v = NULL, n = 0, cap = 0;
  double *dv = NULL;
  uint32_t dcap = 0;
  while (p->tok.t != T_RBRACK) {
    if (n >= POL_LIST_MAX) {
      err(p, "list longer than %u elements", POL_LIST_MAX);
      goto fail;
    }
    if (want_num) {
      double d;
      if (p->tok.t == T_STR) {
        err(p, "type mismatch: this list holds numbers, not strings");
        goto fail;
      }
      if (!parse_number_tok(p, &d)) {
        err(p, "expected a number, got %s", TOKD(p));
        goto fail;
      }
      if (!pol_grow((void **)&dv, &dcap, (uint64_t)n + 1, sizeof *dv)) {
        oom(p);
        goto fail;
      }
      dv[n++] = d;
    } else {
      uint32_t sid = str_value(p, &o);
      if (sid == POL_NONE)
        goto fail;
      if (!pol_grow((void **)&v, &cap, (uint64_t)n + 1, sizeof *v)) {
        oom(p);
        goto fail;
      }
      v[n++] = sid;
    }
    if (p->tok.t == T_COMMA)
      next(p);
    else if (p->tok.t != T_RBRACK) {
      err(p, "expected ',' or ']' in the list, got %s", TOKD(p));
      goto fail;
    }
  }
  next(p);
  if (n == 0) {
    err_at(p, opat, "empty list: the condition could never hold");
    goto fail;
  }
  uint32_t id;
  if (want_num) {
    uint32_t first = p->c->nums_n, idx;
    for (uint32_t i = 0; i < n; i++)
      if (!nums_push(p, dv[i], &idx))
        goto fail;
    id = node_new(p, at, POL_OP_NUM_IN, o.src, o.attr, o.name, first, n);
  } else {
    n = sort_unique(v, n);
    uint32_t off = u32_push(p, v, n);
    id = off == POL_NONE ? POL_NONE : node_new(p, at, POL_OP_IN, o.src, o.attr, o.name, off, n);
  }
  free(v);
  free(dv);
  return id;
fail:
  free(v);
  free(dv);
  return POL_NONE;
}

static uint32_t parse_or(parser_t *p, bool client, uint32_t depth);

static uint32_t parse_unary(parser_t *p, bool client, uint32_t depth) {
  if (depth > POL_EXPR_DEPTH_MAX) {
    err(p, "condition nested more than %u deep", POL_EXPR_DEPTH_MAX);
    return POL_NONE;
  }
  pos_t at = tpos(&p->tok);
  if (p->tok.t == T_LPAREN) {
    next(p);
    uint32_t e = parse_or(p, client, depth + 1);
    if (e == POL_NONE)
      return POL_NONE;
    if (p->tok.t != T_RPAREN) {
      err(p, "expected ')' to close the '(' at line %u column %u, got %s", at.line, at.col,
          TOKD(p));
      return POL_NONE;
    }
    next(p);
    return e;
  }
  if (is_word(p, "not")) {
    next(p);
    uint32_t e = parse_unary(p, client, depth + 1);
    return e == POL_NONE ? POL_NONE : node_new(p, at, POL_OP_NOT, 0, 0, 0, e, 0);
  }
  if (p->tok.t == T_WORD && !is_word(p, "and") && !is_word(p, "or"))
    return parse_comparison(p, client);
  err(p, "expected a condition (an attribute, 'not' or '('), got %s", TOKD(p));
  return POL_NONE;
}

static uint32_t parse_chain(parser_t *p, bool client, uint32_t depth, bool is_or) {
  pos_t at = tpos(&p->tok);
  uint32_t first = is_or ? parse_chain(p, client, depth, false) : parse_unary(p, client, depth);
  if (first == POL_NONE || !is_word(p, is_or ? "or" : "and"))
    return first;
  uint32_t *v = pol_malloc(8 * sizeof *v), n = 1, cap = 8;
  if (!v) {
    oom(p);
    return POL_NONE;
  }
  v[0] = first;
  while (is_word(p, is_or ? "or" : "and")) {
    next(p);
    uint32_t e = is_or ? parse_chain(p, client, depth, false) : parse_unary(p, client, depth);
    if (e == POL_NONE || !pol_grow((void **)&v, &cap, (uint64_t)n + 1, sizeof *v)) {
      if (e != POL_NONE)
        oom(p);
      free(v);
      return POL_NONE;
    }
    v[n++] = e;
  }
  uint32_t off = u32_push(p, v, n);
  free(v);
  if (off == POL_NONE)
    return POL_NONE;
  return node_new(p, at, is_or ? POL_OP_OR : POL_OP_AND, 0, 0, 0, off, n);
}

static uint32_t parse_or(parser_t *p, bool client, uint32_t depth) {
  return parse_chain(p, client, depth, true);
}

/* ---- permit / forbid blocks ------------------------------------------------------- */
static const char *const rule_keys[] = {"client", "target", "when", "scope", "ttl", NULL};

typedef struct rule_ud {
  pol_rule_t *r;
  bool forbid;
} rule_ud_t;

static bool valid_scope_char(unsigned char ch) {
  return ch == 0x21 || (ch >= 0x23 && ch <= 0x5b) || (ch >= 0x5d && ch <= 0x7e);
}

static bool rule_item(parser_t *p, int k, void *ud) {
  rule_ud_t *u = ud;
  pol_rule_t *r = u->r;
  switch (k) {
  case 0:
    r->client = parse_or(p, true, 0);
    return r->client != POL_NONE;
  case 2:
    r->when = parse_or(p, false, 0);
    return r->when != POL_NONE;
  case 1: {
    if (is_word(p, "any")) {
      r->targets_n = POL_TARGET_ANY;
      next(p);
      return true;
    }
    uint32_t *v = NULL, n = 0, cap = 0;
    bool bracket = p->tok.t == T_LBRACK;
    if (bracket)
      next(p);
    for (;;) {
      if (p->tok.t != T_STR) {
        err(p, "'target' takes quoted target names or 'any', got %s", TOKD(p));
        free(v);
        return false;
      }
      pos_t at = tpos(&p->tok);
      long len = str_decode(p);
      if (len < 0) {
        free(v);
        return false;
      }
      uint32_t sid = intern(p, p->sbuf, (size_t)len);
      if (sid == POL_NONE || n >= POL_LIST_MAX ||
          !pol_grow((void **)&v, &cap, (uint64_t)n + 1, sizeof *v)) {
        free(v);
        return oom(p);
      }
      v[n++] = sid;
      ref_add(p, REF_TARGET, sid, at);
      next(p);
      if (p->tok.t != T_COMMA)
        break;
      next(p);
    }
    if (bracket) {
      if (p->tok.t != T_RBRACK) {
        err(p, "expected ',' or ']' in the target list, got %s", TOKD(p));
        free(v);
        return false;
      }
      next(p);
    }
    r->targets_off = u32_push(p, v, n);
    r->targets_n = n;
    free(v);
    return r->targets_off != POL_NONE;
  }
  case 3: {
    if (u->forbid) {
      err(p, "a forbid grants nothing: 'scope' belongs in a permit");
      return false;
    }
    if (p->tok.t != T_STR) {
      err(p, "'scope' takes a quoted, space-separated list like \"db.read db.write\", got %s",
          TOKD(p));
      return false;
    }
    long n = str_decode(p);
    if (n < 0)
      return false;
    uint32_t ids[256], cnt = 0;
    for (long i = 0; i < n;) {
      while (i < n && p->sbuf[i] == ' ')
        i++;
      long s = i;
      while (i < n && p->sbuf[i] != ' ') {
        if (!valid_scope_char((unsigned char)p->sbuf[i])) {
          err(p, "scope tokens are printable ASCII without '\"' or '\\' (RFC 6749 3.3)");
          return false;
        }
        i++;
      }
      if (i == s)
        break;
      uint32_t sid = intern(p, p->sbuf + s, (size_t)(i - s));
      if (sid == POL_NONE)
        return false;
      bool dup = false;
      for (uint32_t j = 0; j < cnt; j++)
        dup |= ids[j] == sid;
      if (dup)
        continue;
      if (cnt >= 256) {
        err(p, "more than 256 scope tokens in one rule");
        return false;
      }
      ids[cnt++] = sid;
    }
    if (!cnt) {
      err(p, "empty scope; leave 'scope' out to grant none");
      return false;
    }
    r->scope_off = u32_push(p, ids, cnt);
    r->scope_n = cnt;
    /* the joined form serves the common single-permit decision in one copy */
    size_t o = 0;
    for (uint32_t j = 0; j < cnt; j++) {
      pol_str_t t = pol_sid(p->c, ids[j]);
      if (j)
        p->sbuf[o++] = ' ';
      memcpy(p->sbuf + o, t.ptr, t.len);
      o += t.len;
    }
    uint32_t joined = intern(p, p->sbuf, o);
    if (joined == POL_NONE)
      return false;
    r->scope_text = p->c->strs[joined].off;
    r->scope_text_n = (uint32_t)o;
    next(p);
    return r->scope_off != POL_NONE;
  }
  case 4: {
    if (u->forbid) {
      err(p, "a forbid grants nothing: 'ttl' belongs in a permit");
      return false;
    }
    pos_t at = tpos(&p->tok);
    if (!val_duration_s(p, "ttl", &r->ttl_s))
      return false;
    if (r->ttl_s <= 0) {
      err_at(p, at, "ttl must be more than 0");
      return false;
    }
    return true;
  }
  }
  return false;
}

static void parse_rule(parser_t *p, bool forbid) {
  const char *what = forbid ? "forbid" : "permit";
  pos_t at = tpos(&p->tok);
  next(p);
  pos_t name_at = tpos(&p->tok);
  uint32_t sid = block_name(p, what, DEF_RULE, at.line);
  if (sid == POL_NONE || !open_block(p, what)) {
    sync_line(p);
    return;
  }
  pol_rule_t r = {.name = sid, .client = POL_NONE, .when = POL_NONE, .line = at.line,
                  .forbid = forbid};
  rule_ud_t u = {&r, forbid};
  pos_t seen[8] = {{0}};
  bool has_target = false;
  block_body(p, what, at, rule_keys, rule_item, &u, seen);
  has_target = seen[1].line != 0;
  if (!has_target && !forbid) {
    err_at(p, name_at, "permit \"%s\" must name its targets ('target \"name\"' or 'target any')",
           pol_sid(p->c, sid).ptr);
  }
  if (!has_target)
    r.targets_n = POL_TARGET_ANY;
  pol_config_t *c = p->c;
  if (c->rules_n >= POL_RULES_MAX) {
    err_at(p, at, "more than %u rules", POL_RULES_MAX);
    return;
  }
  if (!pol_grow((void **)&c->rules, &c->rules_cap, (uint64_t)c->rules_n + 1, sizeof r) ||
      !pol_grow((void **)&p->rpos, &p->rpos_cap, (uint64_t)c->rules_n + 1, sizeof *p->rpos)) {
    oom(p);
    return;
  }
  p->rpos[c->rules_n] = seen[0].line ? seen[0] : name_at;
  c->rules[c->rules_n++] = r;
}

/* ---- after the last block: references and kinds ----------------------------------- */
static uint32_t kinds_of(parser_t *p, uint32_t n);

static uint32_t kinds_of_literals(parser_t *p, const pol_node_t *nd) {
  const pol_config_t *c = p->c;
  uint32_t m = 0;
  uint32_t cnt = nd->op == POL_OP_IN ? nd->b : 1;
  for (uint32_t i = 0; i < cnt; i++) {
    uint32_t sid = nd->op == POL_OP_IN ? c->u32[nd->a + i] : nd->a;
    pol_str_t s = pol_sid(c, sid);
    if (nd->attr == POL_A_KIND) {
      int k = kind_from(s.ptr);
      m |= k >= 0 ? 1u << k : 0;
    } else {
      const pol_trust_t *t = pol_config_trust_find(c, s.ptr, s.len);
      m |= t ? 1u << t->kind : POL_KINDS_ALL;
    }
  }
  return m;
}

/* Over-approximates the kinds of client for which node n can hold. */
static uint32_t kinds_of(parser_t *p, uint32_t n) {
  const pol_node_t *nd = &p->c->nodes[n];
  switch (nd->op) {
  case POL_OP_AND:
  case POL_OP_OR: {
    uint32_t m = nd->op == POL_OP_AND ? POL_KINDS_ALL : 0;
    for (uint32_t i = 0; i < nd->b; i++) {
      uint32_t k = kinds_of(p, p->c->u32[nd->a + i]);
      m = nd->op == POL_OP_AND ? (m & k) : (m | k);
    }
    return m;
  }
  case POL_OP_NOT: return POL_KINDS_ALL;
  default:
    if (nd->src == POL_SRC_CLAIM)
      return 1u << POL_KIND_OIDC;
    if (nd->src != POL_SRC_CLIENT)
      return POL_KINDS_ALL;
    if ((nd->attr == POL_A_KIND || nd->attr == POL_A_TRUST) &&
        (nd->op == POL_OP_EQ || nd->op == POL_OP_IN))
      return kinds_of_literals(p, nd);
    return pol_attr_kinds((pol_attr_id_t)nd->attr);
  }
}

static void kinds_text(char *buf, size_t cap, uint32_t m) {
  size_t o = 0;
  buf[0] = 0;
  for (int k = 0; k < POL_KIND__COUNT && o < cap; k++)
    if (m & (1u << k))
      o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", pol_kind_name((pol_kind_t)k));
}

static void check_kinds(parser_t *p, uint32_t n, uint32_t allowed) {
  const pol_node_t *nd = &p->c->nodes[n];
  switch (nd->op) {
  case POL_OP_AND: {
    /* each conjunct is checked in the kinds its siblings leave possible */
    uint32_t cnt = nd->b;
    uint32_t *ks = pol_malloc((size_t)cnt * 2 * sizeof *ks);
    if (!ks) {
      oom(p);
      return;
    }
    uint32_t *suf = ks + cnt;
    for (uint32_t i = 0; i < cnt; i++)
      ks[i] = kinds_of(p, p->c->u32[nd->a + i]);
    uint32_t acc = POL_KINDS_ALL;
    for (uint32_t i = cnt; i-- > 0;) {
      suf[i] = acc;
      acc &= ks[i];
    }
    uint32_t pre = POL_KINDS_ALL;
    for (uint32_t i = 0; i < cnt; i++) {
      check_kinds(p, p->c->u32[nd->a + i], allowed & pre & suf[i]);
      pre &= ks[i];
    }
    free(ks);
    return;
  }
  case POL_OP_OR:
    for (uint32_t i = 0; i < nd->b; i++)
      check_kinds(p, p->c->u32[nd->a + i], allowed);
    return;
  case POL_OP_NOT:
    check_kinds(p, nd->a, allowed);
    return;
  default: {
    uint32_t have = nd->src == POL_SRC_CLAIM ? 1u << POL_KIND_OIDC
                    : nd->src == POL_SRC_CLIENT ? pol_attr_kinds((pol_attr_id_t)nd->attr)
                                                : POL_KINDS_ALL;
    if (have & allowed)
      return;
    char can[200], exists[200];
    kinds_text(can, sizeof can, allowed);
    kinds_text(exists, sizeof exists, have);
    const char *name = nd->src == POL_SRC_CLAIM ? "claims.*" : pol_attr_name((pol_attr_id_t)nd->attr);
    if (!allowed)
      err_at(p, p->npos[n], "attribute '%s' is tested where no client can match (the kinds required "
             "around it contradict each other)", name);
    else
      err_at(p, p->npos[n], "attribute '%s' does not exist for %s clients (it exists for %s)",
             name, can, exists);
  }
  }
}

/* Kinds: a client can only come from a declared trust (every kind if none is declared),
 * and an attribute must exist for some kind its condition can match. */
static void kind_analysis(parser_t *p, uint32_t declared) {
  pol_config_t *c = p->c;
  for (uint32_t i = 0; i < c->rules_n && !stopped(p); i++) {
    pol_rule_t *r = &c->rules[i];
    if (r->client == POL_NONE)
      continue;
    uint32_t k = kinds_of(p, r->client);
    char d[200], need[200];
    kinds_text(d, sizeof d, declared);
    kinds_text(need, sizeof need, k);
    if (k && !(k & declared)) {
      err_at(p, p->rpos[i], "%s \"%s\" can never match: its client condition needs a client of "
             "kind %s, and the declared trusts are %s", r->forbid ? "forbid" : "permit",
             pol_sid(c, r->name).ptr, need, d);
      continue;
    }
    uint32_t before = p->nerr;
    check_kinds(p, r->client, declared);
    if (!k && p->nerr == before)
      err_at(p, p->rpos[i], "%s \"%s\" can never match: its client condition requires "
             "contradictory kinds", r->forbid ? "forbid" : "permit", pol_sid(c, r->name).ptr);
  }
}

static void resolve(parser_t *p) {
  pol_config_t *c = p->c;
  if (!pol_config_build_names(c)) {
    oom(p);
    return;
  }
  /* names are checked against every block written, even one with errors of its own, so
   * that a broken block does not also make each of its uses an error */
  for (uint32_t i = 0; i < p->refs_n && !stopped(p); i++) {
    ref_t *r = &p->refs[i];
    pol_str_t s = pol_sid(c, r->sid);
    int cat = r->kind == REF_TRUST ? DEF_TRUST : DEF_TARGET;
    if (r->sid < p->def_cap[cat] && p->def[cat] && p->def[cat][r->sid])
      continue;
    if (r->kind == REF_TRUST) {
      err_at(p, r->at, "unknown trust \"%s\"", s.ptr);
    } else {
      const pol_target_t *t = pol_config_target_find(c, s.ptr, s.len);
      err_at(p, r->at, "unknown target \"%s\"%s", s.ptr,
             t ? " (that is a target's audience; rules name targets by name)" : "");
    }
  }
  uint32_t declared = 0;
  for (uint32_t i = 0; i < c->trusts_n; i++)
    declared |= 1u << c->trusts[i].kind;
  if (!declared)
    declared = POL_KINDS_ALL;
  if (!p->trust_kindless) /* else the declared kinds are unknown: no guessing */
    kind_analysis(p, declared);
  if (p->nerr)
    return;
  /* rule target lists: names to sorted indices */
  for (uint32_t i = 0; i < c->rules_n; i++) {
    pol_rule_t *r = &c->rules[i];
    if (r->targets_n == POL_TARGET_ANY)
      continue;
    uint32_t *v = c->u32 + r->targets_off;
    for (uint32_t j = 0; j < r->targets_n; j++) {
      pol_str_t s = pol_sid(c, v[j]);
      v[j] = pol_config_target_find(c, s.ptr, s.len)->index;
    }
    r->targets_n = sort_unique(v, r->targets_n);
  }
}

static bool server_defaults(parser_t *p) {
  pol_server_t *s = &p->c->server;
  if (!s->listen) {
    static const char *const def[] = {"127.0.0.1:8080", NULL};
    s->listen = def;
    s->listen_count = 1;
  }
  if (!s->issuer) {
    size_t n = strlen(s->listen[0]);
    char *d = pol_malloc(n + 8);
    if (!d || !pol_own(p->c, d))
      return oom(p);
    snprintf(d, n + 8, "http://%s", s->listen[0]);
    s->issuer = d;
  }
  if (!s->keys_dir && !(s->keys_dir = own_path(p, "keys", 4)))
    return false;
  if (!s->audit_path && !(s->audit_path = own_path(p, "audit.log", 9)))
    return false;
  if (!s->fsync)
    s->fsync = "batch";
  if (!s->batch_max)
    s->batch_max = 1024;
  if (!s->max_connections)
    s->max_connections = 4096;
  if (!s->node_id) {
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
      snprintf(host, sizeof host, "node");
    for (char *q = host; *q; q++)
      if (!isalnum((unsigned char)*q) && !strchr("._-", *q))
        *q = '-';
    host[64] = 0;
    if (!(s->node_id = own_str(p, host, strlen(host))))
      return false;
  }
  return true;
}

pol_config_t *pol_config_parse(const char *src, size_t len, const char *filename,
                               pol_diag_t *diag) {
  if (diag)
    diag->count = 0;
  if (!filename)
    filename = "<policy>";
  parser_t *p = pol_calloc(1, sizeof *p);
  pol_config_t *c = pol_calloc(1, sizeof *c);
  if (!p || !c) {
    free(p);
    free(c);
    if (diag) {
      diag->count = 1;
      snprintf(diag->text[0], sizeof diag->text[0], "%s: out of memory", filename);
    }
    return NULL;
  }
  c->seed = pol_random_seed();
  p->c = c;
  p->src = src;
  p->len = len;
  p->line = 1;
  p->at_bol = true;
  p->file = filename;
  p->diag = diag;
  const char *slash = strrchr(filename, '/');
  p->dir = slash ? pol_strndup(filename, (size_t)(slash - filename)) : pol_strdup(".");
  if (p->dir && slash == filename) {
    free(p->dir);
    p->dir = pol_strdup("");
  }
  if (!p->dir)
    oom(p);
  if (len > POL_FILE_MAX_BYTES)
    err_at(p, (pos_t){0, 1, 1}, "file larger than %u bytes", POL_FILE_MAX_BYTES);
  if (!p->nerr) {
    next(p);
    while (p->tok.t != T_EOF && !stopped(p)) {
      if (is_word(p, "server"))
        parse_server(p);
      else if (is_word(p, "trust"))
        parse_trust(p);
      else if (is_word(p, "target"))
        parse_target(p);
      else if (is_word(p, "permit"))
        parse_rule(p, false);
      else if (is_word(p, "forbid"))
        parse_rule(p, true);
      else {
        if (p->tok.t != T_BAD)
          err(p, "expected a block (server, trust, target, permit or forbid), got %s", TOKD(p));
        do
          next(p);
        while (p->tok.t != T_EOF && !(p->tok.bol && p->tok.t == T_WORD));
      }
    }
  }
  if (!stopped(p))
    resolve(p);
  if (!p->nerr)
    server_defaults(p);
  if (!p->nerr && !pol_compile_index(c))
    oom(p);
  if (!p->nerr) {
    XXH128_hash_t h = XXH3_128bits(src, len);
    snprintf(c->policy_id, sizeof c->policy_id, "%016llx", (unsigned long long)h.high64);
  }
  bool ok = p->nerr == 0;
  free(p->dir);
  free(p->refs);
  free(p->npos);
  free(p->rpos);
  for (int i = 0; i < DEF__N; i++)
    free(p->def[i]);
  free(p);
  if (!ok) {
    pol_config_free(c);
    return NULL;
  }
  return c;
}
