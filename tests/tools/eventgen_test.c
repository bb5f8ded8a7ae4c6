/*
 * The event generator of analytics-svc's tests (tools/eventgen): the same options give the same
 * bytes (library and command line), every event is valid against its schema and sits on its
 * owner's topic under its subject, inside the window, and the expected answers agree with each
 * other and with a recount of the events as written (read back from the NDJSON, not from the
 * generator's own bookkeeping).
 */
#define _POSIX_C_SOURCE 200809L /* popen, open_memstream */

#include "eventgen.h"
#include "testenv.h"
#include "testevents.h"

#include "svc/time.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef EVENTGEN_BIN
#error "EVENTGEN_BIN: the eventgen binary under test"
#endif
#ifndef SCHEMA_DIR
#error "SCHEMA_DIR: schemas/events/"
#endif

#define START_MS INT64_C(983682360000) /* 2001-03-04T05:06:00Z */

static struct eg_set *gen(uint64_t seed, int users, int minutes, int64_t count)
{
    struct eg_opts o = {
        .seed = seed, .users = users, .start_ms = START_MS, .minutes = minutes, .count = count};
    char err[160];
    struct eg_set *s = eg_generate(&o, err, sizeof(err));

    ck_assert_msg(s != NULL, "eg_generate: %s", err);
    return s;
}

