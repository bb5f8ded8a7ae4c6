/*
 * analytics-svc's ingest, end to end on the local stack (integration): the deterministic event
 * set of tools/eventgen, produced to Kafka topics of the test's own as their owners publish them
 * (each type on its topic, keyed by its subject), read by the real analytics-svc binary, and
 * every endpoint's answer over the set's window compared with the answers eventgen computed by
 * plain sums. Then what must not move them: the whole set again, a new consumer group reading
 * every topic from the beginning, users deleted (their ids gone from every event, the
 * aggregates unchanged), a poison record (to "<topic>.dlq", the events after it still
 * applied), and ClickHouse stopped and started during ingest (nothing lost, nothing counted
 * twice).
 *
 * Isolation in the shared `analytics` database: every run draws its own seed (so its own event
 * ids) and its own hour of 1980-1999 (other tests take days of 2001: their events must not
 * fall in it), and asks only about that hour. The topics and consumer groups are named after a
 * random run id. The ClickHouse test stops the stack's ClickHouse (run it
 * under the integration lock) and starts it again, also when it fails.
 */
#include "testconsume.h"
#include "testenv.h"
#include "testproc.h"

#include "eventgen.h"
#include "polyglot/events.h"
#include "svc/kafka.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <arpa/inet.h>
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AN_SVC_BIN
#error "AN_SVC_BIN: the analytics-svc binary"
#endif

#define USERS        40
#define MINUTES      60
#define VISIBLE_S    120 /* how long events may take to show in /v1/events */
#define NTOPICS      3
#define EVENTS_LIMIT 100

/* ---- the run: its topics, its window, its set ---------------------------------------------- */

static const char *const platform_topics[NTOPICS] = {TOPIC_USER_EVENTS, TOPIC_PRODUCT_EVENTS,
                                                     TOPIC_CART_EVENTS};

static struct run {
    char id[16];
    char topics[NTOPICS][96];
    char topic_list[3 * 96 + 4];
    int64_t from_ms, to_ms;
    char from[SVC_RFC3339_MS_LEN + 1], to[SVC_RFC3339_MS_LEN + 1];
    struct eg_set *set;
    json_t *expect;
    struct svc_producer *producer;
    int64_t produced; /* records sent to the run's topics so far */
} run;

/* What the test was doing, for the failure messages: "after the replay". */
static const char *phase = "";

static const char *brokers(void)
{
    const char *b = testenv_get("analytics-svc", "KAFKA_BROKERS");
    char url[256];

    snprintf(url, sizeof(url), "kafka://%s", b);
    testenv_require_port("kafka", testenv_port_of_url(url));
    return b;
}

static uint64_t random_u64(void)
{
    struct svc_uuid u;
    uint64_t v = 0;

    svc_uuid_v4(&u);
    for (int i = 0; i < 8; i++)
        v = v << 8 | u.bytes[i];
    return v;
}

/* The run's topics (and their .dlq), its window (a random hour of 1980-1999) and its events. */
static void run_setup(const char *tag)
{
    struct svc_topic_spec specs[2 * NTOPICS];
    struct svc_kafka_config kc = {.brokers = brokers(), .client_id = "analytics-ingest-test"};
    char dlq[NTOPICS][110], err[160];
    struct eg_opts o = {.users = USERS, .minutes = MINUTES};
    uint64_t r = random_u64();

    memset(&run, 0, sizeof(run));
    snprintf(run.id, sizeof(run.id), "%s%08" PRIx64, tag, r >> 32);
    for (int i = 0; i < NTOPICS; i++) {
        snprintf(run.topics[i], sizeof(run.topics[i]), "an-it-%s-%s", run.id, platform_topics[i]);
        snprintf(dlq[i], sizeof(dlq[i]), "%s.dlq", run.topics[i]);
        specs[i] = (struct svc_topic_spec){run.topics[i], 3};
        specs[NTOPICS + i] = (struct svc_topic_spec){dlq[i], 1};
    }
    snprintf(run.topic_list, sizeof(run.topic_list), "%s,%s,%s", run.topics[0], run.topics[1],
             run.topics[2]);
    ck_assert_msg(svc_kafka_ensure_topics(&kc, specs, sizeof(specs) / sizeof(specs[0]), 30000) == 0,
                  "the run's topics cannot be created");
    ck_assert_int_eq(svc_producer_new(&kc, &run.producer), 0);

    /* 1980-01-01T00:00:00Z plus a random hour of the 20 years after. */
    run.from_ms = INT64_C(315532800000) + (int64_t)(r % UINT64_C(175200)) * 3600000;
    run.to_ms = run.from_ms + (int64_t)MINUTES * 60000;
    svc_rfc3339_format_ms(run.from_ms, run.from);
    svc_rfc3339_format_ms(run.to_ms, run.to);
    o.seed = random_u64();
    o.start_ms = run.from_ms;
    run.set = eg_generate(&o, err, sizeof(err));
    ck_assert_msg(run.set != NULL, "eventgen: %s", err);
    run.expect = eg_expect(run.set);
    fprintf(stderr,
            "analytics_ingest_test: run '%s', eventgen --seed %" PRIu64 " --users %d "
            "--start %s --minutes %d: %zu events\n",
            run.id, o.seed, USERS, run.from, MINUTES, eg_count(run.set));
}

