/*
 * Router and query-string parsing on arbitrary input: the first line is a path, the rest a
 * query string. Neither may crash, leak or read out of bounds, and a match must name a route.
 */
#include "svc/router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int noop(struct svc_req *req, struct svc_resp *resp)
{
    (void)req;
    (void)resp;
    return 0;
}

static const struct svc_route routes[] = {
    {SVC_GET, "/v1/users", noop, 0, 0},
    {SVC_GET, "/v1/users/:id", noop, 0, 0},
    {SVC_GET, "/v1/users/me", noop, 0, 0},
    {SVC_POST, "/v1/users/:id/wallet/credits", noop, 0, 0},
    {SVC_GET, "/v1/users/:id/orders/:order", noop, 0, 0},
    {SVC_GET, "/", noop, 0, 0},
    SVC_ROUTES_END,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct svc_arena *a = svc_arena_new();
    char *s = malloc(size + 1);
    char *nl;
    struct svc_route_match m;
    struct svc_query q;

    memcpy(s, data, size);
    s[size] = '\0';
    nl = strchr(s, '\n');
    if (nl != NULL)
        *nl = '\0';
    if (svc_router_match(routes, SVC_GET, s, a, &m) == 0 && m.route == NULL)
        abort();
    svc_router_match(routes, SVC_POST, s, a, &m);
    if (nl != NULL && svc_query_parse(nl + 1, &q, a) == 0) {
        for (int i = 0; i < q.n; i++)
            if (q.items[i].name == NULL || q.items[i].value == NULL)
                abort();
    }
    free(s);
    svc_arena_free(a);
    return 0;
}
