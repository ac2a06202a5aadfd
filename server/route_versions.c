/* server/route_versions.c — /v1/models/{model}/versions: upload (raw body or
 * multipart), list/search, get by ref, delete, weights download (ETag, Range,
 * If-None-Match), predict.
 *
 * The life of an upload (architecture.md): the body streams into a temp file
 * while SHA-256 runs (storage/); the file's structure is read in a sandboxed
 * child (sandbox.c); the engine validates it against the model's
 * architecture (validate_upload(), the one place the engine plugs in); the
 * blob is committed, then the version row — nothing is visible before that.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "archs.h"
#include "cache.h"
#include "params.h"
#include "reply.h"
#include "routes.h"
#include "sandbox.h"
#include "upload.h"

#define UPLOAD_MAX_METADATA (64 * 1024) /* the multipart 'metadata' JSON field */
#define UPLOAD_MAX_TAGS     16
#define NOTES_MAX           (16 * 1024)

struct srv_upload_state {
    st_upload *up;
    struct MHD_PostProcessor *pp; /* multipart only */
    uint64_t received;
    int failed; /* an error was recorded; the body is discarded */
    srv_err err;
    char msg[512];
    char *metadata; /* multipart 'metadata' field */
    size_t metadata_len;
    int saw_weights;
    int multipart;
    char *architecture;   /* model's architecture id, or NULL */
    srv_sandbox *sandbox; /* the parsing child, started with the body; or NULL */
};

void srv_upload_free(struct srv_upload_state *u)
{
    if (!u) return;
    if (u->pp) MHD_destroy_post_processor(u->pp);
    srv_sandbox_discard(u->sandbox);
    st_upload_abort(u->up);
    free(u->metadata);
    free(u->architecture);
    free(u);
}

static void upload_fail(struct srv_upload_state *u, srv_err e, const char *fmt, const char *arg)
{
    if (u->failed) return;
    u->failed = 1;
    u->err = e;
    snprintf(u->msg, sizeof u->msg, fmt, arg);
}

static void upload_write(struct srv_upload_state *u, const char *data, size_t len)
{
    st_error err = {0};
    if (u->failed || !len) return;
    if (st_upload_write(u->up, data, len, &err)) {
        upload_fail(u, srv_err_from_storage(err.code), "cannot store the upload: %.400s", err.msg);
        st_error_release(&err);
    }
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    struct srv_upload_state *u = cls;
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding, (void)off;
    if (!key) { /* libmicrohttpd passes NULL for a part without name="..." (found by fuzz_multipart) */
        upload_fail(u, SRV_E_BAD_REQUEST, "a multipart/form-data part has no name%s", "");
        return MHD_YES;
    }
    if (strcmp(key, "weights") == 0) {
        u->saw_weights = 1;
        upload_write(u, data, size);
    } else if (strcmp(key, "metadata") == 0) {
        if (u->metadata_len + size > UPLOAD_MAX_METADATA) {
            upload_fail(u, SRV_E_TOO_LARGE, "the 'metadata' field is over %s bytes", "65536");
            return MHD_YES;
        }
        char *nm = realloc(u->metadata, u->metadata_len + size + 1);
        if (!nm) return MHD_NO;
        memcpy(nm + u->metadata_len, data, size);
        u->metadata = nm;
        u->metadata_len += size;
        u->metadata[u->metadata_len] = 0;
    }
    return MHD_YES;
}

/* The media type without parameters, lower-cased, into buf. */
static void media_type(const char *ct, char *buf, size_t len)
{
    size_t i = 0;
    if (!ct) ct = "";
    while (*ct == ' ') ct++;
    for (; ct[i] && ct[i] != ';' && ct[i] != ' ' && i + 1 < len; i++)
        buf[i] = (char)tolower((unsigned char)ct[i]);
    buf[i] = 0;
}

