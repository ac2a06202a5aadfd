/* storage/history.c — training history of a model's runs: storing batches of
 * epochs (one write transaction, an epoch re-posted replaces its values),
 * reading them back as dense per-run columns, and the run list with epoch
 * counts, best values and checkpoints.
 * Does not own: parsing Keras History dicts or CSVLogger files (server/),
 * the rows st_version_create writes for a checkpoint's metrics
 * (versions.c), or the monitor's `best` tag (versions.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "store_int.h"

int st_metric_name_valid(const char *name)
{
    size_t i;
    if (!name || !name[0] || strcmp(name, "epoch") == 0) return 0;
    for (i = 0; name[i]; i++) {
        unsigned char c = (unsigned char)name[i];
        if (i >= ST_METRIC_NAME_MAX || c <= 0x20 || c >= 0x7f || c == ',' || c == '"') return 0;
    }
    return 1;
}

/* ---- put ---------------------------------------------------------------- */

static st_code st_batch_check(const st_history_batch *b, st_error *err)
{
    size_t i, j;
    if (!b->run || !st_name_valid(b->run))
        return st_fail_details(err, ST_ERR_INVALID, json_pack("{s:s?}", "run", b->run),
                               "run name '%.140s' must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}",
                               b->run ? b->run : "(none)");
    if (b->nmetrics == 0 || !b->metrics) return st_fail(err, ST_ERR_INVALID, "no metrics given");
    if (b->nmetrics > ST_HISTORY_MAX_METRICS)
        return st_fail_details(
            err, ST_ERR_INVALID, json_pack("{s:I}", "limit", (json_int_t)ST_HISTORY_MAX_METRICS),
            "%zu metrics: at most %d per epoch", b->nmetrics, ST_HISTORY_MAX_METRICS);
    if (b->nepochs == 0 || !b->epochs || !b->values)
        return st_fail(err, ST_ERR_INVALID, "no epochs given");
    if (b->nepochs > ST_HISTORY_MAX_EPOCHS)
        return st_fail_details(
            err, ST_ERR_INVALID, json_pack("{s:I}", "limit", (json_int_t)ST_HISTORY_MAX_EPOCHS),
            "%zu epochs: at most %d per request", b->nepochs, ST_HISTORY_MAX_EPOCHS);
    if (b->nepochs * b->nmetrics > ST_HISTORY_MAX_VALUES)
        return st_fail_details(err, ST_ERR_INVALID,
                               json_pack("{s:I}", "limit", (json_int_t)ST_HISTORY_MAX_VALUES),
                               "%zu epochs x %zu metrics: at most %d values per request",
                               b->nepochs, b->nmetrics, ST_HISTORY_MAX_VALUES);
    for (j = 0; j < b->nmetrics; j++) {
        if (!st_metric_name_valid(b->metrics[j]))
            return st_fail_details(err, ST_ERR_INVALID,
                                   json_pack("{s:s?}", "metric", b->metrics[j]),
                                   "metric name '%.140s' must be 1..%d printable ASCII characters "
                                   "without space, ',' or '\"', and not 'epoch'",
                                   b->metrics[j] ? b->metrics[j] : "(null)", ST_METRIC_NAME_MAX);
        for (size_t k = 0; k < j; k++)
            if (strcmp(b->metrics[k], b->metrics[j]) == 0)
                return st_fail_details(err, ST_ERR_INVALID,
                                       json_pack("{s:s}", "metric", b->metrics[j]),
                                       "metric '%s' is given twice", b->metrics[j]);
    }
    for (i = 0; i < b->nepochs; i++) {
        const double *row = b->values + i * b->nmetrics;
        int any = 0;
        if (b->epochs[i] < 0)
            return st_fail_details(err, ST_ERR_INVALID,
                                   json_pack("{s:I}", "epoch", (json_int_t)b->epochs[i]),
                                   "epoch %lld: expected an integer >= 0", (long long)b->epochs[i]);
        for (j = 0; j < b->nmetrics; j++) {
            if (isnan(row[j])) continue;
            if (!isfinite(row[j]))
                return st_fail_details(err, ST_ERR_INVALID,
                                       json_pack("{s:I,s:s}", "epoch", (json_int_t)b->epochs[i],
                                                 "metric", b->metrics[j]),
                                       "epoch %lld, metric '%s': only finite numbers are stored",
                                       (long long)b->epochs[i], b->metrics[j]);
            any = 1;
        }
        if (!any)
            return st_fail_details(err, ST_ERR_INVALID,
                                   json_pack("{s:I}", "epoch", (json_int_t)b->epochs[i]),
                                   "epoch %lld has no values", (long long)b->epochs[i]);
    }
    return ST_OK;
}

