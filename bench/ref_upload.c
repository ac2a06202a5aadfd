/* bench/ref_upload.c — the reference for the upload target: what storing a
 * checkpoint costs at the least. Reads SRC in 1 MiB chunks, feeds each to
 * an EVP SHA-256, writes it to DST (created, must not exist), then fsync and
 * close. No network, no validation, no database.
 *
 * Usage: ref_upload SRC DST     Prints "seconds=<t> bytes=<n> sha256=<hex>".
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#define CHUNK (1 << 20)

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SRC DST\n", argv[0]);
        return 2;
    }
    static unsigned char buf[CHUNK];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int in = open(argv[1], O_RDONLY);
    int out = open(argv[2], O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (in < 0 || out < 0) {
        perror("open");
        return 1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    long long total = 0;
    ssize_t n;
    while ((n = read(in, buf, CHUNK)) > 0) {
        EVP_DigestUpdate(md, buf, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                perror("write");
                return 1;
            }
            off += w;
        }
        total += n;
    }
    if (n < 0 || fsync(out) < 0 || close(out) < 0) {
        perror("read/fsync");
        return 1;
    }
    unsigned char dig[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, dig, &dl);
    EVP_MD_CTX_free(md);
    close(in);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("seconds=%.6f bytes=%lld sha256=",
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, total);
    for (unsigned i = 0; i < dl; i++) printf("%02x", dig[i]);
    printf("\n");
    return 0;
}
