/*
 * C11 threads for ThreadSanitizer builds (the `tsan` preset links this into every test).
 *
 * librdkafka starts its threads with C11 thrd_create() and locks with mtx_lock() and cnd_wait(),
 * which glibc implements by calling its internal pthread functions directly. GCC 12's
 * ThreadSanitizer intercepts only the public ones: it never sets up librdkafka's threads (and
 * crashes in the first allocation one makes), and it does not see the locks that order what our
 * code hands to librdkafka before what librdkafka's threads hand back (a delivery report's
 * opaque), so it reports races that are none. Defining the C11 functions librdkafka uses in the
 * executable puts these in front of glibc's, and they go through the public pthread functions
 * that TSan sees. glibc's mtx_t and cnd_t have the size of pthread_mutex_t and pthread_cond_t
 * (its own implementation casts them the same way).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

struct start {
    thrd_start_t func;
    void *arg;
};

static void *run(void *p)
{
    struct start s = *(struct start *)p;

    free(p);
    /* glibc's thrd_join reads the int result back from the pointer, as cast here. */
    return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    struct start *s = malloc(sizeof(*s));
    int rc;

    if (s == NULL)
        return thrd_nomem;
    s->func = func;
    s->arg = arg;
    rc = pthread_create(thr, NULL, run, s);
    if (rc == 0)
        return thrd_success;
    free(s);
    return rc == EAGAIN ? thrd_nomem : thrd_error;
}

int thrd_join(thrd_t thr, int *res)
{
    void *out;

    if (pthread_join(thr, &out) != 0)
        return thrd_error;
    if (res != NULL)
        *res = (int)(intptr_t)out;
    return thrd_success;
}

int thrd_detach(thrd_t thr)
{
    return pthread_detach(thr) == 0 ? thrd_success : thrd_error;
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t a;
    int rc;

    if (pthread_mutexattr_init(&a) != 0)
        return thrd_error;
    if ((type & mtx_recursive) != 0)
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return rc == 0 ? thrd_success : thrd_error;
}

int mtx_lock(mtx_t *m)
{
    return pthread_mutex_lock((pthread_mutex_t *)m) == 0 ? thrd_success : thrd_error;
}

int mtx_trylock(mtx_t *m)
{
    int rc = pthread_mutex_trylock((pthread_mutex_t *)m);

    return rc == 0 ? thrd_success : rc == EBUSY ? thrd_busy : thrd_error;
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict at)
{
    int rc = pthread_mutex_timedlock((pthread_mutex_t *)m, at);

    return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

int mtx_unlock(mtx_t *m)
{
    return pthread_mutex_unlock((pthread_mutex_t *)m) == 0 ? thrd_success : thrd_error;
}

void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
    int rc = pthread_cond_init((pthread_cond_t *)c, NULL);

    return rc == 0 ? thrd_success : rc == ENOMEM ? thrd_nomem : thrd_error;
}

int cnd_signal(cnd_t *c)
{
    return pthread_cond_signal((pthread_cond_t *)c) == 0 ? thrd_success : thrd_error;
}

int cnd_broadcast(cnd_t *c)
{
    return pthread_cond_broadcast((pthread_cond_t *)c) == 0 ? thrd_success : thrd_error;
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    return pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m) == 0 ? thrd_success
                                                                             : thrd_error;
}

/* AT is on CLOCK_REALTIME, as C11 says and as pthread_cond_timedwait's default clock is. */
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict at)
{
    int rc = pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, at);

    return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}