/* Raw-body media types. curl's --data-binary sends a form type unless told
 * otherwise; its bytes are taken as they are (the sandbox says if they are
 * not HDF5). */
static const char *const raw_types[] = {
    "application/x-hdf5", "application/octet-stream",
    "application/x-hdf",  "application/x-www-form-urlencoded",
    "application/zip",
};

int srv_upload_start(srv_req *r)
{
    const char *model;
    const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = srv_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *ct = srv_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    char mt[128];
    st_error err = {0};
    json_t *m = NULL;
    int multipart = 0, raw = 0;

    if (srv_model_param(r, &model)) return -1;
    if (cl && te) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                        "a request may not carry both Content-Length and Transfer-Encoding");
        return -1;
    }
    if (!cl && !(te && strstr(te, "chunked"))) {
        srv_reply_error(r, SRV_E_LENGTH_REQUIRED, NULL,
                        "an upload needs Content-Length or chunked Transfer-Encoding");
        return -1;
    }
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end || errno) {
            srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "Content-Length '%s' is not a number", cl);
            return -1;
        }
        if (n > r->srv->cfg->max_body) {
            srv_reply_error(r, SRV_E_TOO_LARGE,
                            json_pack("{s:I,s:I}", "limit", (json_int_t)r->srv->cfg->max_body,
                                      "size", (json_int_t)n),
                            "upload of %llu bytes is over the limit of %llu bytes (--max-body)", n,
                            (unsigned long long)r->srv->cfg->max_body);
            return -1;
        }
    }
    media_type(ct, mt, sizeof mt);
    multipart = strcmp(mt, "multipart/form-data") == 0;
    for (size_t i = 0; i < sizeof raw_types / sizeof raw_types[0]; i++)
        if (strcmp(mt, raw_types[i]) == 0) raw = 1;
    if (!multipart && !raw) {
        srv_reply_error(
            r, SRV_E_MEDIA_TYPE, json_pack("{s:s}", "content_type", ct ? ct : ""),
            "media type '%s' is not accepted: send the file as application/x-hdf5 "
            "(or application/octet-stream), or as multipart/form-data with a 'weights' field",
            ct ? ct : "(none)");
        return -1;
    }
    if (st_model_get(r->srv->st, model, &m, &err)) {
        srv_reply_storage_error(r, &err);
        return -1;
    }

    struct srv_upload_state *u = calloc(1, sizeof *u);
    if (!u) {
        json_decref(m);
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        return -1;
    }
    r->upload = u;
    const char *aid = json_string_value(json_object_get(m, "architecture"));
    if (aid) u->architecture = strdup(aid);
    json_decref(m);
    u->multipart = multipart;
    if (multipart) {
        u->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_part, u);
        if (!u->pp) {
            srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "multipart/form-data without a boundary");
            return -1;
        }
    }
    if (st_upload_begin(r->srv->st, &u->up, &err)) {
        srv_reply_storage_error(r, &err);
        return -1;
    }
    /* The parsing child starts now and loads while the body arrives; it
     * sees nothing until the file is complete (sandbox.h). */
    u->sandbox = srv_sandbox_start(r->srv);
    return 0;
}

uint64_t srv_upload_received(const srv_req *r)
{
    return r->upload ? r->upload->received : 0;
}

int srv_upload_feed(srv_req *r, const char *data, size_t len)
{
    struct srv_upload_state *u = r->upload;
    if (!u) return -1;
    u->received += len; /* counted after a failure too: the minimum rate */
    if (u->failed) return -1;
    if (u->received > r->srv->cfg->max_body) {
        char lim[32];
        snprintf(lim, sizeof lim, "%llu", (unsigned long long)r->srv->cfg->max_body);
        upload_fail(u, SRV_E_TOO_LARGE, "upload is over the limit of %s bytes (--max-body)", lim);
        return -1;
    }
    if (u->pp) {
        if (MHD_post_process(u->pp, data, len) != MHD_YES)
            upload_fail(u, SRV_E_BAD_REQUEST, "malformed multipart/form-data body%s", "");
    } else {
        upload_write(u, data, len);
    }
    return u->failed ? -1 : 0;
}

