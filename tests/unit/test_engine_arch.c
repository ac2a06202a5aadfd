/* tests/unit/test_engine_arch.c — eng_arch_parse / to_json / canonical / id.
 *
 * Three sources of truth, none of them the engine:
 * - tests/data/arch/<case>/{model.json, expected.json}: params, shapes and
 *   weight shapes done by hand from Keras' documented arithmetic (each
 *   expected.json says how), or the expected refusal (layer, class, path).
 * - tests/golden/<case>/summary.json: parameter counts and output shapes from
 *   the PyTorch golden generator.
 * - the real Keras fixtures: parameter totals from SOURCES.md (the sum over
 *   the matching weight files' tensors, as h5py dumped them); the JSON of
 *   each model.json fixture and the model_config embedded in each full-model
 *   file / .keras archive, accepted or refused with the documented reason.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"
#include "check.h"


static int names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted subdirectory / file names of dir (NULL-terminated, caller frees). */
static char **list_dir(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t l = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
        if (suffix && (l < sl || strcmp(e->d_name + l - sl, suffix))) continue;
        if (n + 2 > cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    v[n] = NULL;
    qsort(v, n, sizeof *v, names_cmp);
    return v;
}

static void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

static int shape_eq(const json_t *a, const json_t *b)
{
    return json_equal((json_t *)a, (json_t *)b);
}

static const json_t *find_layer(const json_t *arch_json, const char *name)
{
    size_t i;
    const json_t *l;
    json_array_foreach (json_object_get(arch_json, "layers"), i, l)
        if (!strcmp(json_string_value(json_object_get(l, "name")), name)) return l;
    return NULL;
}

/* Check an accepted architecture against an expected object. */
static void check_expected(const char *tag, const eng_arch *a, const json_t *exp)
{
    json_t *j = eng_arch_to_json(a);
    const char *keys[] = {"params", "trainable_params", "non_trainable_params"};
    for (int k = 0; k < 3; k++) {
        const json_t *e = json_object_get(exp, keys[k]);
        if (!e) continue;
        CHECK(json_integer_value(json_object_get(j, keys[k])) == json_integer_value(e),
              "%s: %s %lld, expected %lld", tag, keys[k],
              (long long)json_integer_value(json_object_get(j, keys[k])),
              (long long)json_integer_value(e));
    }
    const char *shapes[] = {"input_shape", "output_shape"};
    for (int k = 0; k < 2; k++) {
        const json_t *e = json_object_get(exp, shapes[k]);
        if (!e) continue;
        CHECK(shape_eq(json_object_get(j, shapes[k]), e), "%s: %s differs", tag, shapes[k]);
    }
    const char *lname;
    const json_t *v;
    json_object_foreach ((json_t *)json_object_get(exp, "layers"), lname, v) {
        const json_t *l = find_layer(j, lname);
        CHECK(l != NULL, "%s: layer %s missing", tag, lname);
        if (!l) continue;
        char *got = json_dumps(json_object_get(l, "output_shape"), JSON_COMPACT);
        char *want = json_dumps(v, JSON_COMPACT);
        CHECK(shape_eq(json_object_get(l, "output_shape"), v),
              "%s: layer %s output %s, expected %s", tag, lname, got, want);
        free(got);
        free(want);
    }
    json_object_foreach ((json_t *)json_object_get(exp, "weights"), lname, v) {
        const json_t *l = find_layer(j, lname);
        if (!l) continue;
        const json_t *ws = json_object_get(l, "weights");
        CHECK(json_array_size(ws) == json_array_size(v),
              "%s: layer %s has %zu weights, expected %zu", tag, lname, json_array_size(ws),
              json_array_size(v));
        for (size_t i = 0; i < json_array_size(ws) && i < json_array_size(v); i++)
            CHECK(shape_eq(json_object_get(json_array_get(ws, i), "shape"), json_array_get(v, i)),
                  "%s: layer %s weight %zu shape differs", tag, lname, i);
    }
    json_decref(j);
}

static void run_data_cases(const char *tests)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/data/arch", tests);
    char **cases = list_dir(dir, NULL);
    CHECK(cases && cases[0], "no cases in %s", dir);
    for (size_t c = 0; cases && cases[c]; c++) {
        size_t len = 0;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/model.json", dir, cases[c]);
        if (stat(path, &st) != 0) continue; /* not a case folder (e.g. probe_numpy.py) */
        char *text = check_slurp(path, &len);
        snprintf(path, sizeof path, "%s/%s/expected.json", dir, cases[c]);
        json_t *exp = json_load_file(path, 0, NULL);
        CHECK(text && exp, "case %s: model.json / expected.json unreadable", cases[c]);
        if (!text || !exp) {
            free(text);
            json_decref(exp);
            continue;
        }
        eng_arch *a = NULL;
        eng_error err = {0};
        eng_code rc = eng_arch_parse(text, len, &a, &err);
        if (json_object_get(exp, "error")) {
            CHECK(rc == ENG_ERR_ARCH, "case %s: code %d, expected ENG_ERR_ARCH (%s)", cases[c], rc,
                  err.msg);
            CHECK(a == NULL, "case %s: out set on failure", cases[c]);
            const char *keys[] = {"layer", "class", "path"};
            for (int k = 0; k < 3; k++) {
                const char *want = json_string_value(json_object_get(exp, keys[k]));
                if (!want) continue;
                const char *got = json_string_value(json_object_get(err.details, keys[k]));
                CHECK(got && !strcmp(got, want), "case %s: details.%s '%s', expected '%s' (%s)",
                      cases[c], keys[k], got ? got : "(none)", want, err.msg);
            }
            const char *rcn = json_string_value(json_object_get(exp, "reason_contains"));
            if (rcn) {
                const char *reason = json_string_value(json_object_get(err.details, "reason"));
                CHECK(reason && strstr(err.msg, rcn), "case %s: msg '%s' lacks '%s'", cases[c],
                      err.msg, rcn);
            }
            if (json_string_value(json_object_get(exp, "layer")))
                CHECK(strstr(err.msg, json_string_value(json_object_get(exp, "layer"))) != NULL,
                      "case %s: message does not name the layer: %s", cases[c], err.msg);
        } else {
            CHECK(rc == ENG_OK, "case %s: %s", cases[c], err.msg);
            if (a) check_expected(cases[c], a, exp);
        }
        eng_arch_free(a);
        eng_error_release(&err);
        json_decref(exp);
        free(text);
    }
    free_list(cases);
}

