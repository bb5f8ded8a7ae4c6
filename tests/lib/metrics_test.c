#include "svc/buf.h"
#include "svc/error.h"
#include "svc/metrics.h"
#include "testenv.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --- a validator of the text exposition format 0.0.4, line by line ---------------------- */

/* What the lines so far declared: the family the next samples must belong to. */
struct grammar {
    char family[128];
    char type[16];
    char seen[64][128]; /* families already declared: a TYPE may come only once */
    size_t nseen;
};

static bool is_name(const char *s, size_t n, bool colon)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':')))
            return false;
    }
    return true;
}

static size_t name_len(const char *s)
{
    size_t n = 0;

    while (is_name(s, n + 1, true))
        n++;
    return n;
}

/* A sample value as Go's strconv.ParseFloat and Prometheus read it. */
static bool is_value(const char *s, size_t n)
{
    char tmp[64], *end;

    if ((n == 3 && memcmp(s, "NaN", 3) == 0) || (n == 4 && memcmp(s, "+Inf", 4) == 0) ||
        (n == 4 && memcmp(s, "-Inf", 4) == 0))
        return true;
    if (n == 0 || n >= sizeof(tmp) || strspn(s, "0123456789.eE+-") < n)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    strtod(tmp, &end);
    return end == tmp + n;
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        size_t len = *p < 0x80         ? 1
                     : (*p >> 5) == 6  ? 2
                     : (*p >> 4) == 14 ? 3
                     : (*p >> 3) == 30 ? 4
                                       : 0;
        if (len == 0 || (len == 2 && *p < 0xc2))
            return false;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
        }
        p += len;
    }
    return true;
}

