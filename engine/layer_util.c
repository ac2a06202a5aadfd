/* engine/layer_util.c — the helpers the layer kinds (layer_*.c) and the
 * architecture parser (arch.c) share: config JSON getters, activations by
 * Keras name, declared input shapes, weight specs and conv arithmetic.
 * Declared in arch_int.h / layers.h. Calls no other engine file: arch.c
 * holds the kind table (it calls layer_*.c), layer_*.c call only down here,
 * so no two files call each other.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "arch_int.h"
#include "layers.h"

/* ---- JSON helpers ---------------------------------------------------------- */

static bool json_is_intlike(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d)) return false;
        *out = d;
        return true;
    }
    return false;
}

int eng_json_ints(const json_t *cfg, const char *key, int *out, int n, int def)
{
    const json_t *v = json_object_get(cfg, key);
    double d;
    if (!v || json_is_null(v)) {
        if (def < 0) return -1;
        for (int i = 0; i < n; i++) out[i] = def;
        return 0;
    }
    if (json_is_intlike(v, &d)) {
        if (d < 0 || d > 1e9) return -1;
        for (int i = 0; i < n; i++) out[i] = (int)d;
        return 0;
    }
    if (!json_is_array(v) || (json_array_size(v) != (size_t)n && json_array_size(v) != 1))
        return -1;
    for (int i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, json_array_size(v) == 1 ? 0 : (size_t)i);
        if (!json_is_intlike(e, &d) || d < 0 || d > 1e9) return -1;
        out[i] = (int)d;
    }
    return 0;
}

double eng_json_num(const json_t *cfg, const char *key, double def)
{
    const json_t *v = json_object_get(cfg, key);
    if (json_is_number(v)) return json_number_value(v);
    return def;
}

bool eng_json_bool(const json_t *cfg, const char *key, bool def)
{
    const json_t *v = json_object_get(cfg, key);
    if (json_is_boolean(v)) return json_is_true(v);
    return def;
}

const char *eng_json_str(const json_t *cfg, const char *key)
{
    return json_string_value(json_object_get(cfg, key));
}

int eng_json_data_format(const json_t *cfg)
{
    const json_t *v = json_object_get(cfg, "data_format");
    if (!v || json_is_null(v)) v = json_object_get(cfg, "dim_ordering");
    if (!v || json_is_null(v)) return 0;
    const char *s = json_string_value(v);
    if (!s) return -1;
    if (!strcmp(s, "channels_first") || !strcmp(s, "th")) return 1;
    if (!strcmp(s, "channels_last") || !strcmp(s, "tf") || !strcmp(s, "default")) return 0;
    return -1;
}

static const struct {
    const char *name;
    int act;
} act_names[] = {
    {"linear", ENG_ACT_LINEAR},     {"relu", ENG_ACT_RELU},
    {"relu6", ENG_ACT_RELU6},       {"sigmoid", ENG_ACT_SIGMOID},
    {"tanh", ENG_ACT_TANH},         {"softmax", ENG_ACT_SOFTMAX},
    {"elu", ENG_ACT_ELU},           {"selu", ENG_ACT_SELU},
    {"softplus", ENG_ACT_SOFTPLUS}, {"softsign", ENG_ACT_SOFTSIGN},
    {"swish", ENG_ACT_SWISH},       {"silu", ENG_ACT_SWISH},
    {"gelu", ENG_ACT_GELU},         {"exponential", ENG_ACT_EXPONENTIAL},
    {"mish", ENG_ACT_MISH},         {"hard_sigmoid", ENG_ACT_HARD_SIGMOID_K2},
};

int eng_act_parse(const char *name, int keras_major)
{
    if (!name) return -1;
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++)
        if (!strcmp(name, act_names[i].name)) {
            if (act_names[i].act == ENG_ACT_HARD_SIGMOID_K2 && keras_major >= 3)
                return ENG_ACT_HARD_SIGMOID_K3;
            return act_names[i].act;
        }
    return -1;
}

const char *eng_act_name(int act)
{
    if (act == ENG_ACT_HARD_SIGMOID_K3) return "hard_sigmoid";
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++)
        if (act_names[i].act == act) return act_names[i].name;
    return "?";
}

