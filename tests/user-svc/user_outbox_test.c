/*
 * user-svc's transactional outbox, end to end (integration): every change's event reaches the
 * Kafka topic user-events, valid against schemas/events/, in per-user order; and nothing is
 * lost when the broker is stopped or when user-svc is killed with SIGKILL while it publishes.
 *
 * The fault tests run the real user-svc binary and stop Kafka with deploy/local/stack.sh; the
 * broker is started again after them, also when they fail.
 */
#include "testconsume.h"
#include "testenv.h"
#include "testevents.h"
#include "testhttp.h"
#include "testproc.h"

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/kafka.h"
#include "svc/outbox.h"
#include "svc/time.h"
#include "svc/uuid.h"
#include "user_svc.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef POLYGLOT_ROOT
#error "POLYGLOT_ROOT: the checkout, for deploy/local/stack.sh and schemas/events"
#endif

/* ---- helpers ------------------------------------------------------------------------------- */

static const char *brokers(void)
{
    const char *b = testenv_get("user-svc", "KAFKA_BROKERS");
    char url[256];

    snprintf(url, sizeof(url), "kafka://%s", b);
    testenv_require_port("kafka", testenv_port_of_url(url));
    return b;
}

static struct user_pg *open_store(int pool, struct user_store *st)
{
    const char *dsn = testenv_get("user-svc", "PG_DSN");
    struct user_pg_opts o = {.dsn = dsn, .pool_size = pool, .timeout_ms = 10000};
    struct user_pg *pg;
    int rc;

    testenv_require_port("postgres", testenv_port_of_url(dsn));
    rc = user_pg_new(&o, &pg);
    ck_assert_msg(rc == 0, "postgres: user-svc store does not open: %s", svc_err_name(rc));
    user_pg_store(pg, st);
    return pg;
}

static PGconn *db(void)
{
    PGconn *c = PQconnectdb(testenv_get("user-svc", "PG_DSN"));

    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "postgres: %s", PQerrorMessage(c));
    return c;
}

static PGresult *sql(PGconn *c, const char *q, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, q, n, NULL, params, NULL, NULL, 0);

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK,
                  "'%s': %s", q, PQerrorMessage(c));
    return r;
}

/* A PostgreSQL text array of the N ids: "{a,b,c}". */
static char *id_array(char (*ids)[SVC_UUID_STR_LEN + 1], size_t n)
{
    char *s = malloc(n * (SVC_UUID_STR_LEN + 1) + 3), *p = s;

    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        memcpy(p, ids[i], SVC_UUID_STR_LEN);
        p += SVC_UUID_STR_LEN;
        *p++ = i + 1 < n ? ',' : '}';
    }
    if (n == 0)
        *p++ = '}';
    *p = '\0';
    return s;
}

/* How many outbox rows of the users in IDS are published. */
static long published_of(PGconn *c, const char *ids)
{
    const char *p[1] = {ids};
    PGresult *r = sql(c,
                      "SELECT count(*) FROM outbox WHERE key = ANY($1::text[]) "
                      "AND published_at IS NOT NULL",
                      1, p);
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);

    PQclear(r);
    return n;
}

/* Creates N users, keeping their ids. */
static void create_users(struct user_store *st, int n, char (*ids)[SVC_UUID_STR_LEN + 1])
{
    struct svc_arena *a = svc_arena_new();

    for (int i = 0; i < n; i++) {
        char email[96], uid[SVC_UUID_STR_LEN + 1];
        struct user u;
        int rc;

        svc_uuid_v4_str(uid);
        snprintf(email, sizeof(email), "it.outbox.%s@example.org", uid);
        rc = st->create(st->ctx, a, email, "Outbox Test", NULL, &u);
        ck_assert_msg(rc == 0, "create %d: %s", i, svc_err_name(rc));
        memcpy(ids[i], u.id, sizeof(ids[i]));
    }
    svc_arena_free(a);
}

/* ---- reading user-events ------------------------------------------------------------------ */

/* The users of a test, and the events of theirs it waits for. */
struct expect {
    char (*users)[SVC_UUID_STR_LEN + 1];
    size_t nusers;
    /* The users' events in outbox (commit) order: event id and user id. */
    char (*events)[SVC_UUID_STR_LEN + 1];
    char (*keys)[SVC_UUID_STR_LEN + 1];
    size_t nevents;
};

