/* storage/blob.c — the content-addressed blob store under blobs/sha256/xx/
 * and its table `blobs`: uploads (temp file in tmp/ hashed while written,
 * fsync, rename into place, dedupe), opening a blob, verify (re-hash every
 * file, check every reference), gc (unreferenced blobs past a grace period,
 * stale temp files, cache/), and totals. A big upload is hashed by a thread
 * of its own that reads the temp file back behind the writer and starts its
 * writeback as it goes; the final fsync runs on another thread from finish
 * to commit (overlapping the caller's validation), and commit waits for it.
 * Blob paths are only ever built from a validated 64-hex digest.
 * Does not own: which versions use a blob (versions.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store_int.h"

/* Read size when re-hashing: big enough for libcrypto's SHA-NI speed, small
 * enough to keep verify's memory flat. */
#define ST_HASH_BUF (1u << 20)

/* An upload hashes its bytes inline until it is this big, then on a thread
 * of its own that reads the temp file back (page cache) behind the writer:
 * SHA-256 (~1.5 GB/s) then no longer adds to the time the body's receiving
 * thread spends per byte. Small uploads never pay for a thread. */
#define ST_HASH_AHEAD_MIN (4u << 20)
#define ST_HASH_CHUNK     (256u << 10) /* pread size of the hashing thread: stays in L2 */
#define ST_FLUSH_STEP     (8u << 20)   /* writeback started per this many hashed bytes */

struct st_upload {
    st_store *st;
    int fd;
    int finished;
    int syncing;    /* sync_thread runs: join before fd is closed */
    int sync_errno; /* its fsync's errno, 0 = durable; valid once joined */
    pthread_t sync_thread;
    EVP_MD_CTX *md; /* the writer's until hash_thread starts, then hash_thread's */
    uint64_t size;  /* bytes written; under mu once hash_thread runs */
    /* hashing behind the writer */
    int hashing; /* hash_thread runs: join before fd is closed */
    pthread_t hash_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* size grew, or hash_stop set */
    int hash_waiting;  /* hash_thread sleeps on cv (under mu) */
    int hash_stop;     /* 1: no more bytes (finish); 2: give up (abort) (under mu) */
    int hash_errno;    /* hash_thread's read error; valid once joined */
    int hash_bad;      /* hash_thread's digest update failed; valid once joined */
    uint64_t hashed;   /* bytes fed to md (inline, then by hash_thread) */
    uint64_t flushed;  /* bytes whose writeback hash_thread has started */
    char hex[65];
    char path[ST_PATH_MAX];
};

static void st_hex(const unsigned char *bin, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * n] = '\0';
}

static int st_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;
    if (fd < 0) return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* ---- uploads ------------------------------------------------------------ */

st_code st_upload_begin(st_store *st, st_upload **out, st_error *err)
{
    st_upload *up = NULL;
    st_code rc = ST_OK;

    if (!st || !out) return st_fail(err, ST_ERR_INVALID, "upload: no store");
    up = calloc(1, sizeof *up);
    if (!up) return st_fail(err, ST_ERR_NOMEM, "upload: out of memory");
    up->st = st;
    up->fd = -1;
    pthread_mutex_init(&up->mu, NULL);
    pthread_cond_init(&up->cv, NULL);
    st_pathf(up->path, sizeof up->path, "%s/tmp/upload-XXXXXX", st->dir);
    up->fd = mkostemp(up->path, O_CLOEXEC);
    if (up->fd < 0) {
        rc = st_io_fail(err, errno, "create temp file in '%s/tmp'", st->dir);
        up->path[0] = '\0';
        goto out;
    }
    /* Held until commit/abort: tells gc and other processes it is in flight. */
    if (flock(up->fd, LOCK_EX | LOCK_NB) != 0) {
        rc = st_io_fail(err, errno, "lock temp file '%s'", up->path);
        goto out;
    }
    up->md = EVP_MD_CTX_new();
    if (!up->md || EVP_DigestInit_ex(up->md, EVP_sha256(), NULL) != 1) {
        rc = st_fail(err, ST_ERR_NOMEM, "upload: cannot start sha256");
        goto out;
    }
    *out = up;
    up = NULL;
out:
    st_upload_abort(up);
    return rc;
}

