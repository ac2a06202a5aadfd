/* tests/unit/test_engine_validate.c — eng_validate and eng_model_load on the
 * real Keras fixtures.
 *
 * Every fixture weight file with a matching architecture is accepted (model
 * JSON pairs, full-model files against their embedded model_config, the
 * .keras archive against its config.json, Keras 1 'th' kernels); weights of
 * another model are refused with every problem listed; a NaN-poisoned copy is
 * refused with "nan". Cross-checks against independent sources: the same
 * weights saved as Keras 3 .weights.h5 and as legacy .h5 give the same probe
 * output; per-layer digests equal the reader's eng_summary_layers_json ones;
 * a batch predicts the same as its rows one by one.
 */
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "check.h"

static char fx[4096];


static eng_arch *arch_from(const char *json_file, const eng_summary *embedded)
{
    char path[4400];
    size_t len = 0;
    char *text = NULL;
    if (json_file) {
        snprintf(path, sizeof path, "%s/keras/%s", fx, json_file);
        text = check_slurp(path, &len);
    } else if (embedded && embedded->model_config) {
        text = strdup(embedded->model_config);
        len = strlen(text);
    }
    if (!text) return NULL;
    eng_arch *a = NULL;
    eng_error err = {0};
    CHECK(eng_arch_parse(text, len, &a, &err) == ENG_OK, "arch %s: %s",
          json_file ? json_file : "(embedded)", err.msg);
    eng_error_release(&err);
    free(text);
    return a;
}

typedef struct run {
    eng_code rc;
    json_t *report, *layers, *details;
    char msg[512];
} run;

static run validate_path(const char *path, const char *json_file)
{
    run r = {0};
    eng_summary *s = NULL;
    eng_error err = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0 || eng_summary_read(path, &s, &err) != ENG_OK) {
        CHECK(0, "read %s: %s", path, err.msg);
        r.rc = ENG_ERR_IO;
        goto out;
    }
    eng_arch *a = arch_from(json_file, s);
    if (!a) {
        r.rc = ENG_ERR_ARCH;
        goto out;
    }
    r.rc = eng_validate(a, s, fd, &r.report, &r.layers, &err);
    snprintf(r.msg, sizeof r.msg, "%s", err.msg);
    r.details = err.details;
    err.details = NULL;
    eng_arch_free(a);
out:
    eng_summary_free(s);
    eng_error_release(&err);
    if (fd >= 0) close(fd);
    return r;
}

static run validate_fx(const char *weights, const char *json_file)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/keras/%s", fx, weights);
    return validate_path(path, json_file);
}

static void run_free(run *r)
{
    json_decref(r->report);
    json_decref(r->layers);
    json_decref(r->details);
}

static void expect_pass(const char *weights, const char *json_file, long long params)
{
    run r = validate_fx(weights, json_file);
    CHECK(r.rc == ENG_OK, "%s vs %s: %s", weights, json_file ? json_file : "embedded config",
          r.msg);
    if (r.rc == ENG_OK) {
        CHECK(!strcmp(json_string_value(json_object_get(r.report, "status")), "passed"),
              "%s status", weights);
        const json_t *po = json_object_get(r.report, "probe_output");
        CHECK(json_array_size(po) > 0 && json_array_size(po) <= 16, "%s probe_output size %zu",
              weights, json_array_size(po));
        long long sum = 0;
        size_t i;
        const json_t *l;
        json_array_foreach (r.layers, i, l) {
            sum += json_integer_value(json_object_get(l, "params"));
            const char *d = json_string_value(json_object_get(l, "digest"));
            if (json_array_size(json_object_get(l, "weights")))
                CHECK(d && !strncmp(d, "sha256:", 7) && strlen(d) == 71, "%s: digest of %s",
                      weights, json_string_value(json_object_get(l, "name")));
            CHECK(json_string_value(json_object_get(l, "class")) != NULL, "%s: class", weights);
        }
        CHECK(sum == params, "%s: layers params %lld, expected %lld", weights, sum, params);
    }
    run_free(&r);
}

