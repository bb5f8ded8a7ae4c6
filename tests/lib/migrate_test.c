/*
 * The migration runner (svc/migrate.h) against an in-memory engine: what a database would hold
 * after each start, and what the log says when a start is refused.
 */
#include "svc/error.h"
#include "svc/log.h"
#include "svc/migrate.h"
#include "testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the fake engine ----------------------------------------------------------------------- */

#define MAX_APPLIED 16

struct fake {
    /* The database: what is recorded, and every text applied, in order. */
    struct {
        int version;
        char name[64], checksum[80];
    } rec[MAX_APPLIED];
    int nrec;
    char log[512];
    /* The run: the lock's state, and the failures to inject. */
    bool locked, committed, rolled_back;
    int fail_apply_version; /* apply of this version fails with fail_rc */
    int fail_rc;
    int lock_rc;
};

static int fk_lock(void *ctx)
{
    struct fake *f = ctx;

    if (f->lock_rc != 0)
        return f->lock_rc;
    ck_assert(!f->locked);
    f->locked = true;
    f->committed = f->rolled_back = false;
    return 0;
}

static int fk_unlock(void *ctx, bool commit)
{
    struct fake *f = ctx;

    ck_assert(f->locked);
    f->locked = false;
    if (commit)
        f->committed = true;
    else
        f->rolled_back = true;
    return 0;
}

static int fk_list(void *ctx, struct svc_migration_list *l)
{
    struct fake *f = ctx;

    ck_assert(f->locked);
    for (int i = 0; i < f->nrec; i++)
        svc_migration_applied_add(l, f->rec[i].version, f->rec[i].name, f->rec[i].checksum);
    return 0;
}

static int fk_apply(void *ctx, const struct svc_migration *m)
{
    struct fake *f = ctx;
    size_t len = strlen(f->log);

    ck_assert(f->locked);
    if (m->version == f->fail_apply_version)
        return f->fail_rc;
    snprintf(f->log + len, sizeof(f->log) - len, "%s;", m->text);
    return 0;
}

static int fk_record(void *ctx, const struct svc_migration *m)
{
    struct fake *f = ctx;

    ck_assert(f->locked);
    ck_assert_int_lt(f->nrec, MAX_APPLIED);
    f->rec[f->nrec].version = m->version;
    snprintf(f->rec[f->nrec].name, sizeof(f->rec[0].name), "%s", m->name);
    snprintf(f->rec[f->nrec].checksum, sizeof(f->rec[0].checksum), "%s", m->sha256);
    f->nrec++;
    return 0;
}

static struct svc_migrate_engine engine(struct fake *f)
{
    struct svc_migrate_engine e = {.name = "fake",
                                   .ctx = f,
                                   .lock = fk_lock,
                                   .unlock = fk_unlock,
                                   .list = fk_list,
                                   .apply = fk_apply,
                                   .record = fk_record};
    return e;
}

#define SUM1 "1111111111111111111111111111111111111111111111111111111111111111"
#define SUM2 "2222222222222222222222222222222222222222222222222222222222222222"
#define SUM3 "3333333333333333333333333333333333333333333333333333333333333333"

static const struct svc_migration two[] = {
    {1, "001_init.sql", SUM1, "create a"},
    {2, "002_more.sql", SUM2, "create b"},
    {0, NULL, NULL, NULL},
};

static const struct svc_migration three[] = {
    {1, "001_init.sql", SUM1, "create a"},
    {2, "002_more.sql", SUM2, "create b"},
    {5, "005_later.sql", SUM3, "create c"},
    {0, NULL, NULL, NULL},
};

