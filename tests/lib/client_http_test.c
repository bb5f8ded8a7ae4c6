/*
 * The HTTP client against a scripted libmicrohttpd server on 127.0.0.1, port 0. Each test sets
 * the script (fail the first N requests, sleep, answer huge or malformed bodies) and checks
 * what the caller sees and what reached the server.
 */
#include "svc/client.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/time.h"
#include "testenv.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the server does; set by each test before its first call. */
struct script {
    int fail_first;          /* answer fail_status to the first N requests */
    int fail_status;         /* 503 when 0 */
    const char *retry_after; /* Retry-After on those failures, when not NULL */
    int sleep_ms;            /* every request waits this long before answering */
    int status;              /* of the other answers; 200 when 0 */
    const char *body;        /* of the other answers; {"ok":true} when NULL */
    size_t huge;             /* when not 0, answer this many bytes instead of body */
    bool chunked;            /* send the huge answer without a Content-Length */
};

/* What the server saw of the last request. */
struct seen {
    char method[16];
    char path[256];
    char request_id[128];
    char traceparent[128];
    char authorization[128];
    char content_type[128];
    char content_length[32];
    char accept[128];
    char custom[128];
    char body[4096];
};

static struct {
    struct MHD_Daemon *d;
    int port;
    struct script script;
    atomic_int requests, opened, closed;
    atomic_bool stopping;
    pthread_mutex_t mu;
    struct seen seen;
} srv;

struct req_state {
    char body[4096];
    size_t len;
};

static void copy_header(struct MHD_Connection *c, const char *name, char *dst, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);

    snprintf(dst, cap, "%s", v != NULL ? v : "");
}

static void record(struct MHD_Connection *c, const char *url, const char *method,
                   const struct req_state *st)
{
    pthread_mutex_lock(&srv.mu);
    snprintf(srv.seen.method, sizeof(srv.seen.method), "%s", method);
    snprintf(srv.seen.path, sizeof(srv.seen.path), "%s", url);
    copy_header(c, "X-Request-Id", srv.seen.request_id, sizeof(srv.seen.request_id));
    copy_header(c, "traceparent", srv.seen.traceparent, sizeof(srv.seen.traceparent));
    copy_header(c, "Authorization", srv.seen.authorization, sizeof(srv.seen.authorization));
    copy_header(c, "Content-Type", srv.seen.content_type, sizeof(srv.seen.content_type));
    copy_header(c, "Content-Length", srv.seen.content_length, sizeof(srv.seen.content_length));
    copy_header(c, "Accept", srv.seen.accept, sizeof(srv.seen.accept));
    copy_header(c, "X-Custom", srv.seen.custom, sizeof(srv.seen.custom));
    snprintf(srv.seen.body, sizeof(srv.seen.body), "%.*s", (int)st->len, st->body);
    pthread_mutex_unlock(&srv.mu);
}

/* Sleeps in small steps so that stopping the server never waits for a long sleep. */
static void nap(int ms)
{
    for (int i = 0; i < ms / 10 && !atomic_load(&srv.stopping); i++)
        svc_sleep_ms(10);
}

struct stream {
    size_t left;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    size_t n = s->left < max ? s->left : max;

    (void)pos;
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    memset(buf, 'x', n);
    s->left -= n;
    return (ssize_t)n;
}

