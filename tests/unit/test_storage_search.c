/* tests/unit/test_storage_search.c — issue 7's read paths against answers
 * computed here from what was written (never from the same SQL):
 * - st_version_list with order_by=metrics.X and every filter (run, tag,
 *   min/max epoch narrow and wide, paging) equals a sort done in C;
 * - the plan of every search form walks an index (no "TEMP B-TREE" where a
 *   page must come without sorting the model's versions), with and without
 *   statistics (st_version_list_sql is the exact SQL st_version_list runs);
 * - st_run_list's epochs / first / last / best (0004's triggers and
 *   history_best) equal a count over st_history_get, after re-posted
 *   epochs, NAN holes and checkpoints written by INSERT OR REPLACE at a new
 *   and at an existing epoch;
 * - 0004 and 0005 applied to a database that already holds rows fill the
 *   new columns (runs.epochs, version_metrics.run) correctly. */
#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "storage.h"
#include "store_int.h"

/* storage/versions.c: the search's SQL (not in a header: internal). */

#define NV 300
static st_store *st;
static char dir[] = "/tmp/strata-test-search-XXXXXX";
static char hex[65];

struct ver {
    int64_t number, epoch;
    char run[8];
    int has_loss;
    double loss;
};
static struct ver vs[NV + 5];
static int nvs; /* vs[1..nvs] */

static uint64_t rng = 88172645463325252u;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static void make_versions(void)
{
    st_upload *up = NULL;
    st_error err = {0};
    uint64_t size;
    json_t *m = NULL;
    st_model_new mn = {.name = "s"};

    CHECK(st_model_create(st, &mn, &m, &err) == ST_OK, "model: %s", err.msg);
    json_decref(m);
    if (st_upload_begin(st, &up, &err) || st_upload_write(up, "w", 1, &err) ||
        st_upload_finish(up, hex, &size, &err) || st_upload_commit(up, &err))
        CHECK(0, "blob: %s", err.msg);
    for (int i = 1; i <= NV; i++) {
        char metrics[96];
        struct ver *v = &vs[i];
        json_t *o = NULL;
        v->number = i;
        v->epoch = i / 3;
        snprintf(v->run, sizeof v->run, "r%d", (int)(next() % 7));
        v->has_loss = i % 5 != 0;
        /* few distinct values: ties are broken by version */
        v->loss = (double)(next() % 40) / 8;
        nvs = i;
        if (v->has_loss)
            snprintf(metrics, sizeof metrics, "{\"loss\":%.17g,\"acc\":%d}", v->loss, i);
        else snprintf(metrics, sizeof metrics, "{\"acc\":%d}", i);
        st_version_new vn = {.model = "s",
                             .digest = hex,
                             .size = 1,
                             .format = "keras2-weights",
                             .run = v->run,
                             .has_epoch = 1,
                             .epoch = v->epoch,
                             .metrics = metrics};
        if (i == 77) {
            static const char *const tags[] = {"prod"};
            vn.tags = tags;
            vn.ntags = 1;
        }
        CHECK(st_version_create(st, &vn, &o, &err) == ST_OK, "version %d: %s", i, err.msg);
        json_decref(o);
    }
    st_error_release(&err);
}

static const struct ver *cmp_base;
static int cmp_desc;
static int cmp_ver(const void *a, const void *b)
{
    const struct ver *x = *(const struct ver *const *)a, *y = *(const struct ver *const *)b;
    int c = x->loss < y->loss       ? -1
            : x->loss > y->loss     ? 1
            : x->number < y->number ? -1
                                    : x->number > y->number;
    (void)cmp_base;
    return cmp_desc ? -c : c;
}

