#include "svc/buf.h"
#include "svc/config.h"
#include "svc/error.h"
#include "svc/log.h"
#include "testenv.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Two tables, as a service has: libsvc's own and the service's. */
struct lib_cfg {
    int port;
    int64_t timeout_ms;
    bool debug;
    int level;
    char *name;
};

struct app_cfg {
    char *db_url;
    char *api_key;
    int pool;
    int pin;
    char *cache_url;
    char *conninfo;
};

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const struct svc_config_var lib_vars[] = {
    {"HTTP_PORT", SVC_CONFIG_INT, "8080", 0, "TCP port the HTTP server listens on",
     .offset = offsetof(struct lib_cfg, port), .min = 1, .max = 65535},
    {"HTTP_TIMEOUT", SVC_CONFIG_DURATION, "5s", 0, "per-connection timeout",
     .offset = offsetof(struct lib_cfg, timeout_ms), .min = 100, .max = 3600000},
    {"DEBUG", SVC_CONFIG_BOOL, NULL, 0, "extra checks", .offset = offsetof(struct lib_cfg, debug)},
    {"LOG_LEVEL", SVC_CONFIG_ENUM, "info", 0, "lowest level logged",
     .offset = offsetof(struct lib_cfg, level), .choices = levels},
    {"SVC_NAME", SVC_CONFIG_STRING, "svc", 0, NULL, .offset = offsetof(struct lib_cfg, name)},
    {0},
};

static const struct svc_config_var app_vars[] = {
    {"DB_URL", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED, "PostgreSQL connection URL",
     .offset = offsetof(struct app_cfg, db_url)},
    {"API_KEY", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED | SVC_CONFIG_SECRET,
     "key for the payment API", .offset = offsetof(struct app_cfg, api_key)},
    {"POOL", SVC_CONFIG_INT, "4", 0, "connections in the pool",
     .offset = offsetof(struct app_cfg, pool), .min = 1, .max = 64},
    {"PIN", SVC_CONFIG_INT, "1234", SVC_CONFIG_SECRET, "door code",
     .offset = offsetof(struct app_cfg, pin)},
    {"CACHE_URL", SVC_CONFIG_STRING, NULL, 0, NULL, .offset = offsetof(struct app_cfg, cache_url)},
    {"CONNINFO", SVC_CONFIG_STRING, NULL, 0, NULL, .offset = offsetof(struct app_cfg, conninfo)},
    {0},
};

static const struct svc_config_var *const both[] = {lib_vars, app_vars, NULL};

static struct svc_buf problems;

static void setup(void)
{
    svc_buf_init(&problems, 0);
}

static void teardown(void)
{
    svc_buf_release(&problems);
}

START_TEST(defaults_apply_when_unset_or_empty)
{
    static const char *const env[] = {"HTTP_PORTX=1", "XHTTP_PORT=2", "HTTP_TIMEOUT=", NULL};
    struct lib_cfg c;

    memset(&c, 0xff, sizeof(c));
    c.name = NULL;
    ck_assert_int_eq(svc_config_load(lib_vars, &c, env, &problems), 0);
    ck_assert_str_eq(svc_buf_str(&problems), "");
    ck_assert_int_eq(c.port, 8080);
    ck_assert_int_eq(c.timeout_ms, 5000);
    ck_assert(!c.debug); /* no default: zero */
    ck_assert_int_eq(c.level, 1);
    ck_assert_str_eq(c.name, "svc");
    ck_assert_ptr_ne(c.name, lib_vars[4].def); /* a copy, freed by release */
    svc_config_release(lib_vars, &c);
    ck_assert_ptr_null(c.name);
}
END_TEST

START_TEST(values_override_defaults)
{
    static const char *const env[] = {
        "HTTP_PORT=9090",    "HTTP_TIMEOUT=250ms", "DEBUG=Yes", "LOG_LEVEL=WARN",
        "SVC_NAME=user-svc", "HTTP_PORT=1",        NULL};
    struct lib_cfg c = {0};

    ck_assert_int_eq(svc_config_load(lib_vars, &c, env, &problems), 0);
    ck_assert_int_eq(c.port, 9090); /* the first of two, as getenv() */
    ck_assert_int_eq(c.timeout_ms, 250);
    ck_assert(c.debug);
    ck_assert_int_eq(c.level, 2);
    ck_assert_str_eq(c.name, "user-svc");
    svc_config_release(lib_vars, &c);
}
END_TEST

