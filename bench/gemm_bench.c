/* bench/gemm_bench.c — the reference for "conv GEMMs vs sgemm": GFLOPS of a
 * bare cblas_sgemm (row-major, no transposes, alpha 1, beta 0) on one shape.
 *
 * Usage: gemm_bench M N K [SECONDS]
 * Buffers are allocated and touched once, then the same call runs in a loop
 * (the best case for sgemm: operands hot in cache, no im2col, no bias).
 * Prints "gflops=<x>", the median of 5 slices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s M N K [SECONDS]\n", argv[0]);
        return 2;
    }
    int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]);
    double secs = argc > 4 ? atof(argv[4]) : 0.5;
    float *A = malloc((size_t)M * K * sizeof *A), *B = malloc((size_t)K * N * sizeof *B),
          *C = malloc((size_t)M * N * sizeof *C);
    if (!A || !B || !C) return 1;
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (float)(i % 5) * 0.1f;
    double t0 = now();
    long n = 0;
    while (n < 3 || now() - t0 < 0.1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C,
                    N);
        n++;
    }
    long iters = (long)(secs / 5 / ((now() - t0) / n));
    if (iters < 1) iters = 1;
    double g[5];
    for (int r = 0; r < 5; r++) {
        t0 = now();
        for (long i = 0; i < iters; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f,
                        C, N);
        g[r] = 2.0 * M * N * K * iters / (now() - t0) / 1e9;
    }
    qsort(g, 5, sizeof g[0], cmp_d);
    printf("gflops=%.2f M=%d N=%d K=%d c0=%g\n", g[2], M, N, K, C[0]);
    free(A);
    free(B);
    free(C);
    return 0;
}
