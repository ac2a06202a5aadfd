/* tests/unit/test_storage_versions.c — storage/: models, architectures,
 * versions (numbering, never reused, refs, JSON shape), tags (CAS,
 * history, latest), delete conflicts, the monitor's `best` (min and max),
 * list filters, ordering and pagination, run history rows. */
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "storage.h"

static st_store *st;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

/* Store content; hex receives its digest. */
static void blob(const char *content, char hex[65])
{
    st_upload *up = NULL;
    st_error err = {0};
    uint64_t size;
    hex[0] = '\0';
    if (st_upload_begin(st, &up, &err) || st_upload_write(up, content, strlen(content), &err) ||
        st_upload_finish(up, hex, &size, &err) || st_upload_commit(up, &err))
        fprintf(stderr, "blob: %s\n", err.msg);
}

/* Create a version of model with unique content; answers its number or -1. */
static int64_t version(const char *model, const char *metrics, const char *run, int64_t epoch,
                       const char *const *tags, size_t ntags)
{
    static int seq;
    char content[128], hex[65];
    st_error err = {0};
    json_t *v = NULL;
    int64_t n = -1;
    snprintf(content, sizeof content, "weights-%d-%s", ++seq, model);
    blob(content, hex);
    st_version_new vn = {
        .model = model,
        .digest = hex,
        .size = strlen(content),
        .format = "keras2-weights",
        .run = run,
        .has_epoch = epoch >= 0,
        .epoch = epoch,
        .metrics = metrics,
        .layers = "[{\"name\":\"dense\",\"digest\":null,\"params\":3,\"weights\":"
                  "[{\"name\":\"kernel\",\"shape\":[2,1],\"dtype\":\"float32\"}]}]",
        .tags = tags,
        .ntags = ntags,
    };
    if (st_version_create(st, &vn, &v, &err) == ST_OK)
        n = json_integer_value(json_object_get(v, "version"));
    else fprintf(stderr, "version create on '%s': %s\n", model, err.msg);
    json_decref(v);
    st_error_release(&err);
    return n;
}

static void model(const char *name, const char *metric, const char *mode)
{
    st_error err = {0};
    json_t *m = NULL;
    st_model_new mn = {.name = name, .monitor_metric = metric, .monitor_mode = mode};
    CHECK(st_model_create(st, &mn, &m, &err) == ST_OK, "create model %s: %s", name, err.msg);
    json_decref(m);
}

static int64_t tag_of(const char *m, const char *tag)
{
    st_error err = {0};
    json_t *v = NULL;
    int64_t n = -1;
    if (st_version_get(st, m, tag, &v, &err) == ST_OK)
        n = json_integer_value(json_object_get(v, "version"));
    json_decref(v);
    return n;
}

