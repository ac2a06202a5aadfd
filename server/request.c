/* server/request.c — a request's raw inputs: its path captures (routes.c
 * fills them), query values and headers, all borrowed from the request or
 * from libmicrohttpd. Checks are params.c's; this file answers nothing, so
 * the answers (reply.c) and the checks can both use it.
 */
#include <string.h>

#include "request.h"

const char *srv_param(const srv_req *r, const char *name)
{
    for (int i = 0; i < r->nparams; i++)
        if (strcmp(r->param_names[i], name) == 0) return r->params[i];
    return NULL;
}

const char *srv_query(const srv_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *srv_header(const srv_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}
