#include "svc/pool.h"

#include "svc/alloc.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/time.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct slot {
    struct svc_pool_conn pub; /* first: a lent svc_pool_conn is its slot */
    bool open;
};

struct svc_pool {
    struct svc_pool_config cfg;

    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t cv;  /* a slot was released */
    struct slot *slots;
    struct slot **idle; /* a stack: the last released is lent first */
    int nidle;
    int64_t retry_at; /* svc_now_ms(): no open before */
    int backoff_ms;   /* the next back-off */
};

static void pool_probe(void *ctx)
{
    svc_pool_check(ctx);
}

struct svc_pool *svc_pool_new(const struct svc_pool_config *cfg)
{
    struct svc_pool *p = svc_calloc(1, sizeof(*p));

    p->cfg = *cfg;
    if (p->cfg.size <= 0)
        p->cfg.size = 4;
    if (p->cfg.acquire_timeout_ms <= 0)
        p->cfg.acquire_timeout_ms = 5000;
    if (p->cfg.retry_ms <= 0)
        p->cfg.retry_ms = 500;
    if (p->cfg.retry_max_ms < p->cfg.retry_ms)
        p->cfg.retry_max_ms = p->cfg.retry_ms > 5000 ? p->cfg.retry_ms : 5000;
    p->backoff_ms = p->cfg.retry_ms;
    pthread_mutex_init(&p->mu, NULL);
    svc_cond_init_monotonic(&p->cv);
    p->slots = svc_calloc((size_t)p->cfg.size, sizeof(*p->slots));
    /* An array of pointers. NOLINTNEXTLINE(bugprone-sizeof-expression) */
    p->idle = svc_calloc((size_t)p->cfg.size, sizeof(*p->idle));
    for (int i = p->cfg.size - 1; i >= 0; i--)
        p->idle[p->nidle++] = &p->slots[i];
    if (p->cfg.readiness_probe)
        svc_dep_set_probe(p->cfg.dep, pool_probe, p);
    return p;
}

void svc_pool_free(struct svc_pool *p)
{
    if (p == NULL)
        return;
    if (p->cfg.readiness_probe)
        svc_dep_set_probe(p->cfg.dep, NULL, NULL);
    for (int i = 0; i < p->cfg.size; i++)
        if (p->slots[i].open)
            p->cfg.ops->close(p->cfg.ctx, p->slots[i].pub.conn);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->idle);
    free(p->slots);
    free(p);
}

/* Under the lock: S back on the idle stack, for a waiter. */
static void push_idle(struct svc_pool *p, struct slot *s)
{
    p->idle[p->nidle++] = s;
    pthread_cond_signal(&p->cv);
}

/* After a callback failed with RC: the dependency down, unless the callback said so itself. */
static void tell_down(struct svc_pool *p, int rc, const char *why)
{
    if (why[0] != '\0' || svc_dep_is_up(p->cfg.dep, NULL, 0))
        svc_dep_down(p->cfg.dep, NULL, "%s", why[0] != '\0' ? why : svc_err_title(rc));
}

/* Opens the closed slot S (not idle: the caller holds it) outside the lock. A failure starts
 * (or continues) the back-off and marks the engine down. */
static int open_slot(struct svc_pool *p, struct slot *s)
{
    char why[256] = "";
    int rc = p->cfg.ops->open(p->cfg.ctx, &s->pub.conn, why, sizeof(why));
    int64_t now = svc_now_ms();

    pthread_mutex_lock(&p->mu);
    if (rc == 0) {
        s->open = true;
        p->backoff_ms = p->cfg.retry_ms;
        p->retry_at = 0;
    } else if (now >= p->retry_at) {
        /* Callers that failed together during one round back off once, not once each. */
        p->retry_at = now + p->backoff_ms;
        p->backoff_ms =
            p->backoff_ms * 2 > p->cfg.retry_max_ms ? p->cfg.retry_max_ms : p->backoff_ms * 2;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc == 0)
        svc_dep_up(p->cfg.dep);
    else
        tell_down(p, rc, why);
    return rc;
}

