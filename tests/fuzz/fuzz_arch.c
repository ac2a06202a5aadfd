/* tests/fuzz/fuzz_arch.c — eng_arch_parse (engine/arch.c + the layer
 * kinds' parse/shape functions) on arbitrary bytes, as POST /v1/architectures
 * and every upload's embedded model_config reach it.
 *
 * The input is copied into an exact-size heap buffer without a terminating
 * NUL, so that ASan sees any read past `len`. On success: eng_arch_to_json,
 * canonical text and id must exist, and the canonical text must parse again
 * to the same id (the id is the sha256 of the canonical text, so a
 * non-idempotent canonical form would give one architecture two ids).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    memcpy(text, data, size);
    eng_arch *a = NULL, *b = NULL;
    eng_error err = {0}, err2 = {0};
    if (eng_arch_parse(text, size, &a, &err) == ENG_OK) {
        json_t *j = eng_arch_to_json(a);
        const char *canon = eng_arch_canonical(a), *id = eng_arch_id(a);
        if (!j || !canon || !id || strncmp(id, "sha256:", 7) != 0 || strlen(id) != 71) {
            fprintf(stderr,
                    "fuzz_arch: accepted architecture without JSON, canonical form or id\n");
            abort();
        }
        char *dump = json_dumps(j, JSON_COMPACT);
        free(dump);
        json_decref(j);
        if (eng_arch_parse(canon, strlen(canon), &b, &err2) != ENG_OK) {
            fprintf(stderr, "fuzz_arch: canonical text refused: %s\n", err2.msg);
            abort();
        }
        if (strcmp(eng_arch_id(b), id) != 0) {
            fprintf(stderr, "fuzz_arch: canonical text re-parses to another id\n");
            abort();
        }
    } else if (a || err.code == ENG_OK || !err.msg[0]) {
        fprintf(stderr, "fuzz_arch: failure without an error code and message\n");
        abort();
    }
    eng_arch_free(a);
    eng_arch_free(b);
    eng_error_release(&err);
    eng_error_release(&err2);
    free(text);
    return 0;
}