static void test_versions_and_refs(void)
{
    st_error err = {0};
    json_t *v = NULL, *m = NULL;
    const char *tags[] = {"prod", "candidate"};
    char hex[65];

    model("m", NULL, NULL);
    CHECK(version("m", "{\"loss\":0.5}", "r1", 1, NULL, 0) == 1, "v1");
    CHECK(version("m", NULL, NULL, -1, tags, 2) == 2, "v2");
    CHECK(version("m", NULL, NULL, -1, NULL, 0) == 3, "v3");

    /* the version object */
    CHECK(st_version_get(st, "m", "1", &v, &err) == ST_OK, "get 1: %s", err.msg);
    CHECK(strcmp(json_string_value(json_object_get(v, "model")), "m") == 0, "model field");
    CHECK(strncmp(json_string_value(json_object_get(v, "digest")), "sha256:", 7) == 0 &&
              strlen(json_string_value(json_object_get(v, "digest"))) == 71,
          "digest prefixed");
    CHECK(json_integer_value(json_object_get(v, "epoch")) == 1, "epoch");
    CHECK(strcmp(json_string_value(json_object_get(v, "run")), "r1") == 0, "run");
    CHECK(json_real_value(json_object_get(json_object_get(v, "metrics"), "loss")) == 0.5,
          "metrics");
    CHECK(json_is_null(json_object_get(v, "notes")) && json_is_null(json_object_get(v, "parent")) &&
              json_is_null(json_object_get(v, "validation")),
          "nulls");
    CHECK(strcmp(json_string_value(json_object_get(v, "format")), "keras2-weights") == 0, "format");
    {
        const char *ca = json_string_value(json_object_get(v, "created_at"));
        CHECK(ca && strlen(ca) == 20 && ca[10] == 'T' && ca[19] == 'Z', "created_at %s",
              ca ? ca : "");
    }
    CHECK(json_array_size(json_object_get(v, "tags")) == 0, "v1 untagged");
    {
        json_t *l = json_array_get(json_object_get(v, "layers"), 0);
        CHECK(l && strcmp(json_string_value(json_object_get(l, "name")), "dense") == 0 &&
                  json_is_null(json_object_get(l, "digest")) &&
                  json_integer_value(json_object_get(l, "params")) == 3 &&
                  json_array_size(json_object_get(l, "weights")) == 1,
              "layers");
    }
    json_decref(v);
    v = NULL;

    /* refs */
    CHECK(tag_of("m", "latest") == 3, "latest = 3");
    CHECK(tag_of("m", "prod") == 2 && tag_of("m", "candidate") == 2, "upload tags");
    CHECK(st_version_get(st, "m", "3", &v, &err) == ST_OK, "get 3");
    {
        json_t *t = json_object_get(v, "tags");
        CHECK(json_array_size(t) == 1 &&
                  strcmp(json_string_value(json_array_get(t, 0)), "latest") == 0,
              "v3 tags [latest]");
    }
    json_decref(v);
    v = NULL;
    CHECK(st_version_get(st, "m", "2", &v, &err) == ST_OK, "get 2");
    {
        json_t *t = json_object_get(v, "tags");
        CHECK(json_array_size(t) == 2 &&
                  strcmp(json_string_value(json_array_get(t, 0)), "candidate") == 0,
              "v2 tags sorted");
    }
    json_decref(v);
    v = NULL;
    CHECK(st_version_get(st, "m", "7", &v, &err) == ST_ERR_NOT_FOUND, "no v7");
    CHECK(strcmp(err.msg, "model 'm' has no version 7") == 0, "msg: %s", err.msg);
    err.code = ST_OK;
    CHECK(st_version_get(st, "m", "nope", &v, &err) == ST_ERR_NOT_FOUND, "no tag");
    CHECK(strcmp(err.msg, "model 'm' has no tag 'nope'") == 0, "msg: %s", err.msg);
    err.code = ST_OK;
    CHECK(st_version_get(st, "x", "1", &v, &err) == ST_ERR_NOT_FOUND, "no model");
    CHECK(strcmp(err.msg, "model 'x' not found") == 0, "msg: %s", err.msg);
    err.code = ST_OK;
    CHECK(st_version_get(st, "m", "a/b", &v, &err) == ST_ERR_INVALID, "bad ref");
    err.code = ST_OK;
    CHECK(v == NULL, "out untouched on failure");

    /* numbers never reused */
    CHECK(st_version_delete(st, "m", 3, 0, &err) == ST_OK, "delete v3 (only latest): %s", err.msg);
    CHECK(tag_of("m", "latest") == 2, "latest falls back to 2");
    CHECK(version("m", NULL, NULL, -1, NULL, 0) == 4, "next is 4, not 3");
    CHECK(st_version_delete(st, "m", 3, 0, &err) == ST_ERR_NOT_FOUND, "v3 gone");
    err.code = ST_OK;

    /* bad inputs */
    blob("some bytes", hex);
    {
        st_version_new bad = {.model = "m", .digest = hex, .size = 10, .format = "pytorch"};
        CHECK(st_version_create(st, &bad, &v, &err) == ST_ERR_INVALID, "bad format");
        err.code = ST_OK;
        bad.format = "keras3-weights";
        bad.size = 11;
        CHECK(st_version_create(st, &bad, &v, &err) == ST_ERR_INVALID, "size mismatch");
        err.code = ST_OK;
        bad.size = 10;
        bad.metrics = "{\"loss\":\"high\"}";
        CHECK(st_version_create(st, &bad, &v, &err) == ST_ERR_INVALID, "metric not a number");
        err.code = ST_OK;
        bad.metrics = NULL;
        bad.digest = "1111111111111111111111111111111111111111111111111111111111111111";
        CHECK(st_version_create(st, &bad, &v, &err) == ST_ERR_NOT_FOUND, "blob unknown");
        err.code = ST_OK;
        const char *lt[] = {"latest"};
        bad.digest = hex;
        bad.tags = lt;
        bad.ntags = 1;
        CHECK(st_version_create(st, &bad, &v, &err) == ST_ERR_INVALID, "tag latest refused");
        err.code = ST_OK;
        bad.ntags = 0;
        bad.parent = "m@";
        CHECK(st_version_create(st, &bad, &v, &err) == ST_ERR_INVALID, "bad parent");
        err.code = ST_OK;
        bad.parent = "m@1";
        bad.notes = "ok";
        bad.validation = "{\"status\":\"passed\"}";
        CHECK(st_version_create(st, &bad, &v, &err) == ST_OK, "good: %s", err.msg);
        CHECK(json_integer_value(json_object_get(v, "version")) == 5,
              "failed creates used no number");
        CHECK(strcmp(json_string_value(json_object_get(v, "parent")), "m@1") == 0, "parent");
        CHECK(strcmp(json_string_value(json_object_get(json_object_get(v, "validation"), "status")),
                     "passed") == 0,
              "validation");
        json_decref(v);
        v = NULL;
    }

    /* model object */
    CHECK(st_model_get(st, "m", &m, &err) == ST_OK, "model get");
    CHECK(json_integer_value(json_object_get(m, "versions")) == 4, "4 live versions");
    CHECK(json_integer_value(json_object_get(m, "latest_version")) == 5, "latest_version 5");
    CHECK(json_integer_value(json_object_get(json_object_get(m, "tags"), "latest")) == 5 &&
              json_integer_value(json_object_get(json_object_get(m, "tags"), "prod")) == 2,
          "model tags");
    CHECK(json_is_null(json_object_get(m, "monitor")), "no monitor");
    json_decref(m);
}