/* Under the lock: the slot to lend among the idle ones, taken off the stack; NULL when there is
 * none idle, or when the one on top needs an open during a back-off and no open one is idle. */
static struct slot *take_idle(struct svc_pool *p, int64_t now)
{
    int k = p->nidle - 1;
    struct slot *s;

    if (p->nidle == 0)
        return NULL;
    if (!p->idle[k]->open && now < p->retry_at) {
        while (k >= 0 && !p->idle[k]->open)
            k--;
        if (k < 0)
            return NULL;
    }
    s = p->idle[k];
    for (int i = k; i < p->nidle - 1; i++)
        p->idle[i] = p->idle[i + 1];
    p->nidle--;
    return s;
}

int svc_pool_acquire(struct svc_pool *p, int64_t deadline_ms, struct svc_pool_conn **out)
{
    int64_t until = deadline_ms > 0 ? deadline_ms : svc_now_ms() + p->cfg.acquire_timeout_ms;
    struct slot *s;
    int rc;

    *out = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && svc_cond_wait_until(&p->cv, &p->mu, until))
        ;
    if (p->nidle == 0) {
        pthread_mutex_unlock(&p->mu);
        svc_log_warn("%s: no free connection by the deadline (pool of %d)",
                     svc_dep_name(p->cfg.dep), p->cfg.size);
        return SVC_EUNAVAILABLE;
    }
    s = take_idle(p, svc_now_ms());
    pthread_mutex_unlock(&p->mu);
    if (s == NULL)
        return SVC_EUNAVAILABLE; /* backing off: the engine was unreachable a moment ago */
    s->pub.fresh = false;
    if (!s->open) {
        rc = open_slot(p, s);
        if (rc != 0) {
            pthread_mutex_lock(&p->mu);
            push_idle(p, s);
            pthread_mutex_unlock(&p->mu);
            return rc;
        }
        s->pub.fresh = true;
    }
    *out = &s->pub;
    return 0;
}

void svc_pool_release(struct svc_pool *p, struct svc_pool_conn *c, bool broken)
{
    struct slot *s = (struct slot *)c;

    if (broken && s->open) {
        p->cfg.ops->close(p->cfg.ctx, s->pub.conn);
        s->pub.conn = NULL;
        s->open = false;
    }
    pthread_mutex_lock(&p->mu);
    push_idle(p, s);
    pthread_mutex_unlock(&p->mu);
}

void svc_pool_check(struct svc_pool *p)
{
    char why[256] = "";
    struct slot *s = NULL;
    bool retry, pinged = false;

    pthread_mutex_lock(&p->mu);
    if (p->nidle > 0)
        s = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);
    if (s == NULL)
        return; /* every connection is busy: how their work goes says how the engine is */
    if (s->open && p->cfg.ops->ping != NULL) {
        int rc = p->cfg.ops->ping(p->cfg.ctx, s->pub.conn, why, sizeof(why));

        pinged = rc == 0;
        if (!pinged) {
            tell_down(p, rc, why);
            p->cfg.ops->close(p->cfg.ctx, s->pub.conn);
            s->pub.conn = NULL;
            s->open = false;
        }
    }
    /* A connection that worked and fails now was most likely cut by an engine restart:
     * reopening it says whether the engine is back. */
    pthread_mutex_lock(&p->mu);
    retry = !s->open && svc_now_ms() >= p->retry_at;
    pthread_mutex_unlock(&p->mu);
    if (retry)
        open_slot(p, s); /* marks the engine up or down */
    else if (pinged)
        svc_dep_up(p->cfg.dep);
    /* Without a ping, an open connection proves nothing: the state stays what its users saw. */
    pthread_mutex_lock(&p->mu);
    push_idle(p, s);
    pthread_mutex_unlock(&p->mu);
}