/* Rows in epoch order, input order among equals, so the last row of an
 * epoch is the last of its group (the usual ascending input skips qsort). */
struct st_row {
    int64_t epoch;
    size_t i;
};

static int st_cmp_rows(const void *a, const void *b)
{
    const struct st_row *x = a, *y = b;
    if (x->epoch != y->epoch) return x->epoch < y->epoch ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static struct st_row *st_row_order(const st_history_batch *b, st_error *err)
{
    struct st_row *rows = malloc(b->nepochs * sizeof *rows);
    int sorted = 1;
    if (!rows) {
        st_fail(err, ST_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < b->nepochs; i++) {
        rows[i].epoch = b->epochs[i];
        rows[i].i = i;
        if (i && b->epochs[i] < b->epochs[i - 1]) sorted = 0;
    }
    if (!sorted) qsort(rows, b->nepochs, sizeof *rows, st_cmp_rows);
    return rows;
}

static st_code st_run_ensure(sqlite3 *db, int64_t model_id, const char *run, int64_t *run_id,
                             st_error *err)
{
    char now[32];
    int found = 0;
    st_code rc;
    st_now_rfc3339(now, sizeof now);
    rc = st_exec(db, err, "INSERT OR IGNORE INTO runs(model_id, name, created_at) VALUES (?, ?, ?)",
                 "itt", model_id, run, now);
    if (rc == ST_OK)
        rc = st_query_i64(db, err, run_id, &found,
                          "SELECT id FROM runs WHERE model_id = ? "
                          "AND name = ?",
                          "it", model_id, run);
    if (rc == ST_OK && !found) rc = st_fail(err, ST_ERR_DB, "run '%s' vanished", run);
    return rc;
}

/* Rows per INSERT statement: one statement per row cost a statement
 * journal each (0004's triggers make every insert a multi-write statement:
 * SQLite copies each page it touches first), 3-5x the time of the rows
 * themselves. 1024 rows = 4096 parameters, under SQLite's 32766. */
#define ST_PUT_ROWS 1024

/* Rows waiting for the next multi-row INSERT. */
struct st_pending {
    size_t n;
    int64_t epoch[ST_PUT_ROWS];
    const char *metric[ST_PUT_ROWS];
    double value[ST_PUT_ROWS];
};

/* "INSERT INTO history(...) VALUES (?,?,?,?),…" for rows rows (NEW). */
static char *st_insert_sql(size_t rows)
{
    static const char head[] = "INSERT INTO history(run_id, epoch, metric, value) VALUES ";
    size_t len = sizeof head - 1 + rows * 10;
    char *sql = malloc(len + 1), *p;
    if (!sql) return NULL;
    memcpy(sql, head, sizeof head - 1);
    p = sql + sizeof head - 1;
    for (size_t i = 0; i < rows; i++) {
        memcpy(p, i ? ",(?,?,?,?)" : "(?,?,?,?) ", 10);
        p += 10;
    }
    *p = '\0';
    return sql;
}

/* Statement sizes for the pending rows: a full block, then the tail of a
 * batch in as few statements as these sizes allow (at most 7 + 7 + 15). */
static const size_t st_put_sizes[] = {ST_PUT_ROWS, 128, 16, 1};
#define ST_NSIZES (sizeof st_put_sizes / sizeof st_put_sizes[0])

/* Insert the pending rows, each statement prepared once per put. */
static st_code st_flush(sqlite3 *db, sqlite3_stmt **ins, int64_t run_id, struct st_pending *pd,
                        st_error *err)
{
    size_t off = 0;
    st_code rc = ST_OK;
    for (size_t k = 0; rc == ST_OK && k < ST_NSIZES; k++) {
        size_t rows = st_put_sizes[k];
        while (rc == ST_OK && pd->n - off >= rows) {
            int src;
            if (!ins[k]) {
                char *sql = st_insert_sql(rows);
                rc = sql ? st_prepare(db, &ins[k], err, sql, NULL)
                         : st_fail(err, ST_ERR_NOMEM, "out of memory");
                free(sql);
                if (rc) break;
            }
            for (size_t i = 0; i < rows; i++) {
                sqlite3_bind_int64(ins[k], (int)(4 * i + 1), run_id);
                sqlite3_bind_int64(ins[k], (int)(4 * i + 2), pd->epoch[off + i]);
                sqlite3_bind_text(ins[k], (int)(4 * i + 3), pd->metric[off + i], -1, SQLITE_STATIC);
                sqlite3_bind_double(ins[k], (int)(4 * i + 4), pd->value[off + i]);
            }
            src = st_step(ins[k]);
            sqlite3_reset(ins[k]);
            if (src != SQLITE_DONE) rc = st_db_fail(err, db, src, "history");
            off += rows;
        }
    }
    pd->n = 0;
    return rc;
}

st_code st_history_put(st_store *st, const char *model, const st_history_batch *b, int64_t *added,
                       int64_t *updated, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *del = NULL, *ins[ST_NSIZES] = {NULL};
    struct st_row *idx = NULL;
    struct st_pending *pd = NULL;
    int64_t model_id = 0, run_id = 0, nadd = 0, nupd = 0;
    st_code rc;
    int src;

    if (!st || !b) return st_fail(err, ST_ERR_INVALID, "no history given");
    if (!st_name_valid(model))
        return st_fail(err, ST_ERR_INVALID, "model name '%.140s' is not valid",
                       model ? model : "(null)");
    rc = st_batch_check(b, err);
    if (rc) return rc;
    idx = st_row_order(b, err);
    pd = malloc(sizeof *pd);
    if (!idx || !pd) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    pd->n = 0;

    rc = st_wbegin(st, &db, err);
    if (rc) goto done;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK) rc = st_run_ensure(db, model_id, b->run, &run_id, err);
    /* INDEXED BY: statistics taken while the table was tiny (every row at
     * one epoch) make (run_id, epoch) look no better than the primary key's
     * run_id, and a scan of the run per epoch is quadratic. */
    if (rc == ST_OK)
        rc = st_prepare(db, &del, err,
                        "DELETE FROM history INDEXED BY history_run_epoch "
                        "WHERE run_id = ? AND epoch = ?",
                        NULL);
    for (size_t k = 0; rc == ST_OK && k < b->nepochs; k++) {
        size_t i = idx[k].i;
        const double *row = b->values + i * b->nmetrics;
        /* An epoch given twice: only its last row counts. */
        if (k + 1 < b->nepochs && idx[k + 1].epoch == idx[k].epoch) continue;
        sqlite3_bind_int64(del, 1, run_id);
        sqlite3_bind_int64(del, 2, b->epochs[i]);
        src = st_step(del);
        sqlite3_reset(del);
        if (src != SQLITE_DONE) {
            rc = st_db_fail(err, db, src, "history");
            break;
        }
        if (sqlite3_changes(db) > 0) nupd++;
        else nadd++;
        for (size_t j = 0; rc == ST_OK && j < b->nmetrics; j++) {
            if (isnan(row[j])) continue;
            pd->epoch[pd->n] = b->epochs[i];
            pd->metric[pd->n] = b->metrics[j];
            pd->value[pd->n++] = row[j];
            if (pd->n == ST_PUT_ROWS) rc = st_flush(db, ins, run_id, pd, err);
        }
    }
    if (rc == ST_OK && pd->n) rc = st_flush(db, ins, run_id, pd, err);
    st_finish(del);
    for (size_t k = 0; k < ST_NSIZES; k++) st_finish(ins[k]);
    rc = st_wend(st, rc, err);
    if (rc == ST_OK) {
        if (added) *added = nadd;
        if (updated) *updated = nupd;
    }
done:
    free(pd);
    free(idx);
    return rc;
}

/* ---- get ---------------------------------------------------------------- */

/* A growing pair of arrays: one metric's (epoch, value) rows of a run. */
struct st_series {
    int64_t *epochs;
    double *values;
    size_t n, cap;
};

/* 2 MiB pages for big arrays where transparent huge pages are on
 * "madvise": a 100 000-epoch run is 16 MB of series, ~4 000 page faults
 * in 4 KiB pages. Advice only. */
#define ST_HUGE ((uintptr_t)2 << 20)
static void st_hugepages(void *p, size_t len)
{
    uintptr_t a = ((uintptr_t)p + ST_HUGE - 1) & ~(ST_HUGE - 1);
    uintptr_t e = ((uintptr_t)p + len) & ~(ST_HUGE - 1);
    if (len >= 2 * ST_HUGE && e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
}

static int st_series_grow(struct st_series *s, size_t cap)
{
    int64_t *ne = realloc(s->epochs, cap * sizeof *ne);
    if (!ne) return -1;
    s->epochs = ne;
    st_hugepages(ne, cap * sizeof *ne);
    double *nv = realloc(s->values, cap * sizeof *nv);
    if (!nv) return -1;
    s->values = nv;
    st_hugepages(nv, cap * sizeof *nv);
    s->cap = cap;
    return 0;
}

static inline int st_series_push(struct st_series *s, int64_t e, double v)
{
    if (s->n == s->cap && st_series_grow(s, s->cap ? s->cap * 2 : 256)) return -1;
    s->epochs[s->n] = e;
    s->values[s->n++] = v;
    return 0;
}

static void st_run_release(st_history_run *r)
{
    free(r->run);
    free(r->created_at);
    free(r->epochs);
    for (size_t j = 0; j < r->nmetrics; j++) {
        free(r->metrics[j]);
        if (r->columns) free(r->columns[j]);
    }
    free(r->metrics);
    free(r->columns);
    free(r->checkpoints);
}

void st_history_free(st_history *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->nruns; i++) st_run_release(&h->runs[i]);
    free(h->runs);
    free(h);
}

static int st_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The metrics of a run: the query's (sorted, deduplicated) or every stored
 * one, found by skipping along the primary key (one seek per metric, never
 * a scan of the run's rows). */
static st_code st_run_metrics(sqlite3 *db, int64_t run_id, const st_history_query *q,
                              st_history_run *r, st_error *err)
{
    sqlite3_stmt *s = NULL;
    st_code rc = ST_OK;
    size_t cap = 0;
    int src;

    if (q->nmetrics) {
        r->metrics = calloc(q->nmetrics, sizeof *r->metrics);
        if (!r->metrics) return st_fail(err, ST_ERR_NOMEM, "out of memory");
        for (size_t j = 0; j < q->nmetrics; j++) {
            int dup = 0;
            for (size_t k = 0; k < r->nmetrics; k++)
                dup |= strcmp(r->metrics[k], q->metrics[j]) == 0;
            if (dup) continue;
            if (!(r->metrics[r->nmetrics] = strdup(q->metrics[j])))
                return st_fail(err, ST_ERR_NOMEM, "out of memory");
            r->nmetrics++;
        }
        qsort(r->metrics, r->nmetrics, sizeof *r->metrics, st_cmp_str);
        return ST_OK;
    }
    rc =
        st_prepare(db, &s, err,
                   "WITH RECURSIVE m(name) AS ("
                   " SELECT (SELECT min(metric) FROM history WHERE run_id = ?1)"
                   " UNION ALL"
                   " SELECT (SELECT min(metric) FROM history WHERE run_id = ?1 AND metric > m.name)"
                   " FROM m WHERE m.name IS NOT NULL)"
                   " SELECT name FROM m WHERE name IS NOT NULL",
                   "i", run_id);
    while (rc == ST_OK && (src = st_step(s)) == SQLITE_ROW) {
        if (r->nmetrics == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nm = realloc(r->metrics, ncap * sizeof *nm);
            if (!nm) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                break;
            }
            r->metrics = nm;
            cap = ncap;
        }
        if (!(r->metrics[r->nmetrics] = strdup((const char *)sqlite3_column_text(s, 0)))) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            break;
        }
        r->nmetrics++;
    }
    if (rc == ST_OK && src != SQLITE_DONE) rc = st_db_fail(err, db, src, "history metrics");
    st_finish(s);
    return rc;
}

