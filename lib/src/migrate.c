/*
 * migrate.c: the migration runner of svc/migrate.h. Everything engine-specific is behind the
 * callbacks; what is here is the order, the checks and the log lines, the same for every store.
 */
#include "svc/migrate.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void svc_migration_applied_add(struct svc_migration_list *l, int version, const char *name,
                               const char *checksum)
{
    struct svc_migration_applied *a;

    if (l->n == l->cap) {
        l->cap = l->cap != 0 ? 2 * l->cap : 16;
        l->items = svc_realloc(l->items, l->cap * sizeof(*l->items));
    }
    a = &l->items[l->n++];
    a->version = version;
    snprintf(a->name, sizeof(a->name), "%s", name != NULL ? name : "");
    snprintf(a->checksum, sizeof(a->checksum), "%s", checksum != NULL ? checksum : "");
}

static const struct svc_migration_applied *find_applied(const struct svc_migration_list *l,
                                                        int version)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].version == version)
            return &l->items[i];
    return NULL;
}

static bool known(const struct svc_migration *migrations, int version)
{
    for (const struct svc_migration *m = migrations; m->name != NULL; m++)
        if (m->version == version)
            return true;
    return false;
}

/* The refusals of svc/migrate.h, all logged before any is returned: a start that fails shows
 * every reason at once. */
static int check(const struct svc_migration *migrations, const struct svc_migration_list *l,
                 const char *engine)
{
    int rc = 0;

    for (const struct svc_migration *m = migrations; m->name != NULL; m++) {
        const struct svc_migration_applied *a = find_applied(l, m->version);

        if (a != NULL && strcmp(a->checksum, m->sha256) != 0) {
            svc_log_error("%s: migration '%s' was changed after it was applied (checksum %s in "
                          "the database, %s in this binary): add a new migration instead",
                          engine, m->name, a->checksum, m->sha256);
            rc = SVC_EINTERNAL;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!known(migrations, l->items[i].version)) {
            svc_log_error("%s: migration %d '%s' in the database is unknown to this binary (a "
                          "newer version applied it): run that version or a newer one",
                          engine, l->items[i].version, l->items[i].name);
            rc = SVC_EINTERNAL;
        }
    }
    return rc;
}

int svc_migrate(const struct svc_migration *migrations, const struct svc_migrate_engine *e)
{
    struct svc_migration_list applied = {0};
    int rc, end;

    if ((rc = e->lock(e->ctx)) != 0)
        return rc;
    if ((rc = e->list(e->ctx, &applied)) == 0)
        rc = check(migrations, &applied, e->name);
    for (const struct svc_migration *m = migrations; rc == 0 && m->name != NULL; m++) {
        if (find_applied(&applied, m->version) != NULL)
            continue;
        rc = e->apply(e->ctx, m);
        if (rc == 0)
            rc = e->record(e->ctx, m);
        if (rc != 0) {
            svc_log_error("%s: migration '%s' not applied: %s", e->name, m->name,
                          svc_err_title(rc));
            if (rc != SVC_EUNAVAILABLE)
                rc = SVC_EINTERNAL;
            break;
        }
        svc_log_info("%s: migration '%s' applied", e->name, m->name);
    }
    end = e->unlock(e->ctx, rc == 0);
    if (rc == 0)
        rc = end;
    free(applied.items);
    return rc;
}