START_TEST(every_problem_is_reported_at_once)
{
    static const char *const env[] = {"HTTP_PORT=abc",  "HTTP_TIMEOUT=5", "DEBUG=maybe",
                                      "LOG_LEVEL=loud", "POOL=0",         "PIN=12ab",
                                      "API_KEY=",       "SVC_NAME=fine",  NULL};
    struct lib_cfg lc = {0};
    struct app_cfg ac = {0};
    int lib_rc = svc_config_load(lib_vars, &lc, env, &problems);
    int app_rc = svc_config_load(app_vars, &ac, env, &problems);

    ck_assert_int_eq(lib_rc, SVC_EINVAL);
    ck_assert_int_eq(app_rc, SVC_EINVAL);
    ck_assert_str_eq(svc_buf_str(&problems),
                     "'HTTP_PORT' must be an integer from 1 to 65535, got \"abc\"\n"
                     "'HTTP_TIMEOUT' must be a duration from 100ms to 1h, got \"5\"\n"
                     "'DEBUG' must be a boolean (true/false, 1/0, yes/no, on/off), got \"maybe\"\n"
                     "'LOG_LEVEL' must be one of debug, info, warn, error, got \"loud\"\n"
                     "'DB_URL' is required: PostgreSQL connection URL\n"
                     "'API_KEY' is required: key for the payment API\n"
                     "'POOL' must be an integer from 1 to 64, got \"0\"\n"
                     "'PIN' must be an integer (value not shown: secret)\n");
    /* What did parse is there, and the rest can still be released. */
    ck_assert_str_eq(lc.name, "fine");
    ck_assert_ptr_null(ac.db_url);
    svc_config_release(lib_vars, &lc);
    svc_config_release(app_vars, &ac);
}
END_TEST

/* Loads one variable of TYPE from "V=VALUE"; returns what svc_config_load() did. */
static int load_one(enum svc_config_type type, long long min, long long max, const char *value,
                    void *out)
{
    const struct svc_config_var vars[] = {
        {"V", type, NULL, 0, NULL, .min = min, .max = max},
        {0},
    };
    char entry[128];
    const char *env[] = {entry, NULL};

    snprintf(entry, sizeof(entry), "V=%s", value);
    svc_buf_reset(&problems);
    return svc_config_load(vars, out, env, &problems);
}

START_TEST(durations_take_a_unit)
{
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"250ms", 250}, {"5s", 5000}, {"2m", 120000}, {"1h", 3600000},
                {"0", 0},       {"0s", 0},    {"007s", 7000}, {"9223372036854775807ms", INT64_MAX}};
    static const char *const bad[] = {"5",
                                      "5x",
                                      "-1s",
                                      " 5s",
                                      "5s ",
                                      "1.5s",
                                      "ms",
                                      "5S",
                                      "1h30m",
                                      "5 s",
                                      "0x5s",
                                      "9223372036854775808ms",
                                      "2562047788015216h"};
    int64_t ms;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ms = -1;
        ck_assert_msg(load_one(SVC_CONFIG_DURATION, 0, 0, good[i].text, &ms) == 0, "%s: %s",
                      good[i].text, svc_buf_str(&problems));
        ck_assert_msg(ms == good[i].ms, "%s gave %lld", good[i].text, (long long)ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(load_one(SVC_CONFIG_DURATION, 0, 0, bad[i], &ms) == SVC_EINVAL,
                      "'%s' accepted", bad[i]);
    ck_assert_str_eq(
        svc_buf_str(&problems),
        "'V' must be a duration like 250ms, 5s, 2m or 1h, got \"2562047788015216h\"\n");
    ck_assert_int_eq(load_one(SVC_CONFIG_DURATION, 1000, 120000, "999ms", &ms), SVC_EINVAL);
    ck_assert_str_eq(svc_buf_str(&problems),
                     "'V' must be a duration from 1s to 2m, got \"999ms\"\n");
    ck_assert_int_eq(load_one(SVC_CONFIG_DURATION, 1000, 120000, "2m", &ms), 0);
    ck_assert_int_eq(ms, 120000);
}
END_TEST

