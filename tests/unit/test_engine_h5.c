/* tests/unit/test_engine_h5.c — the Keras weight-file reader (engine/h5_read.c,
 * summary.c, zip.c) against every real Keras fixture and the generated edge
 * cases of tests/data/h5/.
 * Expected layouts come from shared/fixtures/keras/SOURCES.md (the table
 * below was transcribed from it, not from our reader); expected tensor values,
 * offsets and layer digests come from h5py (tests/data/h5/make_cases.py), an
 * independent reader. */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "check.h"
#include "engine.h"

/* file, format, layer count, params (model part), layers in order:
 * "name=shape,shape ..." with shapes as AxB, an empty list for no weights. */
static const struct fixture {
    const char *file;
    eng_format format;
    size_t nlayers;
    unsigned long long params;
    const char *layers;
} fixtures[] = {
    {"k1_1.0.4_weights_cifar10_cnn_th.h5", ENG_FMT_KERAS2_WEIGHTS, 18, 890410,
     "convolution2d_1=32x3x3x3,32 activation_1= convolution2d_2=32x32x3x3,32 activation_2= maxpooling2d_1= dropout_1= convolution2d_3=64x32x3x3,64 activation_3= convolution2d_4=64x64x3x3,64 activation_4= maxpooling2d_2= dropout_2= flatten_1= dense_1=1600x512,512 activation_5= dropout_3= dense_2=512x10,10 activation_6="},
    {"k1_1.1.2_full_cnn_tf.h5", ENG_FMT_KERAS2_MODEL, 10, 64,
     "convolution2d_1=3x2x3x2,2 convolution2d_2=2x3x2x1,1 activation_1= maxpooling2d_1= dropout_1= flatten_1= dense_1=1x2,2 activation_2= dropout_2= dense_2=2x3,3"},
    {"k1_1.1.2_weights_cnn_tf.h5", ENG_FMT_KERAS2_WEIGHTS, 10, 64,
     "convolution2d_1=3x2x3x2,2 convolution2d_2=2x3x2x1,1 activation_1= maxpooling2d_1= dropout_1= flatten_1= dense_1=1x2,2 activation_2= dropout_2= dense_2=2x3,3"},
    {"k1_1.2.2_full_dense_bn_conv2d_tf.h5", ENG_FMT_KERAS2_MODEL, 4, 49985,
     "dense_1=100x490,490 reshape_1= batchnormalization_1=10,10,10,10 convolution2d_1=3x3x10x5,5"},
    {"k2_2.0.0_weights_conv2d_dropout.h5", ENG_FMT_KERAS2_WEIGHTS, 4, 1310,
     "conv2d_1=3x3x1x2,2 dropout_1= flatten_1= dense_1=128x10,10"},
    {"k2_2.0.6_weights_cnn_bn_dropout.h5", ENG_FMT_KERAS2_WEIGHTS, 11, 891,
     "input_1= batch_normalization_1=1,1,1,1 cnn2D_1_relu=3x3x1x5,5 dropout_1= batch_normalization_2=5,5,5,5 cnn2D_2_relu=5x5x5x2,2 dropout_2= flatten_1= dense_1_relu=50x10,10 dropout_3= output_softmax=10x5,5"},
    {"k2_2.1.2_weights_mnist_cnn.h5", ENG_FMT_KERAS2_WEIGHTS, 9, 59933,
     "conv2d_1=5x5x1x30,30 max_pooling2d_1= conv2d_2=3x3x30x15,15 max_pooling2d_2= dropout_1= flatten_1= dense_1=375x128,128 dense_2=128x50,50 dense_3=50x10,10"},
    {"k2_2.1.3_full_cnn_bn.h5", ENG_FMT_KERAS2_MODEL, 6, 79,
     "conv2d_1=3x3x3x1,1 batch_normalization_1=1,1,1,1 activation_1= conv2d_2=3x3x1x1,1 flatten_1= dense_1=36x1,1"},
    {"k3_3.10.0_legacy_full_mnist_cnn.h5", ENG_FMT_KERAS2_MODEL, 7, 179926,
     "conv2d=3x3x1x32,32 max_pooling2d= conv2d_1=3x3x32x64,64 max_pooling2d_1= flatten= dense=1600x100,100 dense_1=100x10,10"},
    {"k3_3.10.0_mnist_cnn.weights.h5", ENG_FMT_KERAS3_WEIGHTS, 7, 179926,
     "conv2d=3x3x1x32,32 conv2d_1=3x3x32x64,64 dense=1600x100,100 dense_1=100x10,10 flatten= max_pooling2d= max_pooling2d_1="},
    {"k3_3.11.3_mnist_cnn.keras", ENG_FMT_KERAS3_ARCHIVE, 5, 21898,
     "conv2d=3x3x1x8,8 dense=1352x16,16 dense_1=16x10,10 flatten= max_pooling2d="},
    {"k3_3.x_cnn_bn_dropout_nested.weights.h5", ENG_FMT_KERAS3_WEIGHTS, 23, 130028,
     "batch_normalization=32,32,32,32 batch_normalization_1=64,64,64,64 batch_normalization_2=128,128,128,128 conv2d=3x3x3x32 conv2d_1=3x3x32x64 conv2d_2=3x3x64x128 dense=128x256,256 dense_1=256x12,12 dropout= dropout_1= global_average_pooling2d= input_layer= max_pooling2d= max_pooling2d_1= max_pooling2d_2= re_lu= re_lu_1= re_lu_2= rescaling= sequential= sequential/layers/random_flip= sequential/layers/random_rotation= sequential/layers/random_zoom="},
    {"tfk_2.15.0_weights_lenet.h5", ENG_FMT_KERAS2_WEIGHTS, 8, 61706,
     "conv2d=5x5x1x6,6 average_pooling2d= conv2d_1=5x5x6x16,16 average_pooling2d_1= flatten= dense=400x120,120 dense_1=120x84,84 dense_2=84x10,10"},
    {"tfk_2.2.4-tf_full_depthwise_cnn.h5", ENG_FMT_KERAS2_MODEL, 14, 110,
     "input_41= depthwise_conv2d_4=3x3x3x1,3 spatial_dropout2d_40= zero_padding2d_40= up_sampling2d_40= cropping2d_40= max_pooling2d_20= depthwise_conv2d_5=3x3x8x1,8 spatial_dropout2d_41= zero_padding2d_41= up_sampling2d_41= cropping2d_41= max_pooling2d_21= global_max_pooling2d_10="},
    {"tfk_2.4.0_full_conv1d_adam.h5", ENG_FMT_KERAS2_MODEL, 7, 44,
     "input_1= embedding=5x3 conv1d=2x3x3,3 max_pooling1d= flatten= dropout= dense=3x2,2"},
};

