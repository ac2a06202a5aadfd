/* tests/unit/test_storage_history.c — storage/history.c: batches (added vs
 * updated, an epoch replaced whole, the later of two rows wins), all or
 * nothing on bad input, reading back (ranges, metric filters, NAN holes,
 * checkpoints from st_version_create), the run list (best min/max, counts,
 * paging) and metric name rules. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "storage.h"

static st_store *st;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static st_code put(const char *model, const char *run, size_t nm, const char *const *metrics,
                   size_t ne, const int64_t *epochs, const double *values, int64_t *added,
                   int64_t *updated)
{
    st_error err = {0};
    st_history_batch b = {.run = run,
                          .nmetrics = nm,
                          .metrics = metrics,
                          .nepochs = ne,
                          .epochs = epochs,
                          .values = values};
    st_code rc = st_history_put(st, model, &b, added, updated, &err);
    st_error_release(&err);
    return rc;
}

/* Total values stored for the model (all runs). */
static size_t count_values(const char *model)
{
    st_history *h = NULL;
    st_error err = {0};
    size_t n = 0;
    if (st_history_get(st, model, NULL, &h, &err) == ST_OK)
        for (size_t k = 0; k < h->nruns; k++)
            for (size_t j = 0; j < h->runs[k].nmetrics; j++)
                for (size_t i = 0; i < h->runs[k].nepochs; i++)
                    n += !isnan(h->runs[k].columns[j][i]);
    st_history_free(h);
    st_error_release(&err);
    return n;
}

static void blob(const char *content, char hex[65])
{
    st_upload *up = NULL;
    st_error err = {0};
    uint64_t size;
    if (st_upload_begin(st, &up, &err) || st_upload_write(up, content, strlen(content), &err) ||
        st_upload_finish(up, hex, &size, &err) || st_upload_commit(up, &err))
        fprintf(stderr, "blob: %s\n", err.msg);
}

static void test_put_get(void)
{
    static const char *const m2[] = {"val_loss", "loss"};
    static const int64_t e3[] = {0, 1, 2};
    static const double v3[] = {1.0, 0.5, NAN, 0.4, 0.8, 0.3};
    int64_t a = -1, u = -1;
    st_history *h = NULL;
    st_error err = {0};

    CHECK(put("h", "r1", 2, m2, 3, e3, v3, &a, &u) == ST_OK, "put 3 epochs");
    CHECK(a == 3 && u == 0, "added %lld updated %lld", (long long)a, (long long)u);
    /* epoch 2 again with only loss: replaces the whole epoch; epoch 3 new. */
    {
        static const char *const m1[] = {"loss"};
        static const int64_t e[] = {3, 2};
        static const double v[] = {0.2, 0.25};
        CHECK(put("h", "r1", 1, m1, 2, e, v, &a, &u) == ST_OK, "put again");
        CHECK(a == 1 && u == 1, "added %lld updated %lld", (long long)a, (long long)u);
    }
    /* the later of two rows of one epoch wins, counted once */
    {
        static const char *const m1[] = {"loss"};
        static const int64_t e[] = {4, 4};
        static const double v[] = {9.0, 0.1};
        CHECK(put("h", "r1", 1, m1, 2, e, v, &a, &u) == ST_OK, "put dup");
        CHECK(a == 1 && u == 0, "dup: added %lld updated %lld", (long long)a, (long long)u);
    }
    CHECK(st_history_get(st, "h", NULL, &h, &err) == ST_OK, "get: %s", err.msg);
    if (h && h->nruns == 1) {
        st_history_run *r = &h->runs[0];
        CHECK(r->nepochs == 5 && r->nmetrics == 2, "shape %zu x %zu", r->nepochs, r->nmetrics);
        CHECK(strcmp(r->metrics[0], "loss") == 0 && strcmp(r->metrics[1], "val_loss") == 0,
              "metrics sorted");
        CHECK(r->columns[0][0] == 0.5 && r->columns[0][1] == 0.4 && r->columns[0][2] == 0.25 &&
                  r->columns[0][3] == 0.2 && r->columns[0][4] == 0.1,
              "loss column");
        CHECK(r->columns[1][0] == 1.0 && isnan(r->columns[1][1]) && isnan(r->columns[1][2]),
              "val_loss: a hole at 1, gone at 2 (epoch replaced whole)");
    } else {
        CHECK(0, "one run expected");
    }
    st_history_free(h);
    h = NULL;

    /* filters: one metric, epoch range */
    {
        const char *want[] = {"loss"}, *vl[] = {"val_loss"};
        st_history_query q = {.run = "r1",
                              .metrics = want,
                              .nmetrics = 1,
                              .has_from = 1,
                              .from_epoch = 1,
                              .has_to = 1,
                              .to_epoch = 3};
        CHECK(st_history_get(st, "h", &q, &h, &err) == ST_OK, "get filtered: %s", err.msg);
        CHECK(h && h->nruns == 1 && h->runs[0].nepochs == 3 && h->runs[0].epochs[0] == 1 &&
                  h->runs[0].nmetrics == 1 && h->runs[0].columns[0][2] == 0.2,
              "loss in 1..3");
        st_history_free(h);
        h = NULL;
        q.metrics = vl;
        CHECK(st_history_get(st, "h", &q, &h, &err) == ST_OK, "get val_loss: %s", err.msg);
        CHECK(h && h->nruns == 1 && h->runs[0].nepochs == 0 && h->runs[0].nmetrics == 1,
              "no val_loss in 1..3");
        st_history_free(h);
        h = NULL;
    }
    {
        st_history_query q = {.run = "nope"};
        CHECK(st_history_get(st, "h", &q, &h, &err) == ST_ERR_NOT_FOUND, "unknown run");
        st_error_release(&err);
        memset(&err, 0, sizeof err);
        CHECK(st_history_get(st, "nomodel", NULL, &h, &err) == ST_ERR_NOT_FOUND, "unknown model");
        st_error_release(&err);
        memset(&err, 0, sizeof err);
    }
}

