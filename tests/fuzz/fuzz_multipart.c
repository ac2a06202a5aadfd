/* tests/fuzz/fuzz_multipart.c — multipart/form-data bodies through
 * libmicrohttpd's MHD_PostProcessor, the parser strata's uploads use
 * (server/route_versions.c: srv_upload_start/srv_upload_feed/on_part).
 *
 * A post processor needs a real MHD_Connection (it reads the request's
 * Content-Type from it), so this target starts one libmicrohttpd daemon on
 * 127.0.0.1 (an ephemeral port) in LLVMFuzzerInitialize and sends every
 * input as one HTTP request over a socket:
 *
 *   input = "<boundary>\n<body>"  (no newline: boundary "XyZ", all bytes body)
 *   POST /v1/models/m/versions
 *   Content-Type: multipart/form-data; boundary=<boundary>
 *   Content-Length: <body length>
 *
 * The handler feeds the body to MHD_post_process in the chunks
 * libmicrohttpd hands it, exactly as srv_upload_feed does, with a part
 * callback that mirrors on_part: 'weights' bytes are appended to a buffer
 * (here: hashed), 'metadata' is collected up to the same 64 KiB cap, every
 * byte of every part is read so that ASan checks the ranges libmicrohttpd
 * passes. Invariants: data is non-NULL when size > 0; offsets of one part
 * grow by the previous chunk's size. A part may come without a key (NULL):
 * on_part must reject it, not dereference it.
 *
 * Limits of this target: libmicrohttpd is Debian's uninstrumented build,
 * so coverage guidance stops at its API and a memory error inside it is
 * caught only when it goes through an intercepted libc call or faults.
 * What it does check is strata's side of the contract with the parser.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <microhttpd.h>

#define MAX_METADATA (64 * 1024) /* = UPLOAD_MAX_METADATA in route_versions.c */

static struct MHD_Daemon *daemon_;
static uint16_t port;

struct part_state {
    struct MHD_PostProcessor *pp;
    int failed;
    char *metadata;
    size_t metadata_len;
    uint64_t weights_len;
    uint32_t weights_hash;
    char last_key[64];
    uint64_t next_off;
};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_multipart: %s\n", what);
    abort();
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    struct part_state *st = cls;
    (void)kind;
    /* libmicrohttpd passes key == NULL for a part whose Content-Disposition
     * has no name="..." (corpus/multipart/regress_part_without_name: it
     * crashed strata's on_part, which now rejects the upload as 400). */
    if (!key) {
        st->failed = 1;
        return MHD_YES;
    }
    if (size && !data) die("NULL data with a non-zero size");
    /* read every string libmicrohttpd hands over (ASan checks the bytes) */
    volatile size_t sink = strlen(key);
    if (filename) sink += strlen(filename);
    if (content_type) sink += strlen(content_type);
    if (transfer_encoding) sink += strlen(transfer_encoding);
    (void)sink;
    /* offsets within one part are contiguous */
    if (strncmp(st->last_key, key, sizeof st->last_key) == 0 && off != 0 && off != st->next_off)
        die("non-contiguous offsets within one part");
    snprintf(st->last_key, sizeof st->last_key, "%s", key);
    st->next_off = off + size;
    for (size_t i = 0; i < size; i++)
        st->weights_hash = st->weights_hash * 31u + (unsigned char)data[i];
    if (strcmp(key, "weights") == 0) {
        st->weights_len += size;
    } else if (strcmp(key, "metadata") == 0) {
        if (st->metadata_len + size > MAX_METADATA) {
            st->failed = 1;
            return MHD_YES;
        }
        char *nm = realloc(st->metadata, st->metadata_len + size + 1);
        if (!nm) return MHD_NO;
        memcpy(nm + st->metadata_len, data, size);
        st->metadata = nm;
        st->metadata_len += size;
        st->metadata[st->metadata_len] = 0;
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)cls, (void)url, (void)method, (void)version;
    struct part_state *st = *req_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        st->pp = MHD_create_post_processor(conn, 64 * 1024, on_part, st);
        if (!st->pp) st->failed = 1; /* strata answers 400: no boundary */
        *req_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!st->failed && MHD_post_process(st->pp, upload_data, *upload_data_size) != MHD_YES)
            st->failed = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    static const char ok[] = "ok", bad[] = "bad";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(st->failed ? sizeof bad - 1 : sizeof ok - 1,
                                        (void *)(st->failed ? bad : ok), MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, st->failed ? 400 : 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct part_state *st = *req_cls;
    if (!st) return;
    if (st->pp) MHD_destroy_post_processor(st->pp);
    free(st->metadata);
    free(st);
    *req_cls = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                               on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5, MHD_OPTION_END);
    if (!daemon_) die("cannot start libmicrohttpd");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    if (!di || !di->port) die("cannot learn the daemon's port");
    port = di->port;
    return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char boundary[72] = "XyZ";
    const uint8_t *nl = memchr(data, '\n', size < 71 ? size : 71);
    if (nl) {
        size_t bl = (size_t)(nl - data);
        memcpy(boundary, data, bl);
        boundary[bl] = 0;
        for (size_t i = 0; i < bl; i++) /* keep the header a header */
            if (boundary[i] == '\r' || boundary[i] == 0) boundary[i] = '_';
        size -= bl + 1;
        data = nl + 1;
    }
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /v1/models/m/versions HTTP/1.1\r\nHost: fuzz\r\n"
                      "Content-Type: multipart/form-data; boundary=%s\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      boundary, size);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
    if (send_all(fd, head, (size_t)hl) == 0) send_all(fd, (const char *)data, size);
    char buf[4096];
    while (recv(fd, buf, sizeof buf, 0) > 0) {}
    close(fd);
    return 0;
}