START_TEST(integers_are_decimal_and_bounded)
{
    static const char *const bad[] = {"0x10",
                                      " 5",
                                      "5 ",
                                      "5.0",
                                      "1e3",
                                      "+",
                                      "-",
                                      "five",
                                      "2147483648",
                                      "-2147483649",
                                      "99999999999999999999"};
    int n;

    ck_assert_int_eq(load_one(SVC_CONFIG_INT, 0, 0, "+5", &n), 0);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(load_one(SVC_CONFIG_INT, 0, 0, "-2147483648", &n), 0);
    ck_assert_int_eq(n, -2147483647 - 1);
    ck_assert_int_eq(load_one(SVC_CONFIG_INT, 0, 0, "0010", &n), 0);
    ck_assert_int_eq(n, 10);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(load_one(SVC_CONFIG_INT, 0, 0, bad[i], &n) == SVC_EINVAL, "'%s' accepted",
                      bad[i]);
    ck_assert_int_eq(load_one(SVC_CONFIG_INT, -5, 5, "6", &n), SVC_EINVAL);
    ck_assert_str_eq(svc_buf_str(&problems), "'V' must be an integer from -5 to 5, got \"6\"\n");
    ck_assert_int_eq(load_one(SVC_CONFIG_INT, -5, 5, "-5", &n), 0);
    ck_assert_int_eq(n, -5);
}
END_TEST

START_TEST(booleans_take_the_usual_words)
{
    static const char *const yes[] = {"true", "TRUE", "1", "yes", "On", NULL};
    static const char *const no[] = {"false", "False", "0", "no", "OFF", NULL};
    bool b;

    for (size_t i = 0; yes[i] != NULL; i++) {
        b = false;
        ck_assert_int_eq(load_one(SVC_CONFIG_BOOL, 0, 0, yes[i], &b), 0);
        ck_assert_msg(b, "%s", yes[i]);
    }
    for (size_t i = 0; no[i] != NULL; i++) {
        b = true;
        ck_assert_int_eq(load_one(SVC_CONFIG_BOOL, 0, 0, no[i], &b), 0);
        ck_assert_msg(!b, "%s", no[i]);
    }
    ck_assert_int_eq(load_one(SVC_CONFIG_BOOL, 0, 0, "2", &b), SVC_EINVAL);
    ck_assert_int_eq(load_one(SVC_CONFIG_BOOL, 0, 0, "y", &b), SVC_EINVAL);
}
END_TEST

START_TEST(problems_show_values_safely)
{
    int n;

    /* One line per problem, whatever the value holds. */
    ck_assert_int_eq(load_one(SVC_CONFIG_INT, 0, 0, "1\n2\t3", &n), SVC_EINVAL);
    ck_assert_str_eq(svc_buf_str(&problems), "'V' must be an integer, got \"1?2?3\"\n");
    /* A password is masked even in a variable not marked secret. */
    ck_assert_int_eq(load_one(SVC_CONFIG_INT, 0, 0, "postgresql://app:s3cret@db/app", &n),
                     SVC_EINVAL);
    ck_assert_str_eq(svc_buf_str(&problems),
                     "'V' must be an integer, got \"postgresql://app:***@db/app\"\n");
    /* A long value is cut. */
    ck_assert_int_eq(
        load_one(SVC_CONFIG_INT, 0, 0,
                 "0123456789012345678901234567890123456789012345678901234567890123456789", &n),
        SVC_EINVAL);
    ck_assert_str_eq(svc_buf_str(&problems),
                     "'V' must be an integer, got "
                     "\"0123456789012345678901234567890123456789012345678901234567890123...\"\n");
}
END_TEST

