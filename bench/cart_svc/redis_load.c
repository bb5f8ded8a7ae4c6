/*
 * redis_load: the raw-engine side of bench/cart_svc. It asks Redis for exactly what one
 * GET /v1/carts/{user_id} of cart-svc asks of it, from THREADS threads for SECONDS seconds, so
 * that run.sh can set cart-svc's rate against Redis' own, measured the same way on the same
 * machine:
 *
 *   REDIS_URL=redis://user:password@127.0.0.1:17379/0 redis_load SECONDS THREADS USERS_FILE
 *
 * One request is what cart_store.c's read_cart() sends for a GET (key prefix empty, as in
 * production), one command after the other, none pipelined, as the store sends them:
 *
 *   HGETALL user:{id}     the read model of user-events; unknown or deleted: stop (404)
 *   HGETALL cart:{id}     the cart's lines
 *   PTTL cart:{id}        when the cart expires
 *
 * USERS_FILE holds user ids, one a line; each request picks one at random. Each thread has its
 * own connection for the whole run, opened, authenticated (AUTH user password, SELECT db, as
 * cart-svc's pool does) and pinged before the clock starts. The program only reads.
 *
 * The URL comes from the environment, not the command line, because it holds a password (ps
 * shows command lines to everybody). On success it prints one line on stdout:
 *
 *   requests N seconds S rate R p50_ms X p99_ms Y bad B
 *
 * where a request is bad when a command failed or the user is unknown, which cart-svc would
 * answer with an error. Exit status 1 on a usage or connection error, or when every request was
 * bad.
 *
 * Built by run.sh into its temporary folder with -O2 for the measurement; the CMake build also
 * builds it (bench/CMakeLists.txt), so that it keeps compiling under the project's warnings.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256
#define MAX_SECONDS 600
#define MAX_IDS     100000
#define ID_MAX      64
#define KEY_MAX     (ID_MAX + 16)
#define PART_MAX    256

/* The parts of a redis://[user[:password]@]host[:port][/db] URL. */
struct url {
    char user[PART_MAX], password[PART_MAX], host[PART_MAX];
    int port, db;
};

struct load {
    struct url u;
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
    bool failed; /* could not even connect */
    char err[160];
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
        fprintf(stderr, "redis_load: out of memory\n");
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

static void note_error(struct worker *w, const char *what, const char *msg)
{
    if (w->err[0] == '\0')
        snprintf(w->err, sizeof(w->err), "%s: %s", what, msg);
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

/* Copies the N bytes at S into DST (PART_MAX): false when they do not fit. */
static bool part(char *dst, const char *s, size_t n)
{
    if (n >= PART_MAX)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* TEXT into *U. No percent-decoding: deploy/local's passwords are alphanumeric. */
static bool parse_url(const char *text, struct url *u)
{
    const char *p = text, *at, *colon, *slash, *end;
    char num[16];
    long v;

    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (strncmp(p, "redis://", 8) != 0)
        return false;
    p += 8;
    slash = strchr(p, '/');
    end = slash != NULL ? slash : p + strlen(p);
    at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            if (!part(u->user, p, (size_t)(colon - p)) ||
                !part(u->password, colon + 1, (size_t)(at - colon - 1)))
                return false;
        } else if (!part(u->password, p, (size_t)(at - p))) {
            return false;
        }
        p = at + 1;
    }
    colon = memchr(p, ':', (size_t)(end - p));
    if (!part(u->host, p, (size_t)((colon != NULL ? colon : end) - p)) || u->host[0] == '\0')
        return false;
    if (colon != NULL) {
        if ((size_t)(end - colon - 1) >= sizeof(num))
            return false;
        memcpy(num, colon + 1, (size_t)(end - colon - 1));
        num[end - colon - 1] = '\0';
        if (!parse_int(num, 1, 65535, &v))
            return false;
        u->port = (int)v;
    }
    if (slash != NULL && slash[1] != '\0') {
        if (!parse_int(slash + 1, 0, 1000, &v))
            return false;
        u->db = (int)v;
    }
    return true;
}

/* One command; true when Redis answered and not with an error. The reply, when OUT, is the
 * caller's to free. */
static bool command(struct worker *w, redisContext *c, redisReply **out, const char *fmt, ...)
{
    va_list ap;
    redisReply *rep;

    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (rep == NULL) {
        note_error(w, "connection", c->errstr);
        return false;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        note_error(w, "command", rep->str);
        freeReplyObject(rep);
        return false;
    }
    if (out != NULL)
        *out = rep;
    else
        freeReplyObject(rep);
    return true;
}

/* The value of FIELD in an HGETALL answer, or NULL. */
static const char *hget(const redisReply *h, const char *field)
{
    if (h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, field) == 0)
            return h->element[i + 1]->type == REDIS_REPLY_STRING ? h->element[i + 1]->str : NULL;
    return NULL;
}