/* Checks one line (without its '\n'); returns NULL or what is wrong with it. */
static const char *check_line(struct grammar *g, const char *line)
{
    const char *p = line;
    size_t n;
    bool has_le = false;

    if (!valid_utf8(line))
        return "not UTF-8";
    if (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0) {
        bool help = p[2] == 'H';

        p += 7;
        n = name_len(p);
        if (n == 0 || n >= sizeof(g->family) || p[n] != ' ')
            return "bad metric name in a comment";
        if (help) {
            for (const char *q = p + n + 1; *q != '\0'; q++) {
                if (*q == '\\' && q[1] != '\\' && q[1] != 'n')
                    return "bad escape in HELP";
                if (*q == '\\')
                    q++;
            }
            memcpy(g->family, p, n);
            g->family[n] = '\0';
            g->type[0] = '\0';
            return NULL;
        }
        if (g->family[0] != '\0' && g->type[0] == '\0' &&
            (strlen(g->family) != n || memcmp(g->family, p, n) != 0))
            return "TYPE of another metric than its HELP";
        memcpy(g->family, p, n);
        g->family[n] = '\0';
        for (size_t i = 0; i < g->nseen; i++) {
            if (strcmp(g->seen[i], g->family) == 0)
                return "metric declared twice";
        }
        if (g->nseen < 64)
            memcpy(g->seen[g->nseen++], g->family, n + 1);
        p += n + 1;
        if (strcmp(p, "counter") != 0 && strcmp(p, "gauge") != 0 && strcmp(p, "histogram") != 0 &&
            strcmp(p, "summary") != 0 && strcmp(p, "untyped") != 0)
            return "unknown TYPE";
        memcpy(g->type, p, strlen(p) + 1);
        return NULL;
    }
    if (p[0] == '#' || p[0] == '\0')
        return "comment or blank line the renderer does not write";

    /* A sample: name[{l="v",...}] value [timestamp] */
    n = name_len(p);
    if (n == 0)
        return "bad sample name";
    if (g->type[0] == '\0')
        return "sample before its TYPE";
    {
        size_t fl = strlen(g->family);
        bool hist = strcmp(g->type, "histogram") == 0;
        const char *suffix = p + fl;

        if (n < fl || memcmp(p, g->family, fl) != 0)
            return "sample of another family";
        if (n > fl && !(hist && (strncmp(suffix, "_bucket", n - fl) == 0 ||
                                 strncmp(suffix, "_sum", n - fl) == 0 ||
                                 strncmp(suffix, "_count", n - fl) == 0)))
            return "sample of another family";
        if (hist && n == fl)
            return "histogram sample without a suffix";
        p += n;
        if (*p == '{') {
            p++;
            while (*p != '}') {
                n = 0;
                while (is_name(p, n + 1, false))
                    n++;
                if (n == 0 || p[n] != '=' || p[n + 1] != '"')
                    return "bad label";
                if (n == 2 && memcmp(p, "le", 2) == 0)
                    has_le = true;
                for (p += n + 2; *p != '"'; p++) {
                    if (*p == '\0' || *p == '\n')
                        return "unterminated label value";
                    if (*p == '\\' && p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                        return "bad escape in a label value";
                    if (*p == '\\')
                        p++;
                }
                p++;
                if (*p == ',')
                    p++;
                else if (*p != '}')
                    return "bad label list";
            }
            p++;
        }
        if (hist && (strncmp(suffix, "_bucket", 7) == 0) != has_le)
            return "le label missing or misplaced";
    }
    if (*p != ' ')
        return "no space before the value";
    p++;
    n = strcspn(p, " ");
    if (!is_value(p, n))
        return "bad value";
    p += n;
    if (*p == ' ') {
        p++;
        if (*p == '\0' || strspn(p, "-0123456789") != strlen(p))
            return "bad timestamp";
    }
    return NULL;
}

/* Renders the registry, fails the test unless every line is valid, and returns the page
 * (free() it). */
static char *render_valid(void)
{
    struct svc_buf b = SVC_BUF_INIT;
    struct grammar g = {0};
    char *page, *line, *nl;

    ck_assert_int_eq(svc_metrics_render(&b), 0);
    page = svc_buf_detach(&b, NULL);
    ck_assert_msg(page[0] != '\0' && page[strlen(page) - 1] == '\n', "page must end in newline");
    for (line = page; *line != '\0'; line = nl + 1) {
        const char *err;

        nl = strchr(line, '\n');
        *nl = '\0';
        err = check_line(&g, line);
        ck_assert_msg(err == NULL, "invalid exposition line (%s): '%s'", err, line);
        *nl = '\n';
    }
    return page;
}

/* The page up to the process metrics, which the renderer always puts last. */
static char *render_own(void)
{
    char *page = render_valid();
    char *proc = strstr(page, "# HELP process_");

    ck_assert_ptr_nonnull(proc);
    *proc = '\0';
    return page;
}

/* The value of the sample line starting with PREFIX (name and labels), or NAN. */
static double sample(const char *page, const char *prefix)
{
    size_t n = strlen(prefix);

    for (const char *line = page; line != NULL && *line != '\0'; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, prefix, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    }
    return (double)NAN;
}

START_TEST(validator_rejects_what_prometheus_rejects)
{
    static const char *const bad[] = {
        "x 1",                              /* sample before its TYPE */
        "# TYPE x counter\nx{a=\"b} 1",     /* unterminated label value */
        "# TYPE x counter\nx{a=\"\\q\"} 1", /* unknown escape */
        "# TYPE x counter\nx{a=\"b\"}1",    /* no space */
        "# TYPE x counter\nx inf",          /* Go reads "+Inf", not "inf" */
        "# TYPE x counter\ny 1",            /* another family */
        "# TYPE x histogram\nx_bucket 1",   /* no le */
        "# TYPE x histogram\nx_sum{le=\"1\"} 1",
        "# TYPE x gauge\n# TYPE x gauge",
        "# HELP x a \\q",
        "# TYPE x gauge\nx{a=\"\xff\"} 1",
        "# TYPE x summery",
        NULL,
    };
    static const char *const good =
        "# HELP x a \\\\ b\\n\n# TYPE x histogram\nx_bucket{a=\"\\\"\",le=\"+Inf\"} 1\n"
        "x_sum{a=\"\"} -1.5e-07\nx_count 1 1700000000000";

    for (size_t i = 0; bad[i] != NULL; i++) {
        char page[256], *line, *nl;
        const char *err = NULL;
        struct grammar g = {0};

        snprintf(page, sizeof(page), "%s", bad[i]);
        for (line = page; err == NULL && line != NULL; line = nl != NULL ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (nl != NULL)
                *nl = '\0';
            err = check_line(&g, line);
        }
        ck_assert_msg(err != NULL, "validator accepts '%s'", bad[i]);
    }
    {
        char page[256], *line, *nl;
        struct grammar g = {0};

        snprintf(page, sizeof(page), "%s", good);
        for (line = page; line != NULL; line = nl != NULL ? nl + 1 : NULL) {
            const char *err;

            nl = strchr(line, '\n');
            if (nl != NULL)
                *nl = '\0';
            err = check_line(&g, line);
            ck_assert_msg(err == NULL, "validator rejects '%s' (%s)", line, err);
        }
    }
}
END_TEST

/* --- the tests ---------------------------------------------------------------------------- */

static const char *const route_code[] = {"route", "code", NULL};
static const char *const route[] = {"route", NULL};

static void *add_one_b(void *arg)
{
    svc_counter_add(arg, (const char *[]){"/b", "200"}, 1);
    return NULL;
}

static double seven(void *arg)
{
    (void)arg;
    return 7;
}

START_TEST(renders_the_exposition_format_exactly)
{
    static const double bounds[] = {0.5, 1};
    struct svc_metric *req, *temp, *lat;
    pthread_t t;
    char *page;

    req = svc_counter_new("req_total", "Requests handled.", route_code);
    temp = svc_gauge_new("temp_celsius", "Temperature.", NULL);
    lat = svc_histogram_new("lat_seconds", "Latency.", route, bounds, 2);
    svc_gauge_fn_new("queue_depth", "Items waiting.", seven, NULL);
    svc_counter_new("idle_total", "Never touched.", NULL);
    svc_counter_new("unseen_total", NULL, route);

    /* Series come out sorted by label values whatever the order they were first seen in, and
     * one series updated from two threads (two shards) comes out once. */
    svc_counter_add(req, (const char *[]){"/b", "200"}, 1);
    ck_assert_int_eq(pthread_create(&t, NULL, add_one_b, req), 0);
    pthread_join(t, NULL);
    svc_counter_inc(req, ((const char *[]){"/a", "500"}));
    svc_counter_inc(req, ((const char *[]){"/a", "200"}));
    svc_gauge_set(temp, NULL, 20);
    svc_gauge_add(temp, NULL, -23.5);
    svc_histogram_observe(lat, (const char *[]){"/a"}, 0.25);
    svc_histogram_observe(lat, (const char *[]){"/a"}, 0.5);
    svc_histogram_observe(lat, (const char *[]){"/a"}, 0.5);
    svc_histogram_observe(lat, (const char *[]){"/a"}, 4);

    page = render_own();
    ck_assert_str_eq(page, "# HELP req_total Requests handled.\n"
                           "# TYPE req_total counter\n"
                           "req_total{route=\"/a\",code=\"200\"} 1\n"
                           "req_total{route=\"/a\",code=\"500\"} 1\n"
                           "req_total{route=\"/b\",code=\"200\"} 2\n"
                           "# HELP temp_celsius Temperature.\n"
                           "# TYPE temp_celsius gauge\n"
                           "temp_celsius -3.5\n"
                           "# HELP lat_seconds Latency.\n"
                           "# TYPE lat_seconds histogram\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.5\"} 3\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
                           "lat_seconds_sum{route=\"/a\"} 5.25\n"
                           "lat_seconds_count{route=\"/a\"} 4\n"
                           "# HELP queue_depth Items waiting.\n"
                           "# TYPE queue_depth gauge\n"
                           "queue_depth 7\n"
                           "# HELP idle_total Never touched.\n"
                           "# TYPE idle_total counter\n"
                           "idle_total 0\n"
                           "# TYPE unseen_total counter\n");
    free(page);
}
END_TEST

START_TEST(label_values_and_help_are_escaped)
{
    struct svc_metric *m = svc_gauge_new("esc", "a \\ backslash\nand \"quotes\"", route);
    char *page;

    svc_gauge_set(m, (const char *[]){"a\\b\"c\nd"}, 1);
    /* Invalid UTF-8 in a label value would make Prometheus reject the whole page. */
    svc_gauge_set(m, (const char *[]){"bad\xff"}, 2);
    svc_gauge_set(m, (const char *[]){"caf\xc3\xa9"}, 3);
    page = render_own();
    ck_assert_str_eq(page, "# HELP esc a \\\\ backslash\\nand \"quotes\"\n"
                           "# TYPE esc gauge\n"
                           "esc{route=\"a\\\\b\\\"c\\nd\"} 1\n"
                           "esc{route=\"bad\xef\xbf\xbd\"} 2\n"
                           "esc{route=\"caf\xc3\xa9\"} 3\n");
    /* The series is still found by the value it was given. */
    ck_assert_double_eq(svc_metric_value(m, (const char *[]){"bad\xff"}), 2);
    free(page);
}
END_TEST

START_TEST(numbers_are_formatted_for_prometheus)
{
    static const char *const which[] = {"v", NULL};
    struct svc_metric *m = svc_gauge_new("num", "Numbers.", which);
    char *page;

    svc_gauge_set(m, (const char *[]){"a"}, 0.1);
    svc_gauge_set(m, (const char *[]){"b"}, 1e21);
    svc_gauge_set(m, (const char *[]){"c"}, (double)INFINITY);
    svc_gauge_set(m, (const char *[]){"d"}, -(double)INFINITY);
    svc_gauge_set(m, (const char *[]){"e"}, (double)NAN);
    svc_gauge_set(m, (const char *[]){"f"}, 1.0 / 3);
    svc_gauge_set(m, (const char *[]){"g"}, 123456789);
    svc_gauge_set(m, (const char *[]){"h"}, 0.1 + 0.2);
    page = render_own();
    ck_assert_str_eq(page, "# HELP num Numbers.\n"
                           "# TYPE num gauge\n"
                           "num{v=\"a\"} 0.1\n"
                           "num{v=\"b\"} 1e+21\n"
                           "num{v=\"c\"} +Inf\n"
                           "num{v=\"d\"} -Inf\n"
                           "num{v=\"e\"} NaN\n"
                           "num{v=\"f\"} 0.3333333333333333\n"
                           "num{v=\"g\"} 123456789\n"
                           "num{v=\"h\"} 0.30000000000000004\n");
    free(page);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative_up_to_inf)
{
    struct svc_metric *h =
        svc_histogram_new("http_request_duration_seconds", "Latency.", route,
                          svc_metrics_latency_buckets, svc_metrics_latency_nbuckets);
    static const double obs[] = {0.0001, 0.0005, 0.003, 0.003, 0.2, 0.7, 9.9, 10, 11, 1000};
    const size_t nobs = sizeof(obs) / sizeof(obs[0]);
    double last = 0, sum = 0;
    char *page, key[128];

    ck_assert_uint_eq(svc_metrics_latency_nbuckets, 14);
    ck_assert_double_eq(svc_metrics_latency_buckets[0], 0.0005);
    ck_assert_double_eq(svc_metrics_latency_buckets[13], 10);
    for (size_t i = 0; i < nobs; i++) {
        svc_histogram_observe(h, (const char *[]){"/x"}, obs[i]);
        sum += obs[i];
    }
    page = render_own();
    for (size_t b = 0; b < svc_metrics_latency_nbuckets; b++) {
        double bound = svc_metrics_latency_buckets[b], want = 0, got;

        for (size_t i = 0; i < nobs; i++)
            want += obs[i] <= bound;
        snprintf(key, sizeof(key), "http_request_duration_seconds_bucket{route=\"/x\",le=\"%g\"}",
                 bound);
        got = sample(page, key);
        ck_assert_msg(got == want, "bucket le=%g: %g, want %g", bound, got, want);
        ck_assert(got >= last);
        last = got;
    }
    ck_assert_double_eq(
        sample(page, "http_request_duration_seconds_bucket{route=\"/x\",le=\"10\"}"), 8);
    ck_assert_double_eq(
        sample(page, "http_request_duration_seconds_bucket{route=\"/x\",le=\"+Inf\"}"), nobs);
    ck_assert_double_eq(sample(page, "http_request_duration_seconds_count{route=\"/x\"}"), nobs);
    ck_assert_double_eq_tol(sample(page, "http_request_duration_seconds_sum{route=\"/x\"}"), sum,
                            1e-9);
    ck_assert_double_eq(svc_metric_value(h, (const char *[]){"/x"}), nobs);
    free(page);
}
END_TEST

START_TEST(histogram_without_labels_or_buckets)
{
    static const double inf_only[] = {(double)INFINITY};
    struct svc_metric *h = svc_histogram_new("sizes", "Sizes.", NULL, inf_only, 1);
    char *page;

    /* Before any observation an unlabelled histogram shows zeros. */
    page = render_own();
    ck_assert_str_eq(page, "# HELP sizes Sizes.\n"
                           "# TYPE sizes histogram\n"
                           "sizes_bucket{le=\"+Inf\"} 0\n"
                           "sizes_sum 0\n"
                           "sizes_count 0\n");
    free(page);
    svc_histogram_observe(h, NULL, 2);
    svc_histogram_observe(h, NULL, (double)NAN);
    page = render_own();
    ck_assert_str_eq(page, "# HELP sizes Sizes.\n"
                           "# TYPE sizes histogram\n"
                           "sizes_bucket{le=\"+Inf\"} 2\n"
                           "sizes_sum NaN\n"
                           "sizes_count 2\n");
    free(page);
}
END_TEST

#define NTHREADS 8
#define NINCS    100000

static struct svc_metric *hot_counter, *hot_gauge, *hot_hist;

static void *hammer(void *arg)
{
    const char *const *mine = arg;

    for (int i = 0; i < NINCS; i++) {
        svc_counter_inc(hot_counter, ((const char *[]){"/hot"}));
        svc_counter_inc(hot_counter, mine);
        svc_gauge_add(hot_gauge, NULL, 1);
        svc_histogram_observe(hot_hist, NULL, (i % 2) ? 0.5 : 2);
    }
    return NULL;
}

START_TEST(counters_from_threads_sum_exactly)
{
    static const double bounds[] = {1};
    static const char *names[NTHREADS][1] = {{"t0"}, {"t1"}, {"t2"}, {"t3"},
                                             {"t4"}, {"t5"}, {"t6"}, {"t7"}};
    pthread_t t[NTHREADS];
    double prev = 0;
    char *page;

    hot_counter = svc_counter_new("hot_total", "Hot.", route);
    hot_gauge = svc_gauge_new("hot_gauge", "Hot.", NULL);
    hot_hist = svc_histogram_new("hot_seconds", "Hot.", NULL, bounds, 1);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, (void *)names[i]), 0);
    /* Scrapes while the updates run see valid pages and a counter that only grows. */
    for (int i = 0; i < 20; i++) {
        double now;

        page = render_valid();
        now = sample(page, "hot_total{route=\"/hot\"}");
        if (!isnan(now)) {
            ck_assert(now >= prev);
            prev = now;
        }
        free(page);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);

    ck_assert_double_eq(svc_metric_value(hot_counter, (const char *[]){"/hot"}), NTHREADS * NINCS);
    ck_assert_double_eq(svc_metric_value(hot_counter, (const char *[]){"t3"}), NINCS);
    ck_assert_double_eq(svc_metric_value(hot_gauge, NULL), NTHREADS * NINCS);
    ck_assert_double_eq(svc_metric_value(hot_hist, NULL), NTHREADS * NINCS);
    page = render_own();
    ck_assert_double_eq(sample(page, "hot_total{route=\"/hot\"}"), NTHREADS * NINCS);
    ck_assert_double_eq(sample(page, "hot_total{route=\"t7\"}"), NINCS);
    ck_assert_double_eq(sample(page, "hot_gauge"), NTHREADS * NINCS);
    ck_assert_double_eq(sample(page, "hot_seconds_bucket{le=\"1\"}"), NTHREADS * NINCS / 2.0);
    ck_assert_double_eq(sample(page, "hot_seconds_count"), NTHREADS * NINCS);
    ck_assert_double_eq(sample(page, "hot_seconds_sum"), NTHREADS * NINCS / 2.0 * 2.5);
    /* Exactly one line per series: the shards were merged. */
    ck_assert_ptr_null(
        strstr(strstr(page, "hot_total{route=\"/hot\"}") + 1, "hot_total{route=\"/hot\"}"));
    free(page);
}
END_TEST

