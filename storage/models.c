/* storage/models.c — the `models` table: create, the model object of the
 * API (with live version count, latest number and tags), list by name,
 * delete (forced delete takes versions, tags and history with it; blobs
 * stay for gc). Does not own: versions (versions.c) or tags (tags.c).
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

st_code st_model_lookup(sqlite3 *db, const char *name, int64_t *id, st_error *err)
{
    int found = 0;
    st_code rc;
    if (!st_name_valid(name))
        return st_fail(err, ST_ERR_INVALID, "model name '%.140s' is not valid",
                       name ? name : "(null)");
    rc = st_query_i64(db, err, id, &found, "SELECT id FROM models WHERE name = ?", "t", name);
    if (rc == ST_OK && !found) rc = st_fail(err, ST_ERR_NOT_FOUND, "model '%s' not found", name);
    return rc;
}

st_code st_model_json(sqlite3 *db, int64_t model_id, json_t **out, st_error *err)
{
    sqlite3_stmt *s = NULL;
    json_t *o = NULL, *tags = NULL;
    st_code rc;
    int src;

    rc = st_prepare(
        db, &s, err,
        "SELECT name, architecture, description, monitor_metric, monitor_mode, created_at, "
        "(SELECT count(*) FROM versions WHERE model_id = m.id), "
        "(SELECT max(number) FROM versions WHERE model_id = m.id) "
        "FROM models m WHERE id = ?",
        "i", model_id);
    if (rc) goto out;
    src = st_step(s);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE
                 ? st_fail(err, ST_ERR_NOT_FOUND, "model #%lld not found", (long long)model_id)
                 : st_db_fail(err, db, src, "model");
        goto out;
    }
    o = json_object();
    tags = json_object();
    if (!o || !tags) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_object_set_new(o, "name", st_col_str(s, 0));
    json_object_set_new(o, "architecture", st_col_str(s, 1));
    json_object_set_new(o, "description", st_col_str(s, 2));
    if (sqlite3_column_type(s, 3) != SQLITE_NULL)
        json_object_set_new(
            o, "monitor",
            json_pack("{s:o,s:o}", "metric", st_col_str(s, 3), "mode", st_col_str(s, 4)));
    else json_object_set_new(o, "monitor", json_null());
    json_object_set_new(o, "created_at", st_col_str(s, 5));
    json_object_set_new(o, "versions", json_integer(sqlite3_column_int64(s, 6)));
    json_object_set_new(o, "latest_version", st_col_int(s, 7));
    if (sqlite3_column_type(s, 7) != SQLITE_NULL)
        json_object_set_new(tags, "latest", json_integer(sqlite3_column_int64(s, 7)));
    st_finish(s);
    s = NULL;

    rc = st_prepare(db, &s, err,
                    "SELECT t.name, v.number FROM tags t JOIN versions v "
                    "ON v.id = t.version_id WHERE t.model_id = ? ORDER BY t.name",
                    "i", model_id);
    if (rc) goto out;
    while ((src = st_step(s)) == SQLITE_ROW)
        json_object_set_new(tags, (const char *)sqlite3_column_text(s, 0),
                            json_integer(sqlite3_column_int64(s, 1)));
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "tags");
        goto out;
    }
    json_object_set_new(o, "tags", tags);
    tags = NULL;
    *out = o;
    o = NULL;
out:
    st_finish(s);
    json_decref(o);
    json_decref(tags);
    return rc;
}

int st_metric_is_max(const char *metric)
{
    return strstr(metric, "acc") != NULL || strncmp(metric, "fmeasure", 8) == 0;
}

st_code st_model_create(st_store *st, const st_model_new *m, json_t **out, st_error *err)
{
    sqlite3 *db = NULL;
    json_t *o = NULL;
    st_code rc;
    int64_t id, one;
    int found = 0;
    const char *mode;
    char now[32];

    if (!st || !m) return st_fail(err, ST_ERR_INVALID, "no model given");
    if (!st_name_valid(m->name))
        return st_fail(err, ST_ERR_INVALID,
                       "model name '%.140s' is not valid: expected "
                       "[A-Za-z0-9][A-Za-z0-9._-]{0,127}",
                       m->name ? m->name : "(null)");
    if (m->monitor_metric && !st_name_valid(m->monitor_metric))
        return st_fail(err, ST_ERR_INVALID, "monitor metric '%.140s' is not valid",
                       m->monitor_metric);
    mode = m->monitor_mode;
    if (mode && strcmp(mode, "min") != 0 && strcmp(mode, "max") != 0)
        return st_fail(err, ST_ERR_INVALID, "monitor mode '%.40s': expected 'min' or 'max'", mode);
    if (mode && !m->monitor_metric)
        return st_fail(err, ST_ERR_INVALID, "monitor mode given without a metric");
    if (m->monitor_metric && !mode) mode = st_metric_is_max(m->monitor_metric) ? "max" : "min";
    st_now_rfc3339(now, sizeof now);

    rc = st_wbegin(st, &db, err);
    if (rc) return rc;
    rc = st_query_i64(db, err, &one, &found, "SELECT 1 FROM models WHERE name = ?", "t", m->name);
    if (rc == ST_OK && found)
        rc = st_fail(err, ST_ERR_CONFLICT, "model '%s' exists already", m->name);
    if (rc == ST_OK && m->architecture) {
        rc = st_query_i64(db, err, &one, &found, "SELECT 1 FROM architectures WHERE id = ?", "t",
                          m->architecture);
        if (rc == ST_OK && !found)
            rc = st_fail(err, ST_ERR_NOT_FOUND, "architecture '%.80s' not found", m->architecture);
    }
    if (rc == ST_OK)
        rc = st_exec(db, err,
                     "INSERT INTO models(name, architecture, description, monitor_metric, "
                     "monitor_mode, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                     "tttttt", m->name, m->architecture, m->description, m->monitor_metric,
                     m->monitor_metric ? mode : NULL, now);
    if (rc == ST_OK) {
        id = sqlite3_last_insert_rowid(db);
        if (out) rc = st_model_json(db, id, &o, err);
    }
    rc = st_wend(st, rc, err);
    if (rc == ST_OK && out) {
        *out = o;
        o = NULL;
    }
    json_decref(o);
    return rc;
}

st_code st_model_get(st_store *st, const char *name, json_t **out, st_error *err)
{
    sqlite3 *db = NULL;
    int64_t id;
    st_code rc;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_model_lookup(db, name, &id, err);
    if (rc == ST_OK) rc = st_model_json(db, id, out, err);
    st_rend(st, db);
    return rc;
}

st_code st_model_list(st_store *st, int limit, const char *after, json_t **out, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *o = NULL, *items = NULL, *next = NULL;
    st_code rc;
    int src = SQLITE_DONE, n = 0;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_check_limit(limit, &limit, err);
    if (rc) return rc;
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    items = json_array();
    if (!items) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = st_prepare(db, &s, err, "SELECT id, name FROM models WHERE name > ? ORDER BY name LIMIT ?",
                    "ti", after ? after : "", (int64_t)limit + 1);
    if (rc) goto out;
    while (rc == ST_OK && (src = st_step(s)) == SQLITE_ROW) {
        json_t *m = NULL;
        if (n == limit) {
            /* One more row exists: the cursor is the last name answered. */
            json_t *last = json_array_get(items, json_array_size(items) - 1);
            next = json_incref(json_object_get(last, "name"));
            break;
        }
        rc = st_model_json(db, sqlite3_column_int64(s, 0), &m, err);
        if (rc == ST_OK) json_array_append_new(items, m);
        n++;
    }
    if (rc == ST_OK && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = st_db_fail(err, db, src, "models");
    if (rc) goto out;
    o = json_pack("{s:o,s:o}", "items", items, "next", next ? next : json_null());
    items = next = NULL;
    if (!o) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    *out = o;
out:
    st_finish(s);
    json_decref(items);
    json_decref(next);
    st_rend(st, db);
    return rc;
}

st_code st_model_delete(st_store *st, const char *name, int force, st_error *err)
{
    sqlite3 *db = NULL;
    int64_t id, count = 0;
    int found = 0;
    st_code rc;

    if (!st) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_wbegin(st, &db, err);
    if (rc) return rc;
    rc = st_model_lookup(db, name, &id, err);
    if (rc == ST_OK)
        rc = st_query_i64(db, err, &count, &found,
                          "SELECT count(*) FROM versions WHERE model_id = ?", "i", id);
    if (rc == ST_OK && count > 0 && !force)
        rc =
            st_fail_details(err, ST_ERR_CONFLICT, json_pack("{s:I}", "versions", (json_int_t)count),
                            "model '%s' still has %lld version%s; delete with force to remove "
                            "them too",
                            name, (long long)count, count == 1 ? "" : "s");
    /* Tags first (they reference versions without a cascade); the rest
     * (versions, layers, metrics, tag moves, runs, history) cascades. */
    if (rc == ST_OK) rc = st_exec(db, err, "DELETE FROM tags WHERE model_id = ?", "i", id);
    if (rc == ST_OK) rc = st_exec(db, err, "DELETE FROM models WHERE id = ?", "i", id);
    return st_wend(st, rc, err);
}
