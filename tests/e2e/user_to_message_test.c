/*
 * The platform's first event flow end to end (e2e): user-svc, Kafka and message-svc as
 * `make up` runs them, driven only through their public APIs (and, for the replay, the topic).
 *
 *   register through user-svc  -> the welcome message is visible through message-svc
 *   A writes to B; rename A     -> B's message shows A's new name
 *   delete B                    -> B's inbox is gone (404 user-deleted)
 *   user.registered replayed    -> still one welcome message
 *   message-svc killed (-9) while events flow, restarted by the stack script
 *                               -> every user has exactly one welcome message
 *
 * Every wait polls with a deadline, so a broken flow fails in bounded time with what it saw.
 */
#include "testenv.h"
#include "testhttp.h"

#include "svc/error.h"
#include "svc/kafka.h"
#include "svc/time.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef POLYGLOT_ROOT
#define POLYGLOT_ROOT "."
#endif
#ifndef POLYGLOT_STATE_DIR
#define POLYGLOT_STATE_DIR POLYGLOT_ROOT "/.local"
#endif

/* How long an event may take from user-svc to message-svc's API. */
#define DEADLINE_MS 20000
/* After a restart the service first catches up with what flowed meanwhile. */
#define RESTART_DEADLINE_MS 90000
/* Users registered while message-svc is killed. */
#define KILL_USERS 12

static char user_url[128], msg_url[128];

static void urls(void)
{
    const char *up = testenv_get("user-svc", "HTTP_PORT");
    const char *mp = testenv_get("message-svc", "HTTP_PORT");

    testenv_require_port("user-svc", (int)strtol(up, NULL, 10));
    testenv_require_port("message-svc", (int)strtol(mp, NULL, 10));
    snprintf(user_url, sizeof(user_url), "http://127.0.0.1:%s", up);
    snprintf(msg_url, sizeof(msg_url), "http://127.0.0.1:%s", mp);
}

static json_t *body_json(const struct testhttp_resp *r)
{
    json_error_t err;
    json_t *v = json_loads(r->body != NULL ? r->body : "", 0, &err);

    ck_assert_msg(v != NULL, "response is not JSON (%s): %s", err.text, r->body);
    return v;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* BASE + the printf-style path, in a static buffer per call site slot (two at once). */
static const char *url(const char *base, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *url(const char *base, const char *fmt, ...)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    size_t n = (size_t)snprintf(b, 512, "%s", base);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b + n, 512 - n, fmt, ap);
    va_end(ap);
    return b;
}

/* POST /v1/users on user-svc; the new user's id into ID. */
static void register_user(const char *name, char id[64])
{
    char body[512];
    struct testhttp_resp r;
    json_t *u;

    snprintf(body, sizeof(body), "{\"email\":\"%s@example.com\",\"name\":\"%s\"}",
             testenv_unique("e2e"), name);
    r = testhttp_request("POST", url(user_url, "/v1/users"), NULL, "application/json", body);
    ck_assert_msg(r.status == 201, "user-svc register: HTTP %ld %s %s", r.status, r.error, r.body);
    u = body_json(&r);
    snprintf(id, 64, "%s", jstr(u, "id"));
    json_decref(u);
    testhttp_resp_release(&r);
}

/* GET the inbox of ID: its status, and the body as JSON (NULL unless 200; caller decrefs). */
static long inbox(const char *id, json_t **out, char *problem, size_t cap)
{
    struct testhttp_resp r = testhttp_request(
        "GET", url(msg_url, "/v1/users/%s/messages?limit=100", id), NULL, NULL, NULL);
    long status = r.status;

    *out = NULL;
    if (status == 200)
        *out = body_json(&r);
    if (problem != NULL)
        snprintf(problem, cap, "HTTP %ld %s%s", status, r.error, r.body != NULL ? r.body : "");
    testhttp_resp_release(&r);
    return status;
}

/* System messages in an inbox page that came from user.registered (welcome messages). */
static int welcomes(json_t *page)
{
    json_t *items = json_object_get(page, "items"), *m;
    size_t i;
    int n = 0;

    json_array_foreach(items, i, m)
    {
        const char *sender = jstr(m, "sender"), *subject = jstr(m, "subject");

        if (sender != NULL && strcmp(sender, "system") == 0 && subject != NULL &&
            strncmp(subject, "Welcome, ", 9) == 0)
            n++;
    }
    return n;
}

