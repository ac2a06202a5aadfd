/* server/metrics.c — what GET /metrics reports (Prometheus text format 0.0.4).
 *
 * Owns: per-route request counters by status code, per-route latency
 * histograms, bytes in/out, uploads accepted and refused by reason, sandbox
 * kills and crashes, and the gauges read from storage at scrape time (blob
 * count and bytes, versions per model). Counters are lock-free atomics
 * updated once per request from the completion callback (srv_metrics_observe).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "routes.h"

/* Latency buckets in seconds; the last is +Inf. */
static const double buckets[] = {0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

/* Status codes tracked one by one; anything else lands in "other". */
static const unsigned codes[] = {200, 201, 206, 304, 400, 401, 403, 404, 405,
                                 409, 411, 413, 415, 416, 422, 500, 503, 507};
#define NCODES (sizeof codes / sizeof codes[0])

/* Reasons an upload is refused: the contract's error codes. */
static const char *const reasons[] = {
    "bad_request",
    "digest_mismatch",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "length_required",
    "too_large",
    "unsupported_media_type",
    "invalid_architecture",
    "invalid_weights",
    "internal",
    "unavailable",
    "insufficient_storage",
};
#define NREASONS (sizeof reasons / sizeof reasons[0])

struct route_stats {
    atomic_ullong by_code[NCODES + 1]; /* + other */
    atomic_ullong hist[NBUCKETS + 1];  /* + +Inf */
    atomic_ullong sum_us;
};

struct srv_metrics {
    size_t nroutes;
    struct route_stats *routes;          /* srv_nroutes + 1 (unmatched) */
    atomic_ullong refused[NREASONS + 1]; /* + other */
};

srv_metrics *srv_metrics_new(void)
{
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nroutes = srv_nroutes;
    m->routes = calloc(srv_nroutes + 1, sizeof *m->routes);
    if (!m->routes) {
        free(m);
        return NULL;
    }
    return m;
}

void srv_metrics_free(srv_metrics *m)
{
    if (!m) return;
    free(m->routes);
    free(m);
}

void srv_metrics_observe(srv_server *srv, const srv_req *r, unsigned status, uint64_t ns)
{
    srv_metrics *m = srv->metrics;
    if (!m) return;
    size_t ri = r->route ? (size_t)(r->route - srv_routes) : m->nroutes;
    struct route_stats *rs = &m->routes[ri];
    size_t ci = NCODES;
    for (size_t i = 0; i < NCODES; i++)
        if (codes[i] == status) {
            ci = i;
            break;
        }
    atomic_fetch_add(&rs->by_code[ci], 1);
    double s = (double)ns / 1e9;
    size_t bi = NBUCKETS;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (s <= buckets[i]) {
            bi = i;
            break;
        }
    atomic_fetch_add(&rs->hist[bi], 1);
    atomic_fetch_add(&rs->sum_us, ns / 1000);
    if (r->route && r->route->body == SRV_BODY_UPLOAD) {
        if (status == 201) {
            atomic_fetch_add(&srv->uploads_ok, 1);
        } else if (status >= 400) {
            size_t k = NREASONS;
            for (size_t i = 0; r->err_code && i < NREASONS; i++)
                if (strcmp(reasons[i], r->err_code) == 0) {
                    k = i;
                    break;
                }
            atomic_fetch_add(&m->refused[k], 1);
            atomic_fetch_add(&srv->uploads_rejected, 1);
        }
    }
}

/* ---- exposition ------------------------------------------------------------- */

struct textbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void tb_printf(struct textbuf *tb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tb_printf(struct textbuf *tb, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tb->p ? tb->p + tb->len : NULL, tb->p ? tb->cap - tb->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0 || tb->failed) return;
        if (tb->p && tb->len + (size_t)n < tb->cap) {
            tb->len += (size_t)n;
            return;
        }
        size_t ncap = (tb->cap ? tb->cap * 2 : 16384) + (size_t)n;
        char *np = realloc(tb->p, ncap);
        if (!np) {
            tb->failed = 1;
            return;
        }
        tb->p = np;
        tb->cap = ncap;
    }
}

static const char *route_label(size_t i)
{
    return i < srv_nroutes ? srv_routes[i].name : "unmatched";
}

