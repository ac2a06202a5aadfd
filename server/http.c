/* server/http.c — the libmicrohttpd daemon and the life of a request.
 *
 * Owns: starting/stopping the daemon, the access handler (route match, auth,
 * body intake, dispatch), the error table, the answer helpers, the access
 * log line. Does not own: what each route does (route_*.c), the route table
 * (routes.c), uploads (route_versions.c).
 *
 * libmicrohttpd calls the access handler several times per request: first
 * with no body (we match the route and check what can be checked before any
 * body byte is read: 404/405/401/411/413/415 are answered right there, so a
 * refused upload is never transferred), then once per body chunk, then once
 * with *upload_data_size == 0 — where the route runs. Answering GETs on that
 * later call also avoids libmicrohttpd's keep-alive trap (perf-notes.md).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "http_int.h"
#include "auth.h"

/* ---- the error table: ONE place maps errors to statuses and codes ---------- */
static const struct srv_err_info err_table[SRV_E__COUNT] = {
    [SRV_OK]                = {200, "ok"},
    [SRV_E_BAD_REQUEST]     = {400, "bad_request"},
    [SRV_E_DIGEST_MISMATCH] = {400, "digest_mismatch"},
    [SRV_E_UNAUTHORIZED]    = {401, "unauthorized"},
    [SRV_E_FORBIDDEN]       = {403, "forbidden"},
    [SRV_E_NOT_FOUND]       = {404, "not_found"},
    [SRV_E_METHOD]          = {405, "method_not_allowed"},
    [SRV_E_CONFLICT]        = {409, "conflict"},
    [SRV_E_LENGTH_REQUIRED] = {411, "length_required"},
    [SRV_E_TOO_LARGE]       = {413, "too_large"},
    [SRV_E_MEDIA_TYPE]      = {415, "unsupported_media_type"},
    [SRV_E_RANGE]           = {416, "range_not_satisfiable"},
    [SRV_E_INVALID_ARCH]    = {422, "invalid_architecture"},
    [SRV_E_INVALID_WEIGHTS] = {422, "invalid_weights"},
    [SRV_E_INTERNAL]        = {500, "internal"},
    [SRV_E_UNAVAILABLE]     = {503, "unavailable"},
    [SRV_E_NO_SPACE]        = {507, "insufficient_storage"},
};

const struct srv_err_info *srv_err_info(srv_err e)
{
    if ((unsigned)e >= SRV_E__COUNT) e = SRV_E_INTERNAL;
    return &err_table[e];
}

static const srv_err storage_map[] = {
    [ST_OK] = SRV_OK,
    [ST_ERR_NOT_FOUND] = SRV_E_NOT_FOUND,
    [ST_ERR_CONFLICT] = SRV_E_CONFLICT,
    [ST_ERR_INVALID] = SRV_E_BAD_REQUEST,
    [ST_ERR_IO] = SRV_E_INTERNAL,
    [ST_ERR_NOSPACE] = SRV_E_NO_SPACE,
    [ST_ERR_DB] = SRV_E_INTERNAL,
    [ST_ERR_CORRUPT] = SRV_E_INTERNAL,
    [ST_ERR_NOMEM] = SRV_E_INTERNAL,
};

srv_err srv_err_from_storage(st_code c)
{
    if ((unsigned)c < sizeof storage_map / sizeof storage_map[0]) return storage_map[c];
    return SRV_E_INTERNAL;
}

static const srv_err engine_map[] = {
    [ENG_OK] = SRV_OK,
    [ENG_ERR_ARCH] = SRV_E_INVALID_ARCH,
    [ENG_ERR_WEIGHTS] = SRV_E_INVALID_WEIGHTS,
    [ENG_ERR_FORMAT] = SRV_E_INVALID_WEIGHTS,
    [ENG_ERR_INPUT] = SRV_E_BAD_REQUEST,
    [ENG_ERR_IO] = SRV_E_INTERNAL,
    [ENG_ERR_NOMEM] = SRV_E_INTERNAL,
    [ENG_ERR_LIMIT] = SRV_E_INVALID_WEIGHTS,
    [ENG_ERR_INTERNAL] = SRV_E_INTERNAL,
};