static void test_tags(void)
{
    st_error err = {0};
    json_t *t = NULL, *d;

    model("t", NULL, NULL);
    version("t", NULL, NULL, -1, NULL, 0);
    version("t", NULL, NULL, -1, NULL, 0);
    version("t", NULL, NULL, -1, NULL, 0);

    CHECK(st_tag_put(st, "t", "prod", 1, 1, 0, &t, &err) == ST_OK, "create if absent: %s", err.msg);
    CHECK(json_integer_value(json_object_get(t, "version")) == 1 &&
              strcmp(json_string_value(json_object_get(t, "tag")), "prod") == 0 &&
              json_is_string(json_object_get(t, "updated_at")),
          "tag answer");
    json_decref(t);
    t = NULL;
    CHECK(st_tag_put(st, "t", "prod", 2, 1, 0, &t, &err) == ST_ERR_CONFLICT, "exists: conflict");
    d = json_object_get(err.details, "current_version");
    CHECK(json_integer_value(d) == 1, "details current_version 1");
    st_error_release(&err);
    err.code = ST_OK;
    CHECK(st_tag_put(st, "t", "prod", 2, 1, 3, &t, &err) == ST_ERR_CONFLICT, "mismatch: conflict");
    CHECK(json_integer_value(json_object_get(err.details, "current_version")) == 1, "details");
    st_error_release(&err);
    err.code = ST_OK;
    CHECK(st_tag_put(st, "t", "prod", 2, 1, 1, &t, &err) == ST_OK, "CAS ok: %s", err.msg);
    json_decref(t);
    t = NULL;
    CHECK(st_tag_put(st, "t", "stage", 2, 1, 5, &t, &err) == ST_ERR_CONFLICT,
          "absent with expected");
    CHECK(json_is_null(json_object_get(err.details, "current_version")), "details null");
    st_error_release(&err);
    err.code = ST_OK;
    CHECK(st_tag_put(st, "t", "prod", 3, 0, 0, &t, &err) == ST_OK, "unconditional");
    json_decref(t);
    t = NULL;
    CHECK(st_tag_put(st, "t", "latest", 1, 0, 0, &t, &err) == ST_ERR_INVALID, "latest reserved");
    err.code = ST_OK;
    CHECK(st_tag_put(st, "t", "42", 1, 0, 0, &t, &err) == ST_ERR_INVALID, "digits refused");
    err.code = ST_OK;
    CHECK(st_tag_put(st, "t", "prod", 9, 0, 0, &t, &err) == ST_ERR_NOT_FOUND, "no version 9");
    err.code = ST_OK;
    CHECK(tag_of("t", "prod") == 3, "prod at 3");

    /* list */
    CHECK(st_tag_list(st, "t", &t, &err) == ST_OK, "list");
    {
        json_t *items = json_object_get(t, "items");
        CHECK(json_array_size(items) == 2, "latest + prod");
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(items, 0), "tag")),
                     "latest") == 0 &&
                  json_integer_value(json_object_get(json_array_get(items, 0), "version")) == 3,
              "latest 3");
    }
    json_decref(t);
    t = NULL;

    /* history */
    CHECK(st_tag_delete(st, "t", "prod", &err) == ST_OK, "delete tag");
    CHECK(st_tag_delete(st, "t", "prod", &err) == ST_ERR_NOT_FOUND, "delete again");
    err.code = ST_OK;
    CHECK(st_tag_delete(st, "t", "latest", &err) == ST_ERR_INVALID, "delete latest");
    err.code = ST_OK;
    CHECK(st_tag_history(st, "t", "prod", &t, &err) == ST_OK, "history: %s", err.msg);
    {
        json_t *items = json_object_get(t, "items");
        static const struct {
            int64_t from, to;
            const char *reason;
        } want[] = {
            {0, 1, "put"},
            {1, 2, "put"},
            {2, 3, "put"},
            {3, 0, "delete"},
        };
        CHECK(json_array_size(items) == 4, "4 moves, got %zu", json_array_size(items));
        for (size_t i = 0; i < 4 && i < json_array_size(items); i++) {
            json_t *it = json_array_get(items, i);
            json_t *f = json_object_get(it, "from_version"),
                   *to = json_object_get(it, "to_version");
            CHECK((want[i].from ? json_integer_value(f) == want[i].from : json_is_null(f)) &&
                      (want[i].to ? json_integer_value(to) == want[i].to : json_is_null(to)) &&
                      strcmp(json_string_value(json_object_get(it, "reason")), want[i].reason) ==
                          0 &&
                      json_is_string(json_object_get(it, "moved_at")),
                  "move %zu", i);
        }
        CHECK(strcmp(json_string_value(json_object_get(t, "tag")), "prod") == 0, "tag field");
    }
    json_decref(t);
    t = NULL;
    CHECK(st_tag_history(st, "t", "never", &t, &err) == ST_ERR_NOT_FOUND, "never existed");
    err.code = ST_OK;

    /* version delete conflicts */
    CHECK(st_tag_put(st, "t", "stable", 1, 0, 0, &t, &err) == ST_OK, "stable -> 1");
    json_decref(t);
    t = NULL;
    CHECK(st_version_delete(st, "t", 1, 0, &err) == ST_ERR_CONFLICT, "tagged: conflict");
    CHECK(strstr(err.msg, "stable") != NULL, "msg names tag: %s", err.msg);
    st_error_release(&err);
    err.code = ST_OK;
    CHECK(st_version_delete(st, "t", 1, 1, &err) == ST_OK, "force: %s", err.msg);
    CHECK(tag_of("t", "stable") == -1, "tag gone with version");
    CHECK(st_tag_history(st, "t", "stable", &t, &err) == ST_OK, "stable history");
    {
        json_t *items = json_object_get(t, "items");
        json_t *last = json_array_get(items, json_array_size(items) - 1);
        CHECK(json_array_size(items) == 2 && json_is_null(json_object_get(last, "to_version")) &&
                  strcmp(json_string_value(json_object_get(last, "reason")), "delete") == 0,
              "delete move");
    }
    json_decref(t);
    t = NULL;

    /* model delete */
    CHECK(st_model_delete(st, "t", 0, &err) == ST_ERR_CONFLICT, "model has versions");
    st_error_release(&err);
    err.code = ST_OK;
    CHECK(st_tag_put(st, "t", "keep", 2, 0, 0, &t, &err) == ST_OK, "tag before model delete");
    json_decref(t);
    t = NULL;
    CHECK(st_model_delete(st, "t", 1, &err) == ST_OK, "force delete: %s", err.msg);
    CHECK(st_model_get(st, "t", &t, &err) == ST_ERR_NOT_FOUND, "model gone");
    err.code = ST_OK;
    model("t", NULL, NULL);
    CHECK(version("t", NULL, NULL, -1, NULL, 0) == 1, "a new model 't' starts at 1");
    CHECK(st_model_delete(st, "nope", 1, &err) == ST_ERR_NOT_FOUND, "delete unknown model");
    err.code = ST_OK;
    {
        st_model_new dup = {.name = "t"};
        CHECK(st_model_create(st, &dup, &t, &err) == ST_ERR_CONFLICT, "duplicate model");
        err.code = ST_OK;
    }
}