static bool has_problem(const json_t *details, const char *layer, const char *weight,
                        const char *problem, const char *expected, const char *found)
{
    size_t i;
    const json_t *p;
    json_array_foreach (json_object_get(details, "problems"), i, p) {
        const char *l = json_string_value(json_object_get(p, "layer"));
        const char *w = json_string_value(json_object_get(p, "weight"));
        const char *k = json_string_value(json_object_get(p, "problem"));
        if (!l || strcmp(l, layer)) continue;
        if (weight && (!w || strcmp(w, weight))) continue;
        if (problem && (!k || strcmp(k, problem))) continue;
        if (!problem && k) continue;
        if (expected) {
            char *e = json_dumps(json_object_get(p, "expected"), JSON_COMPACT);
            char *f = json_dumps(json_object_get(p, "found"), JSON_COMPACT);
            bool ok = e && f && !strcmp(e, expected) && !strcmp(f, found);
            free(e);
            free(f);
            if (!ok) continue;
        }
        return true;
    }
    return false;
}

static void test_accepts(void)
{
    expect_pass("k2_2.0.0_weights_conv2d_dropout.h5", "k2_2.0.0_conv2d_dropout.model.json", 1310);
    expect_pass("k2_2.0.6_weights_cnn_bn_dropout.h5", "k2_2.0.6_cnn_bn_dropout.model.json", 891);
    expect_pass("k2_2.1.2_weights_mnist_cnn.h5", "k2_2.1.2_mnist_cnn.model.json", 59933);
    expect_pass("k3_3.10.0_mnist_cnn.weights.h5", "k3_3.10.0_mnist_cnn.model.json", 179926);
    expect_pass("k3_3.10.0_legacy_full_mnist_cnn.h5", "k3_3.10.0_mnist_cnn.model.json", 179926);
    expect_pass("k1_1.0.4_weights_cifar10_cnn_th.h5", "k1_1.0.4_cifar10_cnn_th.model.json", 890410);
    /* full-model files against their own model_config */
    expect_pass("k1_1.1.2_full_cnn_tf.h5", NULL, 64);
    expect_pass("k1_1.2.2_full_dense_bn_conv2d_tf.h5", NULL, 49985);
    expect_pass("k2_2.1.3_full_cnn_bn.h5", NULL, 79);
    expect_pass("k3_3.10.0_legacy_full_mnist_cnn.h5", NULL, 179926);
    expect_pass("tfk_2.2.4-tf_full_depthwise_cnn.h5", NULL, 110);
    expect_pass("k3_3.11.3_mnist_cnn.keras", NULL, 21898);

    /* Keras 1 weights-only file against the same model's embedded config */
    char path[4400];
    snprintf(path, sizeof path, "%s/keras/k1_1.1.2_full_cnn_tf.h5", fx);
    eng_summary *full = NULL;
    eng_error err = {0};
    if (eng_summary_read(path, &full, &err) == ENG_OK) {
        eng_arch *a = arch_from(NULL, full);
        snprintf(path, sizeof path, "%s/keras/k1_1.1.2_weights_cnn_tf.h5", fx);
        eng_summary *w = NULL;
        int fd = open(path, O_RDONLY);
        if (a && fd >= 0 && eng_summary_read(path, &w, &err) == ENG_OK) {
            json_t *rep = NULL, *ls = NULL;
            CHECK(eng_validate(a, w, fd, &rep, &ls, &err) == ENG_OK, "k1 weights-only: %s",
                  err.msg);
            json_decref(rep);
            json_decref(ls);
        }
        eng_summary_free(w);
        eng_arch_free(a);
        if (fd >= 0) close(fd);
    }
    eng_summary_free(full);
    eng_error_release(&err);
}

