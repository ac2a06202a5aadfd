/* tests/unit/test_storage_stmtcache.c — storage/util.c's prepared-statement
 * cache and st_generation: a statement given back is handed out again for
 * the same SQL; two users of the same SQL at once get two statements; a
 * given-back statement carries no old bindings or rows; more distinct SQL
 * than the cache holds still works (and frees, under LSan); a statement
 * cached before a schema change sees the new schema; the generation grows
 * with every write and not with reads. */
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "storage.h"
#include "store_int.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static int64_t one_int(sqlite3_stmt *s)
{
    return st_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
}

int main(void)
{
    char dir[] = "/tmp/strata-test-stmtcache-XXXXXX";
    st_store *st = NULL;
    st_error err = {0};
    sqlite3 *db = NULL;
    sqlite3_stmt *a = NULL, *b = NULL, *c = NULL;

    if (!mkdtemp(dir) || st_open(dir, &st, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    CHECK(st_rbegin(st, &db, &err) == ST_OK, "rbegin: %s", err.msg);

    /* Same SQL twice at once: two statements; given back, one comes again. */
    CHECK(st_prepare(db, &a, &err, "SELECT ? + 1", "i", (int64_t)41) == ST_OK, "%s", err.msg);
    CHECK(st_prepare(db, &b, &err, "SELECT ? + 1", "i", (int64_t)1) == ST_OK, "%s", err.msg);
    CHECK(a && b && a != b, "two users of one SQL text share a statement");
    CHECK(one_int(a) == 42 && one_int(b) == 2, "both run with their own bindings");
    st_finish(a);
    CHECK(st_prepare(db, &c, &err, "SELECT ? + 1", "n") == ST_OK, "%s", err.msg);
    CHECK(c == a, "a given-back statement is handed out again (%p vs %p)", (void *)c, (void *)a);
    CHECK(st_step(c) == SQLITE_ROW && sqlite3_column_type(c, 0) == SQLITE_NULL,
          "no old binding or row survives the hand-back");
    st_finish(c);
    st_finish(b);
    st_finish(NULL);

    /* More distinct SQL than the cache holds: all run; extras are finalized. */
    int ok = 0;
    for (int i = 0; i < 200; i++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT %d", i);
        sqlite3_stmt *s = NULL;
        if (st_prepare(db, &s, &err, q, NULL) == ST_OK && one_int(s) == i) ok++;
        st_finish(s);
    }
    CHECK(ok == 200, "200 distinct statements ran (%d)", ok);
    CHECK(st_prepare(db, &a, &err, "SELECT 199", NULL) == ST_OK, "%s", err.msg);
    st_finish(a);
    CHECK(st_prepare(db, &b, &err, "SELECT 199", NULL) == ST_OK, "%s", err.msg);
    CHECK(a == b, "a full cache still takes new SQL in (replacing idle entries)");
    st_finish(b);
    st_rend(st, db);

    /* A cached statement sees a schema change made since (SQLite re-prepares). */
    uint64_t g0 = st_generation(st);
    CHECK(st_wbegin(st, &db, &err) == ST_OK, "%s", err.msg);
    CHECK(st_exec(db, &err, "CREATE TABLE t_cache (x INTEGER)", NULL) == ST_OK, "%s", err.msg);
    CHECK(st_exec(db, &err, "INSERT INTO t_cache VALUES (7)", NULL) == ST_OK, "%s", err.msg);
    CHECK(st_wend(st, ST_OK, &err) == ST_OK, "%s", err.msg);
    uint64_t g1 = st_generation(st);
    CHECK(g1 > g0, "a write grows the generation (%llu -> %llu)", (unsigned long long)g0,
          (unsigned long long)g1);
    CHECK(st_rbegin(st, &db, &err) == ST_OK, "%s", err.msg);
    CHECK(st_prepare(db, &a, &err, "SELECT count(*) FROM t_cache", NULL) == ST_OK, "%s", err.msg);
    CHECK(one_int(a) == 1, "one row before");
    st_finish(a);
    st_rend(st, db);
    CHECK(st_generation(st) == g1, "a read leaves the generation alone");
    CHECK(st_wbegin(st, &db, &err) == ST_OK, "%s", err.msg);
    CHECK(st_exec(db, &err, "ALTER TABLE t_cache ADD COLUMN y INTEGER DEFAULT 3", NULL) == ST_OK,
          "%s", err.msg);
    CHECK(st_exec(db, &err, "INSERT INTO t_cache (x) VALUES (8)", NULL) == ST_OK, "%s", err.msg);
    CHECK(st_wend(st, ST_OK, &err) == ST_OK, "%s", err.msg);
    CHECK(st_rbegin(st, &db, &err) == ST_OK, "%s", err.msg);
    CHECK(st_prepare(db, &a, &err, "SELECT count(*) FROM t_cache", NULL) == ST_OK, "%s", err.msg);
    CHECK(one_int(a) == 2, "the cached count sees the new row after ALTER TABLE");
    st_finish(a);
    st_rend(st, db);

    st_model_new m = {.name = "gen"};
    json_t *out = NULL;
    uint64_t g2 = st_generation(st);
    CHECK(st_model_create(st, &m, &out, &err) == ST_OK, "%s", err.msg);
    json_decref(out);
    CHECK(st_generation(st) > g2, "creating a model grows the generation");

    st_error_release(&err);
    st_close(st);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done();
}
