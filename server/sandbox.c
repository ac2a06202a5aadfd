/* server/sandbox.c — untrusted weight files are parsed by libhdf5 in a child.
 *
 * Owns: starting `strata __summary` as a fresh process (fork + exec of
 * /proc/self/exe, so no thread or lock state of the server leaks into it)
 * with rlimits (CPU, address space, file size 0, open files), the file handed
 * over read-only as fd 3, its answer read from a pipe under a wall-clock
  * deadline (SIGKILL past it), and the child's side: no_new_privs, a seccomp
 * allow-list, the engine's summary reader, the summary as JSON on stdout.
 *
 * The parent trusts nothing it reads back: eng_summary_from_json re-checks
 * every bound, and the file size claimed must equal the real one.
 * libhdf5 1.10.8 has unfixed CVEs (shared/fixtures/hdf5-cve): a crash, hang
 * or heap corruption here costs one child, never the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <seccomp.h>

#include "http_int.h"

#define SANDBOX_MAX_ANSWER (256u << 20)   /* summary JSON; ENG_MAX_TENSORS entries fit easily */
#define SANDBOX_CPU_SECONDS 30            /* RLIMIT_CPU; the wall-clock deadline usually hits first */
#define SANDBOX_MAX_FILES 32              /* RLIMIT_NOFILE: stdio, the file, libhdf5's few */