/* Same weights, Keras 3 native and legacy layouts: identical probe outputs. */
static void test_same_weights_same_probe(void)
{
    run a = validate_fx("k3_3.10.0_mnist_cnn.weights.h5", "k3_3.10.0_mnist_cnn.model.json");
    run b = validate_fx("k3_3.10.0_legacy_full_mnist_cnn.h5", "k3_3.10.0_mnist_cnn.model.json");
    if (a.rc == ENG_OK && b.rc == ENG_OK) {
        CHECK(json_equal(json_object_get(a.report, "probe_output"),
                         json_object_get(b.report, "probe_output")),
              "probe differs between .weights.h5 and legacy .h5");
        /* the layer digests are over the same bytes too */
        size_t i;
        const json_t *l;
        json_array_foreach (a.layers, i, l) {
            const json_t *m = json_array_get(b.layers, i);
            CHECK(json_equal(json_object_get(l, "digest"), json_object_get(m, "digest")),
                  "digest of %s differs", json_string_value(json_object_get(l, "name")));
        }
        double s = 0;
        const json_t *v;
        json_array_foreach (json_object_get(a.report, "probe_output"), i, v)
            s += json_real_value(v);
        CHECK(fabs(s - 1.0) < 1e-4, "softmax probe sums to %g", s);
    }
    run_free(&a);
    run_free(&b);
}

static void test_refusals(void)
{
    /* mnist weights vs the conv2d_dropout architecture */
    run r = validate_fx("k2_2.1.2_weights_mnist_cnn.h5", "k2_2.0.0_conv2d_dropout.model.json");
    CHECK(r.rc == ENG_ERR_WEIGHTS, "mnist weights accepted for conv2d_dropout (%d %s)", r.rc,
          r.msg);
    CHECK(has_problem(r.details, "conv2d_1", "kernel", NULL, "[3,3,1,2]", "[5,5,1,30]"),
          "conv2d_1 kernel problem");
    CHECK(has_problem(r.details, "conv2d_1", "bias", NULL, "[2]", "[30]"), "conv2d_1 bias problem");
    CHECK(has_problem(r.details, "dense_1", "kernel", NULL, "[128,10]", "[375,128]"),
          "dense_1 kernel problem");
    CHECK(has_problem(r.details, "conv2d_2", NULL, "unexpected", NULL, NULL),
          "conv2d_2 unexpected");
    CHECK(has_problem(r.details, "dense_3", NULL, "unexpected", NULL, NULL), "dense_3 unexpected");
    CHECK(json_array_size(json_object_get(r.details, "problems")) == 7, "problem count %zu: %s",
          json_array_size(json_object_get(r.details, "problems")), r.msg);
    CHECK(!strncmp(r.msg, "7 problems: ", 12) &&
              strstr(r.msg, "layer 'conv2d_1': kernel shape [5,5,1,30], expected [3,3,1,2]"),
          "message: %s", r.msg);
    CHECK(r.report == NULL && r.layers == NULL, "outputs set on failure");
    run_free(&r);

    /* conv2d_dropout weights vs the mnist architecture: missing layers */
    r = validate_fx("k2_2.0.0_weights_conv2d_dropout.h5", "k2_2.1.2_mnist_cnn.model.json");
    CHECK(r.rc == ENG_ERR_WEIGHTS, "conv2d_dropout weights accepted for mnist");
    CHECK(has_problem(r.details, "conv2d_2", NULL, "missing", NULL, NULL), "conv2d_2 missing");
    CHECK(has_problem(r.details, "dense_3", NULL, "missing", NULL, NULL), "dense_3 missing");
    run_free(&r);

    /* Keras 3 naming: the .keras weights (8 filters) vs the 3.10.0 JSON (32) */
    r = validate_fx("k3_3.11.3_mnist_cnn.keras", "k3_3.10.0_mnist_cnn.model.json");
    CHECK(r.rc == ENG_ERR_WEIGHTS, ".keras weights accepted for another arch");
    CHECK(has_problem(r.details, "conv2d", "kernel", NULL, "[3,3,1,32]", "[3,3,1,8]"),
          "k3 conv2d kernel: %s", r.msg);
    CHECK(has_problem(r.details, "conv2d_1", NULL, "missing", NULL, NULL), "k3 conv2d_1 missing");
    run_free(&r);
}