srv_err srv_err_from_engine(eng_code c)
{
    if ((unsigned)c < sizeof engine_map / sizeof engine_map[0]) return engine_map[c];
    return SRV_E_INTERNAL;
}

/* ---- small helpers ---------------------------------------------------------- */

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- answers ------------------------------------------------------------------ */

void srv_reply_response(srv_req *r, unsigned status, struct MHD_Response *resp)
{
    if (r->answered) {                    /* first answer wins */
        MHD_destroy_response(resp);
        return;
    }
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    r->response = resp;
    r->status = status;
    r->answered = 1;
}

char *srv_json_text(json_t *json, size_t *len)
{
    char *text = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(json);
    size_t n = text ? strlen(text) : 0;
    char *t = text ? realloc(text, n + 2) : NULL;
    if (!t) {
        free(text);
        return NULL;
    }
    t[n++] = '\n';
    t[n] = 0;
    *len = n;
    return t;
}

void srv_reply_json_text(srv_req *r, unsigned status, char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    r->bytes_out = len;
    srv_reply_response(r, status, resp);
}

void srv_reply_json(srv_req *r, unsigned status, json_t *json)
{
    size_t len = 3;
    char *text = srv_json_text(json, &len);
    srv_reply_json_text(r, status, text ? text : strdup("{}\n"), len);
}

void srv_reply_error(srv_req *r, srv_err e, json_t *details, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const struct srv_err_info *info = srv_err_info(e);
    if (!r->answered) r->err_code = info->code;
    if (!details) details = json_object();
    json_t *body = json_pack("{s:{s:s,s:s,s:o}}", "error", "code", info->code, "message", msg,
                             "details", details);
    srv_reply_json(r, info->status, body);
}

void srv_reply_storage_error(srv_req *r, st_error *err)
{
    json_t *details = err->details;
    srv_err e = srv_err_from_storage(err->code);
    err->details = NULL;
    if (srv_err_info(e)->status >= 500) {
        /* The server's own failure: the detail (paths under the data
         * directory, SQLite's words) goes to the log, not to the client. */
        SRV_LOG(SRV_LOG_ERROR, "request %s: storage: %s", r->request_id, err->msg);
        srv_reply_error(r, e, details, "%s (request %s; the server log has the details)",
                        e == SRV_E_NO_SPACE ? "the data directory is out of space"
                                            : "the server could not complete the storage operation",
                        r->request_id);
    } else {
        srv_reply_error(r, e, details, "%s", err->msg[0] ? err->msg : st_strerror(err->code));
    }
    st_error_release(err);
}

void srv_reply_engine_error(srv_req *r, eng_error *err)
{
    json_t *details = err->details;
    err->details = NULL;
    srv_reply_error(r, srv_err_from_engine(err->code), details, "%s",
                    err->msg[0] ? err->msg : eng_strerror(err->code));
    eng_error_release(err);
}

/* Deepest nesting of arrays/objects accepted in a JSON request body. Keras
 * configs nest about 10 levels per (sub)model; Jansson's own bound (2048) is
 * deep enough for our recursive walkers (json_dumps, the engine's config
 * reader) to use a lot of a worker thread's stack, so we stop far sooner. */
#define SRV_MAX_JSON_DEPTH 64

/* Nesting depth of a JSON text, scanned without parsing (strings skipped). */
static int json_text_depth(const char *p, size_t len)
{
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max) max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

/* One "bytes=A-B" / "bytes=A-" / "bytes=-N" range against size: 0 none or
 * ignored (a multi-range gets the whole file), 1 *off and *len set, -1
 * unsatisfiable (416). */