static void test_monitor(void)
{
    st_error err = {0};
    json_t *h = NULL, *m = NULL;

    model("mon-min", "val_loss", "min");
    CHECK(st_model_get(st, "mon-min", &m, &err) == ST_OK, "get");
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(m, "monitor"), "mode")),
                 "min") == 0,
          "monitor in model object");
    json_decref(m);
    version("mon-min", "{\"val_loss\":0.5}", NULL, -1, NULL, 0);
    CHECK(tag_of("mon-min", "best") == 1, "first is best");
    version("mon-min", "{\"val_loss\":0.3}", NULL, -1, NULL, 0);
    CHECK(tag_of("mon-min", "best") == 2, "lower is best");
    version("mon-min", "{\"val_loss\":0.4}", NULL, -1, NULL, 0);
    version("mon-min", "{\"loss\":0.1}", NULL, -1, NULL, 0);
    version("mon-min", "{\"val_loss\":0.3}", NULL, -1, NULL, 0);
    CHECK(tag_of("mon-min", "best") == 2, "not moved by worse, missing or equal");
    CHECK(st_tag_history(st, "mon-min", "best", &h, &err) == ST_OK, "history");
    CHECK(json_array_size(json_object_get(h, "items")) == 2 &&
              strcmp(json_string_value(
                         json_object_get(json_array_get(json_object_get(h, "items"), 1), "reason")),
                     "monitor") == 0,
          "monitor moves");
    json_decref(h);

    model("mon-max", "val_accuracy", "max");
    version("mon-max", "{\"val_accuracy\":0.5}", NULL, -1, NULL, 0);
    version("mon-max", "{\"val_accuracy\":0.7}", NULL, -1, NULL, 0);
    version("mon-max", "{\"val_accuracy\":0.6}", NULL, -1, NULL, 0);
    CHECK(tag_of("mon-max", "best") == 2, "max: 0.7 best");
    version("mon-max", "{\"val_accuracy\":0.9}", NULL, -1, NULL, 0);
    CHECK(tag_of("mon-max", "best") == 4, "max: 0.9 best");

    /* mode defaults like Keras 'auto' */
    model("mon-auto", "accuracy", NULL);
    version("mon-auto", "{\"accuracy\":0.5}", NULL, -1, NULL, 0);
    version("mon-auto", "{\"accuracy\":0.6}", NULL, -1, NULL, 0);
    CHECK(tag_of("mon-auto", "best") == 2, "auto mode: accuracy grows");
}