/* Union of the series' epochs (each ascending) by a k-way merge, then each
 * series spread into a dense column with NAN holes. When every series has
 * the same epochs (Keras logs every metric every epoch: the usual case) the
 * series themselves become the answer's arrays (taken: ser[j] is emptied). */
static st_code st_run_densify(st_history_run *r, struct st_series *ser, st_error *err)
{
    size_t k = r->nmetrics, total = 0, n = 0, *pos = NULL;
    int same = 1;
    st_code rc = ST_OK;

    r->columns = calloc(k ? k : 1, sizeof *r->columns);
    if (!r->columns) return st_fail(err, ST_ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < k; j++) {
        total += ser[j].n;
        same &= ser[j].n == ser[0].n &&
                (ser[j].n == 0 ||
                 memcmp(ser[j].epochs, ser[0].epochs, ser[j].n * sizeof *ser[j].epochs) == 0);
    }
    if (k > 0 && same && ser[0].n > 0) {
        r->nepochs = ser[0].n;
        r->epochs = ser[0].epochs;
        ser[0].epochs = NULL;
        for (size_t j = 0; j < k; j++) {
            r->columns[j] = ser[j].values;
            ser[j].values = NULL;
        }
        return ST_OK;
    }
    pos = calloc(k ? k : 1, sizeof *pos);
    r->epochs = malloc((total ? total : 1) * sizeof *r->epochs);
    if (!pos || !r->epochs) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        int64_t next = INT64_MAX;
        int any = 0;
        for (size_t j = 0; j < k; j++)
            if (pos[j] < ser[j].n && (!any || ser[j].epochs[pos[j]] < next)) {
                next = ser[j].epochs[pos[j]];
                any = 1;
            }
        if (!any) break;
        r->epochs[n++] = next;
        for (size_t j = 0; j < k; j++)
            if (pos[j] < ser[j].n && ser[j].epochs[pos[j]] == next) pos[j]++;
    }
    r->nepochs = n;
    for (size_t j = 0; j < k; j++) {
        double *col = malloc((n ? n : 1) * sizeof *col);
        size_t p = 0;
        if (!col) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            goto out;
        }
        r->columns[j] = col;
        for (size_t i = 0; i < n; i++) {
            if (p < ser[j].n && ser[j].epochs[p] == r->epochs[i]) col[i] = ser[j].values[p++];
            else col[i] = NAN;
        }
    }
