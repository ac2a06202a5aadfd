/* tests/unit/test_storage_maint.c — storage/: verify (clean store, then a
 * corrupted, truncated and missing blob file) and gc (dry run changes
 * nothing; the real run removes unreferenced old blobs, orphan files, stale
 * temp files and cache/, keeps referenced and fresh blobs). */
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "storage.h"

static st_store *st;
static char dir[] = "/tmp/strata-test-maint-XXXXXX";

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
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

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(content, f);
        fclose(f);
    }
}

static void sql(const char *q)
{
    sqlite3 *db = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/strata.db", dir);
    if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK)
        fprintf(stderr, "sql: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void collect(void *ctx, const char *problem)
{
    (void)ctx;
    fprintf(stderr, "  problem: %s\n", problem);
}

static uint64_t verify(void)
{
    st_error err = {0};
    uint64_t problems = 999;
    CHECK(st_verify(st, collect, NULL, &problems, &err) == ST_OK, "verify: %s", err.msg);
    return problems;
}

static int exists(const char *p)
{
    return access(p, F_OK) == 0;
}

int main(void)
{
    st_error err = {0};
    json_t *o = NULL;
    char a[65], b[65], pa[4200], pb[4200], orphan[4200], tmpf[4200], cachef[4200], q[300];
    uint64_t files = 0, bytes = 0, count = 0;
    int fd = -1;

    if (!mkdtemp(dir) || st_open(dir, &st, &err) != ST_OK) return 1;

    st_model_new mn = {.name = "g"};
    CHECK(st_model_create(st, &mn, &o, &err) == ST_OK, "model");
    json_decref(o);
    blob("referenced content", a);
    blob("unreferenced", b);
    st_version_new vn = {.model = "g", .digest = a, .size = 18, .format = "keras3-weights"};
    CHECK(st_version_create(st, &vn, &o, &err) == ST_OK, "version: %s", err.msg);
    json_decref(o);
    snprintf(pa, sizeof pa, "%s/blobs/sha256/%.2s/%s", dir, a, a);
    snprintf(pb, sizeof pb, "%s/blobs/sha256/%.2s/%s", dir, b, b);

    /* an orphan file (no row, crash between rename and row): sha256("abc") */
    snprintf(orphan, sizeof orphan, "%s/blobs/sha256/ba", dir);
    mkdir(orphan, 0755);
    snprintf(orphan, sizeof orphan,
             "%s/blobs/sha256/ba/"
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
             dir);
    write_file(orphan, "abc");
    {
        struct timeval old[2] = {{1000000000, 0}, {1000000000, 0}};
        utimes(orphan, old);
    }
    snprintf(tmpf, sizeof tmpf, "%s/tmp/upload-crashed", dir);
    write_file(tmpf, "partial");
    snprintf(cachef, sizeof cachef, "%s/cache/sub", dir);
    mkdir(cachef, 0755);
    snprintf(cachef, sizeof cachef, "%s/cache/sub/layers.h5", dir);
    write_file(cachef, "derived");

    CHECK(verify() == 0, "clean store verifies");

    /* b is fresh: a long grace keeps it */
    CHECK(st_gc(st, 1, 3600, &files, &bytes, &err) == ST_OK, "gc dry: %s", err.msg);
    CHECK(files == 3 && bytes == 3 + 7 + 7, "orphan+tmp+cache: %llu files %llu bytes",
          (unsigned long long)files, (unsigned long long)bytes);

    /* make b old */
    snprintf(q, sizeof q,
             "UPDATE blobs SET created_at = '2001-01-01T00:00:00Z' WHERE digest = '%s'", b);
    sql(q);
    CHECK(st_gc(st, 1, 3600, &files, &bytes, &err) == ST_OK, "gc dry 2");
    CHECK(files == 4 && bytes == 3 + 7 + 7 + 12, "dry: %llu files %llu bytes",
          (unsigned long long)files, (unsigned long long)bytes);
    CHECK(exists(pa) && exists(pb) && exists(orphan) && exists(tmpf) && exists(cachef),
          "dry run removed nothing");
    CHECK(st_blob_stats(st, &count, &bytes, &err) == ST_OK && count == 2, "2 rows still");

    /* an upload in flight survives gc */
    st_upload *up = NULL;
    CHECK(st_upload_begin(st, &up, &err) == ST_OK, "upload in flight");

    CHECK(st_gc(st, 0, 3600, &files, &bytes, &err) == ST_OK, "gc: %s", err.msg);
    CHECK(files == 4 && bytes == 29, "real: %llu files %llu bytes", (unsigned long long)files,
          (unsigned long long)bytes);
    CHECK(exists(pa) && !exists(pb) && !exists(orphan) && !exists(tmpf) && !exists(cachef),
          "gc removed the right files");
    CHECK(exists(st_upload_path(up)), "in-flight upload kept");
    st_upload_abort(up);
    snprintf(q, sizeof q, "%s/cache", dir);
    CHECK(exists(q), "cache/ itself kept");
    CHECK(st_blob_stats(st, &count, &bytes, &err) == ST_OK && count == 1 && bytes == 18,
          "1 row left");
    CHECK(st_blob_open(st, b, &fd, &count, &err) == ST_ERR_NOT_FOUND, "b gone");
    err.code = ST_OK;
    CHECK(verify() == 0, "still verifies");

    /* corruption: same size, other bytes */
    write_file(pa, "REFERENCED CONTENT");
    CHECK(verify() == 1, "corrupted blob: one problem");
    write_file(pa, "short");
    CHECK(verify() == 2, "truncated: size and hash");
    unlink(pa);
    CHECK(verify() >= 1, "missing file reported");
    write_file(pa, "referenced content");
    CHECK(verify() == 0, "repaired");
    /* a version whose blob row vanished */
    snprintf(q, sizeof q, "PRAGMA foreign_keys=OFF; DELETE FROM blobs WHERE digest = '%s'", a);
    sql(q);
    CHECK(verify() >= 2, "missing row: version reference + foreign key");
    CHECK(st_gc(st, 0, 0, &files, &bytes, &err) == ST_OK, "gc");

    st_close(st);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done();
}
