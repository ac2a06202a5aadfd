/* server/route_service.c — GET /healthz and GET /metrics (Prometheus text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "reply.h"
#include "routes.h"

void srv_h_metrics(srv_req *r)
{
    size_t len = 0;
    char *text = srv_metrics_text(r->srv, &len);
    if (!text) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory writing metrics");
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    r->bytes_out = len;
    srv_reply_response(r, 200, resp);
}

void srv_h_healthz(srv_req *r)
{
    srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* The OpenAPI description, compiled in from docs/openapi.yaml. */
extern const char srv_openapi_yaml[];
extern const size_t srv_openapi_yaml_len;

void srv_h_openapi(srv_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        srv_openapi_yaml_len, (void *)srv_openapi_yaml, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/yaml; charset=utf-8");
    r->bytes_out = srv_openapi_yaml_len;
    srv_reply_response(r, 200, resp);
}
