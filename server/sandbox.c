/* server/sandbox.c — untrusted weight files are parsed by libhdf5 in a child.
 *
 * Owns: starting `strata __summary -` as a fresh process (fork + exec of
 * /proc/self/exe, so no thread or lock state of the server leaks into it)
 * with rlimits (CPU, address space, file size 0, open files) — when the file
 * is complete, or ahead of it (sandbox.h: an upload starts its child when its
 * body begins, so exec and library loading overlap the transfer) —, the file
 * handed over read-only on the child's stdin (SCM_RIGHTS) to become fd 3, its
 * answer read from a pipe under a wall-clock deadline counted from the
 * hand-over (SIGKILL past it), and the child's side: receive the descriptor,
 * no_new_privs, a seccomp allow-list, the engine's summary reader, the
 * summary as JSON on stdout. One child parses one file and exits; nothing
 * untrusted reaches it before its lock-down.
 *
 * The parent trusts nothing it reads back: eng_summary_from_json re-checks
 * every bound, and the file size claimed must equal the real one.
 * libhdf5 1.10.8 has unfixed CVEs (shared/fixtures/hdf5-cve): a crash, hang
 * or heap corruption here costs one child, never the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <seccomp.h>

#include "log.h"
#include "params.h"
#include "reply.h"
#include "sandbox.h"

#define SANDBOX_MAX_ANSWER  (256u << 20) /* summary JSON; ENG_MAX_TENSORS entries fit easily */
#define SANDBOX_CPU_SECONDS 30 /* RLIMIT_CPU; the wall-clock deadline usually hits first */
#define SANDBOX_MAX_FILES   32 /* RLIMIT_NOFILE: stdio, the file, libhdf5's few */

