/* tests/unit/check.h — the tiny assertion kit of strata's unit tests.
 * CHECK(cond, fmt, ...) records a failure and goes on; check_done() prints
 * "N passed, N failed" and returns the exit status. SKIP_LOUD says why a
 * test could not run (missing fixtures) — never silently. */
#ifndef STRATA_CHECK_H
#define STRATA_CHECK_H
#include <stdio.h>
#include <stdlib.h>

static int check_pass, check_fail;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            check_pass++;                                                   \
        } else {                                                            \
            check_fail++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

#define SKIP_LOUD(...)                         \
    do {                                       \
        fprintf(stderr, "SKIPPED (loudly): "); \
        fprintf(stderr, __VA_ARGS__);          \
        fputc('\n', stderr);                   \
    } while (0)

static inline int check_done(void)
{
    printf("%d passed, %d failed\n", check_pass, check_fail);
    return check_fail ? 1 : 0;
}

/* A whole file, NUL-terminated (NEW, free()); *len when len is not NULL.
 * NULL when it cannot be read. */
static inline char *check_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)n + 1))) {
        if (fread(b, 1, (size_t)n, f) != (size_t)n) {
            free(b);
            b = NULL;
        } else {
            b[n] = 0;
            if (len) *len = (size_t)n;
        }
    }
    fclose(f);
    return b;
}

/* The fixtures folder (../shared/fixtures), or NULL when absent. */
static inline const char *check_fixtures(void)
{
    const char *d = getenv("STRATA_FIXTURES");
    static char probe[4096];
    if (!d) return NULL;
    snprintf(probe, sizeof probe, "%s/keras/SOURCES.md", d);
    FILE *f = fopen(probe, "r");
    if (!f) return NULL;
    fclose(f);
    return d;
}
#endif
