/* storage/versions.c — versions (checkpoints) of a model: create (one
 * transaction: number, row, layers, metrics, tags, run history, monitor's
 * `best`), the version object of the API,
 * list/search with filters, order and an offset cursor, and delete.
 * Does not own: the blob files (blob.c), tag moves (tags.c) or resolving refs
 * (refs.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static const char *const st_formats[] = {"keras2-weights", "keras2-model", "keras3-weights",
                                         "keras3-archive"};

/* order_by values and the SQL key each sorts on ("metrics.X" is apart). */
static const struct {
    const char *name;
    const char *key;
} st_orders[] = {
    {"version", "v.number"},
    {"epoch", "v.epoch"},
    {"created_at", "v.created_at"},
};

/* Stored JSON text → value, or null for SQL NULL; NULL when it does not parse. */
static json_t *st_col_json(sqlite3_stmt *s, int col)
{
    json_error_t jerr;
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return json_null();
    return json_loads((const char *)sqlite3_column_text(s, col), JSON_DECODE_ANY, &jerr);
}

static json_t *st_sha_json(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return json_null();
    return json_sprintf("sha256:%s", (const char *)sqlite3_column_text(s, col));
}

static st_code st_layers_json(sqlite3 *db, int64_t version_id, json_t *o, st_error *err)
{
    sqlite3_stmt *s = NULL;
    json_t *arr = json_array();
    st_code rc;
    int src;

    rc = st_prepare(db, &s, err,
                    "SELECT name, digest, params, weights FROM version_layers "
                    "WHERE version_id = ? ORDER BY position",
                    "i", version_id);
    while (rc == ST_OK && (src = st_step(s)) == SQLITE_ROW) {
        json_t *w = st_col_json(s, 3);
        if (!w) {
            rc = st_fail(err, ST_ERR_CORRUPT, "version #%lld: stored layer weights do not parse",
                         (long long)version_id);
            break;
        }
        json_array_append_new(arr, json_pack("{s:o,s:o,s:I,s:o}", "name", st_col_str(s, 0),
                                             "digest", st_sha_json(s, 1), "params",
                                             (json_int_t)sqlite3_column_int64(s, 2), "weights", w));
    }
    if (rc == ST_OK && src != SQLITE_DONE) rc = st_db_fail(err, db, src, "layers");
    if (rc == ST_OK) json_object_set(o, "layers", arr);
    json_decref(arr);
    st_finish(s);
    return rc;
}

st_code st_version_json(sqlite3 *db, const char *model, int64_t version_id, int with_layers,
                        json_t **out, st_error *err)
{
    sqlite3_stmt *s = NULL;
    json_t *o = NULL, *tags = NULL, *metrics = NULL, *validation = NULL;
    st_code rc;
    int64_t number, model_id;
    int src;

    rc = st_prepare(db, &s, err,
                    "SELECT number, digest, size, format, created_at, run, epoch, "
                    "metrics, notes, parent, validation, model_id FROM versions WHERE id = ?",
                    "i", version_id);
    if (rc) goto out;
    src = st_step(s);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? st_fail(err, ST_ERR_NOT_FOUND,
                                          "model '%s': version #%lld "
                                          "not found",
                                          model, (long long)version_id)
                                : st_db_fail(err, db, src, "version");
        goto out;
    }
    number = sqlite3_column_int64(s, 0);
    model_id = sqlite3_column_int64(s, 11);
    metrics = st_col_json(s, 7);
    validation = st_col_json(s, 10);
    if (!metrics || !validation) {
        rc = st_fail(err, ST_ERR_CORRUPT, "model '%s' version %lld: stored JSON does not parse",
                     model, (long long)number);
        goto out;
    }
    o = json_object();
    tags = json_array();
    if (!o || !tags) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "version", json_integer(number));
    json_object_set_new(o, "digest", st_sha_json(s, 1));
    json_object_set_new(o, "size", json_integer(sqlite3_column_int64(s, 2)));
    json_object_set_new(o, "format", st_col_str(s, 3));
    json_object_set_new(o, "created_at", st_col_str(s, 4));
    json_object_set_new(o, "run", st_col_str(s, 5));
    json_object_set_new(o, "epoch", st_col_int(s, 6));
    json_object_set(o, "metrics", metrics);
    json_object_set_new(o, "notes", st_col_str(s, 8));
    json_object_set_new(o, "parent", st_col_str(s, 9));
    st_finish(s);
    s = NULL;

    rc = st_prepare(
        db, &s, err,
        "SELECT name FROM tags WHERE version_id = ? UNION ALL "
        "SELECT 'latest' WHERE ? = (SELECT max(number) FROM versions WHERE model_id = ?) "
        "ORDER BY 1",
        "iii", version_id, number, model_id);
    if (rc) goto out;
    while ((src = st_step(s)) == SQLITE_ROW) json_array_append_new(tags, st_col_str(s, 0));
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "tags");
        goto out;
    }
    json_object_set(o, "tags", tags);
    if (with_layers) {
        rc = st_layers_json(db, version_id, o, err);
        if (rc) goto out;
    }
    json_object_set(o, "validation", validation);
    *out = o;
    o = NULL;
