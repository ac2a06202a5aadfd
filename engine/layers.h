/* engine/layers.h — private: the table of supported Keras layer kinds.
 *
 * One row per Keras class name (Keras 1 names map onto the same functions):
 * {keras class, flags, parse, shape, weights, load, scratch, forward}.
 * parse reads the layer's config; shape infers the output shape from the
 * input shapes (NHWC for ENG_K_SPATIAL kinds: arch.c transposes around a
 * channels_first layer); weights lists the weight specs in Keras order;
 * load prepares derived data once per model (may be NULL); scratch says how
 * many floats of scratch forward needs (may be NULL); forward runs the layer.
 * Failing parse/shape/weights write a reason into why[ENG_WHY] and return -1.
 */
#ifndef STRATA_ENGINE_LAYERS_H
#define STRATA_ENGINE_LAYERS_H

#include "arch_int.h"

#define ENG_WHY 256

enum {
    ENG_K_SPATIAL = 1,  /* has data_format; computes in NHWC */
    ENG_K_IDENTITY = 2, /* inference identity: output aliases the input */
    ENG_K_MULTI = 4,    /* takes several inputs (merge layers) */
    ENG_K_INPUT = 8,    /* InputLayer */
};

typedef struct eng_parse_ctx {
    int keras_major;
} eng_parse_ctx;

struct eng_layer_kind {
    const char *keras_class;
    unsigned flags;
    int (*parse)(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why);
    int (*shape)(eng_layer *L, const eng_shape *in, int nin, char *why);
    int (*weights)(eng_layer *L, const eng_shape *in, char *why);
    int (*load)(eng_mlayer *ml, char *why);
    size_t (*scratch)(const eng_layer *L, const eng_shape *in_nhwc, size_t batch);
    void (*forward)(const eng_fwd *f);
};

/* NULL when the class is not supported; *why then says why (refusals with a
 * precise reason, e.g. Conv1D). */
const struct eng_layer_kind *eng_kind_find(const char *cls, const char **why);

/* Row sets per family file. */
extern const struct eng_layer_kind eng_kinds_conv[];
extern const struct eng_layer_kind eng_kinds_pool[];
extern const struct eng_layer_kind eng_kinds_dense[];
extern const struct eng_layer_kind eng_kinds_norm[];
extern const struct eng_layer_kind eng_kinds_misc[];
extern const struct eng_layer_kind eng_kinds_merge[];

/* Shared helpers for kinds (layer_util.c). */
void eng_wspec_set(eng_layer *L, const char *name, bool trainable, int rank, ...);
/* Keras conv_output_length; -1 when not positive. */
int64_t eng_conv_out(int64_t in, int k, int s, int d, bool same);
/* TF 'same' padding before: pad_total = max((out-1)*s + (k-1)*d + 1 - in, 0) / 2 */
int eng_pad_before(int64_t in, int64_t out, int k, int s, int d);
/* Input shape declared on a layer config (batch_input_shape, batch_shape,
 * input_shape, Keras 1 input_dim); *found false when none. */
int eng_declared_shape(const json_t *cfg, eng_shape *s, bool *found, char *why);
int eng_parse_shape(const json_t *v, bool with_batch, eng_shape *s, char *why);
/* Parse a Keras activation into L->p.act (key "activation"). */
int eng_parse_act(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why);

/* ---- engine/gemm.c: AVX-512 GEMM for CNN shapes (many rows, few columns) ----
 * Weights are packed once at load (eng_gemm_pack) into eng_gemm_packed_size()
 * floats; bias and ReLU are applied before the single store. Without
 * AVX-512 eng_gemm_available() is false and callers use cblas_sgemm. */
bool eng_gemm_available(void);
size_t eng_gemm_packed_size(int K, int N);
void eng_gemm_pack(float *dst, const float *B, int K, int N);
/* C[M,N] = A[M,K] (row stride lda) x packed B + bias, ReLU when relu. */
void eng_gemm(int M, int N, int K, const float *A, int lda, const float *Bp, const float *bias,
              bool relu, float *C, int ldc);
/* A 'valid' convolution read in place: the window of output pixel (i,j)
 * starts at x + i*row_stride + j*col_stride, its K elements at koff[]. */
void eng_gemm_conv(int Ho, int Wo, int N, int K, const float *x, size_t row_stride, int col_stride,
                   const int *koff, const float *Bp, const float *bias, bool relu, float *C);

#endif
