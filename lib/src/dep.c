#include "svc/dep.h"

#include "svc/alloc.h"
#include "svc/log.h"
#include "svc/server.h"
#include "svc/time.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool svc_ratelimit_due(struct svc_ratelimit *r, unsigned *suppressed)
{
    int64_t now = svc_now_ms();

    if (r->last_ms != 0 && now - r->last_ms < r->every_ms) {
        r->suppressed++;
        return false;
    }
    r->last_ms = now;
    *suppressed = r->suppressed;
    r->suppressed = 0;
    return true;
}

struct svc_dep {
    char *name;
    unsigned flags;
    void (*probe)(void *ctx);
    void *probe_ctx;

    pthread_mutex_t mu; /* guards what follows */
    bool up;
    bool told; /* an outage warning was logged since the last up: the recovery is logged too */
    char why[256];
    struct svc_ratelimit warn;
};

struct svc_dep *svc_dep_new(const char *name, unsigned flags, const char *down_why)
{
    struct svc_dep *d = svc_calloc(1, sizeof(*d));

    d->name = svc_strdup(name);
    d->flags = flags;
    pthread_mutex_init(&d->mu, NULL);
    d->up = down_why == NULL;
    if (down_why != NULL)
        snprintf(d->why, sizeof(d->why), "%s", down_why);
    d->warn = (struct svc_ratelimit)SVC_RATELIMIT_INIT(SVC_DEP_WARN_MS);
    return d;
}

void svc_dep_free(struct svc_dep *d)
{
    if (d == NULL)
        return;
    pthread_mutex_destroy(&d->mu);
    free(d->name);
    free(d);
}

const char *svc_dep_name(const struct svc_dep *d)
{
    return d->name;
}

void svc_dep_up(struct svc_dep *d)
{
    bool told;

    pthread_mutex_lock(&d->mu);
    told = !d->up && d->told;
    if (!d->up)
        d->warn.suppressed = 0; /* they were about the outage that ends here */
    d->up = true;
    d->told = false;
    d->why[0] = '\0';
    pthread_mutex_unlock(&d->mu);
    if (told)
        svc_log_info("%s reachable again", d->name);
}

/* " (N similar warnings not logged)" when N > 0, else "". */
static const char *suppressed_note(unsigned n, char *buf, size_t cap)
{
    if (n == 0)
        return "";
    snprintf(buf, cap, " (%u similar warnings not logged)", n);
    return buf;
}

void svc_dep_down(struct svc_dep *d, const char *what, const char *fmt, ...)
{
    char why[sizeof(d->why)], note[64];
    unsigned suppressed = 0;
    va_list ap;
    bool log;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    why[strcspn(why, "\n")] = '\0'; /* drivers end their messages with a newline, or several */
    pthread_mutex_lock(&d->mu);
    if (d->up) {
        /* Going down is news: told at once, whatever warnings came before. */
        d->warn.last_ms = svc_now_ms();
        suppressed = d->warn.suppressed;
        d->warn.suppressed = 0;
        log = true;
    } else {
        log = svc_ratelimit_due(&d->warn, &suppressed);
    }
    d->up = false;
    d->told |= log;
    memcpy(d->why, why, sizeof(why));
    pthread_mutex_unlock(&d->mu);
    if (log)
        svc_log_warn("%s unavailable: %s%s%s%s", d->name, what != NULL ? what : "",
                     what != NULL ? " failed: " : "", why,
                     suppressed_note(suppressed, note, sizeof(note)));
}

void svc_dep_warn(struct svc_dep *d, const char *fmt, ...)
{
    char msg[512], note[64];
    unsigned suppressed = 0;
    va_list ap;
    bool log;

    pthread_mutex_lock(&d->mu);
    log = svc_ratelimit_due(&d->warn, &suppressed);
    pthread_mutex_unlock(&d->mu);
    if (!log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    svc_log_warn("%s%s", msg, suppressed_note(suppressed, note, sizeof(note)));
}

bool svc_dep_is_up(struct svc_dep *d, char *why, size_t cap)
{
    bool up;

    pthread_mutex_lock(&d->mu);
    up = d->up;
    if (why != NULL && cap > 0)
        snprintf(why, cap, "%s", up ? "" : d->why);
    pthread_mutex_unlock(&d->mu);
    return up;
}

void svc_dep_set_probe(struct svc_dep *d, void (*probe)(void *ctx), void *ctx)
{
    d->probe = probe;
    d->probe_ctx = ctx;
}

bool svc_dep_check(struct svc_dep *d, char *why, size_t cap)
{
    if (d->probe != NULL)
        d->probe(d->probe_ctx);
    return svc_dep_is_up(d, why, cap);
}

void svc_dep_report(struct svc_dep *d, struct svc_health *h, const char *hint, ...)
{
    char why[sizeof(d->why)], extra[256] = "";
    bool ok = true;

    if (d == NULL)
        return;
    if (svc_dep_check(d, why, sizeof(why))) {
        svc_health_report(h, d->name, true, NULL);
        return;
    }
    if (hint != NULL) {
        va_list ap;

        va_start(ap, hint);
        vsnprintf(extra, sizeof(extra), hint, ap);
        va_end(ap);
    }
    if ((d->flags & SVC_DEP_OPTIONAL) == 0)
        ok = false;
    svc_health_report(h, d->name, ok, "%s%s%s", why, extra[0] != '\0' ? ": " : "", extra);
}
