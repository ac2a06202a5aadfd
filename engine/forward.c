/* engine/forward.c — loaded models and the forward pass.
 *
 * Owns eng_model_load/free/input_size/output_size, eng_workspace_new/free,
 * eng_model_predict, activations, and the weight mapping shared with
 * validate.c (eng_model_build). Does not own layer math (layer_*.c) nor the
 * weight-file reader (eng_tensor_read_f32 reads with pread, no libhdf5).
 *
 * - Weights are mapped by layer name for legacy files (keras2-*) and by the
 *   Keras 3 class-derived group name for keras3-*; within a layer by position
 *   (the Keras loaders assign by order). Keras 1 files (no keras_version, or
 *   "1.x") with a channels_first ('th') Conv2D store kernels (out,in,kh,kw):
 *   they are transposed to (kh,kw,in,out) at load, as Keras 2's legacy loader
 *   does; no Theano kernel flip is applied (the files carry no backend).
 * - Tensors are in the architecture's logical layout; a channels_first
 *   spatial layer is run by transposing its input to HWC and its output back.
 * - The model is immutable after load (threads share it); each caller brings
 *   an eng_workspace whose one buffer grows on demand and is reused, so a warm
 *   workspace allocates nothing per call.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef STRATA_ENG_PROFILE
#include <time.h>
#endif

#include "arch_int.h"
#include "layers.h"

struct eng_workspace {
    float *buf;
    size_t cap; /* floats */
};

/* ---- activations ------------------------------------------------------------- */

