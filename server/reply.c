/* server/reply.c — the answers every route gives: the error table (ONE
 * place maps srv_err to a status and a contract code, and storage/engine
 * codes to srv_err), JSON answers and the error envelope, files and
 * segments of files (ETag, Range, If-None-Match), and the JSON body reader.
 * Does not own: when an answer is queued (http.c), what a route answers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "reply.h"

/* ---- the error table: ONE place maps errors to statuses and codes ---------- */
static const struct srv_err_info err_table[SRV_E__COUNT] = {
    [SRV_OK] = {200, "ok"},
    [SRV_E_BAD_REQUEST] = {400, "bad_request"},
    [SRV_E_DIGEST_MISMATCH] = {400, "digest_mismatch"},
    [SRV_E_UNAUTHORIZED] = {401, "unauthorized"},
    [SRV_E_FORBIDDEN] = {403, "forbidden"},
    [SRV_E_NOT_FOUND] = {404, "not_found"},
    [SRV_E_METHOD] = {405, "method_not_allowed"},
    [SRV_E_CONFLICT] = {409, "conflict"},
    [SRV_E_LENGTH_REQUIRED] = {411, "length_required"},
    [SRV_E_TOO_LARGE] = {413, "too_large"},
    [SRV_E_MEDIA_TYPE] = {415, "unsupported_media_type"},
    [SRV_E_RANGE] = {416, "range_not_satisfiable"},
    [SRV_E_INVALID_ARCH] = {422, "invalid_architecture"},
    [SRV_E_INVALID_WEIGHTS] = {422, "invalid_weights"},
    [SRV_E_INTERNAL] = {500, "internal"},
    [SRV_E_UNAVAILABLE] = {503, "unavailable"},
    [SRV_E_NO_SPACE] = {507, "insufficient_storage"},
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

/* ---- answers ------------------------------------------------------------------ */

void srv_reply_response(srv_req *r, unsigned status, struct MHD_Response *resp)
{
    if (r->answered) { /* first answer wins */
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
    size_t n, cur; /* segments; the one the last read ended in */
    uint64_t base; /* first byte sent (Range), in body coordinates */
    srv_seg *segs;
    uint64_t *start; /* start[i]: body offset of segs[i] */
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
    if (rr != 0 && if_range && strcmp(if_range, quoted) != 0) rr = 0; /* changed: send it all */
    if (rr == 0) {
        off = 0;
        len = size;
    }
    if (rr < 0) {
        snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)size);
        srv_reply_error(r, SRV_E_RANGE, json_pack("{s:I}", "size", (json_int_t)size),
                        "range '%s' is outside the file of %llu bytes", range,
                        (unsigned long long)size);
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
    b = NULL; /* the response owns it (and the fds) from here */
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
    if (b) {
        free(b->segs);
        free(b->start);
        free(b);
    }
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
                        "request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                        jerr.line, jerr.column);
        return NULL;
    }
    return j;
}
