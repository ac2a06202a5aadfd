/* server/archs.h — private to server/: architectures as the routes share
 * them (route_arch.c): store a parsed config, load a stored one. */
#ifndef STRATA_SERVER_ARCHS_H
#define STRATA_SERVER_ARCHS_H

#include "request.h"

/* Parse a JSON value (object) as an architecture and store it. On success
 * *id_out is NEW (free()) and *created set. On failure answers the error and
 * returns -1. */
int srv_arch_store(srv_req *r, json_t *config, const char *name, char **id_out, int *created,
                   json_t **answer);
/* Load the parsed architecture of a stored id (NEW, eng_arch_free). */
eng_code srv_arch_load(srv_server *srv, const char *id, eng_arch **out, eng_error *err);

#endif