/* hash_thread: feed md from the temp file until the writer is done. Reads
 * only bytes write() has returned for, so the page cache holds them. */
static void *st_upload_hash_run(void *arg)
{
    st_upload *up = arg;
    unsigned char *buf = malloc(ST_HASH_CHUNK);
    uint64_t avail = 0;

    if (!buf) up->hash_bad = 1;
    pthread_mutex_lock(&up->mu);
    for (;;) {
        while (up->hashed == up->size && !up->hash_stop) {
            up->hash_waiting = 1;
            pthread_cond_wait(&up->cv, &up->mu);
            up->hash_waiting = 0;
        }
        avail = up->size - up->hashed;
        if (up->hash_stop == 2 || avail == 0 || up->hash_bad || up->hash_errno) break;
        pthread_mutex_unlock(&up->mu);
        while (avail && !up->hash_errno && !up->hash_bad) {
            size_t n = avail < ST_HASH_CHUNK ? (size_t)avail : ST_HASH_CHUNK;
            ssize_t r = pread(up->fd, buf, n, (off_t)up->hashed);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                up->hash_errno = r < 0 ? errno : EIO; /* 0: the file shrank under us */
                break;
            }
            if (EVP_DigestUpdate(up->md, buf, (size_t)r) != 1) up->hash_bad = 1;
            up->hashed += (uint64_t)r;
            avail -= (uint64_t)r;
            /* Start the writeback of what is hashed, a few MiB at a time:
             * commit's fsync then waits for the tail only. */
            if (up->hashed - up->flushed >= ST_FLUSH_STEP) {
                sync_file_range(up->fd, (off_t)up->flushed, (off_t)(up->hashed - up->flushed),
                                SYNC_FILE_RANGE_WRITE);
                up->flushed = up->hashed;
            }
        }
        avail = 0;
        pthread_mutex_lock(&up->mu);
    }
    pthread_mutex_unlock(&up->mu);
    free(buf);
    return NULL;
}

/* Stop hash_thread (how: 1 = after the last byte, 2 = now) and wait for it. */
static void st_upload_hash_join(st_upload *up, int how)
{
    if (!up->hashing) return;
    pthread_mutex_lock(&up->mu);
    up->hash_stop = how;
    pthread_cond_signal(&up->cv);
    pthread_mutex_unlock(&up->mu);
    pthread_join(up->hash_thread, NULL);
    up->hashing = 0;
}

st_code st_upload_write(st_upload *up, const void *buf, size_t len, st_error *err)
{
    const unsigned char *p = buf;
    size_t left = len;

    if (!up || up->finished || (!buf && len))
        return st_fail(err, ST_ERR_INVALID, "upload: write after finish");
    while (left) {
        ssize_t n = write(up->fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            return st_io_fail(err, errno, "write '%s'", up->path);
        }
        p += n;
        left -= (size_t)n;
    }
    if (up->hashing) {
        pthread_mutex_lock(&up->mu);
        up->size += len;
        if (up->hash_waiting) pthread_cond_signal(&up->cv);
        pthread_mutex_unlock(&up->mu);
        return ST_OK;
    }
    if (len && EVP_DigestUpdate(up->md, buf, len) != 1)
        return st_fail(err, ST_ERR_NOMEM, "upload: sha256 update failed");
    up->size += len;
    up->hashed += len;
    /* Big enough: hash from here on behind the writer (inline when no
     * thread can be had). */
    if (up->size >= ST_HASH_AHEAD_MIN &&
        pthread_create(&up->hash_thread, NULL, st_upload_hash_run, up) == 0)
        up->hashing = 1;
    return ST_OK;
}

/* The temp file's fsync runs on its own thread from finish to commit: the
 * caller validates the upload (sandbox, layer digests) meanwhile, and commit
 * waits for it before anything becomes visible. */
static void *st_upload_sync_run(void *arg)
{
    st_upload *up = arg;
    up->sync_errno = fsync(up->fd) == 0 ? 0 : errno;
    return NULL;
}

/* Wait for the background fsync; ST_OK once the temp file is durable. */
static st_code st_upload_sync_wait(st_upload *up, st_error *err)
{
    if (up->syncing) {
        pthread_join(up->sync_thread, NULL);
        up->syncing = 0;
    }
    if (up->sync_errno) return st_io_fail(err, up->sync_errno, "fsync '%s'", up->path);
    return ST_OK;
}

