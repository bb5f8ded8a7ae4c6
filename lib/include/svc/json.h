/*
 * json.h: request bodies in, response bodies out, on jansson.
 *
 * A handler parses its body with svc_json_parse() (size cap, duplicate keys rejected, a message
 * with line and column for malformed JSON), then reads it into a plain C struct described by a
 * static const field table with svc_json_read(), which checks types and bounds and names the
 * offending field in its error ("field 'items[2].qty' must be an integer ≥ 1"):
 *
 *   struct item { const char *sku; int64_t qty; };
 *   struct order { const char *email; struct item *items; size_t nitems; };
 *
 *   static const struct svc_json_field item_fields[] = {
 *       {"sku", SVC_JSON_STRING, .required = true, .min = 1, .max = 64,
 *        .offset = offsetof(struct item, sku)},
 *       {"qty", SVC_JSON_INT, .required = true, .min = 1, .max = 1000,
 *        .offset = offsetof(struct item, qty)},
 *       {0},
 *   };
 *   static const struct svc_json_field item = {
 *       .type = SVC_JSON_OBJECT, .fields = item_fields, .size = sizeof(struct item)};
 *   static const struct svc_json_field order_fields[] = {
 *       {"email", SVC_JSON_STRING, .required = true, .min = 3, .max = 254,
 *        .offset = offsetof(struct order, email)},
 *       {"items", SVC_JSON_ARRAY, .required = true, .min = 1, .max = 100, .elem = &item,
 *        .offset = offsetof(struct order, items), .count = offsetof(struct order, nitems)},
 *       {0},
 *   };
 *
 *   rc = svc_json_parse(body, len, max, SVC_JSON_PARSE_OBJECT, &root, &err);
 *   if (rc == 0) {
 *       svc_arena_defer(arena, svc_json_decref, root);
 *       rc = svc_json_read(root, order_fields, &order, SVC_JSON_REJECT_UNKNOWN, arena, &err);
 *   }
 *   if (rc != 0)
 *       return svc_resp_error(resp, rc, "%s", err.msg);
 *
 * Ownership: strings read (SVC_JSON_STRING) and values borrowed (SVC_JSON_ANY) point into the
 * json_t they were read from and live exactly as long as it does; register the root on the
 * request's arena, as above, and they live as long as the request. Arrays are allocated from
 * the arena given to svc_json_read(). UUIDs are copied into the destination struct. Nothing
 * read needs freeing on its own.
 */
#ifndef SVC_JSON_H
#define SVC_JSON_H

#include "svc/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct svc_arena;

/* svc_json_parse() flag: the top-level value must be an object. */
#define SVC_JSON_PARSE_OBJECT 0x1u

/* svc_json_read() flag: a member the table does not name is an error, at every depth ("field
 * 'note' is not allowed"). */
#define SVC_JSON_REJECT_UNKNOWN 0x2u

/* What a field holds, and what its destination slot is. */
enum svc_json_type {
    SVC_JSON_END = 0, /* the sentinel {0} */
    SVC_JSON_STRING,  /* const char *: .min/.max length in characters (code points), .max 0 for
                       * no limit. Valid UTF-8 without NUL characters; display text (.text)
                       * refuses more, see enum svc_json_text. */
    SVC_JSON_INT,     /* int64_t: a JSON integer (1.5 and 1.0 are refused) within
                       * [.min, .max]; both 0 for any int64. Use INT64_MIN or INT64_MAX for a
                       * one-sided bound ("an integer ≥ 1" is .min = 1, .max = INT64_MAX). */
    SVC_JSON_BOOL,    /* bool */
    SVC_JSON_NUMBER,  /* double: any JSON number within [.fmin, .fmax]; both 0 for any */
    SVC_JSON_UUID,    /* char[SVC_JSON_UUID_SIZE]: 8-4-4-4-12 hex digits, any case on input,
                       * stored in lowercase */
    SVC_JSON_ENUM,    /* int: the index of the value in .choices (NULL-terminated) */
    SVC_JSON_OBJECT,  /* a struct embedded at .offset, read with .fields; as an array element
                       * .size is sizeof that struct */
    SVC_JSON_ARRAY,   /* a pointer at .offset to .count items (a size_t at .count), each read
                       * as described by .elem; .min/.max items, .max 0 for no limit. Items of
                       * type SVC_JSON_ARRAY are not supported. */
    SVC_JSON_ANY,     /* json_t *: any value, borrowed from the document */
};

#define SVC_JSON_UUID_SIZE 37 /* 36 characters and the NUL */

/*
 * What a SVC_JSON_STRING may hold beyond valid UTF-8 (its .text). Strings that people will
 * read (names, titles, descriptions, tags, message subjects and bodies) are display text: a
 * bidirectional control can make "Ada\u202Egnp.exe" show as "Adaexe.png", and a zero-width
 * character makes two names that look the same different, so both are refused, with the field
 * and the character named ("field 'name' must not contain bidirectional controls (U+202E at
 * character 4)"). Identifiers, URLs, currency codes and opaque tokens keep SVC_JSON_TEXT_ANY.
 *
 * Refused by LINE and BLOCK alike: the bidirectional controls U+061C, U+200E, U+200F,
 * U+202A-U+202E and U+2066-U+2069; the zero-width characters U+200B-U+200D, U+2060 and
 * U+FEFF; the C1 controls U+0080-U+009F, DEL and the C0 controls except those BLOCK allows.
 * U+200C and U+200D are refused too although Persian words and emoji sequences use them: the
 * platform prefers a name that looks like what it is.
 */