static struct MHD_Response *huge_response(void)
{
    if (srv.script.chunked) {
        struct stream *s = malloc(sizeof(*s));

        s->left = srv.script.huge;
        return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, free);
    }
    char *p = malloc(srv.script.huge);

    memset(p, 'x', srv.script.huge);
    return MHD_create_response_from_buffer(srv.script.huge, p, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    static char busy[] = "{\"error\":\"busy\"}"; /* not const: MHD takes a void * */
    struct req_state *st = *req_cls;
    struct MHD_Response *r;
    enum MHD_Result ret;
    char *body;
    unsigned status;
    int n;

    (void)cls;
    (void)version;
    /* Queue the answer on a later call, never the first, or MHD drops keep-alive
     * (ENGINES.md). */
    if (st == NULL) {
        *req_cls = calloc(1, sizeof(*st));
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t room = sizeof(st->body) - st->len;
        size_t take = *upload_data_size < room ? *upload_data_size : room;

        memcpy(st->body + st->len, upload_data, take);
        st->len += take;
        *upload_data_size = 0;
        return MHD_YES;
    }
    n = atomic_fetch_add(&srv.requests, 1) + 1;
    record(c, url, method, st);
    nap(srv.script.sleep_ms);
    if (n <= srv.script.fail_first) {
        status = srv.script.fail_status != 0 ? (unsigned)srv.script.fail_status : 503;
        r = MHD_create_response_from_buffer(strlen(busy), busy, MHD_RESPMEM_PERSISTENT);
        if (srv.script.retry_after != NULL)
            MHD_add_response_header(r, "Retry-After", srv.script.retry_after);
    } else if (strcmp(url, "/echo") == 0) {
        status = MHD_HTTP_OK;
        r = MHD_create_response_from_buffer(st->len, st->body, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(r, "Content-Type", "application/json");
    } else if (srv.script.huge != 0) {
        status = MHD_HTTP_OK;
        r = huge_response();
    } else {
        status = srv.script.status != 0 ? (unsigned)srv.script.status : MHD_HTTP_OK;
        body = strdup(srv.script.body != NULL ? srv.script.body : "{\"ok\":true}");
        r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "X-Echo", "yes");
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*req_cls);
    *req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&srv.opened, 1);
    else
        atomic_fetch_add(&srv.closed, 1);
}

static void server_start(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    const union MHD_DaemonInfo *info;

    memset(&srv.script, 0, sizeof(srv.script));
    memset(&srv.seen, 0, sizeof(srv.seen));
    atomic_store(&srv.requests, 0);
    atomic_store(&srv.opened, 0);
    atomic_store(&srv.closed, 0);
    atomic_store(&srv.stopping, false);
    pthread_mutex_init(&srv.mu, NULL);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A thread per connection, so a sleeping answer holds up no other connection. */
    srv.d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, NULL, MHD_OPTION_END);
    ck_assert_msg(srv.d != NULL, "test server did not start");
    info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(info);
    srv.port = info->port;
    ck_assert_int_eq(svc_client_global_init(), 0);
}

static void server_stop(void)
{
    svc_client_thread_release();
    atomic_store(&srv.stopping, true);
    MHD_stop_daemon(srv.d);
    srv.d = NULL;
    pthread_mutex_destroy(&srv.mu);
}

/* A URL on the test server, in static storage that the next 7 calls leave alone. */
static const char *url(const char *path)
{
    static char bufs[8][256];
    static unsigned next;
    char *buf = bufs[next++ % 8];

    snprintf(buf, sizeof(bufs[0]), "http://127.0.0.1:%d%s", srv.port, path);
    return buf;
}

/* Plain ints, so that a failed check prints a readable message. */
static int requests_seen(void)
{
    return atomic_load(&srv.requests);
}

static int connections_opened(void)
{
    return atomic_load(&srv.opened);
}

/* Waits (up to 5 s) until the server has seen N connections close. */
static bool closed_reaches(int n)
{
    for (int i = 0; i < 500 && atomic_load(&srv.closed) < n; i++)
        svc_sleep_ms(10);
    return atomic_load(&srv.closed) >= n;
}

