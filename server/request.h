/* server/request.h — private to server/: the server (srv_server), a request
 * (srv_req), a route row's type, and the error codes with their one table
 * (reply.c). Every route file includes it (through reply.h or params.h). */
#ifndef STRATA_SERVER_REQUEST_H
#define STRATA_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <jansson.h>

#include "server.h"
#include "storage.h"
#include "engine.h"

/* ---- errors: one table (reply.c) maps each to its HTTP status and code -- */
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

struct srv_err_info {
    unsigned status;
    const char *code;
};
const struct srv_err_info *srv_err_info(srv_err e);
srv_err srv_err_from_storage(st_code c);
srv_err srv_err_from_engine(eng_code c);

/* ---- the server and a request --------------------------------------------- */

enum srv_scope { SRV_SCOPE_NONE = 0, SRV_SCOPE_READ, SRV_SCOPE_WRITE, SRV_SCOPE_ADMIN };

/* What a route does with the request body. */
enum srv_body { SRV_BODY_NONE = 0, SRV_BODY_JSON, SRV_BODY_UPLOAD, SRV_BODY_TEXT };

typedef struct srv_metrics srv_metrics; /* metrics.c */

typedef struct srv_server {
    const srv_config *cfg;
    st_store *st;
    struct MHD_Daemon *daemon;
    /* counters for /metrics */
    atomic_ullong requests, bytes_in, bytes_out, uploads_ok, uploads_rejected, sandbox_kills,
        sandbox_crashes, sandbox_runs;
    atomic_ullong status_counts[6]; /* 1xx..5xx */
    srv_metrics *metrics;
} srv_server;

struct srv_req;
typedef void (*srv_handler)(struct srv_req *r);

typedef struct srv_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/models/{model}/tags/{tag}" */
    srv_handler handler;
    enum srv_scope scope; /* least scope needed when auth is on */
    enum srv_body body;
    const char *name; /* for metrics and logs: "versions.upload" */
} srv_route;

#define SRV_MAX_PARAMS 4

struct srv_upload_state; /* route_versions.c */

typedef struct srv_req {
    srv_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const srv_route *route;
    char *params[SRV_MAX_PARAMS]; /* decoded path captures, in pattern order */
    char *param_names[SRV_MAX_PARAMS];
    int nparams;
    /* body */
    char *body; /* JSON/text bodies, NUL-terminated */
    size_t body_len;
    int body_too_large;
    struct srv_upload_state *upload; /* upload bodies */
    /* answer */
    struct MHD_Response *response;
    unsigned status;
    int answered;
    uint64_t bytes_out;
    const char *err_code; /* contract error code of the answer, or NULL */
    char request_id[24];
    uint64_t started_ns;
} srv_req;

/* ---- raw inputs (request.c) --------------------------------------------- */
/* Path capture by name, borrowed; NULL when absent. */
const char *srv_param(const srv_req *r, const char *name);
/* Query argument, borrowed; NULL when absent. */
const char *srv_query(const srv_req *r, const char *key);
/* Header value, borrowed; NULL when absent. */
const char *srv_header(const srv_req *r, const char *key);

#endif