static int64_t item_version(json_t *list, size_t i)
{
    return json_integer_value(
        json_object_get(json_array_get(json_object_get(list, "items"), i), "version"));
}

static void test_list(void)
{
    st_error err = {0};
    json_t *l = NULL;
    const char *best[] = {"chosen"};

    model("lst", NULL, NULL);
    version("lst", "{\"loss\":0.9,\"acc\":0.1}", "r1", 1, NULL, 0); /* 1 */
    version("lst", "{\"loss\":0.5}", "r1", 2, best, 1);             /* 2 */
    version("lst", "{\"loss\":0.7}", "r1", 3, NULL, 0);             /* 3 */
    version("lst", "{\"loss\":0.2}", "r2", 1, NULL, 0);             /* 4 */
    version("lst", NULL, "r2", 2, NULL, 0);                         /* 5 */

    st_version_query q = {.descending = 1};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "list: %s", err.msg);
    CHECK(json_array_size(json_object_get(l, "items")) == 5 && item_version(l, 0) == 5 &&
              item_version(l, 4) == 1,
          "default: newest first");
    CHECK(json_is_null(json_object_get(l, "next")), "no next");
    CHECK(json_object_get(json_array_get(json_object_get(l, "items"), 0), "layers") == NULL,
          "no layers");
    json_decref(l);

    q = (st_version_query){.run = "r1", .descending = 0};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "run filter");
    CHECK(json_array_size(json_object_get(l, "items")) == 3 && item_version(l, 0) == 1,
          "r1: 1,2,3");
    json_decref(l);

    q = (st_version_query){
        .has_min_epoch = 2, .min_epoch = 2, .has_max_epoch = 1, .max_epoch = 2, .descending = 0};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "epoch filter");
    CHECK(json_array_size(json_object_get(l, "items")) == 2 && item_version(l, 0) == 2 &&
              item_version(l, 1) == 5,
          "epoch 2: versions 2, 5");
    json_decref(l);

    q = (st_version_query){.tag = "chosen", .descending = 1};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "tag filter");
    CHECK(json_array_size(json_object_get(l, "items")) == 1 && item_version(l, 0) == 2, "tag: 2");
    json_decref(l);
    q.tag = "latest";
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "latest filter");
    CHECK(json_array_size(json_object_get(l, "items")) == 1 && item_version(l, 0) == 5,
          "latest: 5");
    json_decref(l);

    q = (st_version_query){.order_by = "metrics.loss", .descending = 0};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "order by metric: %s", err.msg);
    {
        static const int64_t want[] = {4, 2, 3, 1};
        CHECK(json_array_size(json_object_get(l, "items")) == 4, "version without loss excluded");
        for (size_t i = 0; i < 4; i++)
            CHECK(item_version(l, i) == want[i], "asc loss [%zu] = %lld", i,
                  (long long)item_version(l, i));
    }
    json_decref(l);
    q.descending = 1;
    q.limit = 3;
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "desc page 1");
    CHECK(json_array_size(json_object_get(l, "items")) == 3 && item_version(l, 0) == 1 &&
              json_is_string(json_object_get(l, "next")),
          "page 1 with next");
    {
        char cursor[32];
        snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(l, "next")));
        json_decref(l);
        q.after = cursor;
        CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "desc page 2");
        CHECK(json_array_size(json_object_get(l, "items")) == 1 && item_version(l, 0) == 4 &&
                  json_is_null(json_object_get(l, "next")),
              "page 2 last");
        json_decref(l);
    }
    q = (st_version_query){.order_by = "epoch", .descending = 1, .limit = 2};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_OK, "order by epoch");
    CHECK(item_version(l, 0) == 3, "highest epoch first");
    json_decref(l);
    q = (st_version_query){.order_by = "size; DROP TABLE models"};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_ERR_INVALID, "bad order_by");
    err.code = ST_OK;
    q = (st_version_query){.after = "x"};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_ERR_INVALID, "bad cursor");
    err.code = ST_OK;
    q = (st_version_query){.limit = 5000};
    CHECK(st_version_list(st, "lst", &q, &l, &err) == ST_ERR_INVALID, "limit too big");
    err.code = ST_OK;
}