static void set_err(eng_error *err, eng_code c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(eng_error *err, eng_code c, const char *fmt, ...)
{
    va_list ap;
    if (err->code) return;
    err->code = c;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static uint64_t ms_now(void) { return srv_now_ns() / 1000000u; }

eng_code srv_sandbox_summary(srv_server *srv, const char *path, eng_summary **out,
                             eng_error *err, int *killed)
{
    int pipefd[2] = {-1, -1}, ro = -1, status = 0;
    pid_t pid = -1;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    json_t *j = NULL;
    eng_summary *s = NULL;
    struct stat st;
    *killed = 0;

    ro = open(path, O_RDONLY | O_CLOEXEC);
    if (ro < 0 || fstat(ro, &st)) {
        set_err(err, ENG_ERR_IO, "cannot open the upload for reading: %s", strerror(errno));
        goto out;
    }
    /* The child's environment: libhdf5 must not flock the file (the upload
     * holds its own lock on the temp file; a read-only parse needs none). */
    char *envp[] = {"HDF5_USE_FILE_LOCKING=FALSE", "HDF5_PLUGIN_PATH=/nonexistent",
#ifdef STRATA_SANITIZED
                    /* LeakSanitizer needs ptrace, which seccomp refuses; the
                     * reader's leaks are checked by the unit tests in-process. */
                    "ASAN_OPTIONS=detect_leaks=0",
#endif
                    NULL};
    int show_stderr = getenv("STRATA_SANDBOX_STDERR") != NULL;
    if (pipe2(pipefd, O_CLOEXEC)) {
        set_err(err, ENG_ERR_INTERNAL, "sandbox: pipe: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        set_err(err, ENG_ERR_INTERNAL, "sandbox: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* Child, until exec: async-signal-safe calls only. */
        int devnull = open("/dev/null", O_RDWR);
        if (dup2(devnull, 0) < 0 || dup2(pipefd[1], 1) < 0 || dup2(ro, 3) < 0) _exit(120);
        if (!show_stderr) dup2(devnull, 2);
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
        char *argv[] = {"strata", "__summary", "/proc/self/fd/3", NULL};
        execve("/proc/self/exe", argv, envp);
        _exit(121);
    }
    close(pipefd[1]);
    pipefd[1] = -1;

    uint64_t deadline = ms_now() + (uint64_t)srv->cfg->sandbox_timeout_ms;
    for (;;) {
        uint64_t now = ms_now();
        if (now >= deadline) {
            kill(pid, SIGKILL);
            *killed = 1;
            set_err(err, ENG_ERR_FORMAT,
                    "the HDF5 parser did not finish within %d ms on this file; it was stopped "
                    "(a malformed or hostile file)", srv->cfg->sandbox_timeout_ms);
            break;
        }
        struct pollfd pfd = {pipefd[0], POLLIN, 0};
        int pr = poll(&pfd, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        if (len + 65536 > cap) {
            if (cap >= SANDBOX_MAX_ANSWER) {
                kill(pid, SIGKILL);
                set_err(err, ENG_ERR_FORMAT, "the HDF5 parser's answer is over %u bytes", SANDBOX_MAX_ANSWER);
                break;
            }
            size_t ncap = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) { kill(pid, SIGKILL); set_err(err, ENG_ERR_NOMEM, "out of memory"); break; }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(pipefd[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    pid = -1;
    if (err->code) goto out;
    if (WIFSIGNALED(status)) {
        atomic_fetch_add(&srv->sandbox_crashes, 1);
        set_err(err, ENG_ERR_FORMAT, "the HDF5 parser crashed on this file (signal %d); "
                "it is malformed or hostile", WTERMSIG(status));
        goto out;
    }
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 3 || WEXITSTATUS(status) >= 120)) {
        *killed = 2;   /* the sandbox itself could not be set up: never parse outside it */
        set_err(err, ENG_ERR_INTERNAL, "the parsing sandbox could not be set up (exit status %d); "
                "the upload was not read", WEXITSTATUS(status));
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
    if (pid > 0) { kill(pid, SIGKILL); waitpid(pid, NULL, 0); }
    if (pipefd[0] >= 0) close(pipefd[0]);
    if (pipefd[1] >= 0) close(pipefd[1]);
    if (ro >= 0) close(ro);
    free(buf);
    json_decref(j);
    eng_summary_free(s);
    return err->code;
}

int srv_summary_or_reply(srv_req *r, const char *path, eng_summary **out)
{
    eng_error err = {0};
    int killed = 0;
    if (srv_sandbox_summary(r->srv, path, out, &err, &killed) == ENG_OK) return 0;
    if (killed == 1) atomic_fetch_add(&r->srv->sandbox_kills, 1);
    if (killed == 2) {
        srv_reply_error(r, SRV_E_UNAVAILABLE, NULL, "%s", err.msg);
        eng_error_release(&err);
    } else {
        srv_reply_engine_error(r, &err);
    }
    return -1;
}

/* ---- the child ---------------------------------------------------------------- */

/* System calls libhdf5, glibc and the summary writer need. Everything else
 * fails with EPERM (not a kill: a refused call turns into a clean error). */
static const int allowed_syscalls[] = {
    SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
    SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(stat), SCMP_SYS(lstat),
    SCMP_SYS(statx), SCMP_SYS(close), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
    SCMP_SYS(brk), SCMP_SYS(madvise), SCMP_SYS(mprotect), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(futex),
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getrusage), SCMP_SYS(clock_gettime),
    SCMP_SYS(gettimeofday), SCMP_SYS(getrandom), SCMP_SYS(flock), SCMP_SYS(fcntl),
    SCMP_SYS(sigaltstack), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getcwd),
    SCMP_SYS(readlink), SCMP_SYS(sched_yield), SCMP_SYS(prlimit64), SCMP_SYS(uname),
    SCMP_SYS(ioctl), SCMP_SYS(sched_getaffinity), SCMP_SYS(tgkill), SCMP_SYS(kill),
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

int srv_sandbox_child_main(int argc, char **argv)
{
    eng_summary *s = NULL;
    eng_error err = {0};
    json_t *j = NULL;
    if (argc < 2) return 2;
    if (sandbox_lock_down()) return 3;
    if (eng_summary_read(argv[1], &s, &err))
        j = json_pack("{s:{s:i,s:s}}", "error", "code", (int)err.code, "message",
                      err.msg[0] ? err.msg : eng_strerror(err.code));
    else
        j = eng_summary_to_json(s);
    int rc = json_dumpf(j, stdout, JSON_COMPACT) == 0 && fflush(stdout) == 0 ? 0 : 4;
    json_decref(j);
    eng_summary_free(s);
    eng_error_release(&err);
    return rc;
}