st_code st_upload_finish(st_upload *up, char digest_hex[65], uint64_t *size, st_error *err)
{
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!up) return st_fail(err, ST_ERR_INVALID, "upload: none");
    if (!up->finished) {
        st_upload_hash_join(up, 1);
        if (up->hash_errno)
            return st_io_fail(err, up->hash_errno, "read back '%s' for sha256", up->path);
        if (up->hash_bad || up->hashed != up->size)
            return st_fail(err, ST_ERR_NOMEM, "upload: sha256 update failed");
        if (EVP_DigestFinal_ex(up->md, bin, &n) != 1 || n != 32)
            return st_fail(err, ST_ERR_NOMEM, "upload: sha256 final failed");
        st_hex(bin, 32, up->hex);
        up->finished = 1;
        /* Started here, waited for by commit; without a thread, now. */
        if (pthread_create(&up->sync_thread, NULL, st_upload_sync_run, up) == 0) up->syncing = 1;
        else st_upload_sync_run(up);
    }
    if (digest_hex) memcpy(digest_hex, up->hex, 65);
    if (size) *size = up->size;
    return ST_OK;
}

const char *st_upload_path(const st_upload *up)
{
    return up ? up->path : NULL;
}

int st_upload_fd(const st_upload *up)
{
    return up ? up->fd : -1;
}

void st_upload_abort(st_upload *up)
{
    if (!up) return;
    st_upload_hash_join(up, 2);
    if (up->syncing) pthread_join(up->sync_thread, NULL);
    if (up->path[0]) unlink(up->path);
    if (up->fd >= 0) close(up->fd);
    EVP_MD_CTX_free(up->md);
    pthread_mutex_destroy(&up->mu);
    pthread_cond_destroy(&up->cv);
    free(up);
}

st_code st_upload_commit(st_upload *up, st_error *err)
{
    st_store *st;
    sqlite3 *db = NULL;
    st_code rc;
    char target[ST_PATH_MAX], fan[ST_PATH_MAX], top[ST_PATH_MAX], now[32];
    struct stat sb;
    int made_fan = 0;

    if (!up) return st_fail(err, ST_ERR_INVALID, "upload: none");
    st = up->st;
    rc = st_upload_finish(up, NULL, NULL, err);
    if (rc == ST_OK) rc = st_upload_sync_wait(up, err);
    if (rc) goto out;
    st_blob_path(st, up->hex, target, sizeof target);
    st_pathf(top, sizeof top, "%s/blobs/sha256", st->dir);
    st_pathf(fan, sizeof fan, "%s/%.2s", top, up->hex);

    /* Under the writer so that gc cannot unlink the target between our
     * dedupe check and the row. */
    rc = st_wbegin(st, &db, err);
    if (rc) goto out;
    if (mkdir(fan, 0755) == 0) made_fan = 1;
    else if (errno != EEXIST) rc = st_io_fail(err, errno, "mkdir '%s'", fan);
    if (rc == ST_OK && made_fan && st_fsync_dir(top) != 0)
        rc = st_io_fail(err, errno, "fsync '%s'", top);
    if (rc == ST_OK) {
        if (lstat(target, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == up->size) {
            /* Identical content stored already (same name = same digest). */
            unlink(up->path);
        } else {
            /* Absent, or a damaged copy: the fresh file replaces it. */
            if (rename(up->path, target) != 0)
                rc = st_io_fail(err, errno, "rename into '%s'", target);
            else if (st_fsync_dir(fan) != 0) rc = st_io_fail(err, errno, "fsync '%s'", fan);
        }
        if (rc == ST_OK) up->path[0] = '\0'; /* moved or removed: nothing left to unlink */
    }
    if (rc == ST_OK) {
        /* A re-upload refreshes created_at: gc's grace period then protects
         * the blob until the version that needs it is created. */
        st_now_rfc3339(now, sizeof now);
        rc = st_exec(db, err,
                     "INSERT INTO blobs(digest, size, created_at) VALUES (?, ?, ?) "
                     "ON CONFLICT(digest) DO UPDATE SET created_at = excluded.created_at",
                     "tit", up->hex, (int64_t)up->size, now);
    }
    rc = st_wend(st, rc, err);
out:
    st_upload_abort(up);
    return rc;
}

st_code st_blob_open(st_store *st, const char *digest_hex, int *fd, uint64_t *size, st_error *err)
{
    char path[ST_PATH_MAX];
    const char *hex = st_strip_sha256(digest_hex);
    struct stat sb;
    int f;

    if (!st || !fd || !st_hex64_valid(hex) || st_blob_path(st, hex, path, sizeof path) != 0)
        return st_fail(err, ST_ERR_INVALID, "digest '%.80s': expected 64 lowercase hex characters",
                       digest_hex ? digest_hex : "(null)");
    f = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0) {
        if (errno == ENOENT)
            return st_fail(err, ST_ERR_NOT_FOUND, "blob 'sha256:%s' not found", hex);
        if (errno == ELOOP)
            return st_fail(err, ST_ERR_CORRUPT, "blob 'sha256:%s' is a symlink", hex);
        return st_io_fail(err, errno, "open blob 'sha256:%s'", hex);
    }
    if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(f);
        return st_fail(err, ST_ERR_CORRUPT, "blob 'sha256:%s' is not a regular file", hex);
    }
    *fd = f;
    if (size) *size = (uint64_t)sb.st_size;
    return ST_OK;
}