out:
    st_finish(s);
    json_decref(o);
    json_decref(tags);
    json_decref(metrics);
    json_decref(validation);
    return rc;
}

/* ---- create ------------------------------------------------------------- */

/* Checked, parsed inputs of st_version_create. */
struct st_vin {
    const char *digest; /* hex, no prefix */
    json_t *metrics;    /* object of numbers, or NULL */
    char *metrics_text; /* its compact text */
    json_t *layers;     /* array */
    json_t *validation; /* object or NULL */
    char *validation_text;
};

static void st_vin_release(struct st_vin *in)
{
    json_decref(in->metrics);
    json_decref(in->layers);
    json_decref(in->validation);
    free(in->metrics_text);
    free(in->validation_text);
}

static int st_parent_valid(const char *p)
{
    const char *at = strrchr(p, '@');
    char name[129];
    size_t n;
    if (!at || !st_all_digits(at + 1)) return 0;
    n = (size_t)(at - p);
    if (n == 0 || n >= sizeof name) return 0;
    memcpy(name, p, n);
    name[n] = '\0';
    return st_name_valid(name);
}

static st_code st_layers_check(json_t *layers, st_error *err)
{
    size_t i;
    json_t *l;
    if (!json_is_array(layers))
        return st_fail(err, ST_ERR_INVALID, "layers: expected a JSON array");
    json_array_foreach (layers, i, l) {
        json_t *name = json_object_get(l, "name"), *dg = json_object_get(l, "digest");
        json_t *params = json_object_get(l, "params"), *w = json_object_get(l, "weights");
        if (!json_is_object(l) || !json_is_string(name))
            return st_fail(err, ST_ERR_INVALID, "layers[%zu]: expected an object with a name", i);
        if (dg && !json_is_null(dg) &&
            !(json_is_string(dg) && st_hex64_valid(st_strip_sha256(json_string_value(dg)))))
            return st_fail(err, ST_ERR_INVALID,
                           "layer '%.128s': digest must be sha256:<64 hex> "
                           "or null",
                           json_string_value(name));
        if (params && !(json_is_integer(params) && json_integer_value(params) >= 0))
            return st_fail(err, ST_ERR_INVALID, "layer '%.128s': params must be a count",
                           json_string_value(name));
        if (w && !json_is_array(w))
            return st_fail(err, ST_ERR_INVALID, "layer '%.128s': weights must be an array",
                           json_string_value(name));
    }
    return ST_OK;
}

