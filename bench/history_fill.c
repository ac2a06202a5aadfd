/* bench/history_fill.c — fills a data directory for bench/history.sh through
 * the storage API: model "big" with one run of 100 000 epochs x 10 metrics,
 * and model "many" with 100 runs x 1 000 epochs x 10 metrics (100 000 epochs
 * in the model). Prints how long the writes took. Not part of the build.
 * `history_fill --explain DATA_DIR` prints the query plans of the searches
 * bench/history.sh times, from the SQL st_version_list itself builds. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage.h"
#include "store_int.h"

/* storage/versions.c: the exact SQL st_version_list runs (internal). */

static int explain(const char *dir)
{
    static const struct {
        const char *name;
        st_version_query q;
    } qs[] = {
        {"order_by=metrics.val_loss&order=asc&limit=5",
         {.order_by = "metrics.val_loss", .limit = 5}},
        {"order_by=metrics.val_loss&order=desc&limit=100",
         {.order_by = "metrics.val_loss", .descending = 1, .limit = 100}},
        {"run=r7&order_by=metrics.loss&order=asc&limit=5",
         {.run = "r7", .order_by = "metrics.loss", .limit = 5}},
    };
    char path[4096], sql[1200];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/strata.db", dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return 1;
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        sqlite3_stmt *s = NULL;
        strcpy(sql, "EXPLAIN QUERY PLAN ");
        if (st_version_list_sql(&qs[i].q, 0, sql + strlen(sql), sizeof sql - strlen(sql))) return 1;
        printf("# versions %s (st_version_list)\n    %s\n", qs[i].name, sql + 19);
        if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
            printf("    prepare: %s\n", sqlite3_errmsg(db));
            continue;
        }
        while (sqlite3_step(s) == SQLITE_ROW)
            printf("    %s\n", (const char *)sqlite3_column_text(s, 3));
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const names[10] = {"accuracy",  "auc",          "loss",         "lr",
                                      "precision", "recall",       "val_accuracy", "val_auc",
                                      "val_loss",  "val_precision"};

static int fill(st_store *st, const char *model, const char *run, size_t nepochs)
{
    int64_t *epochs = malloc(nepochs * sizeof *epochs), added = 0, updated = 0;
    double *values = malloc(nepochs * 10 * sizeof *values);
    st_error err = {0};
    for (size_t i = 0; i < nepochs; i++) {
        epochs[i] = (int64_t)i;
        for (int j = 0; j < 10; j++)
            values[i * 10 + j] = (float)(1.0 / (1.0 + i * 0.001 + j)); /* float32 as Keras logs */
    }
    st_history_batch b = {.run = run,
                          .nmetrics = 10,
                          .metrics = names,
                          .nepochs = nepochs,
                          .epochs = epochs,
                          .values = values};
    st_code rc = st_history_put(st, model, &b, &added, &updated, &err);
    if (rc) fprintf(stderr, "put %s/%s: %s\n", model, run, err.msg);
    free(epochs);
    free(values);
    st_error_release(&err);
    return rc ? -1 : 0;
}

int main(int argc, char **argv)
{
    st_store *st = NULL;
    st_error err = {0};
    json_t *o = NULL;
    double t0;
    if (argc == 3 && strcmp(argv[1], "--explain") == 0) return explain(argv[2]);
    if (argc < 2 || st_open(argv[1], &st, &err)) {
        fprintf(stderr, "usage: history_fill DATA_DIR (%s)\n", err.msg);
        return 1;
    }
    st_model_new big = {.name = "big"}, many = {.name = "many"};
    if (st_model_create(st, &big, &o, &err) ||
        (json_decref(o), st_model_create(st, &many, &o, &err))) {
        fprintf(stderr, "model: %s\n", err.msg);
        return 1;
    }
    json_decref(o);
    t0 = now();
    if (fill(st, "big", "r1", 100000)) return 1;
    printf("write: 1 run x 100000 epochs x 10 metrics in one request: %.0f ms\n",
           (now() - t0) * 1e3);
    t0 = now();
    for (int r = 0; r < 100; r++) {
        char run[16];
        snprintf(run, sizeof run, "r%03d", r);
        if (fill(st, "many", run, 1000)) return 1;
    }
    printf("write: 100 runs x 1000 epochs x 10 metrics, one request each: %.0f ms\n",
           (now() - t0) * 1e3);
    st_close(st);
    return 0;
}