START_TEST(get_is_retried_on_503_then_succeeds)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing"), .backoff_base_ms = 1};

    srv.script.fail_first = 2;
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.body, "{\"ok\":true}");
    ck_assert_int_eq(resp.attempts, 3);
    ck_assert_int_eq(requests_seen(), 3);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(retries_are_bounded_and_the_last_status_is_data)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing"), .max_retries = 1, .backoff_base_ms = 1};

    srv.script.fail_first = 100;
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_int_eq(resp.status, 503);
    ck_assert_str_eq(resp.body, "{\"error\":\"busy\"}");
    ck_assert_int_eq(resp.attempts, 2);
    ck_assert_int_eq(requests_seen(), 2);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(status_404_is_data_and_not_retried)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/missing")};

    srv.script.status = 404;
    srv.script.body = "{\"error\":\"no such thing\"}";
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_int_eq(requests_seen(), 1);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(post_is_not_retried)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {
        .method = "POST", .url = url("/orders"), .body = "{}", .body_len = 2, .backoff_base_ms = 1};

    srv.script.fail_first = 1;
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_int_eq(resp.status, 503);
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_int_eq(requests_seen(), 1);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(post_marked_idempotent_is_retried)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.method = "POST",
                                 .url = url("/orders"),
                                 .headers = (const char *[]){"Idempotency-Key: k-1", NULL},
                                 .body = "{\"n\":1}",
                                 .body_len = 7,
                                 .content_type = "application/json",
                                 .idempotent = true,
                                 .backoff_base_ms = 1};

    srv.script.fail_first = 2;
    srv.script.fail_status = 502;
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.attempts, 3);
    ck_assert_int_eq(requests_seen(), 3);
    /* The body goes out again, whole, on the retry. */
    ck_assert_str_eq(srv.seen.method, "POST");
    ck_assert_str_eq(srv.seen.body, "{\"n\":1}");
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(timeout_is_etimedout_in_bounded_time)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {
        .url = url("/slow"), .timeout_ms = 200, .max_retries = 1, .backoff_base_ms = 1};
    int64_t t0;

    srv.script.sleep_ms = 5000;
    t0 = svc_now_ms();
    ck_assert_int_eq(svc_client_call(&req, &resp), SVC_ETIMEDOUT);
    ck_assert_int_lt(svc_now_ms() - t0, 3000);
    ck_assert_int_eq(resp.status, 0);
    ck_assert_int_eq(resp.attempts, 2);
    ck_assert_int_eq(requests_seen(), 2);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(post_timeout_is_not_retried)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.method = "POST", .url = url("/slow"), .timeout_ms = 200};

    srv.script.sleep_ms = 5000;
    ck_assert_int_eq(svc_client_call(&req, &resp), SVC_ETIMEDOUT);
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_int_eq(requests_seen(), 1);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(deadline_bounds_the_whole_call)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {
        .url = url("/thing"), .max_retries = 5, .retry_after_max_ms = 10000, .deadline_ms = 300};
    int64_t t0;

    /* The server asks for a 1 s pause that the deadline has no room for: no second attempt. */
    srv.script.fail_first = 100;
    srv.script.retry_after = "1";
    t0 = svc_now_ms();
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_int_lt(svc_now_ms() - t0, 900);
    ck_assert_int_eq(resp.status, 503);
    ck_assert_int_eq(resp.attempts, 1);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(retry_after_is_honoured)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing"), .backoff_base_ms = 1};
    int64_t t0;

    srv.script.fail_first = 1;
    srv.script.retry_after = "1";
    t0 = svc_now_ms();
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_int_ge(svc_now_ms() - t0, 950);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.attempts, 2);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(retry_after_is_capped)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing"), .retry_after_max_ms = 50};
    int64_t t0;

    srv.script.fail_first = 1;
    srv.script.retry_after = "3600";
    t0 = svc_now_ms();
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_int_lt(svc_now_ms() - t0, 10000);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.attempts, 2);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(refused_connection_is_eunavailable)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    struct svc_client_resp resp;
    char u[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* A port that was just free and has nobody listening. */
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(addr.sin_port));

    struct svc_client_req req = {.url = u, .backoff_base_ms = 1};

    ck_assert_int_eq(svc_client_call(&req, &resp), SVC_EUNAVAILABLE);
    ck_assert_int_eq(resp.status, 0);
    ck_assert_int_eq(resp.attempts, 3);
    ck_assert_str_eq(resp.body, "");
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(request_id_traceparent_and_headers_reach_the_server)
{
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing"),
                                 .headers = (const char *[]){"X-Custom: hello", NULL},
                                 .userpwd = "reader:s3cret",
                                 .request_id = "req-42",
                                 .traceparent = tp};

    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_str_eq(srv.seen.request_id, "req-42");
    ck_assert_str_eq(srv.seen.traceparent, tp);
    ck_assert_str_eq(srv.seen.custom, "hello");
    ck_assert_str_eq(srv.seen.authorization, "Basic cmVhZGVyOnMzY3JldA==");
    ck_assert_str_eq(srv.seen.method, "GET");
    /* And the answer's headers come back. */
    ck_assert_str_eq(svc_client_resp_header(&resp, "x-echo"), "yes");
    ck_assert_str_eq(svc_client_resp_header(&resp, "CONTENT-LENGTH"), "11");
    ck_assert_ptr_null(svc_client_resp_header(&resp, "x-absent"));
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(methods_and_bodies_go_out_as_asked)
{
    struct svc_client_resp resp;
    struct svc_client_req put = {
        .method = "PUT", .url = url("/echo"), .body = "raw", .body_len = 3};
    struct svc_client_req post = {.method = "POST", .url = url("/thing")};
    struct svc_client_req head = {.method = "HEAD", .url = url("/thing")};
    struct svc_client_req del = {.method = "DELETE", .url = url("/thing")};

    ck_assert_int_eq(svc_client_call(&put, &resp), 0);
    ck_assert_str_eq(srv.seen.method, "PUT");
    ck_assert_str_eq(srv.seen.content_type, "application/octet-stream");
    ck_assert_str_eq(resp.body, "raw");
    svc_client_resp_release(&resp);

    /* An empty POST still says how long its body is, and claims no form encoding. */
    ck_assert_int_eq(svc_client_call(&post, &resp), 0);
    ck_assert_str_eq(srv.seen.method, "POST");
    ck_assert_str_eq(srv.seen.content_length, "0");
    ck_assert_str_eq(srv.seen.content_type, "");
    svc_client_resp_release(&resp);

    ck_assert_int_eq(svc_client_call(&head, &resp), 0);
    ck_assert_str_eq(srv.seen.method, "HEAD");
    ck_assert_int_eq(resp.status, 200);
    ck_assert_uint_eq(resp.len, 0);
    svc_client_resp_release(&resp);

    ck_assert_int_eq(svc_client_call(&del, &resp), 0);
    ck_assert_str_eq(srv.seen.method, "DELETE");
    svc_client_resp_release(&resp);
    ck_assert_int_eq(requests_seen(), 4);
}
END_TEST