static void run_teardown(void)
{
    svc_producer_close(&run.producer, 5000);
    eg_set_free(run.set);
    run.set = NULL;
}

static const char *topic_of(const char *platform_topic)
{
    for (int i = 0; i < NTOPICS; i++)
        if (strcmp(platform_topics[i], platform_topic) == 0)
            return run.topics[i];
    ck_abort_msg("no topic '%s' in the run", platform_topic);
    return NULL;
}

/* ---- producing ----------------------------------------------------------------------------- */

static const struct svc_kafka_header ce_header = {"content-type", SVC_EVENT_CONTENT_TYPE,
                                                  sizeof(SVC_EVENT_CONTENT_TYPE) - 1};

/* Sends the events [FROM, TO) of the set that KEEP picks (NULL: all), each on its owner's
 * topic of the run, keyed by its subject, and waits for the broker's acknowledgements. */
static void produce(size_t from, size_t to, bool (*keep)(const struct eg_event *e))
{
    struct svc_kafka_msg *msgs = calloc(to - from + 1, sizeof(*msgs));
    size_t n = 0;

    ck_assert_ptr_nonnull(msgs);
    for (size_t i = from; i < to; i++) {
        const struct eg_event *e = eg_event_at(run.set, i);

        if (keep != NULL && !keep(e))
            continue;
        msgs[n++] = (struct svc_kafka_msg){.topic = topic_of(e->topic),
                                           .key = e->key,
                                           .key_len = strlen(e->key),
                                           .value = e->json,
                                           .value_len = strlen(e->json),
                                           .headers = &ce_header,
                                           .nheaders = 1};
    }
    ck_assert_msg(svc_producer_send_wait(run.producer, msgs, n, 60000) == 0,
                  "the broker did not take %zu events", n);
    run.produced += (int64_t)n;
    free(msgs);
}

static void produce_one(const char *topic, const char *key, const char *json)
{
    struct svc_kafka_msg m = {.topic = topic,
                              .key = key,
                              .key_len = strlen(key),
                              .value = json,
                              .value_len = strlen(json),
                              .headers = &ce_header,
                              .nheaders = 1};

    ck_assert_int_eq(svc_producer_send_wait(run.producer, &m, 1, 30000), 0);
    run.produced++;
}

static bool not_deleted(const struct eg_event *e)
{
    return strcmp(e->type, EV_USER_DELETED) != 0;
}

static bool only_deleted(const struct eg_event *e)
{
    return !not_deleted(e);
}

/* ---- the service --------------------------------------------------------------------------- */

/* The service's environment: the stack's connection settings, and the run's topics, group
 * and key. Static storage, valid until the next call. */
static const char *const *svc_env(const char *topics, const char *group)
{
    static const char *const keys[] = {"CLICKHOUSE_URL", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD",
                                       "CLICKHOUSE_DATABASE", "KAFKA_BROKERS"};
    static char vars[8][1200];
    static const char *env[] = {vars[0], vars[1], vars[2], vars[3],           vars[4],
                                vars[5], vars[6], vars[7], "BATCH_AGE=100ms", NULL};

    for (size_t i = 0; i < 5; i++)
        snprintf(vars[i], sizeof(vars[i]), "%s=%s", keys[i], testenv_get("analytics-svc", keys[i]));
    /* A key of the run's own: the run's users are pseudonymised with it, nobody else's. */
    snprintf(vars[5], sizeof(vars[5]), "PSEUDONYM_KEY=analytics-ingest-test-%s", run.id);
    snprintf(vars[6], sizeof(vars[6]), "ANALYTICS_TOPICS=%s", topics);
    snprintf(vars[7], sizeof(vars[7]), "ANALYTICS_GROUP=an-it-%s-%s", run.id, group);
    return env;
}