/* st_version_list vs the same search done here. */
static void check_search(const char *label, const st_version_query *q)
{
    const struct ver *want[NV + 5];
    size_t nwant = 0, off = 0;
    json_t *out = NULL, *items;
    st_error err = {0};
    int64_t tagged = 77, latest = nvs;

    for (int i = 1; i <= nvs; i++) {
        const struct ver *v = &vs[i];
        if (!v->has_loss || (q->run && strcmp(q->run, v->run) != 0) ||
            (q->has_min_epoch && v->epoch < q->min_epoch) ||
            (q->has_max_epoch && v->epoch > q->max_epoch) ||
            (q->tag && strcmp(q->tag, "prod") == 0 && v->number != tagged) ||
            (q->tag && strcmp(q->tag, "latest") == 0 && v->number != latest))
            continue;
        want[nwant++] = v;
    }
    cmp_desc = q->descending;
    qsort(want, nwant, sizeof *want, cmp_ver);
    if (q->after) off = (size_t)atoll(q->after);
    CHECK(st_version_list(st, "s", q, &out, &err) == ST_OK, "%s: %s", label, err.msg);
    items = json_object_get(out, "items");
    size_t expect = nwant > off ? nwant - off : 0;
    if (expect > (size_t)q->limit) expect = (size_t)q->limit;
    CHECK(json_array_size(items) == expect, "%s: %zu items, expected %zu", label,
          json_array_size(items), expect);
    for (size_t i = 0; i < json_array_size(items) && i < expect; i++) {
        int64_t got = json_integer_value(json_object_get(json_array_get(items, i), "version"));
        if (got != want[off + i]->number) {
            CHECK(0, "%s: item %zu is version %lld, expected %lld", label, i, (long long)got,
                  (long long)want[off + i]->number);
            break;
        }
    }
    CHECK(json_is_null(json_object_get(out, "next")) == (off + expect >= nwant), "%s: next cursor",
          label);
    json_decref(out);
    st_error_release(&err);
}

static void test_search(void)
{
    static const char *const runs[] = {NULL, "r3", "nosuch", "h1"};
    static const char *const tags[] = {NULL, "prod", "latest"};
    static const struct {
        int has_min, has_max;
        int64_t min, max;
    } ranges[] = {
        {0, 0, 0, 0},   {1, 0, 95, 0},  {0, 1, 0, 4},
        {1, 1, 10, 70}, {1, 1, 40, 42}, {1, 0, 100000, 0},
    };
    static const int limits[] = {1, 5, 1000};
    for (size_t r = 0; r < 4; r++)
        for (size_t t = 0; t < 3; t++)
            for (size_t g = 0; g < sizeof ranges / sizeof ranges[0]; g++)
                for (size_t l = 0; l < 3; l++)
                    for (int desc = 0; desc < 2; desc++) {
                        char label[200];
                        st_version_query q = {
                            .run = runs[r],
                            .tag = tags[t],
                            .order_by = "metrics.loss",
                            .descending = desc,
                            .limit = limits[l],
                            .has_min_epoch = ranges[g].has_min,
                            .min_epoch = ranges[g].min,
                            .has_max_epoch = ranges[g].has_max,
                            .max_epoch = ranges[g].max,
                        };
                        snprintf(label, sizeof label,
                                 "run=%s tag=%s epochs %d:%lld..%d:%lld "
                                 "limit %d %s",
                                 runs[r] ? runs[r] : "-", tags[t] ? tags[t] : "-",
                                 ranges[g].has_min, (long long)ranges[g].min, ranges[g].has_max,
                                 (long long)ranges[g].max, limits[l], desc ? "desc" : "asc");
                        check_search(label, &q);
                        if (limits[l] == 5) {
                            q.after = "5";
                            check_search(label, &q);
                            q.after = "37";
                            check_search(label, &q);
                        }
                    }
}

/* The plan of each search form: "no sort" forms must not build a temp b-tree
 * nor scan a table. */
static void check_plans(sqlite3 *db, const char *when)
{
    static const struct {
        const char *order_by;
        const char *run, *tag;
        int min, narrow, sorts;
    } f[] = {
        {"metrics.loss", NULL, NULL, 0, 0, 0},
        {"metrics.loss", "r3", NULL, 0, 0, 0},
        {"metrics.loss", NULL, NULL, 1, 0, 0},
        {"metrics.loss", "r3", NULL, 1, 0, 0},
        {"metrics.loss", NULL, NULL, 1, 1, 1}, /* few versions: read, then sort them */
        {"metrics.loss", "r3", NULL, 1, 1, 1},
        {"metrics.loss", NULL, "prod", 0, 0, 1}, /* one version */
        {"metrics.loss", NULL, "latest", 0, 0, 1},
        {NULL, NULL, NULL, 0, 0, 0},
        {"version", "r3", NULL, 0, 0, 0},
        {"epoch", NULL, NULL, 0, 0, 0},
        {"epoch", "r3", NULL, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        for (int desc = 0; desc < 2; desc++) {
            st_version_query q = {.order_by = f[i].order_by,
                                  .run = f[i].run,
                                  .tag = f[i].tag,
                                  .has_min_epoch = f[i].min,
                                  .min_epoch = 3,
                                  .descending = desc};
            char sql[1100] = "EXPLAIN QUERY PLAN ", plan[2000] = "";
            sqlite3_stmt *s = NULL;
            CHECK(st_version_list_sql(&q, f[i].narrow, sql + 19, sizeof sql - 19) == 0, "sql");
            if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
                CHECK(0, "%s: prepare %s: %s", when, sql, sqlite3_errmsg(db));
                continue;
            }
            while (sqlite3_step(s) == SQLITE_ROW) {
                strncat(plan, (const char *)sqlite3_column_text(s, 3),
                        sizeof plan - strlen(plan) - 2);
                strcat(plan, "; ");
            }
            sqlite3_finalize(s);
            CHECK(!strstr(plan, "SCAN "), "%s: form %zu scans: %s", when, i, plan);
            if (!f[i].sorts)
                CHECK(!strstr(plan, "TEMP B-TREE"), "%s: form %zu %s sorts: %s", when, i,
                      desc ? "desc" : "asc", plan);
        }
    }
}

