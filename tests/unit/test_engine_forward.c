/* tests/unit/test_engine_forward.c — hand-computed forward cases for the
 * semantics the golden vectors do not pin down.
 *
 * Each case builds a tiny weight file (raw float32 in a temp file) with an
 * in-memory eng_summary, and compares eng_model_predict with numbers worked
 * out by hand from the Keras definitions:
 * - hard_sigmoid: Keras 1/2 clip(0.2x + 0.5), Keras 3 clip(x/6 + 0.5);
 * - ReLU layer: x > threshold -> min(x, max_value), else slope * (x - threshold);
 * - Keras 1 'th' Conv2D kernels stored (out,in,kh,kw) are transposed when the
 *   file has no keras_version (Keras 1), refused as a shape problem when the
 *   file says Keras 2;
 * - channels_first Conv2D + Flatten(data_format='channels_first') flattens
 *   in (H,W,C) order, as Keras 2 does;
 * - MaxPooling2D 2x2/2 and 3x3/2 on 16 channels (the AVX-512 path) and 3
 *   channels (the scalar path): the max of each window, NaN anywhere in a
 *   window gives NaN (TensorFlow's max propagates NaN), -inf stays -inf.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "check.h"

typedef struct tmpw {
    char path[64];
    int fd;
    eng_summary *s;
} tmpw;

static void tmpw_init(tmpw *t, eng_format fmt, const char *keras_version)
{
    snprintf(t->path, sizeof t->path, "/tmp/strata_fwd_XXXXXX");
    t->fd = mkstemp(t->path);
    t->s = calloc(1, sizeof *t->s);
    t->s->format = fmt;
    t->s->keras_version = keras_version ? strdup(keras_version) : NULL;
}

static void tmpw_layer(tmpw *t, const char *name)
{
    eng_summary *s = t->s;
    s->layers = realloc(s->layers, (s->nlayers + 1) * sizeof *s->layers);
    memset(&s->layers[s->nlayers], 0, sizeof *s->layers);
    s->layers[s->nlayers].name = strdup(name);
    s->nlayers++;
}

/* Append a float32 tensor to the last layer. */
static void tmpw_tensor(tmpw *t, const float *data, int rank, const int64_t *shape)
{
    eng_wlayer *l = &t->s->layers[t->s->nlayers - 1];
    l->tensors = realloc(l->tensors, (l->ntensors + 1) * sizeof *l->tensors);
    eng_tensor *x = &l->tensors[l->ntensors++];
    memset(x, 0, sizeof *x);
    uint64_t n = 1;
    for (int i = 0; i < rank; i++) {
        x->shape[i] = shape[i];
        n *= (uint64_t)shape[i];
    }
    x->rank = rank;
    x->dtype = ENG_DT_F32;
    x->name = strdup("w");
    x->path = strdup("w");
    x->offset = (uint64_t)lseek(t->fd, 0, SEEK_END);
    x->nbytes = n * 4;
    CHECK(write(t->fd, data, n * 4) == (ssize_t)(n * 4), "write tensor");
    t->s->file_size = x->offset + x->nbytes;
}

static void tmpw_free(tmpw *t)
{
    eng_summary_free(t->s);
    close(t->fd);
    unlink(t->path);
}

/* Parse, load, predict one sample; returns the code of the first failing step. */
static eng_code predict(const char *json, tmpw *t, const float *in, float *out, size_t nout,
                        eng_error *err)
{
    eng_arch *a = NULL;
    eng_model *m = NULL;
    eng_workspace *ws = eng_workspace_new();
    eng_code rc = eng_arch_parse(json, strlen(json), &a, err);
    if (!rc) rc = eng_model_load(a, t->s, t->fd, &m, err);
    if (!rc) {
        CHECK(eng_model_output_size(m) == nout, "output size %zu, expected %zu",
              eng_model_output_size(m), nout);
        if (eng_model_output_size(m) == nout) rc = eng_model_predict(m, ws, in, 1, out, err);
    }
    eng_model_free(m);
    eng_arch_free(a);
    eng_workspace_free(ws);
    return rc;
}

static void expect_close(const char *tag, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK(fabsf(got[i] - want[i]) <= 1e-6f + 1e-6f * fabsf(want[i]),
              "%s[%zu]: %.9g, expected %.9g", tag, i, got[i], want[i]);
}