st_code st_blob_stats(st_store *st, uint64_t *count, uint64_t *bytes, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    st_code rc;
    int src;

    if (!st) return st_fail(err, ST_ERR_INVALID, "no store");
    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_prepare(db, &s, err, "SELECT count(*), coalesce(sum(size), 0) FROM blobs", NULL);
    if (rc) goto out;
    src = st_step(s);
    if (src != SQLITE_ROW) {
        rc = st_db_fail(err, db, src, "blob stats");
        goto out;
    }
    if (count) *count = (uint64_t)sqlite3_column_int64(s, 0);
    if (bytes) *bytes = (uint64_t)sqlite3_column_int64(s, 1);
out:
    st_finish(s);
    st_rend(st, db);
    return rc;
}

/* ---- verify ------------------------------------------------------------- */

struct st_blob_row {
    char hex[65];
    int64_t size;
    int valid;
};

struct st_verify_ctx {
    st_problem_cb cb;
    void *ctx;
    uint64_t problems;
    unsigned char *buf;
};

static void st_problem(struct st_verify_ctx *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void st_problem(struct st_verify_ctx *v, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->problems++;
    if (v->cb) v->cb(v->ctx, msg);
}

/* Hash a whole file; 0 on success, else errno. */
static int st_hash_file(const char *path, unsigned char *buf, char hex[65], uint64_t *size)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char bin[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int fd = -1, e = 0;
    uint64_t total = 0;

    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        e = ENOMEM;
        goto out;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf, ST_HASH_BUF);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            e = errno;
            goto out;
        }
        if (r == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)r);
        total += (uint64_t)r;
    }
    if (EVP_DigestFinal_ex(md, bin, &n) != 1) {
        e = ENOMEM;
        goto out;
    }
    st_hex(bin, 32, hex);
    *size = total;
out:
    if (fd >= 0) close(fd);
    EVP_MD_CTX_free(md);
    return e;
}

static void st_verify_file(struct st_verify_ctx *v, const char *path, const char *hex,
                           int64_t want_size)
{
    char got[65];
    uint64_t size = 0;
    int e = st_hash_file(path, v->buf, got, &size);
    if (e == ENOENT) {
        st_problem(v, "blob sha256:%s: file missing (%s)", hex, path);
        return;
    }
    if (e) {
        st_problem(v, "blob sha256:%s: cannot read '%s': %s", hex, path, strerror(e));
        return;
    }
    if (want_size >= 0 && (uint64_t)want_size != size)
        st_problem(v, "blob sha256:%s: size %llu on disk, %lld recorded", hex,
                   (unsigned long long)size, (long long)want_size);
    if (strcmp(got, hex) != 0)
        st_problem(v, "blob sha256:%s: content hashes to sha256:%s", hex, got);
}

static int st_row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct st_blob_row *)a)->hex, ((const struct st_blob_row *)b)->hex);
}