static char fixdir[2048], datadir[2048];

static char *path_in(const char *dir, const char *file)
{
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", dir, file);
    return p;
}

static uint64_t elements(const eng_tensor *t)
{
    uint64_t n = 1;
    for (int d = 0; d < t->rank; d++) n *= (uint64_t)t->shape[d];
    return n;
}

static void shape_str(const eng_tensor *t, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int d = 0; d < t->rank && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? "x" : "", (long long)t->shape[d]);
}

static const eng_tensor *find_tensor(const eng_summary *s, const char *path)
{
    for (size_t i = 0; i < s->nlayers; i++)
        for (size_t k = 0; k < s->layers[i].ntensors; k++)
            if (strcmp(s->layers[i].tensors[k].path, path) == 0) return &s->layers[i].tensors[k];
    return NULL;
}

/* Layout of each fixture as SOURCES.md states it. */
static void test_fixture_layouts(void)
{
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        const struct fixture *fx = &fixtures[f];
        eng_summary *s = NULL;
        eng_error e = {0};
        eng_code rc = eng_summary_read(path_in(fixdir, fx->file), &s, &e);
        CHECK(rc == ENG_OK, "%s: read failed: %s", fx->file, e.msg);
        eng_error_release(&e);
        if (rc) continue;
        CHECK(s->format == fx->format, "%s: format %s", fx->file, eng_format_name(s->format));
        CHECK(s->nlayers == fx->nlayers, "%s: %zu layers, expected %zu", fx->file, s->nlayers,
              fx->nlayers);
        unsigned long long params = 0;
        char want[4096];
        snprintf(want, sizeof want, "%s", fx->layers);
        char *save = NULL, *tok = strtok_r(want, " ", &save);
        for (size_t i = 0; i < s->nlayers; i++, tok = strtok_r(NULL, " ", &save)) {
            const eng_wlayer *l = &s->layers[i];
            char got[2048] = "";
            size_t o = snprintf(got, sizeof got, "%s=", l->name);
            for (size_t k = 0; k < l->ntensors; k++) {
                char sh[256];
                shape_str(&l->tensors[k], sh, sizeof sh);
                o += snprintf(got + o, sizeof got - o, "%s%s", k ? "," : "", sh);
                params += elements(&l->tensors[k]);
            }
            CHECK(tok && strcmp(tok, got) == 0, "%s: layer %zu is '%s', SOURCES.md says '%s'",
                  fx->file, i, got, tok ? tok : "(none)");
        }
        CHECK(params == fx->params, "%s: %llu params, expected %llu", fx->file, params, fx->params);
        CHECK(s->hdf5_offset + s->hdf5_size <= s->file_size, "%s: image outside file", fx->file);
        if (fx->format == ENG_FMT_KERAS3_ARCHIVE) {
            CHECK(s->model_config && strstr(s->model_config, "\"class_name\""),
                  "%s: config.json missing", fx->file);
            CHECK(s->keras_version && strcmp(s->keras_version, "3.11.3") == 0, "%s: keras_version",
                  fx->file);
            CHECK(s->hdf5_offset > 0, "%s: archive member offset", fx->file);
        }
        if (fx->format == ENG_FMT_KERAS2_MODEL)
            CHECK(s->model_config && s->model_config[0] == '{', "%s: model_config missing",
                  fx->file);
        eng_summary_free(s);
    }
    /* details SOURCES.md states */
    eng_summary *s = NULL;
    eng_error e = {0};
    if (eng_summary_read(path_in(fixdir, "k3_3.x_cnn_bn_dropout_nested.weights.h5"), &s, &e) ==
        ENG_OK) {
        int seen = 0;
        for (size_t i = 0; i < s->nlayers; i++) {
            const char *a = s->layers[i].attr_name ? s->layers[i].attr_name : "";
            if (strcmp(s->layers[i].name, "dense") == 0) seen += strcmp(a, "embedding") == 0;
            if (strcmp(s->layers[i].name, "sequential") == 0) seen += strcmp(a, "augment") == 0;
        }
        CHECK(seen == 2, "nested: attr_name of dense/sequential");
        eng_summary_free(s);
    }
    eng_error_release(&e);
    if (eng_summary_read(path_in(fixdir, "tfk_2.2.4-tf_full_depthwise_cnn.h5"), &s, &e) == ENG_OK) {
        CHECK(s->keras_version && strcmp(s->keras_version, "2.2.4-tf") == 0,
              "vlen utf-8 keras_version");
        CHECK(s->backend && strcmp(s->backend, "tensorflow") == 0, "vlen utf-8 backend");
        CHECK(strcmp(s->layers[1].tensors[0].name, "depthwise_conv2d_4/depthwise_kernel:0") == 0,
              "weight name as the file says: %s", s->layers[1].tensors[0].name);
        CHECK(strcmp(s->layers[1].tensors[0].path,
                     "model_weights/depthwise_conv2d_4/depthwise_conv2d_4/depthwise_kernel:0") == 0,
              "dataset path: %s", s->layers[1].tensors[0].path);
        eng_summary_free(s);
    }
    eng_error_release(&e);
}

