/* server/route_history.c — PLACEHOLDER being replaced by the training-history work
 * (issue 5): POST/GET history, runs. */
#include "http_int.h"

static void not_yet(srv_req *r)
{
    srv_reply_error(r, SRV_E_UNAVAILABLE, NULL, "this endpoint is not available in this build yet");
}
void srv_h_history_post(srv_req *r) { not_yet(r); }
void srv_h_history_get(srv_req *r) { not_yet(r); }
void srv_h_runs(srv_req *r) { not_yet(r); }