static bool want_user(const char *subject, void *arg)
{
    const struct expect *x = arg;

    for (size_t i = 0; i < x->nusers; i++)
        if (strcmp(subject, x->users[i]) == 0)
            return true;
    return false;
}

static size_t missing_events(const struct testconsumed *c, const struct expect *x)
{
    size_t missing = 0;

    for (size_t i = 0; i < x->nevents; i++)
        missing += !testconsume_has(c, c->n, x->events[i]);
    return missing;
}

static bool all_events(const struct testconsumed *c, void *arg)
{
    return missing_events(c, arg) == 0;
}

/* Fills X's events from the outbox rows of its users. */
static void expect_outbox_events(PGconn *c, struct expect *x)
{
    char *ids = id_array(x->users, x->nusers);
    const char *p[1] = {ids};
    PGresult *r = sql(c,
                      "SELECT event_id::text, key FROM outbox WHERE key = ANY($1::text[]) "
                      "ORDER BY id",
                      1, p);

    x->nevents = (size_t)PQntuples(r);
    x->events = calloc(x->nevents + 1, sizeof(*x->events));
    x->keys = calloc(x->nevents + 1, sizeof(*x->keys));
    for (size_t i = 0; i < x->nevents; i++) {
        snprintf(x->events[i], sizeof(x->events[i]), "%s", PQgetvalue(r, (int)i, 0));
        snprintf(x->keys[i], sizeof(x->keys[i]), "%s", PQgetvalue(r, (int)i, 1));
    }
    PQclear(r);
    free(ids);
}

/*
 * Per user, the events as first consumed come in outbox order, all of them (a repeat, which
 * at-least-once delivery allows, may come later).
 */
static void check_per_user_order(const struct testconsumed *got, const struct expect *x)
{
    for (size_t u = 0; u < x->nusers; u++) {
        size_t next = 0; /* the user's next event in outbox order: an index into x->events */

        for (size_t i = 0; i < got->n; i++) {
            const struct testseen *s = &got->v[i];

            if (strcmp(s->subject, x->users[u]) != 0 || testconsume_has(got, i, s->id))
                continue;
            while (next < x->nevents && strcmp(x->keys[next], x->users[u]) != 0)
                next++;
            ck_assert_msg(next < x->nevents && strcmp(x->events[next], s->id) == 0,
                          "user '%s': event '%s' arrived out of order (expected '%s')", x->users[u],
                          s->id, next < x->nevents ? x->events[next] : "none");
            next++;
        }
        while (next < x->nevents && strcmp(x->keys[next], x->users[u]) != 0)
            next++;
        ck_assert_msg(next == x->nevents, "user '%s': event '%s' never arrived", x->users[u],
                      x->events[next]);
    }
}

static void expect_release(struct expect *x)
{
    free(x->events);
    free(x->keys);
    x->events = x->keys = NULL;
    x->nevents = 0;
}

/* ---- the in-process relay ------------------------------------------------------------------ */

