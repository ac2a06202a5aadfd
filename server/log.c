/* server/log.c — the only place strata writes log lines (stderr), and the
 * monotonic clock the log lines and deadlines use.
 * SRV_LOG checks the level before formatting anything. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

int srv_log_level = SRV_LOG_INFO;
int srv_log_json = 0;

void srv_log_write(int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[2048], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (srv_log_json && line[0] == '{')
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",%s\n", ts, names[level & 3], line + 1);
    else fprintf(stderr, "%s %s %s\n", ts, names[level & 3], line);
}

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
