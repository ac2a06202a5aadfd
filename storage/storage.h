/* storage/storage.h — the one public header of strata's storage library.
 *
 * Owns: the data directory (strata.db SQLite metadata in WAL mode, the
 * content-addressed blob store blobs/sha256/xx/<hex>, tmp/ for uploads in
 * flight, cache/ for derived files), migrations, verify and gc.
 * Does not own: HTTP, Keras, JSON validation of Keras content. Layers,
 * metrics and validation reports arrive as JSON text and are stored as given.
 *
 * Conventions
 * - Every fallible call returns st_code (0 = ST_OK) and fills *err on failure
 *   (first error wins). Out-parameters are set only on success.
 * - json_t results are NEW references owned by the caller (json_decref).
 *   Their field names are the API contract's (shared/design/api.md), so the
 *   server can answer them as they are. Why these shapes live here and not
 *   in server/: each object is its rows (model, version, tag, run, page
 *   cursor) read in one read transaction; building it from the statement
 *   directly keeps it one snapshot, and a struct per object would copy every
 *   field twice for the one caller that renders it. Storage knows the shapes,
 *   never the statuses: errors are st_code, and server/ alone maps them to
 *   HTTP (http.c's table).
 * - Digests: a blob's name is its SHA-256. Storage keeps the bare hex in
 *   its rows and paths (st_upload_finish gives that hex); everywhere else a
 *   digest is the API's text "sha256:<64 hex>": in version and layer
 *   objects out, and accepted as is by st_blob_open, st_version_new.digest
 *   and layer digests in (the bare hex too). So no caller slices a prefix
 *   off: storage alone adds and strips it (st_strip_sha256).
 * - Names (model, tag, run) are checked by the caller with st_name_valid();
 *   storage checks them again and answers ST_ERR_INVALID.
 * - Thread safety: one st_store is shared by all server threads. Writes go
 *   through one writer connection under a mutex with BEGIN IMMEDIATE; reads
 *   use a small pool of reader connections. No SQLITE_BUSY ever escapes.
 * - Never prints, exits or aborts on bad input.
 */
#ifndef STRATA_STORAGE_H
#define STRATA_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef enum st_code {
    ST_OK = 0,
    ST_ERR_NOT_FOUND = 1, /* model, version, tag, blob, architecture absent */
    ST_ERR_CONFLICT = 2,  /* exists already; CAS failed; still referenced */
    ST_ERR_INVALID = 3,   /* bad argument (name, ref, value) */
    ST_ERR_IO = 4,        /* filesystem error */
    ST_ERR_NOSPACE = 5,   /* ENOSPC / EDQUOT */
    ST_ERR_DB = 6,        /* SQLite error */
    ST_ERR_CORRUPT = 7,   /* on-disk state disagrees with itself */
    ST_ERR_NOMEM = 8
} st_code;

/* Caller-owned. details is NULL or a NEW json object (e.g. for a CAS
 * conflict {"current_version": 2}); release with st_error_release(). */
typedef struct st_error {
    st_code code;
    char msg[512];
    json_t *details;
} st_error;

const char *st_strerror(st_code code);
void st_error_release(st_error *err); /* frees details; err may be NULL */

/* [A-Za-z0-9][A-Za-z0-9._-]{0,127} */
int st_name_valid(const char *name);
/* A valid name that is not all digits (a tag can never look like a number). */
int st_tag_name_valid(const char *name);

typedef struct st_store st_store;

/* Open (creating when absent) the data directory: makes blobs/ tmp/ cache/,
 * opens strata.db (WAL, synchronous=FULL, foreign_keys=ON, busy_timeout),
 * applies pending migrations (each in a transaction, recorded in
 * schema_migrations), and removes stale files in tmp/. */
st_code st_open(const char *data_dir, st_store **out, st_error *err);
void st_close(st_store *st);                 /* NULL ok */
const char *st_data_dir(const st_store *st); /* borrowed */
/* Grows after every write transaction of this process (committed or not):
 * an answer built from a read that began after st_generation returned g is
 * current for as long as st_generation still returns g. */
uint64_t st_generation(st_store *st);
/* How many migrations st_open applied just now, and how many exist. */
void st_migration_counts(const st_store *st, int *applied_now, int *total);

/* ---- blobs -------------------------------------------------------------- */

/* An upload in flight: a temp file under tmp/ fed chunk by chunk while
 * SHA-256 runs. Nothing is visible until st_upload_commit(). */
