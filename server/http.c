/* server/http.c — the libmicrohttpd daemon and the life of a request.
 *
 * Owns: starting/stopping the daemon, the access handler (route match, auth,
 * body intake, dispatch), the access log line. Does not own: what each
 * route does (route_*.c), the route table (routes.c), uploads
 * (route_versions.c), the error table and the answers (reply.c). Nothing
 * calls into this file but main (srv_serve): it calls the others.
 *
 * libmicrohttpd calls the access handler several times per request: first
 * with no body (we match the route and check what can be checked before any
 * body byte is read: 404/405/401/411/413/415 are answered right there, so a
 * refused upload is never transferred), then once per body chunk, then once
 * with *upload_data_size == 0 — where the route runs. Answering GETs on that
 * later call also avoids libmicrohttpd's keep-alive trap (perf-notes.md).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "auth.h"
#include "cache.h"
#include "log.h"
#include "metrics.h"
#include "params.h"
#include "reply.h"
#include "routes.h"
#include "sandbox.h"
#include "upload.h"

/* libmicrohttpd's per-connection pool. It is zeroed for every keep-alive
 * request (30 % of a version GET with 1 MiB, perf); uploads stream through
 * it in pieces, and 128 KiB pieces already cost little next to SHA-256 and
 * write (bench/run: version_json, upload_128MiB). */
#define SRV_CONN_MEMORY (128u << 10)

/* ---- the access handler --------------------------------------------------------- */

static void req_free(srv_req *r)
{
    if (!r) return;
    for (int i = 0; i < r->nparams; i++) {
        free(r->params[i]);
        free(r->param_names[i]);
    }
    free(r->body);
    srv_upload_free(r->upload);
    if (r->response) MHD_destroy_response(r->response);
    free(r);
}

/* Slowloris: a body must arrive at SRV_MIN_BODY_RATE bytes/s on average once
 * it has taken longer than --conn-timeout (whose idle timer alone a client
 * resets with one byte at a time). Below that the connection is closed. */
#define SRV_MIN_BODY_RATE 1024

static int body_too_slow(const srv_req *r)
{
    uint64_t ns = srv_now_ns() - r->started_ns;
    uint64_t grace = (uint64_t)r->srv->cfg->conn_timeout * 1000000000ull;
    if (ns <= grace) return 0;
    uint64_t got = r->route->body == SRV_BODY_UPLOAD ? srv_upload_received(r) : r->body_len;
    return (double)got < (double)SRV_MIN_BODY_RATE * ((double)ns / 1e9);
}

static int body_append(srv_req *r, const char *data, size_t len)
{
    uint64_t cap = r->srv->cfg->max_json;
    if (r->body_too_large || r->body_len + len > cap) {
        r->body_too_large = 1;
        return -1;
    }
    char *nb = realloc(r->body, r->body_len + len + 1);
    if (!nb) return -1;
    memcpy(nb + r->body_len, data, len);
    r->body = nb;
    r->body_len += len;
    r->body[r->body_len] = 0;
    return 0;
}

/* Checks done on the first call, before any body byte is read. Returns 0 to
 * go on, -1 when an answer was queued. */
static int first_call_checks(srv_req *r)
{
    const srv_route *rt = r->route;
    if (r->srv->cfg->auth && rt->scope != SRV_SCOPE_NONE) {
        if (srv_auth_check(r, rt->scope)) return -1;
    }
    if (rt->body == SRV_BODY_JSON || rt->body == SRV_BODY_TEXT) {
        const char *cl = srv_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end || n > r->srv->cfg->max_json) {
                srv_reply_error(r, SRV_E_TOO_LARGE,
                                json_pack("{s:I}", "limit", (json_int_t)r->srv->cfg->max_json),
                                "request body of %s bytes is over the limit of %llu bytes for JSON",
                                cl, (unsigned long long)r->srv->cfg->max_json);
                return -1;
            }
        }
    }
    if (rt->body == SRV_BODY_UPLOAD) return srv_upload_start(r);
    return 0;
}

static enum MHD_Result queue_answer(srv_req *r)
{
    if (!r->answered) srv_reply_error(r, SRV_E_INTERNAL, NULL, "the route gave no answer");
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->response);
    return ret;
}