void eng_act_apply(float *x, size_t n, size_t row, int act)
{
    size_t i;
    switch (act) {
    case ENG_ACT_LINEAR: return;
    case ENG_ACT_RELU:
        for (i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        return;
    case ENG_ACT_RELU6:
        for (i = 0; i < n; i++) x[i] = x[i] > 6 ? 6 : (x[i] > 0 ? x[i] : 0);
        return;
    case ENG_ACT_SIGMOID:
        for (i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        return;
    case ENG_ACT_HARD_SIGMOID_K2:
        for (i = 0; i < n; i++) {
            float v = 0.2f * x[i] + 0.5f;
            x[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        return;
    case ENG_ACT_HARD_SIGMOID_K3:
        for (i = 0; i < n; i++) {
            float v = x[i] / 6.0f + 0.5f;
            x[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        return;
    case ENG_ACT_TANH:
        for (i = 0; i < n; i++) x[i] = tanhf(x[i]);
        return;
    case ENG_ACT_ELU:
        for (i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : expm1f(x[i]);
        return;
    case ENG_ACT_SELU:
        for (i = 0; i < n; i++)
            x[i] =
                (float)(1.0507009873554805 * (x[i] > 0 ? x[i] : 1.6732632423543772 * expm1(x[i])));
        return;
    case ENG_ACT_SOFTPLUS:
        for (i = 0; i < n; i++) x[i] = (float)(log1p(exp(-fabs(x[i]))) + (x[i] > 0 ? x[i] : 0));
        return;
    case ENG_ACT_SOFTSIGN:
        for (i = 0; i < n; i++) x[i] = x[i] / (1.0f + fabsf(x[i]));
        return;
    case ENG_ACT_SWISH:
        for (i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
        return;
    case ENG_ACT_GELU:
        for (i = 0; i < n; i++)
            x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] * 0.70710678118654752)));
        return;
    case ENG_ACT_EXPONENTIAL:
        for (i = 0; i < n; i++) x[i] = expf(x[i]);
        return;
    case ENG_ACT_MISH:
        for (i = 0; i < n; i++) {
            double sp = log1p(exp(-fabs(x[i]))) + (x[i] > 0 ? x[i] : 0);
            x[i] = (float)(x[i] * tanh(sp));
        }
        return;
    case ENG_ACT_SOFTMAX:
        if (row == 0) return;
        for (size_t r = 0; r + row <= n; r += row) {
            float *v = x + r, mx = v[0];
            for (i = 1; i < row; i++)
                if (v[i] > mx) mx = v[i];
            double sum = 0;
            for (i = 0; i < row; i++) {
                v[i] = expf(v[i] - mx);
                sum += v[i];
            }
            for (i = 0; i < row; i++) v[i] = (float)(v[i] / sum);
        }
        return;
    default: return;
    }
}

/* ---- weight mapping -------------------------------------------------------------- */

static bool is_legacy(const eng_summary *s)
{
    return s->format == ENG_FMT_KERAS2_WEIGHTS || s->format == ENG_FMT_KERAS2_MODEL;
}

bool eng_layer_th_kernel(const eng_layer *L, const eng_summary *s)
{
    if (!L->cf || !is_legacy(s)) return false;
    if (s->keras_version && s->keras_version[0] != '1') return false;
    const char *c = L->kind->keras_class;
    return !strcmp(c, "Conv2D") || !strcmp(c, "Convolution2D") || !strcmp(c, "AtrousConvolution2D");
}

/* The file layer holding L's weights, or NULL. */
const eng_wlayer *eng_map_layer(const eng_layer *L, const eng_summary *s)
{
    const char *want = is_legacy(s) ? L->name : L->k3name;
    if (!want || !*want) return NULL;
    for (size_t i = 0; i < s->nlayers; i++)
        if (s->layers[i].name && !strcmp(s->layers[i].name, want)) return &s->layers[i];
    return NULL;
}

/* Expected stored shape of weight w of L (th kernels are stored transposed). */
static void expected_shape(const eng_layer *L, int w, bool th, int64_t *d, int *rank)
{
    *rank = L->w[w].rank;
    memcpy(d, L->w[w].shape, sizeof L->w[w].shape);
    if (th && w == 0) { /* (kh,kw,in,out) stored as (out,in,kh,kw) */
        d[0] = L->w[0].shape[3];
        d[1] = L->w[0].shape[2];
        d[2] = L->w[0].shape[0];
        d[3] = L->w[0].shape[1];
    }
}

static json_t *dims_json(const int64_t *d, int rank)
{
    json_t *j = json_array();
    for (int i = 0; i < rank; i++) json_array_append_new(j, json_integer(d[i]));
    return j;
}

/* Append a problem; returns -1 on allocation failure. */
static int add_problem(json_t *problems, json_t *p)
{
    if (!p) return -1;
    return json_array_append_new(problems, p);
}

static void th_transpose(float *dst, const float *src, const int64_t *k /* kh,kw,in,out */)
{
    int64_t kh = k[0], kw = k[1], ci = k[2], co = k[3];
    for (int64_t o = 0; o < co; o++)
        for (int64_t c = 0; c < ci; c++)
            for (int64_t y = 0; y < kh; y++)
                for (int64_t x = 0; x < kw; x++)
                    dst[((y * kw + x) * ci + c) * co + o] = src[((o * ci + c) * kh + y) * kw + x];
}

/* Check and read the weights of layer L into ml->w; problems appended.
 * Returns 0 (maybe with problems: *bad set), or an eng_code on hard errors. */
static eng_code load_layer(const eng_layer *L, const eng_summary *s, int fd, eng_mlayer *ml,
                           json_t *problems, bool *bad, eng_error *err)
{
    const eng_wlayer *wl = eng_map_layer(L, s);
    bool th = eng_layer_th_kernel(L, s);
    if (!wl) {
        if (L->nw == 0) return ENG_OK;
        *bad = true;
        json_t *p = json_pack("{s:s, s:s}", "layer", L->name, "problem", "missing");
        if (is_legacy(s) == false && p) json_object_set_new(p, "file_name", json_string(L->k3name));
        return add_problem(problems, p) ? ENG_ERR_NOMEM : ENG_OK;
    }
    if (wl->ntensors != (size_t)L->nw) {
        *bad = true;
        return add_problem(problems, json_pack("{s:s, s:s, s:i, s:I}", "layer", L->name, "problem",
                                               "weight_count", "expected", L->nw, "found",
                                               (json_int_t)wl->ntensors))
                   ? ENG_ERR_NOMEM
                   : ENG_OK;
    }
    bool layer_ok = true;
    for (int w = 0; w < L->nw; w++) {
        const eng_tensor *t = &wl->tensors[w];
        int64_t d[4];
        int rank;
        expected_shape(L, w, th, d, &rank);
        bool same = t->rank == rank;
        for (int i = 0; same && i < rank; i++) same = t->shape[i] == d[i];
        if (!same) {
            layer_ok = false;
            if (add_problem(problems, json_pack("{s:s, s:s, s:o, s:o}", "layer", L->name, "weight",
                                                L->w[w].name, "expected", dims_json(d, rank),
                                                "found", dims_json(t->shape, t->rank))))
                return ENG_ERR_NOMEM;
        }
        if (t->dtype != ENG_DT_F32 && t->dtype != ENG_DT_F64 && t->dtype != ENG_DT_F16) {
            layer_ok = false;
            if (add_problem(problems,
                            json_pack("{s:s, s:s, s:s, s:s, s:s}", "layer", L->name, "weight",
                                      L->w[w].name, "problem", "dtype", "expected", "float32",
                                      "found", eng_dtype_name(t->dtype))))
                return ENG_ERR_NOMEM;
        }
    }
    if (!layer_ok) {
        *bad = true;
        return ENG_OK;
    }
    for (int w = 0; w < L->nw; w++) {
        const eng_tensor *t = &wl->tensors[w];
        size_t n = 1;
        for (int i = 0; i < L->w[w].rank; i++) n *= (size_t)L->w[w].shape[i];
        float *buf = malloc((n ? n : 1) * sizeof *buf);
        if (!buf)
            return eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory loading layer '%s'",
                                 L->name);
        eng_error rerr = {0};
        if (eng_tensor_read_f32(fd, t, buf, n, &rerr) != ENG_OK) {
            free(buf);
            *bad = true;
            json_t *p = json_pack("{s:s, s:s, s:s, s:s}", "layer", L->name, "weight", L->w[w].name,
                                  "problem", "unreadable", "reason", rerr.msg);
            eng_error_release(&rerr);
            if (add_problem(problems, p)) return ENG_ERR_NOMEM;
            continue;
        }
        size_t nonfinite = 0;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(buf[i])) nonfinite++;
        if (nonfinite) {
            free(buf);
            *bad = true;
            if (add_problem(problems, json_pack("{s:s, s:s, s:s, s:I}", "layer", L->name, "weight",
                                                L->w[w].name, "problem", "nan", "count",
                                                (json_int_t)nonfinite)))
                return ENG_ERR_NOMEM;
            continue;
        }
        if (th && w == 0) {
            float *conv = malloc(n * sizeof *conv);
            if (!conv) {
                free(buf);
                return eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
            }
            th_transpose(conv, buf, L->w[0].shape);
            free(buf);
            buf = conv;
        }
        ml->w[w] = buf;
    }
    return ENG_OK;
}

/* ---- model -------------------------------------------------------------------------- */

void eng_model_free(eng_model *m)
{
    if (!m) return;
    if (m->ml && m->arch)
        for (int i = 0; i < m->arch->nlayers; i++) {
            for (int w = 0; w < ENG_MAX_WEIGHTS; w++) free(m->ml[i].w[w]);
            free(m->ml[i].aux[0]);
            free(m->ml[i].aux[1]);
        }
    free(m->ml);
    eng_arch_free(m->arch);
    free(m);
}

static bool identity_layer(const eng_layer *L)
{
    if (!(L->kind->flags & ENG_K_IDENTITY)) return false;
    if (L->p.flatten_cf) return false;
    return true;
}

static void nhwc(const eng_shape *s, bool cf, eng_shape *o)
{
    *o = *s;
    if (cf && s->rank == 3) {
        o->d[0] = s->d[1];
        o->d[1] = s->d[2];
        o->d[2] = s->d[0];
    }
}

eng_code eng_model_build(const eng_arch *a, const eng_summary *s, int fd, json_t *problems,
                         eng_model **out, eng_error *err)
{
    eng_code rc = ENG_OK;
    bool bad = false;
    eng_model *m = calloc(1, sizeof *m);
    if (!m) return eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
    atomic_fetch_add(&((eng_arch *)a)->refs, 1);
    m->arch = (eng_arch *)a;
    m->ml = calloc((size_t)a->nlayers, sizeof *m->ml);
    if (!m->ml) {
        rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    m->in_size = (size_t)eng_shape_count(&a->in_shape);
    m->in_off = 0;
    m->arena = m->in_size;
    for (int oi = 0; oi < a->nlayers; oi++) {
        int i = a->order[oi];
        const eng_layer *L = &a->layers[i];
        eng_mlayer *ml = &m->ml[i];
        ml->L = L;
        ml->size = (size_t)eng_shape_count(&L->out);
        if (L->kind->flags & ENG_K_INPUT) {
            ml->aliased = true;
            ml->off = m->in_off;
        } else if (identity_layer(L) && L->nin == 1) {
            ml->aliased = true;
            ml->off = L->in[0] < 0 ? m->in_off : m->ml[L->in[0]].off;
        } else {
            ml->off = m->arena;
            m->arena += ml->size;
        }
        /* scratch */
        if (L->kind->flags & ENG_K_SPATIAL) {
            eng_shape in_n;
            nhwc(&L->ish, L->cf, &in_n);
            size_t fixed = L->kind->scratch ? L->kind->scratch(L, &in_n, 1) : 0;
            if (fixed > m->scratch_fixed) m->scratch_fixed = fixed;
            if (L->cf) {
                size_t ps = (size_t)eng_shape_count(&L->ish) + ml->size;
                if (ps > m->scratch_per_sample) m->scratch_per_sample = ps;
            }
        }
        if (s) {
            if ((rc = load_layer(L, s, fd, ml, problems, &bad, err))) goto out;
        } else if (L->nw) {
            bad = true;
        }
    }
    m->out_size = m->ml[a->output].size;
    if (bad) {
        rc = ENG_ERR_WEIGHTS;
        goto out;
    }
    for (int i = 0; i < a->nlayers; i++) {
        char why[ENG_WHY] = "";
        if (a->layers[i].kind->load && a->layers[i].kind->load(&m->ml[i], why) < 0) {
            rc = eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "layer '%s': %s", a->layers[i].name, why);
            goto out;
        }
    }
    *out = m;
    m = NULL;
out:
    eng_model_free(m);
    return rc;
}

/* "3 problems: layer 'dense': kernel shape [5408,12], expected [5408,10]; …" */
void eng_problems_message(const json_t *problems, char *msg, size_t n)
{
    size_t np = json_array_size(problems), len;
    len = (size_t)snprintf(msg, n, "%zu problem%s: ", np, np == 1 ? "" : "s");
    for (size_t i = 0; i < np && len < n; i++) {
        const json_t *p = json_array_get(problems, i);
        const char *layer = json_string_value(json_object_get(p, "layer"));
        const char *weight = json_string_value(json_object_get(p, "weight"));
        const char *kind = json_string_value(json_object_get(p, "problem"));
        char part[200];
        if (!kind) {
            char *e = json_dumps(json_object_get(p, "expected"), JSON_COMPACT);
            char *f = json_dumps(json_object_get(p, "found"), JSON_COMPACT);
            snprintf(part, sizeof part, "layer '%s': %s shape %s, expected %s", layer ? layer : "?",
                     weight ? weight : "?", f ? f : "?", e ? e : "?");
            free(e);
            free(f);
        } else if (!strcmp(kind, "missing")) {
            snprintf(part, sizeof part, "layer '%s' missing from the file", layer ? layer : "?");
        } else if (!strcmp(kind, "unexpected")) {
            snprintf(part, sizeof part, "layer '%s' in the file is not in the architecture",
                     layer ? layer : "?");
        } else if (!strcmp(kind, "weight_count")) {
            snprintf(part, sizeof part, "layer '%s': %lld weights, expected %lld",
                     layer ? layer : "?",
                     (long long)json_integer_value(json_object_get(p, "found")),
                     (long long)json_integer_value(json_object_get(p, "expected")));
        } else if (!strcmp(kind, "nan")) {
            snprintf(part, sizeof part, "layer '%s': %s%s%s has NaN/Inf values",
                     layer ? layer : "?", weight ? "weight '" : "output", weight ? weight : "",
                     weight ? "'" : "");
        } else if (!strcmp(kind, "dtype")) {
            snprintf(part, sizeof part, "layer '%s': %s dtype %s, expected float32",
                     layer ? layer : "?", weight ? weight : "?",
                     json_string_value(json_object_get(p, "found")));
        } else {
            snprintf(part, sizeof part, "layer '%s': %s", layer ? layer : "?", kind);
        }
        len += (size_t)snprintf(msg + len, n - len, "%s%s", i ? "; " : "", part);
    }
}

eng_code eng_model_load(const eng_arch *a, const eng_summary *s, int fd, eng_model **out,
                        eng_error *err)
{
    if (!a || !s || !out)
        return eng_arch_fail(err, ENG_ERR_INTERNAL, NULL, "eng_model_load: NULL argument");
    json_t *problems = json_array();
    if (!problems) return eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory");
    eng_code rc = eng_model_build(a, s, fd, problems, out, err);
    if (rc == ENG_ERR_WEIGHTS && (!err || err->code == ENG_OK)) {
        char msg[sizeof err->msg];
        eng_problems_message(problems, msg, sizeof msg);
        return eng_arch_fail(err, ENG_ERR_WEIGHTS, json_pack("{s:o}", "problems", problems), "%s",
                             msg);
    }
    json_decref(problems);
    return rc;
}

size_t eng_model_input_size(const eng_model *m)
{
    return m ? m->in_size : 0;
}
size_t eng_model_output_size(const eng_model *m)
{
    return m ? m->out_size : 0;
}

eng_workspace *eng_workspace_new(void)
{
    return calloc(1, sizeof(eng_workspace));
}

void eng_workspace_free(eng_workspace *ws)
{
    if (!ws) return;
    free(ws->buf);
    free(ws);
}

/* Conv2D and Dense kinds whose kernel was packed at load (aux[0]) apply a
 * ReLU inside their GEMM's store (layer_conv.c, layer_dense.c, gemm.c):
 * a second pass over the output would only cost memory traffic. */
static bool relu_fused(const eng_mlayer *ml)
{
    static const char *const fusing[] = {"Conv2D", "Convolution2D", "AtrousConvolution2D", "Dense"};
    if (ml->L->p.act != ENG_ACT_RELU || !ml->aux[0]) return false;
    for (size_t i = 0; i < sizeof fusing / sizeof fusing[0]; i++)
        if (!strcmp(ml->L->kind->keras_class, fusing[i])) return true;
    return false;
}

/* (C, H, W) <-> (H, W, C) for `batch` samples. */
static void to_hwc(float *dst, const float *src, const eng_shape *chw, size_t batch)
{
    size_t C = (size_t)chw->d[0], HW = (size_t)chw->d[1] * chw->d[2];
    for (size_t b = 0; b < batch; b++, src += C * HW, dst += C * HW)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) dst[i * C + c] = src[c * HW + i];
}

static void to_chw(float *dst, const float *src, const eng_shape *chw, size_t batch)
{
    size_t C = (size_t)chw->d[0], HW = (size_t)chw->d[1] * chw->d[2];
    for (size_t b = 0; b < batch; b++, src += C * HW, dst += C * HW)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++) dst[c * HW + i] = src[i * C + c];
}

