#include "svc/buf.h"

#include "svc/alloc.h"
#include "svc/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void svc_buf_init(struct svc_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void svc_buf_release(struct svc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void svc_buf_reset(struct svc_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static int reserve(struct svc_buf *b, size_t n)
{
    size_t want, cap;

    if (n > SIZE_MAX - b->len - 1)
        return SVC_ETOOBIG;
    want = b->len + n + 1;
    if (b->max != 0 && want - 1 > b->max)
        return SVC_ETOOBIG;
    if (want <= b->cap)
        return 0;
    cap = b->cap != 0 ? b->cap : 64;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    b->data = svc_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int svc_buf_add(struct svc_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);

    if (rc != 0)
        return rc;
    if (n != 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int svc_buf_adds(struct svc_buf *b, const char *s)
{
    return svc_buf_add(b, s, strlen(s));
}

int svc_buf_addc(struct svc_buf *b, char c)
{
    return svc_buf_add(b, &c, 1);
}

int svc_buf_vaddf(struct svc_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, rc;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return SVC_EINVAL;
    rc = reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int svc_buf_addf(struct svc_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = svc_buf_vaddf(b, fmt, ap);
    va_end(ap);
    return rc;
}

size_t svc_utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int svc_buf_add_json_str(struct svc_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t start = b->len, i = 0;
    int rc = svc_buf_addc(b, '"');

    while (rc == 0 && i < n) {
        unsigned char c = p[i];
        size_t len;

        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = svc_buf_add(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc = c == '\n'   ? svc_buf_add(b, "\\n", 2)
                 : c == '\t' ? svc_buf_add(b, "\\t", 2)
                 : c == '\r' ? svc_buf_add(b, "\\r", 2)
                             : svc_buf_add(b, esc, 6);
            i++;
        } else if ((len = svc_utf8_len(p + i, n - i)) == 0) {
            rc = svc_buf_add(b, "\xef\xbf\xbd", 3);
            i++;
        } else {
            rc = svc_buf_add(b, p + i, len);
            i += len;
        }
    }
    if (rc == 0)
        rc = svc_buf_addc(b, '"');
    if (rc != 0) {
        /* All or nothing: a half-written string would make the JSON invalid. */
        b->len = start;
        if (b->data != NULL)
            b->data[start] = '\0';
    }
    return rc;
}

const char *svc_buf_str(const struct svc_buf *b)
{
    return b->data != NULL ? b->data : "";
}

char *svc_buf_detach(struct svc_buf *b, size_t *len)
{
    char *p = b->data != NULL ? b->data : svc_strdup("");

    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