static void start_svc(struct testproc *p, const char *group)
{
    testproc_start(p, AN_SVC_BIN, "analytics-svc", svc_env(run.topic_list, group));
}

/* A port nothing listens on now. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert(fd >= 0);
    ck_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    ck_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Runs the service with ANALYTICS_TOPICS=TOPICS, which it must refuse at start: its exit
 * status (-1 if it was still running after 30 s, then killed), its output in OUT. */
static int start_refused(const char *topics, char *out, size_t cap)
{
    const char *const *env = svc_env(topics, "refused");
    const char *e[16];
    char log[128], port[32];
    size_t ne = 0;
    int status = -1;
    pid_t pid;
    FILE *f;

    snprintf(log, sizeof(log), "/tmp/it_an_refused_%d.log", (int)getpid());
    snprintf(port, sizeof(port), "HTTP_PORT=%d", free_port());
    e[ne++] = port;
    for (size_t i = 0; env[i] != NULL; i++)
        e[ne++] = env[i];
    e[ne] = NULL;
    pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        FILE *o = freopen(log, "w", stderr);
        char *const argv[] = {(char *)AN_SVC_BIN, NULL};

        if (o != NULL)
            dup2(fileno(o), STDOUT_FILENO);
        execve(AN_SVC_BIN, argv, (char *const *)e);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        status = -1;
        svc_sleep_ms(100);
    }
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    out[0] = '\0';
    f = fopen(log, "r");
    if (f != NULL) {
        size_t n = fread(out, 1, cap - 1, f);

        out[n] = '\0';
        fclose(f);
    }
    unlink(log);
    return status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* GET PATH (from FMT) on P as JSON, which must answer 200. The caller drops the reference. */
