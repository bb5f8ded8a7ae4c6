#include "svc/metrics.h"

#include "svc/alloc.h"
#include "svc/buf.h"
#include "svc/error.h"
#include "svc/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A power of two, so a hash picks a shard with a mask. */
#define NSHARDS 16

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM, KIND_GAUGE_FN };

static const char *const kind_names[] = {"counter", "gauge", "histogram", "gauge"};

/* One label-values tuple of one metric, in one shard. */
struct series {
    struct series *next; /* hash chain */
    uint64_t hash;
    char **values;     /* the label values as given: the lookup key; NULL-terminated */
    char **shown;      /* the same made valid UTF-8 (== values when they already were) */
    double value;      /* counter, gauge; the sum of observations for a histogram */
    uint64_t counts[]; /* histogram: observations per bucket, the last one for +Inf */
};

struct shard {
    pthread_mutex_t lock;
    struct series **table; /* NULL until the first series */
    size_t mask;           /* table size - 1 */
    size_t nseries;
    /* Shards sit side by side in a metric; the padding keeps the hot fields of two shards
     * off one cache line, so threads updating their own shards do not slow each other. */
    char pad[64];
};

struct svc_metric {
    struct svc_metric *next; /* declaration order */
    enum kind kind;
    char *name, *help;
    const char *const *labels;
    size_t nlabels;
    double *buckets;
    size_t nbuckets;
    double (*fn)(void *arg);
    void *arg;
    /* A scrape reads the label values of the series it copied after their shard locks are
     * released; svc_metric_remove() frees a series only while holding this for writing, and a
     * scrape of the metric holds it for reading. Updates never take it. */
    pthread_rwlock_t render_lock;
    struct shard shards[NSHARDS];
};

const double svc_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t svc_metrics_latency_nbuckets =
    sizeof(svc_metrics_latency_buckets) / sizeof(svc_metrics_latency_buckets[0]);

/* Guards the list of metrics (declarations, scrapes, reset); never taken by an update. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct svc_metric *registry_head, **registry_tail = &registry_head;

static atomic_uint next_shard;
static _Thread_local int thread_shard = -1;

/* The names svc_metrics_render() writes itself; declaring one would duplicate it. */
static const char *const process_names[] = {"process_cpu_seconds_total", "process_open_fds",
                                            "process_resident_memory_bytes",
                                            "process_start_time_seconds", NULL};

/* Misuse of the API is a programming error: log it and abort, as the header says. */
static _Noreturn __attribute__((format(printf, 1, 2))) void misuse(const char *fmt, ...)
{
    struct svc_buf b = SVC_BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    svc_buf_vaddf(&b, fmt, ap);
    va_end(ap);
    svc_logf(SVC_LOG_FATAL, "%s", svc_buf_str(&b));
    abort();
}

/* --- declarations ----------------------------------------------------------------------- */

static bool valid_name(const char *s, bool colon)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':')))
            return false;
    }
    return true;
}

static size_t count_labels(const char *name, const char *const *labels, enum kind kind)
{
    size_t n = 0;

    for (; labels != NULL && labels[n] != NULL; n++) {
        /* Names starting with "__" are reserved to Prometheus; "le" is a histogram's own. */
        if (!valid_name(labels[n], false) || strncmp(labels[n], "__", 2) == 0 ||
            (kind == KIND_HISTOGRAM && strcmp(labels[n], "le") == 0))
            misuse("metric '%s' has an invalid label name", name);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(labels[i], labels[n]) == 0)
                misuse("metric '%s' has a label name twice", name);
        }
    }
    return n;
}

static bool same_labels(const struct svc_metric *m, const char *const *labels, size_t n)
{
    if (m->nlabels != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m->labels[i], labels[i]) != 0)
            return false;
    }
    return true;
}

static bool same_buckets(const struct svc_metric *m, const double *buckets, size_t n)
{
    return m->nbuckets == n && (n == 0 || memcmp(m->buckets, buckets, n * sizeof(*buckets)) == 0);
}

