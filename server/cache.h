/* server/cache.h — private to server/: the answer cache (cache.c). */
#ifndef STRATA_SERVER_CACHE_H
#define STRATA_SERVER_CACHE_H

#include "request.h"

/* Answers of GETs whose 200 body depends only on the
 * database: gen is st_generation() read before the read transaction.
 * srv_cache_reply answers 200 and returns 1 when key's text is current;
 * srv_cache_reply_json answers 200 with json (STOLEN) and keeps its text. */
int srv_cache_reply(srv_req *r, const char *key, uint64_t gen);
void srv_cache_reply_json(srv_req *r, const char *key, uint64_t gen, json_t *json);
void srv_cache_free(void); /* at exit, for leak checkers */

#endif