static st_code st_vin_check(const st_version_new *v, struct st_vin *in, st_error *err)
{
    json_error_t jerr;
    const char *key;
    json_t *val;
    size_t i;
    int fmt_ok = 0;

    if (!st_name_valid(v->model))
        return st_fail(err, ST_ERR_INVALID, "model name '%.140s' is not valid",
                       v->model ? v->model : "(null)");
    in->digest = st_strip_sha256(v->digest);
    if (!st_hex64_valid(in->digest))
        return st_fail(err, ST_ERR_INVALID, "digest '%.80s': expected 64 lowercase hex characters",
                       v->digest ? v->digest : "(null)");
    for (i = 0; v->format && i < sizeof st_formats / sizeof st_formats[0]; i++)
        fmt_ok |= strcmp(v->format, st_formats[i]) == 0;
    if (!fmt_ok)
        return st_fail(err, ST_ERR_INVALID,
                       "format '%.40s': expected keras2-weights, keras2-model, "
                       "keras3-weights or keras3-archive",
                       v->format ? v->format : "(null)");
    if (v->run && !st_name_valid(v->run))
        return st_fail(err, ST_ERR_INVALID, "run name '%.140s' is not valid", v->run);
    if (v->has_epoch && v->epoch < 0)
        return st_fail(err, ST_ERR_INVALID, "epoch %lld: expected >= 0", (long long)v->epoch);
    if (v->parent && !st_parent_valid(v->parent))
        return st_fail(err, ST_ERR_INVALID, "parent '%.140s': expected model@N", v->parent);
    for (i = 0; i < v->ntags; i++) {
        if (!v->tags || !st_tag_name_valid(v->tags[i]))
            return st_fail(err, ST_ERR_INVALID,
                           "tag '%.140s' is not valid (names are "
                           "[A-Za-z0-9][A-Za-z0-9._-]*, never all digits)",
                           v->tags && v->tags[i] ? v->tags[i] : "(null)");
        if (strcmp(v->tags[i], "latest") == 0)
            return st_fail(err, ST_ERR_INVALID,
                           "tag 'latest' is reserved (it always names the "
                           "highest version)");
    }
    if (v->metrics) {
        in->metrics = json_loads(v->metrics, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(in->metrics))
            return st_fail(err, ST_ERR_INVALID, "metrics: expected a JSON object of numbers");
        json_object_foreach (in->metrics, key, val) {
            if (!json_is_number(val) || !*key)
                return st_fail(err, ST_ERR_INVALID, "metric '%.128s': expected a number", key);
        }
        in->metrics_text = json_dumps(in->metrics, JSON_COMPACT);
        if (!in->metrics_text) return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    in->layers = v->layers ? json_loads(v->layers, 0, &jerr) : json_array();
    if (!in->layers) return st_fail(err, ST_ERR_INVALID, "layers: not JSON: %s", jerr.text);
    if (st_layers_check(in->layers, err) != ST_OK) return ST_ERR_INVALID;
    if (v->validation) {
        in->validation = json_loads(v->validation, 0, &jerr);
        if (!json_is_object(in->validation))
            return st_fail(err, ST_ERR_INVALID, "validation: expected a JSON object");
        in->validation_text = json_dumps(in->validation, JSON_COMPACT);
        if (!in->validation_text) return st_fail(err, ST_ERR_NOMEM, "out of memory");
    }
    return ST_OK;
}

static st_code st_insert_layers(sqlite3 *db, int64_t vid, json_t *layers, st_error *err)
{
    size_t i;
    json_t *l;
    st_code rc = ST_OK;
    json_array_foreach (layers, i, l) {
        json_t *w = json_object_get(l, "weights");
        json_t *dg = json_object_get(l, "digest");
        char *wt = w ? json_dumps(w, JSON_COMPACT) : strdup("[]");
        if (!wt) return st_fail(err, ST_ERR_NOMEM, "out of memory");
        rc = st_exec(db, err,
                     "INSERT INTO version_layers(version_id, position, name, digest, "
                     "params, weights) VALUES (?, ?, ?, ?, ?, ?)",
                     "iittit", vid, (int64_t)i, json_string_value(json_object_get(l, "name")),
                     json_is_string(dg) ? st_strip_sha256(json_string_value(dg)) : NULL,
                     (int64_t)json_integer_value(json_object_get(l, "params")), wt);
        free(wt);
        if (rc) break;
    }
    return rc;
}

/* The run row, and this checkpoint's metrics in its history when an epoch
 * is known (replacing what that epoch had: resumed training). */
static st_code st_record_run(sqlite3 *db, int64_t model_id, const st_version_new *v,
                             json_t *metrics, const char *now, st_error *err)
{
    int64_t run_id = 0;
    int found = 0;
    const char *key;
    json_t *val;
    st_code rc;

    rc = st_exec(db, err, "INSERT OR IGNORE INTO runs(model_id, name, created_at) VALUES (?, ?, ?)",
                 "itt", model_id, v->run, now);
    if (rc == ST_OK)
        rc = st_query_i64(db, err, &run_id, &found,
                          "SELECT id FROM runs WHERE model_id = ? "
                          "AND name = ?",
                          "it", model_id, v->run);
    if (rc || !v->has_epoch || !metrics) return rc;
    json_object_foreach (metrics, key, val) {
        rc = st_exec(db, err,
                     "INSERT OR REPLACE INTO history(run_id, epoch, metric, value) "
                     "VALUES (?, ?, ?, ?)",
                     "iitd", run_id, v->epoch, key, json_number_value(val));
        if (rc) break;
    }
    return rc;
}

/* Move `best` to vid when the model monitors a metric this version has and
 * improves on (strictly) the version tagged best now, or none is. */
static st_code st_monitor(sqlite3 *db, int64_t model_id, int64_t vid, json_t *metrics,
                          st_error *err)
{
    sqlite3_stmt *s = NULL;
    st_code rc;
    int src, better = 1;
    const char *metric, *mode;
    json_t *val;
    double x;

    rc = st_prepare(db, &s, err, "SELECT monitor_metric, monitor_mode FROM models WHERE id = ?",
                    "i", model_id);
    if (rc) return rc;
    if ((src = st_step(s)) != SQLITE_ROW) {
        rc = st_db_fail(err, db, src, "monitor");
        goto out;
    }
    metric = (const char *)sqlite3_column_text(s, 0);
    mode = (const char *)sqlite3_column_text(s, 1);
    val = metric ? json_object_get(metrics, metric) : NULL;
    if (!json_is_number(val)) goto out;
    x = json_number_value(val);
    {
        /* Copy before the statement is reused. */
        int is_max = mode && strcmp(mode, "max") == 0;
        char mname[256];
        snprintf(mname, sizeof mname, "%s", metric);
        st_finish(s);
        s = NULL;
        rc = st_prepare(db, &s, err,
                        "SELECT t.version_id, vm.value FROM tags t "
                        "LEFT JOIN version_metrics vm ON vm.version_id = t.version_id "
                        "AND vm.metric = ? WHERE t.model_id = ? AND t.name = 'best'",
                        "ti", mname, model_id);
        if (rc) goto out;
        src = st_step(s);
        if (src == SQLITE_ROW) {
            if (sqlite3_column_int64(s, 0) == vid)
                better = 0; /* tagged best by the upload itself */
            else if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
                double cur = sqlite3_column_double(s, 1);
                better = is_max ? x > cur : x < cur;
            }
        } else if (src != SQLITE_DONE) {
            rc = st_db_fail(err, db, src, "monitor");
            goto out;
        }
    }
    if (better) rc = st_tag_move(db, model_id, "best", vid, "monitor", err);
out:
    st_finish(s);
    return rc;
}

