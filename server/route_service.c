/* server/route_service.c — GET /healthz and GET /metrics (Prometheus text). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

void srv_h_healthz(srv_req *r)
{
    srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* A growing text buffer for the exposition format. */
struct textbuf { char *p; size_t len, cap; };

static void tb_printf(struct textbuf *tb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(struct textbuf *tb, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tb->p ? tb->p + tb->len : NULL, tb->p ? tb->cap - tb->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (tb->p && tb->len + (size_t)n < tb->cap) { tb->len += (size_t)n; return; }
        size_t ncap = (tb->cap ? tb->cap * 2 : 4096) + (size_t)n;
        char *np = realloc(tb->p, ncap);
        if (!np) return;
        tb->p = np;
        tb->cap = ncap;
    }
}

void srv_h_metrics(srv_req *r)
{
    srv_server *s = r->srv;
    struct textbuf tb = {0};
    uint64_t blobs = 0, bytes = 0;
    st_error err = {0};
    st_blob_stats(s->st, &blobs, &bytes, &err);
    st_error_release(&err);

    tb_printf(&tb, "# HELP strata_requests_total HTTP requests received.\n# TYPE strata_requests_total counter\n");
    tb_printf(&tb, "strata_requests_total %llu\n", (unsigned long long)s->requests);
    tb_printf(&tb, "# HELP strata_responses_total HTTP responses by status class.\n# TYPE strata_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        tb_printf(&tb, "strata_responses_total{class=\"%dxx\"} %llu\n", c,
                  (unsigned long long)s->status_counts[c]);
    tb_printf(&tb, "# TYPE strata_bytes_in_total counter\nstrata_bytes_in_total %llu\n",
              (unsigned long long)s->bytes_in);
    tb_printf(&tb, "# TYPE strata_bytes_out_total counter\nstrata_bytes_out_total %llu\n",
              (unsigned long long)s->bytes_out);
    tb_printf(&tb, "# TYPE strata_uploads_total counter\nstrata_uploads_total{result=\"accepted\"} %llu\n"
              "strata_uploads_total{result=\"rejected\"} %llu\n",
              (unsigned long long)s->uploads_ok, (unsigned long long)s->uploads_rejected);
    tb_printf(&tb, "# TYPE strata_sandbox_kills_total counter\nstrata_sandbox_kills_total %llu\n",
              (unsigned long long)s->sandbox_kills);
    tb_printf(&tb, "# TYPE strata_sandbox_crashes_total counter\nstrata_sandbox_crashes_total %llu\n",
              (unsigned long long)s->sandbox_crashes);
    tb_printf(&tb, "# TYPE strata_blobs gauge\nstrata_blobs %llu\n", (unsigned long long)blobs);
    tb_printf(&tb, "# TYPE strata_blob_bytes gauge\nstrata_blob_bytes %llu\n", (unsigned long long)bytes);

    struct MHD_Response *resp = MHD_create_response_from_buffer(tb.len, tb.p, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    r->bytes_out = tb.len;
    srv_reply_response(r, 200, resp);
}

/* The OpenAPI description, compiled in from docs/openapi.yaml. */
extern const char srv_openapi_yaml[];
extern const size_t srv_openapi_yaml_len;

void srv_h_openapi(srv_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(srv_openapi_yaml_len, (void *)srv_openapi_yaml,
                                                                MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/yaml; charset=utf-8");
    r->bytes_out = srv_openapi_yaml_len;
    srv_reply_response(r, 200, resp);
}