/* ---- upload metadata --------------------------------------------------------- */

struct upload_meta {
    const char *run;
    int has_epoch;
    int64_t epoch;
    json_t *metrics; /* borrowed from one of the json docs below */
    const char *notes;
    const char *parent;
    const char *tags[UPLOAD_MAX_TAGS];
    size_t ntags;
    const char *digest; /* declared "sha256:<hex>" */
    json_t *doc;        /* owned: multipart metadata document */
    json_t *qmetrics;   /* owned: metrics parsed from the query */
};

struct tag_collect {
    struct upload_meta *m;
    int overflow;
};

static enum MHD_Result collect_tag(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct tag_collect *tc = cls;
    (void)kind;
    if (strcmp(key, "tag") == 0 && value) {
        if (tc->m->ntags == UPLOAD_MAX_TAGS) tc->overflow = 1;
        else tc->m->tags[tc->m->ntags++] = value;
    }
    return MHD_YES;
}

static int check_metrics(srv_req *r, json_t *metrics)
{
    const char *k;
    json_t *v;
    if (!json_is_object(metrics)) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                        "'metrics' must be a JSON object of numbers, like {\"loss\": 0.31}");
        return -1;
    }
    json_object_foreach (metrics, k, v) {
        if (!st_metric_name_valid(k)) {
            srv_reply_error(
                r, SRV_E_BAD_REQUEST, json_pack("{s:s}", "metric", k),
                "metric name '%.128s' must be 1 to 128 printable ASCII characters without "
                "space, ',' or '\"', and not 'epoch'",
                k);
            return -1;
        }
        if (!json_is_number(v) || !isfinite(json_number_value(v))) {
            srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:s}", "metric", k),
                            "metric '%s' must have a finite number as its value", k);
            return -1;
        }
    }
    return 0;
}