typedef struct st_upload st_upload;

st_code st_upload_begin(st_store *st, st_upload **out, st_error *err);
st_code st_upload_write(st_upload *up, const void *buf, size_t len, st_error *err);
/* Fix the digest (64 lowercase hex chars + NUL) and size, and start the temp
 * file's fsync on a thread (st_upload_commit waits for it, st_upload_abort
 * joins it): validation runs meanwhile. After this only _path/_fd, _commit
 * and _abort are valid. */
st_code st_upload_finish(st_upload *up, char digest_hex[65], uint64_t *size, st_error *err);
const char *st_upload_path(const st_upload *up); /* borrowed: the temp file */
int st_upload_fd(const st_upload *up);           /* borrowed: read-only use (pread) */
/* Wait for the fsync, move the temp file into blobs/sha256/xx/<hex> (rename, fsync dir) and
 * record the blob row; an identical blob already stored is reused and the
 * temp file removed. Frees up. */
st_code st_upload_commit(st_upload *up, st_error *err);
/* Remove the temp file and free up. NULL ok. */
void st_upload_abort(st_upload *up);

/* Open a stored blob read-only (O_NOFOLLOW, path built only from the hex
 * digest). digest is the API's "sha256:<64 hex>" (as a version object's
 * "digest" says it) or the bare hex. *fd is NEW (caller closes). */
st_code st_blob_open(st_store *st, const char *digest, int *fd, uint64_t *size, st_error *err);

/* ---- architectures ------------------------------------------------------ */

/* Store an architecture. id is "sha256:<hex>"; config and summary are JSON
 * text. *created = 1 when new, 0 when it existed (then name is left as is). */
st_code st_arch_put(st_store *st, const char *id, const char *name, const char *config,
                    const char *summary, int *created, st_error *err);
/* {"id","name","created_at", ...summary fields..., "config": {...}} */
st_code st_arch_get(st_store *st, const char *id, json_t **out, st_error *err);
/* The stored canonical config text only (NEW string, free()). */
st_code st_arch_config(st_store *st, const char *id, char **config, st_error *err);
/* {"items":[{"id","name","created_at","params"}...], "next": cursor|null} */
st_code st_arch_list(st_store *st, int limit, const char *after, json_t **out, st_error *err);

/* ---- models ------------------------------------------------------------- */

typedef struct st_model_new {
    const char *name;
    const char *architecture;   /* "sha256:…" of a stored architecture, or NULL */
    const char *description;    /* or NULL */
    const char *monitor_metric; /* or NULL */
    const char *monitor_mode;   /* "min" | "max" | NULL */
} st_model_new;

/* CONFLICT when the name exists; NOT_FOUND when the architecture is unknown.
 * *out as st_model_get. */
st_code st_model_create(st_store *st, const st_model_new *m, json_t **out, st_error *err);
/* {"name","architecture"|null,"description"|null,"monitor":{"metric","mode"}|null,
 *  "created_at","versions": <live count>,"latest_version": n|null,
 *  "tags": {"latest": n, "prod": 3, ...}} */
st_code st_model_get(st_store *st, const char *name, json_t **out, st_error *err);
/* {"items":[model objects as above], "next": cursor|null}; cursor is the last name. */
st_code st_model_list(st_store *st, int limit, const char *after, json_t **out, st_error *err);
/* CONFLICT while versions exist unless force (then versions, tags, history go too;
 * blobs stay until gc). */
st_code st_model_delete(st_store *st, const char *name, int force, st_error *err);

/* ---- versions ----------------------------------------------------------- */

typedef struct st_version_new {
    const char *model;
    const char *digest; /* "sha256:<hex>" or hex; the blob is committed already */
    uint64_t size;
    const char *format; /* "keras2-weights" | "keras2-model" | "keras3-weights" */
    const char *run;    /* or NULL */
    int has_epoch;
    int64_t epoch;
    const char *metrics;     /* JSON object text of numbers, or NULL */
    const char *notes;       /* or NULL */
    const char *parent;      /* "model@N" or NULL */
    const char *layers;      /* JSON array text [{"name","digest","params","weights":[…]}] */
    const char *validation;  /* JSON object text, or NULL */
    const char *const *tags; /* tags to point at the new version (not "latest") */
    size_t ntags;
} st_version_new;

