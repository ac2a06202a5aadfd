/* engine/layer_misc.c — InputLayer, Flatten, Reshape, inference identities
 * (Dropout, SpatialDropout2D, GaussianNoise, Random* augmentations, …), Activation, ReLU, LeakyReLU,
 * ELU, Softmax, Rescaling.
 *
 * Owns their parsing, shapes and forward. Identity kinds alias their input
 * buffer (forward.c). Flatten is a plain reshape of the logical layout (so a
 * Keras 1 'th' model flattens in C,H,W order, as Keras 1 did); a Keras 2
 * Flatten(data_format='channels_first') first moves channels last, as Keras 2
 * does. Activation-like layers compute into their own buffer.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layers.h"

static int input_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    bool found;
    if (eng_declared_shape(cfg, &L->out, &found, why) < 0) return -1;
    if (!found) {
        snprintf(why, ENG_WHY, "InputLayer declares no batch_input_shape / batch_shape");
        return -1;
    }
    return 0;
}

static int same_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    (void)why;
    L->out = *in;
    return 0;
}

static void copy_forward(const eng_fwd *f)
{
    size_t n = f->batch * (size_t)eng_shape_count(&f->in0);
    if (f->out != f->in[0]) memcpy(f->out, f->in[0], n * sizeof *f->out);
}

/* ---- Flatten / Reshape ---- */

static int flatten_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    int df = eng_json_data_format(cfg);
    if (df < 0) {
        snprintf(why, ENG_WHY, "unknown data_format");
        return -1;
    }
    L->p.flatten_cf = df == 1;
    return 0;
}

static int flatten_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    (void)why;
    L->out.rank = 1;
    L->out.d[0] = eng_shape_count(in);
    return 0;
}

static void flatten_forward(const eng_fwd *f)
{
    if (!f->L->p.flatten_cf || f->in0.rank < 2) {
        copy_forward(f);
        return;
    }
    /* (C, rest) -> (rest, C) */
    size_t C = (size_t)f->in0.d[0], R = (size_t)eng_shape_count(&f->in0) / C;
    for (size_t b = 0; b < f->batch; b++) {
        const float *x = f->in[0] + b * C * R;
        float *y = f->out + b * C * R;
        for (size_t c = 0; c < C; c++)
            for (size_t r = 0; r < R; r++) y[r * C + c] = x[c * R + r];
    }
}

static int reshape_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    const json_t *t = json_object_get(cfg, "target_shape");
    size_t i;
    const json_t *e;
    if (!json_is_array(t) || json_array_size(t) < 1 || json_array_size(t) > ENG_MAX_RANK - 1) {
        snprintf(why, ENG_WHY, "target_shape missing or invalid");
        return -1;
    }
    L->p.target_rank = (int)json_array_size(t);
    json_array_foreach (t, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) < -1 || json_integer_value(e) == 0 ||
            json_integer_value(e) > (1 << 30)) {
            snprintf(why, ENG_WHY, "target_shape entry %zu invalid", i);
            return -1;
        }
        L->p.target[i] = json_integer_value(e);
    }
    return 0;
}

static int reshape_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    int64_t total = eng_shape_count(in), known = 1;
    int unknown = -1;
    L->out.rank = L->p.target_rank;
    for (int i = 0; i < L->p.target_rank; i++) {
        L->out.d[i] = L->p.target[i];
        if (L->p.target[i] == -1) {
            if (unknown >= 0) {
                snprintf(why, ENG_WHY, "target_shape has more than one -1");
                return -1;
            }
            unknown = i;
        } else known *= L->p.target[i];
    }
    if (unknown >= 0) {
        if (total % known) goto bad;
        L->out.d[unknown] = total / known;
    } else if (known != total) goto bad;
    return 0;
bad:
    snprintf(why, ENG_WHY, "inconsistent shapes: cannot reshape %lld elements into target_shape",
             (long long)total);
    return -1;
}

/* ---- Activation-like layers (forward.c applies p.act) ---- */

static int activation_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    if (!json_object_get(cfg, "activation")) {
        snprintf(why, ENG_WHY, "Activation without activation");
        return -1;
    }
    return eng_parse_act(L, cfg, pc, why);
}

static int relu_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    const json_t *mv = json_object_get(cfg, "max_value");
    L->p.has_max = json_is_number(mv);
    L->p.max_value = L->p.has_max ? (float)json_number_value(mv) : 0;
    L->p.alpha = (float)eng_json_num(cfg, "negative_slope", 0.0);
    L->p.threshold = (float)eng_json_num(cfg, "threshold", 0.0);
    if (mv && !json_is_null(mv) && !L->p.has_max) {
        snprintf(why, ENG_WHY, "invalid max_value");
        return -1;
    }
    return 0;
}