#ifdef STRATA_ENG_PROFILE
/* Benchmark-only per-layer timing (bench/engine_bench.c). Compiled in only
 * with -DSTRATA_ENG_PROFILE: a process-wide table, not thread-safe, which is
 * why it is never in the library strata links. */
typedef struct eng_prof_layer {
    const char *name, *cls;
    double ns;
    unsigned long calls, samples;
    long gm, gn, gk; /* GEMM shape per sample the layer lowers to, or 0 */
} eng_prof_layer;
static eng_prof_layer prof[ENG_MAX_LAYERS];
static int prof_n;
int eng_prof_get(const eng_prof_layer **out);
void eng_prof_reset(void);
int eng_prof_get(const eng_prof_layer **out)
{
    *out = prof;
    return prof_n;
}
void eng_prof_reset(void)
{
    for (int i = 0; i < prof_n; i++) prof[i].ns = prof[i].calls = prof[i].samples = 0;
}
static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static void prof_add(int i, const eng_layer *L, const eng_fwd *f, double ns)
{
    if (i >= ENG_MAX_LAYERS) return;
    if (i >= prof_n) prof_n = i + 1;
    eng_prof_layer *p = &prof[i];
    p->name = L->name;
    p->cls = L->cls;
    p->ns += ns;
    p->calls++;
    p->samples += f->batch;
    if (L->nw && L->w[0].rank == 4 && strstr(L->cls, "Conv") && !strstr(L->cls, "Depthwise") &&
        !strstr(L->cls, "Separable") && !strstr(L->cls, "Transpose")) {
        p->gm = (long)(f->outs.d[0] * f->outs.d[1]);
        p->gn = (long)f->outs.d[2];
        p->gk = (long)(L->p.kh * L->p.kw * f->in0.d[2]);
    } else if (L->nw && !strcmp(L->kind->keras_class, "Dense")) {
        p->gk = (long)f->in0.d[f->in0.rank - 1];
        p->gn = L->p.units;
        p->gm = (long)(eng_shape_count(&f->in0) / p->gk);
    }
}
#endif

