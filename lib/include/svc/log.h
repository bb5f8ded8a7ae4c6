/*
 * log.h: structured logs, one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-24T10:00:00.123Z","level":"info","svc":"user-svc","msg":"...",
 *    "request_id":"...","trace_id":"..."}
 *
 * While a request is handled, the HTTP layer sets the calling thread's request and trace ids
 * (svc_log_set_request) so every line logged on its behalf carries them. Messages follow
 * STYLE.md: lowercase, no final period, what failed first, the subject in quotes.
 * Thread-safe: a line is written with one write(2).
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stdbool.h>

enum svc_log_level { SVC_LOG_DEBUG, SVC_LOG_INFO, SVC_LOG_WARN, SVC_LOG_ERROR, SVC_LOG_FATAL };

/* The service name put in every line (not copied: pass a string that lives forever). */
void svc_log_set_service(const char *name);

/* Lines below LEVEL are dropped. Default: info. */
void svc_log_set_level(enum svc_log_level level);
enum svc_log_level svc_log_get_level(void);

/* "debug", "info", "warn", "error" -> level; false for anything else. */
bool svc_log_parse_level(const char *s, enum svc_log_level *out);

/* Sets (or, with NULLs, clears) the calling thread's request context. The strings must stay
 * valid until cleared. */
void svc_log_set_request(const char *request_id, const char *trace_id);

/* Logs a message. */
void svc_logf(enum svc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs a message plus extra fields: FIELDS is the inside of a JSON object
 * ("\"k\":1,\"s\":\"x\""), already valid JSON, appended after the standard fields. */
void svc_log_fields(enum svc_log_level level, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Redirects output to FD (tests); -1 restores stderr. */
void svc_log_set_fd(int fd);

#define svc_log_debug(...) svc_logf(SVC_LOG_DEBUG, __VA_ARGS__)
#define svc_log_info(...)  svc_logf(SVC_LOG_INFO, __VA_ARGS__)
#define svc_log_warn(...)  svc_logf(SVC_LOG_WARN, __VA_ARGS__)
#define svc_log_error(...) svc_logf(SVC_LOG_ERROR, __VA_ARGS__)

#endif