int eng_json_activation(const json_t *cfg, int keras_major, const char **bad)
{
    const json_t *v = json_object_get(cfg, "activation");
    *bad = NULL;
    if (!v || json_is_null(v)) return ENG_ACT_LINEAR;
    if (json_is_object(v)) {
        /* Keras 3 may serialize a builtin as {"class_name": "function", "config": "relu"} */
        const json_t *c = json_object_get(v, "config");
        if (json_is_string(c)) v = c;
        else {
            *bad = "(object)";
            return -1;
        }
    }
    const char *s = json_string_value(v);
    int a = eng_act_parse(s, keras_major);
    if (a < 0) *bad = s ? s : "(not a string)";
    return a;
}

int eng_parse_act(eng_layer *L, const json_t *cfg, const eng_parse_ctx *pc, char *why)
{
    const char *bad;
    L->p.act = eng_json_activation(cfg, pc->keras_major, &bad);
    if (L->p.act < 0) {
        snprintf(why, ENG_WHY, "unsupported activation '%s'", bad);
        return -1;
    }
    return 0;
}

int64_t eng_shape_count(const eng_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->d[i];
    return n;
}

void eng_wspec_set(eng_layer *L, const char *name, bool trainable, int rank, ...)
{
    if (L->nw >= ENG_MAX_WEIGHTS) return;
    eng_wspec *w = &L->w[L->nw++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->trainable = trainable;
    w->rank = rank;
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) w->shape[i] = va_arg(ap, int64_t);
    va_end(ap);
}

int64_t eng_conv_out(int64_t in, int k, int s, int d, bool same)
{
    if (k < 1 || s < 1 || d < 1) return -1;
    int64_t keff = (int64_t)(k - 1) * d + 1;
    int64_t o = same ? (in + s - 1) / s : (in - keff) / s + 1;
    if (!same && in < keff) return -1;
    return o >= 1 ? o : -1;
}

int eng_pad_before(int64_t in, int64_t out, int k, int s, int d)
{
    int64_t tot = (out - 1) * s + (int64_t)(k - 1) * d + 1 - in;
    if (tot < 0) tot = 0;
    return (int)(tot / 2);
}

/* A shape list [null, d1, d2, …] (with_batch) or [d1, …] into s. */
int eng_parse_shape(const json_t *v, bool with_batch, eng_shape *s, char *why)
{
    if (!json_is_array(v)) {
        snprintf(why, ENG_WHY, "input shape is not a list");
        return -1;
    }
    size_t n = json_array_size(v), first = with_batch ? 1 : 0;
    if (n <= first || n - first > ENG_MAX_RANK - 1) {
        snprintf(why, ENG_WHY, "input shape of rank %zu not supported", n);
        return -1;
    }
    s->rank = (int)(n - first);
    for (size_t i = first; i < n; i++) {
        double d;
        if (!json_is_intlike(json_array_get(v, i), &d) || d < 1 || d > (1 << 30)) {
            snprintf(why, ENG_WHY,
                     "input shape dimension %zu is unknown (None) or invalid; "
                     "the engine needs every dimension",
                     i);
            return -1;
        }
        s->d[i - first] = (int64_t)d;
    }
    return 0;
}

/* Input shape declared on a layer (InputLayer or a Sequential first layer). */
int eng_declared_shape(const json_t *cfg, eng_shape *s, bool *found, char *why)
{
    const json_t *v;
    *found = true;
    if ((v = json_object_get(cfg, "batch_input_shape")) && !json_is_null(v))
        return eng_parse_shape(v, true, s, why);
    if ((v = json_object_get(cfg, "batch_shape")) && !json_is_null(v))
        return eng_parse_shape(v, true, s, why);
    if ((v = json_object_get(cfg, "input_shape")) && !json_is_null(v))
        return eng_parse_shape(v, false, s, why);
    if ((v = json_object_get(cfg, "input_dim")) && json_is_integer(v) &&
        json_integer_value(v) > 0) {
        s->rank = 1;
        s->d[0] = json_integer_value(v);
        return 0;
    }
    *found = false;
    return 0;
}
