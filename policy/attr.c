/* Names of the language's client attributes and trust kinds. */
#include "policy.h"

static const char *const attr_names[POL_A__COUNT] = {
#define X(id, name) name,
    POL_ATTRS(X)
#undef X
};

const char *pol_attr_name(pol_attr_id_t id) {
  return (unsigned)id < POL_A__COUNT ? attr_names[id] : NULL;
}

static const char *const kind_names[POL_KIND__COUNT] = {
    "kubernetes", "github", "gitlab", "spiffe", "oidc", "aws-iid", "join-token", "unix",
};

const char *pol_kind_name(pol_kind_t k) {
  return (unsigned)k < POL_KIND__COUNT ? kind_names[k] : NULL;
}
