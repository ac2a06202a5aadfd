/* tests/unit/test_engine_transfer.c — the transfer-learning engine on real
 * Keras files: the one matching rule (eng_fit_layers), selections, the
 * compatibility report, stats (checked against a plain double loop over the
 * raw little-endian floats), diffs, and derived files written, read back
 * with the engine's own reader and compared byte for byte; deterministic
 * output. Links strata_engine only. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"

static char fx[4096];

static eng_arch *arch_from(const char *file, const char *from, const char *to)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/keras/%s", fx, file);
    char *txt = check_slurp(path, NULL);
    eng_arch *a = NULL;
    eng_error err = {0};
    if (!txt) return NULL;
    if (from) { /* one textual edit: another head */
        char *p = strstr(txt, from);
        if (p) {
            size_t fl = strlen(from), tl = strlen(to), n = strlen(txt);
            char *t2 = malloc(n - fl + tl + 1);
            memcpy(t2, txt, (size_t)(p - txt));
            memcpy(t2 + (p - txt), to, tl);
            strcpy(t2 + (p - txt) + tl, p + fl);
            free(txt);
            txt = t2;
        }
    }
    eng_code c = eng_arch_parse(txt, strlen(txt), &a, &err);
    CHECK(c == ENG_OK, "parse %s: %s", file, err.msg);
    eng_error_release(&err);
    free(txt);
    return a;
}

static eng_summary *summary_of(const char *file, int *fd)
{
    char path[4300];
    eng_summary *s = NULL;
    eng_error err = {0};
    snprintf(path, sizeof path, "%s/keras/%s", fx, file);
    CHECK(eng_summary_read(path, &s, &err) == ENG_OK, "read %s: %s", file, err.msg);
    eng_error_release(&err);
    *fd = open(path, O_RDONLY);
    return s;
}

static const eng_wlayer *wlayer(const eng_summary *s, const char *name)
{
    for (size_t i = 0; i < s->nlayers; i++)
        if (!strcmp(s->layers[i].name, name)) return &s->layers[i];
    return NULL;
}