st_code st_version_create(st_store *st, const st_version_new *v, json_t **out, st_error *err)
{
    struct st_vin in = {0};
    sqlite3 *db = NULL;
    json_t *o = NULL, *val;
    const char *key;
    int64_t model_id = 0, number = 0, vid = 0, bsize = 0;
    int found = 0;
    st_code rc;
    char now[32];

    if (!st || !v) return st_fail(err, ST_ERR_INVALID, "no version given");
    rc = st_vin_check(v, &in, err);
    if (rc) goto done;
    st_now_rfc3339(now, sizeof now);

    rc = st_wbegin(st, &db, err);
    if (rc) goto done;
    rc = st_model_lookup(db, v->model, &model_id, err);
    if (rc == ST_OK)
        rc = st_query_i64(db, err, &bsize, &found, "SELECT size FROM blobs WHERE digest = ?", "t",
                          in.digest);
    if (rc == ST_OK && !found)
        rc = st_fail(err, ST_ERR_NOT_FOUND, "blob 'sha256:%s' not found (commit the upload first)",
                     in.digest);
    if (rc == ST_OK && (uint64_t)bsize != v->size)
        rc = st_fail(err, ST_ERR_INVALID, "size %llu does not match blob 'sha256:%s' (%lld bytes)",
                     (unsigned long long)v->size, in.digest, (long long)bsize);
    if (rc == ST_OK)
        rc = st_query_i64(db, err, &number, &found, "SELECT next_version FROM models WHERE id = ?",
                          "i", model_id);
    if (rc == ST_OK)
        rc = st_exec(db, err, "UPDATE models SET next_version = next_version + 1 WHERE id = ?", "i",
                     model_id);
    if (rc == ST_OK)
        rc = st_exec(db, err,
                     "INSERT INTO versions(model_id, number, digest, size, format, run, "
                     "epoch, metrics, notes, parent, validation, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     "iitittpttttt", model_id, number, in.digest, (int64_t)v->size, v->format,
                     v->run, v->has_epoch ? &v->epoch : NULL, in.metrics_text, v->notes, v->parent,
                     in.validation_text, now);
    if (rc == ST_OK) {
        vid = sqlite3_last_insert_rowid(db);
        rc = st_insert_layers(db, vid, in.layers, err);
    }
    if (rc == ST_OK && in.metrics) {
        json_object_foreach (in.metrics, key, val) {
            rc = st_exec(db, err,
                         "INSERT INTO version_metrics(version_id, model_id, metric, value) "
                         "VALUES (?, ?, ?, ?)",
                         "iitd", vid, model_id, key, json_number_value(val));
            if (rc) break;
        }
    }
    for (size_t i = 0; rc == ST_OK && i < v->ntags; i++)
        rc = st_tag_move(db, model_id, v->tags[i], vid, "upload", err);
    if (rc == ST_OK && v->run) rc = st_record_run(db, model_id, v, in.metrics, now, err);
    if (rc == ST_OK && in.metrics) rc = st_monitor(db, model_id, vid, in.metrics, err);
    if (rc == ST_OK && out) rc = st_version_json(db, v->model, vid, 1, &o, err);
    rc = st_wend(st, rc, err);
    if (rc == ST_OK && out) {
        *out = o;
        o = NULL;
    }
done:
    json_decref(o);
    st_vin_release(&in);
    return rc;
}

