/* tests/unit/test_engine_h5_cve.c — the weight-file reader over the public
 * corpus of malformed HDF5 files (shared/fixtures/hdf5-cve, HDFGroup/cve_hdf5).
 * Each file is read in a forked child with a 10 s alarm, as the server will
 * do in its sandbox: libhdf5 1.10.8 crashes or hangs on some of them, which
 * this test only reports. What it checks: the parent survives every file,
 * and the reader never returns ENG_OK with a summary that fails its own
 * invariants (to_json -> from_json, the check the server applies to what a
 * child sends back) or whose layers cannot be hashed within the file. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"

enum { X_REFUSED = 10, X_ACCEPTED = 11, X_INCONSISTENT = 12 };
#define CHILD_SECONDS 10 /* the SOURCES.md measurement's deadline */

static int child(const char *path)
{
    alarm(CHILD_SECONDS);
#ifndef STRATA_SANITIZED
    /* ASan reserves terabytes of shadow: an address-space cap only works without it */
    struct rlimit rl = {2ul << 30, 2ul << 30};
    setrlimit(RLIMIT_AS, &rl);
#endif
    eng_summary *s = NULL, *s2 = NULL;
    eng_error e = {0};
    if (eng_summary_read(path, &s, &e) != ENG_OK) return X_REFUSED;
    json_t *j = eng_summary_to_json(s);
    int ok = j && eng_summary_from_json(j, &s2, &e) == ENG_OK;
    int fd = open(path, O_RDONLY);
    json_t *layers = NULL;
    ok = ok && fd >= 0 && eng_summary_layers_json(fd, s, &layers, &e) == ENG_OK;
    if (!ok) fprintf(stderr, "%s: accepted but inconsistent: %s\n", path, e.msg);
    return ok ? X_ACCEPTED : X_INCONSISTENT;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    const char *fx = check_fixtures();
    if (!fx) {
        SKIP_LOUD("STRATA_FIXTURES not set: HDF5 CVE corpus not run");
        return check_done();
    }
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/hdf5-cve", fx);
    DIR *d = opendir(dir);
    if (!d) {
        SKIP_LOUD("%s missing: HDF5 CVE corpus not run", dir);
        return check_done();
    }
    char *names[1024];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < sizeof names / sizeof names[0])
        if (strstr(de->d_name, ".h5")) names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, by_name);

    int refused = 0, accepted = 0, crashed = 0, hung = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid < 0) break;
        if (pid == 0) _exit(child(path)); /* _exit: no atexit/LeakSanitizer in the child */
        int st = 0;
        while (waitpid(pid, &st, 0) < 0) {}
        if (WIFEXITED(st) && WEXITSTATUS(st) == X_REFUSED) refused++;
        else if (WIFEXITED(st) && WEXITSTATUS(st) == X_ACCEPTED) accepted++;
        else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
            hung++;
            fprintf(stderr, "info: %s: still running after %d s (libhdf5 hang)\n", names[i],
                    CHILD_SECONDS);
        } else {
            CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == X_INCONSISTENT),
                  "%s: reader returned ENG_OK with an inconsistent summary", names[i]);
            if (!(WIFEXITED(st) && WEXITSTATUS(st) == X_INCONSISTENT)) {
                crashed++;
                fprintf(stderr, "info: %s: child died (%s %d)\n", names[i],
                        WIFSIGNALED(st) ? "signal" : "exit",
                        WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            }
        }
        free(names[i]);
    }
    CHECK(n > 0, "no files in %s", dir);
    printf("hdf5-cve: %zu files: %d refused, %d accepted, %d crashed, %d hung\n", n, refused,
           accepted, crashed, hung);
    return check_done();
}
