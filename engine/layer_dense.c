/* engine/layer_dense.c — Dense (Keras 1 output_dim / Keras 2+ units).
 *
 * Owns Dense parsing, shapes and forward: y = x . kernel + bias over the
 * last axis (a rank-n input is treated as rows of its last dimension, as
 * Keras does), by engine/gemm.c on a kernel packed at load time (bias and
 * ReLU fused) or by cblas_sgemm on CPUs without AVX-512. Other activations
 * are applied by forward.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "layers.h"

static int dense_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    const json_t *u = json_object_get(cfg, "units");
    if (!u) u = json_object_get(cfg, "output_dim");
    if (!json_is_integer(u) || json_integer_value(u) < 1 || json_integer_value(u) > (1 << 28)) {
        snprintf(why, ENG_WHY, "units missing or invalid");
        return -1;
    }
    L->p.units = (int)json_integer_value(u);
    L->p.use_bias = eng_json_bool(cfg, "use_bias", eng_json_bool(cfg, "bias", true));
    return eng_parse_act(L, cfg, pc, why);
}

static int dense_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    (void)why;
    L->out = *in;
    L->out.d[in->rank - 1] = L->p.units;
    return 0;
}

static int dense_weights(eng_layer *L, const eng_shape *in, char *why)
{
    (void)why;
    eng_wspec_set(L, "kernel", true, 2, in->d[in->rank - 1], (int64_t)L->p.units);
    if (L->p.use_bias) eng_wspec_set(L, "bias", true, 1, (int64_t)L->p.units);
    return 0;
}

/* Pack the K x units kernel for eng_gemm into aux[0] (owned by the model). */
static int dense_load(eng_mlayer *ml, char *why)
{
    const eng_layer *L = ml->L;
    if (!eng_gemm_available() || !ml->w[0]) return 0;
    int K = (int)L->w[0].shape[0], N = (int)L->w[0].shape[1];
    ml->aux[0] = malloc(eng_gemm_packed_size(K, N) * sizeof(float));
    if (!ml->aux[0]) {
        snprintf(why, ENG_WHY, "out of memory");
        return -1;
    }
    eng_gemm_pack(ml->aux[0], ml->w[0], K, N);
    /* the packed copy replaces the kernel: a model holds its weights once */
    free(ml->w[0]);
    ml->w[0] = NULL;
    return 0;
}

static void dense_forward(const eng_fwd *f)
{
    const int K = (int)f->in0.d[f->in0.rank - 1], N = f->L->p.units;
    const size_t rows = f->batch * (size_t)(eng_shape_count(&f->in0) / K);
    if (f->ml->aux[0]) {
        eng_gemm((int)rows, N, K, f->in[0], K, f->ml->aux[0], f->L->p.use_bias ? f->ml->w[1] : NULL,
                 f->L->p.act == ENG_ACT_RELU, f->out, N);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, N, K, 1.0f, f->in[0], K,
                f->ml->w[0], N, 0.0f, f->out, N);
    if (f->L->p.use_bias) {
        const float *bias = f->ml->w[1];
        float *y = f->out;
        for (size_t r = 0; r < rows; r++, y += N)
            for (int j = 0; j < N; j++) y[j] += bias[j];
    }
}

const struct eng_layer_kind eng_kinds_dense[] = {
    {"Dense", 0, dense_parse, dense_shape, dense_weights, dense_load, NULL, dense_forward},
    {NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};