/* ---- get / list / delete ------------------------------------------------ */

st_code st_version_get(st_store *st, const char *model, const char *ref, json_t **out,
                       st_error *err)
{
    sqlite3 *db = NULL;
    int64_t model_id, vid;
    st_code rc;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_resolve(db, model, ref, &model_id, &vid, err);
    if (rc == ST_OK) rc = st_version_json(db, model, vid, 1, out, err);
    st_rend(st, db);
    return rc;
}

static int st_bind_named_i64(sqlite3_stmt *s, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(s, name);
    return i ? sqlite3_bind_int64(s, i, v) : SQLITE_OK;
}

static int st_bind_named_text(sqlite3_stmt *s, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(s, name);
    return i && v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : SQLITE_OK;
}

/* order_by's sort key ("m.value" and *metric for metrics.<name>); NULL
 * when unknown or the metric name is bad. */
static const char *st_list_key(const st_version_query *q, const char **metric)
{
    *metric = NULL;
    if (!q->order_by) return "v.number";
    if (strncmp(q->order_by, "metrics.", 8) == 0) {
        *metric = q->order_by + 8;
        return st_name_valid(*metric) ? "m.value" : NULL;
    }
    for (size_t i = 0; i < sizeof st_orders / sizeof st_orders[0]; i++)
        if (strcmp(q->order_by, st_orders[i].name) == 0) return st_orders[i].key;
    return NULL;
}

