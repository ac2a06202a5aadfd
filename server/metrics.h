/* server/metrics.h — private to server/: per-route counters and the
 * Prometheus text (metrics.c); GET /metrics is route_service.c's. */
#ifndef STRATA_SERVER_METRICS_H
#define STRATA_SERVER_METRICS_H

#include "request.h"

srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
/* Count one finished request: route, status, duration, upload outcome. */
void srv_metrics_observe(srv_server *srv, const srv_req *r, unsigned status, uint64_t ns);
/* The Prometheus text of every counter and gauge: NEW (free()), *len set;
 * NULL when out of memory. */
char *srv_metrics_text(srv_server *srv, size_t *len);

#endif
