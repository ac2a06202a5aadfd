/* storage/tags.c — tags of a model: the one place a tag moves (recorded in
 * tag_moves with its reason), create/move with compare-and-swap, list
 * (with the computed `latest`), delete, history.
 * `latest` is never stored: it is the highest live version number.
 * Does not own: resolving refs (refs.c).
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

st_code st_tag_move(sqlite3 *db, int64_t model_id, const char *tag, int64_t version_id,
                    const char *reason, st_error *err)
{
    sqlite3_stmt *s = NULL;
    int64_t cur_vid = 0, cur_num = 0, to_num = 0;
    int found = 0, src;
    st_code rc;
    char now[32];

    rc = st_prepare(db, &s, err,
                    "SELECT t.version_id, v.number FROM tags t JOIN versions v "
                    "ON v.id = t.version_id WHERE t.model_id = ? AND t.name = ?",
                    "it", model_id, tag);
    if (rc) return rc;
    src = st_step(s);
    if (src == SQLITE_ROW) {
        found = 1;
        cur_vid = sqlite3_column_int64(s, 0);
        cur_num = sqlite3_column_int64(s, 1);
    } else if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "tag");
    }
    st_finish(s);
    if (rc) return rc;
    if ((version_id == 0 && !found) || (found && cur_vid == version_id))
        return ST_OK; /* nothing moves */
    st_now_rfc3339(now, sizeof now);
    if (version_id == 0) {
        rc = st_exec(db, err, "DELETE FROM tags WHERE model_id = ? AND name = ?", "it", model_id,
                     tag);
    } else {
        rc = st_query_i64(db, err, &to_num, &found, "SELECT number FROM versions WHERE id = ?", "i",
                          version_id);
        if (rc == ST_OK && !found)
            rc = st_fail(err, ST_ERR_NOT_FOUND, "tag '%s': version #%lld not found", tag,
                         (long long)version_id);
        if (rc == ST_OK)
            rc = st_exec(db, err,
                         "INSERT INTO tags(model_id, name, version_id, updated_at) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT(model_id, name) DO UPDATE SET "
                         "version_id = excluded.version_id, updated_at = excluded.updated_at",
                         "itit", model_id, tag, version_id, now);
    }
    if (rc == ST_OK)
        rc = st_exec(db, err,
                     "INSERT INTO tag_moves(model_id, tag, from_version, to_version, "
                     "reason, moved_at) VALUES (?, ?, ?, ?, ?, ?)",
                     "itpptt", model_id, tag, cur_vid ? &cur_num : NULL,
                     version_id ? &to_num : NULL, reason, now);
    return rc;
}

static st_code st_tag_check(const char *tag, st_error *err)
{
    if (tag && strcmp(tag, "latest") == 0)
        return st_fail(err, ST_ERR_INVALID,
                       "tag 'latest' is reserved: it always names the "
                       "highest version");
    if (!st_tag_name_valid(tag))
        return st_fail(err, ST_ERR_INVALID,
                       "tag '%.140s' is not valid: expected "
                       "[A-Za-z0-9][A-Za-z0-9._-]{0,127}, not all digits",
                       tag ? tag : "(null)");
    return ST_OK;
}

st_code st_tag_put(st_store *st, const char *model, const char *tag, int64_t version,
                   int has_expected, int64_t expected, json_t **out, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *o = NULL;
    int64_t model_id, vid, cur = 0;
    int found = 0, src;
    st_code rc;

    if (!st) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_tag_check(tag, err);
    if (rc) return rc;
    if (has_expected && expected < 0)
        return st_fail(err, ST_ERR_INVALID, "expected version %lld: expected >= 0",
                       (long long)expected);
    rc = st_wbegin(st, &db, err);
    if (rc) return rc;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK) rc = st_version_by_number(db, model, model_id, version, &vid, err);
    if (rc == ST_OK)
        rc = st_query_i64(db, err, &cur, &found,
                          "SELECT v.number FROM tags t JOIN versions v "
                          "ON v.id = t.version_id WHERE t.model_id = ? AND t.name = ?",
                          "it", model_id, tag);
    if (rc == ST_OK && has_expected && (expected == 0 ? found : (!found || cur != expected))) {
        json_t *d = json_pack("{s:o}", "current_version", found ? json_integer(cur) : json_null());
        if (expected == 0)
            rc = st_fail_details(err, ST_ERR_CONFLICT, d,
                                 "tag '%s' of model '%s' exists already "
                                 "(version %lld)",
                                 tag, model, (long long)cur);
        else if (found)
            rc = st_fail_details(err, ST_ERR_CONFLICT, d,
                                 "tag '%s' of model '%s' points at "
                                 "version %lld, not %lld",
                                 tag, model, (long long)cur, (long long)expected);
        else
            rc = st_fail_details(err, ST_ERR_CONFLICT, d,
                                 "tag '%s' of model '%s' does not exist "
                                 "(expected version %lld)",
                                 tag, model, (long long)expected);
    }
    if (rc == ST_OK) rc = st_tag_move(db, model_id, tag, vid, "put", err);
    if (rc == ST_OK && out) {
        rc = st_prepare(db, &s, err, "SELECT updated_at FROM tags WHERE model_id = ? AND name = ?",
                        "it", model_id, tag);
        if (rc == ST_OK && (src = st_step(s)) != SQLITE_ROW) rc = st_db_fail(err, db, src, "tag");
        if (rc == ST_OK)
            o = json_pack("{s:s,s:I,s:o}", "tag", tag, "version", (json_int_t)version, "updated_at",
                          st_col_str(s, 0));
        st_finish(s);
    }
    rc = st_wend(st, rc, err);
    if (rc == ST_OK && out) {
        *out = o;
        o = NULL;
    }
    json_decref(o);
    return rc;
}

