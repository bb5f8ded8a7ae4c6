#include "testenv.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef POLYGLOT_STATE_DIR
#error "POLYGLOT_STATE_DIR must be defined by the build"
#endif

/* Values handed out are kept for the life of the process (tests are short-lived), reachable
 * from this table so LeakSanitizer does not count them. */
static char *kept[4096];
static size_t nkept;

static char *keep(const char *s)
{
    char *p = strdup(s);

    ck_assert_msg(p != NULL, "out of memory");
    ck_assert_msg(nkept < sizeof(kept) / sizeof(kept[0]), "testenv: too many kept strings");
    kept[nkept++] = p;
    return p;
}

static const char *state_dir(void)
{
    const char *s = getenv("POLYGLOT_STATE");

    return s != NULL && s[0] != '\0' ? s : POLYGLOT_STATE_DIR;
}

bool testenv_parse_line(char *line, char **key, char **value)
{
    char *eq;
    size_t n = strlen(line);

    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (line[0] == '\0' || line[0] == '#')
        return false;
    eq = strchr(line, '=');
    if (eq == NULL || eq == line)
        return false;
    *eq = '\0';
    *key = line;
    *value = eq + 1;
    return true;
}

const char *testenv_get(const char *svc, const char *key)
{
    char path[4096], line[4096];
    char *k, *v;
    const char *found = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/env/%s.env", state_dir(), svc);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL,
                  "env file of '%s' missing (%s: %s): the local stack is not up, run `make up`",
                  svc, path, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL) {
        if (testenv_parse_line(line, &k, &v) && strcmp(k, key) == 0) {
            found = keep(v);
            break;
        }
    }
    fclose(f);
    ck_assert_msg(found != NULL, "'%s' missing from %s", key, path);
    return found;
}

void testenv_require_port(const char *engine, int port)
{
    struct sockaddr_in sa;
    int fd, rc, err;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    err = errno;
    close(fd);
    ck_assert_msg(rc == 0, "engine '%s' is not up on 127.0.0.1:%d (%s): run `make up`", engine,
                  port, strerror(err));
}

int testenv_port_of_url(const char *url)
{
    const char *p = strstr(url, "://");
    const char *at, *end, *colon = NULL;
    long port;
    char *stop;

    if (p == NULL)
        return -1;
    p += 3;
    end = p + strcspn(p, "/?");
    at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL)
        p = at + 1;
    for (const char *c = p; c < end; c++)
        if (*c == ':')
            colon = c;
    if (colon == NULL)
        return -1;
    errno = 0;
    port = strtol(colon + 1, &stop, 10);
    if (errno != 0 || stop != end || port <= 0 || port > 65535)
        return -1;
    return (int)port;
}

const char *testenv_unique(const char *prefix)
{
    static unsigned counter;
    char buf[256];

    snprintf(buf, sizeof(buf), "%s_%ld_%u", prefix, (long)getpid(), ++counter);
    return keep(buf);
}

int testenv_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