/* Cached summaries per file for the h5py comparisons. */
static eng_summary *open_summary(const char *file, int *fd)
{
    const char *dir = strncmp(file, "case_", 5) == 0 ? datadir : fixdir;
    eng_summary *s = NULL;
    eng_error e = {0};
    if (eng_summary_read(path_in(dir, file), &s, &e) != ENG_OK) {
        CHECK(0, "%s: %s", file, e.msg);
        eng_error_release(&e);
        return NULL;
    }
    *fd = open(path_in(dir, file), O_RDONLY);
    CHECK(*fd >= 0, "open %s", file);
    return s;
}

/* eng_tensor_read_f32 and the offsets against h5py (expected_values.tsv). */
static void test_values_vs_h5py(void)
{
    FILE *f = fopen(path_in(datadir, "expected_values.tsv"), "r");
    CHECK(f != NULL, "expected_values.tsv missing (run make_cases.py)");
    if (!f) return;
    char line[8192], cur[512] = "";
    eng_summary *s = NULL;
    int fd = -1, rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL;
        char *file = strtok_r(line, "\t", &save), *path = strtok_r(NULL, "\t", &save);
        char *nel = strtok_r(NULL, "\t", &save), *sum = strtok_r(NULL, "\t", &save);
        char *off = strtok_r(NULL, "\t", &save), *first = strtok_r(NULL, "\t", &save);
        if (!file || !path || !nel || !sum || !off) continue;
        if (strcmp(file, cur) != 0) {
            eng_summary_free(s);
            if (fd >= 0) close(fd);
            fd = -1;
            snprintf(cur, sizeof cur, "%s", file);
            s = open_summary(file, &fd);
        }
        if (!s) continue;
        rows++;
        const eng_tensor *t = find_tensor(s, path);
        CHECK(t != NULL, "%s: dataset %s not in the summary", file, path);
        if (!t) continue;
        size_t n = (size_t)strtoull(nel, NULL, 10);
        CHECK(elements(t) == n, "%s: %s has %llu elements, h5py %zu", file, path,
              (unsigned long long)elements(t), n);
        long long hoff = strtoll(off, NULL, 10);
        if (hoff >= 0)
            CHECK(t->offset == s->hdf5_offset + (uint64_t)hoff,
                  "%s: %s offset %llu, h5py %lld + %llu", file, path, (unsigned long long)t->offset,
                  hoff, (unsigned long long)s->hdf5_offset);
        float *v = malloc((n ? n : 1) * sizeof *v);
        eng_error e = {0};
        eng_code rc = eng_tensor_read_f32(fd, t, v, n, &e);
        if (t->dtype == ENG_DT_OTHER) {
            CHECK(rc != ENG_OK, "%s: %s dtype other must not convert", file, path);
        } else {
            CHECK(rc == ENG_OK, "%s: %s: %s", file, path, e.msg);
            if (rc == ENG_OK) {
                double got = 0, want = strtod(sum, NULL);
                for (size_t i = 0; i < n; i++) got += v[i];
                double tol =
                    (t->dtype == ENG_DT_F32 ? 1e-9 : 1e-5) * (fabs(want) + 1.0) + 1e-6 * (double)n;
                CHECK(fabs(got - want) <= tol, "%s: %s sum %.9g, h5py %.9g", file, path, got, want);
                char *fs = NULL;
                size_t i = 0;
                for (char *tok = first ? strtok_r(first, ",", &fs) : NULL; tok;
                     tok = strtok_r(NULL, ",", &fs), i++) {
                    float w = strtof(tok, NULL);
                    CHECK(i < n && v[i] == w, "%s: %s[%zu] = %.9g, h5py %.9g", file, path, i,
                          i < n ? v[i] : NAN, w);
                }
            }
        }
        eng_error_release(&e);
        free(v);
    }
    eng_summary_free(s);
    if (fd >= 0) close(fd);
    fclose(f);
    CHECK(rows > 100, "only %d value rows checked", rows);
}

