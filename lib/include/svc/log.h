/*
 * log.h: structured logs, one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-24T10:00:00.123Z","level":"info","svc":"user-svc","msg":"...",
 *    "request_id":"...","trace_id":"..."}
 *
 * While a request is handled, the HTTP layer sets the calling thread's request and trace ids
 * (svc_log_set_request) so every line logged on its behalf carries them. Messages follow
 * STYLE.md: lowercase, no final period, what failed first, the subject in quotes.
 * Thread-safe: lines are written whole, never interleaved.
 *
 * Output: stderr, or a file of the process's own (svc_log_open: LOG_FILE) that rotates by size,
 * keeping "<file>.1", so a long run cannot fill the disk. Buffered (svc_log_set_buffered:
 * LOG_BUFFER, the default of services): debug and info lines, the access log among them, are
 * gathered and written in one write(2) per 64 KiB or every 500 ms; a warning or an error is
 * written at once, after what is pending. svc_log_close() writes what is left. A crash loses at
 * most the last 500 ms of info lines, never a warning or an error.
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stdbool.h>
#include <stdint.h>

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

/* Redirects output to FD (tests); -1 restores stderr. Closes a file of svc_log_open(). */
void svc_log_set_fd(int fd);

/* Logs to PATH (appended; created 0640), which is renamed to "<PATH>.1" and started again
 * before it would pass MAX_BYTES (0: never). 0 or -errno of the open. */
int svc_log_open(const char *path, int64_t max_bytes);

/* Turns buffering on (starting the thread that writes every 500 ms) or off (writing what is
 * pending). 0, or -EAGAIN when the thread could not start (lines stay unbuffered). */
int svc_log_set_buffered(bool on);

/* Writes what is pending now. */
void svc_log_flush(void);

/* Writes what is pending, stops buffering and the thread, closes the file: output is stderr
 * again. At the end of a process. */
void svc_log_close(void);

#define svc_log_debug(...) svc_logf(SVC_LOG_DEBUG, __VA_ARGS__)
#define svc_log_info(...)  svc_logf(SVC_LOG_INFO, __VA_ARGS__)
#define svc_log_warn(...)  svc_logf(SVC_LOG_WARN, __VA_ARGS__)
#define svc_log_error(...) svc_logf(SVC_LOG_ERROR, __VA_ARGS__)

#endif
