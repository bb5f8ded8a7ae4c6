#include "testevents.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef POLYGLOT_ROOT
#error "POLYGLOT_ROOT: the checkout, for tools/validate-events and schemas/events"
#endif

int testevents_validate(const char *const *payloads, size_t n, char *out, size_t cap)
{
    char events[] = "/tmp/testevents_XXXXXX", cmd[1024];
    int fd = mkstemp(events), status;
    FILE *f, *p;
    size_t len = 0;

    ck_assert_msg(fd >= 0, "cannot create a file for the events");
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", payloads[i]);
    ck_assert_int_eq(fclose(f), 0);
    /* The system Python: the one python3-jsonschema is installed for, whatever venv is active. */
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/tools/validate-events %s 2>&1", POLYGLOT_ROOT,
             events);
    p = popen(cmd, "r"); /* NOLINT(cert-env33-c): running the validator is the point */
    ck_assert_msg(p != NULL, "cannot run '%s'", cmd);
    out[0] = '\0';
    while (len + 1 < cap && fgets(out + len, (int)(cap - len), p) != NULL)
        len += strlen(out + len);
    status = pclose(p);
    unlink(events);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