/* eng_summary_layers_json: digests against h5py, params, short names. */
static void test_layers_json(void)
{
    FILE *f = fopen(path_in(datadir, "expected_digests.tsv"), "r");
    CHECK(f != NULL, "expected_digests.tsv missing");
    if (!f) return;
    char line[1024], cur[512] = "";
    eng_summary *s = NULL;
    json_t *arr = NULL;
    int fd = -1, rows = 0;
    size_t idx = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL;
        char *file = strtok_r(line, "\t", &save), *layer = strtok_r(NULL, "\t", &save);
        char *dig = strtok_r(NULL, "\t", &save);
        if (!file || !layer || !dig) continue;
        if (strcmp(file, cur) != 0) {
            if (arr)
                CHECK(idx == json_array_size(arr), "%s: %zu layers in h5py, %zu in layers_json",
                      cur, idx, json_array_size(arr));
            json_decref(arr);
            arr = NULL;
            eng_summary_free(s);
            if (fd >= 0) close(fd);
            fd = -1;
            idx = 0;
            snprintf(cur, sizeof cur, "%s", file);
            s = open_summary(file, &fd);
            eng_error e = {0};
            if (s)
                CHECK(eng_summary_layers_json(fd, s, &arr, &e) == ENG_OK, "%s: layers_json: %s",
                      file, e.msg);
            eng_error_release(&e);
        }
        if (!arr) continue;
        rows++;
        json_t *l = json_array_get(arr, idx++);
        const char *name = json_string_value(json_object_get(l, "name"));
        CHECK(name && strcmp(name, layer) == 0, "%s: layer %zu is %s, h5py %s", file, idx - 1,
              name ? name : "?", layer);
        json_t *d = json_object_get(l, "digest");
        if (strcmp(dig, "-") == 0) {
            CHECK(json_is_null(d), "%s: %s digest should be null", file, layer);
            CHECK(json_integer_value(json_object_get(l, "params")) == 0, "%s: %s params", file,
                  layer);
        } else {
            CHECK(json_is_string(d) && strcmp(json_string_value(d), dig) == 0,
                  "%s: %s digest %s, h5py %s", file, layer,
                  json_string_value(d) ? json_string_value(d) : "null", dig);
        }
    }
    if (arr) CHECK(idx == json_array_size(arr), "%s: layer count", cur);
    json_decref(arr);
    eng_summary_free(s);
    if (fd >= 0) close(fd);
    fclose(f);
    CHECK(rows > 100, "only %d digest rows checked", rows);

    /* short weight names, params, one full entry */
    static const struct {
        const char *file;
        size_t layer;
        const char *names;
        long long params;
    } shorts[] = {
        {"k2_2.1.2_weights_mnist_cnn.h5", 0, "kernel,bias", 780},
        {"k3_3.10.0_legacy_full_mnist_cnn.h5", 2, "kernel,bias", 18496},
        {"k1_1.0.4_weights_cifar10_cnn_th.h5", 0, "convolution2d_1_W,convolution2d_1_b", 896},
        {"k1_1.1.2_weights_cnn_tf.h5", 6, "dense_1_W,dense_1_b", 4},
        {"k2_2.0.6_weights_cnn_bn_dropout.h5", 1, "gamma,beta,moving_mean,moving_variance", 4},
        {"tfk_2.2.4-tf_full_depthwise_cnn.h5", 1, "depthwise_kernel,bias", 30},
        {"k3_3.11.3_mnist_cnn.keras", 1, "0,1", 21648},
    };
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++) {
        int fd2 = -1;
        eng_summary *s2 = open_summary(shorts[i].file, &fd2);
        json_t *a = NULL;
        eng_error e = {0};
        if (s2 && eng_summary_layers_json(fd2, s2, &a, &e) == ENG_OK) {
            json_t *l = json_array_get(a, shorts[i].layer), *w;
            char got[512] = "";
            size_t k, o = 0;
            json_array_foreach (json_object_get(l, "weights"), k, w)
                o += snprintf(got + o, sizeof got - o, "%s%s", k ? "," : "",
                              json_string_value(json_object_get(w, "name")));
            CHECK(strcmp(got, shorts[i].names) == 0, "%s: short names '%s', expected '%s'",
                  shorts[i].file, got, shorts[i].names);
            CHECK(json_integer_value(json_object_get(l, "params")) == shorts[i].params,
                  "%s: params %lld", shorts[i].file,
                  (long long)json_integer_value(json_object_get(l, "params")));
            w = json_array_get(json_object_get(l, "weights"), 0);
            CHECK(json_is_array(json_object_get(w, "shape")) &&
                      strcmp(json_string_value(json_object_get(w, "dtype")), "float32") == 0,
                  "%s: weight entry", shorts[i].file);
        }
        eng_error_release(&e);
        json_decref(a);
        eng_summary_free(s2);
        if (fd2 >= 0) close(fd2);
    }
}