static void counter(struct textbuf *tb, const char *name, const char *help, unsigned long long v)
{
    tb_printf(tb, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

char *srv_metrics_text(srv_server *s, size_t *len)
{
    srv_metrics *m = s->metrics;
    struct textbuf tb = {0};
    uint64_t blobs = 0, bytes = 0;
    st_error err = {0};
    json_t *models = NULL;

    counter(&tb, "strata_requests_started_total", "HTTP requests received.", s->requests);
    tb_printf(&tb, "# HELP strata_requests_total HTTP requests answered, by route and status.\n"
                   "# TYPE strata_requests_total counter\n");
    /* Routes sharing a name (GET and HEAD of weights) are reported once each
     * with their method. */
    for (size_t i = 0; i <= m->nroutes; i++) {
        const char *method = i < srv_nroutes ? srv_routes[i].method : "any";
        for (size_t c = 0; c <= NCODES; c++) {
            unsigned long long v = m->routes[i].by_code[c];
            if (!v) continue;
            if (c < NCODES)
                tb_printf(&tb,
                          "strata_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} %llu\n",
                          route_label(i), method, codes[c], v);
            else
                tb_printf(
                    &tb,
                    "strata_requests_total{route=\"%s\",method=\"%s\",status=\"other\"} %llu\n",
                    route_label(i), method, v);
        }
    }
    tb_printf(
        &tb,
        "# HELP strata_request_duration_seconds Time from the first byte to the answer, by route.\n"
        "# TYPE strata_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        unsigned long long cum = 0, total = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) total += m->routes[i].hist[b];
        if (!total) continue;
        const char *method = i < srv_nroutes ? srv_routes[i].method : "any";
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += m->routes[i].hist[b];
            tb_printf(
                &tb,
                "strata_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} %llu\n",
                route_label(i), method, buckets[b], cum);
        }
        tb_printf(
            &tb,
            "strata_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n",
            route_label(i), method, total);
        tb_printf(&tb, "strata_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n",
                  route_label(i), method, (double)m->routes[i].sum_us / 1e6);
        tb_printf(&tb, "strata_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
                  route_label(i), method, total);
    }
    tb_printf(
        &tb,
        "# HELP strata_responses_total HTTP answers by status class.\n# TYPE strata_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        tb_printf(&tb, "strata_responses_total{class=\"%dxx\"} %llu\n", c,
                  (unsigned long long)s->status_counts[c]);
    counter(&tb, "strata_bytes_in_total", "Request body bytes received.", s->bytes_in);
    counter(&tb, "strata_bytes_out_total", "Response body bytes sent.", s->bytes_out);
    tb_printf(
        &tb,
        "# HELP strata_uploads_total Checkpoint uploads by result.\n# TYPE strata_uploads_total counter\n"
        "strata_uploads_total{result=\"accepted\"} %llu\nstrata_uploads_total{result=\"rejected\"} %llu\n",
        (unsigned long long)s->uploads_ok, (unsigned long long)s->uploads_rejected);
    tb_printf(&tb,
              "# HELP strata_uploads_rejected_total Refused uploads by reason (the error code).\n"
              "# TYPE strata_uploads_rejected_total counter\n");
    for (size_t i = 0; i <= NREASONS; i++)
        if (m->refused[i])
            tb_printf(&tb, "strata_uploads_rejected_total{reason=\"%s\"} %llu\n",
                      i < NREASONS ? reasons[i] : "other", (unsigned long long)m->refused[i]);
    counter(&tb, "strata_sandbox_runs_total", "Files handed to an HDF5 parsing child.",
            s->sandbox_runs);
    counter(&tb, "strata_sandbox_kills_total", "HDF5 parsing children killed at the deadline.",
            s->sandbox_kills);
    counter(&tb, "strata_sandbox_crashes_total", "HDF5 parsing children that crashed or failed.",
            s->sandbox_crashes);

    if (st_blob_stats(s->st, &blobs, &bytes, &err) == ST_OK) {
        tb_printf(
            &tb,
            "# HELP strata_blobs Blobs in the store.\n# TYPE strata_blobs gauge\nstrata_blobs %llu\n",
            (unsigned long long)blobs);
        tb_printf(
            &tb,
            "# HELP strata_blob_bytes Bytes in the blob store.\n# TYPE strata_blob_bytes gauge\n"
            "strata_blob_bytes %llu\n",
            (unsigned long long)bytes);
    }
    st_error_release(&err);
    /* Versions per model: the first 1000 models by name (a scrape stays cheap). */
    if (st_model_list(s->st, 1000, NULL, &models, &err) == ST_OK) {
        size_t i;
        json_t *item;
        tb_printf(
            &tb,
            "# HELP strata_model_versions Live versions per model.\n# TYPE strata_model_versions gauge\n");
        json_array_foreach (json_object_get(models, "items"), i, item)
            tb_printf(&tb, "strata_model_versions{model=\"%s\"} %lld\n",
                      json_string_value(json_object_get(item, "name")),
                      (long long)json_integer_value(json_object_get(item, "versions")));
    }
    st_error_release(&err);
    json_decref(models);

    if (tb.failed) {
        free(tb.p);
        return NULL;
    }
    *len = tb.len;
    return tb.p;
}
