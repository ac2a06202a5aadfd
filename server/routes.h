/* server/routes.h — private to server/: the route table and matcher
 * (routes.c) and every handler it names (one route_*.c per resource). */
#ifndef STRATA_SERVER_ROUTES_H
#define STRATA_SERVER_ROUTES_H

#include "request.h"

extern const srv_route srv_routes[];
extern const size_t srv_nroutes;
/* Match method+path. Returns the route and fills r->params; *method_mismatch
 * is set when the path matched some route with another method. */
const srv_route *srv_route_match(srv_req *r, const char *method, const char *path,
                                 int *method_mismatch);

/* ---- handlers (one file per resource) ------------------------------------- */
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

#endif