/* Database-side checks, and the blob rows for the file pass. */
static st_code st_verify_db(st_store *st, struct st_verify_ctx *v, struct st_blob_row **rows_out,
                            size_t *nrows_out, st_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    struct st_blob_row *rows = NULL, *grown;
    size_t nrows = 0, cap = 0;
    st_code rc;
    int src;

    rc = st_rbegin(st, &db, err);
    if (rc) return rc;
    rc = st_prepare(db, &s, err, "PRAGMA integrity_check", NULL);
    if (rc) goto out;
    while ((src = st_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        if (!t || strcmp(t, "ok") != 0) st_problem(v, "database integrity: %s", t ? t : "(null)");
    }
    st_finish(s);
    s = NULL;
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "integrity_check");
        goto out;
    }
    rc = st_prepare(db, &s, err, "PRAGMA foreign_key_check", NULL);
    if (rc) goto out;
    while ((src = st_step(s)) == SQLITE_ROW)
        st_problem(v, "database foreign key: table %s row %lld references a missing %s row",
                   (const char *)sqlite3_column_text(s, 0), (long long)sqlite3_column_int64(s, 1),
                   (const char *)sqlite3_column_text(s, 2));
    st_finish(s);
    s = NULL;
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "foreign_key_check");
        goto out;
    }
    rc = st_prepare(db, &s, err,
                    "SELECT m.name, v.number, v.digest FROM versions v "
                    "JOIN models m ON m.id = v.model_id "
                    "LEFT JOIN blobs b ON b.digest = v.digest WHERE b.digest IS NULL",
                    NULL);
    if (rc) goto out;
    while ((src = st_step(s)) == SQLITE_ROW)
        st_problem(v, "version %s@%lld: blob sha256:%s is not recorded",
                   (const char *)sqlite3_column_text(s, 0), (long long)sqlite3_column_int64(s, 1),
                   (const char *)sqlite3_column_text(s, 2));
    st_finish(s);
    s = NULL;
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "versions check");
        goto out;
    }
    rc = st_prepare(db, &s, err, "SELECT digest, size FROM blobs ORDER BY digest", NULL);
    if (rc) goto out;
    while ((src = st_step(s)) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 0);
        if (nrows == cap) {
            cap = cap ? cap * 2 : 64;
            grown = realloc(rows, cap * sizeof *rows);
            if (!grown) {
                rc = st_fail(err, ST_ERR_NOMEM, "verify: out of memory");
                goto out;
            }
            rows = grown;
        }
        rows[nrows].valid = st_hex64_valid(d);
        st_pathf(rows[nrows].hex, sizeof rows[nrows].hex, "%s", d ? d : "");
        rows[nrows].size = sqlite3_column_int64(s, 1);
        if (!rows[nrows].valid)
            st_problem(v, "blob row '%.80s': not a sha256 hex digest", d ? d : "(null)");
        nrows++;
    }
    if (src != SQLITE_DONE) {
        rc = st_db_fail(err, db, src, "blobs");
        goto out;
    }
    *rows_out = rows;
    *nrows_out = nrows;
    rows = NULL;
out:
    st_finish(s);
    st_rend(st, db);
    free(rows);
    return rc;
}

/* Every file under blobs/sha256: well named, and (when no row covers it,
 * as rows were hashed already) its content matches its name. */
