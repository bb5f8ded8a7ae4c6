/*
 * metrics.h: Prometheus metrics (text exposition format 0.0.4) for /metrics.
 *
 * Metrics are declared once at start-up (they live until svc_metrics_reset() or exit) and
 * updated on the hot path without a global lock: each metric keeps its series in shards, and a
 * thread always updates the same shard of a counter or histogram, so updates only ever meet an
 * uncontended lock. The scrape merges the shards. (A gauge series lives in the one shard its
 * label values hash to, since a set cannot be merged from several shards.) Removing a series
 * is rare and may wait for a scrape of its metric to finish; it holds a shard's lock no longer
 * than a scrape does, so updates are not slowed by it.
 *
 * Label values are passed as an array (not NULL-terminated) of exactly as many strings as the
 * metric has label names; they are copied the first time a series is seen. Names must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" (checked
 * at declaration: a bad name aborts, as it is a programming error, and so does a NULL label
 * value or an update of the wrong kind). Label values are escaped on output, and invalid UTF-8
 * in them is shown as U+FFFD.
 */
#ifndef SVC_METRICS_H
#define SVC_METRICS_H

#include "svc/buf.h"

#include <stddef.h>

struct svc_metric;

/*
 * Declarations. NAME and HELP are copied; HELP may be NULL (no HELP line). LABELS is a
 * NULL-terminated array of label names, or NULL for none; the array and its strings must
 * outlive the metric (use static const tables). Declaring the same name twice returns the
 * first metric when the kind, labels (and buckets) agree, and aborts otherwise; so does a name
 * of the process metrics below. Returned metrics are owned by the registry.
 */
struct svc_metric *svc_counter_new(const char *name, const char *help, const char *const *labels);
struct svc_metric *svc_gauge_new(const char *name, const char *help, const char *const *labels);
/* BUCKETS: N strictly increasing finite upper bounds (the +Inf bucket is implicit; a trailing
 * +Inf is accepted and dropped); copied. A histogram may not have a label named "le". */
struct svc_metric *svc_histogram_new(const char *name, const char *help, const char *const *labels,
                                     const double *buckets, size_t n);
/* A gauge whose value FN(ARG) computes at scrape time (no labels), called without any lock of
 * the registry held. Declared again, it keeps the latest FN and ARG. */
struct svc_metric *svc_gauge_fn_new(const char *name, const char *help, double (*fn)(void *arg),
                                    void *arg);

/* Default latency buckets in seconds: 0.0005 ... 10. */
extern const double svc_metrics_latency_buckets[];
extern const size_t svc_metrics_latency_nbuckets;

/* Updates. VALUES has one string per label name (NULL when the metric has none). A counter
 * ignores a negative or NaN amount: it never goes down. */
void svc_counter_add(struct svc_metric *m, const char *const *values, double v);
void svc_gauge_set(struct svc_metric *m, const char *const *values, double v);
void svc_gauge_add(struct svc_metric *m, const char *const *values, double v);
void svc_histogram_observe(struct svc_metric *m, const char *const *values, double v);

/* A compound literal with several values needs parentheses to pass through the macro:
 * svc_counter_inc(m, ((const char *[]){route, method})). */
#define svc_counter_inc(m, values) svc_counter_add((m), (values), 1.0)

/* Reads one series (tests, health checks); 0 when the series does not exist. For histograms,
 * the count of observations. */
double svc_metric_value(struct svc_metric *m, const char *const *values);

/*
 * Removes the series VALUES of a counter, gauge or histogram (a callback gauge aborts), so
 * /metrics no longer lists it: for series whose subject went away, such as a Kafka partition
 * now assigned to another consumer. A later update creates the series anew (a counter counts
 * from zero again), and so may an update that runs concurrently with the removal. Nothing
 * happens when the series does not exist; an unlabelled metric shows its zero again. For
 * rare calls: it waits for a scrape of M in progress to finish.
 */
void svc_metric_remove(struct svc_metric *m, const char *const *values);

/*
 * Renders every metric, plus the process metrics (process_resident_memory_bytes,
 * process_cpu_seconds_total, process_open_fds, process_start_time_seconds), in the text
 * exposition format, appending to OUT. Metrics come in declaration order, each one's series
 * sorted by label values, and the process metrics last; an unlabelled metric shows its zero
 * before its first update. Returns 0, or SVC_ETOOBIG when OUT's cap is reached (OUT then holds
 * a truncated page).
 */
int svc_metrics_render(struct svc_buf *out);

/* Forgets every metric (tests only; no update may run concurrently). */
void svc_metrics_reset(void);

#endif