static json_t *get_json(const struct testproc *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static json_t *get_json(const struct testproc *p, const char *fmt, ...)
{
    char path[1024];
    char *body = NULL;
    json_error_t err;
    json_t *j;
    va_list ap;
    long st;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    st = testproc_get(p, path, &body);
    ck_assert_msg(st == 200, "GET %s: %ld %s", path, st, body != NULL ? body : "");
    j = json_loads(body, 0, &err);
    ck_assert_msg(j != NULL, "GET %s: not JSON: %s", path, err.text);
    free(body);
    return j;
}

/* The cursor /v1/events gives for the position (MS, ID): base64url, unpadded, of "<ms>:<id>"
 * (lib's svc_keyset_cursor). The test starts its pages at the end of its window with it, so
 * that it never pages through the newer events of everyone else. */
static void cursor_at(int64_t ms, const char *id, char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char raw[96];
    int n = snprintf(raw, sizeof(raw), "%lld:%s", (long long)ms, id);
    size_t j = 0;

    for (int i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)raw[i] << 16;

        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)raw[i + 2];
        ck_assert(j + 5 < cap);
        out[j++] = b64[(v >> 18) & 63];
        out[j++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[j++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[j++] = b64[v & 63];
    }
    out[j] = '\0';
}

/* Every event /v1/events shows in the run's window, newest first (a new reference). */
static json_t *window_events(const struct testproc *p)
{
    json_t *all = json_array();
    char cursor[160];
    bool done = false;

    cursor_at(run.to_ms, "ffffffff-ffff-ffff-ffff-ffffffffffff", cursor, sizeof(cursor));
    while (!done) {
        json_t *page = get_json(p, "/v1/events?limit=%d&cursor=%s", EVENTS_LIMIT, cursor);
        json_t *evs = json_object_get(page, "events"), *next = json_object_get(page, "next_cursor");
        size_t i;
        json_t *e;

        ck_assert(json_is_array(evs));
        json_array_foreach(evs, i, e)
        {
            int64_t t;

            ck_assert(svc_rfc3339_parse(json_string_value(json_object_get(e, "time")), &t));
            if (t < run.from_ms) {
                done = true;
                break;
            }
            json_array_append(all, e);
        }
        if (json_is_string(next))
            snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        else
            done = true;
        json_decref(page);
    }
    return all;
}

static bool has_id(json_t *events, const char *id)
{
    size_t i;
    json_t *e;

    json_array_foreach(events, i, e) if (strcmp(json_string_value(json_object_get(e, "id")), id) ==
                                         0) return true;
    return false;
}

/* How many of the set's events KEEP picks (NULL: all) /v1/events shows. */
static size_t visible(const struct testproc *p, bool (*keep)(const struct eg_event *e),
                      size_t *want)
{
    json_t *evs = window_events(p);
    size_t n = 0;

    *want = 0;
    for (size_t i = 0; i < eg_count(run.set); i++) {
        const struct eg_event *e = eg_event_at(run.set, i);

        if (keep != NULL && !keep(e))
            continue;
        (*want)++;
        n += has_id(evs, e->id);
    }
    json_decref(evs);
    return n;
}

static void wait_visible(const struct testproc *p, bool (*keep)(const struct eg_event *e))
{
    size_t n = 0, want = 0;

    for (int i = 0; i < VISIBLE_S * 2; i++) {
        n = visible(p, keep, &want);
        if (n == want)
            return;
        svc_sleep_ms(500);
    }
    testproc_show_log(p);
    ck_abort_msg("%zu of %zu events visible in /v1/events after %d s", n, want, VISIBLE_S);
}

/* Records of the run's topics the consumer of P answered RESULT ("done", "poison") for. */
static int64_t consumed(const struct testproc *p, const char *result)
{
    int64_t n = 0;

    for (int t = 0; t < NTOPICS; t++) {
        char sample[256];
        double v;

        snprintf(sample, sizeof(sample), "kafka_consumed_total{topic=\"%s\",result=\"%s\"}",
                 run.topics[t], result);
        v = testproc_metric(p, sample);
        n += v > 0 ? (int64_t)v : 0;
    }
    return n;
}

/* Waits until the consumer of P has finished every record of the run's topics: it answered
 * for as many records as were produced, and no partition has a lag (a staged record is not
 * finished until its batch is written); twice in a row. A partition that never had a record has
 * no lag figure at all. */
static void wait_caught_up(const struct testproc *p)
{
    int done_in_a_row = 0;
    int64_t answered = 0;

    for (int i = 0; i < VISIBLE_S * 2 && done_in_a_row < 2; i++) {
        bool all = (answered = consumed(p, "done") + consumed(p, "poison")) >= run.produced;

        for (int t = 0; t < NTOPICS && all; t++)
            for (int part = 0; part < 3 && all; part++) {
                char sample[256];

                snprintf(sample, sizeof(sample),
                         "kafka_consumer_lag{topic=\"%s\",partition=\"%d\"}", run.topics[t], part);
                all = testproc_metric(p, sample) <= 0;
            }
        done_in_a_row = all ? done_in_a_row + 1 : 0;
        svc_sleep_ms(500);
    }
    if (done_in_a_row < 2)
        testproc_show_log(p);
    ck_assert_msg(done_in_a_row >= 2,
                  "the consumer did not catch up in %d s: %lld of %lld records answered", VISIBLE_S,
                  (long long)answered, (long long)run.produced);
}

/* ---- the answers --------------------------------------------------------------------------- */

static int64_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_integer(v), "'%s' is not an integer", key);
    return json_integer_value(v);
}

static void assert_summary(const struct testproc *p)
{
    static const char *const keys[] = {"signups",       "active_users",  "checkouts",
                                       "orders_placed", "orders_failed", "revenue_cents"};
    json_t *got = get_json(p, "/v1/summary?from=%s&to=%s", run.from, run.to);
    json_t *want = json_object_get(run.expect, "summary");

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_msg(int_of(got, keys[i]) == int_of(want, keys[i]),
                      "summary %s: %s is %lld, the set has %lld", phase, keys[i],
                      (long long)int_of(got, keys[i]), (long long)int_of(want, keys[i]));
    json_decref(got);
}