static struct svc_metric *declare(enum kind kind, const char *name, const char *help,
                                  const char *const *labels, const double *buckets, size_t nb,
                                  double (*fn)(void *), void *arg)
{
    struct svc_metric *m;
    size_t nlabels;

    if (!valid_name(name, true))
        misuse("invalid metric name '%s'", name != NULL ? name : "(null)");
    for (size_t i = 0; process_names[i] != NULL; i++) {
        if (strcmp(name, process_names[i]) == 0)
            misuse("metric '%s' is already rendered by libsvc", name);
    }
    nlabels = count_labels(name, labels, kind);
    /* An explicit +Inf bound is the implicit one (client_golang accepts it too). */
    if (nb > 0 && isinf(buckets[nb - 1]) && buckets[nb - 1] > 0)
        nb--;
    for (size_t i = 0; i < nb; i++) {
        if (isnan(buckets[i]) || isinf(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            misuse("histogram '%s' needs finite, strictly increasing buckets", name);
    }

    pthread_mutex_lock(&registry_lock);
    for (m = registry_head; m != NULL; m = m->next) {
        if (strcmp(m->name, name) != 0)
            continue;
        if (m->kind != kind || !same_labels(m, labels, nlabels) || !same_buckets(m, buckets, nb)) {
            pthread_mutex_unlock(&registry_lock);
            misuse("metric '%s' declared twice with different kinds, labels or buckets", name);
        }
        /* A callback gauge follows its latest declaration: the first one's ARG may be gone
         * (a service started twice in one test process). */
        m->fn = fn;
        m->arg = arg;
        pthread_mutex_unlock(&registry_lock);
        return m;
    }

    m = svc_calloc(1, sizeof(*m));
    m->kind = kind;
    m->name = svc_strdup(name);
    m->help = help != NULL ? svc_strdup(help) : NULL;
    m->labels = labels;
    m->nlabels = nlabels;
    if (nb > 0) {
        m->buckets = svc_malloc(nb * sizeof(*buckets));
        memcpy(m->buckets, buckets, nb * sizeof(*buckets));
    }
    m->nbuckets = nb;
    m->fn = fn;
    m->arg = arg;
    pthread_rwlock_init(&m->render_lock, NULL);
    for (size_t i = 0; i < NSHARDS; i++)
        pthread_mutex_init(&m->shards[i].lock, NULL);
    *registry_tail = m;
    registry_tail = &m->next;
    pthread_mutex_unlock(&registry_lock);
    return m;
}

struct svc_metric *svc_counter_new(const char *name, const char *help, const char *const *labels)
{
    return declare(KIND_COUNTER, name, help, labels, NULL, 0, NULL, NULL);
}

struct svc_metric *svc_gauge_new(const char *name, const char *help, const char *const *labels)
{
    return declare(KIND_GAUGE, name, help, labels, NULL, 0, NULL, NULL);
}

struct svc_metric *svc_histogram_new(const char *name, const char *help, const char *const *labels,
                                     const double *buckets, size_t n)
{
    return declare(KIND_HISTOGRAM, name, help, labels, buckets, n, NULL, NULL);
}

struct svc_metric *svc_gauge_fn_new(const char *name, const char *help, double (*fn)(void *arg),
                                    void *arg)
{
    if (fn == NULL)
        misuse("gauge '%s' has no function", name != NULL ? name : "(null)");
    return declare(KIND_GAUGE_FN, name, help, NULL, NULL, 0, fn, arg);
}

/* --- series storage --------------------------------------------------------------------- */

static uint64_t hash_values(const struct svc_metric *m, const char *const *values)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */

    for (size_t i = 0; i < m->nlabels; i++) {
        if (values == NULL || values[i] == NULL)
            misuse("metric '%s' updated with a missing label value", m->name);
        for (const unsigned char *p = (const unsigned char *)values[i]; *p != '\0'; p++)
            h = (h ^ *p) * 1099511628211u;
        /* A separator, so ("ab","c") and ("a","bc") differ. */
        h = (h ^ 0xff) * 1099511628211u;
    }
    return h;
}

static bool same_values(const struct svc_metric *m, char *const *a, const char *const *b)
{
    for (size_t i = 0; i < m->nlabels; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return false;
    }
    return true;
}

/* Copies N strings into one block: a NULL-terminated pointer array followed by the strings. */
static char **pack(const char *const *strs, size_t n)
{
    size_t size = (n + 1) * sizeof(char *);
    char **out, *p;

    for (size_t i = 0; i < n; i++)
        size += strlen(strs[i]) + 1;
    out = svc_malloc(size);
    p = (char *)(out + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(strs[i]) + 1;
        memcpy(p, strs[i], len);
        out[i] = p;
        p += len;
    }
    out[n] = NULL;
    return out;
}

/* Prometheus rejects a page whose label values are not UTF-8, and label values may come from
 * requests, so a series keeps its values as given (the key) and a valid copy to show, made
 * once when the series is created. Invalid bytes become U+FFFD. */
static char **shown_values(char **values, size_t n)
{
    struct svc_buf b = SVC_BUF_INIT;
    const char **fixed;
    char **out;
    size_t *offs;
    bool valid = true;

    for (size_t i = 0; i < n && valid; i++) {
        const unsigned char *p = (const unsigned char *)values[i];
        size_t len = strlen(values[i]), step;

        for (size_t j = 0; j < len && valid; j += step)
            valid = (step = svc_utf8_len(p + j, len - j)) != 0;
    }
    if (valid)
        return values;

    offs = svc_malloc(n * sizeof(*offs));
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)values[i];
        size_t len = strlen(values[i]), step;

        offs[i] = b.len;
        for (size_t j = 0; j < len; j += step) {
            step = svc_utf8_len(p + j, len - j);
            if (step == 0) {
                svc_buf_add(&b, "\xef\xbf\xbd", 3);
                step = 1;
            } else {
                svc_buf_add(&b, p + j, step);
            }
        }
        svc_buf_addc(&b, '\0');
    }
    fixed = svc_malloc(n * sizeof(*fixed));
    for (size_t i = 0; i < n; i++)
        fixed[i] = b.data + offs[i];
    out = pack(fixed, n);
    free(fixed);
    free(offs);
    svc_buf_release(&b);
    return out;
}

