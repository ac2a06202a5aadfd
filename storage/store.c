/* storage/store.c — the st_store: opening the data directory (blobs/ tmp/
 * cache/ strata.db), connection setup (WAL, synchronous=FULL, foreign keys,
 * busy timeout), the single writer under a mutex with BEGIN IMMEDIATE, the
 * reader pool, the migrations runner, and removal of stale uploads at start.
 * Does not own: what is in the tables (models.c, versions.c, tags.c, arch.c)
 * or the blob files (blob.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrations.h"
#include "store_int.h"

/* Run on every connection, in order. journal_mode=WAL persists in the file
 * but asking again is cheap and covers a database made by someone else. */
static const char *const st_pragmas[] = {
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
};

static st_code st_mkdir(const char *path, st_error *err)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return st_io_fail(err, errno, "mkdir '%s'", path);
    return ST_OK;
}

/* mkdir -p of the data directory itself (its subdirectories follow). */
static st_code st_mkdir_parents(const char *dir, st_error *err)
{
    char path[ST_PATH_MAX];
    st_code rc = ST_OK;
    if (st_pathf(path, sizeof path, "%s", dir) != 0)
        return st_fail(err, ST_ERR_INVALID, "data directory path too long");
    for (char *p = path + 1; *p && rc == ST_OK; p++) {
        if (*p != '/') continue;
        *p = '\0';
        rc = st_mkdir(path, err);
        *p = '/';
    }
    return rc;
}

/* Before SQLite starts: no global memory statistics (a process-wide mutex
 * around every SQLite malloc; 20 % of a version GET under load). */
static void st_sqlite_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static st_code st_conn_open(const char *path, sqlite3 **out, st_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    sqlite3 *db = NULL;
    st_code rc = ST_OK;
    pthread_once(&once, st_sqlite_config);
    int src = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = st_db_fail(err, db, src, "open strata.db");
        goto out;
    }
    sqlite3_extended_result_codes(db, 0);
    sqlite3_busy_timeout(db, ST_BUSY_TIMEOUT_MS);
    for (size_t i = 0; i < sizeof st_pragmas / sizeof st_pragmas[0]; i++) {
        rc = st_exec(db, err, st_pragmas[i], NULL);
        if (rc) goto out;
    }
    st_cache_attach(db);
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    return rc;
}

/* ---- transactions ------------------------------------------------------- */

void st_wlock(st_store *st)
{
    pthread_mutex_lock(&st->wlock);
}

void st_wunlock(st_store *st)
{
    pthread_mutex_unlock(&st->wlock);
}

st_code st_wbegin(st_store *st, sqlite3 **db, st_error *err)
{
    st_code rc;
    pthread_mutex_lock(&st->wlock);
    rc = st_exec(st->writer, err, "BEGIN IMMEDIATE", NULL);
    if (rc) {
        pthread_mutex_unlock(&st->wlock);
        return rc;
    }
    *db = st->writer;
    return ST_OK;
}

st_code st_wend(st_store *st, st_code rc, st_error *err)
{
    if (rc == ST_OK) rc = st_exec(st->writer, err, "COMMIT", NULL);
    if (rc != ST_OK && !sqlite3_get_autocommit(st->writer))
        sqlite3_exec(st->writer, "ROLLBACK", NULL, NULL, NULL);
    atomic_fetch_add_explicit(&st->generation, 1, memory_order_release);
    pthread_mutex_unlock(&st->wlock);
    return rc;
}

st_code st_rbegin(st_store *st, sqlite3 **db, st_error *err)
{
    int i;
    st_code rc;
    pthread_mutex_lock(&st->rlock);
    for (;;) {
        for (i = 0; i < ST_NREADERS; i++)
            if (!st->rbusy[i]) break;
        if (i < ST_NREADERS) break;
        pthread_cond_wait(&st->rcond, &st->rlock);
    }
    st->rbusy[i] = 1;
    pthread_mutex_unlock(&st->rlock);
    rc = st_exec(st->readers[i], err, "BEGIN", NULL);
    if (rc) {
        st_rend(st, st->readers[i]);
        return rc;
    }
    *db = st->readers[i];
    return ST_OK;
}

void st_rend(st_store *st, sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db)) {
        st_error e = {0};
        st_exec(db, &e, "COMMIT", NULL);
        st_error_release(&e);
    }
    pthread_mutex_lock(&st->rlock);
    for (int i = 0; i < ST_NREADERS; i++)
        if (st->readers[i] == db) st->rbusy[i] = 0;
    pthread_cond_signal(&st->rcond);
    pthread_mutex_unlock(&st->rlock);
}

/* ---- migrations --------------------------------------------------------- */

