/*
 * Our own log: levels as --krun-log-level (0 off, 1 error, 2 warn, 3 info,
 * 4 debug, 5 trace), to stderr or to --log-file (appended, never truncated).
 * Thread-safe: each message is one write().
 */
#ifndef KRUNKIT_CORE_LOG_H
#define KRUNKIT_CORE_LOG_H

enum log_level {
    LOG_OFF = 0,
    LOG_ERROR = 1,
    LOG_WARN = 2,
    LOG_INFO = 3,
    LOG_DEBUG = 4,
    LOG_TRACE = 5,
};

/* level is clamped to 0..5; fd < 0 means stderr. */
void log_init(int level, int fd);
int log_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_trace(...) log_msg(LOG_TRACE, __VA_ARGS__)

#endif