static void test_history_rows(const char *dir)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char path[4200];
    int n = -1;

    /* re-upload epoch 2 of r1 with new metrics: history replaces */
    version("lst", "{\"loss\":0.45}", "r1", 2, NULL, 0);
    snprintf(path, sizeof path, "%s/strata.db", dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT count(*), sum(h.epoch = 2 AND h.value = 0.45) FROM history h "
                           "JOIN runs r ON r.id = h.run_id JOIN models m ON m.id = r.model_id "
                           "WHERE m.name = 'lst' AND r.name = 'r1' AND h.metric = 'loss'",
                           -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        n = sqlite3_column_int(s, 0);
        CHECK(sqlite3_column_int(s, 1) == 1, "epoch 2 replaced");
    }
    CHECK(n == 3, "r1 loss history has 3 epochs, got %d", n);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_models_arch(void)
{
    st_error err = {0};
    json_t *l = NULL, *a = NULL;
    char id[80], *cfg = NULL;
    int created = -1;

    snprintf(id, sizeof id, "sha256:%064d", 7);
    CHECK(st_arch_put(st, id, "arch1", "{\"class_name\":\"Sequential\"}",
                      "{\"framework\":\"keras\",\"params\":10,\"layers\":[]}", &created,
                      &err) == ST_OK &&
              created == 1,
          "arch put: %s", err.msg);
    CHECK(st_arch_put(st, id, "other", "{\"class_name\":\"Sequential\"}", "{\"params\":10}",
                      &created, &err) == ST_OK &&
              created == 0,
          "arch put again");
    CHECK(st_arch_get(st, id, &a, &err) == ST_OK, "arch get");
    CHECK(strcmp(json_string_value(json_object_get(a, "name")), "arch1") == 0 &&
              json_integer_value(json_object_get(a, "params")) == 10 &&
              json_is_object(json_object_get(a, "config")) &&
              strcmp(json_string_value(json_object_get(a, "id")), id) == 0,
          "arch object");
    json_decref(a);
    CHECK(st_arch_config(st, id, &cfg, &err) == ST_OK && strstr(cfg, "Sequential"), "config text");
    free(cfg);
    CHECK(st_arch_list(st, 0, NULL, &l, &err) == ST_OK &&
              json_array_size(json_object_get(l, "items")) == 1,
          "arch list");
    json_decref(l);
    CHECK(st_arch_get(st, "sha256:1234", &a, &err) == ST_ERR_INVALID, "bad arch id");
    err.code = ST_OK;
    {
        st_model_new mn = {.name = "with-arch", .architecture = id, .description = "d"};
        CHECK(st_model_create(st, &mn, &a, &err) == ST_OK, "model with arch");
        CHECK(strcmp(json_string_value(json_object_get(a, "architecture")), id) == 0,
              "architecture");
        json_decref(a);
        mn.name = "bad-arch";
        mn.architecture = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
        CHECK(st_model_create(st, &mn, &a, &err) == ST_ERR_NOT_FOUND, "unknown arch");
        err.code = ST_OK;
    }
    /* model list pagination by name */
    {
        int total = 0, pages = 0;
        char after[200] = "";
        for (;;) {
            CHECK(st_model_list(st, 2, after[0] ? after : NULL, &l, &err) == ST_OK, "model list");
            total += (int)json_array_size(json_object_get(l, "items"));
            pages++;
            json_t *next = json_object_get(l, "next");
            if (!json_is_string(next) || pages > 20) {
                json_decref(l);
                break;
            }
            snprintf(after, sizeof after, "%s", json_string_value(next));
            json_decref(l);
        }
        CHECK(total == 7, "7 models listed, got %d", total);
    }
}

int main(void)
{
    char dir[] = "/tmp/strata-test-versions-XXXXXX";
    st_error err = {0};

    if (!mkdtemp(dir)) return 1;
    if (st_open(dir, &st, &err) != ST_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    test_versions_and_refs();
    test_tags();
    test_monitor();
    test_list();
    test_history_rows(dir);
    test_models_arch();
    st_close(st);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_done();
}