static void assert_revenue(const struct testproc *p, const char *interval)
{
    json_t *got = get_json(p, "/v1/revenue?from=%s&to=%s&interval=%s", run.from, run.to, interval);
    json_t *want = json_object_get(json_object_get(run.expect, "revenue"), interval);
    json_t *points = json_object_get(got, "points"), *pt, *nonzero = json_array();
    size_t i;

    ck_assert_int_eq(int_of(got, "orders"),
                     int_of(json_object_get(run.expect, "summary"), "orders_placed"));
    ck_assert_int_eq(int_of(got, "revenue_cents"),
                     int_of(json_object_get(run.expect, "summary"), "revenue_cents"));
    /* The dense series' non-empty buckets are the set's, bucket by bucket. */
    json_array_foreach(points, i,
                       pt) if (int_of(pt, "orders") != 0 || int_of(pt, "revenue_cents") != 0)
        json_array_append(nonzero, pt);
    if (!json_equal(nonzero, want)) {
        char *a = json_dumps(nonzero, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);

        ck_abort_msg("revenue per %s %s: %s, the set has %s", interval, phase, a, b);
    }
    json_decref(nonzero);
    json_decref(got);
}

static void assert_top(const struct testproc *p, const char *by)
{
    json_t *got =
        get_json(p, "/v1/top-products?from=%s&to=%s&by=%s&limit=%d", run.from, run.to, by, 100);
    json_t *want = json_object_get(json_object_get(run.expect, "top_products"), by);
    json_t *products = json_object_get(got, "products");

    if (!json_equal(products, want)) {
        char *a = json_dumps(products, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);

        ck_abort_msg("top products by %s %s: %s, the set has %s", by, phase, a, b);
    }
    json_decref(got);
}

static void assert_funnel(const struct testproc *p)
{
    json_t *got = get_json(p, "/v1/funnel?from=%s&to=%s", run.from, run.to);
    json_t *want = json_object_get(run.expect, "funnel"), *steps = json_object_get(got, "steps");
    size_t i;
    json_t *s;

    ck_assert_uint_eq(json_array_size(steps), 4);
    json_array_foreach(steps, i, s)
    {
        const char *step = json_string_value(json_object_get(s, "step"));

        ck_assert_msg(int_of(s, "users") == int_of(want, step),
                      "funnel %s: %s is %lld, the set has %lld", phase, step,
                      (long long)int_of(s, "users"), (long long)int_of(want, step));
    }
    json_decref(got);
}

static void assert_answers(const struct testproc *p, const char *when)
{
    phase = when;
    assert_summary(p);
    assert_revenue(p, "minute");
    assert_revenue(p, "hour");
    assert_revenue(p, "day");
    assert_top(p, "units");
    assert_top(p, "revenue");
    assert_funnel(p);
}

/* The events of the set per type, as /v1/events shows them: the set's counts. */
static void assert_types(const struct testproc *p)
{
    json_t *evs = window_events(p), *counts = json_object(), *e;
    size_t i;

    for (size_t k = 0; k < eg_count(run.set); k++) {
        const struct eg_event *ev = eg_event_at(run.set, k);

        json_array_foreach(evs, i, e)
        {
            const char *type = json_string_value(json_object_get(e, "type"));
            json_t *old;

            if (strcmp(json_string_value(json_object_get(e, "id")), ev->id) != 0)
                continue;
            old = json_object_get(counts, type);
            json_object_set_new(counts, type,
                                json_integer(old != NULL ? json_integer_value(old) + 1 : 1));
            break;
        }
    }
    if (!json_equal(counts, json_object_get(run.expect, "types"))) {
        char *a = json_dumps(counts, JSON_COMPACT | JSON_SORT_KEYS);
        char *b = json_dumps(json_object_get(run.expect, "types"), JSON_COMPACT | JSON_SORT_KEYS);

        ck_abort_msg("events per type: %s, the set has %s", a, b);
    }
    json_decref(counts);
    json_decref(evs);
}

/* Whether any event of the window still names one of the deleted users, anywhere. */
static const char *deleted_user_seen(const struct testproc *p)
{
    static char who[64];
    json_t *evs = window_events(p), *deleted = json_object_get(run.expect, "deleted_users");
    char *text = json_dumps(evs, JSON_COMPACT);
    const char *found = NULL;
    size_t i;
    json_t *u;

    json_array_foreach(deleted, i,
                       u) if (found == NULL && strstr(text, json_string_value(u)) != NULL)
    {
        snprintf(who, sizeof(who), "%s", json_string_value(u));
        found = who;
    }
    free(text);
    json_decref(evs);
    return found;
}

