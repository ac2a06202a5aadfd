/* cache.c — answers of GETs kept as text until the database changes.
 *
 * A version GET costs a read transaction, three queries and JSON parsing and
 * printing (~60 µs); nginx answers a static file in ~20 µs. Versions are
 * immutable but for their tags, so the answer text is kept, stamped with
 * st_generation() as read *before* the read transaction began, and served
 * while the generation is unchanged: any write through this server (upload,
 * tag, delete, ...) makes every entry stale at once. The CLI's commands
 * (verify, gc, token) do not change versions or tags.
 *
 * Direct-mapped table of SRV_CACHE_SLOTS entries, each under its own rwlock;
 * answers larger than SRV_CACHE_MAX_BODY are not kept (bounded memory:
 * slots × max body).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "reply.h"

#define SRV_CACHE_SLOTS    256
#define SRV_CACHE_MAX_BODY (64u << 10)

typedef struct cache_slot {
    pthread_rwlock_t lock;
    char *key; /* NULL when empty */
    uint64_t gen;
    char *body;
    size_t len;
} cache_slot;

static cache_slot slots[SRV_CACHE_SLOTS];
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static void slots_init(void)
{
    for (int i = 0; i < SRV_CACHE_SLOTS; i++) pthread_rwlock_init(&slots[i].lock, NULL);
}

static cache_slot *slot_of(const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    pthread_once(&slots_once, slots_init);
    return &slots[h % SRV_CACHE_SLOTS];
}

int srv_cache_reply(srv_req *r, const char *key, uint64_t gen)
{
    cache_slot *c = slot_of(key);
    char *copy = NULL;
    size_t len = 0;
    pthread_rwlock_rdlock(&c->lock);
    if (c->key && c->gen == gen && strcmp(c->key, key) == 0 && (copy = malloc(c->len)) != NULL) {
        memcpy(copy, c->body, c->len);
        len = c->len;
    }
    pthread_rwlock_unlock(&c->lock);
    if (!copy) return 0;
    srv_reply_json_text(r, 200, copy, len);
    return 1;
}

void srv_cache_reply_json(srv_req *r, const char *key, uint64_t gen, json_t *json)
{
    size_t len = 0;
    char *body = srv_json_text(json, &len);
    if (!body) {
        srv_reply_error(r, SRV_E_INTERNAL, NULL, "out of memory");
        return;
    }
    if (len <= SRV_CACHE_MAX_BODY) {
        cache_slot *c = slot_of(key);
        char *k = strdup(key), *b = malloc(len);
        if (k && b) {
            memcpy(b, body, len);
            pthread_rwlock_wrlock(&c->lock);
            if (!c->key || c->gen <= gen) { /* never replace a newer answer */
                free(c->key);
                free(c->body);
                c->key = k;
                c->gen = gen;
                c->body = b;
                c->len = len;
                k = b = NULL;
            }
            pthread_rwlock_unlock(&c->lock);
        }
        free(k);
        free(b);
    }
    srv_reply_json_text(r, 200, body, len);
}

void srv_cache_free(void)
{
    for (int i = 0; i < SRV_CACHE_SLOTS; i++) {
        free(slots[i].key);
        free(slots[i].body);
        slots[i].key = slots[i].body = NULL;
    }
}
