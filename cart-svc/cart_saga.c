/*
 * cart_saga.c: the checkout saga, orchestrated by cart-svc, and the worker that runs it.
 *
 *   PENDING --RESERVE--> RESERVED --CHARGE--> CHARGED --COMMIT--> PLACED
 *      |                    |                    |
 *      | refused            | refused            | refused (the reservation expired)
 *      v                    v                    v
 *    FAILED           COMPENSATING: REFUND (if charged), RELEASE (if reserved) --> FAILED
 *
 * The saga keeps no state of its own: the order's log in Redis is the state. Each round reads
 * the order again and does the one step its status calls for, logging the step before the
 * remote call and its outcome after, so a process that dies anywhere leaves an order a later
 * round (this process's worker, or another replica's) can take up: every remote call is
 * idempotent by the order id, and repeating one that already took effect changes nothing.
 *
 * A step whose dependency does not answer is logged RETRYING and tried again later, with a
 * growing pause (so an outage does not grow the log without bound). RESERVE and CHARGE give
 * up after RETRIES_MAX attempts or SAGA_GIVE_UP and compensate; COMMIT never gives up: once
 * the money is taken, going forward is the better outcome, and product-svc's own expiry of the
 * reservation bounds it (a commit of an expired reservation is refused, and then refunded).
 * Compensations are retried until they succeed: they must happen.
 */
#include "cart_svc.h"

#include "svc/log.h"
#include "svc/time.h"
#include "svc/worker.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RETRIES_MAX     20   /* attempts of RESERVE or CHARGE without an answer */
#define BACKOFF_BASE_MS 1000 /* pause after the first RETRYING, doubled each time */
#define BACKOFF_MAX_MS  (300 * INT64_C(1000)) /* the longest pause between two attempts */
#define ROUNDS_MAX      16                    /* steps one cart_saga_run() takes at most */
#define OPEN_MAX        1000                  /* orders one resume round looks at */

const char *cart_status_name(enum cart_status s)
{
    switch (s) {
    case CART_PENDING:
        return "pending";
    case CART_RESERVED:
        return "reserved";
    case CART_CHARGED:
        return "charged";
    case CART_PLACED:
        return "placed";
    case CART_COMPENSATING:
        return "compensating";
    case CART_FAILED:
        return "failed";
    }
    return "unknown";
}

const char *cart_step_name(enum cart_step s)
{
    switch (s) {
    case CART_STEP_RESERVE:
        return "reserve";
    case CART_STEP_CHARGE:
        return "charge";
    case CART_STEP_COMMIT:
        return "commit";
    case CART_STEP_RELEASE:
        return "release";
    case CART_STEP_REFUND:
        return "refund";
    }
    return "unknown";
}

const char *cart_step_state_name(enum cart_step_state s)
{
    switch (s) {
    case CART_STEP_STARTED:
        return "started";
    case CART_STEP_SUCCEEDED:
        return "succeeded";
    case CART_STEP_FAILED:
        return "failed";
    case CART_STEP_RETRYING:
        return "retrying";
    }
    return "unknown";
}

/* ---- the log, read --------------------------------------------------------------------------- */

/* What an order's log says of one step. */
struct step_view {
    bool started, succeeded;
    int retries;               /* RETRYING entries */
    enum cart_step_state last; /* of the last entry, when STARTED */
    int64_t first_at_ms, last_at_ms;
    const char *retry_detail; /* of the last RETRYING entry */
};

static struct step_view view_of(const struct cart_order *o, enum cart_step step)
{
    struct step_view v = {0};

    for (size_t i = 0; i < o->nlog; i++) {
        const struct cart_log_entry *e = &o->log[i];

        if (e->step != step)
            continue;
        if (!v.started)
            v.first_at_ms = e->at_ms;
        v.started = true;
        v.last = e->state;
        v.last_at_ms = e->at_ms;
        if (e->state == CART_STEP_SUCCEEDED)
            v.succeeded = true;
        else if (e->state == CART_STEP_RETRYING) {
            v.retries++;
            v.retry_detail = e->detail;
        }
    }
    return v;
}

