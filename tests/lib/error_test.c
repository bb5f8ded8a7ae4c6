#include "svc/error.h"
#include "testenv.h"
#include "testproblems.h"

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

#define SHOP_ERRNO_MAP(X)                                                                          \
    X(EPAID, -9001, 402, "payment-required", "Payment required")                                   \
    X(ESOLDOUT, -9002, 409, "sold-out", "Sold out")

static const struct svc_err_def shop_errors[] = {SHOP_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};

/* A service's errors are unknown until registered, then known as lib's are. */
START_TEST(registered_errors_are_rendered_like_libs)
{
    ck_assert_int_eq(svc_err_status(-9001), 500);
    ck_assert_str_eq(svc_err_type(-9001), "internal");
    ck_assert_int_eq(svc_err_register(shop_errors), 0);
    ck_assert_int_eq(svc_err_status(-9001), 402);
    ck_assert_str_eq(svc_err_type(-9001), "payment-required");
    ck_assert_str_eq(svc_err_title(-9001), "Payment required");
    ck_assert_str_eq(svc_err_name(-9001), "EPAID");
    ck_assert_int_eq(svc_err_status(-9002), 409);
    ck_assert_str_eq(svc_err_type(-9002), "sold-out");
    /* Servers started one after another register the same table again. */
    ck_assert_int_eq(svc_err_register(shop_errors), 0);
    ck_assert_int_eq(svc_err_status(-9001), 402);
    ck_assert_int_eq(svc_err_status(-9999), 500);
    ck_assert_int_eq(svc_err_status(SVC_ENOTFOUND), 404);
}
END_TEST

/* A table that would make a code mean two things is refused whole. */
START_TEST(conflicting_tables_are_refused)
{
    static const struct svc_err_def libs[] = {
        {SVC_ENOTFOUND, 410, "ENOTFOUND", "gone-away", "Gone away"}, SVC_ERRORS_END};
    static const struct svc_err_def twice[] = {
        {-9101, 400, "EA", "a", "A"}, {-9101, 400, "EB", "b", "B"}, SVC_ERRORS_END};
    static const struct svc_err_def positive[] = {{5, 400, "EA", "a", "A"}, SVC_ERRORS_END};
    static const struct svc_err_def other[] = {
        {-9201, 400, "EFINE", "fine", "Fine"},
        {-9001, 400, "EPAID", "payment-required", "Payment required"},
        SVC_ERRORS_END};
    /* The same rows in another table are no conflict. */
    static const struct svc_err_def same[] = {SHOP_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};

    ck_assert_int_eq(svc_err_register(shop_errors), 0);
    ck_assert_int_eq(svc_err_register(libs), SVC_EINVAL);
    ck_assert_int_eq(svc_err_status(SVC_ENOTFOUND), 404);
    ck_assert_int_eq(svc_err_register(twice), SVC_EINVAL);
    ck_assert_str_eq(svc_err_name(-9101), "EUNKNOWN");
    ck_assert_int_eq(svc_err_register(positive), SVC_EINVAL);
    ck_assert_int_eq(svc_err_register(other), SVC_EINVAL);
    ck_assert_int_eq(svc_err_status(-9201), 500);
    ck_assert_int_eq(svc_err_status(-9001), 402);
    ck_assert_int_eq(svc_err_register(same), 0);
}
END_TEST

START_TEST(the_shared_idempotency_error)
{
    ck_assert_int_eq(svc_err_status(SVC_EIDEMPOTENCY), 409);
    ck_assert_str_eq(svc_err_type(SVC_EIDEMPOTENCY), "idempotency-key-reused");
    ck_assert_str_eq(svc_err_title(SVC_EIDEMPOTENCY), "Idempotency key reused");
}
END_TEST

/* docs/architecture.md lists every problem type of lib's table with its status. */
START_TEST(the_docs_list_libs_problem_types)
{
    testproblems_check_docs("lib", svc_errors);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, codes_map_to_statuses_and_types);
    tcase_add_test(tc, unknown_codes_are_internal_errors);
    tcase_add_test(tc, the_table_is_consistent);
    tcase_add_test(tc, registered_errors_are_rendered_like_libs);
    tcase_add_test(tc, conflicting_tables_are_refused);
    tcase_add_test(tc, the_shared_idempotency_error);
    tcase_add_test(tc, the_docs_list_libs_problem_types);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
