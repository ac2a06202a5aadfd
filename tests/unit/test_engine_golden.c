/* tests/unit/test_engine_golden.c — the forward pass against golden vectors.
 *
 * Consumes $STRATA_TESTS/golden/<case>/ (see tests/golden/README.md): the
 * architecture (model.json, or fixture_model.txt naming a fixture JSON), the
 * weights (weights.h5, or fixture.txt naming a fixture file relative to
 * $STRATA_FIXTURES), input.json and expected.json computed by PyTorch in
 * float64 — an implementation sharing no code with the engine. Every output
 * must satisfy |got - expected| <= 1e-5 + 1e-4 * |expected|. Each case is
 * also run through eng_validate (it must pass).
 */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "check.h"


/* A one-line file holding a path relative to the fixtures dir. */
static bool fixture_path(const char *file, const char *fixtures, char *out, size_t n)
{
    char *rel = check_slurp(file, NULL);
    if (!rel) return false;
    rel[strcspn(rel, "\r\n")] = 0;
    snprintf(out, n, "%s/%s", fixtures ? fixtures : "", rel);
    free(rel);
    return fixtures != NULL;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static float *floats_of(const json_t *data, size_t *n)
{
    *n = json_array_size(data);
    float *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; v && i < *n; i++) v[i] = (float)json_number_value(json_array_get(data, i));
    return v;
}

/* 1 ran, 0 skipped */
static int run_case(const char *dir, const char *name, const char *fixtures)
{
    char base[4400], path[8800], wpath[8800];
    snprintf(base, sizeof base, "%s/%s", dir, name);
    snprintf(path, sizeof path, "%s/input.json", base);
    json_t *input = json_load_file(path, 0, NULL);
    snprintf(path, sizeof path, "%s/expected.json", base);
    json_t *expected = json_load_file(path, 0, NULL);
    char *text = NULL;
    size_t len = 0;
    int ran = 0;
    eng_arch *a = NULL;
    eng_summary *s = NULL;
    eng_model *m = NULL;
    eng_workspace *ws = NULL;
    float *in = NULL, *exp = NULL, *out = NULL;
    int fd = -1;
    eng_error err = {0};
    if (!input || !expected) goto out; /* not a case folder */

    snprintf(path, sizeof path, "%s/model.json", base);
    text = check_slurp(path, &len);
    if (!text) {
        snprintf(path, sizeof path, "%s/fixture_model.txt", base);
        char fp[8800];
        if (!fixture_path(path, fixtures, fp, sizeof fp)) {
            SKIP_LOUD("golden %s: needs STRATA_FIXTURES for its model JSON", name);
            goto out;
        }
        text = check_slurp(fp, &len);
    }
    snprintf(wpath, sizeof wpath, "%s/weights.h5", base);
    if (access(wpath, R_OK) != 0) {
        snprintf(path, sizeof path, "%s/fixture.txt", base);
        if (!fixture_path(path, fixtures, wpath, sizeof wpath)) {
            SKIP_LOUD("golden %s: needs STRATA_FIXTURES for its weights", name);
            goto out;
        }
    }
    ran = 1;
    CHECK(text != NULL, "golden %s: no model JSON", name);
    if (!text) goto out;
    if (eng_arch_parse(text, len, &a, &err) != ENG_OK) {
        CHECK(0, "golden %s: arch: %s", name, err.msg);
        goto out;
    }
    if (eng_summary_read(wpath, &s, &err) != ENG_OK) {
        CHECK(0, "golden %s: read: %s", name, err.msg);
        goto out;
    }
    fd = open(wpath, O_RDONLY);
    CHECK(fd >= 0, "golden %s: open %s", name, wpath);
    if (fd < 0) goto out;
    if (eng_model_load(a, s, fd, &m, &err) != ENG_OK) {
        CHECK(0, "golden %s: load: %s", name, err.msg);
        goto out;
    }

    const json_t *ishape = json_object_get(input, "shape"),
                 *oshape = json_object_get(expected, "shape");
    size_t batch = (size_t)json_integer_value(json_array_get(ishape, 0));
    size_t nin, nexp;
    in = floats_of(json_object_get(input, "data"), &nin);
    exp = floats_of(json_object_get(expected, "data"), &nexp);
    CHECK(batch > 0 && nin == batch * eng_model_input_size(m),
          "golden %s: input %zu values, model takes %zu x %zu", name, nin, batch,
          eng_model_input_size(m));
    CHECK(nexp == batch * eng_model_output_size(m) &&
              (size_t)json_integer_value(json_array_get(oshape, 0)) == batch,
          "golden %s: expected %zu values, model gives %zu x %zu", name, nexp, batch,
          eng_model_output_size(m));
    if (batch == 0 || nin != batch * eng_model_input_size(m) ||
        nexp != batch * eng_model_output_size(m))
        goto out;
    out = malloc(nexp * sizeof *out);
    ws = eng_workspace_new();
    /* twice: a warm workspace must give the same answer */
    for (int rep = 0; rep < 2; rep++) {
        if (eng_model_predict(m, ws, in, batch, out, &err) != ENG_OK) {
            CHECK(0, "golden %s: predict: %s", name, err.msg);
            goto out;
        }
        double worst = 0;
        size_t at = 0, bad = 0;
        json_t *ed = json_object_get(expected, "data");
        for (size_t i = 0; i < nexp; i++) {
            double e = json_number_value(json_array_get(ed, i));
            double d = fabs((double)out[i] - e), tol = 1e-5 + 1e-4 * fabs(e);
            if (!(d <= tol)) bad++;
            if (!(d / tol <= worst)) {
                worst = d / tol;
                at = i;
            }
        }
        CHECK(bad == 0,
              "golden %s: %zu of %zu outputs out of tolerance; worst [%zu] got %.9g expected %.9g",
              name, bad, nexp, at, out[at], json_number_value(json_array_get(ed, at)));
    }
    /* and the whole validation passes */
    json_t *rep = NULL, *ls = NULL;
    CHECK(eng_validate(a, s, fd, &rep, &ls, &err) == ENG_OK, "golden %s: validate: %s", name,
          err.msg);
    json_decref(rep);
    json_decref(ls);
out:
    eng_error_release(&err);
    eng_workspace_free(ws);
    eng_model_free(m);
    eng_summary_free(s);
    eng_arch_free(a);
    if (fd >= 0) close(fd);
    free(text);
    free(in);
    free(exp);
    free(out);
    json_decref(input);
    json_decref(expected);
    return ran;
}

int main(void)
{
    const char *tests = getenv("STRATA_TESTS");
    const char *fixtures = check_fixtures();
    if (!tests) {
        SKIP_LOUD("STRATA_TESTS not set: golden vectors not checked");
        return check_done();
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/golden", tests);
    DIR *d = opendir(dir);
    if (!d) {
        SKIP_LOUD("no %s: golden vectors not checked", dir);
        return check_done();
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_names);
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        ran += run_case(dir, names[i], fixtures);
        free(names[i]);
    }
    free(names);
    if (!ran) SKIP_LOUD("no golden case in %s could run", dir);
    printf("%d golden cases run\n", ran);
    return check_done();
}