enum svc_json_text {
    SVC_JSON_TEXT_ANY = 0, /* any UTF-8 without NUL (the default) */
    SVC_JSON_TEXT_LINE,    /* one line of display text: no C0 control at all */
    SVC_JSON_TEXT_BLOCK,   /* display text of several lines: tab, LF and CR are allowed */
};

/*
 * One member of a JSON object. Tables are static const arrays ending in {0}. Give the name
 * and type by position and everything else by designator, as above (which also keeps
 * -Wmissing-field-initializers quiet).
 *
 * An optional member that is absent, or null, leaves its slot as it was: initialise defaults
 * before reading. A required one that is absent or null is an error. null inside an array is
 * an error like any other wrong type.
 */
struct svc_json_field {
    /* By position: */
    const char *name; /* member name; NULL ends the table */
    enum svc_json_type type;
    /* By designator: */
    bool required;
    int64_t min, max;                    /* STRING, INT, ARRAY: see the types */
    double fmin, fmax;                   /* NUMBER */
    size_t offset;                       /* where the slot is in the destination struct */
    size_t count;                        /* ARRAY: offset of the size_t item count */
    size_t size;                         /* OBJECT as an array item: sizeof its struct */
    const struct svc_json_field *fields; /* OBJECT: its members */
    const struct svc_json_field *elem;   /* ARRAY: what each item is (its name is unused) */
    const char *const *choices;          /* ENUM: accepted strings, NULL-terminated */
    enum svc_json_text text;             /* STRING: display text or not (see above) */
};

#define SVC_JSON_PATH_MAX 128
#define SVC_JSON_MSG_MAX  320

/*
 * Why parsing or reading failed. MSG is the whole sentence for the client ("field
 * 'items[2].qty' must be an integer ≥ 1", "malformed JSON at line 1, column 7: invalid token
 * near 'x'"); PATH the field it is about ("items[2].qty", "" for the body itself); LINE and
 * COLUMN (from 1) where malformed JSON went wrong, 0 otherwise. Long paths and messages are
 * cut at a character boundary.
 */
struct svc_json_error {
    char path[SVC_JSON_PATH_MAX];
    char msg[SVC_JSON_MSG_MAX];
    int line, column;
};

/*
 * Parses the LEN bytes at BODY (no NUL needed) into *OUT, a new reference the caller releases
 * with json_decref() or registers with svc_arena_defer(a, svc_json_decref, *OUT). Duplicate
 * keys are refused; a NUL character (\u0000) in a string is refused, so every string is a C
 * string. With SVC_JSON_PARSE_OBJECT the body must be an object.
 *
 * Returns 0; SVC_ETOOBIG when LEN is over MAX (0: no cap) without looking at BODY; SVC_EJSON
 * when BODY is empty or not JSON; SVC_EINVAL when it is JSON but not the object asked for;
 * SVC_ENOMEM when jansson ran out of memory.
 * On error *OUT is NULL and ERR says why.
 */
int svc_json_parse(const char *body, size_t len, size_t max, unsigned flags, json_t **out,
                   struct svc_json_error *err);

/*
 * Reads object OBJ into the struct at DST as table FIELDS says (see struct svc_json_field),
 * stopping at the first problem. FLAGS: SVC_JSON_REJECT_UNKNOWN. Arrays are allocated from
 * ARENA, which may be NULL when the table has none.
 *
 * Returns 0; SVC_EINVAL when OBJ does not match the table, with the field and the rule in
 * ERR; SVC_EINTERNAL when the table itself is wrong (a bound with .min > .max, an ARRAY
 * without .elem, no arena for an array), also said in ERR. On error DST may be partly written.
 */
int svc_json_read(json_t *obj, const struct svc_json_field *fields, void *dst, unsigned flags,
                  struct svc_arena *arena, struct svc_json_error *err);

/*
 * Appends V to OUT as compact JSON, members in insertion order, non-ASCII characters as
 * UTF-8, reals with 15 significant digits (what a double holds exactly in decimal, so 0.1
 * stays 0.1; send exact quantities such as money as integers). Returns 0; SVC_ETOOBIG when
 * OUT's cap is reached, SVC_EINTERNAL when jansson cannot encode V (NULL, a cycle). On error
 * OUT is left as it was.
 */
int svc_json_dump(struct svc_buf *out, const json_t *v);

/* A new JSON string of EPOCH_MS as RFC 3339 in UTC with milliseconds (svc/time.h), for
 * "created_at"-like members. The caller owns the reference (json_pack's "o" takes it). */
json_t *svc_json_time(int64_t epoch_ms);

/* json_decref() with the signature svc_arena_defer() takes. */
void svc_json_decref(void *v);

#endif
