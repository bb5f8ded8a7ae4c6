#include "svc/buf.h"
#include "svc/error.h"
#include "testenv.h"

#include <stdlib.h>
#include <string.h>

static const char *json_of(struct svc_buf *b, const char *s, size_t n)
{
    svc_buf_reset(b);
    ck_assert_int_eq(svc_buf_add_json_str(b, s, n), 0);
    return svc_buf_str(b);
}

START_TEST(appends_and_formats)
{
    struct svc_buf b = SVC_BUF_INIT;

    ck_assert_str_eq(svc_buf_str(&b), "");
    svc_buf_adds(&b, "a");
    svc_buf_addc(&b, 'b');
    svc_buf_addf(&b, "%d-%s", 42, "x");
    ck_assert_str_eq(svc_buf_str(&b), "ab42-x");
    ck_assert_uint_eq(b.len, 6);
    svc_buf_release(&b);
}
END_TEST

START_TEST(cap_refuses_and_keeps_contents)
{
    struct svc_buf b;

    svc_buf_init(&b, 5);
    ck_assert_int_eq(svc_buf_adds(&b, "abcd"), 0);
    ck_assert_int_eq(svc_buf_adds(&b, "ef"), SVC_ETOOBIG);
    ck_assert_int_eq(svc_buf_addf(&b, "%s", "xy"), SVC_ETOOBIG);
    ck_assert_str_eq(svc_buf_str(&b), "abcd");
    ck_assert_int_eq(svc_buf_addc(&b, 'e'), 0);
    ck_assert_str_eq(svc_buf_str(&b), "abcde");
    svc_buf_release(&b);
}
END_TEST

START_TEST(json_strings_are_escaped)
{
    struct svc_buf b = SVC_BUF_INIT;

    ck_assert_str_eq(json_of(&b, "plain", 5), "\"plain\"");
    ck_assert_str_eq(json_of(&b, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(json_of(&b, "l1\nl2\t\x01", 7), "\"l1\\nl2\\t\\u0001\"");
    ck_assert_str_eq(json_of(&b, "caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
    /* Invalid UTF-8 (a lone continuation byte, an overlong '/', a surrogate) becomes U+FFFD. */
    ck_assert_str_eq(json_of(&b, "\x80", 1), "\"\xef\xbf\xbd\"");
    ck_assert_str_eq(json_of(&b, "\xc0\xaf", 2), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    ck_assert_str_eq(json_of(&b, "\xed\xa0\x80", 3), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    /* An embedded NUL is data, not the end. */
    ck_assert_str_eq(json_of(&b, "a\0b", 3), "\"a\\u0000b\"");
    svc_buf_release(&b);
}
END_TEST

START_TEST(json_string_is_all_or_nothing_under_a_cap)
{
    struct svc_buf b;

    svc_buf_init(&b, 8);
    svc_buf_adds(&b, "{");
    ck_assert_int_eq(svc_buf_add_json_str(&b, "too long for it", 15), SVC_ETOOBIG);
    ck_assert_str_eq(svc_buf_str(&b), "{");
    svc_buf_release(&b);
}
END_TEST

START_TEST(detach_hands_over_memory)
{
    struct svc_buf b = SVC_BUF_INIT;
    size_t n;
    char *p;

    p = svc_buf_detach(&b, &n);
    ck_assert_str_eq(p, "");
    ck_assert_uint_eq(n, 0);
    free(p);
    svc_buf_adds(&b, "xyz");
    p = svc_buf_detach(&b, &n);
    ck_assert_str_eq(p, "xyz");
    ck_assert_uint_eq(n, 3);
    ck_assert_ptr_null(b.data);
    free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, appends_and_formats);
    tcase_add_test(tc, cap_refuses_and_keeps_contents);
    tcase_add_test(tc, json_strings_are_escaped);
    tcase_add_test(tc, json_string_is_all_or_nothing_under_a_cap);
    tcase_add_test(tc, detach_hands_over_memory);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