/* The search's SQL, with named parameters :model :metric :run :mine :maxe
 * :tag :limit :offset. Every form reads a page without sorting the model's
 * versions (issue 7; tests/unit/test_storage_search.c checks the plans):
 * - order_by=metrics.X walks version_metrics_order (model, metric, value,
 *   version), or version_metrics_run (…, run, value, version) with run=,
 *   and stops at the page's end. CROSS JOIN keeps that walk the outer loop;
 *   left to itself, with statistics from a large table, SQLite would scan
 *   the model's versions and sort them all. INDEXED BY: the same, whatever
 *   the statistics say.
 * - tag= is one version (a tag names one; latest is the highest number):
 *   read it first, by id or number, then its metric.
 * - narrow (st_list_narrow: min_epoch/max_epoch hold few versions): read
 *   those first by versions_epoch / versions_run_epoch and sort them.
 * - version and epoch walk (model, number), versions_epoch (0005) or
 *   versions_run_epoch with run=; ties by id. created_at sorts.
 * Not static: bench/history_fill.c and the test EXPLAIN exactly this SQL.
 * 0, or -1 for an unknown order_by or too small a buffer. */
int st_version_list_sql(const st_version_query *q, int narrow, char *sql, size_t size)
{
    const char *metric, *key = st_list_key(q, &metric);
    const char *dir = q->descending ? "DESC" : "ASC";
    size_t len = 0;

    if (!key) return -1;
#define SQL_ADD(...) (len += (size_t)snprintf(sql + len, len < size ? size - len : 0, __VA_ARGS__))
    if (metric && (q->tag || narrow))
        SQL_ADD("SELECT v.id FROM versions v CROSS JOIN version_metrics m "
                "ON m.version_id = v.id AND m.metric = :metric WHERE v.model_id = :model ");
    else if (metric && q->run)
        SQL_ADD("SELECT v.id FROM version_metrics m INDEXED BY version_metrics_run "
                "CROSS JOIN versions v ON v.id = m.version_id WHERE m.model_id = :model "
                "AND m.metric = :metric AND m.run = :run AND v.model_id = :model ");
    else if (metric)
        SQL_ADD("SELECT v.id FROM version_metrics m INDEXED BY version_metrics_order "
                "CROSS JOIN versions v ON v.id = m.version_id WHERE m.model_id = :model "
                "AND m.metric = :metric AND v.model_id = :model ");
    else if (strcmp(key, "v.epoch") == 0 && !q->tag)
        SQL_ADD("SELECT v.id FROM versions v INDEXED BY %s WHERE v.model_id = :model ",
                q->run ? "versions_run_epoch" : "versions_epoch");
    else SQL_ADD("SELECT v.id FROM versions v WHERE v.model_id = :model ");
    if (q->run) SQL_ADD("AND v.run = :run ");
    if (q->has_min_epoch) SQL_ADD("AND v.epoch >= :mine ");
    if (q->has_max_epoch) SQL_ADD("AND v.epoch <= :maxe ");
    if (q->tag && strcmp(q->tag, "latest") == 0)
        SQL_ADD("AND v.number = (SELECT max(number) FROM versions WHERE model_id = :model) ");
    else if (q->tag)
        SQL_ADD("AND v.id = (SELECT t.version_id FROM tags t WHERE t.model_id = :model "
                "AND t.name = :tag) ");
    /* Ties by version: ids grow with numbers within a model (a new row's id
     * is above every live one), so the id is what an index walk gives. */
    if (strcmp(key, "v.number") == 0)
        SQL_ADD("ORDER BY v.number %s LIMIT :limit OFFSET :offset", dir);
    else
        SQL_ADD("ORDER BY %s %s, %s %s LIMIT :limit OFFSET :offset", key, dir,
                metric ? "m.version_id" : "v.id", dir);
#undef SQL_ADD
    return len < size ? 0 : -1;
}