START_TEST(table_mistakes_are_problems)
{
    static const struct svc_config_var vars[] = {
        {"UPSIDE_DOWN", SVC_CONFIG_INT, "3", 0, NULL, .min = 5, .max = 1},
        {"BAD_DEFAULT", SVC_CONFIG_DURATION, "5", 0, NULL, .offset = sizeof(int)},
        {"NO_CHOICES", SVC_CONFIG_ENUM, NULL, 0, NULL, .offset = 2 * sizeof(int64_t)},
        {0},
    };
    static const char *const env[] = {NULL};
    int64_t dst[4] = {0};

    ck_assert_int_eq(svc_config_load(vars, dst, env, &problems), SVC_EINVAL);
    ck_assert_str_eq(svc_buf_str(&problems),
                     "'UPSIDE_DOWN' has .min > .max (a mistake in the program's table)\n"
                     "'BAD_DEFAULT' must be a duration like 250ms, 5s, 2m or 1h, got default "
                     "\"5\"\n"
                     "'NO_CHOICES' is an enum without .choices (a mistake in the program's "
                     "table)\n");
}
END_TEST

START_TEST(the_process_environment_is_the_default)
{
    struct lib_cfg c = {0};

    ck_assert_int_eq(setenv("HTTP_PORT", "7070", 1), 0);
    ck_assert_int_eq(setenv("LOG_LEVEL", "debug", 1), 0);
    ck_assert_int_eq(svc_config_load(lib_vars, &c, NULL, &problems), 0);
    ck_assert_int_eq(c.port, 7070);
    ck_assert_int_eq(c.level, 0);
    svc_config_release(lib_vars, &c);
}
END_TEST

START_TEST(help_lists_every_variable)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    ck_assert_ptr_nonnull(out);
    svc_config_help(both, out);
    fclose(out);
    ck_assert_str_eq(text, "  HTTP_PORT     integer from 1 to 65535, default 8080\n"
                           "                TCP port the HTTP server listens on\n"
                           "  HTTP_TIMEOUT  duration from 100ms to 1h, default 5s\n"
                           "                per-connection timeout\n"
                           "  DEBUG         boolean\n"
                           "                extra checks\n"
                           "  LOG_LEVEL     one of debug, info, warn, error, default info\n"
                           "                lowest level logged\n"
                           "  SVC_NAME      string, default svc\n"
                           "  DB_URL        string, required\n"
                           "                PostgreSQL connection URL\n"
                           "  API_KEY       string, required, secret\n"
                           "                key for the payment API\n"
                           "  POOL          integer from 1 to 64, default 4\n"
                           "                connections in the pool\n"
                           "  PIN           integer, secret, has a default\n"
                           "                door code\n"
                           "  CACHE_URL     string\n"
                           "  CONNINFO      string\n");
    free(text);
}
END_TEST

/* Captures the one line svc_config_log() writes, raw in LINE and parsed as the result. */
static json_t *capture_log(const struct svc_config_var *const *tables, const void *const *dsts,
                           char *line, size_t size)
{
    int fds[2];
    ssize_t n;
    json_error_t jerr;
    json_t *j;

    ck_assert_int_eq(pipe(fds), 0);
    svc_log_set_fd(fds[1]);
    svc_config_log(tables, dsts);
    svc_log_set_fd(-1);
    close(fds[1]);
    n = read(fds[0], line, size - 1);
    close(fds[0]);
    ck_assert_int_gt(n, 0);
    line[n] = '\0';
    ck_assert_msg(strchr(line, '\n') == line + n - 1, "not one line: %s", line);
    j = json_loads(line, 0, &jerr);
    ck_assert_msg(j != NULL, "not JSON (%s): %s", jerr.text, line);
    return j;
}