static int parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    char *end;
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',')) return 0;
    const char *p = h + 6;
    if (*p == '-') {
        unsigned long long n = strtoull(p + 1, &end, 10);
        if (*end || end == p + 1 || n == 0 || size == 0) return -1;
        if (n > size) n = size;
        *off = size - n;
        *len = n;
        return 1;
    }
    unsigned long long a = strtoull(p, &end, 10), b = size ? size - 1 : 0;
    if (end == p || *end != '-') return 0;
    p = end + 1;
    if (*p) {
        b = strtoull(p, &end, 10);
        if (*end) return 0;
        if (b >= size) b = size ? size - 1 : 0;
    }
    if (a >= size || b < a) return -1;
    *off = a;
    *len = b - a + 1;
    return 1;
}

/* ---- files and segments of files -------------------------------------------------
 * Bodies are read with pread into libmicrohttpd's buffer and sent with send:
 * on this VM read/write beats sendfile (perf-notes: 2.2 vs 1.3 GB/s), and the
 * same reader serves a body made of pieces of several files (partial layer
 * sets: a small skeleton file around ranges of the checkpoint blob). */

#define SRV_FILE_BLOCK (256u << 10)

typedef struct seg_body {
    size_t n, cur;              /* segments; the one the last read ended in */
    uint64_t base;              /* first byte sent (Range), in body coordinates */
    srv_seg *segs;
    uint64_t *start;            /* start[i]: body offset of segs[i] */
} seg_body;

static void close_seg_fds(const srv_seg *segs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && segs[j].fd != segs[i].fd) j++;
        if (j == i && segs[i].fd >= 0) close(segs[i].fd);
    }
}

static void seg_body_free(void *cls)
{
    seg_body *b = cls;
    close_seg_fds(b->segs, b->n);
    free(b->segs);
    free(b->start);
    free(b);
}

static ssize_t seg_body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    seg_body *b = cls;
    uint64_t at = b->base + pos;
    size_t done = 0;
    if (b->cur >= b->n || at < b->start[b->cur]) b->cur = 0;
    while (done < max) {
        while (b->cur < b->n && at >= b->start[b->cur] + b->segs[b->cur].len) b->cur++;
        if (b->cur >= b->n) break;
        const srv_seg *s = &b->segs[b->cur];
        uint64_t in = at - b->start[b->cur], left = s->len - in;
        size_t want = max - done < left ? max - done : (size_t)left;
        ssize_t got = pread(s->fd, buf + done, want, (off_t)(s->off + in));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return done ? (ssize_t)done : MHD_CONTENT_READER_END_WITH_ERROR;
        done += (size_t)got;
        at += (uint64_t)got;
    }
    return done ? (ssize_t)done : MHD_CONTENT_READER_END_OF_STREAM;
}

void srv_reply_segments(srv_req *r, const srv_seg *segs, size_t n, const char *etag,
                        const char *disposition, const char *extra_name, const char *extra_value)
{
    char quoted[160], crange[96];
    uint64_t size = 0, off = 0, len;
    struct MHD_Response *resp = NULL;
    seg_body *b = NULL;
    for (size_t i = 0; i < n; i++) size += segs[i].len;
    len = size;
    snprintf(quoted, sizeof quoted, "\"%s\"", etag);

    const char *inm = srv_header(r, "If-None-Match");
    if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0)) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "ETag", quoted);
        if (extra_name) MHD_add_response_header(resp, extra_name, extra_value);
        srv_reply_response(r, 304, resp);
        goto out;
    }
    const char *range = srv_header(r, "Range"), *if_range = srv_header(r, "If-Range");
    int rr = parse_range(range, size, &off, &len);
    if (rr != 0 && if_range && strcmp(if_range, quoted) != 0) rr = 0;   /* changed: send it all */
    if (rr == 0) { off = 0; len = size; }
    if (rr < 0) {
        snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)size);
        srv_reply_error(r, SRV_E_RANGE, json_pack("{s:I}", "size", (json_int_t)size),
                        "range '%s' is outside the file of %llu bytes", range, (unsigned long long)size);
        MHD_add_response_header(r->response, "Content-Range", crange);
        goto out;
    }
    b = calloc(1, sizeof *b);
    if (b) {
        b->segs = malloc((n ? n : 1) * sizeof *b->segs);
        b->start = malloc((n ? n : 1) * sizeof *b->start);
    }
    if (!b || !b->segs || !b->start) goto fail;
    memcpy(b->segs, segs, n * sizeof *segs);
    b->n = n;
    b->base = off;
    for (size_t i = 0, at = 0; i < n; at += segs[i].len, i++) b->start[i] = at;
    resp = MHD_create_response_from_callback(len, SRV_FILE_BLOCK, seg_body_read, b, seg_body_free);
    if (!resp) goto fail;
    b = NULL;   /* the response owns it (and the fds) from here */
    MHD_add_response_header(resp, "Content-Type", "application/x-hdf5");
    MHD_add_response_header(resp, "ETag", quoted);
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    MHD_add_response_header(resp, "Content-Disposition", disposition);
    MHD_add_response_header(resp, "Cache-Control", "public, max-age=31536000, immutable");
    if (extra_name) MHD_add_response_header(resp, extra_name, extra_value);
    if (rr == 1) {
        snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1), (unsigned long long)size);
        MHD_add_response_header(resp, "Content-Range", crange);
    }
    r->bytes_out = strcmp(r->method, "HEAD") == 0 ? 0 : len;
    srv_reply_response(r, rr == 1 ? 206 : 200, resp);
    return;
