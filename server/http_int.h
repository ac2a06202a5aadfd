/* server/http_int.h — private to server/: the request struct, the route
 * table's types, the error table and the helpers every route file uses. */
#ifndef STRATA_HTTP_INT_H
#define STRATA_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <jansson.h>

#include "server.h"
#include "storage.h"
#include "engine.h"

/* ---- errors: one table maps each to its HTTP status and contract code ---- */
typedef enum srv_err {
    SRV_OK = 0,
    SRV_E_BAD_REQUEST,
    SRV_E_DIGEST_MISMATCH,
    SRV_E_UNAUTHORIZED,
    SRV_E_FORBIDDEN,
    SRV_E_NOT_FOUND,
    SRV_E_METHOD,
    SRV_E_CONFLICT,
    SRV_E_LENGTH_REQUIRED,
    SRV_E_TOO_LARGE,
    SRV_E_MEDIA_TYPE,
    SRV_E_RANGE,
    SRV_E_INVALID_ARCH,
    SRV_E_INVALID_WEIGHTS,
    SRV_E_INTERNAL,
    SRV_E_UNAVAILABLE,
    SRV_E_NO_SPACE,
    SRV_E__COUNT
} srv_err;

struct srv_err_info { unsigned status; const char *code; };
const struct srv_err_info *srv_err_info(srv_err e);
srv_err srv_err_from_storage(st_code c);
srv_err srv_err_from_engine(eng_code c);

/* ---- the server and a request --------------------------------------------- */

enum srv_scope { SRV_SCOPE_NONE = 0, SRV_SCOPE_READ, SRV_SCOPE_WRITE, SRV_SCOPE_ADMIN };

/* What a route does with the request body. */
enum srv_body { SRV_BODY_NONE = 0, SRV_BODY_JSON, SRV_BODY_UPLOAD, SRV_BODY_TEXT };

typedef struct srv_metrics srv_metrics;   /* metrics.c */

typedef struct srv_server {
    const srv_config *cfg;
    st_store *st;
    struct MHD_Daemon *daemon;
    /* counters for /metrics */
    atomic_ullong requests, bytes_in, bytes_out, uploads_ok, uploads_rejected,
                  sandbox_kills, sandbox_crashes, sandbox_runs;
    atomic_ullong status_counts[6];   /* 1xx..5xx */
    srv_metrics *metrics;
} srv_server;

struct srv_req;
typedef void (*srv_handler)(struct srv_req *r);

typedef struct srv_route {
    const char *method;         /* "GET", "POST", ... */
    const char *pattern;        /* "/v1/models/{model}/tags/{tag}" */
    srv_handler handler;
    enum srv_scope scope;       /* least scope needed when auth is on */
    enum srv_body body;
    const char *name;           /* for metrics and logs: "versions.upload" */
} srv_route;

#define SRV_MAX_PARAMS 4

struct srv_upload_state;        /* route_versions.c */

typedef struct srv_req {
    srv_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const srv_route *route;
    char *params[SRV_MAX_PARAMS];     /* decoded path captures, in pattern order */
    char *param_names[SRV_MAX_PARAMS];
    int nparams;
    /* body */
    char *body;                       /* JSON/text bodies, NUL-terminated */
    size_t body_len;
    int body_too_large;
    struct srv_upload_state *upload;  /* upload bodies */
    /* answer */
    struct MHD_Response *response;
    unsigned status;
    int answered;
    uint64_t bytes_out;
    const char *err_code;             /* contract error code of the answer, or NULL */
    char request_id[24];
    uint64_t started_ns;
} srv_req;

/* ---- request inputs (params.c): one check per kind ------------------------ */
/* Path capture by name, borrowed; NULL when absent. */
const char *srv_param(const srv_req *r, const char *name);
/* Query argument, borrowed; NULL when absent. */
const char *srv_query(const srv_req *r, const char *key);
/* Header value, borrowed; NULL when absent. */
const char *srv_header(const srv_req *r, const char *key);
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

