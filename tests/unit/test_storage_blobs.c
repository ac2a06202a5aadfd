/* tests/unit/test_storage_blobs.c — storage/: open + migrations (twice),
 * reopen keeps data, uploads (digest, commit, dedupe, abort), blob_open,
 * names, error helpers. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "storage.h"

static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static st_code put(st_store *st, const void *buf, size_t len, char hex[65])
{
    st_upload *up = NULL;
    st_error err = {0};
    uint64_t size = 0;
    st_code rc = st_upload_begin(st, &up, &err);
    if (rc) return rc;
    rc = st_upload_write(up, buf, len, &err);
    if (!rc) rc = st_upload_finish(up, hex, &size, &err);
    if (rc) {
        st_upload_abort(up);
        return rc;
    }
    return st_upload_commit(up, &err);
}

int main(void)
{
    char dir[] = "/tmp/strata-test-blobs-XXXXXX";
    char path[4200], hex[65] = "", hex2[65] = "";
    st_store *st = NULL;
    st_error err = {0};
    st_upload *up = NULL;
    json_t *m = NULL;
    int applied = -1, total = -1, fd = -1;
    uint64_t size = 0, count = 0, bytes = 0;
    char buf[16];

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    /* open: fresh directory, all migrations applied */
    CHECK(st_open(dir, &st, &err) == ST_OK, "open: %s", err.msg);
    st_migration_counts(st, &applied, &total);
    CHECK(total >= 1 && applied == total, "applied %d of %d", applied, total);
    CHECK(strcmp(st_data_dir(st), dir) == 0, "data dir");
    snprintf(path, sizeof path, "%s/blobs/sha256", dir);
    CHECK(access(path, F_OK) == 0, "blobs/sha256 exists");

    /* upload "abc" in two chunks: the known digest */
    CHECK(st_upload_begin(st, &up, &err) == ST_OK, "begin: %s", err.msg);
    CHECK(strncmp(st_upload_path(up), dir, strlen(dir)) == 0, "temp under data dir");
    CHECK(st_upload_write(up, "a", 1, &err) == ST_OK, "write");
    CHECK(st_upload_write(up, "bc", 2, &err) == ST_OK, "write");
    CHECK(st_upload_finish(up, hex, &size, &err) == ST_OK, "finish: %s", err.msg);
    CHECK(strcmp(hex, abc_hex) == 0, "sha256(abc) = %s", hex);
    CHECK(size == 3, "size %llu", (unsigned long long)size);
    CHECK(st_upload_fd(up) >= 0 && pread(st_upload_fd(up), buf, 3, 0) == 3 &&
              memcmp(buf, "abc", 3) == 0,
          "temp readable via fd");
    CHECK(st_upload_write(up, "x", 1, &err) == ST_ERR_INVALID, "write after finish refused");
    err.code = ST_OK;
    CHECK(st_upload_commit(up, &err) == ST_OK, "commit: %s", err.msg);
    snprintf(path, sizeof path, "%s/blobs/sha256/ba/%s", dir, abc_hex);
    CHECK(access(path, F_OK) == 0, "blob file in place");
    snprintf(path, sizeof path, "%s/tmp", dir);
    CHECK(count_dir(path) == 0, "tmp empty after commit");

    /* dedupe: same content again */
    CHECK(put(st, "abc", 3, hex2) == ST_OK, "second upload");
    CHECK(strcmp(hex2, abc_hex) == 0, "same digest");
    CHECK(count_dir(path) == 0, "tmp empty after dedupe");
    CHECK(st_blob_stats(st, &count, &bytes, &err) == ST_OK && count == 1 && bytes == 3,
          "stats %llu %llu", (unsigned long long)count, (unsigned long long)bytes);

    /* blob_open */
    CHECK(st_blob_open(st, abc_hex, &fd, &size, &err) == ST_OK, "blob_open: %s", err.msg);
    CHECK(size == 3 && read(fd, buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0, "content");
    if (fd >= 0) close(fd);
    fd = -1;
    err.code = ST_OK;
    CHECK(st_blob_open(st, "../../etc/passwd", &fd, &size, &err) == ST_ERR_INVALID, "bad digest");
    CHECK(fd == -1, "fd untouched on failure");
    err.code = ST_OK;
    CHECK(st_blob_open(st, "0000000000000000000000000000000000000000000000000000000000000000", &fd,
                       &size, &err) == ST_ERR_NOT_FOUND,
          "missing blob");
    CHECK(strstr(err.msg, "not found") != NULL, "message: %s", err.msg);
    err.code = ST_OK;
    CHECK(st_blob_open(st, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", &fd,
                       &size, &err) == ST_ERR_INVALID,
          "uppercase refused");
    err.code = ST_OK;

    /* abort leaves no temp file */
    CHECK(st_upload_begin(st, &up, &err) == ST_OK, "begin");
    CHECK(st_upload_write(up, "zzz", 3, &err) == ST_OK, "write");
    CHECK(count_dir(path) == 1, "temp exists while in flight");
    st_upload_abort(up);
    up = NULL;
    CHECK(count_dir(path) == 0, "abort removed temp");
    st_upload_abort(NULL);

    /* a model to survive the reopen */
    {
        st_model_new mn = {.name = "keep-me"};
        CHECK(st_model_create(st, &mn, &m, &err) == ST_OK, "model create: %s", err.msg);
        json_decref(m);
        m = NULL;
    }

    /* a stale temp file is removed at open */
    CHECK(st_upload_begin(st, &up, &err) == ST_OK, "begin");
    st_close(st);
    st = NULL;
    {
        char stale[4200];
        snprintf(stale, sizeof stale, "%s/tmp/upload-stale", dir);
        FILE *f = fopen(stale, "w");
        if (f) {
            fputs("junk", f);
            fclose(f);
        }
    }
    /* reopen: nothing to apply, data kept */
    CHECK(st_open(dir, &st, &err) == ST_OK, "reopen: %s", err.msg);
    st_migration_counts(st, &applied, &total);
    CHECK(applied == 0 && total >= 1, "second open applied %d", applied);
    CHECK(count_dir(path) == 1, "stale removed, in-flight (locked) upload kept: %d",
          count_dir(path));
    st_upload_abort(up);
    up = NULL;
    CHECK(count_dir(path) == 0, "tmp empty");
    CHECK(st_model_get(st, "keep-me", &m, &err) == ST_OK, "model kept: %s", err.msg);
    json_decref(m);
    m = NULL;
    CHECK(st_blob_open(st, abc_hex, &fd, &size, &err) == ST_OK, "blob kept");
    if (fd >= 0) close(fd);

    /* names */
    CHECK(st_name_valid("a") && st_name_valid("Model_1.v-2") && st_name_valid("123"),
          "valid names");
    CHECK(!st_name_valid("") && !st_name_valid("-a") && !st_name_valid("a/b") &&
              !st_name_valid("a b") && !st_name_valid(NULL) && !st_name_valid(".."),
          "invalid names");
    {
        char longname[130];
        memset(longname, 'x', 128);
        longname[128] = '\0';
        CHECK(st_name_valid(longname), "128 chars ok");
        longname[128] = 'x';
        longname[129] = '\0';
        CHECK(!st_name_valid(longname), "129 chars refused");
    }
    CHECK(st_tag_name_valid("prod") && st_tag_name_valid("v1") && !st_tag_name_valid("12"), "tags");

    /* errors */
    CHECK(strcmp(st_strerror(ST_OK), "ok") == 0 &&
              strcmp(st_strerror(ST_ERR_CONFLICT), "conflict") == 0,
          "strerror");
    CHECK(st_strerror((st_code)99) != NULL, "strerror unknown");
    st_error_release(NULL);
    {
        st_error e2 = {0};
        st_model_new bad = {.name = "bad name"};
        CHECK(st_model_create(st, &bad, &m, &e2) == ST_ERR_INVALID, "bad model name");
        CHECK(e2.code == ST_ERR_INVALID && strstr(e2.msg, "bad name"), "msg: %s", e2.msg);
        /* first error wins */
        CHECK(st_model_get(st, "nope", &m, &e2) == ST_ERR_NOT_FOUND, "not found");
        CHECK(e2.code == ST_ERR_INVALID, "first error kept");
        st_error_release(&e2);
    }
    {
        st_store *none = NULL;
        st_error e3 = {0};
        CHECK(st_open("/proc/definitely/not/here", &none, &e3) != ST_OK && none == NULL,
              "open on an impossible path fails");
    }

    {
        st_store *nested = NULL;
        st_error e4 = {0};
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/a/b", dir);
        CHECK(st_open(sub, &nested, &e4) == ST_OK, "open creates parents: %s", e4.msg);
        st_close(nested);
    }
    st_close(st);
    st_close(NULL);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done();
}