START_TEST(redeclaring_returns_the_same_metric)
{
    static const char *const same_route[] = {"route", NULL};
    static const double b1[] = {1, 2}, b2[] = {1, 2};
    struct svc_metric *c = svc_counter_new("dup_total", "First.", route);
    struct svc_metric *h = svc_histogram_new("dup_seconds", "First.", NULL, b1, 2);
    char *page;

    /* Label names are compared by value, not by array. */
    ck_assert_ptr_eq(svc_counter_new("dup_total", "Second help is ignored.", same_route), c);
    ck_assert_ptr_eq(svc_histogram_new("dup_seconds", NULL, NULL, b2, 2), h);
    svc_counter_inc(c, ((const char *[]){"/"}));
    page = render_own();
    ck_assert_ptr_nonnull(strstr(page, "# HELP dup_total First.\n"));
    ck_assert_ptr_null(strstr(page, "Second"));
    /* One family, one series: the validator in render_own() rejects a second TYPE line. */
    ck_assert_double_eq(sample(page, "dup_total{route=\"/\"}"), 1);
    free(page);
}
END_TEST

START_TEST(redeclaring_with_other_labels_aborts)
{
    static const char *const other[] = {"method", NULL};

    svc_counter_new("clash_total", "Clash.", route);
    svc_counter_new("clash_total", "Clash.", other);
}
END_TEST