out:
    free(pos);
    return rc;
}

static st_code st_run_checkpoints(sqlite3 *db, int64_t model_id, const st_history_query *q,
                                  st_history_run *r, st_error *err)
{
    sqlite3_stmt *s = NULL;
    size_t cap = 0;
    st_code rc;
    int src;

    rc = st_prepare(db, &s, err,
                    "SELECT epoch, number FROM versions WHERE model_id = ?1 "
                    "AND run = ?2 AND (?3 = 0 OR epoch >= ?4) AND (?5 = 0 OR epoch <= ?6) "
                    "ORDER BY epoch, number",
                    "itiiii", model_id, r->run, (int64_t)q->has_from, q->from_epoch,
                    (int64_t)q->has_to, q->to_epoch);
    while (rc == ST_OK && (src = st_step(s)) == SQLITE_ROW) {
        if (r->ncheckpoints == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            st_checkpoint *nc = realloc(r->checkpoints, ncap * sizeof *nc);
            if (!nc) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                break;
            }
            r->checkpoints = nc;
            cap = ncap;
        }
        r->checkpoints[r->ncheckpoints].epoch =
            sqlite3_column_type(s, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 0);
        r->checkpoints[r->ncheckpoints++].version = sqlite3_column_int64(s, 1);
    }
    if (rc == ST_OK && src != SQLITE_DONE) rc = st_db_fail(err, db, src, "checkpoints");
    st_finish(s);
    return rc;
}

