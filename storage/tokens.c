/* storage/tokens.c — API tokens, stored only as the hex SHA-256 of the token.
 * The server hashes what a client sends and looks the hash up here; the
 * token itself never reaches storage. */
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>

#include "store_int.h"

static const char *const scopes[] = {"read", "write", "admin"};

st_code st_token_add(st_store *st, const char *hash_hex, const char *scope, const char *name,
                     int64_t *id, st_error *err)
{
    sqlite3 *db;
    char now[32];
    size_t i;
    st_code rc;
    for (i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (scope && strcmp(scope, scopes[i]) == 0) break;
    if (i == sizeof scopes / sizeof scopes[0])
        return st_fail(err, ST_ERR_INVALID, "token scope must be read, write or admin");
    if (!st_hex64_valid(hash_hex))
        return st_fail(err, ST_ERR_INVALID, "token hash must be 64 hex digits");
    if (name && strlen(name) > 128)
        return st_fail(err, ST_ERR_INVALID, "token name is over 128 bytes");
    st_now_rfc3339(now, sizeof now);
    if ((rc = st_wbegin(st, &db, err))) return rc;
    rc = st_exec(db, err, "INSERT INTO tokens(name, hash, scope, created_at) VALUES(?,?,?,?)",
                 "tttt", name, hash_hex, scope, now);
    int64_t newid = sqlite3_last_insert_rowid(db);
    rc = st_wend(st, rc, err);
    if (!rc) *id = newid;
    return rc;
}

st_code st_token_lookup(st_store *st, const char *hash_hex, char scope[8], st_error *err)
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    st_code rc;
    if (!st_hex64_valid(hash_hex)) return st_fail(err, ST_ERR_NOT_FOUND, "unknown token");
    if ((rc = st_rbegin(st, &db, err))) return rc;
    rc = st_prepare(db, &s, err,
                    "SELECT hash, scope FROM tokens WHERE hash = ? AND revoked_at IS NULL", "t",
                    hash_hex);
    if (!rc) {
        int step = st_step(s);
        const char *h = step == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
        const char *sc = step == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 1) : NULL;
        /* The row was found by its hash; compare again in constant time so no
         * code path depends on how much of a guess matched. */
        if (h && sc && strlen(h) == 64 && CRYPTO_memcmp(h, hash_hex, 64) == 0 && strlen(sc) < 8)
            strcpy(scope, sc);
        else if (step == SQLITE_ROW || step == SQLITE_DONE)
            rc = st_fail(err, ST_ERR_NOT_FOUND, "unknown or revoked token");
        else rc = st_db_fail(err, db, step, "looking up a token");
    }
    st_finish(s);
    st_rend(st, db);
    return rc;
}

st_code st_token_list(st_store *st, json_t **out, st_error *err)
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    st_code rc;
    json_t *items = json_array();
    if ((rc = st_rbegin(st, &db, err))) {
        json_decref(items);
        return rc;
    }
    rc = st_prepare(db, &s, err,
                    "SELECT id, name, scope, created_at, revoked_at FROM tokens ORDER BY id", "");
    int step;
    while (!rc && (step = st_step(s)) == SQLITE_ROW)
        json_array_append_new(items,
                              json_pack("{s:o,s:o,s:o,s:o,s:o}", "id", st_col_int(s, 0), "name",
                                        st_col_str(s, 1), "scope", st_col_str(s, 2), "created_at",
                                        st_col_str(s, 3), "revoked_at", st_col_str(s, 4)));
    if (!rc && step != SQLITE_DONE) rc = st_db_fail(err, db, step, "listing tokens");
    st_finish(s);
    st_rend(st, db);
    if (rc) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:o}", "items", items);
    return ST_OK;
}

st_code st_token_revoke(st_store *st, int64_t id, st_error *err)
{
    sqlite3 *db;
    char now[32];
    st_code rc;
    st_now_rfc3339(now, sizeof now);
    if ((rc = st_wbegin(st, &db, err))) return rc;
    rc = st_exec(db, err, "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                 "ti", now, id);
    if (!rc && sqlite3_changes(db) == 0)
        rc = st_fail(err, ST_ERR_NOT_FOUND, "no live token with id %lld", (long long)id);
    return st_wend(st, rc, err);
}

st_code st_token_count(st_store *st, int64_t *live, st_error *err)
{
    sqlite3 *db;
    st_code rc;
    int found = 0;
    int64_t n = 0;
    if ((rc = st_rbegin(st, &db, err))) return rc;
    rc = st_query_i64(db, err, &n, &found, "SELECT count(*) FROM tokens WHERE revoked_at IS NULL",
                      "");
    st_rend(st, db);
    if (!rc) *live = n;
    return rc;
}
