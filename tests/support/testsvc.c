#include "testsvc.h"

#include "svc/error.h"
#include "svc/metrics.h"
#include "svc/router.h"
#include "svc/uuid.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* ---- the fake store's bookkeeping ------------------------------------------------------ */

void testfake_init(struct testfake *f)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
}

void testfake_release(struct testfake *f)
{
    pthread_mutex_destroy(&f->mu);
}

int testfake_enter(struct testfake *f, int call)
{
    ck_assert_int_lt(call, TESTFAKE_MAX_CALLS);
    pthread_mutex_lock(&f->mu);
    f->calls[call]++;
    if (f->fail != 0) {
        int rc = f->fail;

        pthread_mutex_unlock(&f->mu);
        return rc;
    }
    return 0;
}

int testfake_leave(struct testfake *f, int rc)
{
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int testfake_calls(struct testfake *f, int call)
{
    int n;

    pthread_mutex_lock(&f->mu);
    n = f->calls[call];
    pthread_mutex_unlock(&f->mu);
    return n;
}

int testfake_total(struct testfake *f)
{
    int n = 0;

    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < TESTFAKE_MAX_CALLS; i++)
        n += f->calls[i];
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* ---- the service in-process ------------------------------------------------------------ */

static struct svc_server *srv;

void testsvc_start(const struct svc_def *def)
{
    struct svc_http_opts o;
    char base[64];

    svc_http_opts_default(&o);
    o.access_log = false;
    o.shutdown_grace_ms = 3000;
    srv = svc_server_start(def, &o);
    ck_assert_ptr_nonnull(srv);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", svc_server_port(srv));
    testapi_base(base);
}

void testsvc_stop(void)
{
    if (srv != NULL)
        ck_assert_int_eq(svc_server_stop(srv), 0);
    srv = NULL;
    svc_metrics_reset();
}

/* ---- the checks ------------------------------------------------------------------------ */

void testsvc_assert_refused(struct testfake *f, const char *method, const char *path,
                            const char *const *headers, const char *body, const char *field,
                            const char *want)
{
    int before = testfake_total(f);
    struct testapi_reply *r = testapi_call_h(method, path, headers, body);

    testapi_assert_problem(r, 400,
                           field[0] == '\0' && strstr(want, "malformed") != NULL
                               ? "malformed-json"
                               : "invalid-request",
                           want, field[0] != '\0' ? field : NULL);
    ck_assert_msg(testfake_total(f) == before, "%s %s %s reached the store", method, path,
                  body != NULL ? body : "");
}

void testsvc_assert_unavailable(struct testfake *f, const struct testsvc_request *reqs, size_t n,
                                const char *const *headers, const char *detail)
{
    ck_assert_uint_gt(n, 0);
    f->fail = SVC_EUNAVAILABLE;
    for (size_t i = 0; i < n; i++) {
        const struct testsvc_request *q = &reqs[i];
        int before = testfake_calls(f, q->call);
        struct testapi_reply *r = testapi_call_h(q->method, q->path, headers, q->body);

        testapi_assert_problem(r, 503, "unavailable", detail, NULL);
        ck_assert_msg(strcmp(testapi_header(r, "Retry-After"), "1") == 0, "%s %s: Retry-After '%s'",
                      q->method, q->path, testapi_header(r, "Retry-After"));
        ck_assert_msg(testfake_calls(f, q->call) == before + 1, "%s %s did not reach the store",
                      q->method, q->path);
    }
    /* Anything unexpected from the store is a 500 without its details. */
    f->fail = SVC_EINTERNAL;
    testapi_assert_problem(testapi_call_h(reqs[0].method, reqs[0].path, headers, reqs[0].body), 500,
                           "internal", "could not be completed", NULL);
}

/* The document's spelling of ROUTE's path, as a key: "  /v1/users/{id}:\n" without the indent.
 * A parameter is a segment starting with ':' (as the router reads it); a ':' inside a segment
 * is literal ("/v1/products:import"). */
static void openapi_path(const char *route, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = route; *p != '\0' && n + 4 < cap; p++) {
        if (*p == ':' && p > route && p[-1] == '/') {
            size_t k = strcspn(p + 1, "/");

            n += (size_t)snprintf(out + n, cap - n, "{%.*s}", (int)k, p + 1);
            p += k;
        } else {
            out[n++] = *p;
        }
    }
    snprintf(out + n, cap - n, ":\n");
}

void testsvc_assert_openapi(const struct svc_route *routes, const char *const *problems)
{
    struct testapi_reply *r = testapi_call("GET", "/openapi.yaml", NULL);

    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/yaml");
    ck_assert(strncmp(r->body, "openapi: 3.1", 12) == 0);
    ck_assert_msg(r->len < sizeof(r->body) - 1, "the document is bigger than the test's buffer");
    for (const struct svc_route *rt = routes; rt->path != NULL; rt++) {
        const char *name = svc_method_name(rt->method), *at, *next, *m;
        char want[256], lower[8], method[16];
        size_t k;

        openapi_path(rt->path, want, sizeof(want));
        at = strstr(r->body, want);
        ck_assert_msg(at != NULL && at[-1] == ' ', "openapi.yaml has no path '%s'", rt->path);
        /* ... and the method under it, before the next path. */
        for (k = 0; name[k] != '\0' && k + 1 < sizeof(lower); k++)
            lower[k] = (char)tolower((unsigned char)name[k]);
        lower[k] = '\0';
        snprintf(method, sizeof(method), "    %s:\n", lower);
        next = strstr(at + strlen(want), "\n  /");
        m = strstr(at, method);
        ck_assert_msg(m != NULL && (next == NULL || m < next), "openapi.yaml: no '%s' under '%s'",
                      method, rt->path);
    }
    for (int i = 0; problems != NULL && problems[i] != NULL; i++) {
        char want[128];

        snprintf(want, sizeof(want), "- urn:polyglot:problem:%s\n", problems[i]);
        ck_assert_msg(strstr(r->body, want) != NULL, "openapi.yaml does not list '%s'",
                      problems[i]);
    }
}

/* ---- small helpers --------------------------------------------------------------------- */

const char *testsvc_cat(const char *a, const char *b, const char *c)
{
    static char out[1024];

    snprintf(out, sizeof(out), "%s%s%s", a, b, c);
    return out;
}

void testsvc_keep(char *out, size_t cap, const struct testapi_reply *r)
{
    ck_assert_uint_lt(r->len, cap);
    memcpy(out, r->body, r->len + 1);
}

bool testsvc_is_uuid_lower(const char *s)
{
    if (!svc_uuid_valid(s))
        return false;
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            return false;
    return true;
}