/* Fill one run of the answer; *budget counts down values still allowed.
 * epochs: the run's epoch count (runs.epochs), so no metric has more rows
 * in the range: each series is allocated once (bounded by the range and
 * the budget too), not doubled and copied as it grows. */
static st_code st_run_read(sqlite3 *db, int64_t model_id, int64_t run_id, int64_t epochs,
                           const st_history_query *q, st_history_run *r, size_t *budget,
                           st_error *err)
{
    sqlite3_stmt *s = NULL;
    struct st_series *ser = NULL;
    st_code rc;
    int src = SQLITE_DONE;

    rc = st_run_metrics(db, run_id, q, r, err);
    if (rc) return rc;
    ser = calloc(r->nmetrics ? r->nmetrics : 1, sizeof *ser);
    if (!ser) return st_fail(err, ST_ERR_NOMEM, "out of memory");
    rc = st_prepare(db, &s, err,
                    "SELECT epoch, value FROM history WHERE run_id = ?1 "
                    "AND metric = ?2 AND epoch >= ?3 AND epoch <= ?4 ORDER BY epoch",
                    NULL);
    for (size_t j = 0; rc == ST_OK && j < r->nmetrics; j++) {
        uint64_t cap = epochs > 0 ? (uint64_t)epochs : 0;
        if (q->has_from && q->has_to && (uint64_t)(q->to_epoch - q->from_epoch) < cap)
            cap = (uint64_t)(q->to_epoch - q->from_epoch) + 1;
        if (cap > *budget + 1) cap = *budget + 1;
        if (cap > 0 && st_series_grow(&ser[j], (size_t)cap)) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            break;
        }
        sqlite3_bind_int64(s, 1, run_id);
        sqlite3_bind_text(s, 2, r->metrics[j], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, q->has_from ? q->from_epoch : 0);
        sqlite3_bind_int64(s, 4, q->has_to ? q->to_epoch : INT64_MAX);
        while ((src = st_step(s)) == SQLITE_ROW) {
            if (*budget == 0) {
                rc = st_fail_details(err, ST_ERR_INVALID,
                                     json_pack("{s:I}", "limit", (json_int_t)ST_HISTORY_MAX_ANSWER),
                                     "the answer would hold more than %d values; narrow it with "
                                     "run=, metrics=, from_epoch= or to_epoch=",
                                     ST_HISTORY_MAX_ANSWER);
                break;
            }
            (*budget)--;
            if (st_series_push(&ser[j], sqlite3_column_int64(s, 0), sqlite3_column_double(s, 1))) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                break;
            }
        }
        if (rc == ST_OK && src != SQLITE_DONE) rc = st_db_fail(err, db, src, "history");
        sqlite3_reset(s);
        /* A metric logged at few of the run's epochs: give the rest back. */
        if (rc == ST_OK && ser[j].n < ser[j].cap / 2 && st_series_grow(&ser[j], ser[j].n + 1))
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    if (rc == ST_OK) rc = st_run_densify(r, ser, err);
    if (rc == ST_OK) rc = st_run_checkpoints(db, model_id, q, r, err);
    for (size_t j = 0; j < r->nmetrics; j++) {
        free(ser[j].epochs);
        free(ser[j].values);
    }
    free(ser);
    st_finish(s);
    return rc;
}

