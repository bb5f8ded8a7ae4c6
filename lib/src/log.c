#include "svc/log.h"

#include "svc/buf.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *service = "svc";
static atomic_int min_level = SVC_LOG_INFO;
static atomic_int out_fd = STDERR_FILENO;
static _Thread_local const char *tl_request_id, *tl_trace_id;

static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

void svc_log_set_service(const char *name)
{
    service = name;
}

void svc_log_set_level(enum svc_log_level level)
{
    atomic_store(&min_level, (int)level);
}

enum svc_log_level svc_log_get_level(void)
{
    return (enum svc_log_level)atomic_load(&min_level);
}

bool svc_log_parse_level(const char *s, enum svc_log_level *out)
{
    for (int i = SVC_LOG_DEBUG; i <= SVC_LOG_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum svc_log_level)i;
            return true;
        }
    }
    return false;
}

void svc_log_set_request(const char *request_id, const char *trace_id)
{
    tl_request_id = request_id;
    tl_trace_id = trace_id;
}

void svc_log_set_fd(int fd)
{
    atomic_store(&out_fd, fd >= 0 ? fd : STDERR_FILENO);
}

static void emit(enum svc_log_level level, const char *fields, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void emit(enum svc_log_level level, const char *fields, const char *fmt, va_list ap)
{
    char msg[2048], ts[40];
    struct svc_buf b = SVC_BUF_INIT;
    struct timespec now;
    struct tm tm;
    int n;
    ssize_t w;

    if ((int)level < atomic_load(&min_level))
        return;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        n = 0;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    svc_buf_addf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"svc\":", ts, now.tv_nsec / 1000000,
                 level_names[level]);
    svc_buf_add_json_str(&b, service, strlen(service));
    svc_buf_adds(&b, ",\"msg\":");
    svc_buf_add_json_str(&b, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    if (tl_request_id != NULL) {
        svc_buf_adds(&b, ",\"request_id\":");
        svc_buf_add_json_str(&b, tl_request_id, strlen(tl_request_id));
    }
    if (tl_trace_id != NULL) {
        svc_buf_adds(&b, ",\"trace_id\":");
        svc_buf_add_json_str(&b, tl_trace_id, strlen(tl_trace_id));
    }
    if (fields != NULL && fields[0] != '\0') {
        svc_buf_addc(&b, ',');
        svc_buf_adds(&b, fields);
    }
    svc_buf_adds(&b, "}\n");
    /* One write per line keeps lines whole when threads log at once. */
    w = write(atomic_load(&out_fd), b.data, b.len);
    (void)w;
    svc_buf_release(&b);
}

void svc_logf(enum svc_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(level, NULL, fmt, ap);
    va_end(ap);
}

void svc_log_fields(enum svc_log_level level, const char *fields, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    emit(level, fields, fmt, ap);
    va_end(ap);
}