START_TEST(the_log_line_masks_secrets)
{
    static const char *const env[] = {
        "HTTP_TIMEOUT=90s",
        "DEBUG=on",
        "DB_URL=postgresql://app:s3cret@db:5432/app?sslmode=disable&password=s3cret",
        "API_KEY=k3y",
        "PIN=4321",
        "CONNINFO=host=db user=app password=s3cret dbname=app",
        NULL};
    struct lib_cfg lc = {0};
    struct app_cfg ac = {0};
    const void *const dsts[] = {&lc, &ac, NULL};
    char raw[8192];
    json_t *line;
    char *config;

    ck_assert_int_eq(svc_config_load(lib_vars, &lc, env, &problems), 0);
    ck_assert_int_eq(svc_config_load(app_vars, &ac, env, &problems), 0);
    line = capture_log(both, dsts, raw, sizeof(raw));
    ck_assert_msg(strstr(raw, "s3cret") == NULL, "a password leaked: %s", raw);
    ck_assert_msg(strstr(raw, "k3y") == NULL, "a secret leaked: %s", raw);
    ck_assert_msg(strstr(raw, "4321") == NULL, "a secret leaked: %s", raw);
    ck_assert_str_eq(json_string_value(json_object_get(line, "msg")), "effective configuration");
    ck_assert_str_eq(json_string_value(json_object_get(line, "level")), "info");
    config = json_dumps(json_object_get(line, "config"), JSON_COMPACT);
    ck_assert_str_eq(config, "{\"HTTP_PORT\":8080,\"HTTP_TIMEOUT\":\"90s\",\"DEBUG\":true,"
                             "\"LOG_LEVEL\":\"info\",\"SVC_NAME\":\"svc\","
                             "\"DB_URL\":\"postgresql://app:***@db:5432/app?sslmode=disable&"
                             "password=***\",\"API_KEY\":\"***\",\"POOL\":4,\"PIN\":\"***\","
                             "\"CACHE_URL\":null,"
                             "\"CONNINFO\":\"host=db user=app password=*** dbname=app\"}");
    free(config);
    json_decref(line);
    svc_config_release(lib_vars, &lc);
    svc_config_release(app_vars, &ac);
}
END_TEST

START_TEST(urls_lose_their_passwords)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"},
        {"redis://user@cache:6379/0", "redis://user@cache:6379/0"},
        {"http://u:p@ss@h/x@y", "http://u:***@h/x@y"},
        {"mongodb://a:b@h1,h2/db?replicaSet=rs", "mongodb://a:***@h1,h2/db?replicaSet=rs"},
        {"kafka://u:x@b1:9092,kafka://v:y@b2:9092", "kafka://u:***@b1:9092,kafka://v:***@b2:9092"},
        {"plain text: no url", "plain text: no url"},
        {"://:@", "://:***@"},
    };
    static const char *const env[] = {"DB_URL=x", "API_KEY=y", NULL};
    static const struct svc_config_var *const tables[] = {app_vars, NULL};
    struct app_cfg ac = {0};
    const void *const dsts[] = {&ac, NULL};
    char raw[4096];

    ck_assert_int_eq(svc_config_load(app_vars, &ac, env, &problems), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *line;

        free(ac.cache_url);
        ac.cache_url = strdup(cases[i].in);
        line = capture_log(tables, dsts, raw, sizeof(raw));
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(line, "config"), "CACHE_URL")),
            cases[i].out);
        json_decref(line);
    }
    svc_config_release(app_vars, &ac);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *load = tcase_create("load"), *show = tcase_create("show");

    tcase_add_checked_fixture(load, setup, teardown);
    tcase_add_test(load, defaults_apply_when_unset_or_empty);
    tcase_add_test(load, values_override_defaults);
    tcase_add_test(load, every_problem_is_reported_at_once);
    tcase_add_test(load, durations_take_a_unit);
    tcase_add_test(load, integers_are_decimal_and_bounded);
    tcase_add_test(load, booleans_take_the_usual_words);
    tcase_add_test(load, problems_show_values_safely);
    tcase_add_test(load, table_mistakes_are_problems);
    tcase_add_test(load, the_process_environment_is_the_default);
    suite_add_tcase(s, load);

    tcase_add_checked_fixture(show, setup, teardown);
    tcase_add_test(show, help_lists_every_variable);
    tcase_add_test(show, the_log_line_masks_secrets);
    tcase_add_test(show, urls_lose_their_passwords);
    suite_add_tcase(s, show);
    return s;
}

int main(void)
{
    return testenv_run(config_suite());
}
