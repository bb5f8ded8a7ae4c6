/*
 * buf.h: a growable byte buffer (curl dynbuf, git strbuf) for building logs, metrics pages and
 * response bodies. Always NUL-terminated. Growth never fails (see alloc.h); a buffer may carry
 * a cap, past which appends are refused with SVC_ETOOBIG and the buffer is left as it was.
 */
#ifndef SVC_BUF_H
#define SVC_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct svc_buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len; /* bytes, not counting the NUL */
    size_t cap; /* allocated */
    size_t max; /* 0: unlimited */
};

#define SVC_BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* Prepares B with an optional cap MAX (0 for none). */
void svc_buf_init(struct svc_buf *b, size_t max);

/* Frees B's memory and leaves it empty and reusable. */
void svc_buf_release(struct svc_buf *b);

/* Empties B, keeping its memory. */
void svc_buf_reset(struct svc_buf *b);

/* Appends; 0 or SVC_ETOOBIG (cap exceeded; B unchanged). */
int svc_buf_add(struct svc_buf *b, const void *p, size_t n);
int svc_buf_adds(struct svc_buf *b, const char *s);
int svc_buf_addc(struct svc_buf *b, char c);
int svc_buf_addf(struct svc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int svc_buf_vaddf(struct svc_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Appends S as a JSON string literal, quotes included, escaping what RFC 8259 requires and
 * replacing invalid UTF-8 with U+FFFD. N is the length of S. */
int svc_buf_add_json_str(struct svc_buf *b, const char *s, size_t n);

/* Length of the valid UTF-8 sequence starting at S (N > 0 bytes available), or 0 when it is
 * not valid UTF-8 (overlong forms, surrogates and values past U+10FFFF included). */
size_t svc_utf8_len(const unsigned char *s, size_t n);

/* The contents ("" for an empty buffer, never NULL). Owned by B. */
const char *svc_buf_str(const struct svc_buf *b);

/* Hands the memory to the caller (free() it) and leaves B empty. Never NULL. */
char *svc_buf_detach(struct svc_buf *b, size_t *len);

#endif
