/*
 * error.h: the one error contract of the platform.
 *
 * Actions return 0 (SVC_OK) or a negative SVC_E* code. Every code has an HTTP status, a short
 * title, and a problem type (the last part of the RFC 9457 `type` URI), all from the one
 * X-macro table below, so a code means the same thing in every service and every log line.
 * Driver errors are translated into these codes once, in the store file that talks to the
 * driver; above the store only SVC_E* travels.
 */
#ifndef SVC_ERROR_H
#define SVC_ERROR_H

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
    X(EAGAIN,            -21,    503,    "unavailable",          "Try again later")

enum svc_err {
#define SVC__ERR_ENUM(name, value, status, type, title) SVC_##name = (value),
    SVC_ERRNO_MAP(SVC__ERR_ENUM)
#undef SVC__ERR_ENUM
};

/* The HTTP status for CODE; 500 for a code not in the table. */
int svc_err_status(int code);

/* The enum name without the prefix ("ENOTFOUND"); "EUNKNOWN" for a code not in the table.
 * Static storage. */
const char *svc_err_name(int code);

/* The short human title ("Not found"). Static storage. */
const char *svc_err_title(int code);

/* The problem type slug ("not-found"), appended to the problem base URI. Static storage. */
const char *svc_err_type(int code);

#endif
