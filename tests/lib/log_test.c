#include "svc/log.h"
#include "testenv.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Captures what one call logs, parsed as JSON. */
static json_t *capture(void (*fn)(void))
{
    int fds[2];
    char line[4096];
    ssize_t n;
    json_error_t err;
    json_t *j;

    ck_assert_int_eq(pipe(fds), 0);
    svc_log_set_fd(fds[1]);
    fn();
    svc_log_set_fd(-1);
    close(fds[1]);
    n = read(fds[0], line, sizeof(line) - 1);
    close(fds[0]);
    if (n <= 0)
        return NULL;
    line[n] = '\0';
    ck_assert_msg(line[n - 1] == '\n', "log line not newline-terminated: %s", line);
    j = json_loads(line, 0, &err);
    ck_assert_msg(j != NULL, "log line is not JSON (%s): %s", err.text, line);
    return j;
}

static void log_with_request(void)
{
    svc_log_set_service("test-svc");
    svc_log_set_request("req-1", "0af7651916cd43dd8448eb211c80319c");
    svc_log_warn("store '%s' said \"%s\"", "users", "bad\nthing");
    svc_log_set_request(NULL, NULL);
}

static void log_debug(void)
{
    svc_log_debug("not shown at info");
}

static void log_fields(void)
{
    svc_log_fields(SVC_LOG_INFO, "\"status\":200,\"route\":\"/v1/users/:id\"", "request done");
}

START_TEST(lines_are_json_with_context)
{
    json_t *j = capture(log_with_request);

    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(j, "svc")), "test-svc");
    ck_assert_str_eq(json_string_value(json_object_get(j, "msg")),
                     "store 'users' said \"bad\nthing\"");
    ck_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "req-1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "trace_id")),
                     "0af7651916cd43dd8448eb211c80319c");
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "ts"))), 24);
    json_decref(j);
}
END_TEST

START_TEST(levels_filter)
{
    enum svc_log_level l;

    svc_log_set_level(SVC_LOG_INFO);
    ck_assert_ptr_null(capture(log_debug));
    ck_assert(svc_log_parse_level("debug", &l) && l == SVC_LOG_DEBUG);
    ck_assert(svc_log_parse_level("error", &l) && l == SVC_LOG_ERROR);
    ck_assert(!svc_log_parse_level("loud", &l));
}
END_TEST

START_TEST(extra_fields_are_merged)
{
    json_t *j = capture(log_fields);

    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "route")), "/v1/users/:id");
    ck_assert_ptr_null(json_object_get(j, "request_id"));
    json_decref(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, lines_are_json_with_context);
    tcase_add_test(tc, levels_filter);
    tcase_add_test(tc, extra_fields_are_merged);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