static int tensor_bytes_equal(int fa, const eng_tensor *a, int fb, const eng_tensor *b)
{
    if (a->nbytes != b->nbytes || a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    unsigned char *x = malloc(a->nbytes + 1), *y = malloc(b->nbytes + 1);
    int ok = pread(fa, x, a->nbytes, (off_t)a->offset) == (ssize_t)a->nbytes &&
             pread(fb, y, b->nbytes, (off_t)b->offset) == (ssize_t)b->nbytes &&
             !memcmp(x, y, a->nbytes);
    free(x);
    free(y);
    return ok;
}

/* Write spec to path (both phases); etag out. */
static int write_file(const eng_out_spec *spec, int src_fd, const char *path, char etag[80])
{
    eng_copy_plan *plan = NULL;
    eng_error err = {0};
    int rc = -1;
    if (eng_write_layout(spec, path, &plan, &err) == ENG_OK) {
        int fd = open(path, O_RDWR);
        if (fd >= 0 && eng_write_data(src_fd, fd, plan, etag, &err) == ENG_OK) rc = 0;
        if (fd >= 0) close(fd);
    }
    CHECK(rc == 0, "write %s: %s", path, err.msg);
    eng_error_release(&err);
    eng_copy_plan_free(plan);
    return rc;
}

static void test_fit_and_select(void)
{
    int fd = -1;
    eng_summary *s = summary_of("k2_2.1.2_weights_mnist_cnn.h5", &fd);
    eng_arch *a = arch_from("k2_2.1.2_mnist_cnn.model.json", NULL, NULL);
    eng_arch *t = arch_from("k2_2.1.2_mnist_cnn.model.json", "\"units\": 10", "\"units\": 5");
    eng_fit *f = NULL;
    size_t n = 0;
    eng_error err = {0};
    if (!s || !a || !t) return;
    CHECK(eng_fit_layers(a, s, &f, &n, &err) == ENG_OK && n == 9, "fits: %zu", n);
    for (size_t i = 0; i < n; i++)
        CHECK(f[i].status == ENG_FIT_MATCH || f[i].status == ENG_FIT_WEIGHTLESS,
              "own arch: %s status %d", f[i].name, f[i].status);
    free(f);
    CHECK(eng_fit_layers(t, s, &f, &n, &err) == ENG_OK, "fits target");
    CHECK(!strcmp(f[8].name, "dense_3") && f[8].status == ENG_FIT_MISMATCH &&
              f[8].bad_shape == 3u && f[8].expected[0][1] == 5,
          "dense_3 mismatch: status %d mask %u", f[8].status, f[8].bad_shape);
    free(f);

    eng_view *v = NULL;
    CHECK(eng_view_build(a, s, &v, &err) == ENG_OK && v->n == 9, "view");
    bool chosen[16];
    CHECK(eng_select(v, s, NULL, NULL, t, chosen, &err) == ENG_OK, "select for");
    char got[256] = "";
    for (size_t i = 0; i < v->n; i++)
        if (chosen[i]) {
            strcat(got, v->layers[i].name);
            strcat(got, ",");
        }
    CHECK(!strcmp(got, "conv2d_1,conv2d_2,dense_1,dense_2,"), "?for picks %s", got);
    CHECK(eng_select(v, s, "dense_1, conv2d_1", "conv2d_1", NULL, chosen, &err) == ENG_OK,
          "select layers/exclude");
    got[0] = 0;
    for (size_t i = 0; i < v->n; i++)
        if (chosen[i]) {
            strcat(got, v->layers[i].name);
            strcat(got, ",");
        }
    CHECK(!strcmp(got, "dense_1,"), "layers minus exclude: %s", got);
    CHECK(eng_select(v, s, "dense_1,nope", NULL, NULL, chosen, &err) == ENG_ERR_INPUT &&
              json_array_size(json_object_get(err.details, "valid")) == 9 &&
              !strcmp(json_string_value(json_array_get(json_object_get(err.details, "unknown"), 0)),
                      "nope"),
          "unknown name: %s", err.msg);
    eng_error_release(&err);

    json_t *c = NULL;
    CHECK(eng_compat_json(t, s, v, &c, &err) == ENG_OK, "compat");
    CHECK(json_array_size(json_object_get(c, "layers")) == 5 &&
              json_array_size(json_object_get(c, "unused")) == 0,
          "compat sizes");
    json_t *last = json_array_get(json_object_get(c, "layers"), 4);
    CHECK(!strcmp(json_string_value(json_object_get(last, "status")), "shape_mismatch") &&
              json_integer_value(json_array_get(json_object_get(last, "expected"), 1)) == 5 &&
              json_integer_value(json_array_get(json_object_get(last, "found"), 1)) == 10,
          "dense_3 in compat");
    json_decref(c);

    /* stats against a plain loop over the raw floats */
    const eng_wlayer *d1 = wlayer(s, "dense_1");
    eng_wstats st[2];
    char digest[80];
    CHECK(eng_layer_scan(fd, d1, digest, st, &err) == ENG_OK && !strncmp(digest, "sha256:", 7),
          "scan");
    size_t cnt = (size_t)(d1->tensors[0].nbytes / 4);
    float *raw = malloc(d1->tensors[0].nbytes);
    CHECK(pread(fd, raw, d1->tensors[0].nbytes, (off_t)d1->tensors[0].offset) ==
              (ssize_t)d1->tensors[0].nbytes,
          "raw");
    double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
    for (size_t i = 0; i < cnt; i++) {
        double x = raw[i];
        if (x < mn) mn = x;
        if (x > mx) mx = x;
        sum += x;
    }
    double mean = sum / (double)cnt;
    for (size_t i = 0; i < cnt; i++) sq += (raw[i] - mean) * (raw[i] - mean);
    CHECK(st[0].min == mn && st[0].max == mx && fabs(st[0].mean - mean) < 1e-9 &&
              fabs(st[0].std - sqrt(sq / (double)cnt)) < 1e-9 && st[0].count == cnt,
          "stats %g %g %g %g", st[0].min, st[0].max, st[0].mean, st[0].std);
    free(raw);
    eng_diff_status ds;
    double l2, na, ma;
    CHECK(eng_layer_diff(fd, d1, fd, d1, &ds, &l2, &na, &ma, &err) == ENG_OK &&
              ds == ENG_DIFF_IDENTICAL,
          "diff self");
    CHECK(eng_layer_diff(fd, d1, fd, wlayer(s, "dense_2"), &ds, &l2, &na, &ma, &err) == ENG_OK &&
              ds == ENG_DIFF_SHAPE,
          "diff other shape");

    /* a partial legacy file: read back, same tensors, deterministic */
    CHECK(eng_select(v, s, NULL, NULL, t, chosen, &err) == ENG_OK, "select again");
    eng_out_spec spec;
    char p1[] = "/tmp/strata-xfer-XXXXXX", p2[] = "/tmp/strata-xfer-XXXXXX", e1[80], e2[80];
    close(mkstemp(p1));
    close(mkstemp(p2));
    CHECK(eng_derive_spec(v, s, chosen, 0, &spec, &err) == ENG_OK && spec.nlayers == 4, "spec");
    if (write_file(&spec, fd, p1, e1) == 0 && write_file(&spec, fd, p2, e2) == 0) {
        char *b1 = NULL, *b2 = NULL;
        size_t l1 = 0, l2b = 0;
        b1 = check_slurp(p1, &l1);
        b2 = check_slurp(p2, &l2b);
        CHECK(b1 && b2 && l1 == l2b && !memcmp(b1, b2, l1) && !strcmp(e1, e2),
              "deterministic output");
        free(b1);
        free(b2);
        eng_summary *o = NULL;
        CHECK(eng_summary_read(p1, &o, &err) == ENG_OK, "read back: %s", err.msg);
        if (o) {
            int ofd = open(p1, O_RDONLY);
            CHECK(o->format == ENG_FMT_KERAS2_WEIGHTS && o->nlayers == 4 && o->keras_version &&
                      !strcmp(o->keras_version, "2.1.2") && o->backend &&
                      !strcmp(o->backend, "tensorflow"),
                  "partial header");
            for (size_t i = 0; i < o->nlayers; i++) {
                const eng_wlayer *src = wlayer(s, o->layers[i].name);
                CHECK(src && src->ntensors == o->layers[i].ntensors, "layer %s", o->layers[i].name);
                for (size_t k = 0; src && k < src->ntensors; k++)
                    CHECK(
                        !strcmp(src->tensors[k].name, o->layers[i].tensors[k].name) &&
                            tensor_bytes_equal(fd, &src->tensors[k], ofd, &o->layers[i].tensors[k]),
                        "tensor %s", src->tensors[k].name);
            }
            close(ofd);
            eng_summary_free(o);
        }
    }
    eng_out_spec_release(&spec);

    /* keras2 -> keras3: class-derived groups, readable as Keras 3 */
    for (size_t i = 0; i < v->n; i++) chosen[i] = v->layers[i].file && v->layers[i].file->ntensors;
    CHECK(eng_derive_spec(v, s, chosen, 1, &spec, &err) == ENG_OK && spec.keras3 &&
              spec.nlayers == 5,
          "k3 spec");
    if (spec.nlayers == 5 && write_file(&spec, fd, p1, e1) == 0) {
        eng_summary *o = NULL;
        CHECK(eng_summary_read(p1, &o, &err) == ENG_OK && o->format == ENG_FMT_KERAS3_WEIGHTS,
              "k3 read back: %s", err.msg);
        if (o) {
            int ofd = open(p1, O_RDONLY);
            const eng_wlayer *g = wlayer(o, "dense_1"); /* Keras 3 name of dense_2 */
            CHECK(
                g && g->attr_name && !strcmp(g->attr_name, "dense_2") && g->ntensors == 2 &&
                    tensor_bytes_equal(fd, &wlayer(s, "dense_2")->tensors[0], ofd, &g->tensors[0]),
                "dense_2 as layers/dense_1");
            /* and the matching rule accepts it against the Keras 2 architecture */
            eng_fit *ff = NULL;
            size_t nn = 0;
            CHECK(eng_fit_layers(a, o, &ff, &nn, &err) == ENG_OK, "fit converted");
            for (size_t i = 0; ff && i < nn; i++)
                CHECK(ff[i].status == ENG_FIT_MATCH || ff[i].status == ENG_FIT_WEIGHTLESS,
                      "converted %s: %d", ff[i].name, ff[i].status);
            free(ff);
            close(ofd);
            eng_summary_free(o);
        }
    }
    eng_out_spec_release(&spec);
    /* without an architecture there is no Keras 3 name */
    eng_view *bare = NULL;
    CHECK(eng_view_build(NULL, s, &bare, &err) == ENG_OK, "bare view");
    CHECK(eng_derive_spec(bare, s, chosen, 1, &spec, &err) == ENG_ERR_INPUT,
          "conversion without architecture refused");
    eng_error_release(&err);
    eng_view_free(bare);
    unlink(p1);
    unlink(p2);
    eng_view_free(v);
    eng_arch_free(a);
    eng_arch_free(t);
    eng_summary_free(s);
    close(fd);
}

int main(void)
{
    const char *f = check_fixtures();
    if (!f) {
        SKIP_LOUD(
            "STRATA_FIXTURES not set or incomplete: transfer tests on real Keras files not run");
        return check_done();
    }
    snprintf(fx, sizeof fx, "%s", f);
    test_fit_and_select();
    return check_done();
}
