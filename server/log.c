/* server/log.c — the only place strata writes log lines (stderr).
 * SRV_LOG checks the level before formatting anything. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "http_int.h"

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
    else
        fprintf(stderr, "%s %s %s\n", ts, names[level & 3], line);
}