START_TEST(bad_requests_are_einval_and_send_nothing)
{
    struct svc_client_resp resp;
    struct svc_client_req no_url = {.url = NULL};
    struct svc_client_req ftp = {.url = "ftp://127.0.0.1/x"};
    struct svc_client_req junk = {.url = "not a url"};
    struct svc_client_req method = {.method = "GE T", .url = url("/x")};
    struct svc_client_req header = {.url = url("/x"),
                                    .headers = (const char *[]){"X-A: 1\r\nX-B: 2", NULL}};
    struct svc_client_req rid = {.url = url("/x"), .request_id = "a\r\nX-Evil: 1"};

    ck_assert_int_eq(svc_client_call(&no_url, &resp), SVC_EINVAL);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(svc_client_call(&ftp, &resp), SVC_EINVAL);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(svc_client_call(&junk, &resp), SVC_EINVAL);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(svc_client_call(&method, &resp), SVC_EINVAL);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(svc_client_call(&header, &resp), SVC_EINVAL);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(svc_client_call(&rid, &resp), SVC_EINVAL);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(requests_seen(), 0);
}
END_TEST

START_TEST(sequential_calls_reuse_one_connection)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing")};

    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(requests_seen(), 2);
    ck_assert_int_eq(connections_opened(), 1);

    /* Releasing the thread's handle closes its connection; the next call opens a new one. */
    svc_client_thread_release();
    ck_assert(closed_reaches(1));
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(connections_opened(), 2);
}
END_TEST

static void *call_once(void *arg)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = arg};
    int rc = svc_client_call(&req, &resp);

    svc_client_resp_release(&resp);
    return rc == 0 ? arg : NULL;
}

