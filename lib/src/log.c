#include "svc/log.h"

#include "svc/alloc.h"
#include "svc/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Buffered lines are written once this much is pending, and at least every FLUSH_MS. */
#define BUF_FLUSH_AT ((size_t)64 * 1024)
#define FLUSH_MS     500

static const char *service = "svc";
static atomic_int min_level = SVC_LOG_INFO;
static _Thread_local const char *tl_request_id, *tl_trace_id;

/*
 * The output, under mu: where lines go (stderr, a test's fd, or a file of our own that rotates
 * by size), and, when buffered, the whole lines not written yet. Every write(2) holds whole
 * lines, so lines never interleave.
 */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flusher_cv = PTHREAD_COND_INITIALIZER;
static int out_fd = STDERR_FILENO;
static char *file_path;   /* svc_log_open()'s file, or NULL */
static int64_t file_size; /* bytes in it */
static int64_t file_max;  /* rotate before it would pass this; 0: never */
static bool buffered, flusher_running, flusher_stop;
static pthread_t flusher;
static struct svc_buf pending = SVC_BUF_INIT;

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

/* Writes N bytes whole (retrying short writes); errors are dropped: a log cannot log them. */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(out_fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* The file is renamed to "<path>.1" (replacing the previous one) and a new one opened, so two
 * files of at most file_max bytes are kept. Called with mu held. */
static void rotate(void)
{
    size_t len = strlen(file_path);
    char *old = svc_malloc(len + 3);
    int fd;

    snprintf(old, len + 3, "%s.1", file_path);
    (void)rename(file_path, old);
    free(old);
    fd = open(file_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd >= 0) {
        close(out_fd);
        out_fd = fd;
        file_size = 0;
    }
}

/* Writes N bytes of whole lines to the output, rotating first when they would pass the size
 * bound. Called with mu held. */
static void output(const char *p, size_t n)
{
    if (file_path != NULL && file_max > 0 && file_size > 0 && file_size + (int64_t)n > file_max)
        rotate();
    write_all(p, n);
    file_size += (int64_t)n;
}

static void flush_locked(void)
{
    if (pending.len > 0) {
        output(pending.data, pending.len);
        svc_buf_reset(&pending);
    }
}

void svc_log_set_fd(int fd)
{
    pthread_mutex_lock(&mu);
    flush_locked();
    if (file_path != NULL) {
        close(out_fd);
        free(file_path);
        file_path = NULL;
    }
    out_fd = fd >= 0 ? fd : STDERR_FILENO;
    pthread_mutex_unlock(&mu);
}

int svc_log_open(const char *path, int64_t max_bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st;

    if (fd < 0)
        return -errno;
    pthread_mutex_lock(&mu);
    flush_locked();
    if (file_path != NULL) {
        close(out_fd);
        free(file_path);
    }
    out_fd = fd;
    file_path = svc_strdup(path);
    file_size = fstat(fd, &st) == 0 ? (int64_t)st.st_size : 0;
    file_max = max_bytes;
    pthread_mutex_unlock(&mu);
    return 0;
}

static void *flusher_main(void *arg)
{
    struct timespec at;

    (void)arg;
    pthread_mutex_lock(&mu);
    while (!flusher_stop) {
        clock_gettime(CLOCK_REALTIME, &at);
        at.tv_nsec += (long)FLUSH_MS * 1000000L;
        at.tv_sec += at.tv_nsec / 1000000000L;
        at.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&flusher_cv, &mu, &at);
        flush_locked();
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int svc_log_set_buffered(bool on)
{
    int rc = 0;

    pthread_mutex_lock(&mu);
    if (on && !flusher_running) {
        flusher_stop = false;
        if (pthread_create(&flusher, NULL, flusher_main, NULL) != 0)
            rc = -EAGAIN;
        else
            flusher_running = true;
    }
    buffered = on && flusher_running;
    if (!buffered)
        flush_locked();
    pthread_mutex_unlock(&mu);
    return rc;
}

void svc_log_flush(void)
{
    pthread_mutex_lock(&mu);
    flush_locked();
    pthread_mutex_unlock(&mu);
}

void svc_log_close(void)
{
    bool join;

    pthread_mutex_lock(&mu);
    buffered = false;
    flush_locked();
    join = flusher_running;
    flusher_stop = true;
    pthread_cond_signal(&flusher_cv);
    pthread_mutex_unlock(&mu);
    if (join)
        pthread_join(flusher, NULL);
    pthread_mutex_lock(&mu);
    flusher_running = false;
    svc_buf_release(&pending);
    if (file_path != NULL) {
        close(out_fd);
        free(file_path);
        file_path = NULL;
        out_fd = STDERR_FILENO;
    }
    pthread_mutex_unlock(&mu);
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
    pthread_mutex_lock(&mu);
    if (buffered && level <= SVC_LOG_INFO) {
        if (pending.len + b.len > BUF_FLUSH_AT)
            flush_locked();
        svc_buf_add(&pending, b.data, b.len);
    } else {
        /* A warning or an error is written at once, after what was logged before it. */
        flush_locked();
        output(b.data, b.len);
    }
    pthread_mutex_unlock(&mu);
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
