#include "svc/worker.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/time.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct svc_worker {
    char *name;
    int64_t interval_ms;
    svc_worker_fn fn;
    void *ctx;

    pthread_t thread;
    bool started, joined; /* by the owner's thread only */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, woken; /* under mu */
};

struct svc_worker *svc_worker_new(const char *name, int64_t interval_ms, svc_worker_fn fn,
                                  void *ctx)
{
    struct svc_worker *w = svc_calloc(1, sizeof(*w));

    w->name = svc_strdup(name);
    w->interval_ms = interval_ms > 0 ? interval_ms : 1;
    w->fn = fn;
    w->ctx = ctx;
    pthread_mutex_init(&w->mu, NULL);
    svc_cond_init_monotonic(&w->cv);
    return w;
}

static void *worker_thread(void *arg)
{
    struct svc_worker *w = arg;
    int64_t delay, deadline;

    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        /* A wake asked for before this call is answered by this call. */
        w->woken = false;
        pthread_mutex_unlock(&w->mu);
        delay = w->fn(w->ctx);
        if (delay < 0)
            delay = w->interval_ms;
        deadline = svc_now_ms() + delay;
        pthread_mutex_lock(&w->mu);
        while (!w->stop && !w->woken && svc_cond_wait_until(&w->cv, &w->mu, deadline))
            ;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int svc_worker_start(struct svc_worker *w)
{
    int err;

    if (w->started)
        return 0;
    err = pthread_create(&w->thread, NULL, worker_thread, w);
    if (err != 0) {
        svc_log_error("worker '%s' not started: %s", w->name, strerror(err));
        return SVC_EINTERNAL;
    }
    w->started = true;
    return 0;
}

void svc_worker_wake(struct svc_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->woken = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool svc_worker_stopping(struct svc_worker *w)
{
    bool stop;

    pthread_mutex_lock(&w->mu);
    stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

void svc_worker_stop(struct svc_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started && !w->joined) {
        pthread_join(w->thread, NULL);
        w->joined = true;
    }
}

void svc_worker_free(struct svc_worker *w)
{
    if (w == NULL)
        return;
    svc_worker_stop(w);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->name);
    free(w);
}