/* Waits until ID's inbox holds a welcome message; returns how many it holds then. */
static int wait_welcome(const char *id, int64_t deadline_ms)
{
    char last[1024] = "";
    json_t *page;

    for (;;) {
        if (inbox(id, &page, last, sizeof(last)) == 200) {
            int n = welcomes(page);

            json_decref(page);
            if (n > 0)
                return n;
        }
        ck_assert_msg(svc_now_ms() < deadline_ms,
                      "no welcome message for user '%s' in time; last answer: %s", id, last);
        svc_sleep_ms(100);
    }
}

/* The message of ID's inbox from SENDER: its sender_name ("" when null) into NAME. False when
 * there is no such message. */
static bool sender_name_in(const char *id, const char *sender, char *name, size_t cap)
{
    json_t *page, *items, *m;
    size_t i;
    bool found = false;

    if (inbox(id, &page, NULL, 0) != 200)
        return false;
    items = json_object_get(page, "items");
    json_array_foreach(items, i, m)
    {
        const char *s = jstr(m, "sender");

        if (s != NULL && strcmp(s, sender) == 0) {
            const char *n = jstr(m, "sender_name");

            snprintf(name, cap, "%s", n != NULL ? n : "");
            found = true;
            break;
        }
    }
    json_decref(page);
    return found;
}

/* PATCH /v1/users/ID {name} with If-Match from a fresh GET. */
static void rename_user(const char *id, const char *name)
{
    struct testhttp_resp r =
        testhttp_request("GET", url(user_url, "/v1/users/%s", id), NULL, NULL, NULL);
    char etag[64], if_match[96], body[256];
    const char *headers[] = {if_match, NULL};

    ck_assert_msg(r.status == 200, "user-svc get: HTTP %ld %s", r.status, r.body);
    ck_assert_ptr_nonnull(testhttp_header(&r, "ETag", etag, sizeof(etag)));
    testhttp_resp_release(&r);
    snprintf(if_match, sizeof(if_match), "If-Match: %s", etag);
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    r = testhttp_request("PATCH", url(user_url, "/v1/users/%s", id), headers, "application/json",
                         body);
    ck_assert_msg(r.status == 200, "user-svc rename: HTTP %ld %s", r.status, r.body);
    testhttp_resp_release(&r);
}

static void send_dm(const char *from, const char *to, const char *subject)
{
    char body[512];
    struct testhttp_resp r;

    snprintf(body, sizeof(body),
             "{\"from_user_id\":\"%s\",\"to_user_id\":\"%s\",\"subject\":\"%s\","
             "\"body\":\"sent by the e2e test\"}",
             from, to, subject);
    r = testhttp_request("POST", url(msg_url, "/v1/messages"), NULL, "application/json", body);
    ck_assert_msg(r.status == 201, "message-svc send: HTTP %ld %s", r.status, r.body);
    testhttp_resp_release(&r);
}

/* Waits until the message from SENDER in ID's inbox shows NAME. */
static void wait_sender_name(const char *id, const char *sender, const char *name)
{
    int64_t deadline = svc_now_ms() + DEADLINE_MS;
    char seen[256] = "";

    for (;;) {
        if (sender_name_in(id, sender, seen, sizeof(seen)) && strcmp(seen, name) == 0)
            return;
        ck_assert_msg(svc_now_ms() < deadline,
                      "message from '%s' to '%s' still shows '%s', not '%s'", sender, id, seen,
                      name);
        svc_sleep_ms(100);
    }
}

/* ---- the flow ------------------------------------------------------------------------------ */