START_TEST(thread_exit_closes_the_threads_connection)
{
    pthread_t t;
    void *ret;

    ck_assert_int_eq(pthread_create(&t, NULL, call_once, (void *)url("/thing")), 0);
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    ck_assert_ptr_nonnull(ret);
    ck_assert_int_eq(connections_opened(), 1);
    ck_assert(closed_reaches(1));
}
END_TEST

START_TEST(json_body_goes_out_and_the_answer_is_parsed)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.method = "POST", .url = url("/echo")};
    json_t *body = json_pack("{s:i, s:[s]}", "qty", 2, "tags", "new");
    json_t *out;

    ck_assert_int_eq(svc_client_call_json(&req, body, &resp, &out), 0);
    ck_assert_str_eq(srv.seen.content_type, "application/json");
    ck_assert_str_eq(srv.seen.accept, "application/json");
    ck_assert_str_eq(srv.seen.body, "{\"qty\":2,\"tags\":[\"new\"]}");
    ck_assert_ptr_nonnull(out);
    ck_assert(json_equal(out, body));
    json_decref(out);
    json_decref(body);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(json_answer_without_a_body_is_null)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing"),
                                 .headers = (const char *[]){"Accept: text/plain", NULL}};
    json_t *out = json_true(); /* a singleton: overwriting it leaks nothing */

    srv.script.status = 204;
    srv.script.body = "";
    ck_assert_int_eq(svc_client_call_json(&req, NULL, &resp, &out), 0);
    ck_assert_int_eq(resp.status, 204);
    ck_assert_ptr_null(out);
    /* The caller's Accept wins over the default. */
    ck_assert_str_eq(srv.seen.accept, "text/plain");
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(malformed_json_from_a_dependency_is_ebadgateway)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing")};
    json_t *out;

    srv.script.body = "{\"ok\": tru";
    ck_assert_int_eq(svc_client_call_json(&req, NULL, &resp, &out), SVC_EBADGATEWAY);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(requests_seen(), 1);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(error_status_with_non_json_body_is_data)
{
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing")};
    json_t *out;

    srv.script.status = 404;
    srv.script.body = "<html>not found</html>";
    ck_assert_int_eq(svc_client_call_json(&req, NULL, &resp, &out), 0);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_ptr_null(out);
    svc_client_resp_release(&resp);

    srv.script.body = "{\"error\":\"index_not_found\"}";
    ck_assert_int_eq(svc_client_call_json(&req, NULL, &resp, &out), 0);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(json_string_value(json_object_get(out, "error")), "index_not_found");
    json_decref(out);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(oversized_answer_is_ebadgateway_and_not_retried)
{
    enum { CAP = 65536 };
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/big"), .max_response = CAP};

    /* With a Content-Length, refused from the header. */
    srv.script.huge = (size_t)16 * CAP;
    ck_assert_int_eq(svc_client_call(&req, &resp), SVC_EBADGATEWAY);
    ck_assert_int_eq(resp.attempts, 1);
    ck_assert_int_eq(resp.status, 0);
    ck_assert_uint_eq(resp.len, 0);
    svc_client_resp_release(&resp);

    /* Chunked, refused while reading. */
    srv.script.chunked = true;
    ck_assert_int_eq(svc_client_call(&req, &resp), SVC_EBADGATEWAY);
    ck_assert_int_eq(resp.attempts, 1);
    svc_client_resp_release(&resp);
    ck_assert_int_eq(requests_seen(), 2);

    /* Exactly at the cap is fine. */
    srv.script.huge = CAP;
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    ck_assert_uint_eq(resp.len, CAP);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(failed_attempts_are_logged_without_credentials)
{
    char path[] = "/tmp/client_http_test_XXXXXX", text[8192], u[256];
    struct svc_client_resp resp;
    int fd = mkstemp(path);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    unlink(path);
    snprintf(u, sizeof(u), "http://admin:hunter2@127.0.0.1:%d/db?password=swordfish", srv.port);

    struct svc_client_req req = {.url = u, .backoff_base_ms = 1};

    srv.script.fail_first = 1;
    svc_log_set_fd(fd);
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    svc_log_set_fd(-1);
    ck_assert_int_eq(resp.status, 200);
    /* The credentials in the URL were used... */
    ck_assert_str_eq(srv.seen.authorization, "Basic YWRtaW46aHVudGVyMg==");
    /* ...but never logged. */
    n = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    ck_assert_msg(strchr(text, '\n') == text + n - 1, "one line expected: %s", text);
    ck_assert_msg(strstr(text, "\"level\":\"warn\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "\"method\":\"GET\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "\"attempt\":1") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "status 503") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "/db") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "hunter2") == NULL, "password logged: %s", text);
    ck_assert_msg(strstr(text, "admin") == NULL, "user logged: %s", text);
    ck_assert_msg(strstr(text, "swordfish") == NULL, "query logged: %s", text);
    svc_client_resp_release(&resp);
}
END_TEST