/* Fill m from the multipart metadata field or the query. -1 after a 400. */
static int read_meta(srv_req *r, struct upload_meta *m)
{
    struct srv_upload_state *u = r->upload;
    json_error_t jerr;
    memset(m, 0, sizeof *m);

    if (u->multipart) {
        if (!u->saw_weights) {
            srv_reply_error(
                r, SRV_E_BAD_REQUEST, NULL,
                "multipart upload without a 'weights' file field (curl -F weights=@w.h5)");
            return -1;
        }
        if (u->metadata) {
            m->doc = json_loadb(u->metadata, u->metadata_len, JSON_REJECT_DUPLICATES, &jerr);
            if (!json_is_object(m->doc)) {
                srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                                "the 'metadata' field must be a JSON object: %s",
                                m->doc ? "not an object" : jerr.text);
                return -1;
            }
            json_t *v;
            if ((v = json_object_get(m->doc, "run")) && !json_is_null(v)) {
                if (!json_is_string(v)) goto bad_field;
                m->run = json_string_value(v);
            }
            if ((v = json_object_get(m->doc, "epoch")) && !json_is_null(v)) {
                if (!json_is_integer(v) || json_integer_value(v) < 0) goto bad_field;
                m->has_epoch = 1;
                m->epoch = json_integer_value(v);
            }
            if ((v = json_object_get(m->doc, "metrics")) && !json_is_null(v)) m->metrics = v;
            if ((v = json_object_get(m->doc, "notes")) && !json_is_null(v)) {
                if (!json_is_string(v)) goto bad_field;
                m->notes = json_string_value(v);
            }
            if ((v = json_object_get(m->doc, "parent")) && !json_is_null(v)) {
                if (!json_is_string(v)) goto bad_field;
                m->parent = json_string_value(v);
            }
            if ((v = json_object_get(m->doc, "digest")) && json_is_string(v))
                m->digest = json_string_value(v);
            if ((v = json_object_get(m->doc, "tags")) && !json_is_null(v)) {
                size_t i;
                json_t *t;
                if (!json_is_array(v) || json_array_size(v) > UPLOAD_MAX_TAGS) goto bad_field;
                json_array_foreach (v, i, t) {
                    if (!json_is_string(t)) goto bad_field;
                    m->tags[m->ntags++] = json_string_value(t);
                }
            }
        }
    } else {
        int present = 0;
        m->run = srv_query(r, "run");
        if (srv_query_int(r, "epoch", 0, INT64_MAX, &m->epoch, &present)) return -1;
        m->has_epoch = present;
        m->notes = srv_query(r, "notes");
        m->parent = srv_query(r, "parent");
        m->digest = srv_query(r, "digest");
        const char *mt = srv_query(r, "metrics");
        if (mt) {
            m->qmetrics = json_loads(mt, JSON_REJECT_DUPLICATES, &jerr);
            if (!m->qmetrics) {
                srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                                "query parameter 'metrics' must be URL-encoded JSON: %s",
                                jerr.text);
                return -1;
            }
            m->metrics = m->qmetrics;
        }
        struct tag_collect tc = {m, 0};
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_tag, &tc);
        if (tc.overflow) {
            srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "at most %d tags per upload",
                            UPLOAD_MAX_TAGS);
            return -1;
        }
    }
    if (m->run && srv_check_name(r, SRV_NAME_RUN, m->run)) return -1;
    if (m->metrics && check_metrics(r, m->metrics)) return -1;
    if (m->notes && strlen(m->notes) > NOTES_MAX) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "'notes' is over %d bytes", NOTES_MAX);
        return -1;
    }
    if (m->parent) {
        const char *at = strchr(m->parent, '@');
        char pm[130];
        int ok = at && at > m->parent && (size_t)(at - m->parent) < sizeof pm && at[1];
        if (ok) {
            memcpy(pm, m->parent, (size_t)(at - m->parent));
            pm[at - m->parent] = 0;
            ok = st_name_valid(pm);
            for (const char *p = at + 1; ok && *p; p++) ok = isdigit((unsigned char)*p);
        }
        if (!ok) {
            srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:s}", "parent", m->parent),
                            "'parent' must be MODEL@VERSION, like mnist-cnn@3");
            return -1;
        }
    }
    for (size_t i = 0; i < m->ntags; i++) {
        if (srv_check_name(r, SRV_NAME_TAG, m->tags[i])) return -1;
        if (strcmp(m->tags[i], "latest") == 0) {
            srv_reply_error(
                r, SRV_E_BAD_REQUEST, json_pack("{s:s}", "tag", m->tags[i]),
                "tag 'latest' is built in (the highest live version) and cannot be set");
            return -1;
        }
    }
    return 0;
bad_field:
    srv_reply_error(
        r, SRV_E_BAD_REQUEST, NULL,
        "'metadata' fields: run (string), epoch (integer >= 0), metrics (object of numbers), "
        "tags (array of strings), notes (string), parent (\"model@N\")");
    return -1;
}

static void meta_release(struct upload_meta *m)
{
    json_decref(m->doc);
    json_decref(m->qmetrics);
}

/* The client-declared digest, from ?digest=sha256:<hex> or
 * Content-Digest: sha-256=:<base64>:. Writes 64 hex chars; 1 if one was
 * declared, 0 if none, -1 after a 400. */
