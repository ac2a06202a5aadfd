/* server/auth.c — bearer tokens: creation, hashing, the per-route scope check.
 *
 * A token is "strata_" + 32 random bytes in hex; only its SHA-256 is stored.
 * Lookup is by that hash (the secret never meets a data-dependent compare),
 * then the stored hash is compared again in constant time. Tokens never
 * appear in logs. Scopes: read < write < admin. */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"
#include "params.h"
#include "reply.h"

void srv_auth_token_hash(const char *token, char hash[65])
{
    srv_sha256_hex(token, strlen(token), hash);
}

int srv_auth_token_new(char *buf, size_t len, char hash[65])
{
    unsigned char raw[32];
    if (len < 72 || RAND_bytes(raw, sizeof raw) != 1) return -1;
    memcpy(buf, "strata_", 7);
    srv_hex(raw, sizeof raw, buf + 7);
    srv_auth_token_hash(buf, hash);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

static const struct {
    const char *name;
    enum srv_scope scope;
} scope_table[] = {
    {"read", SRV_SCOPE_READ},
    {"write", SRV_SCOPE_WRITE},
    {"admin", SRV_SCOPE_ADMIN},
};

enum srv_scope srv_auth_scope_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof scope_table / sizeof scope_table[0]; i++)
        if (strcmp(s, scope_table[i].name) == 0) return scope_table[i].scope;
    return SRV_SCOPE_NONE;
}

static const char *scope_name(enum srv_scope s)
{
    for (size_t i = 0; i < sizeof scope_table / sizeof scope_table[0]; i++)
        if (scope_table[i].scope == s) return scope_table[i].name;
    return "none";
}

int srv_auth_token_count(st_store *st)
{
    int64_t n = 0;
    st_error err = {0};
    if (st_token_count(st, &n, &err)) {
        st_error_release(&err);
        return -1;
    }
    return (int)n;
}

static void reply_401(srv_req *r, const char *why)
{
    srv_reply_error(r, SRV_E_UNAUTHORIZED, NULL,
                    "%s; send Authorization: Bearer <token> "
                    "(create one with: strata token create --scope read|write|admin)",
                    why);
    MHD_add_response_header(r->response, "WWW-Authenticate", "Bearer realm=\"strata\"");
}

int srv_auth_check(srv_req *r, enum srv_scope need)
{
    const char *h = srv_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    char hash[65], stored[8];
    st_error err = {0};
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) > 200) {
        reply_401(r, "this endpoint needs a token");
        return -1;
    }
    srv_auth_token_hash(h + 7, hash);
    if (st_token_lookup(r->srv->st, hash, stored, &err)) {
        st_error_release(&err);
        reply_401(r, "the token is unknown or revoked");
        return -1;
    }
    enum srv_scope have = srv_auth_scope_parse(stored);
    if (have < need) {
        srv_reply_error(
            r, SRV_E_FORBIDDEN,
            json_pack("{s:s,s:s}", "scope", scope_name(have), "needed", scope_name(need)),
            "the token's scope '%s' is too small; this needs '%s'", scope_name(have),
            scope_name(need));
        return -1;
    }
    return 0;
}
