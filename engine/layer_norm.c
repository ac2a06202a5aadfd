/* engine/layer_norm.c — BatchNormalization (inference form).
 *
 * Owns BN parsing, weight specs and the folded forward
 * y = x * scale[c] + shift[c], scale = gamma / sqrt(var + eps),
 * shift = beta - mean * scale, computed once at model load.
 * Keras 2/3 weights: gamma (if scale), beta (if center), moving_mean,
 * moving_variance (the last two non-trainable). Keras 1 mode 0 stores
 * gamma, beta, running_mean, running_std; despite its name running_std holds
 * the VARIANCE in Keras 1.x (its BatchNormalization feeds it to
 * K.batch_normalization as the variance, and Keras 2's legacy loader assigns
 * it to moving_variance unchanged), so it is folded as a variance here.
 * Keras 1 modes 1/2 (sample-wise / per-batch statistics) are refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "layers.h"

static int bn_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    eng_lparams *p = &L->p;
    const json_t *ax = json_object_get(cfg, "axis");
    if (json_is_array(ax)) {
        if (json_array_size(ax) != 1) {
            snprintf(why, ENG_WHY, "BatchNormalization over several axes not supported");
            return -1;
        }
        ax = json_array_get(ax, 0);
    }
    p->axis = ax ? (json_is_integer(ax) ? (int)json_integer_value(ax) : 1000) : -1;
    if (p->axis == 1000) {
        snprintf(why, ENG_WHY, "invalid axis");
        return -1;
    }
    p->eps = (float)eng_json_num(cfg, "epsilon", 1e-3);
    if (!(p->eps >= 0)) {
        snprintf(why, ENG_WHY, "invalid epsilon");
        return -1;
    }
    const json_t *mode = json_object_get(cfg, "mode");
    p->bn_k1 = mode != NULL || pc->keras_major == 1;
    if (mode && !(json_is_integer(mode) && json_integer_value(mode) == 0)) {
        snprintf(why, ENG_WHY, "Keras 1 BatchNormalization mode other than 0 is not supported");
        return -1;
    }
    p->center = p->bn_k1 ? true : eng_json_bool(cfg, "center", true);
    p->scale = p->bn_k1 ? true : eng_json_bool(cfg, "scale", true);
    return 0;
}

static int bn_axis(const eng_layer *L, const eng_shape *in)
{
    int a = L->p.axis;
    int idx = a < 0 ? in->rank + a : a - 1; /* Keras axes count the batch dim */
    return (idx >= 0 && idx < in->rank) ? idx : -1;
}

static int bn_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    if (bn_axis(L, in) < 0) {
        snprintf(why, ENG_WHY, "inconsistent shapes: axis %d out of range for a rank-%d input",
                 L->p.axis, in->rank);
        return -1;
    }
    L->out = *in;
    return 0;
}

static int bn_weights(eng_layer *L, const eng_shape *in, char *why)
{
    (void)why;
    int64_t c = in->d[bn_axis(L, in)];
    if (L->p.bn_k1) {
        eng_wspec_set(L, "gamma", true, 1, c);
        eng_wspec_set(L, "beta", true, 1, c);
        eng_wspec_set(L, "running_mean", false, 1, c);
        eng_wspec_set(L, "running_std", false, 1, c);
        return 0;
    }
    if (L->p.scale) eng_wspec_set(L, "gamma", true, 1, c);
    if (L->p.center) eng_wspec_set(L, "beta", true, 1, c);
    eng_wspec_set(L, "moving_mean", false, 1, c);
    eng_wspec_set(L, "moving_variance", false, 1, c);
    return 0;
}

static int bn_load(eng_mlayer *ml, char *why)
{
    const eng_layer *L = ml->L;
    const int64_t C = L->w[L->nw - 1].shape[0];
    int i = 0;
    const float *gamma = L->p.scale ? ml->w[i++] : NULL;
    const float *beta = L->p.center ? ml->w[i++] : NULL;
    const float *mean = ml->w[i++], *var = ml->w[i++];
    ml->aux[0] = malloc((size_t)C * sizeof(float));
    ml->aux[1] = malloc((size_t)C * sizeof(float));
    if (!ml->aux[0] || !ml->aux[1]) {
        snprintf(why, ENG_WHY, "out of memory");
        return -1;
    }
    for (int64_t c = 0; c < C; c++) {
        double s = (gamma ? gamma[c] : 1.0) / sqrt((double)var[c] + L->p.eps);
        ml->aux[0][c] = (float)s;
        ml->aux[1][c] = (float)((beta ? beta[c] : 0.0) - mean[c] * s);
    }
    return 0;
}

static void bn_forward(const eng_fwd *f)
{
    const eng_shape *s = &f->in0;
    int ax = bn_axis(f->L, s);
    size_t outer = f->batch, inner = 1, C = (size_t)s->d[ax];
    for (int i = 0; i < ax; i++) outer *= (size_t)s->d[i];
    for (int i = ax + 1; i < s->rank; i++) inner *= (size_t)s->d[i];
    const float *sc = f->ml->aux[0], *sh = f->ml->aux[1];
    const float *x = f->in[0];
    float *y = f->out;
    for (size_t o = 0; o < outer; o++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < inner; i++, x++, y++) *y = *x * sc[c] + sh[c];
}

const struct eng_layer_kind eng_kinds_norm[] = {
    {"BatchNormalization", 0, bn_parse, bn_shape, bn_weights, bn_load, NULL, bn_forward},
    {NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};