static void test_hard_sigmoid(void)
{
    const char *k2 =
        "{\"class_name\":\"Sequential\",\"keras_version\":\"2.4.0\",\"config\":[{\"class_name\":\"Dense\","
        "\"config\":{\"name\":\"d\",\"units\":1,\"activation\":\"hard_sigmoid\",\"batch_input_shape\":[null,1]}}]}";
    const char *k3 =
        "{\"module\":\"keras\",\"class_name\":\"Sequential\",\"config\":{\"name\":\"s\",\"layers\":["
        "{\"module\":\"keras.layers\",\"class_name\":\"InputLayer\",\"config\":{\"batch_shape\":[null,1],\"name\":\"i\"}},"
        "{\"module\":\"keras.layers\",\"class_name\":\"Dense\",\"config\":{\"name\":\"d\",\"units\":1,"
        "\"activation\":\"hard_sigmoid\"}}]}}";
    const float kern[] = {1.0f}, bias[] = {0.0f}, in[] = {1.5f};
    const int64_t s11[] = {1, 1}, s1[] = {1};
    float out = 0;
    eng_error err = {0};
    tmpw t;
    tmpw_init(&t, ENG_FMT_KERAS2_WEIGHTS, "2.4.0");
    tmpw_layer(&t, "d");
    tmpw_tensor(&t, kern, 2, s11);
    tmpw_tensor(&t, bias, 1, s1);
    CHECK(predict(k2, &t, in, &out, 1, &err) == ENG_OK, "k2: %s", err.msg);
    CHECK(fabsf(out - 0.8f) < 1e-6f, "Keras 2 hard_sigmoid(1.5) = %g, expected 0.8", out);
    tmpw_free(&t);
    eng_error_release(&err);
    /* Keras 3 weights: layers/dense/vars/0,1 */
    tmpw_init(&t, ENG_FMT_KERAS3_WEIGHTS, NULL);
    tmpw_layer(&t, "dense");
    tmpw_tensor(&t, kern, 2, s11);
    tmpw_tensor(&t, bias, 1, s1);
    CHECK(predict(k3, &t, in, &out, 1, &err) == ENG_OK, "k3: %s", err.msg);
    CHECK(fabsf(out - 0.75f) < 1e-6f, "Keras 3 hard_sigmoid(1.5) = %g, expected 0.75", out);
    tmpw_free(&t);
    eng_error_release(&err);
}

static void test_relu_layer(void)
{
    const char *j =
        "{\"class_name\":\"Sequential\",\"keras_version\":\"2.4.0\",\"config\":[{\"class_name\":\"ReLU\","
        "\"config\":{\"name\":\"r\",\"max_value\":1.0,\"negative_slope\":0.125,\"threshold\":0.5,"
        "\"batch_input_shape\":[null,5]}}]}";
    const float in[] = {-1.0f, 0.5f, 0.75f, 2.0f, 1.0f};
    const float want[] = {-0.1875f, 0.0f, 0.75f, 1.0f, 1.0f};
    float out[5];
    eng_error err = {0};
    tmpw t;
    tmpw_init(&t, ENG_FMT_KERAS2_WEIGHTS, "2.4.0");
    CHECK(predict(j, &t, in, out, 5, &err) == ENG_OK, "relu: %s", err.msg);
    expect_close("relu", out, want, 5);
    tmpw_free(&t);
    eng_error_release(&err);
}

/* Keras 1 'th': input (C=1, H=1, W=3) = [1,2,3]; 2 filters of 1x2:
 * f0 = [1,2], f1 = [10,20], bias [0,100] -> (2,1,2) = [[5,8],[150,180]]. */
static void test_th_conv(void)
{
    const char *j =
        "{\"class_name\":\"Sequential\",\"config\":[{\"class_name\":\"Convolution2D\",\"config\":"
        "{\"name\":\"c\",\"nb_filter\":2,\"nb_row\":1,\"nb_col\":2,\"border_mode\":\"valid\","
        "\"dim_ordering\":\"th\",\"subsample\":[1,1],\"bias\":true,\"activation\":\"linear\","
        "\"batch_input_shape\":[null,1,1,3]}},{\"class_name\":\"Flatten\",\"config\":{\"name\":\"f\"}}]}";
    const float kern_th[] = {1, 2, 10, 20}; /* (out=2, in=1, kh=1, kw=2) */
    const float bias[] = {0, 100}, in[] = {1, 2, 3}, want[] = {5, 8, 150, 180};
    const int64_t sk[] = {2, 1, 1, 2}, sb[] = {2};
    float out[4];
    eng_error err = {0};
    tmpw t;
    tmpw_init(&t, ENG_FMT_KERAS2_WEIGHTS, NULL); /* Keras 1 save_weights: no keras_version */
    tmpw_layer(&t, "c");
    tmpw_tensor(&t, kern_th, 4, sk);
    tmpw_tensor(&t, bias, 1, sb);
    CHECK(predict(j, &t, in, out, 4, &err) == ENG_OK, "th: %s", err.msg);
    expect_close("th conv", out, want, 4);
    tmpw_free(&t);
    eng_error_release(&err);

    /* the same bytes in a file that says Keras 2: kernel must be (1,2,1,2) */
    tmpw_init(&t, ENG_FMT_KERAS2_WEIGHTS, "2.1.0");
    tmpw_layer(&t, "c");
    tmpw_tensor(&t, kern_th, 4, sk);
    tmpw_tensor(&t, bias, 1, sb);
    CHECK(predict(j, &t, in, out, 4, &err) == ENG_ERR_WEIGHTS,
          "th kernel accepted from a Keras 2 file");
    const json_t *p = json_array_get(json_object_get(err.details, "problems"), 0);
    char *d = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(
        d &&
            !strcmp(
                d,
                "{\"expected\":[1,2,1,2],\"found\":[2,1,1,2],\"layer\":\"c\",\"weight\":\"kernel\"}"),
        "problem %s", d ? d : "(none)");
    free(d);
    tmpw_free(&t);
    eng_error_release(&err);
}

