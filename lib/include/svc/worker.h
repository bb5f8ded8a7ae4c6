/*
 * worker.h: a periodic worker, the one background loop of the platform.
 *
 * A thread that calls a function, waits, and calls it again: the outbox relay, a retention
 * sweep, and next saga recovery and batch flushes. The function says how long to wait before
 * its next call (or takes the worker's interval); svc_worker_wake() cuts a wait short, and
 * svc_worker_stop() ends a wait at once, so a worker never sleeps through a stop: a stop waits
 * only for the call in progress, if any, to return.
 *
 *     static int64_t sweep(void *ctx) { ...; return SVC_WORKER_INTERVAL; }
 *
 *     struct svc_worker *w = svc_worker_new("retention sweep", 3600000, sweep, app);
 *     svc_worker_start(w);     (first call at once)
 *     ...
 *     svc_worker_free(w);      (stops, joins, frees)
 */
#ifndef SVC_WORKER_H
#define SVC_WORKER_H

#include <stdbool.h>
#include <stdint.h>

/* What a worker function returns to wait for the worker's own interval. */
#define SVC_WORKER_INTERVAL (-1)

/*
 * The work, called on the worker's thread, never twice at once. Returns how long to wait
 * before the next call in milliseconds: 0 calls again at once (after checking for a stop),
 * SVC_WORKER_INTERVAL (or any negative) waits the interval. A wait ends early on a wake or a
 * stop. A call that itself blocks should do so in short slices and return, so a stop is seen.
 */
typedef int64_t (*svc_worker_fn)(void *ctx);

struct svc_worker;

/* A worker (not started) named NAME (for logs; copied) calling FN(CTX) every INTERVAL_MS (at
 * least 1). Free with svc_worker_free(). Aborts on out-of-memory like every allocation. */
struct svc_worker *svc_worker_new(const char *name, int64_t interval_ms, svc_worker_fn fn,
                                  void *ctx);

/* Starts the thread; the first call is at once. 0, or SVC_EINTERNAL (logged) when the thread
 * cannot be created. Starting a started worker is a no-op. */
int svc_worker_start(struct svc_worker *w);

/* Cuts the current wait short, or, when a call is in progress, makes the wait after it end at
 * once. Cheap; safe from any thread, and before a start. */
void svc_worker_wake(struct svc_worker *w);

/* Whether a stop was asked for: a long call may check it between its steps. */
bool svc_worker_stopping(struct svc_worker *w);

/* Stops: no further call starts; the call in progress, if any, finishes; the thread is joined.
 * Idempotent; safe without a start, and with W NULL. Not from the worker's own function. */
void svc_worker_stop(struct svc_worker *w);

/* Stops (see above) and frees. NULL is a no-op. */
void svc_worker_free(struct svc_worker *w);

#endif