/* Samples per pass through the layers: every layer's output of a pass
 * should stay in the CPU's L2 cache (budget below), rather than streaming
 * the whole batch through memory layer after layer (a batch of 64 ran
 * 1.7x slower per image than a batch of 1 that way: bench/README.md).
 * Layers never mix samples, so the result is the same. At least one. */
#define ENG_PASS_BYTES ((size_t)1 << 20)

static size_t pass_size(const eng_model *m, size_t batch)
{
    size_t per = (m->arena + m->scratch_per_sample) * sizeof(float);
    size_t n = per ? ENG_PASS_BYTES / per : batch;
    return n < 1 ? 1 : n > batch ? batch : n;
}

static void predict_pass(const eng_model *m, float *buf, const float *in, size_t batch, float *out);

eng_code eng_model_predict(const eng_model *m, eng_workspace *ws, const float *in, size_t batch,
                           float *out, eng_error *err)
{
    if (!m || !ws || !in || !out)
        return eng_arch_fail(err, ENG_ERR_INTERNAL, NULL, "eng_model_predict: NULL argument");
    if (batch == 0) return eng_arch_fail(err, ENG_ERR_INPUT, NULL, "empty batch");
    size_t per = m->arena + m->scratch_per_sample;
    if (batch > (SIZE_MAX / sizeof(float) - m->scratch_fixed) / (per ? per : 1) ||
        batch * per > (size_t)1 << 34)
        return eng_arch_fail(err, ENG_ERR_LIMIT, NULL, "batch of %zu is too large for this model",
                             batch);
    size_t pass = pass_size(m, batch);
    size_t need = pass * per + m->scratch_fixed;
    if (need > ws->cap) {
        float *nb = realloc(ws->buf, need * sizeof *nb);
        if (!nb)
            return eng_arch_fail(err, ENG_ERR_NOMEM, NULL, "out of memory for a batch of %zu",
                                 batch);
        ws->buf = nb;
        ws->cap = need;
    }
    for (size_t b = 0; b < batch; b += pass) {
        size_t n = batch - b < pass ? batch - b : pass;
        predict_pass(m, ws->buf, in + b * m->in_size, n, out + b * m->out_size);
    }
    return ENG_OK;
}

