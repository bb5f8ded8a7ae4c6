#include "echo.h"

#include "svc/error.h"
#include "svc/json.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* POST /v1/echo: the JSON object back, with the request's ids. */
static int echo_post(struct svc_req *req, struct svc_resp *resp)
{
    json_t *doc;
    int rc;

    if ((rc = svc_req_json(req, resp, &doc)) != 0)
        return rc;
    return svc_resp_json(resp, 200,
                         json_pack("{s:O, s:s, s:s}", "echo", doc, "request_id", svc_req_id(req),
                                   "trace_id", svc_req_trace_id(req)));
}

struct item_create {
    const char *name;
    int64_t qty;
};

static const struct svc_json_field item_fields[] = {
    {"name", SVC_JSON_STRING, .required = true, .min = 1, .max = 100,
     .offset = offsetof(struct item_create, name)},
    {"qty", SVC_JSON_INT, .required = true, .min = 1, .max = 1000,
     .offset = offsetof(struct item_create, qty)},
    {0},
};

/* POST /v1/items: a body read through a field table (strict types, unknown fields refused). */
static int item_post(struct svc_req *req, struct svc_resp *resp)
{
    struct item_create in = {0};
    int rc;

    if ((rc = svc_req_read_json(req, resp, item_fields, &in)) != 0)
        return rc;
    return svc_resp_json(resp, 201,
                         json_pack("{s:s, s:I}", "name", in.name, "qty", (json_int_t)in.qty));
}

/* GET /v1/items/:id?limit=: a path parameter and a typed query parameter. */
static int item_get(struct svc_req *req, struct svc_resp *resp)
{
    static const char *const params[] = {"limit", NULL};
    const char *id = svc_req_param(req, "id");
    long long limit;
    int rc;

    if ((rc = svc_query_only(req, resp, params)) != 0 ||
        (rc = svc_query_int(req, resp, "limit", 1, 100, 20, &limit)) != 0)
        return rc;
    if (strcmp(id, "missing") == 0)
        return svc_resp_error(resp, SVC_ENOTFOUND, "item '%s' not found", id);
    return svc_resp_json(resp, 200, json_pack("{s:s, s:I}", "id", id, "limit", (json_int_t)limit));
}

/* GET /v1/slow?ms=: answers after a delay (graceful shutdown with a request in flight). */
static int slow_get(struct svc_req *req, struct svc_resp *resp)
{
    long long ms;
    struct timespec ts;
    int rc;

    if ((rc = svc_query_int(req, resp, "ms", 0, 10000, 100, &ms)) != 0)
        return rc;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
    return svc_resp_json(resp, 200, json_pack("{s:I}", "slept_ms", (json_int_t)ms));
}

const struct svc_route echo_routes[] = {
    {SVC_POST, "/v1/echo", echo_post, SVC_ROUTE_JSON, 0},
    {SVC_POST, "/v1/items", item_post, SVC_ROUTE_JSON, 0},
    {SVC_GET, "/v1/items/:id", item_get, 0, 0},
    {SVC_GET, "/v1/slow", slow_get, 0, 0},
    SVC_ROUTES_END,
};
