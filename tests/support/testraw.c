/* testraw: see testraw.h. */
#include "testraw.h"

#include "svc/time.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int testraw_dial(int host, int port, bool nonblock)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0), err;

    if (fd < 0)
        return -1;
    src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)host);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS)) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

bool testraw_send(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

char *testraw_read_all(int fd, int timeout_ms, bool *closed)
{
    int64_t deadline = svc_now_ms() + timeout_ms;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    bool eof = false;

    ck_assert_ptr_nonnull(buf);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - svc_now_ms();
        ssize_t r;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        if (cap - len < 2048) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        r = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0) {
            eof = true; /* closed, or reset: either way nothing more comes */
            break;
        }
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (closed != NULL)
        *closed = eof;
    return buf;
}

static bool status_line(const char *p)
{
    return strncmp(p, "HTTP/1.", 7) == 0 && p[7] != '\0' && p[8] == ' ' && p[9] >= '1' &&
           p[9] <= '5';
}

int testraw_responses(const char *buf)
{
    int n = 0;

    /* Anywhere, not only at a line's start: a body without a final newline runs straight into
     * the next response. */
    for (const char *p = strstr(buf, "HTTP/1."); p != NULL; p = strstr(p + 1, "HTTP/1."))
        if (status_line(p))
            n++;
    return n;
}

int testraw_status(const char *buf)
{
    return status_line(buf) ? (int)strtol(buf + 9, NULL, 10) : 0;
}

void testraw_nofile(long n)
{
    struct rlimit rl;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= (rlim_t)n)
        return;
    ck_assert_msg(rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)n,
                  "this test needs %ld open files; the hard limit (ulimit -Hn) is %llu", n,
                  (unsigned long long)rl.rlim_max);
    rl.rlim_cur = (rlim_t)n;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}
