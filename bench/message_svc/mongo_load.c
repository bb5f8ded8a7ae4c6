/*
 * mongo_load: the raw-engine side of bench/message_svc. It asks MongoDB (FerretDB locally) for
 * exactly what one message-svc request asks of it, from THREADS threads for SECONDS seconds, so
 * that run.sh can set message-svc's rate against the engine's own, measured the same way on the
 * same machine:
 *
 *   MONGODB_URI=mongodb://127.0.0.1:17017/messages?retryWrites=false \
 *       mongo_load MODE SECONDS THREADS IDS_FILE
 *
 *   message  one find {_id: <id>} on `messages`: GET /v1/messages/{id} (msg_store.c mg_get)
 *   inbox    find {_id: <id>} on `users`, find {_id: <id>} on `inboxes`, then one find {_id}
 *            on `messages` per entry of the page, newest first, until the page is full and one
 *            more: GET /v1/users/{id}/messages with its default limit (mg_inbox)
 *
 * IDS_FILE holds message ids (message) or user ids (inbox), one a line; each request picks one
 * at random. Each thread takes its own client from one mongoc_client_pool for the whole run,
 * connected before the clock starts. Every find is the one message-svc's find_one() sends
 * (mongoc_collection_find_with_opts, {limit: 1}). The program only reads: find and ping are the
 * only commands it sends.
 *
 * The URI comes from the environment, not the command line, because a real one holds a password
 * (ps shows command lines to everybody). On success it prints one line on stdout:
 *
 *   requests N seconds S rate R p50_ms X p99_ms Y bad B
 *
 * where a request is bad when a find failed, or (inbox) when the user is unknown or deleted,
 * which message-svc would answer with an error. Exit status 1 on a usage or connection error,
 * or when every request was bad.
 *
 * Built by run.sh into its temporary folder with -O2 for the measurement; the CMake build also
 * builds it (bench/CMakeLists.txt), so that it keeps compiling under the project's warnings.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* message-svc's LIMIT_DEFAULT (msg_http.c): wrk's requests carry no ?limit. */
#define PAGE_LIMIT  20
#define MAX_THREADS 256
#define MAX_SECONDS 600
#define MAX_IDS     100000
#define ID_MAX      64

enum mode { MODE_MESSAGE, MODE_INBOX };

struct load {
    enum mode mode;
    const char *db;
    mongoc_client_pool_t *pool;
    char (*ids)[ID_MAX + 1];
    size_t n_ids;
    pthread_barrier_t go;
    int64_t deadline_ns; /* written before the barrier, read after it */
};

struct worker {
    struct load *ld;
    pthread_t tid;
    uint64_t rng;
    uint32_t *lat_us; /* one latency a request, malloc'd */
    size_t n, cap;
    uint64_t bad;
    int64_t done_ns;
    bool failed;                           /* could not even connect */
    char err[BSON_ERROR_BUFFER_SIZE + 32]; /* "<collection>: <driver message>" */
};

/* One entry of an inbox document: {"m": {"<message id>": {"t": <date>, "r": <bool>}, ...}}. */
struct entry {
    char id[ID_MAX + 1];
    int64_t t;
};

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL) {
        fprintf(stderr, "mongo_load: out of memory\n");
        exit(1);
    }
    return q;
}

/* xorshift64*: each thread its own sequence, no lock and no libc state shared. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void note_error(struct worker *w, const char *what, const bson_error_t *e)
{
    if (w->err[0] == '\0')
        snprintf(w->err, sizeof(w->err), "%s: %s", what, e->message);
}

/*
 * The find message-svc's find_one() sends: FILTER {_id: ID} with {limit: 1}, the first document
 * copied out. 1 found (*OUT set when OUT is not NULL; the caller destroys it), 0 none, -1 failed.
 */
