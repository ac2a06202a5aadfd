/* engine/layer_dense.c — Dense (Keras 1 output_dim / Keras 2+ units).
 *
 * Owns Dense parsing, shapes and forward: y = x . kernel + bias by
 * cblas_sgemm over the last axis (a rank-n input is treated as rows of its
 * last dimension, as Keras does). The activation is applied by forward.c.
 */
#include <stdio.h>
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
    (void)nin; (void)why;
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

static void dense_forward(const eng_fwd *f)
{
    const int K = (int)f->in0.d[f->in0.rank - 1], N = f->L->p.units;
    const size_t rows = f->batch * (size_t)(eng_shape_count(&f->in0) / K);
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
    {"Dense", 0, dense_parse, dense_shape, dense_weights, NULL, NULL, dense_forward},
    {NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};