/* Whether the step may have taken effect at the other owner, so that its compensation is
 * due: it succeeded, or an attempt got no answer (a timeout may hide a success), or the last
 * attempt never logged its outcome (a crash during the call). A step only ever refused took
 * nothing. Compensating one that took nothing is harmless (the other owner answers 404), but
 * would show a user a refund of a payment never made. */
static bool may_have_happened(const struct step_view *v)
{
    return v->started && (v->succeeded || v->retries > 0 || v->last == CART_STEP_STARTED);
}

/* The pause before attempt N + 1 of a step that got no answer N times. */
static int64_t backoff_ms(int retries)
{
    int64_t ms = BACKOFF_BASE_MS;

    for (int i = 1; i < retries && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Whether the step is in its pause after a RETRYING: the caller comes back later. */
static bool pausing(const struct step_view *v)
{
    return v->started && v->last == CART_STEP_RETRYING &&
           svc_wall_ms() - v->last_at_ms < backoff_ms(v->retries);
}

/* ---- the log, written ------------------------------------------------------------------------ */

struct saga {
    const struct cart_store *st;
    const struct cart_remote *rm;
    int fault_after;
    int64_t give_up_ms; /* RESERVE or CHARGE without an answer this long since its first try */
};

/* Appends STEP STATE (DETAIL) to the log of O and, unless STATUS is -1, sets the status. */
static int logstep(const struct saga *sg, const struct cart_order *o, enum cart_step step,
                   enum cart_step_state state, const char *detail, int status,
                   const char *failed_step, const char *reason)
{
    struct cart_log_entry e = {
        .step = step,
        .state = state,
        .at_ms = svc_wall_ms(),
        .detail = detail,
    };
    int rc = sg->st->order_log(sg->st->ctx, o->id, &e, status, failed_step, reason, NULL);

    if (rc != 0 && rc != SVC_ECONFLICT)
        svc_log_warn("order '%s': cannot log %s %s: %s", o->id, cart_step_name(step),
                     cart_step_state_name(state), svc_err_title(rc));
    return rc;
}

/* Whether order O is still in the status it had when its step began. Another replica running
 * the same order may have moved it meanwhile: then this round's outcome is not logged (the
 * other's is), and the next round starts from what the log says now. */
static bool still(const struct saga *sg, const struct cart_order *o)
{
    struct svc_arena *a = svc_arena_new();
    struct cart_order now;
    bool same;

    memset(&now, 0, sizeof(now));
    same = sg->st->order_get(sg->st->ctx, a, o->id, &now) == 0 && now.status == o->status;
    svc_arena_free(a);
    return same;
}

static enum cart_remote_result call(const struct saga *sg, const struct cart_order *o,
                                    enum cart_step step, char *reason, size_t cap)
{
    const struct cart_remote *rm = sg->rm;

    switch (step) {
    case CART_STEP_RESERVE:
        return rm->reserve(rm->ctx, o, reason, cap);
    case CART_STEP_CHARGE:
        return rm->charge(rm->ctx, o, reason, cap);
    case CART_STEP_COMMIT:
        return rm->commit(rm->ctx, o->id, reason, cap);
    case CART_STEP_RELEASE:
        return rm->release(rm->ctx, o->id, reason, cap);
    case CART_STEP_REFUND:
        return rm->refund(rm->ctx, o->id, reason, cap);
    }
    return CART_REMOTE_RETRY;
}

/* ---- the steps ------------------------------------------------------------------------------- */

/*
 * One forward step of O (RESERVE, CHARGE or COMMIT), leading to NEXT on success. 0 when the
 * order moved (the caller reads it again), SVC_EAGAIN when the step waits for a dependency,
 * or the store's error.
 */
static int forward(const struct saga *sg, const struct cart_order *o, enum cart_step step,
                   enum cart_status next)
{
    struct step_view v = view_of(o, step);
    char reason[CART_REASON_MAX + 1] = "";
    enum cart_remote_result r;
    int rc;

    if (step != CART_STEP_COMMIT && v.retries > 0 &&
        (v.retries >= RETRIES_MAX || svc_wall_ms() - v.first_at_ms >= sg->give_up_ms)) {
        const char *why = v.retry_detail != NULL ? v.retry_detail : "no answer in time";

        svc_log_warn("order '%s': giving up %s after %d attempts without an answer: %s", o->id,
                     cart_step_name(step), v.retries, why);
        return logstep(sg, o, step, CART_STEP_FAILED, why, CART_COMPENSATING, NULL, NULL);
    }
    if (pausing(&v))
        return SVC_EAGAIN;
    if ((rc = logstep(sg, o, step, CART_STEP_STARTED, NULL, -1, NULL, NULL)) != 0)
        return rc;
    r = call(sg, o, step, reason, sizeof(reason));
    if (!still(sg, o))
        return 0;
    switch (r) {
    case CART_REMOTE_OK:
        rc = logstep(sg, o, step, CART_STEP_SUCCEEDED, NULL, (int)next, NULL, NULL);
        if (rc == 0 && sg->fault_after == (int)step) {
            svc_log_error("order '%s': FAULT_AFTER_STEP=%s: aborting after the step succeeded",
                          o->id, cart_step_name(step));
            abort();
        }
        return rc;
    case CART_REMOTE_REFUSED:
        svc_log_info("order '%s': %s refused: %s", o->id, cart_step_name(step), reason);
        /* A refused RESERVE took nothing: the order fails at once. Later steps hold what the
         * earlier ones took: compensate. */
        if (step == CART_STEP_RESERVE && !may_have_happened(&v))
            return logstep(sg, o, step, CART_STEP_FAILED, reason, CART_FAILED, cart_step_name(step),
                           reason);
        return logstep(sg, o, step, CART_STEP_FAILED, reason, CART_COMPENSATING, NULL, NULL);
    case CART_REMOTE_RETRY:
        rc = logstep(sg, o, step, CART_STEP_RETRYING, reason, -1, NULL, NULL);
        return rc != 0 ? rc : SVC_EAGAIN;
    }
    return SVC_EINTERNAL;
}

/* The forward step that failed, and why: the last FAILED entry of RESERVE, CHARGE or COMMIT. */
static const struct cart_log_entry *failure_of(const struct cart_order *o)
{
    for (size_t i = o->nlog; i > 0; i--) {
        const struct cart_log_entry *e = &o->log[i - 1];

        if (e->state == CART_STEP_FAILED &&
            (e->step == CART_STEP_RESERVE || e->step == CART_STEP_CHARGE ||
             e->step == CART_STEP_COMMIT))
            return e;
    }
    return NULL;
}

/*
 * COMPENSATING: undoes, in reverse, what the log says may have happened (REFUND, then
 * RELEASE), one compensation per call, each retried until it succeeds; the last one also sets
 * the order FAILED with the forward step that failed and its reason.
 */
static int compensate(const struct saga *sg, const struct cart_order *o)
{
    struct step_view charged = view_of(o, CART_STEP_CHARGE);
    struct step_view reserved = view_of(o, CART_STEP_RESERVE);
    struct step_view refunded = view_of(o, CART_STEP_REFUND);
    struct step_view released = view_of(o, CART_STEP_RELEASE);
    bool refund_due =
        may_have_happened(&charged) && !refunded.succeeded && refunded.last != CART_STEP_FAILED;
    bool release_due =
        may_have_happened(&reserved) && !released.succeeded && released.last != CART_STEP_FAILED;
    const struct cart_log_entry *f = failure_of(o);
    const char *failed_step = cart_step_name(f != NULL ? f->step : CART_STEP_RESERVE);
    const char *why = f != NULL && f->detail != NULL ? f->detail : "the checkout failed";
    char answer[CART_REASON_MAX + 1] = "";
    const struct step_view *v;
    enum cart_remote_result r;
    enum cart_step step;
    bool last;
    int rc;

    if (!refund_due && !release_due) {
        /* Nothing was left to undo (or what was could not be): the failure itself closes. */
        return logstep(sg, o, f != NULL ? f->step : CART_STEP_RESERVE, CART_STEP_FAILED, why,
                       CART_FAILED, failed_step, why);
    }
    step = refund_due ? CART_STEP_REFUND : CART_STEP_RELEASE;
    v = refund_due ? &refunded : &released;
    last = !(refund_due && release_due);
    if (pausing(v))
        return SVC_EAGAIN;
    if ((rc = logstep(sg, o, step, CART_STEP_STARTED, NULL, -1, NULL, NULL)) != 0)
        return rc;
    r = call(sg, o, step, answer, sizeof(answer));
    if (!still(sg, o))
        return 0;
    switch (r) {
    case CART_REMOTE_OK:
        return logstep(sg, o, step, CART_STEP_SUCCEEDED, NULL, last ? CART_FAILED : -1, failed_step,
                       why);
    case CART_REMOTE_REFUSED:
        /* A compensation the other owner refuses (releasing a committed reservation) means
         * the log and that owner disagree: a bug. Say so loudly, and close the order rather
         * than retry a refusal forever. */
        svc_log_error("order '%s': compensation %s refused: %s: the order is closed FAILED "
                      "and needs a look",
                      o->id, cart_step_name(step), answer);
        return logstep(sg, o, step, CART_STEP_FAILED, answer, last ? CART_FAILED : -1, failed_step,
                       why);
    case CART_REMOTE_RETRY:
        rc = logstep(sg, o, step, CART_STEP_RETRYING, answer, -1, NULL, NULL);
        return rc != 0 ? rc : SVC_EAGAIN;
    }
    return SVC_EINTERNAL;
}

int cart_saga_run(const struct cart_store *st, const struct cart_remote *rm, const char *order_id,
                  int fault_after, int64_t give_up_ms)
{
    const struct saga sg = {st, rm, fault_after, give_up_ms};
    int rc = 0;

    /* Each round moves the order one step (or returns): a saga has at most five. The bound
     * only guards against a store that does not keep what it is told. */
    for (int round = 0; round < ROUNDS_MAX; round++) {
        struct svc_arena *a = svc_arena_new();
        struct cart_order o;

        memset(&o, 0, sizeof(o));
        rc = st->order_get(st->ctx, a, order_id, &o);
        if (rc == 0) {
            switch (o.status) {
            case CART_PLACED:
            case CART_FAILED:
                svc_arena_free(a);
                return 0;
            case CART_PENDING:
                rc = forward(&sg, &o, CART_STEP_RESERVE, CART_RESERVED);
                break;
            case CART_RESERVED:
                rc = forward(&sg, &o, CART_STEP_CHARGE, CART_CHARGED);
                break;
            case CART_CHARGED:
                rc = forward(&sg, &o, CART_STEP_COMMIT, CART_PLACED);
                break;
            case CART_COMPENSATING:
                rc = compensate(&sg, &o);
                break;
            }
        }
        svc_arena_free(a);
        /* SVC_ECONFLICT: another replica finished the order first; the next round sees it. */
        if (rc != 0 && rc != SVC_ECONFLICT)
            return rc;
    }
    svc_log_error("order '%s': still open after %d saga steps", order_id, ROUNDS_MAX);
    return SVC_EAGAIN;
}

/* ---- the worker ------------------------------------------------------------------------------ */

/* One round's orders, shared by its threads: each takes the next order not yet taken. */
struct round {
    struct cart_svc *s;
    char (*ids)[CART_ID_LEN + 1];
    size_t n, next;
    pthread_mutex_t mu;
};

static void *run_orders(void *arg)
{
    struct round *r = arg;

    for (;;) {
        size_t i;
        int rc;

        pthread_mutex_lock(&r->mu);
        i = r->next++;
        pthread_mutex_unlock(&r->mu);
        if (i >= r->n || svc_worker_stopping(r->s->saga))
            break;
        rc = cart_saga_run(&r->s->app.store, &r->s->app.remote, r->ids[i], r->s->fault_after,
                           r->s->cfg.saga_give_up_ms);
        if (rc != 0 && rc != SVC_EAGAIN)
            svc_log_warn("saga: order '%s': %s", r->ids[i], svc_err_title(rc));
    }
    return NULL;
}

/*
 * One round: every open order, forward or back as far as it goes now, SAGA_THREADS at a time
 * (each order waits on two other services, so one thread would queue every checkout behind
 * the one before it). Each order is run by one thread of the round; a round starts when the
 * previous one is over, so no order is ever run twice at once by this process.
 */
static int64_t resume(void *svc)
{
    struct cart_svc *s = svc;
    struct svc_arena *a = svc_arena_new();
    struct round r = {.s = s};
    pthread_t threads[SAGA_THREADS_MAX];
    size_t nthreads, started = 0;
    int rc;

    rc = s->app.store.orders_open(s->app.store.ctx, a, OPEN_MAX, &r.ids, &r.n);
    if (rc != 0) {
        svc_log_warn("saga: cannot list open orders: %s", svc_err_title(rc));
        svc_arena_free(a);
        return SVC_WORKER_INTERVAL;
    }
    pthread_mutex_init(&r.mu, NULL);
    nthreads = (size_t)s->cfg.saga_threads < r.n ? (size_t)s->cfg.saga_threads : r.n;
    if (nthreads > SAGA_THREADS_MAX)
        nthreads = SAGA_THREADS_MAX;
    /* This thread is one of them; the others are started for the round (and a failure to
     * start one only makes the round slower). */
    while (started + 1 < nthreads && pthread_create(&threads[started], NULL, run_orders, &r) == 0)
        started++;
    run_orders(&r);
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&r.mu);
    svc_arena_free(a);
    return SVC_WORKER_INTERVAL;
}

/* The checkout handler's kick: the worker runs every open order now, this one among them. */
static void kick(void *ctx, const char *order_id)
{
    struct cart_svc *s = ctx;

    (void)order_id;
    svc_worker_wake(s->saga);
}

static int parse_fault(const char *v, int *out)
{
    static const enum cart_step steps[] = {CART_STEP_RESERVE, CART_STEP_CHARGE, CART_STEP_COMMIT};

    *out = -1;
    if (v == NULL || v[0] == '\0')
        return 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (strcmp(v, cart_step_name(steps[i])) == 0) {
            *out = (int)steps[i];
            return 0;
        }
    svc_log_error("FAULT_AFTER_STEP '%s' is not a saga step: use reserve, charge, commit or "
                  "leave it empty",
                  v);
    return SVC_EINVAL;
}

int cart_saga_init(void *svc)
{
    struct cart_svc *s = svc;
    int rc;

    if ((rc = parse_fault(s->cfg.fault_after, &s->fault_after)) != 0)
        return rc;
    if (s->fault_after >= 0)
        svc_log_warn("FAULT_AFTER_STEP=%s: the process aborts after every such step (tests "
                     "and workshops only)",
                     s->cfg.fault_after);
    s->saga = svc_worker_new("saga", s->cfg.saga_resume_ms, resume, s);
    s->app.kick = kick;
    s->app.kick_ctx = s;
    return svc_worker_start(s->saga);
}

void cart_saga_fini(void *svc)
{
    struct cart_svc *s = svc;

    s->app.kick = NULL;
    s->app.kick_ctx = NULL;
    svc_worker_free(s->saga);
    s->saga = NULL;
}