static void st_verify_walk(st_store *st, struct st_verify_ctx *v, const struct st_blob_row *rows,
                           size_t nrows)
{
    char top[ST_PATH_MAX], sub[ST_PATH_MAX], path[ST_PATH_MAX];
    DIR *d = NULL, *d2;
    struct dirent *e, *f;

    st_pathf(top, sizeof top, "%s/blobs/sha256", st->dir);
    d = opendir(top);
    if (!d) {
        st_problem(v, "blob store '%s': %s", top, strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (st_pathf(sub, sizeof sub, "%s/%s", top, e->d_name) != 0) continue;
        d2 = (strlen(e->d_name) == 2) ? opendir(sub) : NULL;
        if (!d2) {
            st_problem(v, "blob store: unexpected entry '%s'", sub);
            continue;
        }
        while ((f = readdir(d2)) != NULL) {
            struct st_blob_row key;
            struct stat sb;
            if (f->d_name[0] == '.' && (!f->d_name[1] || (f->d_name[1] == '.' && !f->d_name[2])))
                continue;
            if (st_pathf(path, sizeof path, "%s/%s", sub, f->d_name) != 0) continue;
            if (!st_hex64_valid(f->d_name) || strncmp(f->d_name, e->d_name, 2) != 0 ||
                lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
                st_problem(v, "blob store: unexpected entry '%s'", path);
                continue;
            }
            st_pathf(key.hex, sizeof key.hex, "%s", f->d_name);
            if (nrows && bsearch(&key, rows, nrows, sizeof *rows, st_row_cmp)) continue;
            st_verify_file(v, path, f->d_name, -1);
        }
        closedir(d2);
    }
    closedir(d);
}

st_code st_verify(st_store *st, st_problem_cb cb, void *ctx, uint64_t *problems, st_error *err)
{
    struct st_verify_ctx v = {cb, ctx, 0, NULL};
    struct st_blob_row *rows = NULL;
    size_t nrows = 0;
    char path[ST_PATH_MAX];
    st_code rc;

    if (!st) return st_fail(err, ST_ERR_INVALID, "no store");
    v.buf = malloc(ST_HASH_BUF);
    if (!v.buf) return st_fail(err, ST_ERR_NOMEM, "verify: out of memory");
    rc = st_verify_db(st, &v, &rows, &nrows, err);
    if (rc) goto out;
    for (size_t i = 0; i < nrows; i++) {
        if (!rows[i].valid || st_blob_path(st, rows[i].hex, path, sizeof path) != 0) continue;
        st_verify_file(&v, path, rows[i].hex, rows[i].size);
    }
    st_verify_walk(st, &v, rows, nrows);
    if (problems) *problems = v.problems;
out:
    free(rows);
    free(v.buf);
    return rc;
}

/* ---- gc ----------------------------------------------------------------- */

struct st_gc_ctx {
    int dry_run;
    uint64_t files, bytes;
};

/* Remove everything below dirfd (not dirfd itself); counts regular files. */
static void st_rm_contents(int dirfd, struct st_gc_ctx *g, int depth)
{
    DIR *d;
    struct dirent *e;
    int fd = dup(dirfd);

    if (fd < 0) return;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            int sub;
            if (depth >= 16) /* cache/ is ours and shallow; stop runaway trees */
                continue;
            sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) continue;
            st_rm_contents(sub, g, depth + 1);
            close(sub);
            if (!g->dry_run) unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
            continue;
        }
        if (g->dry_run || unlinkat(dirfd, e->d_name, 0) == 0) {
            g->files++;
            g->bytes += (uint64_t)sb.st_size;
        }
    }
    closedir(d);
}

/* Files under blobs/ with no row and older than cutoff: a crash between the
 * rename and the row. The caller holds the writer mutex and BEGIN IMMEDIATE
 * (an upload renames and inserts its row inside one write transaction). */
static st_code st_gc_orphans(st_store *st, struct st_gc_ctx *g, time_t cutoff, st_error *err)
{
    char top[ST_PATH_MAX], sub[ST_PATH_MAX], path[ST_PATH_MAX];
    DIR *d, *d2;
    struct dirent *e, *f;
    st_code rc = ST_OK;

    st_pathf(top, sizeof top, "%s/blobs/sha256", st->dir);
    d = opendir(top);
    if (!d) return st_io_fail(err, errno, "open '%s'", top);
    while (rc == ST_OK && (e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 2 || e->d_name[0] == '.') continue;
        if (st_pathf(sub, sizeof sub, "%s/%s", top, e->d_name) != 0) continue;
        d2 = opendir(sub);
        if (!d2) continue;
        while (rc == ST_OK && (f = readdir(d2)) != NULL) {
            struct stat sb;
            int64_t one;
            int found = 0;
            if (!st_hex64_valid(f->d_name) || strncmp(f->d_name, e->d_name, 2) != 0) continue;
            if (st_pathf(path, sizeof path, "%s/%s", sub, f->d_name) != 0) continue;
            if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_mtime > cutoff) continue;
            rc = st_query_i64(st->writer, err, &one, &found, "SELECT 1 FROM blobs WHERE digest = ?",
                              "t", f->d_name);
            if (rc || found) continue;
            if (g->dry_run || unlink(path) == 0) {
                g->files++;
                g->bytes += (uint64_t)sb.st_size;
            }
        }
        closedir(d2);
    }
    closedir(d);
    return rc;
}