static void set_err(eng_error *err, eng_code c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(eng_error *err, eng_code c, const char *fmt, ...)
{
    va_list ap;
    if (err->code) return;
    err->code = c;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static uint64_t ms_now(void)
{
    return srv_now_ns() / 1000000u;
}

struct srv_sandbox {
    pid_t pid;
    int job;          /* our end of the socketpair (the child's stdin): the file goes over it */
    int answer;       /* read end of the child's stdout */
    int ro;           /* the file, once handed over (srv_sandbox_send); else -1 */
    struct stat st;   /* ro's size when handed over */
    uint64_t sent_ms; /* when: the deadline counts from here */
};

/* Children started ahead and not yet used or discarded: each is one idle
 * process per upload in flight, so they are capped (past the cap an upload
 * simply starts its child when the body is complete). */
#define SANDBOX_MAX_WAITING 8
static atomic_int sandbox_waiting;

/* fork + exec `strata __summary -` with the limits; the file comes later on
 * stdin (SCM_RIGHTS). 0, or -1 with err set. */
static int sandbox_spawn(srv_server *srv, srv_sandbox *sb, eng_error *err)
{
    int sv[2] = {-1, -1}, pipefd[2] = {-1, -1};
    pid_t pid;
    sb->pid = -1;
    sb->job = sb->answer = sb->ro = -1;
    /* The child's environment: libhdf5 must not flock the file (the upload
     * holds its own lock on the temp file; a read-only parse needs none);
     * OpenBLAS (linked, never used by the parser) must not start its thread
     * pool and buffers at load time. */
    char *envp[] = {"HDF5_USE_FILE_LOCKING=FALSE", "HDF5_PLUGIN_PATH=/nonexistent",
                    "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1",
#ifdef STRATA_SANITIZED
                    /* LeakSanitizer needs ptrace, which seccomp refuses; the
                     * reader's leaks are checked by the unit tests in-process. */
                    "ASAN_OPTIONS=detect_leaks=0",
#endif
                    NULL};
    int show_stderr = getenv("STRATA_SANDBOX_STDERR") != NULL;
#ifdef STRATA_SANITIZED
    (void)srv; /* its sandbox_mem only applies without ASan */
#endif
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || pipe2(pipefd, O_CLOEXEC)) {
        set_err(err, ENG_ERR_INTERNAL, "sandbox: socketpair/pipe: %s", strerror(errno));
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        set_err(err, ENG_ERR_INTERNAL, "sandbox: fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        /* Child, until exec: async-signal-safe calls only. */
        int devnull = open("/dev/null", O_RDWR);
        if (dup2(sv[1], 0) < 0 || dup2(pipefd[1], 1) < 0) _exit(120);
        if (!show_stderr) dup2(devnull, 2);
        /* Only stdin, stdout and stderr cross the exec: not a descriptor
         * the server inherited without O_CLOEXEC (write() is allowed). */
        if (close_range(3, ~0u, 0) != 0)
            for (int fd = 3; fd < 1024; fd++) close(fd);
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = SANDBOX_CPU_SECONDS;
        setrlimit(RLIMIT_CPU, &rl);
        rl.rlim_cur = rl.rlim_max = 0;
        setrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = rl.rlim_max = SANDBOX_MAX_FILES;
        setrlimit(RLIMIT_NOFILE, &rl);
#ifndef STRATA_SANITIZED
        /* ASan reserves terabytes of address space; the limit only holds
         * in a normal build. */
        rl.rlim_cur = rl.rlim_max = srv->cfg->sandbox_mem;
        setrlimit(RLIMIT_AS, &rl);
#endif
        rl.rlim_cur = rl.rlim_max = 0;
        setrlimit(RLIMIT_CORE, &rl);
        char *argv[] = {"strata", "__summary", "-", NULL};
        execve("/proc/self/exe", argv, envp);
        _exit(121);
    }
    close(sv[1]);
    close(pipefd[1]);
    sb->pid = pid;
    sb->job = sv[0];
    sb->answer = pipefd[0];
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (sv[i] >= 0) close(sv[i]);
        if (pipefd[i] >= 0) close(pipefd[i]);
    }
    return -1;
}

/* Kill, reap and close (a child that was or was not used). */
static void sandbox_release(srv_sandbox *sb)
{
    if (sb->pid > 0) {
        kill(sb->pid, SIGKILL);
        while (waitpid(sb->pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    if (sb->job >= 0) close(sb->job);
    if (sb->answer >= 0) close(sb->answer);
    if (sb->ro >= 0) close(sb->ro);
    sb->pid = -1;
    sb->job = sb->answer = sb->ro = -1;
}

srv_sandbox *srv_sandbox_start(srv_server *srv)
{
    eng_error err = {0};
    if (atomic_fetch_add(&sandbox_waiting, 1) >= SANDBOX_MAX_WAITING) {
        atomic_fetch_sub(&sandbox_waiting, 1);
        return NULL;
    }
    srv_sandbox *sb = malloc(sizeof *sb);
    if (!sb || sandbox_spawn(srv, sb, &err)) {
        free(sb);
        atomic_fetch_sub(&sandbox_waiting, 1);
        return NULL;
    }
    return sb;
}

void srv_sandbox_discard(srv_sandbox *sb)
{
    if (!sb) return;
    sandbox_release(sb);
    free(sb);
    atomic_fetch_sub(&sandbox_waiting, 1);
}

/* Hand the read-only descriptor to the child. 0, or -1 (the child is gone). */
static int send_file(int sock, int fd)
{
    char byte = 'f';
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c;
    struct msghdr mh = {0};
    memset(&c, 0, sizeof c);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = c.buf;
    mh.msg_controllen = sizeof c.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    ssize_t n;
    do n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

void srv_sandbox_send(srv_sandbox *sb, const char *path)
{
    if (!sb || sb->pid <= 0 || sb->ro >= 0) return;
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    if (ro < 0 || fstat(ro, &sb->st)) {
        if (ro >= 0) close(ro);
        return; /* srv_sandbox_summary_in tries again and reports */
    }
    if (send_file(sb->job, ro) != 0) {
        close(ro);
        sandbox_release(sb); /* gone: srv_sandbox_summary_in starts a fresh one */
        return;
    }
    close(sb->job);
    sb->job = -1;
    sb->ro = ro;
    sb->sent_ms = ms_now();
}

eng_code srv_sandbox_summary_in(srv_server *srv, srv_sandbox *ahead, const char *path,
                                eng_summary **out, eng_error *err, int *killed)
{
    srv_sandbox sb = {.pid = -1, .job = -1, .answer = -1, .ro = -1};
    int ro = -1, status = 0;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    json_t *j = NULL;
    eng_summary *s = NULL;
    struct stat st;
    uint64_t sent;
    *killed = 0;

    if (ahead) { /* take it over: from here on it is released like our own */
        sb = *ahead;
        free(ahead);
        atomic_fetch_sub(&sandbox_waiting, 1);
    }
    if (sb.ro >= 0) { /* handed over already by srv_sandbox_send */
        ro = sb.ro;
        sb.ro = -1;
        st = sb.st;
        sent = sb.sent_ms;
    } else {
        ro = open(path, O_RDONLY | O_CLOEXEC);
        if (ro < 0 || fstat(ro, &st)) {
            set_err(err, ENG_ERR_IO, "cannot open the upload for reading: %s", strerror(errno));
            goto out;
        }
        /* A child started ahead may have died meanwhile (killed, out of
         * memory): then one fresh start, as without it. */
        if (sb.pid > 0 && send_file(sb.job, ro) != 0) sandbox_release(&sb);
        if (sb.pid <= 0) {
            if (sandbox_spawn(srv, &sb, err)) goto out;
            if (send_file(sb.job, ro) != 0) {
                /* It died before reading its stdin: it could not start. */
                *killed = 2;
                set_err(err, ENG_ERR_INTERNAL,
                        "the parsing sandbox could not be set up (%s); "
                        "the upload was not read",
                        strerror(errno));
                goto out;
            }
        }
        close(sb.job);
        sb.job = -1;
        sent = ms_now();
    }

    atomic_fetch_add(&srv->sandbox_runs, 1);
    uint64_t deadline = sent + (uint64_t)srv->cfg->sandbox_timeout_ms;
    for (;;) {
        uint64_t now = ms_now();
        if (now >= deadline) {
            kill(sb.pid, SIGKILL);
            *killed = 1;
            set_err(err, ENG_ERR_FORMAT,
                    "the HDF5 parser did not finish within %d ms on this file; it was stopped "
                    "(a malformed or hostile file)",
                    srv->cfg->sandbox_timeout_ms);
            break;
        }
        struct pollfd pfd = {sb.answer, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        if (len + 65536 > cap) {
            if (cap >= SANDBOX_MAX_ANSWER) {
                kill(sb.pid, SIGKILL);
                set_err(err, ENG_ERR_FORMAT, "the HDF5 parser's answer is over %u bytes",
                        SANDBOX_MAX_ANSWER);
                break;
            }
            size_t ncap = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                kill(sb.pid, SIGKILL);
                set_err(err, ENG_ERR_NOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(sb.answer, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    while (waitpid(sb.pid, &status, 0) < 0 && errno == EINTR) {}
    sb.pid = -1;
    if (err->code) goto out;
    if (WIFSIGNALED(status)) {
        atomic_fetch_add(&srv->sandbox_crashes, 1);
        set_err(err, ENG_ERR_FORMAT,
                "the HDF5 parser crashed on this file (signal %d); "
                "it is malformed or hostile",
                WTERMSIG(status));
        goto out;
    }
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 3 || WEXITSTATUS(status) >= 120)) {
        *killed = 2; /* the sandbox itself could not be set up: never parse outside it */
        set_err(err, ENG_ERR_INTERNAL,
                "the parsing sandbox could not be set up (exit status %d); "
                "the upload was not read",
                WEXITSTATUS(status));
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        atomic_fetch_add(&srv->sandbox_crashes, 1);
        set_err(err, ENG_ERR_FORMAT, "the HDF5 parser failed on this file (exit status %d)",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto out;
    }
    buf = buf ? buf : calloc(1, 1);
    buf[len] = 0;
    json_error_t jerr;
    j = json_loadb(buf, len, 0, &jerr);
    if (!json_is_object(j)) {
        set_err(err, ENG_ERR_FORMAT, "the HDF5 parser answered garbage on this file");
        goto out;
    }
    json_t *e = json_object_get(j, "error");
    if (e) {
        json_int_t c = json_integer_value(json_object_get(e, "code"));
        const char *m = json_string_value(json_object_get(e, "message"));
        if (c != ENG_ERR_FORMAT && c != ENG_ERR_LIMIT && c != ENG_ERR_WEIGHTS) c = ENG_ERR_FORMAT;
        set_err(err, (eng_code)c, "%s", m ? m : "the file is not a Keras weight file");
        goto out;
    }
    if (eng_summary_from_json(j, &s, err)) goto out;
    if (s->file_size != (uint64_t)st.st_size) {
        set_err(err, ENG_ERR_FORMAT, "the HDF5 parser's answer does not match the file (size)");
        goto out;
    }
    *out = s;
    s = NULL;
out:
    sandbox_release(&sb);
    if (ro >= 0) close(ro);
    free(buf);
    json_decref(j);
    eng_summary_free(s);
    return err->code;
}

eng_code srv_sandbox_summary(srv_server *srv, const char *path, eng_summary **out, eng_error *err,
                             int *killed)
{
    return srv_sandbox_summary_in(srv, NULL, path, out, err, killed);
}

int srv_summary_or_reply_in(srv_req *r, srv_sandbox *sb, const char *path, eng_summary **out)
{
    eng_error err = {0};
    int killed = 0;
    if (srv_sandbox_summary_in(r->srv, sb, path, out, &err, &killed) == ENG_OK) return 0;
    if (killed == 1) atomic_fetch_add(&r->srv->sandbox_kills, 1);
    if (killed == 2) {
        srv_reply_error(r, SRV_E_UNAVAILABLE, NULL, "%s", err.msg);
        eng_error_release(&err);
    } else {
        srv_reply_engine_error(r, &err);
    }
    return -1;
}

int srv_summary_or_reply(srv_req *r, const char *path, eng_summary **out)
{
    return srv_summary_or_reply_in(r, NULL, path, out);
}

/* ---- summaries by blob digest ----------------------------------------------
 * A blob never changes (its name is its SHA-256), so its summary never does:
 * the upload keeps the one it just checked, and later reads of the same
 * bytes (partial layer sets, layer statistics, diff, predict) skip the
 * sandbox (55-70 ms). Kept as the lossless JSON text and read back through
 * eng_summary_from_json, the same re-checking parse the sandbox's answer
 * gets. A few entries, least recently used replaced. */

#define MEMO_SLOTS    32
#define MEMO_MAX_TEXT (4u << 20)

static struct memo_entry {
    char digest[ENG_DIGEST_LEN]; /* "sha256:<hex>" */
    char *text;
    uint64_t used;
} memo[MEMO_SLOTS];
static uint64_t memo_clock;
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

void srv_summary_remember(const char *digest, const eng_summary *s)
{
    json_t *j = eng_summary_to_json(s);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text || !srv_digest_hex(digest) || strlen(text) > MEMO_MAX_TEXT) {
        free(text);
        return;
    }
    pthread_mutex_lock(&memo_lock);
    struct memo_entry *e = &memo[0];
    for (int i = 0; i < MEMO_SLOTS; i++) {
        if (strcmp(memo[i].digest, digest) == 0) {
            e = &memo[i];
            break;
        }
        if (memo[i].used < e->used) e = &memo[i];
    }
    free(e->text);
    memcpy(e->digest, digest, ENG_DIGEST_LEN);
    e->text = text;
    e->used = ++memo_clock;
    pthread_mutex_unlock(&memo_lock);
}

/* The remembered summary of the blob with this digest (NEW), or NULL. */
static eng_summary *memo_get(const char *digest)
{
    char *text = NULL;
    pthread_mutex_lock(&memo_lock);
    for (int i = 0; i < MEMO_SLOTS; i++) {
        if (memo[i].text && strcmp(memo[i].digest, digest) == 0) {
            memo[i].used = ++memo_clock;
            text = strdup(memo[i].text);
            break;
        }
    }
    pthread_mutex_unlock(&memo_lock);
    if (!text) return NULL;
    eng_summary *s = NULL;
    eng_error err = {0};
    json_t *j = json_loads(text, 0, NULL);
    if (!j || eng_summary_from_json(j, &s, &err)) s = NULL;
    eng_error_release(&err);
    json_decref(j);
    free(text);
    return s;
}

int srv_summary_of_blob(srv_req *r, const char *digest, const char *path, eng_summary **out)
{
    if ((*out = memo_get(digest)) != NULL) return 0;
    if (srv_summary_or_reply(r, path, out)) return -1;
    srv_summary_remember(digest, *out);
    return 0;
}

void srv_summary_forget_all(void)
{
    pthread_mutex_lock(&memo_lock);
    for (int i = 0; i < MEMO_SLOTS; i++) {
        free(memo[i].text);
        memo[i].text = NULL;
        memo[i].digest[0] = 0;
        memo[i].used = 0;
    }
    pthread_mutex_unlock(&memo_lock);
}

/* ---- the child ---------------------------------------------------------------- */

/* System calls libhdf5, glibc and the summary writer need. Everything else
 * fails with EPERM (not a kill: a refused call turns into a clean error). */
static const int allowed_syscalls[] = {
    SCMP_SYS(read),          SCMP_SYS(pread64),        SCMP_SYS(readv),
    SCMP_SYS(write),         SCMP_SYS(writev),         SCMP_SYS(lseek),
    SCMP_SYS(fstat),         SCMP_SYS(newfstatat),     SCMP_SYS(stat),
    SCMP_SYS(lstat),         SCMP_SYS(statx),          SCMP_SYS(close),
    SCMP_SYS(mmap),          SCMP_SYS(munmap),         SCMP_SYS(mremap),
    SCMP_SYS(brk),           SCMP_SYS(madvise),        SCMP_SYS(mprotect),
    SCMP_SYS(exit),          SCMP_SYS(exit_group),     SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigaction),  SCMP_SYS(rt_sigprocmask), SCMP_SYS(futex),
    SCMP_SYS(getpid),        SCMP_SYS(gettid),         SCMP_SYS(getrusage),
    SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),   SCMP_SYS(getrandom),
    SCMP_SYS(flock),         SCMP_SYS(fcntl),          SCMP_SYS(sigaltstack),
    SCMP_SYS(getuid),        SCMP_SYS(geteuid),        SCMP_SYS(getcwd),
    SCMP_SYS(readlink),      SCMP_SYS(sched_yield),    SCMP_SYS(prlimit64),
    SCMP_SYS(uname),         SCMP_SYS(ioctl),          SCMP_SYS(sched_getaffinity),
    SCMP_SYS(tgkill),        SCMP_SYS(kill),
};

static int sandbox_lock_down(void)
{
    int rc = -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -1;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx) return -1;
    for (size_t i = 0; i < sizeof allowed_syscalls / sizeof allowed_syscalls[0]; i++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed_syscalls[i], 0)) goto out;
    /* open only for reading (the fd-3 path and libhdf5's own re-opens). */
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                         SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDONLY)))
        goto out;
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 1,
                         SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDONLY)))
        goto out;
    if (seccomp_load(ctx)) goto out;
    rc = 0;