START_TEST(every_change_is_published_valid_and_in_per_user_order)
{
    enum { USERS = 3 };
    struct user_store st;
    struct user_pg *pg = open_store(2, &st);
    struct svc_arena *a = svc_arena_new();
    struct svc_kafka_config kc = {.brokers = brokers(), .client_id = "it-user-outbox"};
    struct svc_outbox_config oc = {.name = "user-svc", .poll_interval_ms = 200};
    struct svc_producer *producer;
    struct svc_outbox_relay *relay;
    char users[USERS][SVC_UUID_STR_LEN + 1];
    struct expect x = {.users = users, .nusers = USERS};
    struct testconsumed got;
    const char **payloads;
    char out[4096], *ids;
    int64_t since = svc_wall_ms() - 2000;
    PGconn *c = db();
    int status;

    ck_assert_int_eq(svc_producer_new(&kc, &producer), 0);
    oc.producer = producer;
    user_pg_outbox_source(pg, &oc.source);
    ck_assert_int_eq(svc_outbox_relay_new(&oc, &relay), 0);
    ck_assert_int_eq(svc_outbox_relay_start(relay), 0);

    /* Every kind of change, the users' changes interleaved. */
    create_users(&st, USERS, users);
    for (int step = 0; step < 6; step++) {
        for (int i = 0; i < USERS; i++) {
            char key[SVC_UUID_STR_LEN + 1], pay_id[SVC_UUID_STR_LEN + 1];
            struct user u;
            struct credit cr;
            struct payment p;
            bool replayed;
            int rc = 0;

            svc_uuid_v4_str(key);
            snprintf(pay_id, sizeof(pay_id), "%.8s-0000-4000-8000-%.12s", users[i], users[i] + 24);
            switch (step) {
            case 0:
                rc = st.rename(st.ctx, a, users[i], 1, "Renamed Once", NULL, &u);
                break;
            case 1:
                rc = st.credit(st.ctx, users[i], key, 500, NULL, &cr, &replayed);
                break;
            case 2:
                rc = st.pay(st.ctx, a, pay_id, users[i], 200, NULL, &p, &replayed);
                break;
            case 3:
                rc = st.refund(st.ctx, a, pay_id, NULL, &p, &replayed);
                break;
            case 4:
                rc = st.rename(st.ctx, a, users[i], 2, "Renamed Twice", NULL, &u);
                break;
            default:
                rc = st.erase(st.ctx, users[i], NULL);
                break;
            }
            ck_assert_msg(rc == 0, "step %d of user %d: %s", step, i, svc_err_name(rc));
        }
    }
    expect_outbox_events(c, &x);
    ck_assert_uint_eq(x.nevents, (size_t)USERS * 7);

    /* Marked published (only once Kafka acknowledged them)... */
    ids = id_array(users, USERS);
    for (int i = 0; i < 300 && published_of(c, ids) < (long)x.nevents; i++)
        svc_sleep_ms(100);
    ck_assert_int_eq(published_of(c, ids), (long)x.nevents);
    /* ... and on the topic, in each user's order. */
    testconsume(brokers(), TOPIC_USER_EVENTS, since, want_user, all_events, &x, 60, &got);
    ck_assert_msg(missing_events(&got, &x) == 0, "%zu of %zu events never arrived on %s",
                  missing_events(&got, &x), x.nevents, TOPIC_USER_EVENTS);
    check_per_user_order(&got, &x);

    /* Each one valid against the schema of its type. */
    payloads = calloc(got.n, sizeof(*payloads));
    for (size_t i = 0; i < got.n; i++)
        payloads[i] = got.v[i].payload;
    status = testevents_validate(payloads, got.n, out, sizeof(out));
    ck_assert_msg(status == 0, "events against schemas/events/ (exit %d): %s", status, out);

    free(payloads);
    testconsume_release(&got);
    expect_release(&x);
    svc_outbox_relay_free(relay);
    svc_producer_free(producer);
    free(ids);
    PQfinish(c);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(published_rows_are_deleted_after_the_retention)
{
    struct user_store st;
    const char *dsn = testenv_get("user-svc", "PG_DSN");
    struct user_pg_opts o = {.dsn = dsn, .pool_size = 1, .outbox_retention_ms = 1000};
    struct svc_kafka_config kc = {.brokers = brokers(), .client_id = "it-user-outbox"};
    struct svc_outbox_config oc = {.name = "user-svc", .poll_interval_ms = 200};
    struct svc_producer *producer;
    struct svc_outbox_relay *relay;
    struct user_pg *pg;
    char users[1][SVC_UUID_STR_LEN + 1], *ids;
    const char *p[1];
    PGconn *c = db();
    PGresult *r;
    int rows = -1;

    ck_assert_int_eq(user_pg_new(&o, &pg), 0);
    user_pg_store(pg, &st);
    ck_assert_int_eq(svc_producer_new(&kc, &producer), 0);
    oc.producer = producer;
    user_pg_outbox_source(pg, &oc.source);
    ck_assert_int_eq(svc_outbox_relay_new(&oc, &relay), 0);
    ck_assert_int_eq(svc_outbox_relay_start(relay), 0);

    create_users(&st, 1, users);
    ids = id_array(users, 1);
    p[0] = ids;
    /* Published, then gone once older than a second (the relay purges as it polls). */
    for (int i = 0; i < 300 && rows != 0; i++) {
        svc_sleep_ms(100);
        r = sql(c, "SELECT count(*) FROM outbox WHERE key = ANY($1::text[])", 1, p);
        rows = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    ck_assert_msg(rows == 0, "the published event of '%s' is still in the outbox", users[0]);

    svc_outbox_relay_free(relay);
    svc_producer_free(producer);
    free(ids);
    PQfinish(c);
    user_pg_free(pg);
}
END_TEST

/* The validator itself can say no: an event without its email is refused. */
START_TEST(schemas_refuse_an_event_that_breaks_them)
{
    struct user u = {.email = NULL,
                     .name = "No Email",
                     .status = "active",
                     .version = 1,
                     .created_at_ms = 1700000000000,
                     .updated_at_ms = 1700000000000};
    struct svc_event_out ev;
    const char *payloads[2];
    char out[2048];
    int status;

    svc_uuid_v4_str(u.id);
    ck_assert_int_eq(user_event_user(&ev, EV_USER_REGISTERED, &u, NULL), 0);
    payloads[0] = svc_buf_str(&ev.json);
    payloads[1] = "{\"specversion\":\"1.0\",\"type\":\"user.renamed\"}";
    status = testevents_validate(payloads, 2, out, sizeof(out));
    ck_assert_msg(status == 1, "validator exit %d: %s", status, out);
    ck_assert_msg(strstr(out, "email") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "no schema for event type user.renamed") != NULL, "%s", out);
    svc_event_out_release(&ev);
}
END_TEST

/* ---- faults, with the real binary ------------------------------------------------------------ */

#ifdef USER_SVC_BIN

/* Starts user-svc with its own settings, a short relay poll and EXTRA (may be NULL). */
static void start_svc(struct testproc *p, const char *extra)
{
    char dsn[512], kafka[256];
    const char *env[] = {dsn, kafka, "OUTBOX_POLL=100ms", extra, NULL};

    snprintf(dsn, sizeof(dsn), "PG_DSN=%s", testenv_get("user-svc", "PG_DSN"));
    snprintf(kafka, sizeof(kafka), "KAFKA_BROKERS=%s", brokers());
    testproc_start(p, USER_SVC_BIN, "user-svc", env);
}

/* Whatever a fault test did, the broker runs again afterwards (an unchecked fixture runs in
 * the parent process, after a failure too). A no-op when it runs. */
static void kafka_back_up(void)
{
    if (teststack("up kafka") != 0)
        fprintf(stderr, "user_outbox_test: could not start kafka again\n");
}

static double metric(const struct testproc *p, const char *name)
{
    char sample[128];

    snprintf(sample, sizeof(sample), "%s{outbox=\"user-svc\"}", name);
    return testproc_metric(p, sample);
}

/* Registers N users through the API of the running user-svc, keeping their ids. */
static void register_users(const struct testproc *p, int n, char (*ids)[SVC_UUID_STR_LEN + 1])
{
    char url[128], body[160], uid[SVC_UUID_STR_LEN + 1];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/users", p->port);
    for (int i = 0; i < n; i++) {
        struct testhttp_resp r;
        json_t *u;

        svc_uuid_v4_str(uid);
        snprintf(body, sizeof(body), "{\"email\":\"it.outbox.%s@example.org\",\"name\":\"Outbox\"}",
                 uid);
        r = testhttp_call("POST", url, NULL, "application/json", body);
        ck_assert_msg(r.status == 201, "POST /v1/users %d: %ld %s", i, r.status,
                      r.body != NULL ? r.body : r.error);
        u = json_loads(r.body, 0, NULL);
        ck_assert_msg(json_is_string(json_object_get(u, "id")), "no id in %s", r.body);
        snprintf(ids[i], SVC_UUID_STR_LEN + 1, "%s", json_string_value(json_object_get(u, "id")));
        json_decref(u);
        testhttp_resp_release(&r);
    }
}

START_TEST(events_written_while_the_broker_is_down_arrive_after)
{
    enum { N = 200 };
    static char users[N][SVC_UUID_STR_LEN + 1];
    struct expect x = {.users = users, .nusers = N};
    struct testconsumed got;
    struct testproc svc;
    int64_t since = svc_wall_ms() - 2000;
    PGconn *c = db();
    double backlog = -1;
    char *ids;

    start_svc(&svc, NULL);
    ck_assert_msg(teststack("stop kafka") == 0, "stack.sh stop kafka failed");

    /* Writes only need PostgreSQL: all succeed, and the service stays ready. */
    register_users(&svc, N, users);
    ck_assert_int_eq(testproc_get(&svc, "/readyz", NULL), 200);
    ids = id_array(users, N);
    ck_assert_int_eq(published_of(c, ids), 0);
    /* The relay's gauge shows them waiting. */
    for (int i = 0; i < 200 && backlog < N; i++) {
        svc_sleep_ms(100);
        backlog = metric(&svc, "outbox_backlog");
    }
    ck_assert_msg(backlog >= N, "outbox_backlog is %g with %d events pending", backlog, N);
    ck_assert_double_gt(metric(&svc, "outbox_oldest_age_seconds"), 0);

    ck_assert_msg(teststack("up kafka") == 0, "stack.sh up kafka failed");
    expect_outbox_events(c, &x);
    ck_assert_uint_eq(x.nevents, N);
    testconsume(brokers(), TOPIC_USER_EVENTS, since, want_user, all_events, &x, 90, &got);
    ck_assert_msg(missing_events(&got, &x) == 0,
                  "%zu of %d events never arrived after the "
                  "broker came back",
                  missing_events(&got, &x), N);
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);
    testconsume_release(&got);
    expect_release(&x);
    free(ids);
    PQfinish(c);
}
END_TEST