static int declared_digest(srv_req *r, const struct upload_meta *m, char hex[65])
{
    if (m->digest) {
        const char *h = srv_digest_hex(m->digest);
        if (!h) {
            srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                            "'digest' must be sha256:<64 lowercase hex digits>");
            return -1;
        }
        memcpy(hex, h, 65);
        return 1;
    }
    const char *cd = srv_header(r, "Content-Digest");
    if (!cd) return 0;
    const char *p = strstr(cd, "sha-256=:");
    unsigned char raw[66];
    if (p) {
        p += 9;
        const char *e = strchr(p, ':');
        if (e && e - p == 44) {
            int n = EVP_DecodeBlock(raw, (const unsigned char *)p, 44);
            if (n == 33) { /* 32 bytes + 1 from the '=' padding */
                srv_hex(raw, 32, hex);
                return 1;
            }
        }
    }
    srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                    "Content-Digest must be sha-256=:<base64 of 32 bytes>:");
    return -1;
}

/* THE place where the engine judges an upload: structure read in the
 * sandbox (the child that started with the body, sandbox.h), then
 * validation against the model's architecture (or, for a model without
 * one, the layer listing with its digests). On success *layers and
 * *validation are NEW; on failure an error was answered. */
static int validate_upload(srv_req *r, const char *path, int fd, const char *digest,
                           const char **format, json_t **layers, json_t **validation)
{
    struct srv_upload_state *u = r->upload;
    eng_summary *s = NULL;
    eng_arch *a = NULL;
    eng_error err = {0};
    srv_sandbox *sb = u->sandbox;
    int rc = -1;

    u->sandbox = NULL;
    if (srv_summary_or_reply_in(r, sb, path, &s)) goto out;
    srv_summary_remember(digest, s); /* for reads of these bytes later */
    *format = eng_format_name(s->format);
    if (!u->architecture) {
        if (eng_summary_layers_json(fd, s, layers, &err)) {
            srv_reply_engine_error(r, &err);
            goto out;
        }
        *validation = json_pack("{s:s,s:s}", "status", "skipped", "reason",
                                "the model has no architecture; layers were read, not checked");
        rc = 0;
        goto out;
    }
    if (srv_arch_load(r->srv, u->architecture, &a, &err)) {
        srv_reply_engine_error(r, &err);
        goto out;
    }
    if (eng_validate(a, s, fd, validation, layers, &err)) {
        if (err.code == ENG_ERR_ARCH) err.code = ENG_ERR_WEIGHTS;
        srv_reply_engine_error(r, &err);
        goto out;
    }
    rc = 0;
out:
    eng_arch_free(a);
    eng_summary_free(s);
    return rc;
}

