/* server/reply.h — private to server/: the answers (reply.c): JSON, the
 * error envelope, files and segments of files, and the JSON body reader. */
#ifndef STRATA_SERVER_REPLY_H
#define STRATA_SERVER_REPLY_H

#include "request.h"

void srv_reply_json(srv_req *r, unsigned status, json_t *json);
/* The answer's text of json (STOLEN) with its final newline: NEW, *len set;
 * NULL when out of memory. srv_reply_json_text answers it (text STOLEN). */
char *srv_json_text(json_t *json, size_t *len);
void srv_reply_json_text(srv_req *r, unsigned status, char *text, size_t len);
/* msg is printf-style; details is STOLEN (may be NULL). */
void srv_reply_error(srv_req *r, srv_err e, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void srv_reply_storage_error(srv_req *r, st_error *err); /* releases err */
void srv_reply_engine_error(srv_req *r, eng_error *err); /* releases err */
/* Takes ownership of resp. */
void srv_reply_response(srv_req *r, unsigned status, struct MHD_Response *resp);

/* Answer with a file (immutable content): ETag "<etag>", If-None-Match (304),
 * a single Range / If-Range (206, 416), Accept-Ranges, Content-Disposition,
 * and one extra header when extra_name is not NULL. STEALS fd (closed on
 * every path). */
void srv_reply_file(srv_req *r, int fd, uint64_t size, const char *etag, const char *disposition,
                    const char *extra_name, const char *extra_value);
/* The same for a body that is the concatenation of segs[0..n): len bytes of
 * fd from off, each (a skeleton file around ranges of a blob). Copies segs.
 * STEALS every fd that appears in segs (each distinct fd closed once, on
 * every path). */
typedef struct srv_seg {
    int fd;
    uint64_t off, len;
} srv_seg;
void srv_reply_segments(srv_req *r, const srv_seg *segs, size_t n, const char *etag,
                        const char *disposition, const char *extra_name, const char *extra_value);

/* Parse the JSON body; on failure answers 400 and returns NULL. NEW ref. */
json_t *srv_body_json(srv_req *r);

#endif
