/* engine/layer_merge.c — merge kinds: Add, Subtract, Multiply, Average,
 * Maximum, Minimum (equal shapes, elementwise) and Concatenate (along one
 * axis, Keras axes counting the batch dim; default -1).
 */
#include <stdio.h>
#include <string.h>

#include "layers.h"

enum { M_ADD, M_SUB, M_MUL, M_AVG, M_MAX, M_MIN, M_CONCAT };

static int merge_parse_op(eng_layer *L, int op)
{
    L->p.merge_op = op;
    return 0;
}

#define MERGE_PARSE(fn, op)                                                            \
    static int fn(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why) \
    {                                                                                  \
        (void)cfg;                                                                     \
        (void)pc;                                                                      \
        (void)why;                                                                     \
        return merge_parse_op(L, op);                                                  \
    }
MERGE_PARSE(add_parse, M_ADD)
MERGE_PARSE(sub_parse, M_SUB)
MERGE_PARSE(mul_parse, M_MUL)
MERGE_PARSE(avg_parse, M_AVG)
MERGE_PARSE(max_parse, M_MAX)
MERGE_PARSE(min_parse, M_MIN)

static int elem_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    if (nin < 2 && L->p.merge_op != M_ADD) {
        snprintf(why, ENG_WHY, "merge layer needs at least 2 inputs, got %d", nin);
        return -1;
    }
    if (L->p.merge_op == M_SUB && nin != 2) {
        snprintf(why, ENG_WHY, "Subtract needs exactly 2 inputs, got %d", nin);
        return -1;
    }
    for (int k = 1; k < nin; k++) {
        bool same = in[k].rank == in[0].rank;
        for (int d = 0; same && d < in[0].rank; d++) same = in[k].d[d] == in[0].d[d];
        if (!same) {
            snprintf(why, ENG_WHY, "inconsistent shapes: input %d differs from input 0", k);
            return -1;
        }
    }
    L->out = in[0];
    return 0;
}

static void elem_forward(const eng_fwd *f)
{
    size_t n = f->batch * (size_t)eng_shape_count(&f->in0);
    int op = f->L->p.merge_op;
    memcpy(f->out, f->in[0], n * sizeof *f->out);
    for (int k = 1; k < f->nin; k++) {
        const float *x = f->in[k];
        float *y = f->out;
        switch (op) {
        case M_ADD:
        case M_AVG:
            for (size_t i = 0; i < n; i++) y[i] += x[i];
            break;
        case M_SUB:
            for (size_t i = 0; i < n; i++) y[i] -= x[i];
            break;
        case M_MUL:
            for (size_t i = 0; i < n; i++) y[i] *= x[i];
            break;
        case M_MAX:
            for (size_t i = 0; i < n; i++)
                if (x[i] > y[i]) y[i] = x[i];
            break;
        case M_MIN:
            for (size_t i = 0; i < n; i++)
                if (x[i] < y[i]) y[i] = x[i];
            break;
        default: break;
        }
    }
    if (op == M_AVG)
        for (size_t i = 0; i < n; i++) f->out[i] /= (float)f->nin;
}

static int concat_parse(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    (void)pc;
    const json_t *ax = json_object_get(cfg, "axis");
    L->p.merge_op = M_CONCAT;
    L->p.axis = ax ? (json_is_integer(ax) ? (int)json_integer_value(ax) : 1000) : -1;
    if (L->p.axis == 1000) {
        snprintf(why, ENG_WHY, "invalid axis");
        return -1;
    }
    return 0;
}

static int concat_axis(const eng_layer *L, int rank)
{
    int idx = L->p.axis < 0 ? rank + L->p.axis : L->p.axis - 1;
    return idx >= 0 && idx < rank ? idx : -1;
}

static int concat_shape(eng_layer *L, const eng_shape *in, int nin, char *why)
{
    int ax = concat_axis(L, in[0].rank);
    if (ax < 0) {
        snprintf(why, ENG_WHY, "inconsistent shapes: axis %d out of range for rank %d", L->p.axis,
                 in[0].rank);
        return -1;
    }
    L->out = in[0];
    for (int k = 1; k < nin; k++) {
        bool ok = in[k].rank == in[0].rank;
        for (int d = 0; ok && d < in[0].rank; d++) ok = d == ax || in[k].d[d] == in[0].d[d];
        if (!ok) {
            snprintf(why, ENG_WHY,
                     "inconsistent shapes: input %d does not match input 0 outside axis %d", k,
                     L->p.axis);
            return -1;
        }
        L->out.d[ax] += in[k].d[ax];
    }
    return 0;
}

static void concat_forward(const eng_fwd *f)
{
    const eng_shape *s0 = f->ish[0];
    int ax = concat_axis(f->L, s0->rank);
    size_t outer = f->batch, inner = 1;
    for (int i = 0; i < ax; i++) outer *= (size_t)s0->d[i];
    for (int i = ax + 1; i < s0->rank; i++) inner *= (size_t)s0->d[i];
    float *y = f->out;
    for (size_t o = 0; o < outer; o++)
        for (int k = 0; k < f->nin; k++) {
            size_t chunk = (size_t)f->ish[k]->d[ax] * inner;
            memcpy(y, f->in[k] + o * chunk, chunk * sizeof *y);
            y += chunk;
        }
}

const struct eng_layer_kind eng_kinds_merge[] = {
    {"Add", ENG_K_MULTI, add_parse, elem_shape, NULL, NULL, NULL, elem_forward},
    {"Subtract", ENG_K_MULTI, sub_parse, elem_shape, NULL, NULL, NULL, elem_forward},
    {"Multiply", ENG_K_MULTI, mul_parse, elem_shape, NULL, NULL, NULL, elem_forward},
    {"Average", ENG_K_MULTI, avg_parse, elem_shape, NULL, NULL, NULL, elem_forward},
    {"Maximum", ENG_K_MULTI, max_parse, elem_shape, NULL, NULL, NULL, elem_forward},
    {"Minimum", ENG_K_MULTI, min_parse, elem_shape, NULL, NULL, NULL, elem_forward},
    {"Concatenate", ENG_K_MULTI, concat_parse, concat_shape, NULL, NULL, NULL, concat_forward},
    {NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};