/* One transaction: next number for the model, the version row, its layers
 * and metrics, its tags (each move recorded), the run's history when run,
 * epoch and metrics are given, and the monitor's `best` tag when the model
 * monitors a metric this version improves on. *out as st_version_get. */
st_code st_version_create(st_store *st, const st_version_new *v, json_t **out, st_error *err);

/* ref: a version number ("3"), a tag, or "latest" (highest live number).
 * {"model","version","digest":"sha256:…","size","format","created_at","run",
 *  "epoch","metrics","notes","parent","tags":[…],"layers":[…],"validation":{…}} */
st_code st_version_get(st_store *st, const char *model, const char *ref, json_t **out,
                       st_error *err);

typedef struct st_version_query {
    const char *run; /* or NULL */
    const char *tag; /* or NULL */
    int has_min_epoch, has_max_epoch;
    int64_t min_epoch, max_epoch;
    const char
        *order_by;     /* NULL (= by number), "version", "epoch", "created_at", "metrics.<name>" */
    int descending;    /* default for NULL order_by: descending by number */
    int limit;         /* 1..1000 */
    const char *after; /* cursor from a previous answer, or NULL */
} st_version_query;
/* {"items":[version objects without "layers"], "next": cursor|null} */
st_code st_version_list(st_store *st, const char *model, const st_version_query *q, json_t **out,
                        st_error *err);
/* CONFLICT while a tag points at it unless force (tags then removed, moves recorded). */
st_code st_version_delete(st_store *st, const char *model, int64_t number, int force,
                          st_error *err);

/* ---- tags --------------------------------------------------------------- */

/* Create or move. has_expected = 0: unconditional. has_expected = 1 with
 * expected = 0: only if the tag does not exist. expected > 0: only if it
 * points at that version number. CAS failure: CONFLICT with details
 * {"current_version": n|null}. *out = {"tag","version","updated_at"}. */
st_code st_tag_put(st_store *st, const char *model, const char *tag, int64_t version,
                   int has_expected, int64_t expected, json_t **out, st_error *err);
/* {"items":[{"tag","version","updated_at"}…]} ("latest" included, computed) */
st_code st_tag_list(st_store *st, const char *model, json_t **out, st_error *err);
st_code st_tag_delete(st_store *st, const char *model, const char *tag, st_error *err);
/* {"tag","items":[{"from_version","to_version","reason","moved_at"}…]} oldest first */
st_code st_tag_history(st_store *st, const char *model, const char *tag, json_t **out,
                       st_error *err);

/* ---- maintenance -------------------------------------------------------- */

/* Re-hash every blob and check every reference (versions → blobs, files
 * present, sizes). Each problem is reported through cb (may be NULL);
 * *problems counts them. Returns ST_OK even when problems were found. */
typedef void (*st_problem_cb)(void *ctx, const char *problem);
st_code st_verify(st_store *st, st_problem_cb cb, void *ctx, uint64_t *problems, st_error *err);

/* Remove blobs no version references that are older than grace_seconds
 * (files and rows), stale temp files, and cache/. dry_run reports only. */
st_code st_gc(st_store *st, int dry_run, int64_t grace_seconds, uint64_t *files, uint64_t *bytes,
              st_error *err);

/* Blob store totals (for /metrics). */
st_code st_blob_stats(st_store *st, uint64_t *count, uint64_t *bytes, st_error *err);

/* ---- tokens (storage/tokens.c) ------------------------------------------------ */
/* Only the hex SHA-256 of a token is ever stored or looked up. */
st_code st_token_add(st_store *st, const char *hash_hex, const char *scope, const char *name,
                     int64_t *id, st_error *err);
/* scope of a live (not revoked) token: "read" | "write" | "admin"; NOT_FOUND otherwise. */
st_code st_token_lookup(st_store *st, const char *hash_hex, char scope[8], st_error *err);
/* {"items":[{"id","name","scope","created_at","revoked_at"}]} */
st_code st_token_list(st_store *st, json_t **out, st_error *err);
st_code st_token_revoke(st_store *st, int64_t id, st_error *err);
st_code st_token_count(st_store *st, int64_t *live, st_error *err);

/* RFC 3339 UTC "2026-11-30T10:00:00Z" of now; buf >= 32 bytes. */
void st_now_rfc3339(char *buf, size_t len);

/* ---- history (storage/history.c) ---- */
/* A run's training history: one value per (run, epoch, metric). Runs are
 * created by the first history post or checkpoint upload naming them.
 * Values are finite doubles; NAN in a batch or an answer means "no value
 * for this metric at this epoch" (it is never stored). */

