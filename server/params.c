/* server/params.c — what a route reads from its request, checked once per
 * kind: path captures, query values and flags, headers; names (models,
 * runs, tags, architectures) and refs by one table; digests by one
 * validator; digest text by one hex writer.
 *
 * Owns the 400 answers for a bad name, ref, digest, integer or page. The
 * raw accessors (srv_param, srv_query, srv_header) are request.c's.
 * Does not own: percent-decoding (unescape.c: a value here never holds NUL
 * or invalid UTF-8), what storage accepts (st_name_valid, st_tag_name_valid
 * are its rules; the server checks first so that the answer names the kind).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "params.h"
#include "reply.h"

int srv_query_flag(const srv_req *r, const char *key)
{
    const char *v = srv_query(r, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

int srv_query_int(srv_req *r, const char *key, int64_t lo, int64_t hi, int64_t *out, int *present)
{
    const char *v = srv_query(r, key);
    if (present) *present = 0;
    if (!v) return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:s,s:s}", "parameter", key, "value", v),
                        "query parameter '%s' must be an integer from %lld to %lld, got '%s'", key,
                        (long long)lo, (long long)hi, v);
        return -1;
    }
    *out = n;
    if (present) *present = 1;
    return 0;
}

int srv_query_page(srv_req *r, int *limit, const char **after)
{
    int64_t l = 100;
    if (srv_query_int(r, "limit", 1, 1000, &l, NULL)) return -1;
    *limit = (int)l;
    *after = srv_query(r, "after");
    return 0;
}

/* ---- names and refs: one row per kind --------------------------------------- */

#define NAME_RULE "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}"

static const struct {
    const char *label, *key;    /* in the message; the details' key */
    int (*valid)(const char *); /* storage's rule */
    const char *rule;           /* what the message says a good one is */
} name_kinds[] = {
    [SRV_NAME_MODEL] = {"model name", "model", st_name_valid, NAME_RULE},
    [SRV_NAME_RUN] = {"run name", "run", st_name_valid, NAME_RULE},
    [SRV_NAME_TAG] = {"tag", "tag", st_tag_name_valid, NAME_RULE " and not be all digits"},
    [SRV_NAME_ARCH] = {"architecture name", "name", st_name_valid, NAME_RULE},
    /* a version number, a tag or "latest": all of them valid names */
    [SRV_NAME_REF] = {"ref", "ref", st_name_valid, "must be a version number, a tag or 'latest'"},
};

static int check_kind(srv_req *r, enum srv_name_kind kind, const char *key, const char *value)
{
    if (value && name_kinds[kind].valid(value)) return 0;
    srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:s?}", key, value), "%s '%.140s' %s",
                    name_kinds[kind].label, value ? value : "", name_kinds[kind].rule);
    return -1;
}

int srv_check_name(srv_req *r, enum srv_name_kind kind, const char *value)
{
    return check_kind(r, kind, name_kinds[kind].key, value);
}

int srv_model_param(srv_req *r, const char **model)
{
    *model = srv_param(r, "model");
    return check_kind(r, SRV_NAME_MODEL, "model", *model);
}

int srv_ref_param(srv_req *r, const char *capture, const char **ref)
{
    *ref = srv_param(r, capture);
    return check_kind(r, SRV_NAME_REF, capture, *ref);
}

/* ---- digests ------------------------------------------------------------------ */

const char *srv_digest_hex(const char *digest)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0) return NULL;
    const char *h = digest + 7;
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return NULL;
    return h[64] == 0 ? h : NULL;
}

const char *srv_version_digest(srv_req *r, const json_t *version)
{
    const char *d = json_string_value(json_object_get(version, "digest"));
    if (srv_digest_hex(d)) return d;
    srv_reply_error(r, SRV_E_INTERNAL, NULL, "version without a digest");
    return NULL;
}

int srv_check_arch_id(srv_req *r, const char *key, const char *id)
{
    if (srv_digest_hex(id)) return 0;
    srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:s?}", key, id),
                    "%s must be an architecture id sha256:<64 hex digits>, not '%.140s'", key,
                    id ? id : "");
    return -1;
}

void srv_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

void srv_sha256_hex(const void *p, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    EVP_Digest(p, n, md, &ml, EVP_sha256(), NULL);
    srv_hex(md, 32, hex);
}