out:
    seccomp_release(ctx);
    return rc;
}

/* `__summary -`: wait on stdin (the parent's socket) for the one descriptor
 * to parse and make it fd 3. Before the lock-down: recvmsg is not allowed
 * after it. 0, or -1 when the parent went away without sending one. */
static int receive_file(void)
{
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c;
    struct msghdr mh = {0};
    int fd = -1;
    memset(&c, 0, sizeof c);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = c.buf;
    mh.msg_controllen = sizeof c.buf;
    ssize_t n;
    do n = recvmsg(0, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    struct cmsghdr *cm = n == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len != CMSG_LEN(sizeof(int)))
        return -1;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    if (fd != 3 && (dup2(fd, 3) < 0 || close(fd) < 0)) return -1;
    /* stdin is done with: the socket goes, /dev/null takes its place. */
    int nul = open("/dev/null", O_RDONLY);
    if (nul < 0 || dup2(nul, 0) < 0) return -1;
    if (nul != 0) close(nul);
    return 0;
}

int srv_sandbox_child_main(int argc, char **argv)
{
    eng_summary *s = NULL;
    eng_error err = {0};
    json_t *j = NULL;
    const char *path = argc >= 2 ? argv[1] : NULL;
    if (!path) return 2;
    if (strcmp(path, "-") == 0) {
        if (receive_file()) return 122; /* >= 120: the sandbox could not be set up */
        path = "/proc/self/fd/3";
    }
    if (sandbox_lock_down()) return 3;
    if (eng_summary_read(path, &s, &err))
        j = json_pack("{s:{s:i,s:s}}", "error", "code", (int)err.code, "message",
                      err.msg[0] ? err.msg : eng_strerror(err.code));
    else j = eng_summary_to_json(s);
    int rc = json_dumpf(j, stdout, JSON_COMPACT) == 0 && fflush(stdout) == 0 ? 0 : 4;
    json_decref(j);
    eng_summary_free(s);
    eng_error_release(&err);
    return rc;
}