st_code st_history_get(st_store *st, const char *model, const st_history_query *q, st_history **out,
                       st_error *err)
{
    static const st_history_query all = {0};
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    st_history *h = NULL;
    int64_t model_id = 0;
    size_t budget = ST_HISTORY_MAX_ANSWER, cap = 0;
    st_code rc;
    int src;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    if (!q) q = &all;
    if (q->run && !st_name_valid(q->run))
        return st_fail_details(err, ST_ERR_INVALID, json_pack("{s:s}", "run", q->run),
                               "run name '%.140s' is not valid", q->run);
    if (q->nmetrics > ST_HISTORY_MAX_METRICS)
        return st_fail(err, ST_ERR_INVALID, "%zu metrics asked: at most %d", q->nmetrics,
                       ST_HISTORY_MAX_METRICS);
    for (size_t j = 0; j < q->nmetrics; j++)
        if (!q->metrics || !st_metric_name_valid(q->metrics[j]))
            return st_fail_details(err, ST_ERR_INVALID,
                                   json_pack("{s:s?}", "metric", q->metrics ? q->metrics[j] : NULL),
                                   "metric name '%.140s' is not valid",
                                   q->metrics && q->metrics[j] ? q->metrics[j] : "(null)");
    if ((q->has_from && q->from_epoch < 0) || (q->has_to && q->to_epoch < 0) ||
        (q->has_from && q->has_to && q->from_epoch > q->to_epoch))
        return st_fail(err, ST_ERR_INVALID, "epoch range %lld..%lld is empty or negative",
                       (long long)q->from_epoch, (long long)q->to_epoch);
    h = calloc(1, sizeof *h);
    if (!h) return st_fail(err, ST_ERR_NOMEM, "out of memory");

    rc = st_rbegin(st, &db, err);
    if (rc) goto done;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK)
        rc = st_prepare(db, &s, err,
                        "SELECT id, name, created_at, epochs FROM runs "
                        "WHERE model_id = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name",
                        "it", model_id, q->run);
    while (rc == ST_OK && (src = st_step(s)) == SQLITE_ROW) {
        st_history_run *r;
        if (h->nruns == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            st_history_run *nr = realloc(h->runs, ncap * sizeof *nr);
            if (!nr) {
                rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
                break;
            }
            h->runs = nr;
            cap = ncap;
        }
        r = &h->runs[h->nruns++];
        memset(r, 0, sizeof *r);
        r->run = strdup((const char *)sqlite3_column_text(s, 1));
        r->created_at = strdup((const char *)sqlite3_column_text(s, 2));
        if (!r->run || !r->created_at) rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        else
            rc = st_run_read(db, model_id, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 3),
                             q, r, &budget, err);
    }
    if (rc == ST_OK && src != SQLITE_DONE) rc = st_db_fail(err, db, src, "runs");
    if (rc == ST_OK && q->run && h->nruns == 0)
        rc = st_fail_details(err, ST_ERR_NOT_FOUND,
                             json_pack("{s:s,s:s}", "model", model, "run", q->run),
                             "model '%s' has no run '%s'", model, q->run);
    st_finish(s);
    st_rend(st, db);
    if (rc == ST_OK) {
        *out = h;
        h = NULL;
    }