static void grow(struct shard *s)
{
    size_t size = s->table == NULL ? 8 : (s->mask + 1) * 2;
    struct series **table = svc_calloc(size, sizeof(struct series *));

    if (s->table != NULL) {
        for (size_t i = 0; i <= s->mask; i++) {
            struct series *e, *next;
            for (e = s->table[i]; e != NULL; e = next) {
                next = e->next;
                e->next = table[e->hash & (size - 1)];
                table[e->hash & (size - 1)] = e;
            }
        }
        free(s->table);
    }
    s->table = table;
    s->mask = size - 1;
}

/* The series for VALUES in shard S, created when missing. S's lock is held. */
static struct series *series_get(struct svc_metric *m, struct shard *s, const char *const *values,
                                 uint64_t hash)
{
    struct series *e;
    size_t ncounts = m->kind == KIND_HISTOGRAM ? m->nbuckets + 1 : 0;

    if (s->table != NULL) {
        for (e = s->table[hash & s->mask]; e != NULL; e = e->next) {
            if (e->hash == hash && same_values(m, e->values, values))
                return e;
        }
    }
    if (s->table == NULL || s->nseries >= s->mask + 1)
        grow(s);
    e = svc_calloc(1, sizeof(*e) + ncounts * sizeof(e->counts[0]));
    e->hash = hash;
    e->values = pack(values, m->nlabels);
    e->shown = shown_values(e->values, m->nlabels);
    e->next = s->table[hash & s->mask];
    s->table[hash & s->mask] = e;
    s->nseries++;
    return e;
}

static void series_free(struct series *e)
{
    if (e->shown != e->values)
        free(e->shown);
    free(e->values);
    free(e);
}

static struct shard *my_shard(struct svc_metric *m)
{
    if (thread_shard < 0)
        thread_shard = (int)(atomic_fetch_add(&next_shard, 1) % NSHARDS);
    return &m->shards[thread_shard];
}

void svc_counter_add(struct svc_metric *m, const char *const *values, double v)
{
    uint64_t hash;
    struct shard *s;

    if (m->kind != KIND_COUNTER)
        misuse("metric '%s' is not a counter", m->name);
    hash = hash_values(m, values);
    /* A counter never goes down; a negative or NaN amount is a bug we do not let corrupt it. */
    if (!(v >= 0))
        return;
    s = my_shard(m);
    pthread_mutex_lock(&s->lock);
    series_get(m, s, values, hash)->value += v;
    pthread_mutex_unlock(&s->lock);
}