fail:
    if (b) { free(b->segs); free(b->start); free(b); }
    srv_reply_error(r, SRV_E_INTERNAL, NULL, "cannot answer with the file");
out:
    close_seg_fds(segs, n);
}

void srv_reply_file(srv_req *r, int fd, uint64_t size, const char *etag, const char *disposition,
                    const char *extra_name, const char *extra_value)
{
    srv_seg whole = {fd, 0, size};
    srv_reply_segments(r, &whole, 1, etag, disposition, extra_name, extra_value);
}

json_t *srv_body_json(srv_req *r)
{
    json_error_t jerr;
    if (!r->body || r->body_len == 0) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "request body must be a JSON document");
        return NULL;
    }
    int depth = json_text_depth(r->body, r->body_len);
    if (depth > SRV_MAX_JSON_DEPTH) {
        srv_reply_error(r, SRV_E_BAD_REQUEST,
                        json_pack("{s:i,s:i}", "depth", depth, "limit", SRV_MAX_JSON_DEPTH),
                        "request body nests arrays/objects %d levels deep; at most %d are accepted",
                        depth, SRV_MAX_JSON_DEPTH);
        return NULL;
    }
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        srv_reply_error(r, SRV_E_BAD_REQUEST,
                        json_pack("{s:i,s:i}", "line", jerr.line, "column", jerr.column),
                        "request body is not valid JSON: %s (line %d, column %d)",
                        jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    return j;
}

/* libmicrohttpd's per-connection pool. It is zeroed for every keep-alive
 * request (30 % of a version GET with 1 MiB, perf); uploads stream through
 * it in pieces, and 128 KiB pieces already cost little next to SHA-256 and
 * write (bench/run: version_json, upload_128MiB). */
#define SRV_CONN_MEMORY (128u << 10)

/* ---- the access handler --------------------------------------------------------- */

static void req_free(srv_req *r)
{
    if (!r) return;
    for (int i = 0; i < r->nparams; i++) { free(r->params[i]); free(r->param_names[i]); }
    free(r->body);
    srv_upload_free(r->upload);
    if (r->response) MHD_destroy_response(r->response);
    free(r);
}

/* Slowloris: a body must arrive at SRV_MIN_BODY_RATE bytes/s on average once
 * it has taken longer than --conn-timeout (whose idle timer alone a client
 * resets with one byte at a time). Below that the connection is closed. */
#define SRV_MIN_BODY_RATE 1024

static int body_too_slow(const srv_req *r)
{
    uint64_t ns = srv_now_ns() - r->started_ns;
    uint64_t grace = (uint64_t)r->srv->cfg->conn_timeout * 1000000000ull;
    if (ns <= grace) return 0;
    uint64_t got = r->route->body == SRV_BODY_UPLOAD ? srv_upload_received(r) : r->body_len;
    return (double)got < (double)SRV_MIN_BODY_RATE * ((double)ns / 1e9);
}