done:
    st_history_free(h);
    return rc;
}

/* ---- run list ----------------------------------------------------------- */

/* best: per metric, the min or max value and its earliest epoch, by seeks
 * on history_best (run, metric, value, epoch) — never a read of the run's
 * rows. The first entry after (run, previous metric) names the next metric
 * and holds its min at its earliest epoch; a max metric takes its last
 * entry's value, then the first entry with that value (earliest epoch).
 * INDEXED BY: these are only fast on that index, whatever the statistics. */
static st_code st_run_best(sqlite3 *db, int64_t run_id, json_t *best, st_error *err)
{
    sqlite3_stmt *next = NULL, *max = NULL;
    char metric[ST_METRIC_NAME_MAX + 1] = "";
    st_code rc;
    int src = SQLITE_DONE;

    rc = st_prepare(db, &next, err,
                    "SELECT metric, value, epoch FROM history "
                    "INDEXED BY history_best WHERE run_id = ?1 AND metric > ?2 "
                    "ORDER BY metric, value, epoch LIMIT 1",
                    NULL);
    if (rc == ST_OK)
        rc = st_prepare(db, &max, err,
                        "SELECT value, epoch FROM history INDEXED BY history_best "
                        "WHERE run_id = ?1 AND metric = ?2 AND value = (SELECT value FROM history "
                        "INDEXED BY history_best WHERE run_id = ?1 AND metric = ?2 "
                        "ORDER BY value DESC LIMIT 1) ORDER BY epoch LIMIT 1",
                        NULL);
    while (rc == ST_OK) {
        double value;
        int64_t epoch;
        int want_max;
        json_t *o;

        sqlite3_bind_int64(next, 1, run_id);
        sqlite3_bind_text(next, 2, metric, -1, SQLITE_TRANSIENT);
        if ((src = st_step(next)) != SQLITE_ROW) break;
        snprintf(metric, sizeof metric, "%s", (const char *)sqlite3_column_text(next, 0));
        value = sqlite3_column_double(next, 1);
        epoch = sqlite3_column_int64(next, 2);
        sqlite3_reset(next);
        want_max = st_metric_is_max(metric);
        if (want_max) {
            sqlite3_bind_int64(max, 1, run_id);
            sqlite3_bind_text(max, 2, metric, -1, SQLITE_TRANSIENT);
            if ((src = st_step(max)) != SQLITE_ROW) {
                rc = st_db_fail(err, db, src == SQLITE_DONE ? SQLITE_CORRUPT : src, "best");
                break;
            }
            value = sqlite3_column_double(max, 0);
            epoch = sqlite3_column_int64(max, 1);
            sqlite3_reset(max);
        }
        o = json_pack("{s:f,s:I,s:s}", "value", value, "epoch", (json_int_t)epoch, "mode",
                      want_max ? "max" : "min");
        if (!o || json_object_set_new(best, metric, o)) {
            rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
            break;
        }
    }
    if (rc == ST_OK && src != SQLITE_DONE) rc = st_db_fail(err, db, src, "best");
    st_finish(next);
    st_finish(max);
    return rc;
}