/* Answers. json is STOLEN. */
void srv_reply_json(srv_req *r, unsigned status, json_t *json);
/* The answer's text of json (STOLEN) with its final newline: NEW, *len set;
 * NULL when out of memory. srv_reply_json_text answers it (text STOLEN). */
char *srv_json_text(json_t *json, size_t *len);
void srv_reply_json_text(srv_req *r, unsigned status, char *text, size_t len);
/* Answer cache (cache.c) for GETs whose 200 body depends only on the
 * database: gen is st_generation() read before the read transaction.
 * srv_cache_reply answers 200 and returns 1 when key's text is current;
 * srv_cache_reply_json answers 200 with json (STOLEN) and keeps its text. */
int srv_cache_reply(srv_req *r, const char *key, uint64_t gen);
void srv_cache_reply_json(srv_req *r, const char *key, uint64_t gen, json_t *json);
void srv_cache_free(void);     /* at exit, for leak checkers */
/* msg is printf-style; details is STOLEN (may be NULL). */
void srv_reply_error(srv_req *r, srv_err e, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void srv_reply_storage_error(srv_req *r, st_error *err);    /* releases err */
void srv_reply_engine_error(srv_req *r, eng_error *err);    /* releases err */
/* Takes ownership of resp. */
void srv_reply_response(srv_req *r, unsigned status, struct MHD_Response *resp);

/* Answer with a file (immutable content): ETag "<etag>", If-None-Match (304),
 * a single Range / If-Range (206, 416), Accept-Ranges, Content-Disposition,
 * and one extra header when extra_name is not NULL. STEALS fd (closed on
 * every path). */
void srv_reply_file(srv_req *r, int fd, uint64_t size, const char *etag, const char *disposition,
                    const char *extra_name, const char *extra_value);
/* The same for a body that is the concatenation of segs[0..n): len bytes of
 * fd from off, each (a skeleton file around ranges of a blob). Copies segs.
 * STEALS every fd that appears in segs (each distinct fd closed once, on
 * every path). */
typedef struct srv_seg { int fd; uint64_t off, len; } srv_seg;
void srv_reply_segments(srv_req *r, const srv_seg *segs, size_t n, const char *etag,
                        const char *disposition, const char *extra_name, const char *extra_value);

/* Parse the JSON body; on failure answers 400 and returns NULL. NEW ref. */
json_t *srv_body_json(srv_req *r);

/* ---- route table ---------------------------------------------------------- */
extern const srv_route srv_routes[];
extern const size_t srv_nroutes;
/* Match method+path. Returns the route and fills r->params; *method_mismatch
 * is set when the path matched some route with another method. */
const srv_route *srv_route_match(srv_req *r, const char *method, const char *path, int *method_mismatch);

/* Percent-decodes a path or query value in place (MHD_OPTION_UNESCAPE_CALLBACK):
 * never yields NUL or invalid UTF-8 (server/unescape.c). Returns the new length. */
size_t srv_unescape(void *cls, struct MHD_Connection *conn, char *s);

/* ---- route handlers (one file per resource) ------------------------------- */
void srv_h_healthz(srv_req *r);
void srv_h_metrics(srv_req *r);
void srv_h_arch_create(srv_req *r);
void srv_h_arch_list(srv_req *r);
void srv_h_arch_get(srv_req *r);
void srv_h_model_create(srv_req *r);
void srv_h_model_list(srv_req *r);
void srv_h_model_get(srv_req *r);
void srv_h_model_delete(srv_req *r);
void srv_h_version_upload(srv_req *r);
void srv_h_version_list(srv_req *r);
void srv_h_version_get(srv_req *r);
void srv_h_version_delete(srv_req *r);
void srv_h_version_weights(srv_req *r);
void srv_h_version_predict(srv_req *r);
/* route_transfer.c (partial layer sets, conversion, layers, diff, compatibility) */
void srv_h_version_layers(srv_req *r);
void srv_h_version_compat(srv_req *r);
void srv_h_version_diff(srv_req *r);
/* GET …/weights with ?layers= ?exclude= ?for= ?format=: a derived file.
 * Called by srv_h_version_weights once the version JSON is known (borrowed). */
void srv_weights_derived(srv_req *r, json_t *version);
/* route_history.c */
void srv_h_history_post(srv_req *r);
void srv_h_history_get(srv_req *r);
void srv_h_runs(srv_req *r);
/* route_service.c */
void srv_h_openapi(srv_req *r);
void srv_h_tag_put(srv_req *r);
void srv_h_tag_list(srv_req *r);
void srv_h_tag_get(srv_req *r);
void srv_h_tag_delete(srv_req *r);
void srv_h_tag_history(srv_req *r);

/* ---- uploads (route_versions.c) ------------------------------------------- */
/* First call for an upload route: check media type, lengths, model; start
 * the temp file. Returns 0 to go on, -1 when an error answer was queued. */
int srv_upload_start(srv_req *r);
/* Feed body bytes. Returns 0, or -1 after an error was recorded. */
int srv_upload_feed(srv_req *r, const char *data, size_t len);
void srv_upload_free(struct srv_upload_state *u);
/* Body bytes an upload has received so far (for the minimum-rate check). */
uint64_t srv_upload_received(const srv_req *r);

/* ---- architectures shared by routes --------------------------------------- */
/* Parse a JSON value (object) as an architecture and store it. On success
 * *id_out is NEW (free()) and *created set. On failure answers the error and
 * returns -1. */
int srv_arch_store(srv_req *r, json_t *config, const char *name, char **id_out, int *created, json_t **answer);
/* Load the parsed architecture of a stored id (NEW, eng_arch_free). */
eng_code srv_arch_load(srv_server *srv, const char *id, eng_arch **out, eng_error *err);

/* ---- sandbox (sandbox.c) -------------------------------------------------- */
/* Read the structure of an untrusted weight file in a child process with
 * limits; the summary comes back re-checked. ENG_ERR_FORMAT with a reason
 * when the child crashed, timed out or answered garbage. *killed is set when
 * the deadline killed it, 2 when the sandbox could not be set up (then the
 * caller answers 503: a file is never parsed outside the sandbox). */
eng_code srv_sandbox_summary(srv_server *srv, const char *path, eng_summary **out,
                             eng_error *err, int *killed);
/* The same for a route: counts kills and answers the error itself (503 when
 * the sandbox could not be set up, else 422). Returns 0, or -1 after answering. */
int srv_summary_or_reply(srv_req *r, const char *path, eng_summary **out);
/* The same for a stored blob (digest = "sha256:<hex>" of its bytes): a
 * summary remembered for those bytes is used without the sandbox, else it
 * is read and remembered.
 * srv_summary_remember keeps a checked summary (the upload's);
 * srv_summary_forget_all empties the memo (at exit, for leak checkers). */
int srv_summary_of_blob(srv_req *r, const char *digest, const char *path, eng_summary **out);
void srv_summary_remember(const char *digest, const eng_summary *s);
void srv_summary_forget_all(void);
/* The child's side: `strata __summary FILE` writes the summary JSON to stdout. */
int srv_sandbox_child_main(int argc, char **argv);

/* ---- metrics (metrics.c) ------------------------------------------------- */
srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
/* Count one finished request: route, status, duration, upload outcome. */
void srv_metrics_observe(srv_server *srv, const srv_req *r, unsigned status, uint64_t ns);

/* ---- log ------------------------------------------------------------------- */
enum srv_log_level { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };
extern int srv_log_level;
extern int srv_log_json;
void srv_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define SRV_LOG(level, ...) do { if ((level) <= srv_log_level) srv_log_write((level), __VA_ARGS__); } while (0)

/* Monotonic nanoseconds. */
uint64_t srv_now_ns(void);

#endif