static atomic_ullong request_counter;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    srv_server *srv = cls;
    srv_req *r = *req_cls;
    (void)version;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *req_cls = r;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->started_ns = srv_now_ns();
        snprintf(r->request_id, sizeof r->request_id, "%08x%010llx", (unsigned)getpid(),
                 (unsigned long long)atomic_fetch_add(&request_counter, 1) + 1);
        atomic_fetch_add(&srv->requests, 1);

        int mismatch = 0;
        r->route = srv_route_match(r, method, url, &mismatch);
        if (!r->route) {
            if (mismatch)
                srv_reply_error(r, SRV_E_METHOD, json_pack("{s:s}", "method", method),
                                "method %s is not allowed on %s", method, url);
            else
                srv_reply_error(r, SRV_E_NOT_FOUND, json_pack("{s:s}", "path", url),
                                "no such endpoint: %s %s (see GET /openapi.yaml or the README)",
                                method, url);
        } else {
            first_call_checks(r);
        }
        /* Errors found before the body are answered now (the body is never
         * read); everything else waits for the final call. */
        if (r->answered) return queue_answer(r);
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        atomic_fetch_add(&srv->bytes_in, n);
        *upload_data_size = 0;
        if (r->answered) return MHD_YES; /* discarding after an error */
        if (r->route->body == SRV_BODY_UPLOAD) {
            srv_upload_feed(r, upload_data, n);
        } else if (r->route->body == SRV_BODY_NONE) {
            /* bodies on GET/DELETE are ignored */
        } else {
            body_append(r, upload_data, n);
        }
        if (r->route->body != SRV_BODY_NONE && body_too_slow(r)) {
            /* No answer can be queued mid-body: close the connection (the
             * completion callback frees the request and its temp file). */
            SRV_LOG(SRV_LOG_WARN, "%s %s: body slower than %d bytes/s after %d s, closing (id=%s)",
                    r->method, r->url, SRV_MIN_BODY_RATE, r->srv->cfg->conn_timeout, r->request_id);
            return MHD_NO;
        }
        return MHD_YES;
    }

    if (!r->answered) {
        if (r->body_too_large)
            srv_reply_error(r, SRV_E_TOO_LARGE,
                            json_pack("{s:I}", "limit", (json_int_t)srv->cfg->max_json),
                            "request body is over the limit of %llu bytes for JSON",
                            (unsigned long long)srv->cfg->max_json);
        else r->route->handler(r);
    }
    return queue_answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_server *srv = cls;
    srv_req *r = *req_cls;
    (void)conn;
    if (!r) return;
    unsigned status = r->answered ? r->status : 0;
    uint64_t ns = srv_now_ns() - r->started_ns;
    if (status >= 100 && status < 600) atomic_fetch_add(&srv->status_counts[status / 100], 1);
    atomic_fetch_add(&srv->bytes_out, r->bytes_out);
    srv_metrics_observe(srv, r, status, ns);
    if (!srv->cfg->quiet) {
        double ms = (double)ns / 1e6;
        if (srv_log_json)
            SRV_LOG(SRV_LOG_INFO,
                    "{\"method\":\"%s\",\"path\":\"%s\",\"status\":%u,\"bytes\":%llu,"
                    "\"ms\":%.3f,\"request_id\":\"%s\",\"route\":\"%s\"%s}",
                    r->method, r->url, status, (unsigned long long)r->bytes_out, ms, r->request_id,
                    r->route ? r->route->name : "-",
                    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ",\"aborted\":true");
        else
            SRV_LOG(SRV_LOG_INFO, "%s %s %u %llu %.3fms id=%s%s", r->method, r->url, status,
                    (unsigned long long)r->bytes_out, ms, r->request_id,
                    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
    }
    req_free(r);
    *req_cls = NULL;
}

/* ---- serve ------------------------------------------------------------------------ */

static int parse_listen(const char *listen, struct sockaddr_in *sa)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) return -1;
    return 0;
}

int srv_serve(const srv_config *cfg)
{
    struct sockaddr_in sa;
    st_error serr = {0};
    srv_server *srv = NULL;
    int rc = 1;

    if (parse_listen(cfg->listen, &sa)) {
        fprintf(stderr, "strata: --listen '%s' is not HOST:PORT with an IPv4 host\n", cfg->listen);
        return 2;
    }
    int loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;

    srv = calloc(1, sizeof *srv);
    if (!srv) return 1;
    srv->cfg = cfg;
    if (!(srv->metrics = srv_metrics_new())) goto out;
    if (st_open(cfg->data, &srv->st, &serr)) {
        fprintf(stderr, "strata: cannot open data directory '%s': %s\n", cfg->data, serr.msg);
        st_error_release(&serr);
        goto out;
    }
    int auth_on = cfg->auth || !loopback;
    if (auth_on) {
        int ntokens = srv_auth_token_count(srv->st);
        if (ntokens <= 0) {
            fprintf(stderr,
                    "strata: auth is on (%s) but the data directory has no tokens; "
                    "create one with: strata token create --data %s --scope admin\n",
                    cfg->auth ? "--auth" : "listening beyond loopback", cfg->data);
            rc = 2;
            goto out;
        }
        ((srv_config *)cfg)->auth = 1;
    }

    /* Block SIGINT/SIGTERM in every thread (the daemon's threads inherit the
     * mask) and wait for them here: a clean stop lets sanitizers report. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    srv->daemon = MHD_start_daemon(
        flags, ntohs(sa.sin_port), NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)SRV_CONN_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_conns_per_ip, MHD_OPTION_UNESCAPE_CALLBACK, srv_unescape, NULL,
        MHD_OPTION_END);
    if (!srv->daemon) {
        fprintf(stderr, "strata: cannot listen on %s: %s\n", cfg->listen, strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf("strata: listening on http://%s:%u, data in %s%s\n", inet_ntoa(sa.sin_addr),
           info ? info->port : ntohs(sa.sin_port), st_data_dir(srv->st),
           cfg->auth ? ", auth on" : "");
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_set, &sig);
    SRV_LOG(SRV_LOG_INFO, "strata: signal %d, stopping", sig);
    rc = 0;
out:
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    st_close(srv->st);
    srv_cache_free();
    srv_summary_forget_all();
    srv_metrics_free(srv->metrics);
    free(srv);
    return rc;
}