/* One run of the list: its epoch count is runs.epochs (0004's triggers),
 * first and last epoch one seek each on history_run_epoch (two scalar
 * subqueries: min() and max() in one SELECT would read every row; INDEXED
 * BY: left alone, SQLite may take history_best and read the run's rows). */
static st_code st_run_item(sqlite3 *db, int64_t model_id, int64_t run_id, const char *name,
                           const char *created_at, int64_t epochs, json_t **out, st_error *err)
{
    sqlite3_stmt *s = NULL;
    json_t *o = NULL, *best = json_object(), *cps = json_array();
    st_code rc;
    int src;

    if (!best || !cps) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = st_prepare(db, &s, err,
                    "SELECT (SELECT min(epoch) FROM history INDEXED BY "
                    "history_run_epoch WHERE run_id = ?1), (SELECT max(epoch) FROM history "
                    "INDEXED BY history_run_epoch WHERE run_id = ?1)",
                    "i", run_id);
    if (rc) goto out;
    if ((src = st_step(s)) != SQLITE_ROW) {
        rc = st_db_fail(err, db, src, "runs");
        goto out;
    }
    o = json_pack("{s:s,s:s,s:I,s:o,s:o}", "run", name, "created_at", created_at, "epochs",
                  (json_int_t)epochs, "first_epoch", st_col_int(s, 0), "last_epoch",
                  st_col_int(s, 1));
    st_finish(s);
    s = NULL;
    if (!o) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = st_run_best(db, run_id, best, err);
    if (rc == ST_OK)
        rc = st_prepare(db, &s, err,
                        "SELECT epoch, number FROM versions WHERE model_id = ? "
                        "AND run = ? ORDER BY epoch, number",
                        "it", model_id, name);
    while (rc == ST_OK && (src = st_step(s)) == SQLITE_ROW)
        json_array_append_new(cps, json_pack("{s:o,s:I}", "epoch", st_col_int(s, 0), "version",
                                             (json_int_t)sqlite3_column_int64(s, 1)));
    if (rc == ST_OK && src != SQLITE_DONE) rc = st_db_fail(err, db, src, "checkpoints");
    if (rc) goto out;
    json_object_set(o, "best", best);
    json_object_set(o, "checkpoints", cps);
    *out = o;
    o = NULL;
out:
    st_finish(s);
    json_decref(o);
    json_decref(best);
    json_decref(cps);
    return rc;
}

st_code st_run_list(st_store *st, const char *model, int limit, const char *after, json_t **out,
                    st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *items = NULL, *o = NULL;
    const char *last = NULL;
    int64_t model_id = 0;
    int n = 0, more = 0, src = SQLITE_DONE;
    st_code rc;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_check_limit(limit, &limit, err);
    if (rc) return rc;
    if (after && !st_name_valid(after))
        return st_fail(err, ST_ERR_INVALID, "cursor '%.140s' is not valid", after);
    items = json_array();
    if (!items) return st_fail(err, ST_ERR_NOMEM, "out of memory");
    rc = st_rbegin(st, &db, err);
    if (rc) goto done;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK)
        rc = st_prepare(db, &s, err,
                        "SELECT id, name, created_at, epochs FROM runs "
                        "WHERE model_id = ?1 AND (?2 IS NULL OR name > ?2) ORDER BY name LIMIT ?3",
                        "iti", model_id, after, (int64_t)limit + 1);
    while (rc == ST_OK && (src = st_step(s)) == SQLITE_ROW) {
        json_t *it = NULL;
        if (n == limit) {
            more = 1;
            break;
        }
        rc = st_run_item(
            db, model_id, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
            (const char *)sqlite3_column_text(s, 2), sqlite3_column_int64(s, 3), &it, err);
        if (rc == ST_OK) json_array_append_new(items, it);
        n++;
    }
    if (rc == ST_OK && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = st_db_fail(err, db, src, "runs");
    st_finish(s);
    st_rend(st, db);
    if (rc) goto done;
    if (more)
        last = json_string_value(json_object_get(json_array_get(items, (size_t)n - 1), "run"));
    o = json_pack("{s:O,s:o}", "items", items, "next", last ? json_string(last) : json_null());
    if (!o) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    *out = o;
done:
    json_decref(items);
    return rc;
}