/* Runs svc_migrate() with the log going to a string; returns its result. */
static int run(const struct svc_migration *ms, struct fake *f, char *logged, size_t cap)
{
    char path[] = "/tmp/migrate_test_XXXXXX";
    struct svc_migrate_engine e = engine(f);
    int fd = mkstemp(path), rc;
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    unlink(path);
    svc_log_set_fd(fd);
    rc = svc_migrate(ms, &e);
    svc_log_set_fd(-1);
    n = pread(fd, logged, cap - 1, 0);
    close(fd);
    logged[n > 0 ? n : 0] = '\0';
    ck_assert(!f->locked);
    return rc;
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(an_empty_database_gets_every_migration_in_order)
{
    struct fake f = {0};
    char log[4096];

    ck_assert_int_eq(run(three, &f, log, sizeof(log)), 0);
    ck_assert_str_eq(f.log, "create a;create b;create c;");
    ck_assert_int_eq(f.nrec, 3);
    ck_assert_int_eq(f.rec[2].version, 5);
    ck_assert_str_eq(f.rec[2].checksum, SUM3);
    ck_assert(f.committed);
    ck_assert_ptr_nonnull(strstr(log, "migration '005_later.sql' applied"));
}
END_TEST

START_TEST(a_second_start_applies_nothing_and_a_newer_binary_only_what_is_new)
{
    struct fake f = {0};
    char log[4096];

    ck_assert_int_eq(run(two, &f, log, sizeof(log)), 0);
    ck_assert_int_eq(run(two, &f, log, sizeof(log)), 0);
    ck_assert_str_eq(f.log, "create a;create b;");
    ck_assert_int_eq(f.nrec, 2);
    ck_assert_ptr_null(strstr(log, "applied"));
    ck_assert(f.committed);

    ck_assert_int_eq(run(three, &f, log, sizeof(log)), 0);
    ck_assert_str_eq(f.log, "create a;create b;create c;");
    ck_assert_int_eq(f.nrec, 3);
}
END_TEST

START_TEST(an_edited_migration_is_refused_before_anything_is_applied)
{
    struct fake f = {0};
    char log[4096];

    ck_assert_int_eq(run(two, &f, log, sizeof(log)), 0);
    snprintf(f.rec[0].checksum, sizeof(f.rec[0].checksum), "edited");
    ck_assert_int_eq(run(three, &f, log, sizeof(log)), SVC_EINTERNAL);
    /* 005 was not applied: the check comes first. */
    ck_assert_str_eq(f.log, "create a;create b;");
    ck_assert_int_eq(f.nrec, 2);
    ck_assert(f.rolled_back);
    ck_assert_ptr_nonnull(strstr(log, "migration '001_init.sql' was changed after it was applied "
                                      "(checksum edited in the database, " SUM1));
}
END_TEST

START_TEST(a_database_of_a_newer_binary_is_refused)
{
    struct fake f = {0};
    char log[4096];

    ck_assert_int_eq(run(three, &f, log, sizeof(log)), 0);
    ck_assert_int_eq(run(two, &f, log, sizeof(log)), SVC_EINTERNAL);
    ck_assert(f.rolled_back);
    ck_assert_ptr_nonnull(
        strstr(log, "migration 5 '005_later.sql' in the database is unknown to this binary"));
}
END_TEST

START_TEST(a_failure_midway_stops_there_and_says_which)
{
    struct fake f = {.fail_apply_version = 2, .fail_rc = SVC_EINVAL};
    char log[4096];

    ck_assert_int_eq(run(three, &f, log, sizeof(log)), SVC_EINTERNAL);
    ck_assert_str_eq(f.log, "create a;");
    ck_assert(f.rolled_back);
    ck_assert_ptr_nonnull(strstr(log, "migration '002_more.sql' not applied"));
    ck_assert_ptr_null(strstr(log, "005_later.sql"));

    /* An engine gone away stays "unavailable": the caller may try again later. */
    f = (struct fake){.fail_apply_version = 1, .fail_rc = SVC_EUNAVAILABLE};
    ck_assert_int_eq(run(two, &f, log, sizeof(log)), SVC_EUNAVAILABLE);
    ck_assert_int_eq(f.nrec, 0);

    /* Without the lock nothing is read or applied. */
    f = (struct fake){.lock_rc = SVC_EUNAVAILABLE};
    ck_assert_int_eq(run(two, &f, log, sizeof(log)), SVC_EUNAVAILABLE);
    ck_assert_str_eq(f.log, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("migrate");
    TCase *tc = tcase_create("runner");

    tcase_add_test(tc, an_empty_database_gets_every_migration_in_order);
    tcase_add_test(tc, a_second_start_applies_nothing_and_a_newer_binary_only_what_is_new);
    tcase_add_test(tc, an_edited_migration_is_refused_before_anything_is_applied);
    tcase_add_test(tc, a_database_of_a_newer_binary_is_refused);
    tcase_add_test(tc, a_failure_midway_stops_there_and_says_which);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
