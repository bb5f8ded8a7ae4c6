/*
 * pool.h: a bounded pool of connections to one engine, whatever the driver.
 *
 * The driver is three callbacks: open a connection, close it, and optionally ping it. A
 * connection is a void pointer to the pool: a PGconn wrapper, a mongoc_client_t, a
 * redisContext, a CURL easy handle. The pool holds at most SIZE of them, opens them when first
 * needed, lends each to one caller at a time, and feeds the engine's dependency state
 * (dep.h): an open or a ping that fails marks it down, one that succeeds marks it up.
 *
 *   struct svc_pool_conn *c;
 *   int rc = svc_pool_acquire(pool, 0, &c);        // 0: wait up to acquire_timeout_ms
 *   if (rc != 0)
 *       return rc;                                 // SVC_EUNAVAILABLE: a 503 for the client
 *   rc = query(c->conn, ...);
 *   svc_pool_release(pool, c, rc == SVC_EUNAVAILABLE); // broken: closed, reopened when next lent
 *
 * Reconnecting: a connection released as broken is closed, and reopened by the acquire that
 * next takes it, at once. An open that fails makes the pool back off: until retry_ms later
 * (doubling with each failure up to retry_max_ms, back to retry_ms after a success) no
 * connection is opened, and an acquire that would need one answers SVC_EUNAVAILABLE at once,
 * so an engine that is away costs callers no waiting. Connections are lent last-released
 * first, so one released as broken is the next one lent, and reopened.
 *
 * Thread-safe. The callbacks run on the calling thread, outside the pool's lock.
 */
#ifndef SVC_POOL_H
#define SVC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct svc_dep;
struct svc_pool;

/* A connection lent by svc_pool_acquire(), until svc_pool_release(). Owned by the pool. */
struct svc_pool_conn {
    void *conn; /* what the open callback made */
    bool fresh; /* opened by this acquire: a failure on it is no stale connection's */
};

/*
 * The driver. Errors are SVC_E* codes; an engine that cannot be reached is SVC_EUNAVAILABLE.
 * A callback that fails either writes the reason, one line, into WHY (CAP bytes), and the pool
 * marks the dependency down with it (logged there, rate-limited), or leaves WHY empty when it
 * has marked the dependency down itself (a store whose one error translation does that); when
 * WHY is empty and the dependency still up, the pool marks it down with the error's title.
 */
struct svc_pool_ops {
    /* Opens one connection into *CONN: 0, or an error. */
    int (*open)(void *ctx, void **conn, char *why, size_t cap);
    /* Closes CONN, which open made. */
    void (*close)(void *ctx, void *conn);
    /* Optional: 0 when CONN still answers, else an error (CONN is then closed). Used by
     * svc_pool_check() only, never before lending a connection. */
    int (*ping)(void *ctx, void *conn, char *why, size_t cap);
};

/* A zero field takes the default in brackets. */
struct svc_pool_config {
    const struct svc_pool_ops *ops;
    void *ctx;              /* handed to every callback */
    struct svc_dep *dep;    /* the engine's state, fed by the pool (not owned; required) */
    int size;               /* connections at most [4] */
    int acquire_timeout_ms; /* the wait of an acquire with no deadline of its own [5000] */
    int retry_ms;           /* the first back-off after a failed open [500] */
    int retry_max_ms;       /* the longest back-off [5000] */
    /* Makes svc_pool_check() the dependency's /readyz probe (svc_dep_set_probe). */
    bool readiness_probe;
};

/* A pool with no connection open yet (the first acquire opens one). Free with svc_pool_free(). */
struct svc_pool *svc_pool_new(const struct svc_pool_config *cfg);

/* Closes every connection; all must have been released. NULL is a no-op. */
void svc_pool_free(struct svc_pool *p);

/*
 * Lends a connection into *OUT, opening it when it is not open, waiting until DEADLINE_MS (on
 * svc_now_ms()'s clock; 0: acquire_timeout_ms from now) for one to be free. Returns 0, or
 *   SVC_EUNAVAILABLE  none was free by the deadline (logged), or the engine cannot be reached:
 *                     the open failed, or the pool is backing off after a failed open
 *   another error     the open callback's
 */
int svc_pool_acquire(struct svc_pool *p, int64_t deadline_ms, struct svc_pool_conn **out);

/* Gives C back. BROKEN: the connection is closed now, and reopened when next lent. */
void svc_pool_release(struct svc_pool *p, struct svc_pool_conn *c, bool broken);

/*
 * Checks the engine for /readyz without waiting: borrows an idle connection (none idle: the
 * busy ones will tell), pings it (with a ping callback), and when it is closed or the ping
 * failed opens it unless backing off. The dependency state is updated by what it finds.
 */
void svc_pool_check(struct svc_pool *p);

#endif
