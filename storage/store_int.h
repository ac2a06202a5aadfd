/* storage/store_int.h — private to storage/: the st_store body, the
 * connection pool and transaction helpers, SQL statement helpers, error
 * helpers and small shared checks. Nothing outside storage/ includes it.
 */
#ifndef STRATA_STORE_INT_H
#define STRATA_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sqlite3.h>
#include "storage.h"

/* Reader connections in the pool: the server has a handful of worker
 * threads; more readers than cores buys nothing on this 2-core box. */
#define ST_NREADERS 8
/* Per-connection busy handler; another process (strata gc/verify while the
 * server runs) is the only expected source of lock waits. */
#define ST_BUSY_TIMEOUT_MS 10000
/* After the busy handler gave up: extra retries before ST_ERR_DB. */
#define ST_BUSY_RETRIES 50
/* Longest path we build under the data directory. */
#define ST_PATH_MAX 4096
/* Default and maximum page size of lists (api.md: default 100, max 1000). */
#define ST_LIST_DEFAULT 100
#define ST_LIST_MAX     1000

struct st_store {
    char *dir;       /* data directory, as given */
    sqlite3 *writer; /* the one writer, under wlock */
    pthread_mutex_t wlock;
    sqlite3 *readers[ST_NREADERS];
    int rbusy[ST_NREADERS]; /* 1 while lent out, under rlock */
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
    int applied_now;
    int total;
    atomic_ullong generation; /* + 1 after each committed write */
};

/* ---- errors (util.c) ---------------------------------------------------- */
/* Fill err when it holds no error yet (first error wins); returns code.
 * st_fail_details steals details (decref'd when not kept). */
st_code st_fail(st_error *err, st_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
st_code st_fail_details(st_error *err, st_code code, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* SQLite failure rc on db, while doing `what`. */
st_code st_db_fail(st_error *err, sqlite3 *db, int rc, const char *what);
/* errno failure: ENOSPC/EDQUOT → NOSPACE, ENOMEM → NOMEM, else IO. */
st_code st_io_fail(st_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- small checks (util.c) ---------------------------------------------- */
int st_hex64_valid(const char *s);          /* 64 lowercase hex chars */
const char *st_strip_sha256(const char *s); /* skips a "sha256:" prefix */
int st_all_digits(const char *s);
/* Parse a positive decimal int64 (all digits, no overflow). */
int st_parse_i64(const char *s, int64_t *out);
/* "<dir>/blobs/sha256/<2>/<hex>" into buf; hex must be valid. 0 on success. */
int st_blob_path(const st_store *st, const char *hex, char *buf, size_t len);
/* snprintf that answers -1 when the result did not fit (paths, keys). */
int st_pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* RFC 3339 UTC of t. */
void st_time_rfc3339(int64_t t, char *buf, size_t len);
/* List limit: 0 → default; outside 1..max → INVALID. */
st_code st_check_limit(int limit, int *out, st_error *err);

/* ---- SQL helpers (util.c) ----------------------------------------------- */
/* Bind format, one char per parameter in order:
 *   t  const char * (NULL binds NULL)     i  int64_t
 *   d  double                             p  const int64_t * (NULL binds NULL)
 *   n  binds NULL, takes no argument                                       */
st_code st_prepare(sqlite3 *db, sqlite3_stmt **out, st_error *err, const char *sql, const char *fmt,
                   ...);
/* Give back a statement from st_prepare (NULL is fine): a cached one is
 * reset and kept, any other finalized. Never sqlite3_finalize one. */
void st_finish(sqlite3_stmt *s);
/* Statement cache for a connection: attach after open, detach before close. */
void st_cache_attach(sqlite3 *db);
void st_cache_detach(sqlite3 *db);
/* sqlite3_step, retrying SQLITE_BUSY a bounded number of times. */
int st_step(sqlite3_stmt *s);
/* Run a statement to completion (no rows expected). */
st_code st_exec(sqlite3 *db, st_error *err, const char *sql, const char *fmt, ...);
/* First column of the first row as int64; *found = 0 when no row (or NULL). */
st_code st_query_i64(sqlite3 *db, st_error *err, int64_t *out, int *found, const char *sql,
                     const char *fmt, ...);
/* Column text as a NEW json string, or json null for SQL NULL. */
json_t *st_col_str(sqlite3_stmt *s, int col);
json_t *st_col_int(sqlite3_stmt *s, int col); /* integer or null */

/* versions.c: the SQL st_version_list runs for q (narrow: the epoch-range
 * form); 0, or -1 when it does not fit in size. Tests and the bench print
 * and EXPLAIN it. */
int st_version_list_sql(const st_version_query *q, int narrow, char *sql, size_t size);

/* ---- connections and transactions (store.c) ----------------------------- */
/* Lock the writer and BEGIN IMMEDIATE. On success the caller MUST call
 * st_wend(), which commits when rc is ST_OK, else rolls back, and unlocks. */
st_code st_wbegin(st_store *st, sqlite3 **db, st_error *err);
st_code st_wend(st_store *st, st_code rc, st_error *err);
/* Lock the writer without a transaction (blob renames); st_wunlock after. */
void st_wlock(st_store *st);
void st_wunlock(st_store *st);
/* Borrow a reader and BEGIN (one snapshot); give it back with st_rend. */
st_code st_rbegin(st_store *st, sqlite3 **db, st_error *err);
void st_rend(st_store *st, sqlite3 *db);
/* Remove temp files in tmp/ that no upload holds (flock); count them.
 * dry_run only counts. */
int st_tmp_sweep(st_store *st, int dry_run, uint64_t *files, uint64_t *bytes);

/* models.c: Keras ModelCheckpoint's mode='auto' — accuracy-like metrics
 * grow, everything else shrinks. The monitor and runs' "best" both use it. */
int st_metric_is_max(const char *metric);

/* ---- shared lookups ----------------------------------------------------- */
/* models.c: model id by name; INVALID for a bad name, NOT_FOUND "model 'x' not found". */
st_code st_model_lookup(sqlite3 *db, const char *name, int64_t *id, st_error *err);
/* models.c: the model object of api.md. */
st_code st_model_json(sqlite3 *db, int64_t model_id, json_t **out, st_error *err);
/* versions.c: the version object; with_layers adds "layers". */
st_code st_version_json(sqlite3 *db, const char *model, int64_t version_id, int with_layers,
                        json_t **out, st_error *err);
/* refs.c: version row id of (model, number); NOT_FOUND names both. */
st_code st_version_by_number(sqlite3 *db, const char *model, int64_t model_id, int64_t number,
                             int64_t *version_id, st_error *err);
/* refs.c: ref → model and version row ids: digits = number, "latest" =
 * highest, else a tag. */
st_code st_resolve(sqlite3 *db, const char *model, const char *ref, int64_t *model_id,
                   int64_t *version_id, st_error *err);
/* tags.c: point tag at version_id (0 = delete the tag) and record the move
 * with reason; nothing is recorded when the tag already points there.
 * Writer transaction only. */
st_code st_tag_move(sqlite3 *db, int64_t model_id, const char *tag, int64_t version_id,
                    const char *reason, st_error *err);

#endif
