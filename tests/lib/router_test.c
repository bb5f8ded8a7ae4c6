#include "svc/error.h"
#include "svc/router.h"
#include "testenv.h"

#include <string.h>

static int noop(struct svc_req *req, struct svc_resp *resp)
{
    (void)req;
    (void)resp;
    return 0;
}

static const struct svc_route routes[] = {
    {SVC_GET, "/v1/users", noop, 0, 0},
    {SVC_POST, "/v1/users", noop, SVC_ROUTE_JSON, 0},
    {SVC_GET, "/v1/users/:id", noop, 0, 0},
    {SVC_PATCH, "/v1/users/:id", noop, SVC_ROUTE_JSON, 0},
    {SVC_GET, "/v1/users/me", noop, 0, 0},
    {SVC_GET, "/v1/users/:id/orders/:order", noop, 0, 0},
    SVC_ROUTES_END,
};

static struct svc_arena *a;

static void setup(void)
{
    a = svc_arena_new();
}

static void teardown(void)
{
    svc_arena_free(a);
}

START_TEST(literal_and_parameter_routes)
{
    struct svc_route_match m;

    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v1/users", a, &m), 0);
    ck_assert_ptr_eq(m.route, &routes[0]);
    ck_assert_int_eq(svc_router_match(routes, SVC_POST, "/v1/users", a, &m), 0);
    ck_assert_ptr_eq(m.route, &routes[1]);
    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v1/users/42", a, &m), 0);
    ck_assert_ptr_eq(m.route, &routes[2]);
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_str_eq(m.params[0].value, "42");
}
END_TEST

START_TEST(literal_segments_win_over_parameters)
{
    struct svc_route_match m;

    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v1/users/me", a, &m), 0);
    ck_assert_ptr_eq(m.route, &routes[4]);
    ck_assert_int_eq(m.nparams, 0);
}
END_TEST

START_TEST(two_parameters_are_decoded_after_splitting)
{
    struct svc_route_match m;

    ck_assert_int_eq(
        svc_router_match(routes, SVC_GET, "/v1/users/a%2Fb/orders/%C3%A9t%C3%A9", a, &m), 0);
    ck_assert_ptr_eq(m.route, &routes[5]);
    ck_assert_int_eq(m.nparams, 2);
    ck_assert_str_eq(m.params[0].value, "a/b");
    ck_assert_str_eq(m.params[1].name, "order");
    ck_assert_str_eq(m.params[1].value, "\xc3\xa9t\xc3\xa9");
}
END_TEST

START_TEST(unknown_paths_are_404_and_wrong_methods_405)
{
    struct svc_route_match m;
    char allow[64];

    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v2/users", a, &m), SVC_ENOTFOUND);
    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v1/users/", a, &m), SVC_ENOTFOUND);
    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "v1/users", a, &m), SVC_ENOTFOUND);
    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v1/users//orders/1", a, &m),
                     SVC_ENOTFOUND);
    ck_assert_int_eq(svc_router_match(routes, SVC_DELETE, "/v1/users/42", a, &m), SVC_EMETHOD);
    svc_method_list(m.allowed, allow, sizeof(allow));
    ck_assert_str_eq(allow, "GET, HEAD, PATCH");
    ck_assert_int_eq(svc_router_match(routes, SVC_HEAD, "/v1/users", a, &m), 0);
}
END_TEST

START_TEST(bad_encodings_are_invalid)
{
    struct svc_route_match m;
    const char *out;

    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v1/users/%zz", a, &m), SVC_EINVAL);
    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v1/users/%4", a, &m), SVC_EINVAL);
    ck_assert_int_eq(svc_router_match(routes, SVC_GET, "/v1/users/a%00b", a, &m), SVC_EINVAL);
    ck_assert_int_eq(svc_pct_decode("a+b%20c", 7, true, a, &out), 0);
    ck_assert_str_eq(out, "a b c");
    ck_assert_int_eq(svc_pct_decode("a+b", 3, false, a, &out), 0);
    ck_assert_str_eq(out, "a+b");
}
END_TEST

START_TEST(query_strings)
{
    struct svc_query q;

    ck_assert_int_eq(svc_query_parse("limit=10&email=a%40b.org&flag&&x=1+2&limit=99", &q, a), 0);
    ck_assert_str_eq(svc_query_get(&q, "limit"), "10");
    ck_assert_str_eq(svc_query_get(&q, "email"), "a@b.org");
    ck_assert_str_eq(svc_query_get(&q, "flag"), "");
    ck_assert_str_eq(svc_query_get(&q, "x"), "1 2");
    ck_assert_ptr_null(svc_query_get(&q, "cursor"));
    ck_assert_int_eq(svc_query_parse("a=%G1", &q, a), SVC_EINVAL);
}
END_TEST

START_TEST(methods)
{
    ck_assert_uint_eq(svc_method_parse("PATCH"), SVC_PATCH);
    ck_assert_uint_eq(svc_method_parse("patch"), 0);
    ck_assert_uint_eq(svc_method_parse("BREW"), 0);
    ck_assert_str_eq(svc_method_name(SVC_DELETE), "DELETE");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, literal_and_parameter_routes);
    tcase_add_test(tc, literal_segments_win_over_parameters);
    tcase_add_test(tc, two_parameters_are_decoded_after_splitting);
    tcase_add_test(tc, unknown_paths_are_404_and_wrong_methods_405);
    tcase_add_test(tc, bad_encodings_are_invalid);
    tcase_add_test(tc, query_strings);
    tcase_add_test(tc, methods);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