static int body_append(srv_req *r, const char *data, size_t len)
{
    uint64_t cap = r->srv->cfg->max_json;
    if (r->body_too_large || r->body_len + len > cap) {
        r->body_too_large = 1;
        return -1;
    }
    char *nb = realloc(r->body, r->body_len + len + 1);
    if (!nb) return -1;
    memcpy(nb + r->body_len, data, len);
    r->body = nb;
    r->body_len += len;
    r->body[r->body_len] = 0;
    return 0;
}

/* Checks done on the first call, before any body byte is read. Returns 0 to
 * go on, -1 when an answer was queued. */
static int first_call_checks(srv_req *r)
{
    const srv_route *rt = r->route;
    if (r->srv->cfg->auth && rt->scope != SRV_SCOPE_NONE) {
        if (srv_auth_check(r, rt->scope)) return -1;
    }
    if (rt->body == SRV_BODY_JSON || rt->body == SRV_BODY_TEXT) {
        const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end || n > r->srv->cfg->max_json) {
                srv_reply_error(r, SRV_E_TOO_LARGE,
                                json_pack("{s:I}", "limit", (json_int_t)r->srv->cfg->max_json),
                                "request body of %s bytes is over the limit of %llu bytes for JSON",
                                cl, (unsigned long long)r->srv->cfg->max_json);
                return -1;
            }
        }
    }
    if (rt->body == SRV_BODY_UPLOAD) return srv_upload_start(r);
    return 0;
}

static enum MHD_Result queue_answer(srv_req *r)
{
    if (!r->answered)
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "the route gave no answer");
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->response);
    return ret;
}

static atomic_ullong request_counter;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    srv_server *srv = cls;
    srv_req *r = *req_cls;
    (void)version;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *req_cls = r;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->started_ns = srv_now_ns();
        snprintf(r->request_id, sizeof r->request_id, "%08x%010llx", (unsigned)getpid(),
                 (unsigned long long)atomic_fetch_add(&request_counter, 1) + 1);
        atomic_fetch_add(&srv->requests, 1);

        int mismatch = 0;
        r->route = srv_route_match(r, method, url, &mismatch);
        if (!r->route) {
            if (mismatch)
                srv_reply_error(r, SRV_E_METHOD, json_pack("{s:s}", "method", method),
                                "method %s is not allowed on %s", method, url);
            else
                srv_reply_error(r, SRV_E_NOT_FOUND, json_pack("{s:s}", "path", url),
                                "no such endpoint: %s %s (see GET /openapi.yaml or the README)",
                                method, url);
        } else {
            first_call_checks(r);
        }
        /* Errors found before the body are answered now (the body is never
         * read); everything else waits for the final call. */
        if (r->answered) return queue_answer(r);
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        atomic_fetch_add(&srv->bytes_in, n);
        *upload_data_size = 0;
        if (r->answered) return MHD_YES;        /* discarding after an error */
        if (r->route->body == SRV_BODY_UPLOAD) {
            srv_upload_feed(r, upload_data, n);
        } else if (r->route->body == SRV_BODY_NONE) {
            /* bodies on GET/DELETE are ignored */
        } else {
            body_append(r, upload_data, n);
        }
        if (r->route->body != SRV_BODY_NONE && body_too_slow(r)) {
            /* No answer can be queued mid-body: close the connection (the
             * completion callback frees the request and its temp file). */
            SRV_LOG(SRV_LOG_WARN, "%s %s: body slower than %d bytes/s after %d s, closing (id=%s)",
                    r->method, r->url, SRV_MIN_BODY_RATE, r->srv->cfg->conn_timeout, r->request_id);
            return MHD_NO;
        }
        return MHD_YES;
    }

    if (!r->answered) {
        if (r->body_too_large)
            srv_reply_error(r, SRV_E_TOO_LARGE,
                            json_pack("{s:I}", "limit", (json_int_t)srv->cfg->max_json),
                            "request body is over the limit of %llu bytes for JSON",
                            (unsigned long long)srv->cfg->max_json);
        else
            r->route->handler(r);
    }
    return queue_answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_server *srv = cls;
    srv_req *r = *req_cls;
    (void)conn;
    if (!r) return;
    unsigned status = r->answered ? r->status : 0;
    uint64_t ns = srv_now_ns() - r->started_ns;
    if (status >= 100 && status < 600) atomic_fetch_add(&srv->status_counts[status / 100], 1);
    atomic_fetch_add(&srv->bytes_out, r->bytes_out);
    srv_metrics_observe(srv, r, status, ns);
    if (!srv->cfg->quiet) {
        double ms = (double)ns / 1e6;
        if (srv_log_json)
            SRV_LOG(SRV_LOG_INFO,
                    "{\"method\":\"%s\",\"path\":\"%s\",\"status\":%u,\"bytes\":%llu,"
                    "\"ms\":%.3f,\"request_id\":\"%s\",\"route\":\"%s\"%s}",
                    r->method, r->url, status, (unsigned long long)r->bytes_out, ms,
                    r->request_id, r->route ? r->route->name : "-",
                    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ",\"aborted\":true");
        else
            SRV_LOG(SRV_LOG_INFO, "%s %s %u %llu %.3fms id=%s%s", r->method, r->url, status,
                    (unsigned long long)r->bytes_out, ms, r->request_id,
                    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
    }
    req_free(r);
    *req_cls = NULL;
}

