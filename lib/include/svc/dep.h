/*
 * dep.h: the state of one dependency of a service (a database, Kafka), for its logs and /readyz.
 *
 * A dependency is up or down, and when down it knows why. Whoever talks to it (a store's error
 * translation, a connection pool, the Kafka producer) says what it saw: svc_dep_up() after a
 * success, svc_dep_down() when it could not be reached. The state logs its own transitions:
 *
 *   {"level":"warn","msg":"postgres unavailable: connect: connection refused"}
 *   {"level":"info","msg":"postgres reachable again"}
 *
 * While down, the warning is repeated at most every SVC_DEP_WARN_MS, with the number of
 * warnings left out, so an outage under load logs a few lines, not one per request. /readyz
 * reads the state from memory (svc_dep_report), after an optional probe that may refresh it.
 *
 * All functions are thread-safe.
 */
#ifndef SVC_DEP_H
#define SVC_DEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct svc_health;

/* A warning of one kind repeats at most this often. */
#define SVC_DEP_WARN_MS 5000

/*
 * A rate limit for a warning that may repeat quickly: svc_ratelimit_due() answers true at most
 * once per EVERY_MS and then gives the number of calls it answered false since. Not
 * thread-safe: callers serialise (a dependency state has one under its lock).
 */
struct svc_ratelimit {
    int64_t every_ms;
    int64_t last_ms;     /* svc_now_ms() of the last true; 0 before the first */
    unsigned suppressed; /* false answers since */
};

#define SVC_RATELIMIT_INIT(every_ms)                                                               \
    {                                                                                              \
        (every_ms), 0, 0                                                                           \
    }

bool svc_ratelimit_due(struct svc_ratelimit *r, unsigned *suppressed);

/* ---- dependency state ------------------------------------------------------------------- */

struct svc_dep;

/* Flags of svc_dep_new(). */
enum {
    /* Reported to /readyz for information only: while down it is "ok" with the reason as
     * detail, so the service stays ready (Kafka, whose events wait in an outbox or a topic). */
    SVC_DEP_OPTIONAL = 1u << 0,
};

/*
 * A new dependency state named NAME ("postgres"; copied), as /readyz and the logs call it.
 * It starts up when DOWN_WHY is NULL; otherwise down for that reason (copied), without a
 * warning, since nothing was expected of it yet (a producer before its first broker
 * connection), and its first svc_dep_up() is not logged either. Free with svc_dep_free().
 */
struct svc_dep *svc_dep_new(const char *name, unsigned flags, const char *down_why);

/* NULL is a no-op. */
void svc_dep_free(struct svc_dep *d);

/* The name given to svc_dep_new() (owned by D). */
const char *svc_dep_name(const struct svc_dep *d);

/* The dependency answered: up. A change from a logged outage logs "<name> reachable again". */
void svc_dep_up(struct svc_dep *d);

/*
 * The dependency could not be reached: down, for the reason FMT (printf, first line only, at
 * most 255 bytes), which /readyz shows. Logs "<name> unavailable: [<what> failed: ]<why>" at
 * once when it was up, then at most every SVC_DEP_WARN_MS. WHAT (may be NULL) names the
 * operation that failed, for the log only.
 */
void svc_dep_down(struct svc_dep *d, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A warning about the dependency that does not change its state (a delivery that failed),
 * logged as FMT under the same rate limit as the outage warnings. */
void svc_dep_warn(struct svc_dep *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True while up; otherwise copies the reason into WHY (CAP bytes; WHY may be NULL). No probe. */
bool svc_dep_is_up(struct svc_dep *d, char *why, size_t cap);

/*
 * Sets the probe /readyz runs before it reads the state: PROBE(CTX) checks the dependency
 * without waiting for anything busy (a connection pool lends an idle connection and pings it;
 * see svc_pool_check) and reports what it finds through svc_dep_up()/svc_dep_down(). NULL
 * removes it. Set it before the dependency is shared between threads.
 */
void svc_dep_set_probe(struct svc_dep *d, void (*probe)(void *ctx), void *ctx);

/* Runs the probe, if any, then answers as svc_dep_is_up(). */
bool svc_dep_check(struct svc_dep *d, char *why, size_t cap);

/*
 * Reports D to /readyz after svc_dep_check(): {"ok": true} while up; while down
 * {"ok": false, "detail": why} ("ok" stays true for a SVC_DEP_OPTIONAL one). HINT (printf, may
 * be NULL) is appended to the detail of a down dependency ("<why>: <hint>"), to say what the
 * service does meanwhile. D NULL reports nothing.
 */
void svc_dep_report(struct svc_dep *d, struct svc_health *h, const char *hint, ...)
    __attribute__((format(printf, 3, 4)));

#endif