static void test_plans(void)
{
    char path[300];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/strata.db", dir);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open db");
    check_plans(db, "no statistics");
    CHECK(sqlite3_exec(db, "ANALYZE", NULL, NULL, NULL) == SQLITE_OK, "analyze");
    sqlite3_close(db);
    /* a fresh connection reads the statistics */
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open db");
    check_plans(db, "after ANALYZE");
    sqlite3_close(db);
}

/* ---- run list ------------------------------------------------------------ */

static void put(const char *run, size_t nm, const char *const *m, size_t ne, const int64_t *e,
                const double *v)
{
    st_error err = {0};
    st_history_batch b = {
        .run = run, .nmetrics = nm, .metrics = m, .nepochs = ne, .epochs = e, .values = v};
    CHECK(st_history_put(st, "s", &b, NULL, NULL, &err) == ST_OK, "put %s: %s", run, err.msg);
    st_error_release(&err);
}

/* Every run of st_run_list against counts and bests from st_history_get. */
static void check_runs(const char *when)
{
    st_history *h = NULL;
    json_t *out = NULL;
    st_error err = {0};
    CHECK(st_history_get(st, "s", NULL, &h, &err) == ST_OK, "%s: get: %s", when, err.msg);
    CHECK(st_run_list(st, "s", 1000, NULL, &out, &err) == ST_OK, "%s: runs: %s", when, err.msg);
    if (!h || !out) goto out;
    CHECK(json_array_size(json_object_get(out, "items")) == h->nruns, "%s: run count", when);
    for (size_t k = 0; k < h->nruns && k < json_array_size(json_object_get(out, "items")); k++) {
        const st_history_run *r = &h->runs[k];
        json_t *it = json_array_get(json_object_get(out, "items"), k), *best;
        const char *name = json_string_value(json_object_get(it, "run"));
        CHECK(name && strcmp(name, r->run) == 0, "%s: run %zu name", when, k);
        CHECK(json_integer_value(json_object_get(it, "epochs")) == (json_int_t)r->nepochs,
              "%s: run %s: epochs %lld, history has %zu", when, r->run,
              (long long)json_integer_value(json_object_get(it, "epochs")), r->nepochs);
        if (r->nepochs) {
            CHECK(json_integer_value(json_object_get(it, "first_epoch")) == r->epochs[0] &&
                      json_integer_value(json_object_get(it, "last_epoch")) ==
                          r->epochs[r->nepochs - 1],
                  "%s: run %s first/last", when, r->run);
        } else {
            CHECK(json_is_null(json_object_get(it, "first_epoch")), "%s: no first", when);
        }
        best = json_object_get(it, "best");
        CHECK(json_object_size(best) == r->nmetrics, "%s: run %s: %zu bests, %zu metrics", when,
              r->run, json_object_size(best), r->nmetrics);
        for (size_t j = 0; j < r->nmetrics; j++) {
            int is_max = strstr(r->metrics[j], "acc") != NULL;
            double bv = NAN;
            int64_t be = -1;
            for (size_t i = 0; i < r->nepochs; i++) {
                double x = r->columns[j][i];
                if (!isnan(x) && (be < 0 || (is_max ? x > bv : x < bv))) {
                    bv = x;
                    be = r->epochs[i];
                }
            }
            json_t *b = json_object_get(best, r->metrics[j]);
            CHECK(b && json_real_value(json_object_get(b, "value")) == bv &&
                      json_integer_value(json_object_get(b, "epoch")) == be &&
                      strcmp(json_string_value(json_object_get(b, "mode")),
                             is_max ? "max" : "min") == 0,
                  "%s: run %s best %s: %g@%lld", when, r->run, r->metrics[j], bv, (long long)be);
        }
    }
out:
    json_decref(out);
    st_history_free(h);
    st_error_release(&err);
}