/* ---- tests --------------------------------------------------------------------------------- */

/* A user of the set still there at the end (not deleted), registered in the window. */
static const char *kept_user(void)
{
    for (size_t i = 0; i < eg_count(run.set); i++) {
        const struct eg_event *e = eg_event_at(run.set, i);
        json_t *del = json_object_get(run.expect, "deleted_users"), *u;
        bool gone = false;
        size_t k;

        if (strcmp(e->type, EV_USER_REGISTERED) != 0)
            continue;
        json_array_foreach(del, k, u) gone = gone || strcmp(json_string_value(u), e->key) == 0;
        if (!gone)
            return e->key;
    }
    ck_abort_msg("no user of the set stays");
    return NULL;
}

/* An event of the run's own, not of the set, about USER (a rename in the window): it changes
 * no answer. */
static const char *extra_event(const char *type, const char *subject, const char *data, char *id)
{
    static char json[2048];
    char t[SVC_RFC3339_MS_LEN + 1];

    svc_uuid_v4_str(id);
    svc_rfc3339_format_ms(run.to_ms - 1000, t);
    snprintf(json, sizeof(json),
             "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/user-svc\",\"type\":\"%s\","
             "\"subject\":\"%s\",\"time\":\"%s\",\"datacontenttype\":\"application/json\","
             "\"data\":%s}",
             id, type, subject, t, data);
    return json;
}

static bool want_any(const char *subject, void *arg)
{
    return strcmp(subject, arg) == 0;
}

static bool got_one(const struct testconsumed *c, void *arg)
{
    (void)arg;
    return c->n >= 1;
}

START_TEST(answers_are_exact_and_survive_replays_poison_and_deletions)
{
    struct testproc svc;
    char poison_id[SVC_UUID_STR_LEN + 1], after_id[SVC_UUID_STR_LEN + 1], data[512];
    const char *user, *poison, *after;
    int64_t since = svc_wall_ms() - 2000;
    struct testconsumed dlq;
    const char *seen;
    char dlq_topic[120];

    run_setup("a");
    produce(0, eg_count(run.set), not_deleted);
    start_svc(&svc, "first");
    wait_visible(&svc, not_deleted);
    assert_answers(&svc, "first ingest");

    /* A poison record (an order without lines: nothing to count) goes to the DLQ, and the
     * event after it on the same partition is still applied. */
    user = kept_user();
    poison = extra_event(EV_ORDER_PLACED, user, "{\"status\":\"placed\"}", poison_id);
    produce_one(run.topics[0], user, poison);
    snprintf(data, sizeof(data),
             "{\"id\":\"%s\",\"email\":\"renamed@example.org\",\"name\":\"Renamed\","
             "\"status\":\"active\",\"version\":7,\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
             user, run.from, run.from);
    after = extra_event(EV_USER_UPDATED, user, data, after_id);
    produce_one(run.topics[0], user, after);
    for (int i = 0; i < VISIBLE_S * 2; i++) {
        json_t *evs = window_events(&svc);
        bool there = has_id(evs, after_id);

        json_decref(evs);
        if (there)
            break;
        svc_sleep_ms(500);
    }
    {
        json_t *evs = window_events(&svc);

        ck_assert_msg(has_id(evs, after_id), "the event after the poison record never showed");
        ck_assert_msg(!has_id(evs, poison_id), "the poison record was stored");
        json_decref(evs);
    }
    snprintf(dlq_topic, sizeof(dlq_topic), "%s.dlq", run.topics[0]);
    testconsume(brokers(), dlq_topic, since, want_any, got_one, (void *)user, 60, &dlq);
    ck_assert_msg(dlq.n == 1 && strcmp(dlq.v[0].id, poison_id) == 0,
                  "%zu records in '%s', not the poison one", dlq.n, dlq_topic);
    testconsume_release(&dlq);
    assert_answers(&svc, "after the poison record");

    /* The deletions: the ids are gone from every event of the window (mutations take their
     * time), and no answer moves. */
    produce(0, eg_count(run.set), only_deleted);
    seen = "";
    for (int i = 0; i < VISIBLE_S * 2 && seen != NULL; i++) {
        seen = deleted_user_seen(&svc);
        if (seen != NULL)
            svc_sleep_ms(500);
    }
    ck_assert_msg(seen == NULL, "deleted user '%s' still in /v1/events", seen);
    ck_assert_uint_gt(json_array_size(json_object_get(run.expect, "deleted_users")), 0);
    assert_answers(&svc, "after the deletions");
    assert_types(&svc);

    /* The whole set again, to the same group: redelivered events count once. */
    produce(0, eg_count(run.set), NULL);
    wait_caught_up(&svc);
    assert_answers(&svc, "after the set again");
    ck_assert_ptr_null(deleted_user_seen(&svc));
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);

    /* A new group reads every topic from the beginning: twice the set, the poison, the rest. */
    start_svc(&svc, "replay");
    wait_caught_up(&svc);
    /* It did read everything: the set twice and the event after the poison record. */
    ck_assert_int_eq(consumed(&svc, "done"), 2 * (int64_t)eg_count(run.set) + 1);
    ck_assert_int_eq(consumed(&svc, "poison"), 1);
    assert_answers(&svc, "after a replay by a new group");
    ck_assert_ptr_null(deleted_user_seen(&svc));
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);
    run_teardown();
}
END_TEST

