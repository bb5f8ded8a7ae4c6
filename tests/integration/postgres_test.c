/*
 * PostgreSQL, as user-svc reaches it: libpq, the user_svc role, the users database.
 */
#include "testenv.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

static PGconn *connect_as_user_svc(void)
{
    const char *dsn = testenv_get("user-svc", "PG_DSN");
    PGconn *c;

    testenv_require_port("postgres", testenv_port_of_url(dsn));
    c = PQconnectdb(dsn);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "postgres: user_svc cannot connect: %s",
                  PQerrorMessage(c));
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);

    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "postgres: '%s' failed: %s", sql,
                  PQerrorMessage(c));
    PQclear(r);
}

START_TEST(user_svc_writes_and_reads_back)
{
    PGconn *c = connect_as_user_svc();
    const char *table = testenv_unique("it_pg");
    const char *params[2] = {"42", "grace@example.org"};
    char sql[256];
    PGresult *r;

    snprintf(sql, sizeof(sql), "CREATE TABLE %s (id int PRIMARY KEY, email text NOT NULL)", table);
    exec_ok(c, sql);

    snprintf(sql, sizeof(sql), "INSERT INTO %s (id, email) VALUES ($1::int, $2)", table);
    r = PQexecParams(c, sql, 2, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "insert: %s", PQerrorMessage(c));
    ck_assert_str_eq(PQcmdTuples(r), "1");
    PQclear(r);

    snprintf(sql, sizeof(sql),
             "SELECT email, current_user, current_database() FROM %s "
             "WHERE id = $1::int",
             table);
    r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "select: %s", PQerrorMessage(c));
    ck_assert_int_eq(PQntuples(r), 1);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "grace@example.org");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "user_svc");
    ck_assert_str_eq(PQgetvalue(r, 0, 2), "users");
    PQclear(r);

    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    exec_ok(c, sql);
    PQfinish(c);
}
END_TEST

START_TEST(user_svc_is_not_a_superuser)
{
    PGconn *c = connect_as_user_svc();
    PGresult *r = PQexec(c, "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = current_user");

    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "f");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "f");
    ck_assert_str_eq(PQgetvalue(r, 0, 2), "f");
    PQclear(r);
    PQfinish(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("postgres");
    TCase *tc = tcase_create("user_svc");

    tcase_add_test(tc, user_svc_writes_and_reads_back);
    tcase_add_test(tc, user_svc_is_not_a_superuser);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
