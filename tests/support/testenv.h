/*
 * testenv: what integration and end-to-end tests know about the local stack.
 *
 * deploy/local writes one env file per service (<state>/env/<svc>.env) holding that service's
 * own connection settings. Tests read the same files, so they connect exactly as the service
 * will. The state folder is $POLYGLOT_STATE, or the one CMake was configured with.
 *
 * Nothing here skips: a missing env file or an engine that does not answer fails the calling
 * test with a message that names the engine and says how to start it.
 */
#ifndef POLYGLOT_TESTENV_H
#define POLYGLOT_TESTENV_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

/* testenv_run() runs suite S (taking ownership) and returns the process exit status. */
int testenv_run(Suite *s);

/*
 * testenv_get() returns the value of KEY in SVC's env file. Fails the running Check test when
 * the file or the key is missing. The returned string is owned by testenv and lives until the
 * process exits.
 */
const char *testenv_get(const char *svc, const char *key);

/*
 * testenv_parse_line() splits one env-file line "KEY=VALUE" in place. Returns false for blank
 * lines, comments and lines without '='; otherwise sets *key and *value (pointing into line,
 * with the trailing newline removed).
 */
bool testenv_parse_line(char *line, char **key, char **value);

/*
 * testenv_require_port() fails the running test unless something accepts TCP connections on
 * 127.0.0.1:PORT; ENGINE names what should be there, for the message.
 */
void testenv_require_port(const char *engine, int port);

/* testenv_port_of_url() returns the port in "scheme://[user[:pw]@]host:port[/...]", or -1. */
int testenv_port_of_url(const char *url);

/* testenv_unique() returns "PREFIX_<pid>_<counter>", a name no other test run uses. Owned by
 * testenv. */
const char *testenv_unique(const char *prefix);

#endif
