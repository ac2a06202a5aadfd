/* server/params.h — private to server/: what a route reads from its
 * request (params.c), checked once per kind, and how path and query values
 * were decoded (unescape.c). */
#ifndef STRATA_SERVER_PARAMS_H
#define STRATA_SERVER_PARAMS_H

#include "request.h"

/* A flag such as ?force: 1 for "true" or "1", else 0. */
int srv_query_flag(const srv_req *r, const char *key);
/* Integer query arg. Returns 0 and sets *out (and *present); on a malformed
 * value answers 400 and returns -1. */
int srv_query_int(srv_req *r, const char *key, int64_t lo, int64_t hi, int64_t *out, int *present);
/* limit/after as the contract says (default 100, max 1000). -1 after a 400. */
int srv_query_page(srv_req *r, int *limit, const char **after);

/* Names (models, runs, tags, architectures) and refs: the contract's
 * pattern, one table of kinds. Returns 0, or answers 400 naming the kind
 * and returns -1. value may be NULL (then it is bad). */
enum srv_name_kind { SRV_NAME_MODEL, SRV_NAME_RUN, SRV_NAME_TAG, SRV_NAME_ARCH, SRV_NAME_REF };
int srv_check_name(srv_req *r, enum srv_name_kind kind, const char *value);
/* The {model} capture, checked; *model borrowed. 0, or -1 after a 400. */
int srv_model_param(srv_req *r, const char **model);
/* A ref capture ("ref", "other"), checked; *ref borrowed. 0, or -1 after a 400. */
int srv_ref_param(srv_req *r, const char *capture, const char **ref);

/* THE digest check: "sha256:<64 lowercase hex>" → its hex digits (borrowed,
 * inside digest), else NULL. */
const char *srv_digest_hex(const char *digest);
/* A version object's "digest" (borrowed from version), checked; NULL after
 * a 500. The digest text is what st_blob_open and the summary memo take. */
const char *srv_version_digest(srv_req *r, const json_t *version);
/* An architecture id (a digest) in key; 0, or answers 400 and returns -1. */
int srv_check_arch_id(srv_req *r, const char *key, const char *id);
/* THE hex writer: n bytes as 2n lowercase hex digits and a NUL into out. */
void srv_hex(const unsigned char *p, size_t n, char *out);
/* SHA-256 of n bytes at p as 64 hex digits and a NUL. */
void srv_sha256_hex(const void *p, size_t n, char hex[65]);

/* Percent-decodes a path or query value in place (MHD_OPTION_UNESCAPE_CALLBACK):
 * never yields NUL or invalid UTF-8 (server/unescape.c). Returns the new length. */
size_t srv_unescape(void *cls, struct MHD_Connection *conn, char *s);

#endif