/* Generated cases: expected verdict, format, layers, params, message part. */
static const struct gcase {
    const char *file;
    eng_code rc;
    eng_format format;
    size_t nlayers;
    unsigned long long params;
    const char *msg; /* substring of err.msg when refused */
} gcases[] = {
    {"case_split_names.h5", ENG_OK, ENG_FMT_KERAS2_WEIGHTS, 3, 12, NULL},
    {"case_vlen_names.h5", ENG_OK, ENG_FMT_KERAS2_WEIGHTS, 2, 20, NULL},
    {"case_utf8_names.h5", ENG_OK, ENG_FMT_KERAS2_WEIGHTS, 1, 4, NULL},
    {"case_dtypes.h5", ENG_OK, ENG_FMT_KERAS3_WEIGHTS, 7, 48, NULL},
    {"case_stored.keras", ENG_OK, ENG_FMT_KERAS3_ARCHIVE, 1, 15, NULL},
    {"case_missing_weight.h5", ENG_ERR_FORMAT, 0, 0, 0, "'dense_1/bias:0' listed in weight_names"},
    {"case_missing_layer.h5", ENG_ERR_FORMAT, 0, 0, 0, "layer 'dense_9' is listed in layer_names"},
    {"case_abs_weight.h5", ENG_ERR_FORMAT, 0, 0, 0, "'/other/w'"},
    {"case_external_link.h5", ENG_ERR_FORMAT, 0, 0, 0, "external link"},
    {"case_soft_link.h5", ENG_ERR_FORMAT, 0, 0, 0, "soft link"},
    {"case_external_storage.h5", ENG_ERR_FORMAT, 0, 0, 0, "external files"},
    {"case_virtual.h5", ENG_ERR_FORMAT, 0, 0, 0, "virtual dataset"},
    {"case_gzip.h5", ENG_ERR_FORMAT, 0, 0, 0, "filter 'deflate'"},
    {"case_chunked.h5", ENG_ERR_FORMAT, 0, 0, 0, "is chunked"},
    {"case_compact.h5", ENG_ERR_FORMAT, 0, 0, 0, "compact storage"},
    {"case_no_layout.h5", ENG_ERR_FORMAT, 0, 0, 0, "HDF5 file without a Keras weight layout"},
    {"case_not_hdf5.bin", ENG_ERR_FORMAT, 0, 0, 0, "not an HDF5 file"},
    {"case_k3_gap.h5", ENG_ERR_FORMAT, 0, 0, 0, "not a var index"},
    {"case_k3_cycle.h5", ENG_ERR_LIMIT, 0, 0, 0, "deeper than"},
    {"case_k3_extlink.h5", ENG_ERR_FORMAT, 0, 0, 0, "'layers/evil' is an external link"},
    {"case_deflated.keras", ENG_ERR_FORMAT, 0, 0, 0, "compressed (method 8)"},
    {"case_no_weights.keras", ENG_ERR_FORMAT, 0, 0, 0, "no member 'model.weights.h5'"},
    {"case_inner_not_hdf5.keras", ENG_ERR_FORMAT, 0, 0, 0,
     "'model.weights.h5' is not an HDF5 file"},
    {"case_zip_bad_offset.keras", ENG_ERR_FORMAT, 0, 0, 0, "bad local header"},
};