START_TEST(redeclaring_as_another_kind_aborts)
{
    svc_counter_new("clash", "Clash.", NULL);
    svc_gauge_new("clash", "Clash.", NULL);
}
END_TEST

START_TEST(invalid_metric_name_aborts)
{
    svc_counter_new("1bad-name", "Bad.", NULL);
}
END_TEST

START_TEST(process_name_aborts)
{
    svc_gauge_new("process_open_fds", "Mine.", NULL);
}
END_TEST

START_TEST(histogram_le_label_aborts)
{
    static const char *const le[] = {"le", NULL};
    static const double b[] = {1};

    svc_histogram_new("le_seconds", "Le.", le, b, 1);
}
END_TEST

START_TEST(unsorted_buckets_abort)
{
    static const double b[] = {1, 0.5};

    svc_histogram_new("bad_seconds", "Bad.", NULL, b, 2);
}
END_TEST

START_TEST(process_metrics_are_present_and_plausible)
{
    int fds[5];
    double before, after, rss, cpu, start;
    char *page;

    page = render_valid();
    before = sample(page, "process_open_fds");
    free(page);
    for (int i = 0; i < 5; i++)
        ck_assert_int_ge(fds[i] = dup(STDERR_FILENO), 0);
    page = render_valid();
    for (int i = 0; i < 5; i++)
        close(fds[i]);

    after = sample(page, "process_open_fds");
    rss = sample(page, "process_resident_memory_bytes");
    cpu = sample(page, "process_cpu_seconds_total");
    start = sample(page, "process_start_time_seconds");
    ck_assert_double_ge(before, 3);
    ck_assert_double_eq(after, before + 5);
    ck_assert_double_gt(rss, 1 << 20);
    ck_assert_double_lt(rss, 64.0 * (1 << 30));
    ck_assert_double_ge(cpu, 0);
    ck_assert_double_lt(cpu, 3600);
    /* This process started moments ago; a day of slack covers clock adjustments. */
    ck_assert_double_le(start, (double)time(NULL) + 5);
    ck_assert_double_gt(start, (double)time(NULL) - 86400);
    ck_assert_ptr_nonnull(strstr(page, "# TYPE process_cpu_seconds_total counter\n"));
    ck_assert_ptr_nonnull(strstr(page, "# TYPE process_resident_memory_bytes gauge\n"));
    free(page);
}
END_TEST

