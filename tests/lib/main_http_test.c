/*
 * svc_main() as an operator sees it, through the echo-svc binary: --help and --version, every
 * configuration problem reported at once with exit status 2, the effective configuration
 * logged with secrets masked, SIGTERM draining a request in flight before exit 0, and start-up
 * waiting START_TIMEOUT for an engine that is not reachable yet (echo-svc's ECHO_WAIT_FOR
 * stands in for the engine).
 */
#include "svc/time.h"
#include "testenv.h"
#include "testhttp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ECHO_SVC_BIN
#error "ECHO_SVC_BIN must be defined by the build"
#endif

struct proc {
    pid_t pid;
    int out; /* read end of the child's stdout+stderr */
};

/* Starts echo-svc with ENV (NULL-terminated "K=V" list; nothing else) and ARG (or NULL). */
static struct proc spawn(const char *const *env, const char *arg)
{
    int fds[2];
    struct proc p;

    ck_assert_int_eq(pipe(fds), 0);
    p.pid = fork();
    ck_assert_int_ge(p.pid, 0);
    if (p.pid == 0) {
        char *argv[] = {(char *)ECHO_SVC_BIN, (char *)arg, NULL};

        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        execve(ECHO_SVC_BIN, argv, (char *const *)env);
        _exit(127);
    }
    close(fds[1]);
    p.out = fds[0];
    return p;
}