/* What WRITE writes of S, NUL-terminated, malloc'd. */
static char *written(const struct eg_set *s, int (*write)(const struct eg_set *, FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(write(s, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0, len = 0, got;

    ck_assert_msg(f != NULL, "cannot read '%s'", path);
    do {
        if (cap - len < 4096) {
            cap = cap * 2 + 65536;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int run(const char *args)
{
    char cmd[1024];
    int st;

    snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", EVENTGEN_BIN, args);
    st = system(cmd); /* NOLINT(cert-env33-c): running the program is the point */
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int64_t int_at(json_t *o, const char *path)
{
    json_t *v = o;
    char key[64];

    while (*path != '\0') {
        size_t n = strcspn(path, ".");

        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        v = json_object_get(v, key);
        ck_assert_msg(v != NULL, "no '%s' in the expected answers", key);
        path += n + (path[n] == '.');
    }
    ck_assert(json_is_integer(v));
    return json_integer_value(v);
}

/* ---- tests ------------------------------------------------------------------------------- */

START_TEST(same_seed_same_bytes_and_the_command_line_writes_them)
{
    struct eg_set *a = gen(42, 40, 60, 0), *b = gen(42, 40, 60, 0), *c = gen(43, 40, 60, 0);
    char *ea = written(a, eg_write_events), *eb = written(b, eg_write_events);
    char *xa = written(a, eg_write_expect), *xb = written(b, eg_write_expect);
    char *ec = written(c, eg_write_events);
    char dir[] = "/tmp/eventgen_test_XXXXXX", args[512], path[600];

    ck_assert_str_eq(ea, eb);
    ck_assert_str_eq(xa, xb);
    ck_assert_str_ne(ea, ec);

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(args, sizeof(args),
             "--seed 42 --users 40 --start 2001-03-04T05:06:00Z --minutes 60 --events %s/e "
             "--expect %s/x",
             dir, dir);
    ck_assert_int_eq(run(args), 0);
    snprintf(path, sizeof(path), "%s/e", dir);
    {
        char *f = slurp(path);

        ck_assert_str_eq(f, ea);
        free(f);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/x", dir);
    {
        char *f = slurp(path);

        ck_assert_str_eq(f, xa);
        free(f);
        unlink(path);
    }
    rmdir(dir);
    free(ea);
    free(eb);
    free(ec);
    free(xa);
    free(xb);
    eg_set_free(a);
    eg_set_free(b);
    eg_set_free(c);
}
END_TEST

START_TEST(every_event_valid_on_its_topic_under_its_subject_in_the_window)
{
    struct eg_set *s = gen(7, 60, 90, 0);
    size_t n = eg_count(s);
    const char **payloads = calloc(n, sizeof(*payloads));
    char out[8192];
    int64_t prev = 0;

    ck_assert_uint_gt(n, 200);
    for (size_t i = 0; i < n; i++) {
        const struct eg_event *e = eg_event_at(s, i);
        json_error_t jerr;
        json_t *env = json_loads(e->json, 0, &jerr), *schema;
        char file[512];
        int64_t t;

        ck_assert_msg(env != NULL, "event %zu is not JSON: %s", i, jerr.text);
        payloads[i] = e->json;
        ck_assert_str_eq(json_string_value(json_object_get(env, "id")), e->id);
        ck_assert_str_eq(json_string_value(json_object_get(env, "type")), e->type);
        /* The Kafka key is the subject (svc/event.h). */
        ck_assert_str_eq(json_string_value(json_object_get(env, "subject")), e->key);
        ck_assert(svc_rfc3339_parse(json_string_value(json_object_get(env, "time")), &t));
        ck_assert_int_eq(t, e->t_ms);
        ck_assert_msg(t >= START_MS && t < START_MS + INT64_C(90) * 60000, "event %zu at %lld", i,
                      (long long)t);
        ck_assert_int_ge(t, prev);
        prev = t;
        /* The topic its owner publishes it on, as its schema says. */
        snprintf(file, sizeof(file), "%s/%s.json", SCHEMA_DIR, e->type);
        schema = json_load_file(file, 0, &jerr);
        ck_assert_msg(schema != NULL, "no schema for '%s'", e->type);
        ck_assert_str_eq(json_string_value(json_object_get(schema, "x-topic")), e->topic);
        json_decref(schema);
        for (size_t k = 0; k < i; k++)
            ck_assert_msg(strcmp(eg_event_at(s, k)->id, e->id) != 0, "id '%s' twice", e->id);
        json_decref(env);
    }
    ck_assert_msg(testevents_validate(payloads, n, out, sizeof(out)) == 0, "%s", out);
    free(payloads);
    eg_set_free(s);
}
END_TEST

/* The answers recounted from the events as written: their JSON only. */
struct recount {
    int64_t signups, checkouts, placed, failed, revenue, deleted, events;
    json_t *users;  /* user id -> bitmask: 1 registered, 2 cart, 4 checkout, 8 placed */
    json_t *units;  /* product id -> units sold */
    json_t *types;  /* type -> count */
    json_t *minute; /* "t" -> revenue of the minute */
};

static void add_int(json_t *o, const char *key, int64_t v)
{
    json_t *old = json_object_get(o, key);

    json_object_set_new(o, key, json_integer((old != NULL ? json_integer_value(old) : 0) + v));
}

static void recount(const struct eg_set *s, struct recount *r)
{
    memset(r, 0, sizeof(*r));
    r->users = json_object();
    r->units = json_object();
    r->types = json_object();
    r->minute = json_object();
    for (size_t i = 0; i < eg_count(s); i++) {
        json_t *env = json_loads(eg_event_at(s, i)->json, 0, NULL);
        json_t *d = json_object_get(env, "data");
        const char *type = json_string_value(json_object_get(env, "type"));
        const char *user = NULL;
        int bit = 0;

        r->events++;
        add_int(r->types, type, 1);
        if (strncmp(type, "user.", 5) == 0)
            user = json_string_value(json_object_get(d, "id"));
        else if (json_object_get(d, "user_id") != NULL)
            user = json_string_value(json_object_get(d, "user_id"));
        if (strcmp(type, "user.registered") == 0) {
            r->signups++;
            bit = 1;
        } else if (strcmp(type, "cart.item_added") == 0) {
            bit = 2;
        } else if (strcmp(type, "checkout.started") == 0) {
            r->checkouts++;
            bit = 4;
        } else if (strcmp(type, "order.failed") == 0) {
            r->failed++;
        } else if (strcmp(type, "user.deleted") == 0) {
            r->deleted++;
        } else if (strcmp(type, "order.placed") == 0) {
            json_t *lines = json_object_get(d, "lines");
            int64_t total = json_integer_value(json_object_get(d, "total_cents")), sum = 0;
            char t[SVC_RFC3339_MS_LEN + 1];

            r->placed++;
            r->revenue += total;
            bit = 8;
            for (size_t k = 0; k < json_array_size(lines); k++) {
                json_t *l = json_array_get(lines, k);
                int64_t q = json_integer_value(json_object_get(l, "quantity"));

                sum += q * json_integer_value(json_object_get(l, "price_cents"));
                add_int(r->units, json_string_value(json_object_get(l, "product_id")), q);
            }
            ck_assert_int_eq(sum, total);
            svc_rfc3339_format_ms(eg_event_at(s, i)->t_ms - eg_event_at(s, i)->t_ms % 60000, t);
            add_int(r->minute, t, total);
        }
        if (user != NULL) {
            json_t *old = json_object_get(r->users, user);

            json_object_set_new(r->users, user,
                                json_integer((old != NULL ? json_integer_value(old) : 0) | bit));
        }
        json_decref(env);
    }
}

static void recount_release(struct recount *r)
{
    json_decref(r->users);
    json_decref(r->units);
    json_decref(r->types);
    json_decref(r->minute);
}

/* Sums of a series' members. */
static void series_sums(json_t *series, int64_t *orders, int64_t *revenue)
{
    *orders = *revenue = 0;
    for (size_t i = 0; i < json_array_size(series); i++) {
        json_t *p = json_array_get(series, i);

        ck_assert_int_gt(json_integer_value(json_object_get(p, "orders")), 0);
        *orders += json_integer_value(json_object_get(p, "orders"));
        *revenue += json_integer_value(json_object_get(p, "revenue_cents"));
    }
}

static void check_consistent(const struct eg_set *s)
{
    json_t *x = eg_expect(s), *types = json_object_get(x, "types");
    struct recount r;
    const char *key;
    json_t *v;
    int64_t orders, revenue, sum = 0, funnel[4] = {0};
    static const char *const intervals[] = {"minute", "hour", "day"};
    static const char *const bys[] = {"units", "revenue"};

    recount(s, &r);
    ck_assert_int_eq(int_at(x, "events"), r.events);
    ck_assert_int_eq(int_at(x, "summary.signups"), r.signups);
    ck_assert_int_eq(int_at(x, "summary.active_users"), (int64_t)json_object_size(r.users));
    ck_assert_int_eq(int_at(x, "summary.checkouts"), r.checkouts);
    ck_assert_int_eq(int_at(x, "summary.orders_placed"), r.placed);
    ck_assert_int_eq(int_at(x, "summary.orders_failed"), r.failed);
    ck_assert_int_eq(int_at(x, "summary.revenue_cents"), r.revenue);
    ck_assert_int_eq((int64_t)json_array_size(json_object_get(x, "deleted_users")), r.deleted);
    ck_assert(json_equal(types, r.types));
    json_object_foreach(types, key, v) sum += json_integer_value(v);
    ck_assert_int_eq(sum, r.events);

    /* Every series adds up to the summary; the minute one is the recount's, bucket by bucket. */
    for (size_t i = 0; i < 3; i++) {
        json_t *series = json_object_get(json_object_get(x, "revenue"), intervals[i]);

        series_sums(series, &orders, &revenue);
        ck_assert_int_eq(orders, r.placed);
        ck_assert_int_eq(revenue, r.revenue);
        for (size_t k = 1; k < json_array_size(series); k++)
            ck_assert_str_lt(json_string_value(json_object_get(json_array_get(series, k - 1), "t")),
                             json_string_value(json_object_get(json_array_get(series, k), "t")));
    }
    {
        json_t *minute = json_object_get(json_object_get(x, "revenue"), "minute");

        ck_assert_uint_eq(json_array_size(minute), json_object_size(r.minute));
        for (size_t k = 0; k < json_array_size(minute); k++) {
            json_t *p = json_array_get(minute, k);

            ck_assert_int_eq(json_integer_value(json_object_get(p, "revenue_cents")),
                             json_integer_value(json_object_get(
                                 r.minute, json_string_value(json_object_get(p, "t")))));
        }
    }

    /* Both rankings hold every product sold, in their order, adding up to the revenue. */
    for (size_t i = 0; i < 2; i++) {
        json_t *top = json_object_get(json_object_get(x, "top_products"), bys[i]);
        int64_t rev = 0;

        ck_assert_uint_eq(json_array_size(top), json_object_size(r.units));
        for (size_t k = 0; k < json_array_size(top); k++) {
            json_t *p = json_array_get(top, k);
            const char *id = json_string_value(json_object_get(p, "product_id"));

            rev += json_integer_value(json_object_get(p, "revenue_cents"));
            ck_assert_int_eq(json_integer_value(json_object_get(p, "units")),
                             json_integer_value(json_object_get(r.units, id)));
            if (k > 0) {
                json_t *q = json_array_get(top, k - 1);
                int64_t a = json_integer_value(json_object_get(q, bys[i])),
                        b = json_integer_value(json_object_get(p, bys[i]));

                if (i == 1) {
                    a = json_integer_value(json_object_get(q, "revenue_cents"));
                    b = json_integer_value(json_object_get(p, "revenue_cents"));
                }
                ck_assert_int_ge(a, b);
                if (a == b)
                    ck_assert_str_lt(json_string_value(json_object_get(q, "product_id")), id);
            }
        }
        ck_assert_int_eq(rev, r.revenue);
    }

    /* The funnel: the cohort registered in the window, each step among the one before. */
    json_object_foreach(r.users, key, v)
    {
        int64_t m = json_integer_value(v);

        if (!(m & 1))
            continue;
        funnel[0]++;
        if (!(m & 2))
            continue;
        funnel[1]++;
        if (!(m & 4))
            continue;
        funnel[2]++;
        funnel[3] += (m & 8) != 0;
    }
    ck_assert_int_eq(int_at(x, "funnel.registered"), funnel[0]);
    ck_assert_int_eq(int_at(x, "funnel.added_to_cart"), funnel[1]);
    ck_assert_int_eq(int_at(x, "funnel.checkout_started"), funnel[2]);
    ck_assert_int_eq(int_at(x, "funnel.placed"), funnel[3]);
    ck_assert_int_eq(funnel[0], r.signups);
    /* Without the deletions every answer is the same: no user is active by a deletion alone. */
    json_object_foreach(r.users, key, v)
    {
        bool other = false;

        for (size_t i = 0; i < eg_count(s) && !other; i++) {
            const struct eg_event *e = eg_event_at(s, i);

            other = strcmp(e->type, "user.deleted") != 0 && strstr(e->json, key) != NULL;
        }
        ck_assert_msg(other, "user '%s' has no event but their deletion", key);
    }
    recount_release(&r);
}

START_TEST(expected_answers_agree_with_the_events_and_each_other)
{
    struct eg_set *s = gen(11, 80, 120, 0);
    json_t *x = eg_expect(s);

    /* A set worth testing with: every step of the story happens. */
    ck_assert_int_gt(int_at(x, "summary.orders_placed"), 3);
    ck_assert_int_gt(int_at(x, "summary.orders_failed"), 0);
    ck_assert_int_gt(int_at(x, "summary.active_users"), int_at(x, "summary.signups"));
    ck_assert_int_gt(int_at(x, "funnel.registered"), int_at(x, "funnel.added_to_cart"));
    ck_assert_int_gt(int_at(x, "funnel.checkout_started"), int_at(x, "funnel.placed"));
    ck_assert_uint_gt(json_array_size(json_object_get(x, "deleted_users")), 0);
    check_consistent(s);
    eg_set_free(s);
}
END_TEST

START_TEST(many_seeds_give_consistent_answers)
{
    for (uint64_t seed = 100; seed < 160; seed++) {
        struct eg_set *s = gen(seed, 40, 60, 0);

        check_consistent(s);
        eg_set_free(s);
    }
}
END_TEST

START_TEST(count_mode_is_exactly_n_events_at_a_steady_rate)
{
    struct eg_set *s = gen(3, 20, 10, 5000);
    int64_t step = 10 * 60000 / 5000;

    ck_assert_uint_eq(eg_count(s), 5000);
    for (size_t i = 0; i < eg_count(s); i++) {
        int64_t t = eg_event_at(s, i)->t_ms - START_MS;

        ck_assert_int_ge(t, (int64_t)i * step);
        ck_assert_int_lt(t, (int64_t)(i + 1) * step);
    }
    check_consistent(s);
    eg_set_free(s);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    static const char *const bad[] = {
        "--start 2001-03-04T05:06:00Z --events /dev/null",
        "--seed 1 --events /dev/null",
        "--seed 1 --start 2001-03-04T05:06:00Z",
        "--seed 1 --start 2001-03-04T05:06:30Z --events /dev/null",
        "--seed 1 --start yesterday --events /dev/null",
        "--seed 1 --start 2001-03-04T05:06:00Z --events /dev/null --users 0",
        "--seed 1 --start 2001-03-04T05:06:00Z --events /dev/null --minutes 0",
        "--seed 1 --start 2001-03-04T05:06:00Z --events /dev/null --count -5",
        "--seed 1 --start 2001-03-04T05:06:00Z --events /dev/null --nope 1",
        "--seed 1 --start 2001-03-04T05:06:00Z --events",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(run(bad[i]) == 2, "'%s' accepted", bad[i]);
    ck_assert_int_ne(run("--seed 1 --start 2001-03-04T05:06:00Z --events /nonexistent/dir/e"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("eventgen");
    TCase *tc = tcase_create("eventgen");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, same_seed_same_bytes_and_the_command_line_writes_them);
    tcase_add_test(tc, every_event_valid_on_its_topic_under_its_subject_in_the_window);
    tcase_add_test(tc, expected_answers_agree_with_the_events_and_each_other);
    tcase_add_test(tc, many_seeds_give_consistent_answers);
    tcase_add_test(tc, count_mode_is_exactly_n_events_at_a_steady_rate);
    tcase_add_test(tc, bad_arguments_are_refused);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
