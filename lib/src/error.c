#include "svc/error.h"

#include "svc/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

const struct svc_err_def svc_errors[] = {
#define SVC__ERR_ROW(name, value, status, type, title) SVC_ERR_DEF(name, value, status, type, title)
    SVC_ERRNO_MAP(SVC__ERR_ROW)
#undef SVC__ERR_ROW
        SVC_ERRORS_END,
};

/*
 * The registered service tables. Appended under a mutex, never removed; readers load the
 * count (acquire) and walk the slots below it without a lock, since a slot is written before
 * the count that covers it is published.
 */
#define TABLES_MAX 32
static const struct svc_err_def *_Atomic tables[TABLES_MAX];
static atomic_int ntables;
static pthread_mutex_t register_mu = PTHREAD_MUTEX_INITIALIZER;

static const struct svc_err_def *find_in(const struct svc_err_def *t, int code)
{
    for (; t->name != NULL; t++)
        if (t->code == code)
            return t;
    return NULL;
}

static const struct svc_err_def *find(int code)
{
    const struct svc_err_def *r = find_in(svc_errors, code);
    int n = atomic_load_explicit(&ntables, memory_order_acquire);

    for (int i = 0; r == NULL && i < n; i++)
        r = find_in(atomic_load_explicit(&tables[i], memory_order_relaxed), code);
    return r;
}

static bool same_meaning(const struct svc_err_def *a, const struct svc_err_def *b)
{
    return a->status == b->status && strcmp(a->name, b->name) == 0 &&
           strcmp(a->type, b->type) == 0 && strcmp(a->title, b->title) == 0;
}

/* Why ROW cannot join the registry, or NULL. Called under register_mu. */
static const char *refuse(const struct svc_err_def *table, const struct svc_err_def *row)
{
    const struct svc_err_def *other;
    int n = atomic_load_explicit(&ntables, memory_order_relaxed);

    if (row->code >= 0)
        return "is not negative";
    if (find_in(svc_errors, row->code) != NULL)
        return "is one of lib's";
    if (find_in(table, row->code) != row)
        return "appears twice";
    for (int i = 0; i < n; i++) {
        other = find_in(atomic_load_explicit(&tables[i], memory_order_relaxed), row->code);
        if (other != NULL && !same_meaning(other, row))
            return "is registered with another meaning";
    }
    return NULL;
}

int svc_err_register(const struct svc_err_def *table)
{
    int n, rc = 0;

    pthread_mutex_lock(&register_mu);
    n = atomic_load_explicit(&ntables, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        if (atomic_load_explicit(&tables[i], memory_order_relaxed) == table)
            goto out;
    for (const struct svc_err_def *row = table; row->name != NULL; row++) {
        const char *why = refuse(table, row);

        if (why != NULL) {
            svc_log_error("error '%s' (%d) cannot be registered: its code %s", row->name, row->code,
                          why);
            rc = SVC_EINVAL;
            goto out;
        }
    }
    if (n == TABLES_MAX) {
        svc_log_error("error table of '%s' cannot be registered: %d tables already are",
                      table->name != NULL ? table->name : "(empty)", TABLES_MAX);
        rc = SVC_EINVAL;
        goto out;
    }
    atomic_store_explicit(&tables[n], table, memory_order_relaxed);
    atomic_store_explicit(&ntables, n + 1, memory_order_release);
out:
    pthread_mutex_unlock(&register_mu);
    return rc;
}

int svc_err_status(int code)
{
    const struct svc_err_def *r = find(code);

    return r != NULL ? r->status : 500;
}

const char *svc_err_name(int code)
{
    const struct svc_err_def *r = find(code);

    return r != NULL ? r->name : "EUNKNOWN";
}

const char *svc_err_title(int code)
{
    const struct svc_err_def *r = find(code);

    return r != NULL ? r->title : "Internal error";
}

const char *svc_err_type(int code)
{
    const struct svc_err_def *r = find(code);

    return r != NULL ? r->type : "internal";
}