/* Waits for exit (bounded) and returns the exit status; fails on a signal or a hang. */
static int reap(struct proc *p, char *out, size_t cap)
{
    int status = 0;
    size_t len = 0;
    ssize_t n;

    for (int i = 0; i < 1000; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid)
            break;
        ck_assert_msg(i < 999, "echo-svc did not exit within 10 s");
        svc_sleep_ms(10);
    }
    while (len + 1 < cap && (n = read(p->out, out + len, cap - len - 1)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p->out);
    ck_assert_msg(WIFEXITED(status), "echo-svc died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

START_TEST(help_lists_every_variable)
{
    static const char *const env[] = {NULL};
    struct proc p = spawn(env, "--help");
    char out[8192];

    ck_assert_int_eq(reap(&p, out, sizeof(out)), 0);
    ck_assert(strstr(out, "usage: echo-svc") != NULL);
    ck_assert(strstr(out, "HTTP_PORT") != NULL);
    ck_assert(strstr(out, "required") != NULL);
    ck_assert(strstr(out, "SHUTDOWN_GRACE") != NULL);
    ck_assert(strstr(out, "default 10s") != NULL);
}
END_TEST

START_TEST(version_and_bad_arguments)
{
    static const char *const env[] = {NULL};
    struct proc p = spawn(env, "--version");
    char out[1024];

    ck_assert_int_eq(reap(&p, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "echo-svc 0.1.0\n");
    p = spawn(env, "--frobnicate");
    ck_assert_int_eq(reap(&p, out, sizeof(out)), 2);
    ck_assert(strstr(out, "unknown argument '--frobnicate'") != NULL);
}
END_TEST

START_TEST(every_config_problem_at_once_exit_2)
{
    static const char *const env[] = {"HTTP_THREADS=0", "LOG_LEVEL=loud", "HTTP_CONN_TIMEOUT=soon",
                                      NULL};
    struct proc p = spawn(env, NULL);
    char out[4096];

    ck_assert_int_eq(reap(&p, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "'HTTP_PORT'") != NULL, "missing HTTP_PORT not reported:\n%s", out);
    ck_assert(strstr(out, "'HTTP_THREADS'") != NULL);
    ck_assert(strstr(out, "'LOG_LEVEL'") != NULL);
    ck_assert(strstr(out, "'HTTP_CONN_TIMEOUT'") != NULL);
}
END_TEST

/* A free port: bind to 0, read it, close. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

struct slow {
    char url[128];
    struct testhttp_resp r;
};

static void *slow_call(void *arg)
{
    struct slow *s = arg;

    s->r = testhttp_call("GET", s->url, NULL, NULL, NULL);
    return NULL;
}

START_TEST(sigterm_drains_the_request_in_flight_then_exits_0)
{
    char port_env[32], url[128], out[16384];
    const char *env[] = {port_env, "HTTP_THREADS=2", NULL};
    struct proc p;
    struct slow s;
    pthread_t t;
    struct testhttp_resp r = {0};

    snprintf(port_env, sizeof(port_env), "HTTP_PORT=%d", free_port());
    p = spawn(env, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%s/readyz", port_env + 10);
    for (int i = 0; i < 500 && r.status != 200; i++) {
        testhttp_resp_release(&r);
        svc_sleep_ms(10);
        r = testhttp_call("GET", url, NULL, NULL, NULL);
    }
    ck_assert_int_eq(r.status, 200);
    testhttp_resp_release(&r);

    snprintf(s.url, sizeof(s.url), "http://127.0.0.1:%s/v1/slow?ms=800", port_env + 10);
    pthread_create(&t, NULL, slow_call, &s);
    svc_sleep_ms(200);
    kill(p.pid, SIGTERM);
    pthread_join(t, NULL);
    ck_assert_int_eq(reap(&p, out, sizeof(out)), 0);
    ck_assert_msg(s.r.status == 200, "the request in flight got %ld", s.r.status);
    testhttp_resp_release(&s.r);
    ck_assert(strstr(out, "SIGTERM received: draining") != NULL);
    ck_assert(strstr(out, "\"msg\":\"stopped\"") != NULL);
    ck_assert(strstr(out, "\"route\":\"/v1/slow\"") != NULL);
}
END_TEST

/* Polls URL until it answers 200 or MS pass; returns the last status (0: no answer). */
static long wait_status(const char *url, int ms)
{
    struct testhttp_resp r = {0};
    long status = 0;

    for (int i = 0; i < ms / 20 && status != 200; i++) {
        svc_sleep_ms(20);
        r = testhttp_call("GET", url, NULL, NULL, NULL);
        status = r.status;
        testhttp_resp_release(&r);
    }
    return status;
}

START_TEST(start_waits_for_an_engine_that_is_not_reachable_yet)
{
    char port_env[32], wait_env[96], url[128], out[16384];
    char path[] = "/tmp/echo-engine-XXXXXX";
    const char *env[] = {port_env, wait_env, "START_TIMEOUT=30s", NULL};
    struct proc p;
    int status, fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(path); /* the engine is down */
    snprintf(port_env, sizeof(port_env), "HTTP_PORT=%d", free_port());
    snprintf(wait_env, sizeof(wait_env), "ECHO_WAIT_FOR=%s", path);
    snprintf(url, sizeof(url), "http://127.0.0.1:%s/readyz", port_env + 10);
    p = spawn(env, NULL);

    /* Still waiting after 1.5 s: alive, not listening yet. */
    ck_assert_int_eq(wait_status(url, 1500), 0);
    ck_assert_int_eq(waitpid(p.pid, &status, WNOHANG), 0);

    /* The engine comes up: the service starts within the next retries. */
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(wait_status(url, 3000), 200);
    kill(p.pid, SIGTERM);
    ck_assert_int_eq(reap(&p, out, sizeof(out)), 0);
    unlink(path);
    ck_assert_msg(strstr(out, "'engine' failed: Service unavailable; retrying every second") !=
                      NULL,
                  "%s", out);
    ck_assert(strstr(out, "cannot start") == NULL);
}
END_TEST

START_TEST(start_gives_up_at_once_without_start_timeout_and_a_signal_ends_the_wait)
{
    char port_env[32], out[16384];
    const char *env[] = {port_env, "ECHO_WAIT_FOR=/nonexistent/engine", NULL};
    const char *env_wait[] = {port_env, "ECHO_WAIT_FOR=/nonexistent/engine", "START_TIMEOUT=60s",
                              NULL};
    struct proc p;
    int64_t t0;

    snprintf(port_env, sizeof(port_env), "HTTP_PORT=%d", free_port());
    t0 = svc_now_ms();
    p = spawn(env, NULL);
    ck_assert_int_eq(reap(&p, out, sizeof(out)), 1);
    ck_assert_int_lt(svc_now_ms() - t0, 2000);
    ck_assert_msg(strstr(out, "cannot start: 'engine' failed: Service unavailable") != NULL, "%s",
                  out);

    /* Waiting for up to a minute, but SIGTERM ends it at once with status 0. */
    p = spawn(env_wait, NULL);
    svc_sleep_ms(1500);
    t0 = svc_now_ms();
    kill(p.pid, SIGTERM);
    ck_assert_int_eq(reap(&p, out, sizeof(out)), 0);
    ck_assert_int_lt(svc_now_ms() - t0, 2000);
    ck_assert_msg(strstr(out, "stopped by a signal while starting") != NULL, "%s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("main");
    TCase *tc = tcase_create("process");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, help_lists_every_variable);
    tcase_add_test(tc, version_and_bad_arguments);
    tcase_add_test(tc, every_config_problem_at_once_exit_2);
    tcase_add_test(tc, sigterm_drains_the_request_in_flight_then_exits_0);
    tcase_add_test(tc, start_waits_for_an_engine_that_is_not_reachable_yet);
    tcase_add_test(tc, start_gives_up_at_once_without_start_timeout_and_a_signal_ends_the_wait);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
