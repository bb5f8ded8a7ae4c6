#include "svc/outbox.h"

#include "svc/event.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/time.h"
#include "svc/worker.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The longest single call of a source's wait hook: bounds how late a stop is seen. */
#define WAIT_SLICE_MS 1000

static const char *const outbox_labels[] = {"outbox", NULL};

struct svc_outbox_relay {
    char *name;
    struct svc_producer *producer;
    struct svc_outbox_source src;
    size_t batch_max;
    int poll_ms, backoff_initial_ms, backoff_max_ms, publish_timeout_ms;
    struct svc_worker *worker;
    atomic_bool woken; /* svc_outbox_relay_wake() since the last round */

    /* The worker's thread only. */
    int delay;           /* the current backoff; 0 while rounds succeed */
    int64_t retry_at;    /* no round before this, backing off */
    int64_t idle_until;  /* waiting in the source's wait hook until this */
    int64_t last_gauges; /* 0: never updated */
    bool unavailable_logged;
    struct svc_metric *backlog, *age, *published, *failures;
};

/* The next backoff, from now: the relay waits it out even when woken, since waking it is
 * what every local commit does. */
static int64_t back_off(struct svc_outbox_relay *r)
{
    r->delay = r->delay == 0 ? r->backoff_initial_ms : r->delay * 2;
    if (r->delay > r->backoff_max_ms)
        r->delay = r->backoff_max_ms;
    r->retry_at = svc_now_ms() + r->delay;
    return r->delay;
}

static void update_gauges(struct svc_outbox_relay *r)
{
    const char *values[] = {r->name};
    size_t count = 0;
    double age = 0;
    int rc;

    r->last_gauges = svc_now_ms();
    rc = r->src.backlog(r->src.ctx, &count, &age);
    if (rc != 0)
        return; /* the source logged why; the gauges keep their last values */
    svc_gauge_set(r->backlog, values, (double)count);
    svc_gauge_set(r->age, values, age);
}

/* While a batch is in flight: the gauges keep being refreshed every poll interval, since the
 * wait may last message_timeout_ms (seen: the backlog read 0 for 9 s while 1,000 events piled
 * up behind a batch sent as the broker went away). */
static void gauges_tick(void *arg)
{
    update_gauges(arg);
}

static bool same_key(const struct svc_outbox_event *a, const struct svc_outbox_event *b)
{
    return a->key_len == b->key_len && strcmp(a->topic, b->topic) == 0 &&
           memcmp(a->key, b->key, a->key_len) == 0;
}

/*
 * Which acknowledged events may be marked: all of them, except those whose key had an earlier
 * event in the batch that was not acknowledged. Marking those would let the failed one be
 * published again after them, out of order; left pending, they follow it again instead.
 * Fills MARK and returns how many.
 */
static size_t markable(struct svc_outbox_event *events, const struct svc_kafka_msg *msgs, size_t n,
                       struct svc_outbox_event **mark)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        bool blocked = false;

        if (msgs[i].result != 0)
            continue;
        for (size_t j = 0; j < i && !blocked && events[i].key != NULL; j++)
            blocked =
                msgs[j].result != 0 && events[j].key != NULL && same_key(&events[i], &events[j]);
        if (!blocked)
            mark[m++] = &events[i];
    }
    return m;
}

/* One round: fetch, publish, mark. Returns 0 or the first error; *FULL tells whether the
 * batch was full (more may be pending at once). */
/* What every outbox event is (struct svc_outbox_event: a rendered envelope), said to
 * consumers the way svc_producer_publish() says it. */
static const char ce_type[] = SVC_EVENT_CONTENT_TYPE;
static const struct svc_kafka_header ce_header = {"content-type", ce_type, sizeof(ce_type) - 1};

static int relay_round(struct svc_outbox_relay *r, bool *full)
{
    const char *values[] = {r->name};
    struct svc_outbox_event *events = NULL, **mark;
    struct svc_kafka_msg *msgs;
    size_t n, m, acked = 0;
    int rc, first_err = 0, fetched;

    *full = false;
    fetched = r->src.fetch(r->src.ctx, r->batch_max, &events);
    if (fetched < 0)
        return fetched;
    n = (size_t)fetched > r->batch_max ? r->batch_max : (size_t)fetched;
    *full = n == r->batch_max;
    msgs = svc_calloc(n, sizeof(*msgs));
    mark = svc_calloc(n, sizeof(*mark)); /* NOLINT(bugprone-sizeof-expression): pointers */
    for (size_t i = 0; i < n; i++) {
        msgs[i].topic = events[i].topic;
        msgs[i].key = events[i].key;
        msgs[i].key_len = events[i].key_len;
        msgs[i].value = events[i].value;
        msgs[i].value_len = events[i].value_len;
        msgs[i].headers = &ce_header;
        msgs[i].nheaders = 1;
    }
    if (n > 0)
        svc_producer_send_wait_tick(r->producer, msgs, n,
                                    r->publish_timeout_ms > 0 ? r->publish_timeout_ms : -1,
                                    r->poll_ms, gauges_tick, r);
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].result == 0)
            acked++;
        else if (first_err == 0)
            first_err = msgs[i].result;
    }
    m = markable(events, msgs, n, mark);
    rc = r->src.mark_published(r->src.ctx, mark, m);
    if (rc == 0) {
        svc_counter_add(r->published, values, (double)m);
    } else {
        /* Published but not marked: they go out again next round (at least once). */
        svc_log_warn("outbox '%s': %zu published events not marked (%s), they will be "
                     "published again",
                     r->name, m, svc_err_name(rc));
    }
    if (first_err != 0) {
        svc_counter_add(r->failures, values, (double)(n - acked));
        svc_log_warn("outbox '%s': %zu of %zu events not published (%s), first '%s'", r->name,
                     n - acked, n, svc_err_name(first_err), events[0].id);
    }
    if (r->src.release != NULL)
        r->src.release(r->src.ctx, events, (size_t)fetched);
    free(mark);
    free(msgs);
    return first_err != 0 ? first_err : rc;
}