START_TEST(a_bad_topic_list_is_refused_at_start)
{
    /* Never an empty list: that is the default, every platform topic, which this test must not
     * read. */
    static const char *const bad[] = {
        "an-it-a,,an-it-b",
        "an-it-a,bad topic!",
        "an-it-a,an-it-a",
        "t1,t2,t3,t4,t5,t6,t7,t8,t9,t10,t11,t12,t13,t14,t15,t16,t17",
    };
    char out[16384];

    memset(&run, 0, sizeof(run));
    snprintf(run.id, sizeof(run.id), "c%08" PRIx64, random_u64() >> 32);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = start_refused(bad[i], out, sizeof(out));

        ck_assert_msg(st != 0 && st != -1, "ANALYTICS_TOPICS='%s': exit status %d\n%.2000s", bad[i],
                      st, out);
        ck_assert_msg(strstr(out, "ANALYTICS_TOPICS") != NULL,
                      "ANALYTICS_TOPICS='%s' refused without saying why:\n%.2000s", bad[i], out);
    }
}
END_TEST

static void clickhouse_back_up(void)
{
    if (teststack("up clickhouse") != 0)
        fprintf(stderr, "analytics_ingest_test: could not start clickhouse again\n");
}

START_TEST(clickhouse_stopped_during_ingest_loses_and_double_counts_nothing)
{
    struct testproc svc;
    size_t half;

    run_setup("b");
    half = eg_count(run.set) / 2;
    start_svc(&svc, "outage");
    produce(0, half, NULL);
    wait_caught_up(&svc);

    ck_assert_msg(teststack("stop clickhouse") == 0, "stack.sh stop clickhouse failed");
    produce(half, eg_count(run.set), NULL);
    /* Long enough for the consumer to fetch, stage and fail to write a few batches. */
    svc_sleep_ms(5000);
    ck_assert_int_ne(testproc_get(&svc, "/readyz", NULL), 200);
    ck_assert_msg(teststack("up clickhouse") == 0, "stack.sh up clickhouse failed");

    wait_visible(&svc, NULL);
    wait_caught_up(&svc);
    assert_answers(&svc, "after the outage");
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);
    run_teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("analytics_ingest");
    TCase *ingest = tcase_create("ingest");
    TCase *outage = tcase_create("outage");

    tcase_set_timeout(ingest, 600);
    tcase_add_test(ingest, answers_are_exact_and_survive_replays_poison_and_deletions);
    tcase_add_test(ingest, a_bad_topic_list_is_refused_at_start);
    suite_add_tcase(s, ingest);
    tcase_add_checked_fixture(outage, clickhouse_back_up, NULL);
    tcase_add_unchecked_fixture(outage, NULL, clickhouse_back_up);
    tcase_set_timeout(outage, 600);
    tcase_add_test(outage, clickhouse_stopped_during_ingest_loses_and_double_counts_nothing);
    suite_add_tcase(s, outage);
    return testenv_run(s);
}
