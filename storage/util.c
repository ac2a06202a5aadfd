/* storage/util.c — small shared pieces of storage/: error codes and the
 * st_error filling rules (first error wins), name checks, times, digests
 * and blob paths, and the SQL statement helpers (bind by format, step with
 * busy retry). Owns no state; knows nothing of tables.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"

/* ---- errors ------------------------------------------------------------- */

static const char *const st_code_names[] = {
    [ST_OK] = "ok",
    [ST_ERR_NOT_FOUND] = "not found",
    [ST_ERR_CONFLICT] = "conflict",
    [ST_ERR_INVALID] = "invalid argument",
    [ST_ERR_IO] = "i/o error",
    [ST_ERR_NOSPACE] = "no space left",
    [ST_ERR_DB] = "database error",
    [ST_ERR_CORRUPT] = "data corrupt",
    [ST_ERR_NOMEM] = "out of memory",
};

const char *st_strerror(st_code code)
{
    if ((unsigned)code >= sizeof st_code_names / sizeof st_code_names[0] || !st_code_names[code])
        return "unknown error";
    return st_code_names[code];
}

void st_error_release(st_error *err)
{
    if (!err) return;
    json_decref(err->details);
    err->details = NULL;
}

static st_code st_failv(st_error *err, st_code code, json_t *details, const char *fmt, va_list ap)
{
    if (!err || err->code != ST_OK) {
        json_decref(details);
        return code;
    }
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    err->details = details;
    return code;
}