void srv_h_version_upload(srv_req *r)
{
    struct srv_upload_state *u = r->upload;
    struct upload_meta m;
    st_error serr = {0};
    char digest[65], want[65], digest_text[ENG_DIGEST_LEN];
    uint64_t size = 0;
    json_t *layers = NULL, *validation = NULL, *out = NULL;
    char *layers_text = NULL, *validation_text = NULL, *metrics_text = NULL;
    const char *format = NULL;

    memset(&m, 0, sizeof m);
    if (u->failed) {
        srv_reply_error(r, u->err, NULL, "%s", u->msg);
        goto out;
    }
    /* Destroying the post processor delivers the last field it buffered. */
    if (u->pp) {
        MHD_destroy_post_processor(u->pp);
        u->pp = NULL;
        if (u->failed) {
            srv_reply_error(r, u->err, NULL, "%s", u->msg);
            goto out;
        }
    }
    if (read_meta(r, &m)) goto out;
    /* The body is complete: the child parses while the digest's last bytes
     * are hashed; the temp file's fsync then runs (st_upload_finish starts
     * it, st_upload_commit waits for it) while the upload is validated. */
    srv_sandbox_send(u->sandbox, st_upload_path(u->up));
    if (st_upload_finish(u->up, digest, &size, &serr)) {
        srv_reply_storage_error(r, &serr);
        goto out;
    }
    if (size == 0) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                        "the upload is empty: send the weight file as the body");
        goto out;
    }
    int d = declared_digest(r, &m, want);
    if (d < 0) goto out;
    if (d == 1 && strcmp(want, digest) != 0) {
        srv_reply_error(
            r, SRV_E_DIGEST_MISMATCH,
            json_pack("{s:s+,s:s+}", "expected", "sha256:", want, "found", "sha256:", digest),
            "the body's digest is sha256:%s, not the declared sha256:%s; nothing was stored",
            digest, want);
        goto out;
    }
    snprintf(digest_text, sizeof digest_text, "sha256:%s", digest);
    if (validate_upload(r, st_upload_path(u->up), st_upload_fd(u->up), digest_text, &format,
                        &layers, &validation))
        goto out;

    layers_text = json_dumps(layers, JSON_COMPACT);
    validation_text = json_dumps(validation, JSON_COMPACT);
    metrics_text = m.metrics ? json_dumps(m.metrics, JSON_COMPACT) : NULL;
    st_version_new v = {
        .model = srv_param(r, "model"),
        .digest = digest,
        .size = size,
        .format = format,
        .run = m.run,
        .has_epoch = m.has_epoch,
        .epoch = m.epoch,
        .metrics = metrics_text,
        .notes = m.notes,
        .parent = m.parent,
        .layers = layers_text,
        .validation = validation_text,
        .tags = m.tags,
        .ntags = m.ntags,
    };
    /* Blob before row: a crash between the two leaves an unreferenced blob
     * that gc removes, never a row without its file. */
    if (st_upload_commit(u->up, &serr)) {
        u->up = NULL;
        srv_reply_storage_error(r, &serr);
        goto out;
    }
    u->up = NULL;
    if (st_version_create(r->srv->st, &v, &out, &serr)) {
        srv_reply_storage_error(r, &serr);
        goto out;
    }
    srv_reply_json(r, 201, out);
out:
    meta_release(&m);
    json_decref(layers);
    json_decref(validation);
    free(layers_text);
    free(validation_text);
    free(metrics_text);
}

/* ---- reads ---------------------------------------------------------------------- */

