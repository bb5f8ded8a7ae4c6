#include "echo.h"

#include "svc/error.h"

#include <string.h>
#include <time.h>

/* POST /v1/echo: the JSON body back, with the request's ids. */
static int echo_post(struct svc_req *req, struct svc_resp *resp)
{
    size_t len;
    const char *body = svc_req_body(req, &len);
    json_error_t err;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);

    if (doc == NULL)
        return svc_resp_error(resp, SVC_EJSON, "body is not valid JSON: %s (line %d, column %d)",
                              err.text, err.line, err.column);
    return svc_resp_json(resp, 200,
                         json_pack("{s:o, s:s, s:s}", "echo", doc, "request_id", svc_req_id(req),
                                   "trace_id", svc_req_trace_id(req)));
}

/* GET /v1/items/:id?limit=: a path parameter and a typed query parameter. */
static int item_get(struct svc_req *req, struct svc_resp *resp)
{
    const char *id = svc_req_param(req, "id");
    long long limit;
    int rc;

    if ((rc = svc_query_int(req, resp, "limit", 1, 100, 20, &limit)) != 0)
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
    {SVC_GET, "/v1/items/:id", item_get, 0, 0},
    {SVC_GET, "/v1/slow", slow_get, 0, 0},
    SVC_ROUTES_END,
};