static void test_nan(void)
{
    char src[4400], dst[] = "/tmp/strata_nan_XXXXXX";
    snprintf(src, sizeof src, "%s/keras/k2_2.1.2_weights_mnist_cnn.h5", fx);
    size_t len = 0;
    char *bytes = check_slurp(src, &len);
    int fd = mkstemp(dst);
    CHECK(bytes && fd >= 0 && write(fd, bytes, len) == (ssize_t)len, "copy fixture");
    free(bytes);
    if (fd < 0) return;
    close(fd);
    eng_summary *s = NULL;
    eng_error err = {0};
    if (eng_summary_read(dst, &s, &err) == ENG_OK) {
        /* poison dense_2/bias[3] with a quiet NaN, dense_3/kernel[0] with +Inf */
        fd = open(dst, O_RDWR);
        for (size_t i = 0; i < s->nlayers; i++) {
            const eng_wlayer *l = &s->layers[i];
            const uint32_t qnan = 0x7fc00000u, inf = 0x7f800000u;
            if (!strcmp(l->name, "dense_2") && l->ntensors == 2)
                CHECK(pwrite(fd, &qnan, 4, (off_t)l->tensors[1].offset + 12) == 4, "poison");
            if (!strcmp(l->name, "dense_3") && l->ntensors == 2)
                CHECK(pwrite(fd, &inf, 4, (off_t)l->tensors[0].offset) == 4, "poison");
        }
        close(fd);
    }
    eng_summary_free(s);
    eng_error_release(&err);
    run r = validate_path(dst, "k2_2.1.2_mnist_cnn.model.json");
    CHECK(r.rc == ENG_ERR_WEIGHTS, "NaN-poisoned weights accepted");
    CHECK(has_problem(r.details, "dense_2", "bias", "nan", NULL, NULL), "dense_2 bias nan: %s",
          r.msg);
    CHECK(has_problem(r.details, "dense_3", "kernel", "nan", NULL, NULL), "dense_3 kernel inf: %s",
          r.msg);
    CHECK(json_array_size(json_object_get(r.details, "problems")) == 2, "nan problems: %s", r.msg);
    run_free(&r);
    unlink(dst);
}

/* Digests equal the reader's own; batch == rows one by one; workspace reuse. */
static void test_digests_and_batch(void)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/keras/k2_2.0.6_weights_cnn_bn_dropout.h5", fx);
    eng_summary *s = NULL;
    eng_error err = {0};
    int fd = open(path, O_RDONLY);
    eng_arch *a = arch_from("k2_2.0.6_cnn_bn_dropout.model.json", NULL);
    if (fd < 0 || !a || eng_summary_read(path, &s, &err) != ENG_OK) {
        CHECK(0, "setup: %s", err.msg);
        goto out;
    }
    json_t *rep = NULL, *mine = NULL, *theirs = NULL;
    if (eng_validate(a, s, fd, &rep, &mine, &err) == ENG_OK &&
        eng_summary_layers_json(fd, s, &theirs, &err) == ENG_OK) {
        size_t i, k;
        const json_t *l, *t;
        int compared = 0;
        json_array_foreach (mine, i, l) {
            json_array_foreach (theirs, k, t) {
                if (strcmp(json_string_value(json_object_get(l, "name")),
                           json_string_value(json_object_get(t, "name"))))
                    continue;
                CHECK(json_equal(json_object_get(l, "digest"), json_object_get(t, "digest")),
                      "digest of %s", json_string_value(json_object_get(l, "name")));
                compared++;
            }
        }
        CHECK(compared >= 5, "compared %d digests", compared);
    } else {
        CHECK(0, "validate/layers_json: %s", err.msg);
    }
    json_decref(rep);
    json_decref(mine);
    json_decref(theirs);
    eng_error_release(&err);

    eng_model *m = NULL;
    if (eng_model_load(a, s, fd, &m, &err) == ENG_OK) {
        size_t ni = eng_model_input_size(m), no = eng_model_output_size(m);
        CHECK(ni == 625 && no == 5, "sizes %zu %zu", ni, no);
        enum { B = 3 };
        float *in = malloc(B * ni * sizeof *in), *ob = malloc(B * no * sizeof *ob),
              *o1 = malloc(no * sizeof *o1);
        for (size_t i = 0; i < B * ni; i++) in[i] = (float)((i * 7919 % 256) / 256.0);
        eng_workspace *ws = eng_workspace_new();
        CHECK(eng_model_predict(m, ws, in, B, ob, &err) == ENG_OK, "batch predict: %s", err.msg);
        for (int b = 0; b < B; b++) {
            CHECK(eng_model_predict(m, ws, in + b * ni, 1, o1, &err) == ENG_OK, "row predict");
            float md = 0;
            for (size_t j = 0; j < no; j++) md = fmaxf(md, fabsf(o1[j] - ob[b * no + j]));
            CHECK(md < 1e-6f, "row %d differs from batch by %g", b, md);
        }
        CHECK(eng_model_predict(m, ws, in, 0, ob, &err) == ENG_ERR_INPUT, "empty batch accepted");
        eng_error_release(&err);
        eng_workspace_free(ws);
        free(in);
        free(ob);
        free(o1);
    } else {
        CHECK(0, "load: %s", err.msg);
    }
    eng_model_free(m);