START_TEST(register_message_rename_delete)
{
    char a[64], b[64], problem[1024];
    json_t *page;
    int64_t deadline;

    urls();
    register_user("Ada E2E", a);
    register_user("Bob E2E", b);
    ck_assert_int_eq(wait_welcome(a, svc_now_ms() + DEADLINE_MS), 1);
    ck_assert_int_eq(wait_welcome(b, svc_now_ms() + DEADLINE_MS), 1);

    send_dm(a, b, "hello from ada");
    wait_sender_name(b, a, "Ada E2E");
    rename_user(a, "Ada Renamed");
    wait_sender_name(b, a, "Ada Renamed");

    {
        struct testhttp_resp r =
            testhttp_request("DELETE", url(user_url, "/v1/users/%s", b), NULL, NULL, NULL);

        ck_assert_msg(r.status == 204, "user-svc delete: HTTP %ld %s", r.status, r.body);
        testhttp_resp_release(&r);
    }
    deadline = svc_now_ms() + DEADLINE_MS;
    for (;;) {
        long st = inbox(b, &page, problem, sizeof(problem));

        json_decref(page);
        if (st == 404 && strstr(problem, "user-deleted") != NULL)
            break;
        ck_assert_msg(svc_now_ms() < deadline, "inbox of deleted user '%s' still answers: %s", b,
                      problem);
        svc_sleep_ms(100);
    }
    /* A's own inbox is untouched. */
    ck_assert_int_eq(wait_welcome(a, svc_now_ms() + DEADLINE_MS), 1);
}
END_TEST

/* ---- replay -------------------------------------------------------------------------------- */

START_TEST(replayed_registration_gives_one_welcome)
{
    char c[64], d[64], problem[1024];
    const char *ev_id = NULL;
    json_t *page, *items, *m, *user, *envelope;
    struct testhttp_resp r;
    struct svc_producer *p = NULL;
    struct svc_kafka_config kc = {.brokers = testenv_get("message-svc", "KAFKA_BROKERS"),
                                  .client_id = "msg-e2e-test"};
    struct svc_kafka_msg msgs[2];
    char *value;
    size_t i;

    urls();
    register_user("Cy Replay", c);
    register_user("Di Replay", d);
    ck_assert_int_eq(wait_welcome(c, svc_now_ms() + DEADLINE_MS), 1);
    wait_welcome(d, svc_now_ms() + DEADLINE_MS);

    /* The welcome's source event id, and the user as user-svc has it: the same envelope. */
    ck_assert_int_eq(inbox(c, &page, problem, sizeof(problem)), 200);
    items = json_object_get(page, "items");
    json_array_foreach(items, i, m)
    {
        if (jstr(m, "source_event_id") != NULL)
            ev_id = jstr(m, "source_event_id");
    }
    ck_assert_msg(ev_id != NULL, "welcome message has no source_event_id: %s", problem);
    r = testhttp_request("GET", url(user_url, "/v1/users/%s", c), NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    user = body_json(&r);
    testhttp_resp_release(&r);
    envelope =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "specversion", "1.0", "id", ev_id,
                  "source", "/user-svc", "type", "user.registered", "subject", c, "time",
                  jstr(user, "created_at"), "datacontenttype", "application/json", "data", user);
    ck_assert_ptr_nonnull(envelope);
    value = json_dumps(envelope, JSON_COMPACT);

    /* Twice, with the user id as key, as user-svc publishes it. */
    ck_assert_int_eq(svc_producer_new(&kc, &p), 0);
    for (int k = 0; k < 2; k++)
        msgs[k] = (struct svc_kafka_msg){.topic = "user-events",
                                         .key = c,
                                         .key_len = strlen(c),
                                         .value = value,
                                         .value_len = strlen(value)};
    ck_assert_int_eq(svc_producer_send_wait(p, msgs, 2, 15000), 0);
    svc_producer_free(p);

    /* A later event of the same key (so the same partition) marks that the replays were
     * consumed: C writes to D, then C is renamed, and D sees the new name. */
    send_dm(c, d, "marker");
    rename_user(c, "Cy Renamed");
    wait_sender_name(d, c, "Cy Renamed");
    json_decref(page);
    ck_assert_int_eq(inbox(c, &page, problem, sizeof(problem)), 200);
    ck_assert_msg(welcomes(page) == 1, "welcome messages after the replay: %d (%s)", welcomes(page),
                  problem);
    json_decref(page);
    free(value);
    json_decref(envelope);
    json_decref(user);
}
END_TEST

/* ---- a crash mid-stream -------------------------------------------------------------------- */

static pid_t stack_pid(void)
{
    char path[512], buf[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "%s/run/message-svc.pid",
             getenv("POLYGLOT_STATE") != NULL ? getenv("POLYGLOT_STATE") : POLYGLOT_STATE_DIR);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL,
                  "%s is missing: message-svc is not run by the stack (build it, then make up)",
                  path);
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    return (pid_t)strtol(buf, NULL, 10);
}

