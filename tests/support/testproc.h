/*
 * testproc: integration tests that run a service binary themselves (with settings of their
 * own, to kill it mid-work or watch its metrics) and that stop and start engines of the local
 * stack (deploy/local/stack.sh, on the state folder testenv uses).
 */
#ifndef POLYGLOT_TESTPROC_H
#define POLYGLOT_TESTPROC_H

#include <sys/types.h>

struct testproc {
    pid_t pid;
    int port;
    char name[32];
    char log[128];
};

/*
 * Starts the service binary BIN as NAME (for messages and the log file name) with the
 * environment ENV ("KEY=value", NULL-terminated) plus HTTP_PORT (a free port) and
 * ACCESS_LOG=false, its output in a log file under /tmp, and waits up to 30 s until /readyz
 * answers 200. The process is killed if the test process dies. Fails the test (printing the
 * log's tail) when it exits or is not ready in time.
 */
void testproc_start(struct testproc *p, const char *bin, const char *name, const char *const *env);

/* Stops the process with SIG, waiting up to 30 s (then SIGKILL and a failed test), and returns
 * its exit status, or 128 + the signal that ended it. The log is removed. */
int testproc_stop(struct testproc *p, int sig);

/* GET PATH on the process: the status (0 when nothing answered); *BODY, when BODY is not NULL,
 * a copy of the body to free(), or NULL. */
long testproc_get(const struct testproc *p, const char *path, char **body);

/* The value of the sample SAMPLE (the whole name with labels, e.g.
 * "outbox_backlog{outbox=\"user-svc\"}") on the process's /metrics, or -1. */
double testproc_metric(const struct testproc *p, const char *sample);

/* Prints the last 30 lines of the process's log to stderr. */
void testproc_show_log(const struct testproc *p);

/* deploy/local/stack.sh ARGS ("stop kafka", "up kafka"), output to stderr: its exit status. */
int teststack(const char *args);

#endif
