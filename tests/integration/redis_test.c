/*
 * Redis, as cart-svc reaches it: hiredis, the cart_svc ACL user.
 */
#include "testenv.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses redis://user:password@host:port/db into its parts (the env file's only form). */
static void parse_redis_url(const char *url, char *user, char *pass, size_t cap, int *port)
{
    const char *p = url + strlen("redis://");
    const char *colon = strchr(p, ':'), *at = strchr(p, '@');

    ck_assert_msg(strncmp(url, "redis://", 8) == 0 && colon != NULL && at != NULL && colon < at,
                  "REDIS_URL '%s' is not redis://user:password@host:port/db", url);
    snprintf(user, cap, "%.*s", (int)(colon - p), p);
    snprintf(pass, cap, "%.*s", (int)(at - colon - 1), colon + 1);
    *port = testenv_port_of_url(url);
    ck_assert_int_gt(*port, 0);
}

static redisContext *connect_as_cart_svc(void)
{
    char user[128], pass[128];
    int port;
    redisContext *c;
    redisReply *r;

    parse_redis_url(testenv_get("cart-svc", "REDIS_URL"), user, pass, sizeof(user), &port);
    testenv_require_port("redis", port);
    c = redisConnect("127.0.0.1", port);
    ck_assert_msg(c != NULL && c->err == 0, "redis: cannot connect: %s",
                  c != NULL ? c->errstr : "out of memory");
    r = redisCommand(c, "AUTH %s %s", user, pass);
    ck_assert_msg(r != NULL && r->type == REDIS_REPLY_STATUS, "redis: AUTH as '%s' failed: %s",
                  user, r != NULL && r->str != NULL ? r->str : c->errstr);
    freeReplyObject(r);
    return c;
}

START_TEST(cart_svc_writes_and_reads_back)
{
    redisContext *c = connect_as_cart_svc();
    const char *key = testenv_unique("test:it:cart");
    redisReply *r;

    r = redisCommand(c, "HSET %s sku-1 3 sku-2 1", key);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->integer, 2);
    freeReplyObject(r);

    r = redisCommand(c, "HGET %s sku-1", key);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(r->str, "3");
    freeReplyObject(r);

    r = redisCommand(c, "ACL WHOAMI");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->str, "cart_svc");
    freeReplyObject(r);

    r = redisCommand(c, "DEL %s", key);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

/* The ACL takes the @dangerous commands away: a cart service has no business with them. */
START_TEST(cart_svc_cannot_run_dangerous_commands)
{
    redisContext *c = connect_as_cart_svc();
    redisReply *r = redisCommand(c, "FLUSHALL");

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    ck_assert_msg(strncmp(r->str, "NOPERM", 6) == 0, "FLUSHALL answered '%s'", r->str);
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("cart_svc");

    tcase_add_test(tc, cart_svc_writes_and_reads_back);
    tcase_add_test(tc, cart_svc_cannot_run_dangerous_commands);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