static double count_calls(void *arg)
{
    int *calls = arg;

    return ++*calls;
}

START_TEST(gauge_fn_is_called_at_scrape)
{
    int calls = 0, other = 100;
    struct svc_metric *m = svc_gauge_fn_new("calls", "Scrapes so far.", count_calls, &calls);
    char *page;

    ck_assert_int_eq(calls, 0);
    page = render_own();
    ck_assert_int_eq(calls, 1);
    ck_assert_double_eq(sample(page, "calls"), 1);
    free(page);
    page = render_own();
    ck_assert_double_eq(sample(page, "calls"), 2);
    free(page);
    /* Declared again (a service started twice), it follows the latest argument. */
    ck_assert_ptr_eq(svc_gauge_fn_new("calls", "Scrapes so far.", count_calls, &other), m);
    page = render_own();
    ck_assert_double_eq(sample(page, "calls"), 101);
    ck_assert_int_eq(calls, 2);
    free(page);
}
END_TEST

START_TEST(values_of_series)
{
    struct svc_metric *c = svc_counter_new("v_total", "V.", route);
    struct svc_metric *g = svc_gauge_new("v_gauge", "V.", route);

    ck_assert_double_eq(svc_metric_value(c, (const char *[]){"/none"}), 0);
    svc_counter_add(c, (const char *[]){"/a"}, 2.5);
    /* A counter never goes down. */
    svc_counter_add(c, (const char *[]){"/a"}, -1);
    svc_counter_add(c, (const char *[]){"/a"}, (double)NAN);
    ck_assert_double_eq(svc_metric_value(c, (const char *[]){"/a"}), 2.5);
    svc_gauge_add(g, (const char *[]){"/a"}, 5);
    svc_gauge_set(g, (const char *[]){"/a"}, 2);
    svc_gauge_add(g, (const char *[]){"/a"}, -3);
    ck_assert_double_eq(svc_metric_value(g, (const char *[]){"/a"}), -1);
    /* ("ab","c") and ("a","bc") are different series. */
    {
        struct svc_metric *two = svc_counter_new("two_total", "Two.", route_code);
        svc_counter_inc(two, ((const char *[]){"ab", "c"}));
        ck_assert_double_eq(svc_metric_value(two, (const char *[]){"a", "bc"}), 0);
        ck_assert_double_eq(svc_metric_value(two, (const char *[]){"ab", "c"}), 1);
    }
}
END_TEST

