/*
 * Issue 15, failure 5: after a crash, consumption stopped for ~45 s. Replayed on the local
 * stack (`make up`) as an operator would see it:
 *
 *   kill -9 of the stack's message-svc, a user registered meanwhile
 *   deploy/local/stack.sh up (starts what is missing; returns once message-svc is ready)
 *   another user registered                     -> both welcome messages are in message-svc's
 *                                                  API within 10 s of the restart
 *
 * Covers lib's consumer session of 6 s (commit 46371cd): with librdkafka's default of 45 s the
 * dead member kept its partitions, and the restarted process got none, for ~40 s.
 *
 * The stack is put back whatever happens: an unchecked fixture (the parent process, after a
 * failure or a timeout too) runs stack.sh up again when message-svc is not running. The stack
 * script and build are those of the checkout whose binary was running (from /proc/PID/exe:
 * <root>/build/<preset>/message-svc/message-svc), not this test's checkout.
 */
#include "flow.h"
#include "testenv.h"

#include "svc/time.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WELCOME_AFTER_RESTART_MS 10000

/* The running message-svc's build folder and stack script, found before anything is killed. */
static char build_dir[PATH_MAX], stack_sh[PATH_MAX];

/* "<root>/build/<preset>/message-svc/message-svc" -> BUILD_DIR "<root>/build/<preset>" and
 * "<root>/deploy/local/stack.sh". False when PID's executable is laid out otherwise. */
static bool locate_stack(pid_t pid)
{
    char link[64], exe[PATH_MAX - 32]; /* room for the script's path after it */
    ssize_t n;
    char *cut;

    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    n = readlink(link, exe, sizeof(exe) - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    /* A binary rebuilt while the process runs: the path it was started from. */
    if (n > 10 && strcmp(exe + n - 10, " (deleted)") == 0)
        exe[n - 10] = '\0';
    for (int i = 0; i < 2; i++) { /* drop "/message-svc" twice */
        if ((cut = strrchr(exe, '/')) == NULL)
            return false;
        *cut = '\0';
    }
    snprintf(build_dir, sizeof(build_dir), "%s", exe);
    for (int i = 0; i < 2; i++) { /* drop "/<preset>" and "/build" */
        if ((cut = strrchr(exe, '/')) == NULL)
            return false;
        *cut = '\0';
    }
    snprintf(stack_sh, sizeof(stack_sh), "%s/deploy/local/stack.sh", exe);
    return access(stack_sh, X_OK) == 0;
}

/* stack.sh up with the build that was running: its exit status. */
static int stack_up(void)
{
    char cmd[3 * PATH_MAX];
    int rc;

    snprintf(cmd, sizeof(cmd), "BUILD_DIR='%s' timeout 240 '%s' up >&2", build_dir, stack_sh);
    rc = system(cmd); /* NOLINT(cert-env33-c): the stack script is what an operator runs */
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void locate(void)
{
    pid_t pid = flow_stack_pid("message-svc");

    build_dir[0] = stack_sh[0] = '\0';
    if (pid > 0 && !locate_stack(pid))
        build_dir[0] = stack_sh[0] = '\0';
}

/* Whatever the test did, message-svc runs again afterwards. */
static void put_back(void)
{
    if (flow_stack_pid("message-svc") > 0 || stack_sh[0] == '\0')
        return;
    fprintf(stderr, "consumer_kill_test: message-svc is not running: %s up\n", stack_sh);
    if (stack_up() != 0)
        fprintf(stderr, "consumer_kill_test: %s up failed: start the stack again (make up)\n",
                stack_sh);
}

START_TEST(killed_consumer_consumes_within_10s_of_restart)
{
    char during[64], after[64];
    pid_t pid;
    int64_t killed, ready, first, second;

    flow_urls();
    pid = flow_stack_pid("message-svc");
    ck_assert_msg(pid > 0, "the stack's message-svc is not running (make up)");
    ck_assert_msg(stack_sh[0] != '\0',
                  "cannot tell which checkout runs message-svc (pid %d): /proc/%d/exe is not "
                  "<root>/build/<preset>/message-svc/message-svc beside deploy/local/stack.sh",
                  (int)pid, (int)pid);
    /* A welcome timed afterwards is not queued behind older events. */
    flow_catch_up(120000);

    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    killed = svc_now_ms();
    flow_register("Killed Meanwhile", during);
    while (flow_stack_pid("message-svc") == pid) /* until its parent reaps it */
        svc_sleep_ms(50);
    ck_assert_msg(stack_up() == 0, "%s up failed", stack_sh);
    ready = svc_now_ms();
    ck_assert_msg(flow_stack_pid("message-svc") > 0, "stack.sh up did not start message-svc");
    flow_register("After Restart", after);
    first = flow_wait_welcome(during, ready + WELCOME_AFTER_RESTART_MS);
    second = flow_wait_welcome(after, ready + WELCOME_AFTER_RESTART_MS);
    fprintf(stderr,
            "kill -9 -> ready again: %lld ms; ready -> welcome of the user registered while "
            "down: %lld ms, of the one registered after: %lld ms\n",
            (long long)(ready - killed), (long long)(first - ready), (long long)(second - ready));
    ck_assert_int_eq(flow_welcomes(during), 1);
    ck_assert_int_eq(flow_welcomes(after), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reliability_consumer_kill");
    TCase *tc = tcase_create("kill");

    tcase_add_unchecked_fixture(tc, locate, put_back);
    /* The catch-up (at most 120 s), stack.sh up, 10 s for the welcomes. */
    tcase_set_timeout(tc, 200);
    tcase_add_test(tc, killed_consumer_consumes_within_10s_of_restart);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