void srv_h_version_get(srv_req *r)
{
    const char *model, *ref;
    json_t *out = NULL;
    st_error err = {0};
    char key[300];
    if (srv_model_param(r, &model) || srv_ref_param(r, "ref", &ref)) return;
    uint64_t gen = st_generation(r->srv->st);
    snprintf(key, sizeof key, "version %s %s", model, ref); /* names are <= 128 chars */
    if (srv_cache_reply(r, key, gen)) return;
    if (st_version_get(r->srv->st, model, ref, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_cache_reply_json(r, key, gen, out);
}

void srv_h_version_list(srv_req *r)
{
    const char *model;
    json_t *out = NULL;
    st_error err = {0};
    st_version_query q = {0};
    if (srv_model_param(r, &model)) return;
    if (srv_query_page(r, &q.limit, &q.after)) return;
    q.run = srv_query(r, "run");
    q.tag = srv_query(r, "tag");
    if (srv_query_int(r, "min_epoch", 0, INT64_MAX, &q.min_epoch, &q.has_min_epoch)) return;
    if (srv_query_int(r, "max_epoch", 0, INT64_MAX, &q.max_epoch, &q.has_max_epoch)) return;
    q.order_by = srv_query(r, "order_by");
    const char *order = srv_query(r, "order");
    if (order && strcmp(order, "asc") && strcmp(order, "desc")) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL, "'order' must be asc or desc");
        return;
    }
    /* By number, newest first; by a metric or epoch, ascending unless asked. */
    q.descending = order ? strcmp(order, "desc") == 0 : (q.order_by == NULL);
    if (q.order_by && strcmp(q.order_by, "version") && strcmp(q.order_by, "epoch") &&
        strcmp(q.order_by, "created_at") &&
        !(strncmp(q.order_by, "metrics.", 8) == 0 && q.order_by[8] && strlen(q.order_by) <= 136)) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:s}", "order_by", q.order_by),
                        "'order_by' must be version, epoch, created_at or metrics.<name>");
        return;
    }
    if ((q.run && srv_check_name(r, SRV_NAME_RUN, q.run)) ||
        (q.tag && srv_check_name(r, SRV_NAME_TAG, q.tag)))
        return;
    if (st_version_list(r->srv->st, model, &q, &out, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(r, 200, out);
}

void srv_h_version_delete(srv_req *r)
{
    const char *model, *ref;
    st_error err = {0};
    if (srv_model_param(r, &model) || srv_ref_param(r, "ref", &ref)) return;
    char *end;
    long long n = strtoll(ref, &end, 10);
    if (*end || n < 1) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, json_pack("{s:s}", "ref", ref),
                        "delete takes a version number, not a tag ('%s')", ref);
        return;
    }
    if (st_version_delete(r->srv->st, model, n, srv_query_flag(r, "force"), &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    srv_reply_json(
        r, 200, json_pack("{s:s,s:I,s:b}", "model", model, "version", (json_int_t)n, "deleted", 1));
}

/* ---- weights download --------------------------------------------------------- */

void srv_h_version_weights(srv_req *r)
{
    const char *model, *ref;
    json_t *v = NULL;
    st_error err = {0};
    int fd = -1;
    uint64_t size = 0;
    char disp[200];

    if (srv_model_param(r, &model) || srv_ref_param(r, "ref", &ref)) return;
    if (st_version_get(r->srv->st, model, ref, &v, &err)) {
        srv_reply_storage_error(r, &err);
        return;
    }
    /* ?format= naming the layout the upload already has is no conversion: the
     * exact bytes (a Keras 3 file keeps its optimizer state for a resume). */
    const char *fmt = srv_query(r, "format"),
               *have = json_string_value(json_object_get(v, "format"));
    int same_layout = fmt && have && strncmp(have, fmt, strlen(fmt)) == 0 &&
                      have[strlen(fmt)] == '-' && strcmp(have, "keras3-archive") != 0;
    static const char *const selections[] = {"layers", "exclude", "for", "format"};
    for (size_t i = 0; i < sizeof selections / sizeof selections[0]; i++) {
        if (srv_query(r, selections[i]) && !(i == 3 && same_layout)) {
            srv_weights_derived(r, v); /* a partial set or another layout */
            goto out;
        }
    }
    const char *digest = srv_version_digest(r, v);
    json_int_t number = json_integer_value(json_object_get(v, "version"));
    snprintf(disp, sizeof disp, "attachment; filename=\"%s-v%lld.h5\"", model, (long long)number);
    if (!digest) goto out;
    if (st_blob_open(r->srv->st, digest, &fd, &size, &err)) {
        srv_reply_storage_error(r, &err);
        goto out;
    }
    srv_reply_file(r, fd, size, digest, disp, NULL, NULL);
out:
    json_decref(v);
}

/* ---- predict -------------------------------------------------------------------- */

/* Flatten a nested list of numbers whose shape must equal shape[0..rank). */
static int flatten_input(json_t *j, const json_int_t *shape, int rank, float *dst, size_t *pos)
{
    if (rank == 0) {
        if (!json_is_number(j)) return -1;
        double d = json_number_value(j);
        if (!isfinite(d)) return -1;
        dst[(*pos)++] = (float)d;
        return 0;
    }
    if (!json_is_array(j) || (json_int_t)json_array_size(j) != shape[0]) return -1;
    for (size_t i = 0; i < json_array_size(j); i++)
        if (flatten_input(json_array_get(j, i), shape + 1, rank - 1, dst, pos)) return -1;
    return 0;
}

void srv_h_version_predict(srv_req *r)
{
    const char *model, *ref;
    json_t *body = NULL, *v = NULL, *m = NULL, *arch_json = NULL, *outputs = NULL;
    st_error serr = {0};
    eng_error eerr = {0};
    eng_arch *a = NULL;
    eng_summary *s = NULL;
    eng_model *em = NULL;
    eng_workspace *ws = NULL;
    float *in = NULL, *outv = NULL;
    int fd = -1;
    uint64_t size;
    char path[4200];

    if (srv_model_param(r, &model) || srv_ref_param(r, "ref", &ref)) return;
    if (!(body = srv_body_json(r))) return;
    json_t *inputs = json_object_get(body, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) == 0 || json_array_size(inputs) > 1024) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                        "body must be {\"inputs\": [<HWC array>, …]} with 1 to 1024 inputs");
        goto out;
    }
    if (st_model_get(r->srv->st, model, &m, &serr)) {
        srv_reply_storage_error(r, &serr);
        goto out;
    }
    const char *aid = json_string_value(json_object_get(m, "architecture"));
    if (!aid) {
        srv_reply_error(r, SRV_E_BAD_REQUEST, NULL,
                        "model '%s' has no architecture, so it cannot predict", model);
        goto out;
    }
    if (st_version_get(r->srv->st, model, ref, &v, &serr)) {
        srv_reply_storage_error(r, &serr);
        goto out;
    }
    const char *digest = srv_version_digest(r, v);
    if (!digest) goto out;
    if (st_blob_open(r->srv->st, digest, &fd, &size, &serr)) {
        srv_reply_storage_error(r, &serr);
        goto out;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (srv_arch_load(r->srv, aid, &a, &eerr)) {
        srv_reply_engine_error(r, &eerr);
        goto out;
    }
    if (srv_summary_of_blob(r, digest, path, &s)) goto out;
    if (eng_model_load(a, s, fd, &em, &eerr)) {
        srv_reply_engine_error(r, &eerr);
        goto out;
    }

    arch_json = eng_arch_to_json(a);
    json_t *ishape = json_object_get(arch_json, "input_shape");
    int rank = (int)json_array_size(ishape);
    json_int_t dims[ENG_MAX_RANK];
    for (int i = 0; i < rank && i < ENG_MAX_RANK; i++)
        dims[i] = json_integer_value(json_array_get(ishape, i));
    size_t isz = eng_model_input_size(em), osz = eng_model_output_size(em);
    size_t batch = json_array_size(inputs);
    in = malloc(batch * isz * sizeof *in);
    outv = malloc(batch * osz * sizeof *outv);
    if (!in || !outv) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        goto out;
    }
    for (size_t b = 0; b < batch; b++) {
        size_t pos = 0;
        if (rank > ENG_MAX_RANK ||
            flatten_input(json_array_get(inputs, b), dims, rank, in + b * isz, &pos) ||
            pos != isz) {
            srv_reply_error(
                r, SRV_E_BAD_REQUEST,
                json_pack("{s:I,s:O}", "input", (json_int_t)b, "expected_shape", ishape),
                "input %zu does not have the architecture's input shape (channels last) "
                "or holds a value that is not a finite number",
                b);
            goto out;
        }
    }
    ws = eng_workspace_new();
    if (eng_model_predict(em, ws, in, batch, outv, &eerr)) {
        srv_reply_engine_error(r, &eerr);
        goto out;
    }
    outputs = json_array();
    for (size_t b = 0; b < batch; b++) {
        json_t *row = json_array();
        for (size_t i = 0; i < osz; i++) json_array_append_new(row, json_real(outv[b * osz + i]));
        json_array_append_new(outputs, row);
    }
    srv_reply_json(r, 200,
                   json_pack("{s:s,s:I,s:o}", "model", model, "version",
                             json_integer_value(json_object_get(v, "version")), "outputs",
                             outputs));
out:
    if (fd >= 0) close(fd);
    free(in);
    free(outv);
    eng_workspace_free(ws);
    eng_model_free(em);
    eng_summary_free(s);
    eng_arch_free(a);
    json_decref(arch_json);
    json_decref(body);
    json_decref(v);
    json_decref(m);
}