START_TEST(many_series_grow_the_tables)
{
    struct svc_metric *c = svc_counter_new("many_total", "Many.", route);
    char v[16], *page, *prev = NULL;
    size_t lines = 0;

    for (int i = 0; i < 2000; i++) {
        snprintf(v, sizeof(v), "r%04d", (i * 7919) % 2000);
        svc_counter_add(c, (const char *[]){v}, i);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(v, sizeof(v), "r%04d", (i * 7919) % 2000);
        ck_assert_double_eq(svc_metric_value(c, (const char *[]){v}), i);
    }
    page = render_own();
    /* Sorted by label value. */
    for (char *line = strstr(page, "many_total{"); line != NULL;
         line = strstr(line + 1, "many_total{")) {
        if (prev != NULL)
            ck_assert_int_lt(strncmp(prev, line, 25), 0);
        prev = line;
        lines++;
    }
    ck_assert_uint_eq(lines, 2000);
    free(page);
}
END_TEST

static void *inc_a(void *arg)
{
    svc_counter_inc(arg, ((const char *[]){"/a"}));
    return NULL;
}

START_TEST(removed_series_leave_the_page)
{
    static const double bounds[] = {1};
    struct svc_metric *lag = svc_gauge_new("lag", "Lag.", route_code);
    struct svc_metric *req = svc_counter_new("rm_total", "Requests.", route);
    struct svc_metric *lat = svc_histogram_new("rm_seconds", "Latency.", route, bounds, 1);
    struct svc_metric *temp = svc_gauge_new("rm_temp", "Temperature.", NULL);
    pthread_t t;
    char *page;

    svc_gauge_set(lag, (const char *[]){"t", "0"}, 3);
    svc_gauge_set(lag, (const char *[]){"t", "1"}, 4);
    svc_gauge_set(lag, (const char *[]){"t", "2"}, 5);
    /* A counter series updated from two threads lives in two shards: both copies go. */
    svc_counter_inc(req, ((const char *[]){"/a"}));
    ck_assert_int_eq(pthread_create(&t, NULL, inc_a, req), 0);
    pthread_join(t, NULL);
    svc_counter_inc(req, ((const char *[]){"/b"}));
    svc_histogram_observe(lat, (const char *[]){"/a"}, 0.5);
    svc_gauge_set(temp, NULL, 20);

    svc_metric_remove(lag, (const char *[]){"t", "1"});
    svc_metric_remove(lag, (const char *[]){"t", "9"}); /* never seen: nothing happens */
    svc_metric_remove(req, (const char *[]){"/a"});
    svc_metric_remove(lat, (const char *[]){"/a"});
    svc_metric_remove(temp, NULL);
    ck_assert_double_eq(svc_metric_value(req, (const char *[]){"/a"}), 0);
    page = render_own();
    ck_assert_str_eq(page, "# HELP lag Lag.\n"
                           "# TYPE lag gauge\n"
                           "lag{route=\"t\",code=\"0\"} 3\n"
                           "lag{route=\"t\",code=\"2\"} 5\n"
                           "# HELP rm_total Requests.\n"
                           "# TYPE rm_total counter\n"
                           "rm_total{route=\"/b\"} 1\n"
                           "# HELP rm_seconds Latency.\n"
                           "# TYPE rm_seconds histogram\n"
                           "# HELP rm_temp Temperature.\n"
                           "# TYPE rm_temp gauge\n"
                           "rm_temp 0\n");
    free(page);

    /* An update brings a series back, a counter from zero. */
    svc_gauge_set(lag, (const char *[]){"t", "1"}, 7);
    svc_counter_inc(req, ((const char *[]){"/a"}));
    page = render_own();
    ck_assert_double_eq(sample(page, "lag{route=\"t\",code=\"1\"}"), 7);
    ck_assert_double_eq(sample(page, "rm_total{route=\"/a\"}"), 1);
    free(page);
}
END_TEST