/* min_epoch/max_epoch with order_by=metrics.X (no tag): does the range hold
 * so few versions that reading them all and sorting beats the walk? To fill
 * a page the walk visits about want * total / in_range index entries, one
 * row lookup each (total: the model's versions, or the run's); reading
 * first costs about two lookups per version in range. Read first when
 * 2 * in_range^2 < want * total. Each count stops at its bound, so deciding
 * costs less than either way of reading. */
static st_code st_list_narrow(sqlite3 *db, int64_t model_id, const st_version_query *q,
                              int64_t want, int *narrow, st_error *err)
{
    int64_t total = 0, cap = 64, n = 0;
    int found = 0;
    st_code rc;

    *narrow = 0;
    if (q->run)
        rc = st_query_i64(db, err, &total, &found,
                          "SELECT count(*) FROM (SELECT 1 FROM versions "
                          "INDEXED BY versions_run_epoch WHERE model_id = ?1 AND run = ?2 "
                          "LIMIT 65536)",
                          "it", model_id, q->run);
    else
        rc = st_query_i64(db, err, &total, &found,
                          "SELECT next_version - 1 FROM models "
                          "WHERE id = ?",
                          "i", model_id);
    if (rc) return rc;
    want = want < INT32_MAX ? want : INT32_MAX; /* keeps the products below 2^63 */
    total = total < INT32_MAX ? total : INT32_MAX;
    while (cap < total && 2 * cap * cap < want * total) cap *= 2;
    if (q->run)
        rc = st_query_i64(db, err, &n, &found,
                          "SELECT count(*) FROM (SELECT 1 FROM versions "
                          "INDEXED BY versions_run_epoch WHERE model_id = ?1 AND run = ?2 "
                          "AND epoch >= ?3 AND epoch <= ?4 LIMIT ?5)",
                          "itiii", model_id, q->run, q->has_min_epoch ? q->min_epoch : INT64_MIN,
                          q->has_max_epoch ? q->max_epoch : INT64_MAX, cap);
    else
        rc = st_query_i64(db, err, &n, &found,
                          "SELECT count(*) FROM (SELECT 1 FROM versions "
                          "INDEXED BY versions_epoch WHERE model_id = ?1 AND epoch >= ?2 "
                          "AND epoch <= ?3 LIMIT ?4)",
                          "iiii", model_id, q->has_min_epoch ? q->min_epoch : INT64_MIN,
                          q->has_max_epoch ? q->max_epoch : INT64_MAX, cap);
    if (rc == ST_OK) *narrow = n < cap;
    return rc;
}

