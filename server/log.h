/* server/log.h — private to server/: log lines and the monotonic clock
 * (log.c). */
#ifndef STRATA_SERVER_LOG_H
#define STRATA_SERVER_LOG_H

#include <stdint.h>

enum srv_log_level { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };
extern int srv_log_level;
extern int srv_log_json;
void srv_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define SRV_LOG(level, ...)                                                \
    do {                                                                   \
        if ((level) <= srv_log_level) srv_log_write((level), __VA_ARGS__); \
    } while (0)

/* Monotonic nanoseconds. */
uint64_t srv_now_ns(void);

#endif