START_TEST(removing_from_a_callback_gauge_aborts)
{
    svc_metric_remove(svc_gauge_fn_new("calls", NULL, seven, NULL), NULL);
}
END_TEST

#define NREMOVERS 4

static atomic_int removers_done;

/* Creates and removes series as fast as it can, with label values long enough that a scrape
 * reading one after it was freed would be caught by ASan. */
static void *churn(void *arg)
{
    struct svc_metric *const *m = arg;
    char v[96];

    for (int i = 0; i < 20000; i++) {
        snprintf(v, sizeof(v), "partition-%d-%s", i % 8,
                 "of-a-topic-whose-name-is-long-enough-to-live-on-the-heap");
        svc_gauge_set(m[0], (const char *[]){v}, i);
        svc_counter_inc(m[1], ((const char *[]){v}));
        svc_metric_remove(m[0], (const char *[]){v});
        svc_metric_remove(m[1], (const char *[]){v});
    }
    atomic_fetch_add(&removers_done, 1);
    return NULL;
}

START_TEST(removal_races_scrapes_safely)
{
    struct svc_metric *m[2] = {svc_gauge_new("churn", "Churn.", route),
                               svc_counter_new("churn_total", "Churn.", route)};
    pthread_t t[NREMOVERS];
    char *page;

    atomic_store(&removers_done, 0);
    for (int i = 0; i < NREMOVERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn, m), 0);
    /* Scrapes during the churn see valid pages (and, under ASan, read no freed series). */
    while (atomic_load(&removers_done) < NREMOVERS)
        free(render_valid());
    for (int i = 0; i < NREMOVERS; i++)
        pthread_join(t[i], NULL);
    page = render_own();
    ck_assert_str_eq(page, "# HELP churn Churn.\n# TYPE churn gauge\n"
                           "# HELP churn_total Churn.\n# TYPE churn_total counter\n");
    free(page);
}
END_TEST