START_TEST(killed_mid_stream_loses_and_duplicates_nothing)
{
    char ids[KILL_USERS][64], cmd[1024];
    pid_t pid;
    int64_t deadline;
    int rc;

    urls();
    pid = stack_pid();
    ck_assert_msg(pid > 1 && kill(pid, 0) == 0, "message-svc pid %d is not running", (int)pid);
    for (int i = 0; i < KILL_USERS; i++) {
        char name[32];

        snprintf(name, sizeof(name), "Kill %d", i);
        register_user(name, ids[i]);
        if (i == KILL_USERS / 3)
            ck_assert_int_eq(kill(pid, SIGKILL), 0);
    }
    /* The stack script starts what is not running and waits for its /readyz. */
    snprintf(cmd, sizeof(cmd), "timeout 240 %s/deploy/local/stack.sh up >/dev/null 2>&1",
             POLYGLOT_ROOT);
    rc = system(cmd); /* NOLINT(cert-env33-c): running the stack script is the point */
    ck_assert_msg(rc == 0, "'%s' failed (%d)", cmd, rc);
    deadline = svc_now_ms() + RESTART_DEADLINE_MS;
    for (int i = 0; i < KILL_USERS; i++)
        wait_welcome(ids[i], deadline);
    /* Exactly one each, also for those whose events were handled just before the kill and
     * delivered again after it. */
    for (int i = 0; i < KILL_USERS; i++) {
        json_t *page;
        char problem[1024];

        ck_assert_int_eq(inbox(ids[i], &page, problem, sizeof(problem)), 200);
        ck_assert_msg(welcomes(page) == 1, "user '%s' has %d welcome messages", ids[i],
                      welcomes(page));
        json_decref(page);
    }
}
END_TEST

/* Records behind, summed over message-svc's partitions (kafka_consumer_lag), or -1 while it
 * reports none: before its first assignment and during a rebalance the series are absent, which
 * is not "caught up". */
static long long consumer_lag(void)
{
    char url[160];
    struct testhttp_resp r;
    long long sum = -1;

    snprintf(url, sizeof(url), "%s/metrics", msg_url);
    r = testhttp_call("GET", url, NULL, NULL, NULL);
    if (r.status == 200) {
        const char *p = r.body;

        while ((p = strstr(p, "\nkafka_consumer_lag{")) != NULL) {
            const char *v = strchr(p, '}');

            if (v == NULL)
                break;
            sum = (sum < 0 ? 0 : sum) + strtoll(v + 1, NULL, 10);
            p = v;
        }
    }
    testhttp_resp_release(&r);
    return sum;
}

/*
 * Before any flow is timed: message-svc first catches up with what earlier tests published to
 * user-events (thousands of registrations, on a fresh stack as in CI), since one user's events
 * queue behind everything before them in the same partition. The flows' 20 s deadlines are
 * for one event, not for a backlog. Bounded: 10 minutes, with progress.
 */
static void catch_up(void)
{
    int64_t start = svc_now_ms(), next_note = start;
    long long lag;

    urls();
    while ((lag = consumer_lag()) != 0) {
        ck_assert_msg(svc_now_ms() - start < 600000,
                      lag < 0 ? "message-svc reports no assigned partition after 10 min"
                              : "message-svc is still %lld events behind on user-events after "
                                "10 min",
                      lag);
        if (svc_now_ms() >= next_note) {
            if (lag < 0)
                fprintf(stderr, "e2e: waiting for message-svc's partitions\n");
            else
                fprintf(stderr, "e2e: waiting for message-svc to catch up: %lld behind\n", lag);
            next_note += 15000;
        }
        svc_sleep_ms(500);
    }
}

int main(void)
{
    Suite *s = suite_create("msg_e2e");
    TCase *tc = tcase_create("flow");

    tcase_add_unchecked_fixture(tc, catch_up, NULL);
    /* Bounded: each wait has its own deadline well inside these. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, register_message_rename_delete);
    tcase_add_test(tc, replayed_registration_gives_one_welcome);
    suite_add_tcase(s, tc);

    tc = tcase_create("crash");
    tcase_add_unchecked_fixture(tc, catch_up, NULL);
    tcase_set_timeout(tc, 400);
    tcase_add_test(tc, killed_mid_stream_loses_and_duplicates_nothing);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