START_TEST(attempts_are_counted_by_host_and_status)
{
    static const char *const labels[] = {"host", "status", NULL};
    struct svc_metric *m = svc_counter_new("http_client_requests_total",
                                           "Outgoing HTTP requests, by host and status", labels);
    struct svc_client_resp resp;
    struct svc_client_req req = {.url = url("/thing"), .backoff_base_ms = 1};
    char host[64];

    snprintf(host, sizeof(host), "127.0.0.1:%d", srv.port);
    srv.script.fail_first = 1;
    ck_assert_int_eq(svc_client_call(&req, &resp), 0);
    svc_client_resp_release(&resp);
    ck_assert(svc_metric_value(m, (const char *[]){host, "503"}) == 1.0);
    ck_assert(svc_metric_value(m, (const char *[]){host, "200"}) == 1.0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_http");
    TCase *retry = tcase_create("retry");
    TCase *wire = tcase_create("wire");
    TCase *json = tcase_create("json");

    tcase_add_checked_fixture(retry, server_start, server_stop);
    tcase_add_test(retry, get_is_retried_on_503_then_succeeds);
    tcase_add_test(retry, retries_are_bounded_and_the_last_status_is_data);
    tcase_add_test(retry, status_404_is_data_and_not_retried);
    tcase_add_test(retry, post_is_not_retried);
    tcase_add_test(retry, post_marked_idempotent_is_retried);
    tcase_add_test(retry, timeout_is_etimedout_in_bounded_time);
    tcase_add_test(retry, post_timeout_is_not_retried);
    tcase_add_test(retry, deadline_bounds_the_whole_call);
    tcase_add_test(retry, retry_after_is_honoured);
    tcase_add_test(retry, retry_after_is_capped);
    tcase_add_test(retry, refused_connection_is_eunavailable);
    tcase_add_test(retry, failed_attempts_are_logged_without_credentials);
    tcase_add_test(retry, attempts_are_counted_by_host_and_status);
    suite_add_tcase(s, retry);

    tcase_add_checked_fixture(wire, server_start, server_stop);
    tcase_add_test(wire, request_id_traceparent_and_headers_reach_the_server);
    tcase_add_test(wire, methods_and_bodies_go_out_as_asked);
    tcase_add_test(wire, bad_requests_are_einval_and_send_nothing);
    tcase_add_test(wire, sequential_calls_reuse_one_connection);
    tcase_add_test(wire, thread_exit_closes_the_threads_connection);
    suite_add_tcase(s, wire);

    tcase_add_checked_fixture(json, server_start, server_stop);
    tcase_add_test(json, json_body_goes_out_and_the_answer_is_parsed);
    tcase_add_test(json, json_answer_without_a_body_is_null);
    tcase_add_test(json, malformed_json_from_a_dependency_is_ebadgateway);
    tcase_add_test(json, error_status_with_non_json_body_is_data);
    tcase_add_test(json, oversized_answer_is_ebadgateway_and_not_retried);
    suite_add_tcase(s, json);
    return testenv_run(s);
}