static void test_generated_cases(void)
{
    for (size_t i = 0; i < sizeof gcases / sizeof gcases[0]; i++) {
        const struct gcase *c = &gcases[i];
        eng_summary *s = NULL;
        eng_error e = {0};
        eng_code rc = eng_summary_read(path_in(datadir, c->file), &s, &e);
        CHECK(rc == c->rc, "%s: rc %d (%s), expected %d", c->file, rc, e.msg, c->rc);
        if (rc == ENG_OK && c->rc == ENG_OK) {
            unsigned long long p = 0;
            for (size_t l = 0; l < s->nlayers; l++)
                for (size_t k = 0; k < s->layers[l].ntensors; k++)
                    p += elements(&s->layers[l].tensors[k]);
            CHECK(s->format == c->format, "%s: format %s", c->file, eng_format_name(s->format));
            CHECK(s->nlayers == c->nlayers, "%s: %zu layers", c->file, s->nlayers);
            CHECK(p == c->params, "%s: %llu params", c->file, p);
        }
        if (rc != ENG_OK && c->msg)
            CHECK(strstr(e.msg, c->msg) != NULL, "%s: message '%s' lacks '%s'", c->file, e.msg,
                  c->msg);
        eng_summary_free(s);
        eng_error_release(&e);
    }
    /* Keras 3 naming rules on case_dtypes.h5 */
    int fd = -1;
    eng_summary *s = open_summary("case_dtypes.h5", &fd);
    if (s) {
        static const char *const names[] = {
            "mha", "mha/query_dense", "mixed", "seq", "seq/layers/flip", "encoder", "/"};
        for (size_t i = 0; i < s->nlayers && i < 7; i++)
            CHECK(strcmp(s->layers[i].name, names[i]) == 0,
                  "case_dtypes: layer %zu '%s', expected '%s'", i, s->layers[i].name, names[i]);
        const eng_wlayer *mixed = &s->layers[2];
        CHECK(mixed->ntensors == 11 && strcmp(mixed->tensors[10].name, "10") == 0,
              "vars in numeric order");
        static const eng_dtype dts[] = {ENG_DT_F64, ENG_DT_F16, ENG_DT_I64,  ENG_DT_I32,
                                        ENG_DT_F32, ENG_DT_F32, ENG_DT_F32,  ENG_DT_F32,
                                        ENG_DT_F32, ENG_DT_F32, ENG_DT_OTHER};
        for (size_t k = 0; k < mixed->ntensors && k < 11; k++)
            CHECK(mixed->tensors[k].dtype == dts[k], "mixed var %zu dtype %s", k,
                  eng_dtype_name(mixed->tensors[k].dtype));
        CHECK(mixed->tensors[5].rank == 0 && mixed->tensors[6].offset == ENG_NO_OFFSET,
              "scalar / empty tensors");
        /* bad calls */
        float v[8];
        eng_error e = {0};
        CHECK(eng_tensor_read_f32(fd, &mixed->tensors[0], v, 5, &e) != ENG_OK,
              "count mismatch refused");
        eng_error_release(&e);
        memset(&e, 0, sizeof e);
        eng_tensor t = mixed->tensors[0];
        t.offset = ENG_NO_OFFSET;
        CHECK(eng_tensor_read_f32(fd, &t, v, 6, &e) != ENG_OK, "no offset refused");
        eng_error_release(&e);
        memset(&e, 0, sizeof e);
        CHECK(eng_tensor_read_f32(fd, &mixed->tensors[6], v, 0, &e) == ENG_OK,
              "empty tensor reads");
        eng_error_release(&e);
        eng_summary_free(s);
        close(fd);
    }
}