/* WAIT_MS, or less when the gauges are due sooner. */
static int64_t until_gauges(const struct svc_outbox_relay *r, int64_t wait_ms)
{
    int64_t due = r->last_gauges + r->poll_ms - svc_now_ms();

    if (due < 1)
        due = 1;
    return wait_ms < due ? wait_ms : due;
}

/*
 * One step of the relay's worker: a round when one is due, or a slice of the wait for new
 * events. Returns how long the worker waits before the next step (a wake cuts that short).
 */
static int64_t relay_step(void *arg)
{
    struct svc_outbox_relay *r = arg;
    bool woken = atomic_exchange(&r->woken, false), full;
    int64_t now = svc_now_ms(), left;
    int rc;

    /* The gauges are at most a poll interval old, whatever the relay is doing: backing off
     * (up to backoff_max_ms), waiting for events, or publishing (gauges_tick). */
    if (r->last_gauges == 0 || now - r->last_gauges >= r->poll_ms)
        update_gauges(r);
    if (now < r->retry_at)
        return until_gauges(r, r->retry_at - now);
    if (now < r->idle_until && !woken) {
        /* Idle, with a source that can say when events arrive: wait for it in slices of at
         * most WAIT_SLICE_MS, so that the worker sees a stop or a wake-up in between. */
        left = r->idle_until - now;
        rc = r->src.wait(r->src.ctx, left < WAIT_SLICE_MS ? (int)left : WAIT_SLICE_MS);
        if (rc == 0)
            return 0;
        r->idle_until = 0;
        if (rc < 0)
            return left; /* the source logged why; poll instead */
    }
    r->idle_until = 0;
    if (!svc_producer_available(r->producer)) {
        if (!r->unavailable_logged)
            svc_log_warn("outbox '%s': kafka unavailable, relay backing off", r->name);
        r->unavailable_logged = true;
        return until_gauges(r, back_off(r));
    }
    if (r->unavailable_logged)
        svc_log_info("outbox '%s': kafka available again, relay resumed", r->name);
    r->unavailable_logged = false;
    rc = relay_round(r, &full);
    update_gauges(r);
    if (rc != 0)
        return until_gauges(r, back_off(r));
    r->delay = 0;
    if (full)
        return 0;
    if (r->src.wait == NULL)
        return r->poll_ms;
    r->idle_until = svc_now_ms() + r->poll_ms;
    return 0;
}

int svc_outbox_relay_new(const struct svc_outbox_config *cfg, struct svc_outbox_relay **out)
{
    const struct svc_outbox_source *s = &cfg->source;
    struct svc_outbox_relay *r;

    *out = NULL;
    if (cfg->name == NULL || cfg->name[0] == '\0' || cfg->producer == NULL || s->fetch == NULL ||
        s->mark_published == NULL || s->backlog == NULL) {
        svc_log_error("outbox relay needs a name, a producer, and fetch, mark_published and "
                      "backlog hooks");
        return SVC_EINVAL;
    }
    r = svc_calloc(1, sizeof(*r));
    r->name = svc_strdup(cfg->name);
    r->producer = cfg->producer;
    r->src = *s;
    r->batch_max = cfg->batch_max > 0 ? cfg->batch_max : 100;
    r->poll_ms = cfg->poll_interval_ms > 0 ? cfg->poll_interval_ms : 1000;
    r->backoff_initial_ms = cfg->backoff_initial_ms > 0 ? cfg->backoff_initial_ms : 100;
    r->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 10000;
    if (r->backoff_max_ms < r->backoff_initial_ms)
        r->backoff_max_ms = r->backoff_initial_ms;
    r->publish_timeout_ms = cfg->publish_timeout_ms;
    r->worker = svc_worker_new("outbox relay", r->poll_ms, relay_step, r);
    r->backlog = svc_gauge_new("outbox_backlog", "Outbox events not yet published", outbox_labels);
    r->age =
        svc_gauge_new("outbox_oldest_age_seconds",
                      "Age of the oldest outbox event not yet published (0: none)", outbox_labels);
    r->published = svc_counter_new("outbox_published_total", "Outbox events published and marked",
                                   outbox_labels);
    r->failures =
        svc_counter_new("outbox_publish_failures_total",
                        "Outbox events whose publication failed (to be retried)", outbox_labels);
    *out = r;
    return 0;
}

int svc_outbox_relay_start(struct svc_outbox_relay *r)
{
    return svc_worker_start(r->worker);
}

int svc_outbox_relay_run(const struct svc_outbox_config *cfg, struct svc_outbox_relay **out)
{
    int rc = svc_outbox_relay_new(cfg, out);

    return rc != 0 ? rc : svc_outbox_relay_start(*out);
}

void svc_outbox_relay_wake(struct svc_outbox_relay *r)
{
    atomic_store(&r->woken, true);
    svc_worker_wake(r->worker);
}

void svc_outbox_relay_stop(struct svc_outbox_relay *r)
{
    svc_worker_stop(r->worker);
}

void svc_outbox_relay_free(struct svc_outbox_relay *r)
{
    if (r == NULL)
        return;
    svc_worker_free(r->worker);
    free(r->name);
    free(r);
}
