/*
 * Fuzz target: arbitrary bytes through an_sql_quote() (analytics_store.c), the one way a value
 * from outside reaches analytics-svc's SQL. Whatever the input, the output must be a single
 * string literal: it starts and ends with a quote, holds no quote that is not escaped and only
 * printable ASCII, and decodes (\\, \', \xHH) back to exactly the input.
 */
#include "analytics_svc.h"

#include "svc/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct svc_buf b = SVC_BUF_INIT;
    unsigned char *back = malloc(size + 1);
    size_t n = 0, end;

    if (back == NULL)
        abort();
    an_sql_quote(&b, (const char *)data, size);
    if (b.len < 2 || b.data[0] != '\'' || b.data[b.len - 1] != '\'')
        abort();
    end = b.len - 1; /* the closing quote */
    for (size_t i = 1; i < end; i++) {
        char c = b.data[i];

        if (c < 0x20 || c > 0x7e || c == '\'')
            abort(); /* not printable ASCII, or a quote that ends the literal early */
        if (c != '\\') {
            back[n++] = (unsigned char)c;
            continue;
        }
        if (++i >= end)
            abort(); /* a backslash would escape the closing quote */
        c = b.data[i];
        if (c == '\\' || c == '\'') {
            back[n++] = (unsigned char)c;
        } else if (c == 'x' && i + 2 < end && hex_digit(b.data[i + 1]) >= 0 &&
                   hex_digit(b.data[i + 2]) >= 0) {
            back[n++] = (unsigned char)(hex_digit(b.data[i + 1]) * 16 + hex_digit(b.data[i + 2]));
            i += 2;
        } else {
            abort(); /* an escape ClickHouse would read otherwise */
        }
    }
    if (n != size || (size > 0 && memcmp(back, data, size) != 0))
        abort();
    free(back);
    svc_buf_release(&b);
    return 0;
}