/* A real fixture cut short: refused, or (if libhdf5 does not notice) an
 * internally consistent summary whose reads fail cleanly. Never a crash. */
static void test_truncated(void)
{
    static const struct {
        const char *file;
        long len;
    } cuts[] = {
        {"k2_2.1.2_weights_mnist_cnn.h5", 0},      {"k2_2.1.2_weights_mnist_cnn.h5", 7},
        {"k2_2.1.2_weights_mnist_cnn.h5", 2048},   {"k2_2.1.2_weights_mnist_cnn.h5", 100000},
        {"k2_2.1.2_weights_mnist_cnn.h5", 264000}, {"k3_3.11.3_mnist_cnn.keras", 200000},
        {"k3_3.11.3_mnist_cnn.keras", 292700},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char tmp[] = "/tmp/strata_h5_trunc_XXXXXX";
        int out = mkstemp(tmp), in = open(path_in(fixdir, cuts[i].file), O_RDONLY);
        CHECK(out >= 0 && in >= 0, "temp file");
        if (out < 0 || in < 0) {
            if (out >= 0) close(out);
            if (in >= 0) close(in);
            continue;
        }
        char *buf = malloc((size_t)cuts[i].len + 1);
        ssize_t r = pread(in, buf, (size_t)cuts[i].len, 0);
        CHECK(r == cuts[i].len && write(out, buf, (size_t)r) == r, "copy");
        free(buf);
        close(in);
        close(out);
        eng_summary *s = NULL;
        eng_error e = {0};
        eng_code rc = eng_summary_read(tmp, &s, &e);
        if (rc == ENG_OK) {
            json_t *j = eng_summary_to_json(s);
            eng_summary *s2 = NULL;
            CHECK(j && eng_summary_from_json(j, &s2, &e) == ENG_OK,
                  "%s cut at %ld: inconsistent summary", cuts[i].file, cuts[i].len);
            CHECK(s->hdf5_offset + s->hdf5_size <= (uint64_t)cuts[i].len,
                  "%s cut: image beyond file", cuts[i].file);
            eng_summary_free(s2);
            json_decref(j);
        } else {
            CHECK(rc == ENG_ERR_FORMAT || rc == ENG_ERR_IO, "%s cut at %ld: rc %d: %s",
                  cuts[i].file, cuts[i].len, rc, e.msg);
        }
        eng_summary_free(s);
        eng_error_release(&e);
        unlink(tmp);
    }
}

