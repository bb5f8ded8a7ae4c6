/*
 * testproblems: the problem types a service can answer, checked against what documents them,
 * so that neither its openapi.yaml nor docs/architecture.md drifts from the error tables
 * (lib's svc_errors and the service's svc_def.errors).
 *
 * What a service can answer: lib's common problems, which lib itself renders on any service
 * with JSON routes and an engine (SVC_EINVAL, SVC_EJSON, SVC_ENOTFOUND, SVC_EMETHOD,
 * SVC_ETOOBIG, SVC_EMEDIATYPE, SVC_EUNAVAILABLE, SVC_EINTERNAL); the lib codes its handlers
 * answer besides (the caller lists them); and its own errors.
 */
#ifndef POLYGLOT_TESTPROBLEMS_H
#define POLYGLOT_TESTPROBLEMS_H

#include "svc/error.h"

/*
 * Fails the running Check test unless the problem types the OpenAPI document DOC
 * (NUL-terminated) names as `urn:polyglot:problem:<slug>` are exactly those the service can
 * answer (lib's common ones, the lib codes of USES, which ends with SVC_OK, and every error of
 * ERRORS, which ends with SVC_ERRORS_END), and unless DOC describes each as "`<slug>` (<status>)"
 * with the status the tables give it.
 */
void testproblems_check_openapi(const char *doc, const int *uses, const struct svc_err_def *errors);

/*
 * Fails the running Check test unless the "Problem types" table of docs/architecture.md (rows
 * "| `<slug>` | <status> | <from> |") agrees with the error tables. OWNER "lib" with lib's
 * svc_errors: every lib error has a row with its status, and every other row's <from> names a
 * service folder ("user-svc: ..."), whose own test checks it. OWNER a service with its ERRORS:
 * each has a row with its status, and every row from OWNER that is not lib's is one of them.
 */
void testproblems_check_docs(const char *owner, const struct svc_err_def *errors);

#endif
