/* server/route_transfer.c — PLACEHOLDER being replaced by the transfer-learning work
 * (issue 4): partial layer sets, format conversion, layers, diff, compatibility. */
#include "http_int.h"

static void not_yet(srv_req *r)
{
    srv_reply_error(r, SRV_E_UNAVAILABLE, NULL, "this endpoint is not available in this build yet");
}
void srv_h_version_layers(srv_req *r) { not_yet(r); }
void srv_h_version_compat(srv_req *r) { not_yet(r); }
void srv_h_version_diff(srv_req *r) { not_yet(r); }
void srv_weights_derived(srv_req *r, json_t *version) { (void)version; not_yet(r); }