out:
    /* the model held its own reference: freeing the arch after the model is fine either way */
    eng_arch_free(a);
    eng_summary_free(s);
    eng_error_release(&err);
    if (fd >= 0) close(fd);
}

/* Probe outputs recomputed by tests/data/arch/probe_numpy.py (plain numpy
 * from the Keras docs) for the layouts the golden vectors do not cover:
 * Keras 1 'th' kernels, channels_first DepthwiseConv2D, Keras 1 non-square
 * kernels and Keras 1 BatchNormalization running_std. */
static void test_probe_reference(void)
{
    const char *tests = getenv("STRATA_TESTS");
    char path[4400];
    if (!tests) {
        SKIP_LOUD("STRATA_TESTS not set: numpy probe references not checked");
        return;
    }
    snprintf(path, sizeof path, "%s/data/arch/probe_numpy.json", tests);
    json_t *ref = json_load_file(path, 0, NULL);
    CHECK(ref != NULL, "cannot read %s", path);
    const char *file;
    json_t *v;
    json_object_foreach (ref, file, v) {
        run r = validate_fx(file, json_string_value(json_object_get(v, "json")));
        CHECK(r.rc == ENG_OK, "%s: %s", file, r.msg);
        const json_t *got = json_object_get(r.report, "probe_output"),
                     *exp = json_object_get(v, "probe");
        CHECK(json_array_size(got) == json_array_size(exp), "%s: probe sizes %zu vs %zu", file,
              json_array_size(got), json_array_size(exp));
        for (size_t i = 0; i < json_array_size(got) && i < json_array_size(exp); i++) {
            double g = json_number_value(json_array_get(got, i)),
                   e = json_number_value(json_array_get(exp, i));
            CHECK(fabs(g - e) <= 1e-5 + 1e-4 * fabs(e), "%s: probe[%zu] %.9g, numpy %.9g", file, i,
                  g, e);
        }
        run_free(&r);
    }
    json_decref(ref);
}

int main(void)
{
    const char *f = check_fixtures();
    if (!f) {
        SKIP_LOUD(
            "STRATA_FIXTURES not set or incomplete: validation against real Keras files not run");
        return check_done();
    }
    snprintf(fx, sizeof fx, "%s", f);
    test_accepts();
    test_same_weights_same_probe();
    test_refusals();
    test_nan();
    test_digests_and_batch();
    test_probe_reference();
    return check_done();
}
