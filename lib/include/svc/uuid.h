/*
 * uuid.h: RFC 9562 UUIDs for event ids and request ids.
 *
 * New ids are version 4 (122 random bits from getrandom(2)). The parser accepts any UUID in
 * the canonical 8-4-4-4-12 hexadecimal form, in either case, whatever its version, so that
 * events from producers that use time-ordered (v7) ids are still accepted.
 */
#ifndef SVC_UUID_H
#define SVC_UUID_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the canonical text form, without the NUL. */
#define SVC_UUID_STR_LEN 36

struct svc_uuid {
    unsigned char bytes[16];
};

/* A new random (version 4, RFC 9562 variant) UUID. Never fails: when the kernel cannot give
 * random bytes the process logs and aborts, as for out-of-memory (alloc.h). */
void svc_uuid_v4(struct svc_uuid *out);

/* Writes U in canonical lowercase form ("0f8e...-...") plus a NUL into OUT. */
void svc_uuid_format(const struct svc_uuid *u, char out[SVC_UUID_STR_LEN + 1]);

/* A new v4 UUID straight to text: svc_uuid_v4() then svc_uuid_format(). */
void svc_uuid_v4_str(char out[SVC_UUID_STR_LEN + 1]);

/* Parses the N bytes at S, which must be exactly one canonical UUID (36 characters, hyphens
 * at 8, 13, 18 and 23, hexadecimal digits elsewhere, either case). Returns false for anything
 * else; OUT (may be NULL) is written only on success. */
bool svc_uuid_parse(const char *s, size_t n, struct svc_uuid *out);

/* svc_uuid_parse() on a NUL-terminated string, without keeping the value. */
bool svc_uuid_valid(const char *s);

#endif
