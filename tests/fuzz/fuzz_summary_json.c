/* tests/fuzz/fuzz_summary_json.c — eng_summary_from_json on arbitrary bytes.
 *
 * This is the parent's re-check of what the sandboxed child sends back
 * (server/sandbox.c: json_loadb(..., 0) then eng_summary_from_json): the
 * child may be compromised by a hostile HDF5 file, so the JSON is hostile
 * too. from_json must never crash and never accept a summary that breaks a
 * bound. After a success this target checks every bound itself,
 * independently of engine/summary.c, and abort()s on a violation; then the
 * summary must survive to_json -> from_json unchanged, and
 * eng_summary_layers_json must fail cleanly on an empty file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "engine.h"
#include "h5_int.h"

static int empty_fd = -1;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_summary_json: invariant violated: %s (%s:%d)\n", #cond, \
                    __FILE__, __LINE__);                                                  \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static size_t dtype_size(eng_dtype dt)
{
    switch (dt) {
    case ENG_DT_F32:
    case ENG_DT_I32: return 4;
    case ENG_DT_F64:
    case ENG_DT_I64: return 8;
    case ENG_DT_F16: return 2;
    default: return 0;
    }
}

static void check_str(const char *p, size_t max, int nullable)
{
    if (!p) {
        CHECK(nullable);
        return;
    }
    CHECK(strnlen(p, max + 1) <= max);
}

/* Every bound engine.h and h5_int.h promise for a summary from_json accepted. */
static void check_summary(const eng_summary *s)
{
    CHECK((unsigned)s->format <= ENG_FMT_KERAS3_ARCHIVE);
    CHECK(s->file_size <= (uint64_t)INT64_MAX);
    CHECK(s->hdf5_offset <= s->file_size);
    CHECK(s->hdf5_size <= s->file_size - s->hdf5_offset);
    check_str(s->keras_version, ENG_MAX_NAME, 1);
    check_str(s->backend, ENG_MAX_NAME, 1);
    check_str(s->model_config, ENG_H5_MAX_CONFIG, 1);
    CHECK(s->nlayers <= ENG_MAX_LAYERS);
    CHECK(s->nlayers == 0 || s->layers);
    size_t total = 0;
    for (size_t i = 0; i < s->nlayers; i++) {
        const eng_wlayer *l = &s->layers[i];
        CHECK(l->name && l->name[0]);
        check_str(l->name, ENG_MAX_NAME, 0);
        check_str(l->attr_name, ENG_MAX_NAME, 1);
        CHECK(l->ntensors == 0 || l->tensors);
        CHECK(l->ntensors <= ENG_MAX_TENSORS);
        total += l->ntensors;
        CHECK(total <= ENG_MAX_TENSORS);
        for (size_t k = 0; k < l->ntensors; k++) {
            const eng_tensor *t = &l->tensors[k];
            CHECK(t->name && t->name[0] && t->path && t->path[0]);
            check_str(t->name, ENG_MAX_NAME, 0);
            check_str(t->path, ENG_H5_MAX_PATH, 0);
            CHECK(t->rank >= 0 && t->rank <= ENG_MAX_RANK);
            CHECK((unsigned)t->dtype <= ENG_DT_OTHER);
            unsigned __int128 n = 1;
            for (int d = 0; d < t->rank; d++) {
                CHECK(t->shape[d] >= 0);
                n *= (uint64_t)t->shape[d];
                CHECK(n <= ENG_MAX_ELEMENTS);
            }
            size_t dsz = dtype_size(t->dtype);
            if (dsz) {
                CHECK((unsigned __int128)t->nbytes == n * dsz);
            } else if (n == 0) {
                CHECK(t->nbytes == 0);
            } else {
                CHECK(t->nbytes % (uint64_t)n == 0 && t->nbytes / (uint64_t)n >= 1 &&
                      t->nbytes / (uint64_t)n <= ENG_H5_MAX_DTSIZE);
            }
            if (t->offset != ENG_NO_OFFSET) {
                /* data inside the HDF5 image, hence inside the file */
                CHECK(t->offset >= s->hdf5_offset);
                CHECK((unsigned __int128)t->offset + t->nbytes <=
                      (unsigned __int128)s->hdf5_offset + s->hdf5_size);
                CHECK((unsigned __int128)t->offset + t->nbytes <= s->file_size);
            }
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    empty_fd = memfd_create("fuzz_summary_json", MFD_CLOEXEC);
    if (empty_fd < 0) {
        perror("memfd_create");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, 0, &jerr); /* as sandbox.c parses it */
    if (!j) return 0;
    eng_summary *s = NULL, *s2 = NULL;
    eng_error err = {0}, err2 = {0}, err3 = {0};
    if (eng_summary_from_json(j, &s, &err) == ENG_OK) {
        CHECK(s != NULL);
        CHECK(err.code == ENG_OK);
        check_summary(s);
        /* lossless: to_json of what was accepted is accepted again, identically */
        json_t *back = eng_summary_to_json(s);
        CHECK(back != NULL);
        CHECK(eng_summary_from_json(back, &s2, &err2) == ENG_OK);
        json_t *again = eng_summary_to_json(s2);
        CHECK(again != NULL && json_equal(back, again));
        json_decref(again);
        json_decref(back);
        /* the parent hashes tensors with pread: an empty file must give a
         * clean error (or success when no tensor has bytes), never a crash */
        json_t *layers = NULL;
        if (eng_summary_layers_json(empty_fd, s, &layers, &err3) == ENG_OK) json_decref(layers);
    } else {
        CHECK(s == NULL);
        CHECK(err.code != ENG_OK && err.msg[0]);
    }
    eng_summary_free(s);
    eng_summary_free(s2);
    eng_error_release(&err);
    eng_error_release(&err2);
    eng_error_release(&err3);
    json_decref(j);
    return 0;
}