static void test_all_or_nothing(void)
{
    static const char *const m[] = {"loss"};
    static const char *const badm[] = {"loss", "bad name"};
    static const char *const dupm[] = {"loss", "loss"};
    static const char *const epm[] = {"epoch"};
    static const int64_t e[] = {10, 11}, neg[] = {10, -1};
    static const double v[] = {1.0, 2.0}, inf[] = {1.0, INFINITY}, none[] = {1.0, NAN};
    static const double v22[] = {1, 2, 3, 4};
    size_t before = count_values("h");

    CHECK(put("h", "r1", 1, m, 2, neg, v, NULL, NULL) == ST_ERR_INVALID, "negative epoch");
    CHECK(put("h", "r1", 1, m, 2, e, inf, NULL, NULL) == ST_ERR_INVALID, "inf value");
    CHECK(put("h", "r1", 1, m, 2, e, none, NULL, NULL) == ST_ERR_INVALID, "epoch without values");
    CHECK(put("h", "r1", 2, badm, 2, e, v22, NULL, NULL) == ST_ERR_INVALID, "bad metric name");
    CHECK(put("h", "r1", 2, dupm, 2, e, v22, NULL, NULL) == ST_ERR_INVALID, "metric twice");
    CHECK(put("h", "r1", 1, epm, 2, e, v, NULL, NULL) == ST_ERR_INVALID, "metric 'epoch'");
    CHECK(put("h", "bad run", 1, m, 2, e, v, NULL, NULL) == ST_ERR_INVALID, "bad run");
    CHECK(put("h", NULL, 1, m, 2, e, v, NULL, NULL) == ST_ERR_INVALID, "no run");
    CHECK(put("h", "r1", 1, m, 0, e, v, NULL, NULL) == ST_ERR_INVALID, "no epochs");
    CHECK(put("nomodel", "r1", 1, m, 2, e, v, NULL, NULL) == ST_ERR_NOT_FOUND, "unknown model");
    CHECK(count_values("h") == before, "nothing stored: %zu vs %zu", count_values("h"), before);

    CHECK(st_metric_name_valid("val_sparse_categorical_accuracy"), "keras name");
    CHECK(st_metric_name_valid("output_1/loss"), "slash ok");
    CHECK(!st_metric_name_valid("a,b") && !st_metric_name_valid("") &&
              !st_metric_name_valid("a\tb") && !st_metric_name_valid("q\"") &&
              !st_metric_name_valid("epoch"),
          "bad names");
    {
        char longname[130];
        memset(longname, 'a', 129);
        longname[129] = '\0';
        CHECK(!st_metric_name_valid(longname), "129 chars");
        longname[128] = '\0';
        CHECK(st_metric_name_valid(longname), "128 chars");
    }
}