static int find_by_id(struct worker *w, mongoc_client_t *c, const char *coll, const char *id,
                      bson_t **out)
{
    mongoc_collection_t *co = mongoc_client_get_collection(c, w->ld->db, coll);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(co, filter, opts, NULL);
    const bson_t *doc;
    bson_error_t err;
    int rc = 0;

    if (mongoc_cursor_next(cur, &doc)) {
        rc = 1;
        if (out != NULL)
            *out = bson_copy(doc);
    } else if (mongoc_cursor_error(cur, &err)) {
        note_error(w, coll, &err);
        rc = -1;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(co);
    return rc;
}

static int newest_first(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->t != y->t)
        return x->t < y->t ? 1 : -1;
    return -strcmp(x->id, y->id);
}

/* The entries of an inbox document into *ES (malloc'd, the caller frees it); their count. */
static size_t inbox_entries(const bson_t *doc, struct entry **es)
{
    bson_iter_t it, sub, f;
    size_t n = 0, cap = 0;

    *es = NULL;
    if (!bson_iter_init_find(&it, doc, "m") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &sub))
        return 0;
    while (bson_iter_next(&sub)) {
        struct entry *e;

        if (!BSON_ITER_HOLDS_DOCUMENT(&sub) || strlen(bson_iter_key(&sub)) > ID_MAX)
            continue;
        if (n == cap) {
            cap = cap != 0 ? 2 * cap : 32;
            *es = xrealloc(*es, cap * sizeof(**es));
        }
        e = &(*es)[n++];
        snprintf(e->id, sizeof(e->id), "%s", bson_iter_key(&sub));
        e->t = 0;
        bson_iter_recurse(&sub, &f);
        while (bson_iter_next(&f))
            if (strcmp(bson_iter_key(&f), "t") == 0 && BSON_ITER_HOLDS_DATE_TIME(&f))
                e->t = bson_iter_date_time(&f);
    }
    return n;
}