st_code st_gc(st_store *st, int dry_run, int64_t grace_seconds, uint64_t *files, uint64_t *bytes,
              st_error *err)
{
    struct st_gc_ctx g = {dry_run, 0, 0};
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char **doomed = NULL, **grown;
    size_t ndoomed = 0, cap = 0;
    char cutoff_s[32], path[ST_PATH_MAX];
    time_t cutoff;
    st_code rc;
    int src, cfd;

    if (!st) return st_fail(err, ST_ERR_INVALID, "no store");
    if (grace_seconds < 0)
        return st_fail(err, ST_ERR_INVALID, "grace %lld seconds: expected >= 0",
                       (long long)grace_seconds);
    cutoff = time(NULL) - (time_t)grace_seconds;
    st_time_rfc3339((int64_t)cutoff, cutoff_s, sizeof cutoff_s);

    /* Rows first, in one transaction; files after the commit (a crash in
     * between leaves orphan files, which the next gc removes), all under the
     * writer so an upload cannot dedupe against a file about to go. */
    rc = st_wbegin(st, &db, err);
    if (rc) return rc;
    rc = st_prepare(db, &s, err,
                    "SELECT digest FROM blobs b WHERE created_at <= ? "
                    "AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.digest = b.digest)",
                    "t", cutoff_s);
    while (rc == ST_OK && (src = st_step(s)) != SQLITE_DONE) {
        const char *d = (const char *)sqlite3_column_text(s, 0);
        if (src != SQLITE_ROW) {
            rc = st_db_fail(err, db, src, "gc");
            break;
        }
        if (ndoomed == cap) {
            cap = cap ? cap * 2 : 32;
            grown = realloc(doomed, cap * sizeof *doomed);
            if (!grown) {
                rc = st_fail(err, ST_ERR_NOMEM, "gc: out of memory");
                break;
            }
            doomed = grown;
        }
        doomed[ndoomed] = strdup(d ? d : "");
        if (!doomed[ndoomed]) {
            rc = st_fail(err, ST_ERR_NOMEM, "gc: out of memory");
            break;
        }
        ndoomed++;
    }
    st_finish(s);
    s = NULL;
    for (size_t i = 0; rc == ST_OK && !dry_run && i < ndoomed; i++)
        rc = st_exec(db, err, "DELETE FROM blobs WHERE digest = ?", "t", doomed[i]);
    if (rc == ST_OK) rc = st_exec(db, err, "COMMIT", NULL);
    if (rc != ST_OK) {
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        st_wunlock(st);
        goto out;
    }
    /* The files go under the database's write lock again: the mutex alone
     * only holds off this process, while `strata gc` runs beside the server.
     * An upload dedupes and renames inside its own BEGIN IMMEDIATE, so here
     * it has either committed its blob row (then the file stays) or not yet
     * looked at the file. */
    rc = st_exec(db, err, "BEGIN IMMEDIATE", NULL);
    if (rc != ST_OK) {
        st_wunlock(st);
        goto out;
    }
    for (size_t i = 0; rc == ST_OK && i < ndoomed; i++) {
        struct stat sb;
        int64_t one;
        int found = 0;
        if (st_blob_path(st, doomed[i], path, sizeof path) != 0 || lstat(path, &sb) != 0) continue;
        if (!dry_run) /* (a dry run kept the rows) */
            rc = st_query_i64(db, err, &one, &found, "SELECT 1 FROM blobs WHERE digest = ?", "t",
                              doomed[i]);
        if (rc || found) /* uploaded again since the rows went */
            continue;
        if (dry_run || unlink(path) == 0) {
            g.files++;
            g.bytes += (uint64_t)sb.st_size;
        }
    }
    if (rc == ST_OK) rc = st_gc_orphans(st, &g, cutoff, err);
    sqlite3_exec(db, rc == ST_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    st_wunlock(st);
    if (rc) goto out;

    st_tmp_sweep(st, dry_run, &g.files, &g.bytes);
    st_pathf(path, sizeof path, "%s/cache", st->dir);
    cfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd >= 0) {
        st_rm_contents(cfd, &g, 0);
        close(cfd);
    }
    if (files) *files = g.files;
    if (bytes) *bytes = g.bytes;
out:
    for (size_t i = 0; i < ndoomed; i++) free(doomed[i]);
    free(doomed);
    return rc;
}
