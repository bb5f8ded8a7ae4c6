/*
 * pause: the process that holds a pod's namespaces open (what registry.k8s.io/pause does).
 *
 * It sleeps until SIGTERM or SIGINT, then exits 0, and reaps every child handed to it: with a
 * shared PID namespace it is PID 1 of the pod, so orphans are re-parented to it and must not
 * stay zombies. Built with `gcc -static` by tools/images/build.sh into an image of this one
 * file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void on_child(int sig)
{
    int saved = errno;

    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int handle(int sig, void (*fn)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = fn == on_child ? SA_NOCLDSTOP : 0;
    return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
    sigset_t mask, waiting;

    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("pause 3.10 (polyglot)");
        return 0;
    }
    /* PID 1 gets no default action for signals it does not handle: these three must be ours. */
    if (handle(SIGTERM, on_stop) != 0 || handle(SIGINT, on_stop) != 0 ||
        handle(SIGCHLD, on_child) != 0) {
        perror("pause: sigaction");
        return 1;
    }
    /* The signals stay blocked except inside sigsuspend(), so one that arrives between the test
     * and the wait is not lost (pause() alone would sleep through it). */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &mask, &waiting) != 0) {
        perror("pause: sigprocmask");
        return 1;
    }
    while (!stop_signal)
        sigsuspend(&waiting);
    fprintf(stderr, "pause: shutting down, got signal %d\n", (int)stop_signal);
    return 0;
}
