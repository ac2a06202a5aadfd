/* engine/gemm.c — the engine's own small-N GEMM: C = act(A . B + bias).
 *
 * Owns one kernel shape that OpenBLAS handles badly and CNN layers hit all
 * the time: many rows (M = output pixels, or the batch), few columns
 * (N = filters / units, up to a few hundred) and a short K (kh*kw*C). For
 * those, sgemm's packing and threading set-up cost more than the flops
 * (bench/README.md: conv2d 5x5x1x30 ran at 8 GFLOPS through cblas_sgemm).
 * The kernel keeps an R x NV tile of C in AVX-512 registers, broadcasts
 * A[r][k] and streams one packed row of B per k; the bias add and a ReLU
 * happen on the registers before the single store. For convolutions
 * without padding A need not exist: eng_gemm_conv reads the window of
 * output pixel r straight from the NHWC input through a table of offsets
 * (an implicit im2col), which matters most for 1-channel first layers
 * where the im2col copy cost more than the arithmetic.
 *
 * B is packed once per model (eng_gemm_pack, from a kind's load hook) into
 * column panels of up to 64 floats, zero-padded to a multiple of 16.
 * Does not own: im2col (layer_conv.c), when to use it (callers test
 * eng_gemm_available(); CPUs without AVX-512 keep cblas_sgemm).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GEMM_X86 1
#endif

#define PANEL 64 /* columns per packed panel: 4 zmm vectors */

/* Prototypes (layer_conv.c and layer_dense.c repeat them). */
bool eng_gemm_available(void);
size_t eng_gemm_packed_size(int K, int N);
void eng_gemm_pack(float *dst, const float *B, int K, int N);
void eng_gemm(int M, int N, int K, const float *A, int lda, const float *Bp, const float *bias,
              bool relu, float *C, int ldc);
void eng_gemm_conv(int Ho, int Wo, int N, int K, const float *x, size_t row_stride, int col_stride,
                   const int *koff, const float *Bp, const float *bias, bool relu, float *C);

/* Floats of a packed K x N matrix: panels of 64 columns, the last one
 * rounded up to a multiple of 16. */
size_t eng_gemm_packed_size(int K, int N)
{
    size_t full = (size_t)(N / PANEL) * PANEL, rest = (size_t)(N % PANEL);
    rest = (rest + 15) / 16 * 16;
    return (size_t)K * (full + rest);
}

/* B row-major K x N (ldb = N) into panels; dst has eng_gemm_packed_size floats. */
void eng_gemm_pack(float *dst, const float *B, int K, int N)
{
    for (int n0 = 0; n0 < N; n0 += PANEL) {
        int nb = N - n0 < PANEL ? N - n0 : PANEL;
        int w = (nb + 15) / 16 * 16;
        for (int k = 0; k < K; k++, dst += w) {
            memcpy(dst, B + (size_t)k * N + n0, (size_t)nb * sizeof *dst);
            memset(dst + nb, 0, (size_t)(w - nb) * sizeof *dst);
        }
    }
}

#ifdef GEMM_X86

bool eng_gemm_available(void)
{
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return have;
}

/* One R x NV tile: rows A[0..R), columns [0, NV*16) of the panel (width
 * ldp floats per k). nlast = valid columns in the last vector (1..16).
 * R and NV are compile-time constants after inlining. */
static inline __attribute__((always_inline, target("avx512f"))) void tile(
    const int R, const int NV, int K, const float *A, int lda, const int *koff, const float *P,
    int ldp, const float *bias, bool relu, float *C, int ldc, int nlast, bool first, bool last_k)
{
    __m512 acc[12][4];
    __mmask16 last = (__mmask16)((1u << nlast) - 1);
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[r][v] = first ? _mm512_setzero_ps()
                              : _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xffff,
                                                      C + (size_t)r * ldc + 16 * v);
    for (int k = 0; k < K; k++, P += ldp) {
        __m512 w[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) w[v] = _mm512_loadu_ps(P + 16 * v);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(A[(size_t)r * lda + (koff ? koff[k] : k)]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(a, w[v], acc[r][v]);
        }
    }
    __m512 zero = _mm512_setzero_ps(), b[4];
    if (!last_k) {
        bias = NULL;
        relu = false;
    } /* partial sums: no bias, no ReLU yet */
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        b[v] = bias ? _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xffff, bias + 16 * v) : zero;
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m512 y = _mm512_add_ps(acc[r][v], b[v]);
            if (relu) y = _mm512_max_ps(y, zero);
            _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16 * v, v == NV - 1 ? last : 0xffff, y);
        }
}

/* Rows per tile for NV vectors: R*NV accumulators + NV weights <= 32 zmm. */
#define RMAX(nv) ((nv) == 1 ? 12 : (nv) == 2 ? 12 : (nv) == 3 ? 8 : 6)

#define TILE_CASE(R, NV, KOFF)                                                                     \
    case R:                                                                                        \
        if ((R) < RMAX(NV))                                                                        \
            tile((R) < RMAX(NV) ? (R) : 1, NV, K, A, lda, KOFF, P, ldp, bias, relu, C, ldc, nlast, \
                 first, last_k);                                                                   \
        break

/* All rows of one panel with NV vectors: full tiles, then one shorter tile.
 * KOFF is NULL (A is a plain matrix: constant-folded away) or koff. */
