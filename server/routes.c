/* server/routes.c — the route table and the path matcher.
 *
 * Owns: which method + path pattern runs which handler, with which scope and
 * body kind. One row per endpoint of shared/design/api.md; the OpenAPI
 * document (docs/openapi.yaml) is checked against this table by a test.
 * Patterns are literal segments and {captures}; a capture matches one
 * non-empty segment (libmicrohttpd has already percent-decoded the path).
 */
#include <stdlib.h>
#include <string.h>

#include "routes.h"

const srv_route srv_routes[] = {
    /* method  pattern                                             handler                  scope            body              name */
    {"GET", "/healthz", srv_h_healthz, SRV_SCOPE_NONE, SRV_BODY_NONE, "healthz"},
    {"GET", "/metrics", srv_h_metrics, SRV_SCOPE_NONE, SRV_BODY_NONE, "metrics"},
    {"GET", "/openapi.yaml", srv_h_openapi, SRV_SCOPE_NONE, SRV_BODY_NONE, "openapi"},
    {"POST", "/v1/architectures", srv_h_arch_create, SRV_SCOPE_WRITE, SRV_BODY_JSON,
     "architectures.create"},
    {"GET", "/v1/architectures", srv_h_arch_list, SRV_SCOPE_READ, SRV_BODY_NONE,
     "architectures.list"},
    {"GET", "/v1/architectures/{id}", srv_h_arch_get, SRV_SCOPE_READ, SRV_BODY_NONE,
     "architectures.get"},
    {"POST", "/v1/models", srv_h_model_create, SRV_SCOPE_WRITE, SRV_BODY_JSON, "models.create"},
    {"GET", "/v1/models", srv_h_model_list, SRV_SCOPE_READ, SRV_BODY_NONE, "models.list"},
    {"GET", "/v1/models/{model}", srv_h_model_get, SRV_SCOPE_READ, SRV_BODY_NONE, "models.get"},
    {"DELETE", "/v1/models/{model}", srv_h_model_delete, SRV_SCOPE_ADMIN, SRV_BODY_NONE,
     "models.delete"},
    {"POST", "/v1/models/{model}/versions", srv_h_version_upload, SRV_SCOPE_WRITE, SRV_BODY_UPLOAD,
     "versions.upload"},
    {"GET", "/v1/models/{model}/versions", srv_h_version_list, SRV_SCOPE_READ, SRV_BODY_NONE,
     "versions.list"},
    {"GET", "/v1/models/{model}/versions/{ref}", srv_h_version_get, SRV_SCOPE_READ, SRV_BODY_NONE,
     "versions.get"},
    {"DELETE", "/v1/models/{model}/versions/{ref}", srv_h_version_delete, SRV_SCOPE_ADMIN,
     SRV_BODY_NONE, "versions.delete"},
    {"GET", "/v1/models/{model}/versions/{ref}/weights", srv_h_version_weights, SRV_SCOPE_READ,
     SRV_BODY_NONE, "versions.weights"},
    {"HEAD", "/v1/models/{model}/versions/{ref}/weights", srv_h_version_weights, SRV_SCOPE_READ,
     SRV_BODY_NONE, "versions.weights"},
    {"POST", "/v1/models/{model}/versions/{ref}/predict", srv_h_version_predict, SRV_SCOPE_READ,
     SRV_BODY_JSON, "versions.predict"},
    {"GET", "/v1/models/{model}/versions/{ref}/layers", srv_h_version_layers, SRV_SCOPE_READ,
     SRV_BODY_NONE, "versions.layers"},
    {"GET", "/v1/models/{model}/versions/{ref}/compatibility", srv_h_version_compat, SRV_SCOPE_READ,
     SRV_BODY_NONE, "versions.compatibility"},
    {"GET", "/v1/models/{model}/versions/{ref}/diff/{other}", srv_h_version_diff, SRV_SCOPE_READ,
     SRV_BODY_NONE, "versions.diff"},
    {"POST", "/v1/models/{model}/history", srv_h_history_post, SRV_SCOPE_WRITE, SRV_BODY_TEXT,
     "history.post"},
    {"GET", "/v1/models/{model}/history", srv_h_history_get, SRV_SCOPE_READ, SRV_BODY_NONE,
     "history.get"},
    {"GET", "/v1/models/{model}/runs", srv_h_runs, SRV_SCOPE_READ, SRV_BODY_NONE, "runs.list"},
    {"GET", "/v1/models/{model}/tags", srv_h_tag_list, SRV_SCOPE_READ, SRV_BODY_NONE, "tags.list"},
    {"GET", "/v1/models/{model}/tags/{tag}", srv_h_tag_get, SRV_SCOPE_READ, SRV_BODY_NONE,
     "tags.get"},
    {"PUT", "/v1/models/{model}/tags/{tag}", srv_h_tag_put, SRV_SCOPE_WRITE, SRV_BODY_JSON,
     "tags.put"},
    {"DELETE", "/v1/models/{model}/tags/{tag}", srv_h_tag_delete, SRV_SCOPE_WRITE, SRV_BODY_NONE,
     "tags.delete"},
    {"GET", "/v1/models/{model}/tags/{tag}/history", srv_h_tag_history, SRV_SCOPE_READ,
     SRV_BODY_NONE, "tags.history"},
};
const size_t srv_nroutes = sizeof srv_routes / sizeof srv_routes[0];

/* Does path match pattern? Captures go to r->params when r is given. */
static int match_one(srv_req *r, const char *pattern, const char *path)
{
    const char *p = pattern, *s = path;
    int n = 0;
    char *caps[SRV_MAX_PARAMS], *names[SRV_MAX_PARAMS];

    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *se = strchr(s, '/');
            if (!se) se = s + strlen(s);
            if (se == s || n == SRV_MAX_PARAMS) goto fail;
            caps[n] = strndup(s, (size_t)(se - s));
            names[n] = strndup(p + 1, (size_t)(pe - p - 1));
            n++;
            p = pe + 1;
            s = se;
        } else if (*p == *s) {
            p++, s++;
        } else {
            goto fail;
        }
    }
    if (*s == '/' && s[1] == 0) s++; /* tolerate one trailing slash */
    if (*p || *s) goto fail;
    if (r) {
        for (int i = 0; i < n; i++) {
            r->params[i] = caps[i];
            r->param_names[i] = names[i];
        }
        r->nparams = n;
    } else {
        for (int i = 0; i < n; i++) {
            free(caps[i]);
            free(names[i]);
        }
    }
    return 1;
fail:
    for (int i = 0; i < n; i++) {
        free(caps[i]);
        free(names[i]);
    }
    return 0;
}

const srv_route *srv_route_match(srv_req *r, const char *method, const char *path,
                                 int *method_mismatch)
{
    *method_mismatch = 0;
    for (size_t i = 0; i < srv_nroutes; i++) {
        const srv_route *rt = &srv_routes[i];
        if (!match_one(NULL, rt->pattern, path)) continue;
        if (strcmp(rt->method, method) != 0) {
            *method_mismatch = 1;
            continue;
        }
        match_one(r, rt->pattern, path);
        return rt;
    }
    return NULL;
}