st_code st_version_list(st_store *st, const char *model, const st_version_query *q, json_t **out,
                        st_error *err)
{
    static const st_version_query defaults = {.descending = 1};
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *o = NULL, *items = NULL;
    const char *metric = NULL;
    char sql[1024];
    int64_t model_id, offset = 0;
    int limit, n = 0, src = SQLITE_DONE, more = 0, brc = SQLITE_OK, narrow = 0;
    st_code rc;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    if (!q) q = &defaults;
    rc = st_check_limit(q->limit, &limit, err);
    if (rc) return rc;
    if (q->after && !st_parse_i64(q->after, &offset))
        return st_fail(err, ST_ERR_INVALID, "cursor '%.40s' is not valid", q->after);
    if (q->run && !st_name_valid(q->run))
        return st_fail(err, ST_ERR_INVALID, "run name '%.140s' is not valid", q->run);
    if (q->tag && !st_tag_name_valid(q->tag))
        return st_fail(err, ST_ERR_INVALID, "tag '%.140s' is not valid", q->tag);
    if (!st_list_key(q, &metric)) {
        if (metric)
            return st_fail(err, ST_ERR_INVALID, "order_by '%.140s': bad metric name", q->order_by);
        return st_fail(err, ST_ERR_INVALID,
                       "order_by '%.140s': expected version, epoch, "
                       "created_at or metrics.<name>",
                       q->order_by);
    }

    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK && metric && !q->tag && (q->has_min_epoch || q->has_max_epoch))
        rc = st_list_narrow(db, model_id, q, offset + limit + 1, &narrow, err);
    if (rc == ST_OK && st_version_list_sql(q, narrow, sql, sizeof sql))
        rc = st_fail(err, ST_ERR_INVALID, "order_by '%.140s' is too long", q->order_by);
    if (rc == ST_OK) rc = st_prepare(db, &s, err, sql, NULL);
    if (rc) goto out;
    brc |= st_bind_named_text(s, ":metric", metric);
    brc |= st_bind_named_i64(s, ":model", model_id);
    brc |= st_bind_named_text(s, ":run", q->run);
    brc |= st_bind_named_i64(s, ":mine", q->min_epoch);
    brc |= st_bind_named_i64(s, ":maxe", q->max_epoch);
    brc |= st_bind_named_text(s, ":tag", q->tag);
    brc |= st_bind_named_i64(s, ":limit", (int64_t)limit + 1);
    brc |= st_bind_named_i64(s, ":offset", offset);
    if (brc != SQLITE_OK) {
        rc = st_db_fail(err, db, brc, "bind");
        goto out;
    }
    items = json_array();
    if (!items) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    while (rc == ST_OK && (src = st_step(s)) == SQLITE_ROW) {
        json_t *it = NULL;
        if (n == limit) {
            more = 1;
            break;
        }
        rc = st_version_json(db, model, sqlite3_column_int64(s, 0), 0, &it, err);
        if (rc == ST_OK) json_array_append_new(items, it);
        n++;
    }
    if (rc == ST_OK && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = st_db_fail(err, db, src, "versions");
    if (rc) goto out;
    /* Cursor: the offset of the next page, opaque to clients. */
    o = json_pack("{s:o,s:o}", "items", items, "next",
                  more ? json_sprintf("%lld", (long long)(offset + limit)) : json_null());
    items = NULL;
    if (!o) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    *out = o;
out:
    json_decref(items);
    st_finish(s);
    st_rend(st, db);
    return rc;
}

st_code st_version_delete(st_store *st, const char *model, int64_t number, int force, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *tags = NULL;
    int64_t model_id, vid;
    st_code rc;
    int src;

    if (!st) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_wbegin(st, &db, err);
    if (rc) return rc;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK) rc = st_version_by_number(db, model, model_id, number, &vid, err);
    if (rc == ST_OK)
        rc = st_prepare(db, &s, err, "SELECT name FROM tags WHERE version_id = ? ORDER BY name",
                        "i", vid);
    if (rc) goto out;
    tags = json_array();
    while ((src = st_step(s)) == SQLITE_ROW) json_array_append_new(tags, st_col_str(s, 0));
    st_finish(s);
    s = NULL;
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "tags");
        goto out;
    }
    if (json_array_size(tags) > 0 && !force) {
        rc = st_fail_details(err, ST_ERR_CONFLICT, json_pack("{s:O}", "tags", tags),
                             "model '%s' version %lld is tagged '%s'; move the tag or delete "
                             "with force",
                             model, (long long)number, json_string_value(json_array_get(tags, 0)));
        goto out;
    }
    for (size_t i = 0; rc == ST_OK && i < json_array_size(tags); i++)
        rc =
            st_tag_move(db, model_id, json_string_value(json_array_get(tags, i)), 0, "delete", err);
    if (rc == ST_OK) rc = st_exec(db, err, "DELETE FROM versions WHERE id = ?", "i", vid);
out:
    json_decref(tags);
    return st_wend(st, rc, err);
}
