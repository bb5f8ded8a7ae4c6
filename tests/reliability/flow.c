/* flow: see flow.h. */
#include "flow.h"

#include "testenv.h"
#include "testhttp.h"

#include "svc/time.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef POLYGLOT_STATE_DIR
#error "POLYGLOT_STATE_DIR: the stack's state folder"
#endif

static char user_url[128], msg_url[128];

void flow_urls(void)
{
    const char *up = testenv_get("user-svc", "HTTP_PORT");
    const char *mp = testenv_get("message-svc", "HTTP_PORT");

    testenv_require_port("user-svc", (int)strtol(up, NULL, 10));
    testenv_require_port("message-svc", (int)strtol(mp, NULL, 10));
    snprintf(user_url, sizeof(user_url), "http://127.0.0.1:%s", up);
    snprintf(msg_url, sizeof(msg_url), "http://127.0.0.1:%s", mp);
}

void flow_register(const char *name, char id[64])
{
    char body[512], url[256];
    struct testhttp_resp r;
    json_t *u;

    snprintf(body, sizeof(body), "{\"email\":\"%s@example.com\",\"name\":\"%s\"}",
             testenv_unique("reliability"), name);
    snprintf(url, sizeof(url), "%s/v1/users", user_url);
    r = testhttp_request("POST", url, NULL, "application/json", body);
    ck_assert_msg(r.status == 201, "user-svc register: HTTP %ld %s %s", r.status, r.error, r.body);
    u = json_loads(r.body, 0, NULL);
    ck_assert_msg(json_is_string(json_object_get(u, "id")), "no id in %s", r.body);
    snprintf(id, 64, "%s", json_string_value(json_object_get(u, "id")));
    json_decref(u);
    testhttp_resp_release(&r);
}

int flow_welcomes(const char *id)
{
    char url[256];
    struct testhttp_resp r;
    json_t *page, *m;
    size_t i;
    int n = -1;

    snprintf(url, sizeof(url), "%s/v1/users/%s/messages?limit=100", msg_url, id);
    r = testhttp_request("GET", url, NULL, NULL, NULL);
    if (r.status == 200 && (page = json_loads(r.body, 0, NULL)) != NULL) {
        n = 0;
        json_array_foreach(json_object_get(page, "items"), i, m)
        {
            const char *sender = json_string_value(json_object_get(m, "sender"));
            const char *subject = json_string_value(json_object_get(m, "subject"));

            if (sender != NULL && strcmp(sender, "system") == 0 && subject != NULL &&
                strncmp(subject, "Welcome, ", 9) == 0)
                n++;
        }
        json_decref(page);
    }
    testhttp_resp_release(&r);
    return n;
}

int64_t flow_wait_welcome(const char *id, int64_t deadline_ms)
{
    for (;;) {
        int64_t now = svc_now_ms();

        if (flow_welcomes(id) > 0)
            return now;
        ck_assert_msg(now < deadline_ms, "no welcome message for user %s in time", id);
        svc_sleep_ms(100);
    }
}

/* Records behind, summed over message-svc's partitions, or -1 while it holds none. */
static long long consumer_lag(void)
{
    char url[160];
    struct testhttp_resp r;
    long long sum = -1;

    snprintf(url, sizeof(url), "%s/metrics", msg_url);
    r = testhttp_call("GET", url, NULL, NULL, NULL);
    if (r.status == 200) {
        const char *p = r.body;

        while ((p = strstr(p, "\nkafka_consumer_lag{")) != NULL) {
            const char *v = strchr(p, '}');

            if (v == NULL)
                break;
            sum = (sum < 0 ? 0 : sum) + strtoll(v + 1, NULL, 10);
            p = v;
        }
    }
    testhttp_resp_release(&r);
    return sum;
}

void flow_catch_up(int limit_ms)
{
    int64_t start = svc_now_ms();
    long long lag;

    while ((lag = consumer_lag()) != 0) {
        ck_assert_msg(svc_now_ms() - start < limit_ms,
                      lag < 0 ? "message-svc holds no partition after %d ms (lag %lld)"
                              : "message-svc is still behind after %d ms: lag %lld",
                      limit_ms, lag);
        svc_sleep_ms(250);
    }
}

const char *flow_state(void)
{
    const char *s = getenv("POLYGLOT_STATE");

    return s != NULL && *s != '\0' ? s : POLYGLOT_STATE_DIR;
}

pid_t flow_stack_pid(const char *name)
{
    char path[512], buf[32] = "", stat[512] = "";
    FILE *f;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/run/%s.pid", flow_state(), name);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    pid = (pid_t)strtol(buf, NULL, 10);
    if (pid <= 1 || kill(pid, 0) != 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) != NULL) {
        char *close_paren;

        if (fgets(stat, sizeof(stat), f) == NULL)
            stat[0] = '\0';
        fclose(f);
        close_paren = strrchr(stat, ')');
        if (close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'Z')
            return 0;
    }
    return pid;
}

int flow_exe_has(pid_t pid, const char *needle)
{
    char path[64];
    FILE *f;
    size_t n = strlen(needle), cap = 1 << 20, len = 0, r;
    char *buf = malloc(cap);
    int found = 0;

    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    ck_assert_ptr_nonnull(buf);
    /* In blocks, keeping the last N-1 bytes so a needle across two blocks is found. */
    while (!found && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        for (size_t i = 0; !found && i + n <= len; i++)
            found = buf[i] == needle[0] && memcmp(buf + i, needle, n) == 0;
        if (len >= n) {
            memmove(buf, buf + len - (n - 1), n - 1);
            len = n - 1;
        }
    }
    fclose(f);
    free(buf);
    return found;
}