/* Limits of one st_history_put, each with its reason:
 * - epochs: a 4 MiB body of "0,1\n" rows carries ~1M epochs; no real run
 *   has more, and the batch is held in memory.
 * - metrics: a multi-output Keras model logs loss + metrics per output and
 *   their val_ twins; 256 is far beyond what fit() produces.
 * - values (epochs x metrics): 4 Mi doubles = 32 MiB of batch; the default
 *   4 MiB body cannot carry more than ~2M numbers, so this only bites when
 *   --max-json is raised. */
#define ST_HISTORY_MAX_EPOCHS  1000000
#define ST_HISTORY_MAX_METRICS 256
#define ST_HISTORY_MAX_VALUES  (4 * 1024 * 1024)
/* Values one st_history_get may answer: ~40 MB of JSON text; a whole run of
 * 100 000 epochs x 10 metrics fits twice. Narrow bigger queries. */
#define ST_HISTORY_MAX_ANSWER 2000000
/* Metric names: 1..128 bytes of printable ASCII without space, ',' or '"'
 * (they travel unquoted in CSV headers and in ?metrics=a,b), and not
 * "epoch" (CSVLogger's first column). */
#define ST_METRIC_NAME_MAX 128
int st_metric_name_valid(const char *name);

/* Epochs of one run, dense: values[i * nmetrics + j] is metrics[j] at
 * epochs[i], NAN when absent. Every value is finite or NAN; every epoch
 * has at least one value. An epoch given twice: the later row wins (a
 * CSVLogger file appended to after a resume). All borrowed. */
typedef struct st_history_batch {
    const char *run;
    size_t nmetrics;
    const char *const *metrics;
    size_t nepochs;
    const int64_t *epochs;
    const double *values;
} st_history_batch;

/* One write transaction: the run row (created when new), then each epoch
 * of the batch REPLACES what that epoch had (all its metrics: resumed
 * training). *added / *updated count distinct epochs that had no row /
 * some row before. All or nothing: INVALID (details {"epoch": e} or
 * {"metric": name}) stores nothing; NOT_FOUND for an unknown model. */
st_code st_history_put(st_store *st, const char *model, const st_history_batch *b, int64_t *added,
                       int64_t *updated, st_error *err);

typedef struct st_history_query {
    const char *run;            /* NULL: every run of the model */
    const char *const *metrics; /* NULL/0: every metric of each run */
    size_t nmetrics;
    int has_from, has_to;
    int64_t from_epoch, to_epoch; /* inclusive */
} st_history_query;

typedef struct st_checkpoint {
    int64_t epoch; /* -1 when the version has no epoch */
    int64_t version;
} st_checkpoint;

/* One run of an answer. metrics are sorted by name (byte order, as
 * CSVLogger sorts its keys), or the query's list, deduplicated and sorted.
 * epochs ascending: those where at least one of the metrics has a value.
 * columns[j][i] is metrics[j] at epochs[i], NAN when absent. checkpoints:
 * the run's live versions in the epoch range, by epoch then number. */
typedef struct st_history_run {
    char *run;
    char *created_at;
    size_t nepochs, nmetrics, ncheckpoints;
    int64_t *epochs;
    char **metrics;
    double **columns;
    st_checkpoint *checkpoints;
} st_history_run;

typedef struct st_history {
    size_t nruns;
    st_history_run *runs; /* by run name */
} st_history;

/* *out is NEW (st_history_free). NOT_FOUND for an unknown model or run;
 * INVALID for bad names, from > to, or an answer over ST_HISTORY_MAX_ANSWER. */
st_code st_history_get(st_store *st, const char *model, const st_history_query *q, st_history **out,
                       st_error *err);
void st_history_free(st_history *h); /* NULL ok */

/* {"items":[{"run","created_at","epochs": count,"first_epoch"|null,
 *  "last_epoch"|null,"best":{"<metric>":{"value","epoch","mode"}},
 *  "checkpoints":[{"epoch"|null,"version"}]}…], "next": cursor|null}
 * by run name; cursor is the last name. best: the lowest value for
 * loss-like metrics, the highest for those containing "acc" (Keras
 * mode='auto', as the model monitor); the earliest epoch on ties. */
st_code st_run_list(st_store *st, const char *model, int limit, const char *after, json_t **out,
                    st_error *err);

#endif