/* All layers on `batch` samples; buf holds batch * (arena + scratch per
 * sample) + scratch_fixed floats. */
static void predict_pass(const eng_model *m, float *buf, const float *in, size_t batch, float *out)
{
    const eng_arch *a = m->arch;
    float *arena = buf, *scratch = buf + batch * m->arena;
    memcpy(arena + m->in_off * batch, in, batch * m->in_size * sizeof *in);
    for (int oi = 0; oi < a->nlayers; oi++) {
        int i = a->order[oi];
        const eng_mlayer *ml = &m->ml[i];
        const eng_layer *L = ml->L;
        if (ml->aliased) continue;
#ifdef STRATA_ENG_PROFILE
        double prof_t0 = prof_now();
#endif
        eng_fwd f;
        memset(&f, 0, sizeof f);
        f.ml = ml;
        f.L = L;
        f.nin = L->nin;
        f.batch = batch;
        for (int k = 0; k < L->nin; k++) {
            int j = L->in[k];
            f.in[k] = arena + (j < 0 ? m->in_off : m->ml[j].off) * batch;
            f.ish[k] = j < 0 ? &a->in_shape : &a->layers[j].out;
        }
        float *dst = arena + ml->off * batch;
        bool cf = (L->kind->flags & ENG_K_SPATIAL) && L->cf;
        if (cf) {
            float *t_in = scratch, *t_out = scratch + batch * (size_t)eng_shape_count(&L->ish);
            to_hwc(t_in, f.in[0], &L->ish, batch);
            f.in[0] = t_in;
            nhwc(&L->ish, true, &f.in0);
            nhwc(&L->out, true, &f.outs);
            f.out = L->out.rank == 3 ? t_out : dst;
            f.scratch = t_out + batch * ml->size;
            L->kind->forward(&f);
            if (L->out.rank == 3) to_chw(dst, t_out, &L->out, batch);
        } else {
            f.in0 = L->nin ? *f.ish[0] : L->out;
            f.outs = L->out;
            f.out = dst;
            f.scratch = scratch;
            L->kind->forward(&f);
        }
        if (L->p.act != ENG_ACT_LINEAR && !relu_fused(ml))
            eng_act_apply(dst, batch * ml->size, (size_t)L->out.d[L->out.rank - 1], L->p.act);
#ifdef STRATA_ENG_PROFILE
        prof_add(i, L, &f, prof_now() - prof_t0);
#endif
    }
    memcpy(out, arena + m->ml[a->output].off * batch, batch * m->out_size * sizeof *out);
}
