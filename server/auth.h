/* server/auth.h — private to server/: bearer tokens and scopes. */
#ifndef STRATA_AUTH_H
#define STRATA_AUTH_H
#include "request.h"

/* Check the request's bearer token against scope. Returns 0 when allowed;
 * otherwise answers 401 (with WWW-Authenticate: Bearer) or 403 and returns -1. */
int srv_auth_check(srv_req *r, enum srv_scope need);
/* Live tokens in the store, or -1 on error. */
int srv_auth_token_count(st_store *st);
/* A new token "strata_" + 64 hex digits (32 random bytes) into buf (>= 72 bytes),
 * and its stored form (hex SHA-256) into hash (>= 65 bytes). 0 on success. */
int srv_auth_token_new(char *buf, size_t len, char hash[65]);
/* hex SHA-256 of token into hash[65]. */
void srv_auth_token_hash(const char *token, char hash[65]);
/* "read" | "write" | "admin" → scope; SRV_SCOPE_NONE when unknown. */
enum srv_scope srv_auth_scope_parse(const char *s);
#endif