START_TEST(events_survive_a_kill_during_publishing)
{
    enum { N = 1000 };
    struct user_store st;
    struct user_pg *pg = open_store(2, &st);
    static char users[N][SVC_UUID_STR_LEN + 1];
    struct expect x = {.users = users, .nusers = N};
    struct testconsumed got;
    struct testproc svc;
    int64_t since = svc_wall_ms() - 2000;
    PGconn *c = db(), *pause = db();
    long published = 0;
    char *ids;

    /* Every relay (this test's user-svc, and any other running) waits while this connection
     * holds the relays' advisory lock: the events pile up first. */
    PQclear(sql(pause, "SELECT pg_advisory_lock(" USER_OUTBOX_LOCK_KEY ")", 0, NULL));
    create_users(&st, N, users);
    ids = id_array(users, N);
    expect_outbox_events(c, &x);
    ck_assert_uint_eq(x.nevents, N);
    start_svc(&svc, "OUTBOX_BATCH=10");
    ck_assert_int_eq(published_of(c, ids), 0);
    PQclear(sql(pause, "SELECT pg_advisory_unlock(" USER_OUTBOX_LOCK_KEY ")", 0, NULL));

    /* SIGKILL as soon as some are published and some are not. */
    for (int i = 0; i < 20000 && (published = published_of(c, ids)) == 0; i++)
        svc_sleep_ms(1);
    ck_assert_int_eq(testproc_stop(&svc, SIGKILL), 128 + SIGKILL);
    ck_assert_msg(published > 0 && published < N,
                  "the relay was not caught publishing (%ld of %d published)", published, N);

    /* A new process finishes the job: every event arrives at least once. */
    start_svc(&svc, NULL);
    for (int i = 0; i < 600 && published_of(c, ids) < N; i++)
        svc_sleep_ms(100);
    ck_assert_int_eq(published_of(c, ids), N);
    testconsume(brokers(), TOPIC_USER_EVENTS, since, want_user, all_events, &x, 60, &got);
    ck_assert_msg(missing_events(&got, &x) == 0, "%zu of %d events lost to the kill",
                  missing_events(&got, &x), N);
    fprintf(stderr,
            "user_outbox_test: killed with %ld of %d published; %zu messages for %d "
            "events arrived\n",
            published, N, got.n, N);
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);
    testconsume_release(&got);
    expect_release(&x);
    free(ids);
    PQfinish(pause);
    PQfinish(c);
    user_pg_free(pg);
}
END_TEST

#endif

int main(void)
{
    Suite *s = suite_create("user_outbox");
    TCase *relay = tcase_create("relay");

    tcase_add_test(relay, every_change_is_published_valid_and_in_per_user_order);
    tcase_add_test(relay, schemas_refuse_an_event_that_breaks_them);
    tcase_add_test(relay, published_rows_are_deleted_after_the_retention);
    suite_add_tcase(s, relay);
#ifdef USER_SVC_BIN
    {
        TCase *faults = tcase_create("faults");

        /* A test that failed may have left the broker stopped: it is started again before
         * each test and after the last. */
        tcase_add_checked_fixture(faults, kafka_back_up, NULL);
        tcase_add_unchecked_fixture(faults, NULL, kafka_back_up);
        tcase_set_timeout(faults, 120);
        tcase_add_test(faults, events_written_while_the_broker_is_down_arrive_after);
        tcase_add_test(faults, events_survive_a_kill_during_publishing);
        suite_add_tcase(s, faults);
    }
#endif
    return testenv_run(s);
}
