/* server/server.h — the one public header of strata's server library.
 *
 * Owns: the HTTP API (libmicrohttpd), routing, request parsing, auth, JSON
 * answers, the sandbox that parses untrusted uploads, and the command line.
 * Uses storage/ and engine/; neither knows about HTTP.
 */
#ifndef STRATA_SERVER_H
#define STRATA_SERVER_H

#include <stdint.h>

/* Server settings; every field has a default from the options table in cli.c. */
typedef struct srv_config {
    const char *listen;     /* "127.0.0.1:8080" */
    const char *data;       /* data directory */
    int auth;               /* require tokens */
    int threads;            /* libmicrohttpd thread pool size */
    uint64_t max_body;      /* bytes; 413 above */
    uint64_t max_json;      /* bytes of a JSON request body */
    int sandbox_timeout_ms; /* wall-clock deadline of the parse child */
    uint64_t sandbox_mem;   /* RLIMIT_AS of the parse child, bytes */
    int conn_timeout;       /* seconds of inactivity before a connection is closed */
    int max_conns;          /* connections in total */
    int max_conns_per_ip;
    const char *log_format; /* "text" | "json" */
    int quiet;              /* no access log */
} srv_config;

/* Run the server until SIGINT/SIGTERM. Returns a process exit status. */
int srv_serve(const srv_config *cfg);

/* The command line: strata serve|migrate|verify|gc|inspect|token. */
int srv_cli_main(int argc, char **argv);

#endif