static void relu_forward(const eng_fwd *f)
{
    const eng_lparams *p = &f->L->p;
    size_t n = f->batch * (size_t)eng_shape_count(&f->in0);
    for (size_t i = 0; i < n; i++) {
        float x = f->in[0][i], y;
        /* tf.keras backend.relu: x > threshold -> min(x, max_value), else
         * negative_slope * (x - threshold) */
        if (x > p->threshold) y = (p->has_max && x > p->max_value) ? p->max_value : x;
        else y = p->alpha * (x - p->threshold);
        f->out[i] = y;
    }
}

static int leaky_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    (void)why;
    L->p.alpha = (float)eng_json_num(cfg, "negative_slope", eng_json_num(cfg, "alpha", 0.3));
    return 0;
}

static void leaky_forward(const eng_fwd *f)
{
    size_t n = f->batch * (size_t)eng_shape_count(&f->in0);
    float a = f->L->p.alpha;
    for (size_t i = 0; i < n; i++) {
        float x = f->in[0][i];
        f->out[i] = x >= 0 ? x : a * x;
    }
}

static int elu_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    (void)why;
    L->p.alpha = (float)eng_json_num(cfg, "alpha", 1.0);
    return 0;
}

static void elu_forward(const eng_fwd *f)
{
    size_t n = f->batch * (size_t)eng_shape_count(&f->in0);
    float a = f->L->p.alpha;
    for (size_t i = 0; i < n; i++) {
        float x = f->in[0][i];
        f->out[i] = x > 0 ? x : a * expm1f(x);
    }
}

static int softmax_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    const json_t *ax = json_object_get(cfg, "axis");
    if (json_is_array(ax) && json_array_size(ax) == 1) ax = json_array_get(ax, 0);
    L->p.axis =
        ax && !json_is_null(ax) ? (json_is_integer(ax) ? (int)json_integer_value(ax) : 1000) : -1;
    L->p.act = ENG_ACT_SOFTMAX;
    if (L->p.axis == 1000) {
        snprintf(why, ENG_WHY, "invalid axis");
        return -1;
    }
    return 0;
}

static int softmax_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    (void)nin;
    if (L->p.axis != -1 && L->p.axis != in->rank) {
        snprintf(why, ENG_WHY, "Softmax over an axis other than the last is not supported");
        return -1;
    }
    L->out = *in;
    return 0;
}

static int rescaling_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    const json_t *s = json_object_get(cfg, "scale"), *o = json_object_get(cfg, "offset");
    if (!json_is_number(s) || (o && !json_is_null(o) && !json_is_number(o))) {
        snprintf(why, ENG_WHY, "Rescaling with non-scalar scale/offset is not supported");
        return -1;
    }
    L->p.rs_scale = (float)json_number_value(s);
    L->p.rs_offset = o ? (float)json_number_value(o) : 0.0f;
    return 0;
}

static void rescaling_forward(const eng_fwd *f)
{
    size_t n = f->batch * (size_t)eng_shape_count(&f->in0);
    for (size_t i = 0; i < n; i++) f->out[i] = f->in[0][i] * f->L->p.rs_scale + f->L->p.rs_offset;
}

#define IDENT(cls)                                                            \
    {                                                                         \
        cls, ENG_K_IDENTITY, NULL, same_shape, NULL, NULL, NULL, copy_forward \
    }

const struct eng_layer_kind eng_kinds_misc[] = {
    {"InputLayer", ENG_K_INPUT | ENG_K_IDENTITY, input_parse, NULL, NULL, NULL, NULL, copy_forward},
    {"Flatten", ENG_K_IDENTITY, flatten_parse, flatten_shape, NULL, NULL, NULL, flatten_forward},
    {"Reshape", ENG_K_IDENTITY, reshape_parse, reshape_shape, NULL, NULL, NULL, copy_forward},
    IDENT("Dropout"),
    IDENT("SpatialDropout2D"),
    IDENT("SpatialDropout1D"),
    IDENT("GaussianNoise"),
    IDENT("GaussianDropout"),
    IDENT("AlphaDropout"),
    IDENT("ActivityRegularization"),
    /* Keras preprocessing augmentations: identity at inference */
    IDENT("RandomFlip"),
    IDENT("RandomRotation"),
    IDENT("RandomZoom"),
    IDENT("RandomContrast"),
    IDENT("RandomTranslation"),
    IDENT("RandomBrightness"),
    {"Activation", 0, activation_parse, same_shape, NULL, NULL, NULL, copy_forward},
    {"ReLU", 0, relu_parse, same_shape, NULL, NULL, NULL, relu_forward},
    {"LeakyReLU", 0, leaky_parse, same_shape, NULL, NULL, NULL, leaky_forward},
    {"ELU", 0, elu_parse, same_shape, NULL, NULL, NULL, elu_forward},
    {"Softmax", 0, softmax_parse, softmax_shape, NULL, NULL, NULL, copy_forward},
    {"Rescaling", 0, rescaling_parse, same_shape, NULL, NULL, NULL, rescaling_forward},
    {NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};
