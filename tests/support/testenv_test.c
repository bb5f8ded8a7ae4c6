/* Unit tests of the env-file reader the integration tests rely on. */
#include "testenv.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(parse_line_splits_key_and_value)
{
    char line[] = "PG_DSN=postgresql://u:p=q@127.0.0.1:17432/users\n";
    char *k, *v;

    ck_assert(testenv_parse_line(line, &k, &v));
    ck_assert_str_eq(k, "PG_DSN");
    ck_assert_str_eq(v, "postgresql://u:p=q@127.0.0.1:17432/users");
}
END_TEST

START_TEST(parse_line_skips_comments_blanks_and_junk)
{
    char comment[] = "# connection settings\n", blank[] = "\n", junk[] = "no equals sign\n",
         nokey[] = "=value\n";
    char *k, *v;

    ck_assert(!testenv_parse_line(comment, &k, &v));
    ck_assert(!testenv_parse_line(blank, &k, &v));
    ck_assert(!testenv_parse_line(junk, &k, &v));
    ck_assert(!testenv_parse_line(nokey, &k, &v));
}
END_TEST

START_TEST(port_of_url_reads_the_port)
{
    ck_assert_int_eq(testenv_port_of_url("postgresql://u:secret@127.0.0.1:17432/users"), 17432);
    ck_assert_int_eq(testenv_port_of_url("redis://cart_svc:pw@127.0.0.1:17379/0"), 17379);
    ck_assert_int_eq(testenv_port_of_url("mongodb://127.0.0.1:17017/m?retryWrites=false"), 17017);
    ck_assert_int_eq(testenv_port_of_url("http://127.0.0.1:17123"), 17123);
}
END_TEST

START_TEST(port_of_url_rejects_urls_without_a_valid_port)
{
    ck_assert_int_eq(testenv_port_of_url("http://127.0.0.1/x"), -1);
    ck_assert_int_eq(testenv_port_of_url("http://127.0.0.1:99999"), -1);
    ck_assert_int_eq(testenv_port_of_url("http://127.0.0.1:12ab"), -1);
    ck_assert_int_eq(testenv_port_of_url("127.0.0.1:80"), -1);
}
END_TEST

START_TEST(unique_names_differ)
{
    const char *a = testenv_unique("t"), *b = testenv_unique("t");

    ck_assert_str_ne(a, b);
    ck_assert(strncmp(a, "t_", 2) == 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("testenv");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, parse_line_splits_key_and_value);
    tcase_add_test(tc, parse_line_skips_comments_blanks_and_junk);
    tcase_add_test(tc, port_of_url_reads_the_port);
    tcase_add_test(tc, port_of_url_rejects_urls_without_a_valid_port);
    tcase_add_test(tc, unique_names_differ);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
