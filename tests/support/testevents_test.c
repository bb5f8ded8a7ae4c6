/*
 * tests/support/testevents.c and tools/validate-events: a valid event passes, and each kind of
 * invalid one is named in the output.
 */
#include "testenv.h"
#include "testevents.h"

#include <check.h>
#include <string.h>

#define USER "0f8e1d2c-3b4a-4968-8776-554433221100"
#define DELETED                                                                                    \
    "{\"specversion\":\"1.0\",\"id\":\"4d5e6f70-8192-4dae-9f10-3b4c5d6e7f80\","                    \
    "\"source\":\"/user-svc\",\"type\":\"user.deleted\",\"subject\":\"" USER "\","                 \
    "\"time\":\"2026-01-01T00:00:00.000Z\",\"datacontenttype\":\"application/json\","              \
    "\"data\":{\"id\":\"" USER "\",\"status\":\"deleted\",\"version\":2,"                          \
    "\"deleted_at\":\"2026-01-01T00:00:00.000Z\"}}"

START_TEST(a_valid_event_passes)
{
    const char *events[] = {DELETED};
    char out[2048];
    int status = testevents_validate(events, 1, out, sizeof(out));

    ck_assert_msg(status == 0, "exit %d: %s", status, out);
    ck_assert_msg(strstr(out, "1 events checked, 0 problems") != NULL, "%s", out);
}
END_TEST

START_TEST(invalid_events_are_named)
{
    const char *events[] = {
        DELETED,
        "{\"specversion\":\"1.0\",\"type\":\"user.renamed\"}",
        "{\"specversion\":\"1.0\",\"type\":\"user.deleted\",\"id\":\"x\"}",
        "not json",
    };
    char out[4096];
    int status = testevents_validate(events, 4, out, sizeof(out));

    ck_assert_msg(status == 1, "exit %d: %s", status, out);
    ck_assert_msg(strstr(out, "no schema for event type user.renamed") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "user.deleted x: 'data' is a required property") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "not JSON") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "2 events checked") != NULL, "%s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("testevents");
    TCase *tc = tcase_create("validate");

    tcase_add_test(tc, a_valid_event_passes);
    tcase_add_test(tc, invalid_events_are_named);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