/* Golden cases: summary.json (PyTorch generator) vs our inference. */
static void run_golden_summaries(const char *tests, const char *fixtures)
{
    char dir[4096], path[4400];
    snprintf(dir, sizeof dir, "%s/golden", tests);
    char **cases = list_dir(dir, NULL);
    int seen = 0;
    for (size_t c = 0; cases && cases[c]; c++) {
        snprintf(path, sizeof path, "%s/%s/summary.json", dir, cases[c]);
        json_t *sum = json_load_file(path, 0, NULL);
        if (!sum) continue;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s/model.json", dir, cases[c]);
        char *text = check_slurp(path, &len);
        if (!text) {
            snprintf(path, sizeof path, "%s/%s/fixture_model.txt", dir, cases[c]);
            char *rel = check_slurp(path, NULL);
            if (rel && fixtures) {
                rel[strcspn(rel, "\r\n")] = 0;
                snprintf(path, sizeof path, "%s/%s", fixtures, rel);
                text = check_slurp(path, &len);
            }
            free(rel);
        }
        if (!text) {
            json_decref(sum);
            continue;
        }
        seen++;
        eng_arch *a = NULL;
        eng_error err = {0};
        CHECK(eng_arch_parse(text, len, &a, &err) == ENG_OK, "golden %s: %s", cases[c], err.msg);
        if (a) {
            json_t *exp =
                json_pack("{s:O, s:O, s:O}", "params", json_object_get(sum, "params"),
                          "trainable_params", json_object_get(sum, "trainable_params"),
                          "non_trainable_params", json_object_get(sum, "non_trainable_params"));
            json_t *ls = json_object();
            size_t i;
            const json_t *l;
            json_array_foreach (json_object_get(sum, "layers"), i, l) {
                const json_t *os = json_object_get(l, "output_shape");
                const char *name = json_string_value(json_object_get(l, "name"));
                if (!name || !json_is_array(os) || json_array_size(os) < 1) continue;
                json_t *nb = json_array(); /* drop the batch dim (null) */
                for (size_t k = 1; k < json_array_size(os); k++)
                    json_array_append(nb, json_array_get(os, k));
                json_object_set_new(ls, name, nb);
            }
            json_object_set_new(exp, "layers", ls);
            check_expected(cases[c], a, exp);
            json_decref(exp);
        }
        eng_arch_free(a);
        eng_error_release(&err);
        free(text);
        json_decref(sum);
    }
    free_list(cases);
    if (!seen) SKIP_LOUD("no golden summaries under %s yet", dir);
}

/* Real fixtures. params: SOURCES.md "Total parameters in layer groups" /
 * "Total model (non-optimizer) parameters"; non_trainable: the BN moving
 * statistics in those files (-1: not checked). */