START_TEST(render_stops_at_the_cap)
{
    struct svc_buf b;

    svc_counter_new("capped_total", "Capped.", NULL);
    svc_buf_init(&b, 40);
    ck_assert_int_eq(svc_metrics_render(&b), SVC_ETOOBIG);
    ck_assert_uint_le(b.len, 40);
    svc_buf_release(&b);
}
END_TEST

START_TEST(reset_forgets_every_metric)
{
    struct svc_metric *c = svc_counter_new("gone_total", "Gone.", route);
    char *page;

    svc_counter_inc(c, ((const char *[]){"/x"}));
    svc_histogram_observe(svc_histogram_new("gone_seconds", "Gone.", route, (const double[]){1}, 1),
                          (const char *[]){"\xff"}, 1);
    svc_metrics_reset();
    page = render_valid();
    ck_assert_ptr_eq(strstr(page, "# HELP process_"), page);
    free(page);
    /* The name is free again, even for another kind. */
    svc_gauge_new("gone_total", "Back.", NULL);
    page = render_own();
    ck_assert_str_eq(page, "# HELP gone_total Back.\n# TYPE gone_total gauge\ngone_total 0\n");
    free(page);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");

    /* Every case starts from an empty registry and leaves none behind (ASan checks). */
    tcase_add_checked_fixture(tc, NULL, svc_metrics_reset);
    tcase_add_test(tc, validator_rejects_what_prometheus_rejects);
    tcase_add_test(tc, renders_the_exposition_format_exactly);
    tcase_add_test(tc, label_values_and_help_are_escaped);
    tcase_add_test(tc, numbers_are_formatted_for_prometheus);
    tcase_add_test(tc, histogram_buckets_are_cumulative_up_to_inf);
    tcase_add_test(tc, histogram_without_labels_or_buckets);
    tcase_add_test(tc, counters_from_threads_sum_exactly);
    tcase_add_test(tc, redeclaring_returns_the_same_metric);
    tcase_add_test_raise_signal(tc, redeclaring_with_other_labels_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, redeclaring_as_another_kind_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, invalid_metric_name_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, process_name_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, histogram_le_label_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, unsorted_buckets_abort, SIGABRT);
    tcase_add_test(tc, process_metrics_are_present_and_plausible);
    tcase_add_test(tc, gauge_fn_is_called_at_scrape);
    tcase_add_test(tc, values_of_series);
    tcase_add_test(tc, many_series_grow_the_tables);
    tcase_add_test(tc, removed_series_leave_the_page);
    tcase_add_test_raise_signal(tc, removing_from_a_callback_gauge_aborts, SIGABRT);
    tcase_add_test(tc, removal_races_scrapes_safely);
    tcase_add_test(tc, render_stops_at_the_cap);
    tcase_add_test(tc, reset_forgets_every_metric);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