/* GET /v1/users/{id}/messages: true when message-svc would answer 200. */
static bool inbox_request(struct worker *w, mongoc_client_t *c, const char *user)
{
    bson_t *doc = NULL;
    struct entry *es = NULL;
    bson_iter_t it;
    size_t n, reads = 0;
    bool ok;
    int rc;

    rc = find_by_id(w, c, "users", user, &doc);
    if (rc != 1)
        return false;
    /* A deleted user's inbox is refused without reading it. */
    ok = !(bson_iter_init_find(&it, doc, "deleted") && BSON_ITER_HOLDS_BOOL(&it) &&
           bson_iter_bool(&it));
    bson_destroy(doc);
    doc = NULL;
    if (!ok)
        return false;
    rc = find_by_id(w, c, "inboxes", user, &doc);
    if (rc < 0)
        return false;
    n = doc != NULL ? inbox_entries(doc, &es) : 0;
    if (doc != NULL)
        bson_destroy(doc);
    if (n > 1)
        qsort(es, n, sizeof(*es), newest_first);
    /* message-svc reads the messages of the page and then one more, which tells it that a next
     * page exists; a message already gone is passed over (and not counted on the page). */
    for (size_t i = 0; i < n && reads <= PAGE_LIMIT && ok; i++) {
        rc = find_by_id(w, c, "messages", es[i].id, NULL);
        ok = rc >= 0;
        if (rc == 1)
            reads++;
    }
    free(es);
    return ok;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct load *ld = w->ld;
    mongoc_client_t *c = mongoc_client_pool_pop(ld->pool);
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t err;

    /* Connected (and the handshake done) before the clock starts. */
    if (!mongoc_client_command_simple(c, ld->db, ping, NULL, NULL, &err)) {
        note_error(w, "ping", &err);
        w->failed = true;
    }
    bson_destroy(ping);
    pthread_barrier_wait(&ld->go);
    while (!w->failed) {
        const char *id = ld->ids[next_rand(&w->rng) % ld->n_ids];
        int64_t t0 = mono_ns(), t1;
        bool ok;

        if (t0 >= ld->deadline_ns)
            break;
        if (ld->mode == MODE_MESSAGE)
            ok = find_by_id(w, c, "messages", id, NULL) == 1;
        else
            ok = inbox_request(w, c, id);
        t1 = mono_ns();
        if (w->n == w->cap) {
            w->cap = w->cap != 0 ? 2 * w->cap : 4096;
            w->lat_us = xrealloc(w->lat_us, w->cap * sizeof(*w->lat_us));
        }
        w->lat_us[w->n++] = (uint32_t)((t1 - t0) / 1000);
        if (!ok)
            w->bad++;
    }
    w->done_ns = mono_ns();
    mongoc_client_pool_push(ld->pool, c);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* The P-th percentile (nearest rank) of the N sorted latencies, in ms. */
static double pct_ms(const uint32_t *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)((double)n * p / 100);
    if ((double)i < (double)n * p / 100)
        i++;
    if (i < 1)
        i = 1;
    return v[i - 1] / 1000.0;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* The ids of PATH, one a line (blank lines skipped); ids are UUIDs, checked loosely. */
static int read_ids(const char *path, struct load *ld)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t cap = 0, lineno = 0;

    if (f == NULL) {
        fprintf(stderr, "mongo_load: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, "\r\n");

        lineno++;
        line[len] = '\0';
        if (len == 0)
            continue;
        if (len > ID_MAX || strspn(line, "0123456789abcdefABCDEF-") != len) {
            fprintf(stderr, "mongo_load: '%s' line %zu is not an id\n", path, lineno);
            fclose(f);
            return -1;
        }
        if (ld->n_ids == MAX_IDS) {
            fprintf(stderr, "mongo_load: more than %d ids in '%s'\n", MAX_IDS, path);
            fclose(f);
            return -1;
        }
        if (ld->n_ids == cap) {
            cap = cap != 0 ? 2 * cap : 256;
            ld->ids = xrealloc(ld->ids, cap * sizeof(*ld->ids));
        }
        memcpy(ld->ids[ld->n_ids++], line, len + 1);
    }
    fclose(f);
    if (ld->n_ids == 0) {
        fprintf(stderr, "mongo_load: no ids in '%s'\n", path);
        return -1;
    }
    return 0;
}

static void set_default_ms(mongoc_uri_t *uri, const char *option, int32_t ms)
{
    if (mongoc_uri_get_option_as_int32(uri, option, 0) == 0)
        mongoc_uri_set_option_as_int32(uri, option, ms);
}

/* libmongoc's own log lines, except the harmless "endSessions" notice at client destroy
 * (docs/local.md), go to stderr. */
static void on_log(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
    (void)data;
    if (level <= MONGOC_LOG_LEVEL_WARNING && strstr(message, "endSessions") == NULL)
        fprintf(stderr, "mongo_load: mongoc %s: %s\n", domain, message);
}

int main(int argc, char **argv)
{
    struct load ld = {0};
    struct worker *ws = NULL;
    mongoc_uri_t *uri = NULL;
    bson_error_t err;
    const char *env = getenv("MONGODB_URI"), *db;
    long secs, threads;
    size_t total = 0, k = 0;
    uint64_t bad = 0;
    uint32_t *all;
    int64_t t0, end = 0;
    double elapsed;
    int status = 1;

    if (argc != 5 || (strcmp(argv[1], "message") != 0 && strcmp(argv[1], "inbox") != 0) ||
        !parse_int(argv[2], 1, MAX_SECONDS, &secs) ||
        !parse_int(argv[3], 1, MAX_THREADS, &threads)) {
        fprintf(stderr,
                "usage: MONGODB_URI=... mongo_load message|inbox SECONDS(1-%d) "
                "THREADS(1-%d) IDS_FILE\n",
                MAX_SECONDS, MAX_THREADS);
        return 1;
    }
    if (env == NULL || env[0] == '\0') {
        fprintf(stderr, "mongo_load: MONGODB_URI is not set\n");
        return 1;
    }
    ld.mode = strcmp(argv[1], "message") == 0 ? MODE_MESSAGE : MODE_INBOX;
    if (read_ids(argv[4], &ld) != 0)
        goto out;

    mongoc_init();
    mongoc_log_set_handler(on_log, NULL);
    uri = mongoc_uri_new_with_error(env, &err);
    if (uri == NULL) {
        /* The driver's message quotes no part of the URI, so no password is printed. */
        fprintf(stderr, "mongo_load: MONGODB_URI not valid: %s\n", err.message);
        goto out_mongoc;
    }
    /* As message-svc sets them (msg_mongo_new), unless the URI says otherwise. */
    set_default_ms(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 2000);
    set_default_ms(uri, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
    set_default_ms(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
    db = mongoc_uri_get_database(uri);
    ld.db = db != NULL && db[0] != '\0' ? db : "messages";
    ld.pool = mongoc_client_pool_new_with_error(uri, &err);
    if (ld.pool == NULL) {
        fprintf(stderr, "mongo_load: client pool not created: %s\n", err.message);
        goto out_mongoc;
    }
    mongoc_client_pool_set_error_api(ld.pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(ld.pool, "bench-mongo-load");
    mongoc_client_pool_max_size(ld.pool, (uint32_t)threads);

    ws = calloc((size_t)threads, sizeof(*ws));
    if (ws == NULL) {
        fprintf(stderr, "mongo_load: out of memory\n");
        goto out_mongoc;
    }
    pthread_barrier_init(&ld.go, NULL, (unsigned)threads + 1);
    for (long i = 0; i < threads; i++) {
        ws[i].ld = &ld;
        ws[i].rng = ((uint64_t)time(NULL) << 20) ^ ((uint64_t)i * 0x9E3779B97F4A7C15ULL) ^
                    (uint64_t)mono_ns();
        if (ws[i].rng == 0)
            ws[i].rng = 1;
        if (pthread_create(&ws[i].tid, NULL, run, &ws[i]) != 0) {
            /* The barrier counts every thread: without them all nobody could start. */
            fprintf(stderr, "mongo_load: cannot create thread %ld\n", i);
            exit(1);
        }
    }
    /* Every thread connected: the clock starts now. pthread_barrier_wait() orders the write of
     * the deadline before the threads' reads. */
    t0 = mono_ns();
    ld.deadline_ns = t0 + secs * 1000000000LL;
    pthread_barrier_wait(&ld.go);
    for (long i = 0; i < threads; i++)
        pthread_join(ws[i].tid, NULL);
    for (long i = 0; i < threads; i++) {
        if (ws[i].failed) {
            fprintf(stderr, "mongo_load: thread %ld could not connect: %s\n", i, ws[i].err);
            goto out_threads;
        }
        total += ws[i].n;
        bad += ws[i].bad;
        if (ws[i].done_ns > end)
            end = ws[i].done_ns;
    }
    for (long i = 0; i < threads; i++)
        if (ws[i].err[0] != '\0') {
            fprintf(stderr, "mongo_load: first error of thread %ld: %s\n", i, ws[i].err);
            break;
        }
    all = malloc((total > 0 ? total : 1) * sizeof(*all));
    if (all == NULL) {
        fprintf(stderr, "mongo_load: out of memory\n");
        goto out_threads;
    }
    for (long i = 0; i < threads; i++) {
        if (ws[i].n > 0)
            memcpy(all + k, ws[i].lat_us, ws[i].n * sizeof(*all));
        k += ws[i].n;
    }
    qsort(all, total, sizeof(*all), cmp_u32);
    elapsed = (double)(end - t0) / 1e9;
    printf("requests %zu seconds %.3f rate %.1f p50_ms %.3f p99_ms %.3f bad %" PRIu64 "\n", total,
           elapsed, elapsed > 0 ? (double)total / elapsed : 0, pct_ms(all, total, 50),
           pct_ms(all, total, 99), bad);
    free(all);
    status = total > 0 && bad < total ? 0 : 1;
    if (status != 0)
        fprintf(stderr, "mongo_load: no request succeeded\n");
out_threads:
    for (long i = 0; i < threads; i++)
        free(ws[i].lat_us);
    free(ws);
    pthread_barrier_destroy(&ld.go);
out_mongoc:
    if (ld.pool != NULL)
        mongoc_client_pool_destroy(ld.pool);
    if (uri != NULL)
        mongoc_uri_destroy(uri);
    mongoc_cleanup();
out:
    free(ld.ids);
    return status;
}
