/*
 * Our own log (see log.h). One formatted write() per message so lines from
 * several threads never interleave.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int log_lvl = LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"off", "error", "warn", "info", "debug", "trace"};

void log_init(int level, int fd)
{
    if (level < LOG_OFF)
        level = LOG_OFF;
    if (level > LOG_TRACE)
        level = LOG_TRACE;
    log_lvl = level;
    log_fd = fd < 0 ? STDERR_FILENO : fd;
}

int log_level(void)
{
    return log_lvl;
}

void log_msg(int level, const char *fmt, ...)
{
    if (level <= LOG_OFF || level > log_lvl)
        return;
    char buf[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof(buf),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ krunkit[%d] %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, (int)getpid(), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(buf) - 2)
        len = sizeof(buf) - 2;
    buf[len++] = '\n';
    ssize_t w = write(log_fd, buf, len);
    (void)w;
}
