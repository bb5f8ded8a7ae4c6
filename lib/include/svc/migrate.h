/*
 * svc/migrate.h: schema migrations for any engine.
 *
 * A service keeps every schema change in <svc>/migrations/ as NNN_name.<ext> (SQL for
 * PostgreSQL, JSON steps for MongoDB, ...). cmake/Service.cmake compiles the folder into a
 * table of struct svc_migration (version order, sentinel {0}), each with its file's SHA-256.
 * At start-up the store calls svc_migrate() with that table and its engine's callbacks; the
 * runner applies what the database lacks, in version order, and records each with its checksum.
 *
 * It refuses to start (SVC_EINTERNAL, with a log line naming the migration) when:
 *   - a migration recorded in the database has another checksum than the binary's: the file was
 *     edited after it was applied; the fix is a new migration, never an edit;
 *   - the database records a version this binary does not have: it was migrated by a newer
 *     binary, whose schema this one does not know.
 * Both are checked before anything is applied.
 */
#ifndef SVC_MIGRATE_H
#define SVC_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

/* Length of a hex SHA-256, without the NUL. */
#define SVC_MIGRATION_SUM_LEN 64

/* One embedded migration. Every pointer is static data of the binary. */
struct svc_migration {
    int version;        /* NNN of the file name, > 0 */
    const char *name;   /* the file name: "001_init.sql" */
    const char *sha256; /* of the file, lowercase hex */
    const char *text;   /* the file, NUL-terminated */
};

/* What the database records of one applied migration. */
struct svc_migration_applied {
    int version;
    char name[128];                           /* as recorded; may be cut */
    char checksum[SVC_MIGRATION_SUM_LEN + 1]; /* as recorded; may be cut */
};

/* The applied migrations, filled by the engine's list callback through
 * svc_migration_applied_add(). Owned by the runner. */
struct svc_migration_list {
    struct svc_migration_applied *items;
    size_t n, cap;
};

/* Adds one recorded migration to L (copies NAME and CHECKSUM, cut to their fields; NULL is ""). */
void svc_migration_applied_add(struct svc_migration_list *l, int version, const char *name,
                               const char *checksum);

/*
 * An engine's side. Every callback returns 0 or a negative SVC_E*, and logs its own driver
 * errors (the runner adds which migration it was).
 *   lock    takes the migration lock, exclusive across replicas (waiting for it), and makes
 *           sure the record of applied migrations exists. On PostgreSQL it also opens the one
 *           transaction every later call runs in.
 *   unlock  releases the lock: COMMIT true after success, false after a failure (roll back
 *           where the engine can). Called once after every successful lock; its error is
 *           returned when the run had none.
 *   list    adds every recorded migration to the list.
 *   apply   applies one migration's text.
 *   record  records one applied migration (version, name, checksum).
 */
struct svc_migrate_engine {
    const char *name; /* the engine, for log lines: "postgres" */
    void *ctx;
    int (*lock)(void *ctx);
    int (*unlock)(void *ctx, bool commit);
    int (*list)(void *ctx, struct svc_migration_list *applied);
    int (*apply)(void *ctx, const struct svc_migration *m);
    int (*record)(void *ctx, const struct svc_migration *m);
};

/*
 * Brings the database of E up to MIGRATIONS (ending with {0}): under E's lock, checks what is
 * recorded (see the top of this file), then applies and records each missing migration in
 * version order, stopping at the first that fails. Logs one line per migration applied.
 * Returns 0; SVC_EINTERNAL for a refusal or a migration that failed (SVC_EUNAVAILABLE when the
 * engine went away); or what lock/list/unlock returned.
 */
int svc_migrate(const struct svc_migration *migrations, const struct svc_migrate_engine *e);

#endif
