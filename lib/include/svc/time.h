/*
 * time.h: the platform's clocks, deadlines and RFC 3339 times.
 *
 * Two clocks, never mixed up:
 *   svc_now_ms()   monotonic: for intervals, timeouts, backoff and rate limits; it never jumps
 *                  when the wall clock is set
 *   svc_wall_ms()  the wall clock (ms since the Unix epoch, UTC): for what is stored or sent,
 *                  such as created_at and event times
 * Condition variables that wait with a timeout are initialised on the monotonic clock
 * (svc_cond_init_monotonic) and waited on with svc_cond_wait_until(), so a wall-clock step
 * neither shortens nor stretches a wait.
 */
#ifndef SVC_TIME_H
#define SVC_TIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Milliseconds on the monotonic clock (an arbitrary origin). */
int64_t svc_now_ms(void);

/* Milliseconds since 1970-01-01T00:00:00Z on the wall clock. */
int64_t svc_wall_ms(void);

/* Sleeps MS milliseconds (whole, through signals); MS <= 0 returns at once. */
void svc_sleep_ms(int64_t ms);

/* Initialises CV to time its waits on the monotonic clock. Returns pthread_cond_init's result. */
int svc_cond_init_monotonic(pthread_cond_t *cv);

/*
 * Waits on CV (initialised with svc_cond_init_monotonic; MU locked by the caller) until woken
 * or until DEADLINE_MS on svc_now_ms()'s clock. Returns false once the deadline has passed,
 * true when woken earlier (spurious wake-ups included: callers re-check their predicate).
 */
bool svc_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);

/*
 * RFC 3339 ("2026-11-24T10:00:00.123Z", or with a numeric offset such as "+01:00"; a 't' and a
 * 'z' are accepted too) to milliseconds since the epoch. Fractions beyond milliseconds are
 * truncated, a leap second (:60) counts as the next second. Returns false when S is not a valid
 * date-time; *EPOCH_MS (may be NULL) is then unchanged.
 */
bool svc_rfc3339_parse(const char *s, int64_t *epoch_ms);

/* Length of svc_rfc3339_format_ms()'s output without the NUL: "2026-11-24T10:00:00.123Z". */
#define SVC_RFC3339_MS_LEN 24

/* EPOCH_MS as RFC 3339 in UTC with milliseconds into OUT (NUL-terminated). */
void svc_rfc3339_format_ms(int64_t epoch_ms, char out[SVC_RFC3339_MS_LEN + 1]);

#endif
