/* testproc: see testproc.h. */
#include "testproc.h"

#include "testhttp.h"

#include "svc/time.h"

#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef POLYGLOT_ROOT
#error "POLYGLOT_ROOT: the checkout, for deploy/local/stack.sh"
#endif

enum { ENV_MAX = 48 };

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    ck_assert(fd >= 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

void testproc_show_log(const struct testproc *p)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "tail -n 30 %s >&2", p->log);
    if (system(cmd) != 0) /* NOLINT(cert-env33-c): a test's own diagnostics */
        fprintf(stderr, "(no log at %s)\n", p->log);
}

long testproc_get(const struct testproc *p, const char *path, char **body)
{
    char url[256];
    struct testhttp_resp r;
    long status;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", p->port, path);
    r = testhttp_call("GET", url, NULL, NULL, NULL);
    status = r.status;
    if (body != NULL)
        *body = r.body != NULL ? strdup(r.body) : NULL;
    testhttp_resp_release(&r);
    return status;
}

void testproc_start(struct testproc *p, const char *bin, const char *name, const char *const *env)
{
    static int n;
    char port[32];
    const char *e[ENV_MAX];
    size_t ne = 0;
    pid_t parent = getpid();

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->port = free_port();
    snprintf(p->log, sizeof(p->log), "/tmp/it_%s_%d_%d.log", name, (int)getpid(), n++);
    snprintf(port, sizeof(port), "HTTP_PORT=%d", p->port);
    e[ne++] = port;
    e[ne++] = "ACCESS_LOG=false";
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        ck_assert_msg(ne < ENV_MAX - 1, "testproc_start: more than %d variables", ENV_MAX - 3);
        e[ne++] = env[i];
    }
    e[ne] = NULL;

    p->pid = fork();
    ck_assert(p->pid >= 0);
    if (p->pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char *const argv[] = {(char *)bin, NULL};

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execve(bin, argv, (char *const *)e);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        int status;

        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            testproc_show_log(p);
            ck_abort_msg("%s exited at start-up (status %d), log %s", name, status, p->log);
        }
        if (testproc_get(p, "/readyz", NULL) == 200)
            return;
        svc_sleep_ms(100);
    }
    testproc_show_log(p);
    ck_abort_msg("%s not ready in 30 s, log %s", name, p->log);
}

int testproc_stop(struct testproc *p, int sig)
{
    int status = 0;

    kill(p->pid, sig);
    for (int i = 0; i < 300; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            unlink(p->log);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        svc_sleep_ms(100);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
    ck_abort_msg("%s did not stop within 30 s of signal %d", p->name, sig);
    return -1;
}

double testproc_metric(const struct testproc *p, const char *sample)
{
    char *body = NULL, needle[256], *at;
    double v = -1;

    if (testproc_get(p, "/metrics", &body) == 200 && body != NULL) {
        snprintf(needle, sizeof(needle), "\n%s ", sample);
        at = strstr(body, needle);
        if (at != NULL)
            v = strtod(at + strlen(needle), NULL);
    }
    free(body);
    return v;
}

int teststack(const char *args)
{
    char cmd[512];
    int rc;

    snprintf(cmd, sizeof(cmd), "%s/deploy/local/stack.sh %s >&2", POLYGLOT_ROOT, args);
    rc = system(cmd); /* NOLINT(cert-env33-c): the stack script is what a workshop runs */
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