st_code st_fail(st_error *err, st_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_failv(err, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

st_code st_fail_details(st_error *err, st_code code, json_t *details, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_failv(err, code, details, fmt, ap);
    va_end(ap);
    return code;
}

/* SQLite primary result codes that mean something more precise than DB. */
static const struct {
    int rc;
    st_code code;
} st_db_codes[] = {
    {SQLITE_FULL, ST_ERR_NOSPACE},    {SQLITE_NOMEM, ST_ERR_NOMEM},
    {SQLITE_CORRUPT, ST_ERR_CORRUPT}, {SQLITE_NOTADB, ST_ERR_CORRUPT},
    {SQLITE_IOERR, ST_ERR_IO},        {SQLITE_CONSTRAINT, ST_ERR_CONFLICT},
};

st_code st_db_fail(st_error *err, sqlite3 *db, int rc, const char *what)
{
    st_code code = ST_ERR_DB;
    for (size_t i = 0; i < sizeof st_db_codes / sizeof st_db_codes[0]; i++)
        if ((rc & 0xff) == st_db_codes[i].rc) code = st_db_codes[i].code;
    return st_fail(err, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

st_code st_io_fail(st_error *err, int errnum, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    st_code code = ST_ERR_IO;
    if (errnum == ENOSPC || errnum == EDQUOT) code = ST_ERR_NOSPACE;
    else if (errnum == ENOMEM) code = ST_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return st_fail(err, code, "%s: %s", what, strerror(errnum));
}

/* ---- names, digests, times ---------------------------------------------- */

static int st_name_char(char c, int first)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return 1;
    return !first && (c == '.' || c == '_' || c == '-');
}

int st_name_valid(const char *name)
{
    size_t i;
    if (!name || !name[0]) return 0;
    for (i = 0; name[i]; i++)
        if (i >= 128 || !st_name_char(name[i], i == 0)) return 0;
    return 1;
}

int st_all_digits(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

int st_tag_name_valid(const char *name)
{
    return st_name_valid(name) && !st_all_digits(name);
}

int st_parse_i64(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (!st_all_digits(s)) return 0;
    for (; *s; s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

int st_hex64_valid(const char *s)
{
    size_t i;
    if (!s) return 0;
    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[64] == '\0';
}

const char *st_strip_sha256(const char *s)
{
    if (s && strncmp(s, "sha256:", 7) == 0) return s + 7;
    return s;
}

int st_pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int st_blob_path(const st_store *st, const char *hex, char *buf, size_t len)
{
    int n;
    if (!st_hex64_valid(hex)) return -1;
    n = snprintf(buf, len, "%s/blobs/sha256/%.2s/%s", st->dir, hex, hex);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

void st_time_rfc3339(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        if (len) buf[0] = '\0';
    }
}

void st_now_rfc3339(char *buf, size_t len)
{
    st_time_rfc3339((int64_t)time(NULL), buf, len);
}

st_code st_check_limit(int limit, int *out, st_error *err)
{
    if (limit == 0) limit = ST_LIST_DEFAULT;
    if (limit < 1 || limit > ST_LIST_MAX)
        return st_fail(err, ST_ERR_INVALID, "limit %d: expected 1..%d", limit, ST_LIST_MAX);
    *out = limit;
    return ST_OK;
}

/* ---- SQL helpers -------------------------------------------------------- */

static int st_bindv(sqlite3_stmt *s, const char *fmt, va_list ap)
{
    int rc = SQLITE_OK;
    for (int i = 1; fmt && fmt[i - 1] && rc == SQLITE_OK; i++) {
        switch (fmt[i - 1]) {
        case 't': {
            const char *v = va_arg(ap, const char *);
            rc = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
            break;
        }
        case 'i': rc = sqlite3_bind_int64(s, i, va_arg(ap, int64_t)); break;
        case 'd': rc = sqlite3_bind_double(s, i, va_arg(ap, double)); break;
        case 'p': {
            const int64_t *v = va_arg(ap, const int64_t *);
            rc = v ? sqlite3_bind_int64(s, i, *v) : sqlite3_bind_null(s, i);
            break;
        }
        default: rc = sqlite3_bind_null(s, i); break;
        }
    }
    return rc;
}

/* ---- prepared-statement cache ---------------------------------------------
 * Parsing SQL was 40 % of a version GET (perf). Connections that st_cache_attach
 * registered keep up to ST_STMT_CACHE statements each, found by their SQL
 * text; st_finish resets a cached one instead of finalizing it. A connection
 * is used by one thread at a time (the writer lock, the reader pool), so an
 * entry needs no lock; when all entries are taken, an idle one is replaced
 * (dynamic SQL cannot crowd out the rest); the table of connections changes only at open/close
 * (under cache_lock) and is read lock-free. */

#define ST_STMT_CACHE 64
#define ST_CACHED_DBS 64

typedef struct st_cached {
    sqlite3_stmt *s;
    uint64_t hash;
    int busy;
} st_cached;

typedef struct st_cache {
    _Atomic(sqlite3 *) db;
    int n;
    unsigned next; /* where the next replacement looks first */
    st_cached e[ST_STMT_CACHE];
} st_cache;

static st_cache caches[ST_CACHED_DBS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static st_cache *cache_of(sqlite3 *db)
{
    for (int i = 0; i < ST_CACHED_DBS; i++)
        if (atomic_load_explicit(&caches[i].db, memory_order_acquire) == db) return &caches[i];
    return NULL;
}

void st_cache_attach(sqlite3 *db)
{
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < ST_CACHED_DBS; i++) {
        if (atomic_load_explicit(&caches[i].db, memory_order_relaxed) == NULL) {
            caches[i].n = 0;
            atomic_store_explicit(&caches[i].db, db, memory_order_release);
            break;
        }
    }
    pthread_mutex_unlock(&cache_lock); /* table full: this connection prepares each time */
}

void st_cache_detach(sqlite3 *db)
{
    pthread_mutex_lock(&cache_lock);
    st_cache *c = db ? cache_of(db) : NULL;
    if (c) {
        for (int i = 0; i < c->n; i++) sqlite3_finalize(c->e[i].s);
        c->n = 0;
        atomic_store_explicit(&c->db, NULL, memory_order_release);
    }
    pthread_mutex_unlock(&cache_lock);
}

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

void st_finish(sqlite3_stmt *s)
{
    if (!s) return;
    st_cache *c = cache_of(sqlite3_db_handle(s));
    for (int i = 0; c && i < c->n; i++) {
        if (c->e[i].s == s) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            c->e[i].busy = 0;
            return;
        }
    }
    sqlite3_finalize(s);
}

static int prepare_cached(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    st_cache *c = cache_of(db);
    uint64_t h = c ? sql_hash(sql) : 0;
    for (int i = 0; c && i < c->n; i++) {
        st_cached *e = &c->e[i];
        if (!e->busy && e->hash == h && strcmp(sqlite3_sql(e->s), sql) == 0) {
            e->busy = 1;
            *out = e->s;
            return SQLITE_OK;
        }
    }
    int rc = sqlite3_prepare_v3(db, sql, -1, c ? SQLITE_PREPARE_PERSISTENT : 0, out, NULL);
    if (rc != SQLITE_OK || !*out || !c) return rc;
    if (c->n < ST_STMT_CACHE) {
        c->e[c->n++] = (st_cached){*out, h, 1};
        return rc;
    }
    for (int k = 0; k < ST_STMT_CACHE; k++) { /* full: replace an idle one, in turn */
        st_cached *e = &c->e[c->next++ % ST_STMT_CACHE];
        if (!e->busy) {
            sqlite3_finalize(e->s);
            *e = (st_cached){*out, h, 1};
            break;
        }
    }
    return rc;
}

static st_code st_preparev(sqlite3 *db, sqlite3_stmt **out, st_error *err, const char *sql,
                           const char *fmt, va_list ap)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare_cached(db, sql, &s);
    for (int tries = 0; rc == SQLITE_BUSY && tries < ST_BUSY_RETRIES; tries++) {
        usleep(10000);
        rc = prepare_cached(db, sql, &s);
    }
    if (rc != SQLITE_OK) return st_db_fail(err, db, rc, "prepare");
    rc = st_bindv(s, fmt, ap);
    if (rc != SQLITE_OK) {
        st_code code = st_db_fail(err, db, rc, "bind");
        st_finish(s);
        return code;
    }
    *out = s;
    return ST_OK;
}

st_code st_prepare(sqlite3 *db, sqlite3_stmt **out, st_error *err, const char *sql, const char *fmt,
                   ...)
{
    va_list ap;
    st_code rc;
    va_start(ap, fmt);
    rc = st_preparev(db, out, err, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int st_step(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    /* The busy handler already waited ST_BUSY_TIMEOUT_MS; a BUSY here is
     * another process holding a lock unusually long. Retrying is safe: our
     * writes run inside BEGIN IMMEDIATE (no BUSY after it), so only BEGIN,
     * COMMIT and a read transaction's first step can get here. */
    for (int tries = 0; (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && tries < ST_BUSY_RETRIES;
         tries++) {
        sqlite3_reset(s);
        usleep(20000);
        rc = sqlite3_step(s);
    }
    return rc;
}

st_code st_exec(sqlite3 *db, st_error *err, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *s = NULL;
    va_list ap;
    st_code rc;
    int src;
    va_start(ap, fmt);
    rc = st_preparev(db, &s, err, sql, fmt, ap);
    va_end(ap);
    if (rc) return rc;
    while ((src = st_step(s)) == SQLITE_ROW)
        ;
    if (src != SQLITE_DONE) rc = st_db_fail(err, db, src, "write");
    st_finish(s);
    return rc;
}

st_code st_query_i64(sqlite3 *db, st_error *err, int64_t *out, int *found, const char *sql,
                     const char *fmt, ...)
{
    sqlite3_stmt *s = NULL;
    va_list ap;
    st_code rc;
    int src;
    va_start(ap, fmt);
    rc = st_preparev(db, &s, err, sql, fmt, ap);
    va_end(ap);
    if (rc) return rc;
    *found = 0;
    src = st_step(s);
    if (src == SQLITE_ROW) {
        if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
            *found = 1;
            *out = sqlite3_column_int64(s, 0);
        }
    } else if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "query");
    }
    st_finish(s);
    return rc;
}

json_t *st_col_str(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return json_null();
    return json_string((const char *)sqlite3_column_text(s, col));
}

json_t *st_col_int(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return json_null();
    return json_integer(sqlite3_column_int64(s, col));
}
