/* tests/unit/test_storage_concurrent.c — storage/: several threads upload
 * and create versions of one model at once (numbers are exactly 1..N, no
 * SQLITE_BUSY escapes) while readers resolve "latest" and move tags. */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "storage.h"

#define NTHREADS   4
#define PER_THREAD 15
#define TOTAL      (NTHREADS * PER_THREAD)

static st_store *st;
static int seen[TOTAL + 1];
static int failures;
static volatile int writers_done;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static void fail(const char *what, const st_error *err)
{
    pthread_mutex_lock(&lock);
    failures++;
    fprintf(stderr, "%s: %s (%s)\n", what, err->msg, st_strerror(err->code));
    pthread_mutex_unlock(&lock);
}

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        st_error err = {0};
        st_upload *up = NULL;
        json_t *v = NULL;
        char content[256], hex[65], metrics[64];
        uint64_t size = 0;
        /* half the uploads share content: dedupe under contention too */
        snprintf(content, sizeof content, "thread %d checkpoint %d %s", i % 2 ? id : 0, i,
                 "padding padding padding padding padding padding padding padding");
        if (st_upload_begin(st, &up, &err) || st_upload_write(up, content, strlen(content), &err) ||
            st_upload_finish(up, hex, &size, &err)) {
            fail("upload", &err);
            st_upload_abort(up);
            continue;
        }
        if (st_upload_commit(up, &err)) {
            fail("commit", &err);
            continue;
        }
        snprintf(metrics, sizeof metrics, "{\"val_loss\":%d.%d}", id, i);
        st_version_new vn = {.model = "c",
                             .digest = hex,
                             .size = size,
                             .format = "keras2-weights",
                             .metrics = metrics,
                             .run = "r",
                             .has_epoch = 1,
                             .epoch = id * 100 + i};
        if (st_version_create(st, &vn, &v, &err)) {
            fail("version", &err);
            continue;
        }
        int64_t n = json_integer_value(json_object_get(v, "version"));
        pthread_mutex_lock(&lock);
        if (n >= 1 && n <= TOTAL) seen[n]++;
        else failures++;
        pthread_mutex_unlock(&lock);
        json_decref(v);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    while (!writers_done) {
        st_error err = {0};
        json_t *v = NULL;
        st_code rc = st_version_get(st, "c", "latest", &v, &err);
        if (rc == ST_OK) {
            int64_t n = json_integer_value(json_object_get(v, "version"));
            json_decref(v);
            v = NULL;
            rc = st_tag_put(st, "c", "prod", n, 0, 0, &v, &err);
            json_decref(v);
        }
        if (rc != ST_OK && rc != ST_ERR_NOT_FOUND) fail("reader", &err);
        st_error_release(&err);
    }
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/strata-test-conc-XXXXXX";
    st_error err = {0};
    pthread_t w[NTHREADS], r[2];
    json_t *m = NULL;
    uint64_t problems = 1;

    if (!mkdtemp(dir) || st_open(dir, &st, &err) != ST_OK) return 1;
    st_model_new mn = {.name = "c", .monitor_metric = "val_loss", .monitor_mode = "min"};
    CHECK(st_model_create(st, &mn, &m, &err) == ST_OK, "model");
    json_decref(m);

    for (int i = 0; i < 2; i++) pthread_create(&r[i], NULL, reader, NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&w[i], NULL, writer, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < NTHREADS; i++) pthread_join(w[i], NULL);
    writers_done = 1;
    for (int i = 0; i < 2; i++) pthread_join(r[i], NULL);

    CHECK(failures == 0, "%d failures", failures);
    for (int n = 1; n <= TOTAL; n++) CHECK(seen[n] == 1, "version %d seen %d times", n, seen[n]);
    CHECK(st_model_get(st, "c", &m, &err) == ST_OK, "model get");
    CHECK(json_integer_value(json_object_get(m, "versions")) == TOTAL &&
              json_integer_value(json_object_get(m, "latest_version")) == TOTAL,
          "count and latest");
    json_decref(m);
    m = NULL;
    /* best = lowest val_loss = thread 1, checkpoint 0 ("1.0") */
    CHECK(st_version_get(st, "c", "best", &m, &err) == ST_OK &&
              json_real_value(json_object_get(json_object_get(m, "metrics"), "val_loss")) == 1.0,
          "best");
    json_decref(m);
    CHECK(st_verify(st, NULL, NULL, &problems, &err) == ST_OK && problems == 0, "verify clean");

    st_close(st);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done();
}