/* GET /v1/carts/{id}: true when cart-svc would answer 200. */
static bool cart_request(struct worker *w, redisContext *c, const char *user)
{
    char uk[KEY_MAX], ck[KEY_MAX];
    redisReply *u = NULL;
    const char *v, *d;
    bool known;

    snprintf(uk, sizeof(uk), "user:%s", user);
    snprintf(ck, sizeof(ck), "cart:%s", user);
    if (!command(w, c, &u, "HGETALL %s", uk))
        return false;
    v = hget(u, "version");
    d = hget(u, "deleted");
    known = v != NULL && (d == NULL || strcmp(d, "1") != 0);
    freeReplyObject(u);
    if (!known)
        return false;
    return command(w, c, NULL, "HGETALL %s", ck) && command(w, c, NULL, "PTTL %s", ck);
}

/* A connection set up as cart-svc's pool sets one up: AUTH, SELECT, PING. NULL on failure. */
static redisContext *open_conn(struct worker *w, const struct url *u)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(u->host, u->port, tv);
    bool ok;

    if (c == NULL || c->err != 0) {
        note_error(w, "connect", c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    ok = redisSetTimeout(c, tv) == REDIS_OK;
    if (ok && u->password[0] != '\0' && u->user[0] != '\0')
        ok = command(w, c, NULL, "AUTH %s %s", u->user, u->password);
    else if (ok && u->password[0] != '\0')
        ok = command(w, c, NULL, "AUTH %s", u->password);
    if (ok && u->db != 0)
        ok = command(w, c, NULL, "SELECT %d", u->db);
    if (ok)
        ok = command(w, c, NULL, "PING");
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct load *ld = w->ld;
    redisContext *c = open_conn(w, &ld->u);

    /* Connected (and authenticated) before the clock starts. */
    w->failed = c == NULL;
    pthread_barrier_wait(&ld->go);
    while (!w->failed) {
        const char *id = ld->ids[next_rand(&w->rng) % ld->n_ids];
        int64_t t0 = mono_ns(), t1;
        bool ok;

        if (t0 >= ld->deadline_ns)
            break;
        ok = cart_request(w, c, id);
        t1 = mono_ns();
        if (w->n == w->cap) {
            w->cap = w->cap != 0 ? 2 * w->cap : 4096;
            w->lat_us = xrealloc(w->lat_us, w->cap * sizeof(*w->lat_us));
        }
        w->lat_us[w->n++] = (uint32_t)((t1 - t0) / 1000);
        if (!ok)
            w->bad++;
        /* A lost connection is not retried: every later request would only count as bad. */
        if (c->err != 0)
            w->failed = true;
    }
    w->done_ns = mono_ns();
    redisFree(c);
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

/* The ids of PATH, one a line (blank lines skipped); ids are UUIDs, checked loosely. */
static int read_ids(const char *path, struct load *ld)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t cap = 0, lineno = 0;

    if (f == NULL) {
        fprintf(stderr, "redis_load: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, "\r\n");

        lineno++;
        line[len] = '\0';
        if (len == 0)
            continue;
        if (len > ID_MAX || strspn(line, "0123456789abcdefABCDEF-") != len) {
            fprintf(stderr, "redis_load: '%s' line %zu is not an id\n", path, lineno);
            fclose(f);
            return -1;
        }
        if (ld->n_ids == MAX_IDS) {
            fprintf(stderr, "redis_load: more than %d ids in '%s'\n", MAX_IDS, path);
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
        fprintf(stderr, "redis_load: no ids in '%s'\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct load ld = {0};
    struct worker *ws;
    const char *env = getenv("REDIS_URL");
    long secs, threads;
    size_t total = 0, k = 0;
    uint64_t bad = 0;
    uint32_t *all;
    int64_t t0, end = 0;
    double elapsed;
    int status = 1;

    if (argc != 4 || !parse_int(argv[1], 1, MAX_SECONDS, &secs) ||
        !parse_int(argv[2], 1, MAX_THREADS, &threads)) {
        fprintf(stderr, "usage: REDIS_URL=... redis_load SECONDS(1-%d) THREADS(1-%d) USERS_FILE\n",
                MAX_SECONDS, MAX_THREADS);
        return 1;
    }
    if (env == NULL || env[0] == '\0') {
        fprintf(stderr, "redis_load: REDIS_URL is not set\n");
        return 1;
    }
    /* The message quotes no part of the URL, so no password is printed. */
    if (!parse_url(env, &ld.u)) {
        fprintf(stderr,
                "redis_load: REDIS_URL is not redis://[user[:password]@]host[:port][/db]\n");
        return 1;
    }
    if (read_ids(argv[3], &ld) != 0) {
        free(ld.ids);
        return 1;
    }
    ws = calloc((size_t)threads, sizeof(*ws));
    if (ws == NULL) {
        free(ld.ids);
        return 1;
    }
    /* The threads and this one: the clock starts when all of them are connected. */
    pthread_barrier_init(&ld.go, NULL, (unsigned)threads + 1);
    for (long i = 0; i < threads; i++) {
        ws[i].ld = &ld;
        ws[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^ (uint64_t)mono_ns();
        if (ws[i].rng == 0)
            ws[i].rng = 1;
        if (pthread_create(&ws[i].tid, NULL, run, &ws[i]) != 0) {
            fprintf(stderr, "redis_load: cannot start thread %ld\n", i);
            exit(1);
        }
    }
    /* The deadline is written before the barrier releases the threads, which read it after. */
    t0 = mono_ns();
    ld.deadline_ns = t0 + (int64_t)secs * 1000000000;
    pthread_barrier_wait(&ld.go);
    for (long i = 0; i < threads; i++) {
        pthread_join(ws[i].tid, NULL);
        total += ws[i].n;
        bad += ws[i].bad;
        if (ws[i].done_ns > end)
            end = ws[i].done_ns;
    }
    for (long i = 0; i < threads; i++)
        if (ws[i].failed && ws[i].err[0] != '\0') {
            fprintf(stderr, "redis_load: thread %ld: %s\n", i, ws[i].err);
            goto out;
        }
    all = malloc((total != 0 ? total : 1) * sizeof(*all));
    if (all == NULL)
        goto out;
    for (long i = 0; i < threads; i++) {
        memcpy(all + k, ws[i].lat_us, ws[i].n * sizeof(*all));
        k += ws[i].n;
    }
    qsort(all, total, sizeof(*all), cmp_u32);
    elapsed = (double)(end - t0) / 1e9;
    printf("requests %zu seconds %.3f rate %.1f p50_ms %.3f p99_ms %.3f bad %llu\n", total, elapsed,
           elapsed > 0 ? (double)total / elapsed : 0, pct_ms(all, total, 50),
           pct_ms(all, total, 99), (unsigned long long)bad);
    if (bad > 0)
        for (long i = 0; i < threads; i++)
            if (ws[i].err[0] != '\0') {
                fprintf(stderr, "redis_load: first error: %s\n", ws[i].err);
                break;
            }
    free(all);
    status = total > 0 && bad < total ? 0 : 1;
out:
    for (long i = 0; i < threads; i++)
        free(ws[i].lat_us);
    free(ws);
    free(ld.ids);
    pthread_barrier_destroy(&ld.go);
    return status;
}
