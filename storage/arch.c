/* storage/arch.c — the `architectures` table: store (idempotent by id),
 * fetch, the canonical config text, and the list. The config and the
 * engine's summary arrive as JSON text and are stored as given.
 * Does not own: parsing Keras configs or computing the id (engine/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static st_code st_arch_id_check(const char *id, st_error *err)
{
    if (!id || strncmp(id, "sha256:", 7) != 0 || !st_hex64_valid(id + 7))
        return st_fail(err, ST_ERR_INVALID, "architecture id '%.80s': expected sha256:<64 hex>",
                       id ? id : "(null)");
    return ST_OK;
}

st_code st_arch_put(st_store *st, const char *id, const char *name, const char *config,
                    const char *summary, int *created, st_error *err)
{
    sqlite3 *db = NULL;
    json_t *c = NULL, *s = NULL;
    json_error_t jerr;
    st_code rc;
    char now[32];

    if (!st) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_arch_id_check(id, err);
    if (rc) return rc;
    if (name && !st_name_valid(name))
        return st_fail(err, ST_ERR_INVALID, "architecture name '%.140s' is not valid", name);
    c = config ? json_loads(config, JSON_DECODE_ANY, &jerr) : NULL;
    s = summary ? json_loads(summary, 0, &jerr) : NULL;
    if (!c || !json_is_object(s)) {
        rc = st_fail(err, ST_ERR_INVALID,
                     "architecture '%s': config and summary must be JSON "
                     "(summary an object)",
                     id);
        goto out;
    }
    st_now_rfc3339(now, sizeof now);
    rc = st_wbegin(st, &db, err);
    if (rc) goto out;
    rc = st_exec(db, err,
                 "INSERT OR IGNORE INTO architectures(id, name, config, summary, created_at) "
                 "VALUES (?, ?, ?, ?, ?)",
                 "ttttt", id, name, config, summary, now);
    if (rc == ST_OK && created) *created = sqlite3_changes(db) > 0;
    rc = st_wend(st, rc, err);
out:
    json_decref(c);
    json_decref(s);
    return rc;
}

st_code st_arch_get(st_store *st, const char *id, json_t **out, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *o = NULL, *cfg = NULL;
    json_error_t jerr;
    st_code rc;
    int src;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_arch_id_check(id, err);
    if (rc) return rc;
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_prepare(db, &s, err,
                    "SELECT name, created_at, summary, config FROM architectures "
                    "WHERE id = ?",
                    "t", id);
    if (rc) goto out;
    src = st_step(s);
    if (src == SQLITE_DONE) {
        rc = st_fail(err, ST_ERR_NOT_FOUND, "architecture '%s' not found", id);
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = st_db_fail(err, db, src, "architecture");
        goto out;
    }
    o = json_loads((const char *)sqlite3_column_text(s, 2), 0, &jerr);
    cfg = json_loads((const char *)sqlite3_column_text(s, 3), JSON_DECODE_ANY, &jerr);
    if (!json_is_object(o) || !cfg) {
        rc = st_fail(err, ST_ERR_CORRUPT, "architecture '%s': stored JSON does not parse", id);
        goto out;
    }
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "name", st_col_str(s, 0));
    json_object_set_new(o, "created_at", st_col_str(s, 1));
    json_object_set(o, "config", cfg);
    *out = o;
    o = NULL;
out:
    json_decref(o);
    json_decref(cfg);
    st_finish(s);
    st_rend(st, db);
    return rc;
}

st_code st_arch_config(st_store *st, const char *id, char **config, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    st_code rc;
    int src;

    if (!st || !config) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_arch_id_check(id, err);
    if (rc) return rc;
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_prepare(db, &s, err, "SELECT config FROM architectures WHERE id = ?", "t", id);
    if (rc) goto out;
    src = st_step(s);
    if (src == SQLITE_DONE) {
        rc = st_fail(err, ST_ERR_NOT_FOUND, "architecture '%s' not found", id);
    } else if (src != SQLITE_ROW) {
        rc = st_db_fail(err, db, src, "architecture");
    } else {
        char *c = strdup((const char *)sqlite3_column_text(s, 0));
        if (!c) rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        else *config = c;
    }
out:
    st_finish(s);
    st_rend(st, db);
    return rc;
}

st_code st_arch_list(st_store *st, int limit, const char *after, json_t **out, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *items = NULL, *o = NULL;
    st_code rc;
    int src, n = 0;
    char last[80] = "";

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_check_limit(limit, &limit, err);
    if (rc) return rc;
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    /* Cursor: the last id of the previous page (ids are unique and sortable). */
    rc = st_prepare(db, &s, err,
                    "SELECT id, name, created_at, json_extract(summary, '$.params') "
                    "FROM architectures WHERE id > ? ORDER BY id LIMIT ?",
                    "ti", after ? after : "", (int64_t)limit + 1);
    if (rc) goto out;
    items = json_array();
    o = json_object();
    if (!items || !o) {
        rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
        goto out;
    }
    while ((src = st_step(s)) == SQLITE_ROW) {
        json_t *it;
        if (n == limit) {
            json_object_set_new(o, "next", json_string(last));
            break;
        }
        it = json_object();
        json_object_set_new(it, "id", st_col_str(s, 0));
        json_object_set_new(it, "name", st_col_str(s, 1));
        json_object_set_new(it, "created_at", st_col_str(s, 2));
        json_object_set_new(it, "params", st_col_int(s, 3));
        json_array_append_new(items, it);
        snprintf(last, sizeof last, "%s", (const char *)sqlite3_column_text(s, 0));
        n++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "architectures");
        goto out;
    }
    json_object_set_new(o, "items", items);
    items = NULL;
    if (!json_object_get(o, "next")) json_object_set_new(o, "next", json_null());
    *out = o;
    o = NULL;
out:
    json_decref(items);
    json_decref(o);
    st_finish(s);
    st_rend(st, db);
    return rc;
}
