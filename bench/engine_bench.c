/* bench/engine_bench.c — images/s of strata's engine on one model.
 *
 * Usage: engine_bench MODEL.json WEIGHTS.h5 BATCH [SECONDS]
 * Loads the model through the public API (eng_arch_parse, eng_summary_read,
 * eng_model_load), then calls eng_model_predict with ONE reused workspace:
 * warm-up calls first (the workspace grows once, its pages are touched),
 * then as many timed calls as fit in SECONDS (default 1.0), reported as
 * the median of 5 slices. Prints "img_per_s=<x>".
 *
 * Built by bench/run with -DSTRATA_ENG_PROFILE against a forward.c compiled
 * with the same flag, it also prints one "layer" line per layer: mean µs
 * per sample and the per-sample GEMM shape (M,N,K) a conv/dense layer lowers to, which
 * bench/run feeds to gemm_bench for the "conv GEMM vs sgemm" ratio.
 * Does not own: the engine (links libstrata_engine.a as any client would).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

#ifdef STRATA_ENG_PROFILE
/* engine/forward.c, compiled with the same flag, keeps these. */
typedef struct eng_prof_layer {
    const char *name, *cls;
    double ns; /* summed wall time of the layer's forward */
    unsigned long calls, samples;
    long gm, gn, gk; /* GEMM shape per sample, 0 when none */
} eng_prof_layer;
int eng_prof_get(const eng_prof_layer **out);
void eng_prof_reset(void);
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.json WEIGHTS.h5 BATCH [SECONDS]\n", argv[0]);
        return 2;
    }
    size_t batch = (size_t)atol(argv[3]);
    double secs = argc > 4 ? atof(argv[4]) : 1.0;
    eng_error err = {0};
    eng_arch *a = NULL;
    eng_summary *s = NULL;
    eng_model *m = NULL;
    size_t len;
    char *json = slurp(argv[1], &len);
    if (!json) {
        perror(argv[1]);
        return 1;
    }
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) {
        perror(argv[2]);
        return 1;
    }
    if (eng_arch_parse(json, len, &a, &err) || eng_summary_read(argv[2], &s, &err) ||
        eng_model_load(a, s, fd, &m, &err)) {
        fprintf(stderr, "engine_bench: %s\n", err.msg);
        return 1;
    }
    size_t nin = eng_model_input_size(m) * batch, nout = eng_model_output_size(m) * batch;
    float *in = malloc(nin * sizeof *in), *out = malloc(nout * sizeof *out);
    srand(1);
    for (size_t i = 0; i < nin; i++) in[i] = (float)rand() / RAND_MAX;
    eng_workspace *ws = eng_workspace_new();
    /* warm-up: grows the workspace once and touches its pages */
    double t0 = now();
    int warm = 0;
    while (warm < 3 || now() - t0 < 0.2) {
        if (eng_model_predict(m, ws, in, batch, out, &err)) {
            fprintf(stderr, "predict: %s\n", err.msg);
            return 1;
        }
        warm++;
    }
    double per_call = (now() - t0) / warm;
    long iters = (long)(secs / 5 / per_call);
    if (iters < 1) iters = 1;
#ifdef STRATA_ENG_PROFILE
    eng_prof_reset();
#endif
    double rate[5];
    for (int r = 0; r < 5; r++) {
        t0 = now();
        for (long i = 0; i < iters; i++) eng_model_predict(m, ws, in, batch, out, &err);
        rate[r] = (double)iters * batch / (now() - t0);
    }
    qsort(rate, 5, sizeof rate[0], cmp_d);
    printf("img_per_s=%.1f batch=%zu iters=%ld out0=%g\n", rate[2], batch, iters * 5, out[0]);
#ifdef STRATA_ENG_PROFILE
    const eng_prof_layer *pl;
    int np = eng_prof_get(&pl);
    for (int i = 0; i < np; i++)
        if (pl[i].calls)
            printf("layer %s %s us_per_sample=%.3f M=%ld N=%ld K=%ld\n", pl[i].name, pl[i].cls,
                   pl[i].ns / pl[i].samples / 1e3, pl[i].gm, pl[i].gn, pl[i].gk);
#endif
    eng_workspace_free(ws);
    eng_model_free(m);
    eng_summary_free(s);
    eng_arch_free(a);
    close(fd);
    free(in);
    free(out);
    free(json);
    return 0;
}
