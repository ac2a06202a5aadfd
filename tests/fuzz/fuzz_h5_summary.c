/* tests/fuzz/fuzz_h5_summary.c — eng_summary_read (engine/h5_read.c, zip.c,
 * summary.c) on arbitrary file contents.
 *
 * The bytes go into one memfd created at start-up, read back through its
 * /proc/self/fd path, as the sandboxed child reads /proc/self/fd/3. On
 * success the summary must pass the JSON round trip the sandbox pipe makes
 * (to_json -> from_json, which re-checks every bound) and its tensors must
 * lie inside the input.
 *
 * libhdf5 1.10.8 (Debian 12) has known, unfixed crashes on crafted files;
 * production runs this reader in a sandboxed child for that reason. A crash
 * whose faulting frame is inside libhdf5 is therefore expected and is not a
 * strata bug; run.sh runs this target with -fork so that such crashes do
 * not stop the run, and classifies every crash artifact by its stack
 * (triage.sh): a frame of engine/ on top means a strata bug.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"

static int mfd = -1;
static char mpath[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    mfd = memfd_create("fuzz_h5_summary", MFD_CLOEXEC);
    if (mfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(mpath, sizeof mpath, "/proc/self/fd/%d", mfd);
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    off_t off = 0;
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w <= 0) return -1;
        p += w, n -= (size_t)w, off += w;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(mfd, 0) != 0 || write_all(mfd, data, size) != 0) abort();
    eng_summary *s = NULL, *s2 = NULL;
    eng_error err = {0}, err2 = {0};
    if (eng_summary_read(mpath, &s, &err) == ENG_OK) {
        if (!s || s->file_size != size) {
            fprintf(stderr, "fuzz_h5_summary: file_size %llu, input %zu\n",
                    s ? (unsigned long long)s->file_size : 0ULL, size);
            abort();
        }
        json_t *j = eng_summary_to_json(s);
        if (!j) { /* corpus/h5_summary/regress_keras_config_not_utf8.keras */
            fprintf(
                stderr,
                "fuzz_h5_summary: reader's summary has no JSON form (a string is not UTF-8?)\n");
            abort();
        }
        if (eng_summary_from_json(j, &s2, &err2) != ENG_OK) {
            fprintf(stderr, "fuzz_h5_summary: reader's summary refused by from_json: %s\n",
                    err2.msg);
            abort();
        }
        json_decref(j);
        /* the tensors the reader promised are readable with pread */
        for (size_t i = 0; i < s->nlayers; i++)
            for (size_t k = 0; k < s->layers[i].ntensors; k++) {
                const eng_tensor *t = &s->layers[i].tensors[k];
                if (t->offset != ENG_NO_OFFSET &&
                    (t->offset > size || t->nbytes > size - t->offset)) {
                    fprintf(stderr, "fuzz_h5_summary: tensor '%s' [%llu,+%llu) beyond %zu bytes\n",
                            t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                            size);
                    abort();
                }
            }
        json_t *layers = NULL;
        eng_error err3 = {0};
        if (eng_summary_layers_json(mfd, s, &layers, &err3) == ENG_OK) json_decref(layers);
        eng_error_release(&err3);
    } else if (s || err.code == ENG_OK) {
        fprintf(stderr, "fuzz_h5_summary: failure without an error code\n");
        abort();
    }
    eng_summary_free(s);
    eng_summary_free(s2);
    eng_error_release(&err);
    eng_error_release(&err2);
    return 0;
}