/* Keras 2 channels_first Conv2D then Flatten(channels_first): (H,W,C) order. */
static void test_cf_flatten(void)
{
    const char *j =
        "{\"class_name\":\"Sequential\",\"keras_version\":\"2.2.4\",\"config\":{\"name\":\"s\",\"layers\":["
        "{\"class_name\":\"Conv2D\",\"config\":{\"name\":\"c\",\"filters\":2,\"kernel_size\":[1,2],"
        "\"data_format\":\"channels_first\",\"padding\":\"valid\",\"use_bias\":true,"
        "\"batch_input_shape\":[null,1,1,3]}},"
        "{\"class_name\":\"Flatten\",\"config\":{\"name\":\"f\",\"data_format\":\"channels_first\"}}]}}";
    const float kern[] = {1, 10, 2, 20}; /* (kh=1, kw=2, in=1, out=2) */
    const float bias[] = {0, 100}, in[] = {1, 2, 3}, want[] = {5, 150, 8, 180};
    const int64_t sk[] = {1, 2, 1, 2}, sb[] = {2};
    float out[4];
    eng_error err = {0};
    tmpw t;
    tmpw_init(&t, ENG_FMT_KERAS2_WEIGHTS, "2.2.4");
    tmpw_layer(&t, "c");
    tmpw_tensor(&t, kern, 4, sk);
    tmpw_tensor(&t, bias, 1, sb);
    CHECK(predict(j, &t, in, out, 4, &err) == ENG_OK, "cf: %s", err.msg);
    expect_close("cf flatten", out, want, 4);
    tmpw_free(&t);
    eng_error_release(&err);
}

/* Max pooling against the definition, computed here in the plainest way. */
static void test_maxpool_case(int C, int k, int stride)
{
    enum { H = 7, W = 6 };
    char j[512];
    snprintf(
        j, sizeof j,
        "{\"class_name\":\"Sequential\",\"keras_version\":\"2.4.0\",\"config\":[{\"class_name\":"
        "\"MaxPooling2D\",\"config\":{\"name\":\"p\",\"pool_size\":[%d,%d],\"strides\":[%d,%d],"
        "\"padding\":\"valid\",\"batch_input_shape\":[null,%d,%d,%d]}}]}",
        k, k, stride, stride, H, W, C);
    const int Ho = (H - k) / stride + 1, Wo = (W - k) / stride + 1;
    size_t nin = (size_t)H * W * C, nout = (size_t)Ho * Wo * C;
    float *in = malloc(nin * sizeof *in), *out = malloc(nout * sizeof *out),
          *want = malloc(nout * sizeof *want);
    unsigned seed = 12345u + (unsigned)C;
    for (size_t i = 0; i < nin; i++) {
        seed = seed * 1103515245u + 12345u;
        in[i] = (float)((int)(seed >> 16) % 2001 - 1000) / 37.0f;
    }
    in[((size_t)1 * W + 1) * C + 0] = NAN;       /* in the first window */
    in[((size_t)3 * W + 2) * C + (C - 1)] = NAN; /* a middle window, last channel */
    in[((size_t)5 * W + 4) * C + C / 2] = -INFINITY;
    for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++)
            for (int c = 0; c < C; c++) {
                float m = -INFINITY;
                int nan = 0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        float v = in[((size_t)(oy * stride + ky) * W + (ox * stride + kx)) * C + c];
                        if (isnan(v)) nan = 1;
                        else if (v > m) m = v;
                    }
                want[((size_t)oy * Wo + ox) * C + c] = nan ? NAN : m;
            }
    eng_error err = {0};
    tmpw t;
    tmpw_init(&t, ENG_FMT_KERAS2_WEIGHTS, "2.4.0");
    CHECK(predict(j, &t, in, out, nout, &err) == ENG_OK, "maxpool C=%d: %s", C, err.msg);
    int bad = 0, nans = 0;
    for (size_t i = 0; i < nout; i++) {
        if (isnan(want[i])) nans++;
        if (isnan(want[i]) ? !isnan(out[i]) : out[i] != want[i]) bad++;
    }
    CHECK(nans >= 2, "the case has NaN windows (%d)", nans);
    CHECK(bad == 0, "maxpool C=%d k=%d s=%d: %d of %zu outputs differ from the definition", C, k,
          stride, bad, nout);
    tmpw_free(&t);
    eng_error_release(&err);
    free(in);
    free(out);
    free(want);
}

static void test_maxpool(void)
{
    const int cs[] = {16, 32, 3};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        test_maxpool_case(cs[i], 2, 2);
        test_maxpool_case(cs[i], 3, 2);
    }
}

int main(void)
{
    test_hard_sigmoid();
    test_relu_layer();
    test_th_conv();
    test_cf_flatten();
    test_maxpool();
    return check_done();
}