/* to_json/from_json: lossless on every fixture; tampering refused. */
static void test_json_roundtrip(void)
{
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        eng_summary *s = NULL, *s2 = NULL;
        eng_error e = {0};
        if (eng_summary_read(path_in(fixdir, fixtures[f].file), &s, &e) != ENG_OK) {
            eng_error_release(&e);
            continue;
        }
        json_t *j = eng_summary_to_json(s);
        char *text = json_dumps(j, JSON_COMPACT);
        json_t *back = text ? json_loads(text, 0, NULL) : NULL;
        CHECK(back && eng_summary_from_json(back, &s2, &e) == ENG_OK, "%s: from_json: %s",
              fixtures[f].file, e.msg);
        json_t *j2 = s2 ? eng_summary_to_json(s2) : NULL;
        CHECK(j2 && json_equal(j, j2), "%s: round trip not lossless", fixtures[f].file);
        if (s2) {
            CHECK(s2->nlayers == s->nlayers && s2->file_size == s->file_size &&
                      s2->format == s->format,
                  "%s: round trip fields", fixtures[f].file);
        }
        json_decref(j2);
        json_decref(back);
        free(text);
        eng_summary_free(s2);
        eng_error_release(&e);

        if (f == 0) {
            /* tamper with copies of this summary's JSON */
            static const struct {
                const char *what;
                const char *key;
                int layer, tensor;
                const char *value;
                eng_code rc;
            } tampers[] = {
                {"offset beyond file", "offset", 0, 0, "3585832", ENG_ERR_FORMAT},
                {"offset below image", "offset", 0, 0, "-1", ENG_ERR_FORMAT},
                {"nbytes vs dtype", "nbytes", 0, 0, "12", ENG_ERR_FORMAT},
                {"rank 9", "shape", 0, 0, "[1,1,1,1,1,1,1,1,1]", ENG_ERR_LIMIT},
                {"negative dim", "shape", 0, 0, "[-32,3,3,3]", ENG_ERR_FORMAT},
                {"too many elements", "shape", 0, 0, "[65536,65536,2]", ENG_ERR_LIMIT},
                {"dim not integer", "shape", 0, 0, "[32.5,3,3,3]", ENG_ERR_FORMAT},
                {"unknown dtype", "dtype", 0, 0, "\"complex64\"", ENG_ERR_FORMAT},
                {"empty name", "name", 0, 0, "\"\"", ENG_ERR_FORMAT},
                {"embedded NUL", "name", 0, 0, "\"a\\u0000b\"", ENG_ERR_FORMAT},
                {"path missing", "path", 0, 0, "null", ENG_ERR_FORMAT},
                {"layer name too long", "name", 0, -1, NULL, ENG_ERR_FORMAT},
                {"file_size small", "file_size", -1, -1, "100", ENG_ERR_FORMAT},
                {"hdf5_size beyond", "hdf5_size", -1, -1, "3585833", ENG_ERR_FORMAT},
                {"bad format", "format", -1, -1, "\"keras9\"", ENG_ERR_FORMAT},
                {"layers not array", "layers", -1, -1, "{}", ENG_ERR_FORMAT},
            };
            for (size_t t = 0; t < sizeof tampers / sizeof tampers[0]; t++) {
                json_t *c = json_deep_copy(j), *v;
                if (tampers[t].value) {
                    v = json_loads(tampers[t].value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
                } else {
                    char big[ENG_MAX_NAME + 2];
                    memset(big, 'x', sizeof big - 1);
                    big[sizeof big - 1] = '\0';
                    v = json_string(big);
                }
                json_t *target = c;
                if (tampers[t].layer >= 0)
                    target = json_array_get(json_object_get(c, "layers"), (size_t)tampers[t].layer);
                if (tampers[t].tensor >= 0)
                    target = json_array_get(json_object_get(target, "tensors"),
                                            (size_t)tampers[t].tensor);
                json_object_set_new(target, tampers[t].key, v);
                eng_summary *bad = NULL;
                eng_error e2 = {0};
                eng_code rc = eng_summary_from_json(c, &bad, &e2);
                CHECK(rc != ENG_OK, "tamper '%s' accepted", tampers[t].what);
                CHECK(rc == ENG_OK || bad == NULL, "tamper '%s': out set on failure",
                      tampers[t].what);
                eng_summary_free(bad);
                eng_error_release(&e2);
                json_decref(c);
            }
            /* too many layers */
            json_t *c = json_deep_copy(j), *ls = json_object_get(c, "layers");
            json_t *one = json_array_get(ls, 1);
            while (json_array_size(ls) <= ENG_MAX_LAYERS) json_array_append(ls, one);
            eng_summary *bad = NULL;
            eng_error e2 = {0};
            CHECK(eng_summary_from_json(c, &bad, &e2) == ENG_ERR_LIMIT, "too many layers: %s",
                  e2.msg);
            eng_error_release(&e2);
            json_decref(c);
            CHECK(eng_summary_from_json(json_array_get(ls, 0), &bad, &e2) != ENG_OK,
                  "non-summary object");
            eng_error_release(&e2);
        }
        json_decref(j);
        eng_summary_free(s);
    }
}

int main(void)
{
    const char *fx = check_fixtures();
    const char *tests = getenv("STRATA_TESTS");
    snprintf(datadir, sizeof datadir, "%s/data/h5", tests ? tests : "tests");
    if (!fx) {
        SKIP_LOUD(
            "STRATA_FIXTURES not set or without keras/SOURCES.md: Keras fixture tests not run");
        return check_done();
    }
    snprintf(fixdir, sizeof fixdir, "%s/keras", fx);
    test_fixture_layouts();
    test_values_vs_h5py();
    test_layers_json();
    test_generated_cases();
    test_truncated();
    test_json_roundtrip();
    H5close(); /* libhdf5's global state, so LeakSanitizer sees only ours */
    return check_done();
}