/* Checkpoint uploads with run/epoch/metrics land in history and list as
 * checkpoints; the run list's best follows min/max by name. */
static void test_checkpoints_and_runs(void)
{
    static const char *const mets[] = {"val_loss", "val_accuracy"};
    static const char *const ms[] = {
        "{\"val_loss\":0.9,\"val_accuracy\":0.5}",
        "{\"val_loss\":0.4,\"val_accuracy\":0.7}",
        "{\"val_loss\":0.6,\"val_accuracy\":0.8}",
    };
    st_error err = {0};
    st_history *h = NULL;
    json_t *out = NULL, *it;

    for (int i = 0; i < 3; i++) {
        char content[64], hex[65];
        json_t *v = NULL;
        snprintf(content, sizeof content, "ckpt-%d", i);
        blob(content, hex);
        st_version_new vn = {.model = "h",
                             .digest = hex,
                             .size = strlen(content),
                             .format = "keras2-weights",
                             .run = "r2",
                             .has_epoch = 1,
                             .epoch = i * 5,
                             .metrics = ms[i]};
        CHECK(st_version_create(st, &vn, &v, &err) == ST_OK, "version: %s", err.msg);
        json_decref(v);
    }
    {
        st_history_query q = {.run = "r2"};
        CHECK(st_history_get(st, "h", &q, &h, &err) == ST_OK, "get r2: %s", err.msg);
        if (h && h->nruns == 1) {
            st_history_run *r = &h->runs[0];
            CHECK(r->nepochs == 3 && r->epochs[2] == 10, "epochs from uploads");
            CHECK(r->ncheckpoints == 3 && r->checkpoints[1].epoch == 5 &&
                      r->checkpoints[1].version == 2,
                  "checkpoints epoch->version");
            CHECK(strcmp(r->metrics[0], mets[1]) == 0, "sorted: val_accuracy first");
        }
        st_history_free(h);
        h = NULL;
    }
    CHECK(st_run_list(st, "h", 0, NULL, &out, &err) == ST_OK, "runs: %s", err.msg);
    CHECK(json_array_size(json_object_get(out, "items")) == 2, "two runs");
    it = json_array_get(json_object_get(out, "items"), 1);
    CHECK(strcmp(json_string_value(json_object_get(it, "run")), "r2") == 0, "r2 second");
    CHECK(json_real_value(json_object_get(json_object_get(json_object_get(it, "best"), "val_loss"),
                                          "value")) == 0.4,
          "best val_loss is the min");
    CHECK(json_integer_value(json_object_get(
              json_object_get(json_object_get(it, "best"), "val_accuracy"), "epoch")) == 10,
          "best val_accuracy is the max, at epoch 10");
    CHECK(json_integer_value(json_object_get(it, "epochs")) == 3 &&
              json_integer_value(json_object_get(it, "last_epoch")) == 10,
          "count and last");
    CHECK(json_array_size(json_object_get(it, "checkpoints")) == 3, "checkpoints listed");
    json_decref(out);
    out = NULL;
    CHECK(st_run_list(st, "h", 1, NULL, &out, &err) == ST_OK, "page 1");
    CHECK(json_is_string(json_object_get(out, "next")), "a cursor");
    {
        char cur[200];
        snprintf(cur, sizeof cur, "%s", json_string_value(json_object_get(out, "next")));
        json_decref(out);
        out = NULL;
        CHECK(st_run_list(st, "h", 1, cur, &out, &err) == ST_OK, "page 2");
        CHECK(json_is_null(json_object_get(out, "next")) &&
                  json_array_size(json_object_get(out, "items")) == 1,
              "last page");
    }
    json_decref(out);
    st_error_release(&err);
}

int main(void)
{
    char dir[] = "/tmp/strata-test-history-XXXXXX";
    st_error err = {0};
    json_t *m = NULL;
    st_model_new mn = {.name = "h"};

    if (!mkdtemp(dir)) return 1;
    if (st_open(dir, &st, &err) != ST_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    CHECK(st_model_create(st, &mn, &m, &err) == ST_OK, "model: %s", err.msg);
    json_decref(m);
    test_put_get();
    test_all_or_nothing();
    test_checkpoints_and_runs();
    st_close(st);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done();
}
