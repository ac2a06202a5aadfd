/* server/sandbox.h — a parsing child started ahead of its file (sandbox.c).
 *
 * An upload starts its sandboxed child when the body begins to arrive, so the
 * child's exec and library loading (tens of ms) overlap the body instead of
 * following it. The child is the same fresh exec'd process with the same
 * rlimits as an on-demand one; it only waits, before its seccomp lock-down,
 * for the file's descriptor (read-only, over a socket) and parses nothing else.
 * The whole sandbox API is here: on-demand parses, the started child, the
 * summary memo by blob digest, and the child's own side. */
#ifndef STRATA_SERVER_SANDBOX_H
#define STRATA_SERVER_SANDBOX_H

#include "request.h"

/* Read the structure of an untrusted weight file in a child process with
 * limits; the summary comes back re-checked. ENG_ERR_FORMAT with a reason
 * when the child crashed, timed out or answered garbage. *killed is set when
 * the deadline killed it, 2 when the sandbox could not be set up (then the
 * caller answers 503: a file is never parsed outside the sandbox). */
eng_code srv_sandbox_summary(srv_server *srv, const char *path, eng_summary **out, eng_error *err,
                             int *killed);
/* The same for a route: counts kills and answers the error itself (503 when
 * the sandbox could not be set up, else 422). Returns 0, or -1 after answering. */
int srv_summary_or_reply(srv_req *r, const char *path, eng_summary **out);
/* The same for a stored blob (digest = "sha256:<hex>" of its bytes): a
 * summary remembered for those bytes is used without the sandbox, else it
 * is read and remembered.
 * srv_summary_remember keeps a checked summary (the upload's);
 * srv_summary_forget_all empties the memo (at exit, for leak checkers). */
int srv_summary_of_blob(srv_req *r, const char *digest, const char *path, eng_summary **out);
void srv_summary_remember(const char *digest, const eng_summary *s);
void srv_summary_forget_all(void);
/* The child's side: `strata __summary FILE` writes the summary JSON to stdout. */
int srv_sandbox_child_main(int argc, char **argv);

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
eng_code srv_sandbox_summary_in(srv_server *srv, srv_sandbox *sb, const char *path,
                                eng_summary **out, eng_error *err, int *killed);
int srv_summary_or_reply_in(srv_req *r, srv_sandbox *sb, const char *path, eng_summary **out);

#endif
