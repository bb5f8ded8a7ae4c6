#include "svc/log.h"
#include "testenv.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc/time.h"

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

/* The lines of PATH, each checked to be one JSON object; *N of them, the last's "msg" in LAST. */
static void read_lines(const char *path, int *n, char *last, size_t lastsz)
{
    FILE *f = fopen(path, "r");
    char line[4096];

    *n = 0;
    if (last != NULL)
        last[0] = '\0';
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);

        ck_assert_msg(j != NULL, "line %d of %s is not JSON (%s): %s", *n + 1, path, err.text,
                      line);
        if (last != NULL)
            snprintf(last, lastsz, "%s", json_string_value(json_object_get(j, "msg")));
        json_decref(j);
        (*n)++;
    }
    fclose(f);
}

static const char *temp_log(void)
{
    static char path[64];

    snprintf(path, sizeof(path), "/tmp/log_test_%d.log", (int)getpid());
    unlink(path);
    return path;
}

static void *log_many(void *arg)
{
    for (int i = 0; i < 100; i++)
        svc_log_info("thread %d line %d with some words to make it longer", *(int *)arg, i);
    return NULL;
}

START_TEST(buffered_lines_come_whole_and_in_time)
{
    const char *path = temp_log();
    pthread_t t[4];
    int ids[4] = {0, 1, 2, 3}, n;
    int64_t deadline;
    char last[256];

    ck_assert_int_eq(svc_log_open(path, 0), 0);
    ck_assert_int_eq(svc_log_set_buffered(true), 0);
    /* An info line is not written by itself at once. */
    svc_log_info("first");
    read_lines(path, &n, NULL, 0);
    ck_assert_int_eq(n, 0);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, log_many, &ids[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* Whole lines, all of them within the flush period. */
    deadline = svc_now_ms() + 2000;
    while ((read_lines(path, &n, NULL, 0), n) < 401 && svc_now_ms() < deadline)
        svc_sleep_ms(50);
    ck_assert_int_eq(n, 401);

    /* A warning is written at once, after what was logged before it. */
    svc_log_info("before the warning");
    svc_log_warn("the warning");
    read_lines(path, &n, last, sizeof(last));
    ck_assert_int_eq(n, 403);
    ck_assert_str_eq(last, "the warning");
    /* Closing writes what is pending. */
    svc_log_info("the last words");
    svc_log_close();
    read_lines(path, &n, last, sizeof(last));
    ck_assert_int_eq(n, 404);
    ck_assert_str_eq(last, "the last words");
    unlink(path);
}
END_TEST

START_TEST(log_file_rotates_by_size)
{
    const char *path = temp_log();
    char old[80], last[256];
    struct stat st;
    int n, nold;

    snprintf(old, sizeof(old), "%s.1", path);
    unlink(old);
    ck_assert_int_eq(svc_log_open(path, 4096), 0);
    for (int i = 0; i < 300; i++)
        svc_log_info("line %d", i);
    svc_log_close();
    /* Two files of at most 4096 bytes, whole lines, the newest in the file itself. */
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_le(st.st_size, 4096);
    ck_assert_int_eq(stat(old, &st), 0);
    ck_assert_int_le(st.st_size, 4096);
    read_lines(old, &nold, NULL, 0);
    read_lines(path, &n, last, sizeof(last));
    ck_assert_int_gt(nold, 10);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(last, "line 299");
    unlink(path);
    unlink(old);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, lines_are_json_with_context);
    tcase_add_test(tc, levels_filter);
    tcase_add_test(tc, extra_fields_are_merged);
    tcase_add_test(tc, buffered_lines_come_whole_and_in_time);
    tcase_add_test(tc, log_file_rotates_by_size);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