static const struct fixture_case {
    const char *file;
    long long params, non_trainable;
    const char *refused_layer; /* NULL: accepted */
    const char *reason;
} fixture_cases[] = {
    {"k1_1.0.4_cifar10_cnn_th.model.json", 890410, 0, NULL, NULL},
    {"k2_2.0.0_conv2d_dropout.model.json", 1310, 0, NULL, NULL},
    {"k2_2.0.6_cnn_bn_dropout.model.json", 891, 12, NULL, NULL},
    {"k2_2.1.2_mnist_cnn.model.json", 59933, 0, NULL, NULL},
    {"k3_3.10.0_mnist_cnn.model.json", 179926, 0, NULL, NULL},
    /* embedded model_config / config.json */
    {"k1_1.1.2_full_cnn_tf.h5", 64, 0, NULL, NULL},
    {"k1_1.2.2_full_dense_bn_conv2d_tf.h5", 49985, 20, NULL, NULL},
    {"k2_2.1.3_full_cnn_bn.h5", 79, 2, NULL, NULL},
    {"k3_3.10.0_legacy_full_mnist_cnn.h5", 179926, 0, NULL, NULL},
    {"tfk_2.2.4-tf_full_depthwise_cnn.h5", 110, 0, NULL, NULL},
    /* Embedding (integer token input) + Conv1D: outside a 2-D CNN engine */
    {"tfk_2.4.0_full_conv1d_adam.h5", 0, 0, "embedding", "Embedding"},
    {"k3_3.11.3_mnist_cnn.keras", 21898, 0, NULL, NULL},
};

static void run_fixtures(const char *fixtures)
{
    char dir[4096], path[4400];
    snprintf(dir, sizeof dir, "%s/keras", fixtures);
    for (size_t i = 0; i < sizeof fixture_cases / sizeof fixture_cases[0]; i++) {
        const struct fixture_case *fc = &fixture_cases[i];
        snprintf(path, sizeof path, "%s/%s", dir, fc->file);
        char *text = NULL;
        size_t len = 0;
        eng_error err = {0};
        if (strstr(fc->file, ".model.json")) {
            text = check_slurp(path, &len);
        } else {
            eng_summary *s = NULL;
            if (eng_summary_read(path, &s, &err) == ENG_OK && s->model_config) {
                text = strdup(s->model_config);
                len = strlen(text);
            }
            CHECK(text != NULL, "%s: no embedded model config (%s)", fc->file, err.msg);
            eng_summary_free(s);
            eng_error_release(&err);
        }
        if (!text) continue;
        eng_arch *a = NULL;
        eng_code rc = eng_arch_parse(text, len, &a, &err);
        if (fc->refused_layer) {
            CHECK(rc == ENG_ERR_ARCH, "%s: expected refusal, got %d", fc->file, rc);
            const char *l = json_string_value(json_object_get(err.details, "layer"));
            CHECK(l && !strcmp(l, fc->refused_layer), "%s: refusal names layer '%s'", fc->file,
                  l ? l : "(none)");
            CHECK(strstr(err.msg, fc->reason) != NULL, "%s: reason '%s'", fc->file, err.msg);
        } else {
            CHECK(rc == ENG_OK, "%s: %s", fc->file, err.msg);
            if (a) {
                json_t *exp = json_pack("{s:I, s:I}", "params", (json_int_t)fc->params,
                                        "non_trainable_params", (json_int_t)fc->non_trainable);
                check_expected(fc->file, a, exp);
                json_decref(exp);
            }
        }
        eng_arch_free(a);
        eng_error_release(&err);
        free(text);
    }
    /* every model.json fixture is in the table */
    char **jsons = list_dir(dir, ".model.json");
    for (size_t k = 0; jsons && jsons[k]; k++) {
        bool listed = false;
        for (size_t i = 0; i < sizeof fixture_cases / sizeof fixture_cases[0]; i++)
            listed |= !strcmp(fixture_cases[i].file, jsons[k]);
        CHECK(listed, "fixture %s has no case in test_engine_arch.c", jsons[k]);
    }
    free_list(jsons);

    /* spot checks on shapes documented in SOURCES.md */
    snprintf(path, sizeof path, "%s/k2_2.1.2_mnist_cnn.model.json", dir);
    size_t len = 0;
    char *text = check_slurp(path, &len);
    eng_arch *a = NULL;
    eng_error err = {0};
    if (text && eng_arch_parse(text, len, &a, &err) == ENG_OK) {
        json_t *exp = json_loads(
            "{\"input_shape\":[28,28,1],\"output_shape\":[10],"
            "\"layers\":{\"conv2d_1\":[24,24,30],\"max_pooling2d_1\":[12,12,30],"
            "\"conv2d_2\":[10,10,15],\"max_pooling2d_2\":[5,5,15],\"flatten_1\":[375]},"
            "\"weights\":{\"conv2d_1\":[[5,5,1,30],[30]],\"dense_1\":[[375,128],[128]]}}",
            0, NULL);
        check_expected("mnist shapes", a, exp);
        json_decref(exp);
    }
    eng_arch_free(a);
    free(text);
    /* Keras 1 'th': kernel spec is Keras 2's (kh,kw,in,out); shapes CHW */
    snprintf(path, sizeof path, "%s/k1_1.0.4_cifar10_cnn_th.model.json", dir);
    text = check_slurp(path, &len);
    a = NULL;
    if (text && eng_arch_parse(text, len, &a, &err) == ENG_OK) {
        json_t *exp =
            json_loads("{\"input_shape\":[3,32,32],\"layers\":{\"convolution2d_1\":[32,30,30],"
                       "\"maxpooling2d_2\":[64,5,5],\"flatten_1\":[1600]},"
                       "\"weights\":{\"convolution2d_1\":[[3,3,3,32],[32]]}}",
                       0, NULL);
        check_expected("k1 th shapes", a, exp);
        json_decref(exp);
    }
    eng_arch_free(a);
    eng_error_release(&err);
    free(text);
}

