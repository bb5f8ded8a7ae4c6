#include "svc/uuid.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static void random_bytes(unsigned char *p, size_t n)
{
    size_t got = 0;
    ssize_t r;

    while (got < n) {
        r = getrandom(p + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            /* Without random bytes there is no safe id to hand out, and no caller could do
             * better than stop: fail loudly, in the log's JSON shape, as alloc.c does. */
            fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"getrandom failed: %s\"}\n",
                    strerror(errno));
            abort();
        }
    }
}

void svc_uuid_v4(struct svc_uuid *out)
{
    random_bytes(out->bytes, sizeof(out->bytes));
    out->bytes[6] = (unsigned char)((out->bytes[6] & 0x0f) | 0x40); /* version 4 */
    out->bytes[8] = (unsigned char)((out->bytes[8] & 0x3f) | 0x80); /* variant 10 */
}

void svc_uuid_format(const struct svc_uuid *u, char out[SVC_UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;

    for (size_t i = 0; i < sizeof(u->bytes); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[u->bytes[i] >> 4];
        out[j++] = hex[u->bytes[i] & 0x0f];
    }
    out[j] = '\0';
}

void svc_uuid_v4_str(char out[SVC_UUID_STR_LEN + 1])
{
    struct svc_uuid u;

    svc_uuid_v4(&u);
    svc_uuid_format(&u, out);
}

bool svc_uuid_parse(const char *s, size_t n, struct svc_uuid *out)
{
    struct svc_uuid u;
    size_t k = 0;

    if (s == NULL || n != SVC_UUID_STR_LEN)
        return false;
    for (size_t i = 0; i < n;) {
        int hi, lo;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
            continue;
        }
        hi = svc__hexval(s[i]);
        lo = svc__hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        u.bytes[k++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    if (out != NULL)
        *out = u;
    return true;
}

bool svc_uuid_valid(const char *s)
{
    return s != NULL && svc_uuid_parse(s, strlen(s), NULL);
}
