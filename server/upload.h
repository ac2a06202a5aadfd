/* server/upload.h — private to server/: the body intake of an upload
 * (route_versions.c), driven by the access handler (http.c). */
#ifndef STRATA_SERVER_UPLOAD_H
#define STRATA_SERVER_UPLOAD_H

#include "request.h"

/* First call for an upload route: check media type, lengths, model; start
 * the temp file. Returns 0 to go on, -1 when an error answer was queued. */
int srv_upload_start(srv_req *r);
/* Feed body bytes. Returns 0, or -1 after an error was recorded. */
int srv_upload_feed(srv_req *r, const char *data, size_t len);
void srv_upload_free(struct srv_upload_state *u);
/* Body bytes an upload has received so far (for the minimum-rate check). */
uint64_t srv_upload_received(const srv_req *r);

#endif