static void run_canonical(void)
{
    const char *t1 =
        "{\"class_name\": \"Sequential\", \"config\": [{\"class_name\": \"Dense\", "
        "\"config\": {\"units\": 3, \"name\": \"d\", \"batch_input_shape\": [null, 4]}}]}";
    const char *t2 =
        "{ \"config\" : [ { \"config\" : { \"batch_input_shape\":[null,4], \"name\":\"d\","
        " \"units\":3 }, \"class_name\":\"Dense\" } ],\n \"class_name\":\"Sequential\" }";
    const char *t3 =
        "{\"class_name\": \"Sequential\", \"config\": [{\"class_name\": \"Dense\", "
        "\"config\": {\"units\": 5, \"name\": \"d\", \"batch_input_shape\": [null, 4]}}]}";
    eng_arch *a = NULL, *b = NULL, *c = NULL;
    eng_error err = {0};
    CHECK(eng_arch_parse(t1, strlen(t1), &a, &err) == ENG_OK, "t1: %s", err.msg);
    CHECK(eng_arch_parse(t2, strlen(t2), &b, &err) == ENG_OK, "t2: %s", err.msg);
    CHECK(eng_arch_parse(t3, strlen(t3), &c, &err) == ENG_OK, "t3: %s", err.msg);
    if (a && b && c) {
        CHECK(!strcmp(
                  eng_arch_canonical(a),
                  "{\"class_name\":\"Sequential\",\"config\":[{\"class_name\":\"Dense\",\"config\":"
                  "{\"batch_input_shape\":[null,4],\"name\":\"d\",\"units\":3}}]}"),
              "canonical: %s", eng_arch_canonical(a));
        CHECK(!strcmp(eng_arch_id(a), eng_arch_id(b)), "same config, different ids");
        CHECK(strcmp(eng_arch_id(a), eng_arch_id(c)) != 0, "different configs, same id");
        CHECK(!strncmp(eng_arch_id(a), "sha256:", 7) && strlen(eng_arch_id(a)) == 71, "id form %s",
              eng_arch_id(a));
        /* sha256 of the canonical text, computed independently */
        FILE *p = popen(
            "printf '%s' '{\"class_name\":\"Sequential\",\"config\":[{\"class_name\":\"Dense\","
            "\"config\":{\"batch_input_shape\":[null,4],\"name\":\"d\",\"units\":3}}]}' | sha256sum",
            "r");
        char line[128] = "";
        if (p && fgets(line, sizeof line, p)) {
            line[64] = 0;
            CHECK(!strcmp(eng_arch_id(a) + 7, line), "id %s, sha256sum %s", eng_arch_id(a), line);
        }
        if (p) pclose(p);
        json_t *j = eng_arch_to_json(a);
        CHECK(j && !strcmp(json_string_value(json_object_get(j, "framework")), "keras"),
              "framework");
        json_decref(j);
    }
    eng_arch_free(a);
    eng_arch_free(b);
    eng_arch_free(c);
    /* duplicate keys and non-objects refused */
    const char *bad[] = {"[1,2]",
                         "{\"class_name\":\"Sequential\",\"class_name\":\"Model\",\"config\":[]}",
                         "{\"class_name\":\"Sequential\",\"config\":[]}", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        eng_arch *x = NULL;
        eng_error e2 = {0};
        CHECK(eng_arch_parse(bad[i], strlen(bad[i]), &x, &e2) == ENG_ERR_ARCH && !x,
              "bad[%zu] accepted", i);
        eng_error_release(&e2);
    }
}

int main(void)
{
    const char *tests = getenv("STRATA_TESTS");
    const char *fixtures = check_fixtures();
    run_canonical();
    if (tests) {
        run_data_cases(tests);
        run_golden_summaries(tests, fixtures);
    } else {
        SKIP_LOUD("STRATA_TESTS not set: data-driven cases not run");
    }
    if (fixtures) run_fixtures(fixtures);
    else SKIP_LOUD("STRATA_FIXTURES not set or incomplete: real Keras fixtures not checked");
    return check_done();
}