/* A set cannot be merged from several shards (which one was last?), so a gauge series lives
 * in the one shard its hash picks; threads still spread over shards by series. */
static void gauge_update(struct svc_metric *m, const char *const *values, double v, bool add)
{
    uint64_t hash;
    struct shard *s;
    struct series *e;

    if (m->kind != KIND_GAUGE)
        misuse("metric '%s' is not a settable gauge", m->name);
    hash = hash_values(m, values);
    s = &m->shards[hash & (NSHARDS - 1)];
    pthread_mutex_lock(&s->lock);
    e = series_get(m, s, values, hash);
    e->value = add ? e->value + v : v;
    pthread_mutex_unlock(&s->lock);
}

void svc_gauge_set(struct svc_metric *m, const char *const *values, double v)
{
    gauge_update(m, values, v, false);
}

void svc_gauge_add(struct svc_metric *m, const char *const *values, double v)
{
    gauge_update(m, values, v, true);
}

void svc_histogram_observe(struct svc_metric *m, const char *const *values, double v)
{
    uint64_t hash;
    struct shard *s;
    struct series *e;
    size_t lo = 0, hi;

    if (m->kind != KIND_HISTOGRAM)
        misuse("metric '%s' is not a histogram", m->name);
    hash = hash_values(m, values);
    /* The first bucket whose bound is >= V (buckets are "less or equal"); NaN lands in +Inf. */
    hi = m->nbuckets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= m->buckets[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    s = my_shard(m);
    pthread_mutex_lock(&s->lock);
    e = series_get(m, s, values, hash);
    e->counts[lo]++;
    e->value += v;
    pthread_mutex_unlock(&s->lock);
}

double svc_metric_value(struct svc_metric *m, const char *const *values)
{
    uint64_t hash;
    double total = 0;

    if (m->kind == KIND_GAUGE_FN) {
        double (*fn)(void *);
        void *arg;

        pthread_mutex_lock(&registry_lock);
        fn = m->fn;
        arg = m->arg;
        pthread_mutex_unlock(&registry_lock);
        return fn(arg);
    }
    hash = hash_values(m, values);
    for (size_t i = 0; i < NSHARDS; i++) {
        struct shard *s = &m->shards[i];
        struct series *e;

        pthread_mutex_lock(&s->lock);
        for (e = s->table != NULL ? s->table[hash & s->mask] : NULL; e != NULL; e = e->next) {
            if (e->hash != hash || !same_values(m, e->values, values))
                continue;
            if (m->kind == KIND_HISTOGRAM) {
                for (size_t j = 0; j <= m->nbuckets; j++)
                    total += (double)e->counts[j];
            } else {
                total += e->value;
            }
            break;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return total;
}

void svc_metric_remove(struct svc_metric *m, const char *const *values)
{
    uint64_t hash;

    if (m->kind == KIND_GAUGE_FN)
        misuse("metric '%s' has no series to remove", m->name);
    hash = hash_values(m, values);
    /* Every shard: a counter or histogram keeps a copy of the series in each shard a thread
     * updated it from. An update that takes a shard after it was cleared here creates the
     * series afresh, which is what an update after the removal would do. */
    pthread_rwlock_wrlock(&m->render_lock);
    for (size_t i = 0; i < NSHARDS; i++) {
        struct shard *s = &m->shards[i];
        struct series **link, *e;

        pthread_mutex_lock(&s->lock);
        link = s->table != NULL ? &s->table[hash & s->mask] : NULL;
        for (; link != NULL && (e = *link) != NULL; link = &e->next) {
            if (e->hash == hash && same_values(m, e->values, values)) {
                *link = e->next;
                s->nseries--;
                series_free(e);
                break;
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_rwlock_unlock(&m->render_lock);
}

/* --- rendering -------------------------------------------------------------------------- */

/* The page being written. Appends after the first refusal are skipped, so the writers below
 * read straight through and the caller checks RC once. */
struct page {
    struct svc_buf *out;
    int rc;
};

static void put(struct page *p, const char *s, size_t n)
{
    if (p->rc == 0)
        p->rc = svc_buf_add(p->out, s, n);
}

static void puts_(struct page *p, const char *s)
{
    put(p, s, strlen(s));
}

/* Formats V into S (32 bytes) the way Go's strconv.ParseFloat reads it back exactly, in as
 * few digits as that takes (%.17g always round-trips but prints 0.1 as 0.10000000000000001). */
static const char *format_double(char *s, double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, 32, "%.*g", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    return s;
}

static void put_double(struct page *p, double v)
{
    char s[32];

    puts_(p, format_double(s, v));
}

static void put_u64(struct page *p, uint64_t v)
{
    char s[24];

    snprintf(s, sizeof(s), "%" PRIu64, v);
    puts_(p, s);
}

/* Escapes a HELP text (backslash, newline) or, with QUOTE, a label value (also '"'). */
static void put_escaped(struct page *p, const char *s, bool quote)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *esc = *s == '\\'           ? "\\\\"
                          : *s == '\n'         ? "\\n"
                          : *s == '"' && quote ? "\\\""
                                               : NULL;
        if (esc == NULL)
            continue;
        put(p, run, (size_t)(s - run));
        puts_(p, esc);
        run = s + 1;
    }
    puts_(p, run);
}

static void put_header(struct page *p, const char *name, const char *help, const char *type)
{
    if (help != NULL) {
        puts_(p, "# HELP ");
        puts_(p, name);
        puts_(p, " ");
        put_escaped(p, help, false);
        puts_(p, "\n");
    }
    puts_(p, "# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, type);
    puts_(p, "\n");
}

/* NAME SUFFIX{labels[,le="LE"]} and the space before the value. */
static void put_series_name(struct page *p, const struct svc_metric *m, const char *suffix,
                            char *const *shown, const char *le)
{
    puts_(p, m->name);
    puts_(p, suffix);
    if (m->nlabels == 0 && le == NULL) {
        puts_(p, " ");
        return;
    }
    puts_(p, "{");
    /* SHOWN is NULL-terminated, and has exactly nlabels values. */
    for (size_t i = 0; i < m->nlabels && shown[i] != NULL; i++) {
        puts_(p, i > 0 ? "," : "");
        puts_(p, m->labels[i]);
        puts_(p, "=\"");
        put_escaped(p, shown[i], true);
        puts_(p, "\"");
    }
    if (le != NULL) {
        puts_(p, m->nlabels > 0 ? ",le=\"" : "le=\"");
        puts_(p, le);
        puts_(p, "\"");
    }
    puts_(p, "} ");
}

/* The label values of a metric without labels. */
static char *const no_values[] = {NULL};

/* A copy of one series taken under its shard's lock; counts live in the snapshot's array. */
struct snap {
    char *const *shown;
    double value;
    size_t counts; /* index of the first count in struct snapshot.counts */
};

struct snapshot {
    struct snap *v;
    size_t n, cap;
    uint64_t *counts;
    size_t ncounts; /* per series */
};

static int cmp_snap(const void *a, const void *b)
{
    char *const *x = ((const struct snap *)a)->shown;
    char *const *y = ((const struct snap *)b)->shown;

    for (; *x != NULL && *y != NULL; x++, y++) {
        int c = strcmp(*x, *y);
        if (c != 0)
            return c;
    }
    return 0;
}

static void take_snapshot(struct svc_metric *m, struct snapshot *ss)
{
    ss->ncounts = m->kind == KIND_HISTOGRAM ? m->nbuckets + 1 : 0;
    for (size_t i = 0; i < NSHARDS; i++) {
        struct shard *s = &m->shards[i];

        pthread_mutex_lock(&s->lock);
        for (size_t b = 0; s->table != NULL && b <= s->mask; b++) {
            for (struct series *e = s->table[b]; e != NULL; e = e->next) {
                if (ss->n == ss->cap) {
                    ss->cap = ss->cap != 0 ? ss->cap * 2 : 16;
                    ss->v = svc_realloc(ss->v, ss->cap * sizeof(*ss->v));
                    ss->counts =
                        svc_realloc(ss->counts, ss->cap * (ss->ncounts + 1) * sizeof(*ss->counts));
                }
                ss->v[ss->n] = (struct snap){e->shown, e->value, ss->n * ss->ncounts};
                memcpy(ss->counts + ss->n * ss->ncounts, e->counts,
                       ss->ncounts * sizeof(*ss->counts));
                ss->n++;
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    /* An unlabelled metric shows its zero before the first update, as client libraries do. */
    if (ss->n == 0 && m->nlabels == 0) {
        ss->cap = 1;
        ss->v = svc_malloc(sizeof(*ss->v));
        ss->counts = svc_calloc(ss->ncounts + 1, sizeof(*ss->counts));
        ss->v[0] = (struct snap){no_values, 0, 0};
        ss->n = 1;
    }
    if (ss->n > 1)
        qsort(ss->v, ss->n, sizeof(*ss->v), cmp_snap);

    /* Counters and histograms keep a series in every shard a thread updated it from: add the
     * copies up. (Values that differ only in invalid UTF-8 merge here too, as they show
     * alike.) */
    size_t out = 0;
    for (size_t i = 0; i < ss->n; i++) {
        if (out > 0 && cmp_snap(&ss->v[out - 1], &ss->v[i]) == 0) {
            struct snap *into = &ss->v[out - 1];
            into->value += ss->v[i].value;
            for (size_t j = 0; j < ss->ncounts; j++)
                ss->counts[into->counts + j] += ss->counts[ss->v[i].counts + j];
            continue;
        }
        ss->v[out++] = ss->v[i];
    }
    ss->n = out;
}

static void render_metric(struct page *p, struct svc_metric *m, double (*fn)(void *), void *arg)
{
    struct snapshot ss = {0};

    put_header(p, m->name, m->help, kind_names[m->kind]);
    if (m->kind == KIND_GAUGE_FN) {
        put_series_name(p, m, "", no_values, NULL);
        put_double(p, fn(arg));
        puts_(p, "\n");
        return;
    }
    /* Held until the last label value of the snapshot is written (see render_lock). */
    pthread_rwlock_rdlock(&m->render_lock);
    take_snapshot(m, &ss);
    for (size_t i = 0; i < ss.n && p->rc == 0; i++) {
        const struct snap *sn = &ss.v[i];
        const uint64_t *counts = ss.counts + sn->counts;
        uint64_t acc = 0;

        if (m->kind != KIND_HISTOGRAM) {
            put_series_name(p, m, "", sn->shown, NULL);
            put_double(p, sn->value);
            puts_(p, "\n");
            continue;
        }
        for (size_t b = 0; b <= m->nbuckets; b++) {
            char le[32];

            acc += counts[b];
            put_series_name(p, m, "_bucket", sn->shown,
                            b < m->nbuckets ? format_double(le, m->buckets[b]) : "+Inf");
            put_u64(p, acc);
            puts_(p, "\n");
        }
        put_series_name(p, m, "_sum", sn->shown, NULL);
        put_double(p, sn->value);
        puts_(p, "\n");
        put_series_name(p, m, "_count", sn->shown, NULL);
        put_u64(p, acc);
        puts_(p, "\n");
    }
    pthread_rwlock_unlock(&m->render_lock);
    free(ss.v);
    free(ss.counts);
}

/* --- process metrics (Linux /proc) ------------------------------------------------------ */

/* Reads a small /proc file into BUF; false when it cannot. */
static bool read_proc(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t n;

    if (fd < 0)
        return false;
    while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    return len > 0;
}

/* Field K (1-based, as in proc(5)) of /proc/self/stat, as a number; false when missing. The
 * command name (field 2) may hold spaces and parentheses, so counting starts after its last
 * ')'. */
static bool stat_field(const char *stat, int k, unsigned long long *out)
{
    const char *p = strrchr(stat, ')');
    char *end;

    if (p == NULL)
        return false;
    p++;
    for (int field = 3; field < k; field++) {
        while (*p == ' ')
            p++;
        while (*p != ' ' && *p != '\0')
            p++;
    }
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return false;
    *out = strtoull(p, &end, 10);
    return end != p;
}

/* The boot time from /proc/stat, or 0. The file is read by line: on a machine with many
 * CPUs its "intr" line alone runs to kilobytes before "btime". */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    char *line = NULL;
    size_t size = 0;
    double t = 0;

    if (f == NULL)
        return 0;
    while (getline(&line, &size, f) > 0) {
        if (strncmp(line, "btime ", 6) == 0) {
            t = strtod(line + 6, NULL);
            break;
        }
    }
    free(line);
    fclose(f);
    return t;
}

static void put_process_metric(struct page *p, const char *name, const char *help, const char *type,
                               double v)
{
    put_header(p, name, help, type);
    puts_(p, name);
    puts_(p, " ");
    put_double(p, v);
    puts_(p, "\n");
}

static void render_process(struct page *p)
{
    char stat[1024], buf[256];
    long ticks = sysconf(_SC_CLK_TCK), pagesize = sysconf(_SC_PAGESIZE);
    unsigned long long utime, stime, start;
    bool have_stat = read_proc("/proc/self/stat", stat, sizeof(stat));
    DIR *dir;

    if (have_stat && ticks > 0 && stat_field(stat, 14, &utime) && stat_field(stat, 15, &stime))
        put_process_metric(p, "process_cpu_seconds_total",
                           "Total user and system CPU time spent in seconds.", "counter",
                           (double)(utime + stime) / (double)ticks);

    dir = opendir("/proc/self/fd");
    if (dir != NULL) {
        struct dirent *d;
        int self = dirfd(dir);
        double n = 0;

        while ((d = readdir(dir)) != NULL) {
            char *end;
            long fd = strtol(d->d_name, &end, 10);
            /* "." and "..", and the descriptor this very listing uses, are not the process's. */
            if (d->d_name[0] != '.' && *end == '\0' && fd != self)
                n++;
        }
        closedir(dir);
        put_process_metric(p, "process_open_fds", "Number of open file descriptors.", "gauge", n);
    }

    if (pagesize > 0 && read_proc("/proc/self/statm", buf, sizeof(buf))) {
        char *end;
        unsigned long long rss;

        strtoull(buf, &end, 10);
        rss = strtoull(end, NULL, 10);
        put_process_metric(p, "process_resident_memory_bytes", "Resident memory size in bytes.",
                           "gauge", (double)rss * (double)pagesize);
    }

    if (have_stat && ticks > 0 && stat_field(stat, 22, &start)) {
        double btime = boot_time();
        if (btime > 0)
            put_process_metric(p, "process_start_time_seconds",
                               "Start time of the process since unix epoch in seconds.", "gauge",
                               btime + (double)start / (double)ticks);
    }
}

/* A metric and its callback as they were when the scrape began. */
struct entry {
    struct svc_metric *m;
    double (*fn)(void *);
    void *arg;
};

int svc_metrics_render(struct svc_buf *out)
{
    struct page p = {out, 0};
    struct entry *list = NULL;
    size_t n = 0, cap = 0;

    /* The list is copied so callbacks run without the registry lock: a callback may then
     * take its own locks, or even declare a metric, without deadlocking. Metrics are freed
     * only by svc_metrics_reset(), which never runs during a scrape. */
    pthread_mutex_lock(&registry_lock);
    for (struct svc_metric *m = registry_head; m != NULL; m = m->next) {
        if (n == cap) {
            cap = cap != 0 ? cap * 2 : 32;
            list = svc_realloc(list, cap * sizeof(*list));
        }
        list[n++] = (struct entry){m, m->fn, m->arg};
    }
    pthread_mutex_unlock(&registry_lock);

    for (size_t i = 0; i < n && p.rc == 0; i++)
        render_metric(&p, list[i].m, list[i].fn, list[i].arg);
    free(list);
    render_process(&p);
    return p.rc;
}

void svc_metrics_reset(void)
{
    struct svc_metric *m, *next;

    pthread_mutex_lock(&registry_lock);
    for (m = registry_head; m != NULL; m = next) {
        next = m->next;
        for (size_t i = 0; i < NSHARDS; i++) {
            struct shard *s = &m->shards[i];

            for (size_t b = 0; s->table != NULL && b <= s->mask; b++) {
                struct series *e, *enext;
                for (e = s->table[b]; e != NULL; e = enext) {
                    enext = e->next;
                    series_free(e);
                }
            }
            free(s->table);
            pthread_mutex_destroy(&s->lock);
        }
        pthread_rwlock_destroy(&m->render_lock);
        free(m->buckets);
        free(m->help);
        free(m->name);
        free(m);
    }
    registry_head = NULL;
    registry_tail = &registry_head;
    pthread_mutex_unlock(&registry_lock);
}
