#include "svc/error.h"
#include "testenv.h"

#include <string.h>

START_TEST(codes_map_to_statuses_and_types)
{
    ck_assert_int_eq(svc_err_status(SVC_OK), 200);
    ck_assert_int_eq(svc_err_status(SVC_EINVAL), 400);
    ck_assert_int_eq(svc_err_status(SVC_ENOTFOUND), 404);
    ck_assert_int_eq(svc_err_status(SVC_EMETHOD), 405);
    ck_assert_int_eq(svc_err_status(SVC_ECONFLICT), 409);
    ck_assert_int_eq(svc_err_status(SVC_EPRECONDITION), 412);
    ck_assert_int_eq(svc_err_status(SVC_ETOOBIG), 413);
    ck_assert_int_eq(svc_err_status(SVC_EMEDIATYPE), 415);
    ck_assert_int_eq(svc_err_status(SVC_EPRECONDREQUIRED), 428);
    ck_assert_int_eq(svc_err_status(SVC_EUNAVAILABLE), 503);
    ck_assert_int_eq(svc_err_status(SVC_ETIMEDOUT), 504);
    ck_assert_str_eq(svc_err_type(SVC_ENOTFOUND), "not-found");
    ck_assert_str_eq(svc_err_name(SVC_ENOTFOUND), "ENOTFOUND");
    ck_assert_str_eq(svc_err_title(SVC_ETOOBIG), "Payload too large");
}
END_TEST

START_TEST(unknown_codes_are_internal_errors)
{
    ck_assert_int_eq(svc_err_status(-9999), 500);
    ck_assert_str_eq(svc_err_name(-9999), "EUNKNOWN");
    ck_assert_str_eq(svc_err_type(12345), "internal");
}
END_TEST

/* Every code is negative (but OK), distinct, and has a 4xx/5xx status. */
START_TEST(the_table_is_consistent)
{
    static const int codes[] = {
#define X(name, value, status, type, title) SVC_##name,
        SVC_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);

    for (size_t i = 0; i < n; i++) {
        if (codes[i] != SVC_OK) {
            ck_assert_int_lt(codes[i], 0);
            ck_assert_int_ge(svc_err_status(codes[i]), 400);
        }
        for (size_t j = i + 1; j < n; j++)
            ck_assert_int_ne(codes[i], codes[j]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, codes_map_to_statuses_and_types);
    tcase_add_test(tc, unknown_codes_are_internal_errors);
    tcase_add_test(tc, the_table_is_consistent);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