static st_code st_migrate(st_store *st, st_error *err)
{
    sqlite3 *db = NULL;
    st_code rc;
    char now[32];

    rc = st_exec(st->writer, err,
                 "CREATE TABLE IF NOT EXISTS schema_migrations("
                 "name TEXT PRIMARY KEY, applied_at TEXT)",
                 NULL);
    if (rc) return rc;
    st->total = (int)st_nmigrations;
    for (size_t i = 0; i < st_nmigrations; i++) {
        const struct st_migration *m = &st_migrations[i];
        int64_t one = 0;
        int found = 0;
        char *emsg = NULL;
        int src;

        /* Checked inside the transaction: two processes opening a fresh
         * directory at once must not both apply it. */
        rc = st_wbegin(st, &db, err);
        if (rc) return rc;
        rc = st_query_i64(db, err, &one, &found, "SELECT 1 FROM schema_migrations WHERE name = ?",
                          "t", m->name);
        if (rc == ST_OK && !found) {
            src = sqlite3_exec(db, m->sql, NULL, NULL, &emsg);
            if (src != SQLITE_OK)
                rc = st_fail(err, ST_ERR_DB, "migration '%s': %s", m->name,
                             emsg ? emsg : sqlite3_errstr(src));
            sqlite3_free(emsg);
            st_now_rfc3339(now, sizeof now);
            if (rc == ST_OK)
                rc = st_exec(db, err,
                             "INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)", "tt",
                             m->name, now);
        }
        rc = st_wend(st, rc, err);
        if (rc) return rc;
        if (!found) st->applied_now++;
    }
    return ST_OK;
}

/* ---- tmp/ cleanup ------------------------------------------------------- */

/* Remove files in tmp/ that no upload holds: uploads keep an flock on their
 * temp file, so a second process (strata gc while the server runs) or gc
 * in this process never removes one in flight. Counts what (would be)
 * removed. Used by st_open and st_gc. */
int st_tmp_sweep(st_store *st, int dry_run, uint64_t *files, uint64_t *bytes)
{
    char dir[ST_PATH_MAX], path[ST_PATH_MAX];
    DIR *d;
    struct dirent *e;

    snprintf(dir, sizeof dir, "%s/tmp", st->dir);
    d = opendir(dir);
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        int fd, n;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof path) continue;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
            if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || flock(fd, LOCK_EX | LOCK_NB) != 0) {
                close(fd);
                continue; /* in flight, or not ours to judge */
            }
        } else if (lstat(path, &sb) != 0 || S_ISDIR(sb.st_mode)) {
            continue;
        }
        if (dry_run || unlink(path) == 0) {
            if (files) (*files)++;
            if (bytes) *bytes += (uint64_t)sb.st_size;
        }
        if (fd >= 0) close(fd);
    }
    closedir(d);
    return 0;
}

/* ---- open / close ------------------------------------------------------- */

static const char *const st_subdirs[] = {"", "/blobs", "/blobs/sha256", "/tmp", "/cache"};

st_code st_open(const char *data_dir, st_store **out, st_error *err)
{
    st_store *st = NULL;
    st_code rc = ST_OK;
    char path[ST_PATH_MAX];
    int n;

    if (!data_dir || !*data_dir || !out)
        return st_fail(err, ST_ERR_INVALID, "no data directory given");
    if (strlen(data_dir) > ST_PATH_MAX - 200)
        return st_fail(err, ST_ERR_INVALID, "data directory path too long");
    st = calloc(1, sizeof *st);
    if (!st || !(st->dir = strdup(data_dir))) {
        free(st);
        return st_fail(err, ST_ERR_NOMEM, "out of memory opening '%s'", data_dir);
    }
    pthread_mutex_init(&st->wlock, NULL);
    pthread_mutex_init(&st->rlock, NULL);
    pthread_cond_init(&st->rcond, NULL);

    rc = st_mkdir_parents(data_dir, err);
    if (rc) goto out;
    for (size_t i = 0; i < sizeof st_subdirs / sizeof st_subdirs[0]; i++) {
        snprintf(path, sizeof path, "%s%s", data_dir, st_subdirs[i]);
        rc = st_mkdir(path, err);
        if (rc) goto out;
    }
    n = snprintf(path, sizeof path, "%s/strata.db", data_dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        rc = st_fail(err, ST_ERR_INVALID, "data directory path too long");
        goto out;
    }
    rc = st_conn_open(path, &st->writer, err);
    if (rc) goto out;
    rc = st_migrate(st, err);
    if (rc) goto out;
    for (int i = 0; i < ST_NREADERS; i++) {
        rc = st_conn_open(path, &st->readers[i], err);
        if (rc) goto out;
    }
    st_tmp_sweep(st, 0, NULL, NULL);
    *out = st;
    st = NULL;
out:
    st_close(st);
    return rc;
}

void st_close(st_store *st)
{
    if (!st) return;
    for (int i = 0; i < ST_NREADERS; i++) {
        st_cache_detach(st->readers[i]);
        sqlite3_close(st->readers[i]);
    }
    if (st->writer) sqlite3_exec(st->writer, "PRAGMA optimize", NULL, NULL, NULL);
    st_cache_detach(st->writer);
    sqlite3_close(st->writer);
    pthread_cond_destroy(&st->rcond);
    pthread_mutex_destroy(&st->rlock);
    pthread_mutex_destroy(&st->wlock);
    free(st->dir);
    free(st);
}

uint64_t st_generation(st_store *st)
{
    return st ? atomic_load_explicit(&st->generation, memory_order_acquire) : 0;
}

const char *st_data_dir(const st_store *st)
{
    return st ? st->dir : NULL;
}

void st_migration_counts(const st_store *st, int *applied_now, int *total)
{
    if (applied_now) *applied_now = st ? st->applied_now : 0;
    if (total) *total = st ? st->total : 0;
}