/* ---- serve ------------------------------------------------------------------------ */

static int parse_listen(const char *listen, struct sockaddr_in *sa)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) return -1;
    return 0;
}

int srv_serve(const srv_config *cfg)
{
    struct sockaddr_in sa;
    st_error serr = {0};
    srv_server *srv = NULL;
    int rc = 1;

    if (parse_listen(cfg->listen, &sa)) {
        fprintf(stderr, "strata: --listen '%s' is not HOST:PORT with an IPv4 host\n", cfg->listen);
        return 2;
    }
    int loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;

    srv = calloc(1, sizeof *srv);
    if (!srv) return 1;
    srv->cfg = cfg;
    if (!(srv->metrics = srv_metrics_new())) goto out;
    if (st_open(cfg->data, &srv->st, &serr)) {
        fprintf(stderr, "strata: cannot open data directory '%s': %s\n", cfg->data, serr.msg);
        st_error_release(&serr);
        goto out;
    }
    int auth_on = cfg->auth || !loopback;
    if (auth_on) {
        int ntokens = srv_auth_token_count(srv->st);
        if (ntokens <= 0) {
            fprintf(stderr, "strata: auth is on (%s) but the data directory has no tokens; "
                    "create one with: strata token create --data %s --scope admin\n",
                    cfg->auth ? "--auth" : "listening beyond loopback", cfg->data);
            rc = 2;
            goto out;
        }
        ((srv_config *)cfg)->auth = 1;
    }

    /* Block SIGINT/SIGTERM in every thread (the daemon's threads inherit the
     * mask) and wait for them here: a clean stop lets sanitizers report. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    srv->daemon = MHD_start_daemon(
        flags, ntohs(sa.sin_port), NULL, NULL, on_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_CONN_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_conns_per_ip,
        MHD_OPTION_UNESCAPE_CALLBACK, srv_unescape, NULL,
        MHD_OPTION_END);
    if (!srv->daemon) {
        fprintf(stderr, "strata: cannot listen on %s: %s\n", cfg->listen, strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf("strata: listening on http://%s:%u, data in %s%s\n",
           inet_ntoa(sa.sin_addr), info ? info->port : ntohs(sa.sin_port), st_data_dir(srv->st),
           cfg->auth ? ", auth on" : "");
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_set, &sig);
    SRV_LOG(SRV_LOG_INFO, "strata: signal %d, stopping", sig);
    rc = 0;
out:
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    st_close(srv->st);
    srv_cache_free();
    srv_summary_forget_all();
    srv_metrics_free(srv->metrics);
    free(srv);
    return rc;
}
