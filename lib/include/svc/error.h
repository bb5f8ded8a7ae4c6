/*
 * error.h: the one error contract of the platform.
 *
 * Actions return 0 (SVC_OK) or a negative SVC_E* code. Every code has an HTTP status, a short
 * title, and a problem type (the last part of the RFC 9457 `type` URI), all from the one
 * X-macro table below, so a code means the same thing in every service and every log line.
 * Driver errors are translated into these codes once, in the store file that talks to the
 * driver; above the store only SVC_E* travels.
 *
 * A service's own errors (a payment larger than the balance) are declared in the same X-macro
 * form in its header, in a block of values of its own (user-svc -1001.., message-svc -2001..),
 * turned into a table with SVC_ERR_DEF and handed to lib as svc_def.errors:
 *
 *     #define USER_ERRNO_MAP(X) \
 *         X(EFUNDS, -1001, 409, "insufficient-funds", "Insufficient funds")
 *     const struct svc_err_def user_errors[] = {USER_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};
 *
 * Once registered (svc_server_start() and svc_main() do it), svc_err_*() and svc_resp_error()
 * know them as they know lib's, so a handler ends with
 * `return svc_resp_error(resp, USER_EFUNDS, "...");` and never spells a status or a slug.
 */
#ifndef SVC_ERROR_H
#define SVC_ERROR_H

/* clang-format off */
/*      name              value  status  problem type            title */
#define SVC_ERRNO_MAP(X)                                                                           \
    X(OK,                  0,    200,    "ok",                   "OK")                             \
    X(EINVAL,             -1,    400,    "invalid-request",      "Invalid request")                \
    X(EJSON,              -2,    400,    "malformed-json",       "Malformed JSON")                 \
    X(EUNAUTH,            -3,    401,    "unauthenticated",      "Authentication required")        \
    X(EFORBIDDEN,         -4,    403,    "forbidden",            "Forbidden")                      \
    X(ENOTFOUND,          -5,    404,    "not-found",            "Not found")                      \
    X(EMETHOD,            -6,    405,    "method-not-allowed",   "Method not allowed")             \
    X(ENOTACCEPTABLE,     -7,    406,    "not-acceptable",       "Not acceptable")                 \
    X(ECONFLICT,          -8,    409,    "conflict",             "Conflict")                       \
    X(EGONE,              -9,    410,    "gone",                 "Gone")                           \
    X(EPRECONDITION,     -10,    412,    "precondition-failed",  "Precondition failed")            \
    X(ETOOBIG,           -11,    413,    "payload-too-large",    "Payload too large")              \
    X(EMEDIATYPE,        -12,    415,    "unsupported-media-type", "Unsupported media type")       \
    X(EUNPROCESSABLE,    -13,    422,    "unprocessable",        "Unprocessable content")          \
    X(EPRECONDREQUIRED,  -14,    428,    "precondition-required", "Precondition required")         \
    X(ETOOMANY,          -15,    429,    "too-many-requests",    "Too many requests")              \
    X(EINTERNAL,         -16,    500,    "internal",             "Internal error")                 \
    X(EBADGATEWAY,       -17,    502,    "bad-gateway",          "Bad gateway")                    \
    X(EUNAVAILABLE,      -18,    503,    "unavailable",          "Service unavailable")            \
    X(ETIMEDOUT,         -19,    504,    "dependency-timeout",   "Dependency timed out")           \
    X(ENOMEM,            -20,    500,    "internal",             "Out of memory")                  \
    X(EAGAIN,            -21,    503,    "unavailable",          "Try again later")           \
    X(EIDEMPOTENCY,      -22,    409,    "idempotency-key-reused", "Idempotency key reused")  \
    X(EREQTIMEOUT,       -23,    408,    "request-timeout",      "Request timeout")                \
    X(EURITOOLONG,       -24,    414,    "uri-too-long",         "URI too long")                   \
    X(EHEADERS,          -25,    431,    "header-fields-too-large", "Request header fields too large") \
    X(ENOTIMPL,          -26,    501,    "not-implemented",      "Not implemented")
/* clang-format on */

enum svc_err {
#define SVC__ERR_ENUM(name, value, status, type, title) SVC_##name = (value),
    SVC_ERRNO_MAP(SVC__ERR_ENUM)
#undef SVC__ERR_ENUM
};

/* One row of an error table: lib's (svc_errors) or a service's (svc_def.errors). */
struct svc_err_def {
    int code;          /* negative (SVC_OK alone is 0) */
    int status;        /* the HTTP status it is answered with */
    const char *name;  /* the enum name without the service prefix: "EFUNDS" */
    const char *type;  /* the problem type slug: "insufficient-funds" */
    const char *title; /* the short title, the same for every problem of the type */
};

/* A row of an X-macro table in lib's form, as a struct svc_err_def initialiser. */
#define SVC_ERR_DEF(name, value, status, type, title) {value, status, #name, type, title},
/* clang-format off */
#define SVC_ERRORS_END {0, 0, NULL, NULL, NULL}
/* clang-format on */

/* lib's own table (SVC_ERRNO_MAP), SVC_OK first, ending with SVC_ERRORS_END. */
extern const struct svc_err_def svc_errors[];

/*
 * Makes the codes of TABLE (ends with SVC_ERRORS_END) known to svc_err_*() and so to
 * svc_resp_error(), for the life of the process: TABLE must have static storage and is never
 * copied. Registering the same table again is a no-op, so servers started in-process one after
 * another (tests) may each register it. Thread-safe; lookups take no lock. Returns 0, or
 * SVC_EINVAL (logged) when a code is not negative, is lib's, appears twice, or belongs to a
 * table registered before with another meaning, or when more than 32 tables are registered.
 */
int svc_err_register(const struct svc_err_def *table);

/* The HTTP status for CODE (lib's or a registered service's); 500 for an unknown code. */
int svc_err_status(int code);

/* The enum name without the prefix ("ENOTFOUND", "EFUNDS"); "EUNKNOWN" for an unknown code.
 * Static storage. */
const char *svc_err_name(int code);

/* The short human title ("Not found"); "Internal error" for an unknown code. Static storage. */
const char *svc_err_title(int code);

/* The problem type slug ("not-found"), appended to the problem base URI; "internal" for an
 * unknown code. Static storage. */
const char *svc_err_type(int code);

#endif
