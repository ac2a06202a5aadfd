/* server/sandbox.h — a parsing child started ahead of its file (sandbox.c).
 *
 * An upload starts its sandboxed child when the body begins to arrive, so the
 * child's exec and library loading (tens of ms) overlap the body instead of
 * following it. The child is the same fresh exec'd process with the same
 * rlimits as an on-demand one; it only waits, before its seccomp lock-down,
 * for the file's descriptor (read-only, over a socket) and parses nothing else.
 * The rest of the sandbox API (srv_sandbox_summary, srv_summary_or_reply) is in
 * http_int.h. */
#ifndef STRATA_SERVER_SANDBOX_H
#define STRATA_SERVER_SANDBOX_H

#include "http_int.h"

/* A started child waiting for its one file (opaque). */
typedef struct srv_sandbox srv_sandbox;

/* Start a child now. NEW, or NULL when it cannot be started or
 * SANDBOX_MAX_WAITING children wait already (the parse then starts its own
 * child, as without one). Free it with srv_sandbox_summary_in (which uses it)
 * or srv_sandbox_discard. */
srv_sandbox *srv_sandbox_start(srv_server *srv);
/* Kill and reap an unused child. NULL ok. */
void srv_sandbox_discard(srv_sandbox *sb);

/* Hand the complete file at path (opened read-only here) to the child now,
 * so that it parses while the caller finishes other work; its deadline
 * counts from here. Best effort: on any failure nothing is sent and
 * srv_sandbox_summary_in does the hand-over (and reports). NULL ok. */
void srv_sandbox_send(srv_sandbox *sb, const char *path);

/* srv_sandbox_summary / srv_summary_or_reply with a child from
 * srv_sandbox_start (STOLEN, may be NULL: then one is started here). */
eng_code srv_sandbox_summary_in(srv_server *srv, srv_sandbox *sb, const char *path, eng_summary **out,
                                eng_error *err, int *killed);
int srv_summary_or_reply_in(srv_req *r, srv_sandbox *sb, const char *path, eng_summary **out);

#endif