static void test_runs(void)
{
    static const char *const m3[] = {"loss", "val_acc", "lr"};
    enum { N = 400 };
    static int64_t e[N];
    static double v[N * 3];
    for (int i = 0; i < N; i++) {
        e[i] = i * 2;
        for (int j = 0; j < 3; j++)
            v[i * 3 + j] = i % 7 == j ? NAN : (double)(next() % 50) / 4; /* holes, ties */
    }
    put("h1", 3, m3, N, e, v);
    check_runs("after a batch");
    /* re-post half the epochs (replaced whole, some with fewer metrics) and new odd ones */
    for (int i = 0; i < N; i++) {
        e[i] = i;
        for (int j = 0; j < 3; j++)
            v[i * 3 + j] = (i + j) % 5 == 0 ? NAN : (double)(next() % 50) / 4;
        if (v[i * 3] != v[i * 3] && v[i * 3 + 1] != v[i * 3 + 1] && v[i * 3 + 2] != v[i * 3 + 2])
            v[i * 3] = 1;
    }
    put("h1", 3, m3, N / 2, e, v);
    {
        static const int64_t e1[] = {5};
        static const double v1[] = {0.5};
        put("h2", 1, m3, 1, e1, v1);
    }
    check_runs("after re-posts");
    /* checkpoints: INSERT OR REPLACE into history at an existing epoch (2),
     * at a new one (100001), and twice at an epoch holding that metric only
     * (100003: the second REPLACE must not count the epoch again) */
    for (int i = 0; i < 4; i++) {
        static const int64_t at[] = {2, 100001, 100003, 100003};
        st_error err = {0};
        json_t *o = NULL;
        st_version_new vn = {.model = "s",
                             .digest = hex,
                             .size = 1,
                             .format = "keras2-weights",
                             .run = "h1",
                             .has_epoch = 1,
                             .epoch = at[i],
                             .metrics = i < 2 ? "{\"loss\":-1,\"val_acc\":99}" : "{\"loss\":-1}"};
        CHECK(st_version_create(st, &vn, &o, &err) == ST_OK, "checkpoint: %s", err.msg);
        json_decref(o);
        st_error_release(&err);
        nvs++;
        vs[nvs] =
            (struct ver){.number = nvs, .epoch = vn.epoch, .run = "h1", .has_loss = 1, .loss = -1};
    }
    check_runs("after checkpoints");
}

/* ---- migrations over existing rows ---------------------------------------- */

static void test_backfill(void)
{
    char path[300];
    sqlite3 *db = NULL;
    st_error err = {0};
    snprintf(path, sizeof path, "%s/strata.db", dir);
    st_close(st);
    st = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open db");
    /* Back to the schema before 0004/0005, rows kept. */
    CHECK(sqlite3_exec(db,
                       "DROP TRIGGER history_epoch_added; DROP TRIGGER history_epoch_removed;"
                       "DROP TRIGGER history_epoch_moved; DROP INDEX history_best;"
                       "ALTER TABLE runs DROP COLUMN epochs;"
                       "DROP TRIGGER version_metrics_run_set; DROP TRIGGER versions_run_moved;"
                       "DROP INDEX version_metrics_run; DROP INDEX versions_epoch;"
                       "ALTER TABLE version_metrics DROP COLUMN run;"
                       "DELETE FROM schema_migrations WHERE name IN ('0004_run_summary',"
                       "'0005_version_search')",
                       NULL, NULL, NULL) == SQLITE_OK,
          "downgrade: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
    CHECK(st_open(dir, &st, &err) == ST_OK, "reopen: %s", err.msg);
    check_runs("after 0004 over existing rows");
    test_search();
    st_error_release(&err);
}

int main(void)
{
    st_error err = {0};
    if (!mkdtemp(dir)) return 1;
    if (st_open(dir, &st, &err) != ST_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    make_versions();
    test_search();
    test_runs();
    test_plans();
    test_backfill();
    st_close(st);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done();
}