st_code st_tag_list(st_store *st, const char *model, json_t **out, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *items = NULL;
    int64_t model_id;
    st_code rc;
    int src;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK)
        rc = st_prepare(db, &s, err,
                        "SELECT t.name, v.number, t.updated_at FROM tags t JOIN versions v "
                        "ON v.id = t.version_id WHERE t.model_id = ?1 "
                        "UNION ALL SELECT 'latest', number, created_at FROM versions "
                        "WHERE model_id = ?1 AND number = (SELECT max(number) FROM versions "
                        "WHERE model_id = ?1) ORDER BY 1",
                        "i", model_id);
    if (rc) goto out;
    items = json_array();
    while ((src = st_step(s)) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:o,s:I,s:o}", "tag", st_col_str(s, 0), "version",
                                               (json_int_t)sqlite3_column_int64(s, 1), "updated_at",
                                               st_col_str(s, 2)));
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "tags");
        goto out;
    }
    *out = json_pack("{s:O}", "items", items);
    if (!*out) rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
out:
    json_decref(items);
    st_finish(s);
    st_rend(st, db);
    return rc;
}

st_code st_tag_delete(st_store *st, const char *model, const char *tag, st_error *err)
{
    sqlite3 *db = NULL;
    int64_t model_id, one;
    int found = 0;
    st_code rc;

    if (!st) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_tag_check(tag, err);
    if (rc) return rc;
    rc = st_wbegin(st, &db, err);
    if (rc) return rc;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK)
        rc = st_query_i64(db, err, &one, &found,
                          "SELECT 1 FROM tags WHERE model_id = ? "
                          "AND name = ?",
                          "it", model_id, tag);
    if (rc == ST_OK && !found)
        rc = st_fail(err, ST_ERR_NOT_FOUND, "model '%s' has no tag '%s'", model, tag);
    if (rc == ST_OK) rc = st_tag_move(db, model_id, tag, 0, "delete", err);
    return st_wend(st, rc, err);
}

st_code st_tag_history(st_store *st, const char *model, const char *tag, json_t **out,
                       st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    json_t *items = NULL;
    int64_t model_id;
    st_code rc;
    int src;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "no store");
    if (!st_tag_name_valid(tag))
        return st_fail(err, ST_ERR_INVALID, "tag '%.140s' is not valid", tag ? tag : "(null)");
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_model_lookup(db, model, &model_id, err);
    if (rc == ST_OK)
        rc = st_prepare(db, &s, err,
                        "SELECT from_version, to_version, reason, moved_at "
                        "FROM tag_moves WHERE model_id = ? AND tag = ? ORDER BY id",
                        "it", model_id, tag);
    if (rc) goto out;
    items = json_array();
    while ((src = st_step(s)) == SQLITE_ROW)
        json_array_append_new(items,
                              json_pack("{s:o,s:o,s:o,s:o}", "from_version", st_col_int(s, 0),
                                        "to_version", st_col_int(s, 1), "reason", st_col_str(s, 2),
                                        "moved_at", st_col_str(s, 3)));
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "tag history");
        goto out;
    }
    if (json_array_size(items) == 0) {
        rc = st_fail(err, ST_ERR_NOT_FOUND, "model '%s' has no tag '%s' (never had)", model, tag);
        goto out;
    }
    *out = json_pack("{s:s,s:O}", "tag", tag, "items", items);
    if (!*out) rc = st_fail(err, ST_ERR_NOMEM, "out of memory");
out:
    json_decref(items);
    st_finish(s);
    st_rend(st, db);
    return rc;
}