#define PANEL_BODY(NV, KOFF)                                                          \
    do {                                                                              \
        int m = 0;                                                                    \
        for (; m + RMAX(NV) <= M; m += RMAX(NV))                                      \
            tile(RMAX(NV), NV, K, A + (size_t)m * lda, lda, KOFF, P, ldp, bias, relu, \
                 C + (size_t)m * ldc, ldc, nlast, first, last_k);                     \
        A += (size_t)m * lda;                                                         \
        C += (size_t)m * ldc;                                                         \
        switch (M - m) {                                                              \
            TILE_CASE(1, NV, KOFF);                                                   \
            TILE_CASE(2, NV, KOFF);                                                   \
            TILE_CASE(3, NV, KOFF);                                                   \
            TILE_CASE(4, NV, KOFF);                                                   \
            TILE_CASE(5, NV, KOFF);                                                   \
            TILE_CASE(6, NV, KOFF);                                                   \
            TILE_CASE(7, NV, KOFF);                                                   \
            TILE_CASE(8, NV, KOFF);                                                   \
            TILE_CASE(9, NV, KOFF);                                                   \
            TILE_CASE(10, NV, KOFF);                                                  \
            TILE_CASE(11, NV, KOFF);                                                  \
        default: break;                                                               \
        }                                                                             \
    } while (0)

#define PANEL_FN(NV)                                                                               \
    static __attribute__((target("avx512f"), noinline)) void panel##NV(                            \
        int M, int K, const float *A, int lda, const int *koff, const float *P, const float *bias, \
        bool relu, float *C, int ldc, int nlast, bool first, bool last_k)                          \
    {                                                                                              \
        const int ldp = 16 * NV;                                                                   \
        if (koff) PANEL_BODY(NV, koff);                                                            \
        else PANEL_BODY(NV, (const int *)NULL);                                                    \
    }

PANEL_FN(1)
PANEL_FN(2)
PANEL_FN(3)
PANEL_FN(4)

/* K is cut into equal blocks of at most KBLOCK so that the slice of a panel
 * one row tile streams stays in L2 (64 columns x 512 x 4 B = 128 KiB); C
 * holds the partial sums between blocks, the last adds bias and ReLU. */
#define KBLOCK 512

static void run_panels(int M, int N, int K, const float *A, int lda, const int *koff,
                       const float *Bp, const float *bias, bool relu, float *C, int ldc)
{
    for (int n0 = 0; n0 < N; n0 += PANEL) {
        int nb = N - n0 < PANEL ? N - n0 : PANEL, nv = (nb + 15) / 16, nlast = nb - 16 * (nv - 1);
        const float *bb = bias ? bias + n0 : NULL;
        const int nblk = (K + KBLOCK - 1) / KBLOCK, kstep = (K + nblk - 1) / nblk;
        for (int k0 = 0; k0 < K; k0 += kstep) {
            int kb = K - k0 < kstep ? K - k0 : kstep;
            bool first = k0 == 0, last_k = k0 + kb == K;
            const float *a = koff ? A : A + k0, *p = Bp + (size_t)k0 * nv * 16;
            const int *ko = koff ? koff + k0 : NULL;
            switch (nv) {
            case 1:
                panel1(M, kb, a, lda, ko, p, bb, relu, C + n0, ldc, nlast, first, last_k);
                break;
            case 2:
                panel2(M, kb, a, lda, ko, p, bb, relu, C + n0, ldc, nlast, first, last_k);
                break;
            case 3:
                panel3(M, kb, a, lda, ko, p, bb, relu, C + n0, ldc, nlast, first, last_k);
                break;
            default:
                panel4(M, kb, a, lda, ko, p, bb, relu, C + n0, ldc, nlast, first, last_k);
                break;
            }
        }
        Bp += (size_t)K * nv * 16;
    }
}

/* C (M x N, ldc) = A (M x K, lda) . B + bias (N floats or NULL), then
 * max(0, .) when relu. Bp from eng_gemm_pack(K, N). Needs eng_gemm_available(). */
void eng_gemm(int M, int N, int K, const float *A, int lda, const float *Bp, const float *bias,
              bool relu, float *C, int ldc)
{
    run_panels(M, N, K, A, lda, NULL, Bp, bias, relu, C, ldc);
}

/* Convolution as an implicit GEMM, no im2col: output row oy, pixel ox reads
 * element k of its window at x[oy * row_stride + ox * col_stride + koff[k]].
 * Every window must lie inside the input (no padding). C is Ho*Wo x N, ldc = N. */
void eng_gemm_conv(int Ho, int Wo, int N, int K, const float *x, size_t row_stride, int col_stride,
                   const int *koff, const float *Bp, const float *bias, bool relu, float *C)
{
    for (int oy = 0; oy < Ho; oy++)
        run_panels(Wo, N, K, x + (size_t)oy * row_stride, col_stride, koff, Bp, bias, relu,
                   C + (size_t)oy * Wo * N, N);
}

#else /* not x86-64 GCC: callers keep cblas_sgemm */

bool eng_gemm_available(void)
{
    return false;
}

void eng_gemm(int M, int N, int K, const float *A, int lda, const float *Bp, const float *bias,
              bool relu, float *C, int ldc)
{
    (void)M;
    (void)N;
    (void)K;
    (void)A;
    (void)lda;
    (void)Bp;
    (void)bias;
    (void)relu;
    (void)C;
    (void)ldc;
}

void eng_gemm_conv(int Ho, int Wo, int N, int K, const float *x, size_t row_stride, int col_stride,
                   const int *koff, const float *Bp, const float *bias, bool relu, float *C)
{
    (void)Ho;
    (void)Wo;
    (void)N;
    (void)K;
    (void)x;
    (void)row_stride;
    (void)col_stride;
    (void)koff;
    (void)Bp;
    (void)bias;
    (void)relu;
    (void)C;
}

#endif
