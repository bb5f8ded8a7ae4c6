#include "svc/event.h"

#include "svc/error.h"
#include "svc/log.h"
#include "svc/uuid.h"
#include "testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID   "0b5c9a38-2f0e-4c43-9a8e-6f1c2d3e4f50"
#define TIME "2026-11-24T10:00:00.123Z"
#define TP   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* A valid envelope with attribute NAME replaced by the raw JSON VALUE (NULL: left out). */
static char *envelope_with(const char *name, const char *value)
{
    static const char *const names[] = {
        "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data", NULL};
    static const char *const values[] = {
        "\"1.0\"",  "\"" ID "\"",   "\"/user-svc\"",        "\"user.registered\"",
        "\"u-42\"", "\"" TIME "\"", "\"application/json\"", "{\"email\":\"a@b.c\"}"};
    struct svc_buf b = SVC_BUF_INIT;
    const char *sep = "{";

    for (int i = 0; names[i] != NULL; i++) {
        const char *v = strcmp(names[i], name) == 0 ? value : values[i];

        if (v == NULL)
            continue;
        svc_buf_addf(&b, "%s\"%s\":%s", sep, names[i], v);
        sep = ",";
    }
    svc_buf_addc(&b, '}');
    return svc_buf_detach(&b, NULL);
}

/* Parses TEXT, expecting CODE and MESSAGE. */
static void expect_refused(const char *text, int code, const char *message)
{
    struct svc_event *ev = (struct svc_event *)&ev;
    char err[SVC_EVENT_ERR_MAX] = "";

    ck_assert_int_eq(svc_event_parse(text, strlen(text), &ev, err, sizeof(err)), code);
    ck_assert_ptr_null(ev);
    ck_assert_str_eq(err, message);
}

static void expect_attr_refused(const char *name, const char *value, const char *message)
{
    char *text = envelope_with(name, value);

    expect_refused(text, SVC_EINVAL, message);
    free(text);
}

START_TEST(build_render_parse_roundtrip)
{
    struct svc_event *ev, *back;
    struct svc_buf b = SVC_BUF_INIT;
    char err[SVC_EVENT_ERR_MAX];
    int64_t ms;

    ev = svc_event_new(
        "user.registered", "/user-svc", "u-42",
        json_pack("{s:s, s:i, s:[i,i]}", "email", "a\"b@c.d", "credit", 100, "tags", 1, 2));
    ck_assert_ptr_nonnull(ev);
    ck_assert(svc_uuid_valid(ev->id));
    ck_assert_int_eq(ev->id[14], '4'); /* version 4 */
    ck_assert_uint_eq(strlen(ev->time), SVC_RFC3339_MS_LEN);
    ck_assert_int_eq(ev->time[SVC_RFC3339_MS_LEN - 1], 'Z');
    ck_assert(svc_rfc3339_parse(ev->time, &ms));
    ck_assert_str_eq(svc_event_key(ev), "u-42");
    ck_assert_int_eq(svc_event_set_traceparent(ev, TP), 0);

    ck_assert_int_eq(svc_event_render(ev, &b), 0);
    ck_assert_ptr_nonnull(strstr(b.data, "\"specversion\":\"1.0\""));
    ck_assert_ptr_nonnull(strstr(b.data, "\"datacontenttype\":\"application/json\""));
    ck_assert_ptr_nonnull(strstr(b.data, "\"email\":\"a\\\"b@c.d\""));

    ck_assert_int_eq(svc_event_parse(b.data, b.len, &back, err, sizeof(err)), 0);
    ck_assert_str_eq(back->id, ev->id);
    ck_assert_str_eq(back->source, "/user-svc");
    ck_assert_str_eq(back->type, "user.registered");
    ck_assert_str_eq(back->subject, "u-42");
    ck_assert_str_eq(back->time, ev->time);
    ck_assert_str_eq(back->datacontenttype, "application/json");
    ck_assert_str_eq(back->traceparent, TP);
    ck_assert(json_equal(back->data, ev->data));

    svc_event_free(back);
    svc_event_free(ev);
    svc_buf_release(&b);
}
END_TEST

START_TEST(ids_are_fresh_v4_uuids)
{
    char a[SVC_UUID_STR_LEN + 1], b[SVC_UUID_STR_LEN + 1];
    struct svc_uuid u;

    svc_uuid_v4_str(a);
    svc_uuid_v4_str(b);
    ck_assert_str_ne(a, b);
    ck_assert(svc_uuid_parse(a, strlen(a), &u));
    ck_assert_int_eq(u.bytes[6] >> 4, 4);
    ck_assert_int_eq(u.bytes[8] >> 6, 2);
    ck_assert(svc_uuid_valid("0B5C9A38-2F0E-4C43-9A8E-6F1C2D3E4F50"));
    ck_assert(svc_uuid_valid("01890a5d-ac96-774b-bcce-b302099a8057")); /* v7 is fine too */
    ck_assert(!svc_uuid_valid("0b5c9a38-2f0e-4c43-9a8e-6f1c2d3e4f5"));
    ck_assert(!svc_uuid_valid("0b5c9a38-2f0e-4c43-9a8e-6f1c2d3e4f500"));
    ck_assert(!svc_uuid_valid("0b5c9a382f0e4c439a8e6f1c2d3e4f50"));
    ck_assert(!svc_uuid_valid("0b5c9a38-2f0e-4c43-9a8e_6f1c2d3e4f50"));
    ck_assert(!svc_uuid_valid("0b5c9a38-2f0e-4c43-9a8e-6f1c2d3e4g50"));
    ck_assert(!svc_uuid_valid("{0b5c9a38-2f0e-4c43-9a8e-6f1c2d3e4f50}"));
    ck_assert(!svc_uuid_valid(""));
}
END_TEST

START_TEST(parses_a_minimal_envelope)
{
    char *text = envelope_with("datacontenttype", NULL);
    struct svc_event *ev;

    ck_assert_int_eq(svc_event_parse(text, strlen(text), &ev, NULL, 0), 0);
    ck_assert_str_eq(ev->datacontenttype, "application/json");
    ck_assert_ptr_null(ev->traceparent);
    ck_assert_str_eq(json_string_value(json_object_get(ev->data, "email")), "a@b.c");
    svc_event_free(ev);
    free(text);
}
END_TEST

START_TEST(refuses_missing_or_bad_attributes)
{
    expect_attr_refused("id", NULL, "attribute 'id' is missing");
    expect_attr_refused("id", "\"not-a-uuid\"", "attribute 'id' must be a UUID");
    expect_attr_refused("id", "42", "attribute 'id' must be a string");
    expect_attr_refused("specversion", NULL, "attribute 'specversion' is missing");
    expect_attr_refused("specversion", "\"0.3\"", "attribute 'specversion' must be \"1.0\"");
    expect_attr_refused("specversion", "\"1.0 \"", "attribute 'specversion' must be \"1.0\"");
    expect_attr_refused("specversion", "1.0", "attribute 'specversion' must be a string");
    expect_attr_refused("source", NULL, "attribute 'source' is missing");
    expect_attr_refused("type", "\"\"", "attribute 'type' must not be empty");
    expect_attr_refused("subject", NULL, "attribute 'subject' is missing");
    expect_attr_refused("subject", "null", "attribute 'subject' must be a string");
    expect_attr_refused("time", NULL, "attribute 'time' is missing");
    expect_attr_refused("time", "\"yesterday\"", "attribute 'time' must be an RFC 3339 date-time");
    expect_attr_refused("time", "\"2026-11-24 10:00:00Z\"",
                        "attribute 'time' must be an RFC 3339 date-time");
    expect_attr_refused("time", "\"2026-11-24T10:00:00\"",
                        "attribute 'time' must be an RFC 3339 date-time");
    expect_attr_refused("time", "\"2026-02-30T10:00:00Z\"",
                        "attribute 'time' must be an RFC 3339 date-time");
    expect_attr_refused("datacontenttype", "\"text/plain\"",
                        "attribute 'datacontenttype' must be \"application/json\"");
    expect_attr_refused("data", NULL, "attribute 'data' is missing");
    expect_attr_refused("data", "[1,2]", "attribute 'data' must be a JSON object");
    expect_attr_refused("data", "\"{}\"", "attribute 'data' must be a JSON object");
    expect_attr_refused("data", "null", "attribute 'data' must be a JSON object");
}
END_TEST

START_TEST(refuses_bad_traceparent)
{
    expect_attr_refused("subject", "\"u\",\"traceparent\":\"00-abc\"",
                        "attribute 'traceparent' must be a W3C traceparent");
    expect_attr_refused("subject",
                        "\"u\",\"traceparent\":"
                        "\"00-00000000000000000000000000000000-00f067aa0ba902b7-01\"",
                        "attribute 'traceparent' must be a W3C traceparent");
}
END_TEST

START_TEST(refuses_what_is_not_one_object)
{
    char err[SVC_EVENT_ERR_MAX];
    struct svc_event *ev;
    char *big;

    expect_refused("[]", SVC_EJSON, "envelope must be a JSON object");
    expect_refused("\"x\"", SVC_EJSON, "envelope must be a JSON object");
    ck_assert_int_eq(svc_event_parse("{\"id\":", 6, &ev, err, sizeof(err)), SVC_EJSON);
    ck_assert_msg(strncmp(err, "malformed JSON at line 1", 24) == 0, "got '%s'", err);
    ck_assert_int_eq(svc_event_parse("{\"a\":1,\"a\":2}", 13, &ev, err, sizeof(err)), SVC_EJSON);
    ck_assert_int_eq(svc_event_parse("", 0, &ev, err, sizeof(err)), SVC_EJSON);

    big = calloc(SVC_EVENT_MAX_BYTES + 1, 1);
    ck_assert_int_eq(svc_event_parse(big, SVC_EVENT_MAX_BYTES + 1, &ev, err, sizeof(err)),
                     SVC_ETOOBIG);
    ck_assert_ptr_null(ev);
    free(big);
}
END_TEST

START_TEST(build_refuses_bad_arguments)
{
    svc_log_set_level(SVC_LOG_FATAL); /* the refusals are logged; keep the test output quiet */
    ck_assert_ptr_null(svc_event_new("user.registered", "/user-svc", "", json_object()));
    ck_assert_ptr_null(svc_event_new(NULL, "/user-svc", "u-1", json_object()));
    ck_assert_ptr_null(svc_event_new("user.registered", "/user-svc", "u-1", json_array()));
    ck_assert_ptr_null(svc_event_new("user.registered", "/user-svc", "u-1", NULL));
}
END_TEST

START_TEST(traceparent_is_validated_when_set)
{
    struct svc_event *ev = svc_event_new("t", "/s", "k", json_object());

    ck_assert_int_eq(svc_event_set_traceparent(ev, "00-xyz"), SVC_EINVAL);
    ck_assert_ptr_null(ev->traceparent);
    ck_assert_int_eq(svc_event_set_traceparent(ev, TP), 0);
    ck_assert_int_eq(
        svc_event_set_traceparent(ev, "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        SVC_EINVAL);
    ck_assert_str_eq(ev->traceparent, TP);
    ck_assert_int_eq(svc_event_set_traceparent(ev, NULL), 0);
    ck_assert_ptr_null(ev->traceparent);
    svc_event_free(ev);
}
END_TEST

START_TEST(render_under_a_cap_leaves_buffer_unchanged)
{
    struct svc_event *ev = svc_event_new("t", "/s", "k", json_pack("{s:s}", "x", "yyyyyyyy"));
    struct svc_buf b;

    svc_buf_init(&b, 200);
    svc_buf_adds(&b, "prefix");
    ck_assert_int_eq(svc_event_render(ev, &b), SVC_ETOOBIG);
    ck_assert_str_eq(svc_buf_str(&b), "prefix");
    svc_buf_release(&b);
    svc_event_free(ev);
}
END_TEST

START_TEST(build_for_a_producer)
{
    static const char type[] = "user.registered", subject[] = "u-42";
    struct svc_event_out out;
    struct svc_event *back;
    char err[SVC_EVENT_ERR_MAX];

    ck_assert_int_eq(
        svc_event_build(&out, type, "/user-svc", subject, json_pack("{s:s}", "id", "u-42"), TP), 0);
    ck_assert(svc_uuid_valid(out.id));
    ck_assert_ptr_eq(out.type, type);
    ck_assert_ptr_eq(out.key, subject);
    ck_assert_int_eq(svc_event_parse(out.json.data, out.json.len, &back, err, sizeof(err)), 0);
    ck_assert_str_eq(back->id, out.id);
    ck_assert_str_eq(back->source, "/user-svc");
    ck_assert_str_eq(back->type, type);
    ck_assert_str_eq(back->subject, subject);
    ck_assert_str_eq(back->traceparent, TP);
    ck_assert_str_eq(json_string_value(json_object_get(back->data, "id")), "u-42");
    svc_event_free(back);
    svc_event_out_release(&out);

    /* A traceparent that is not one is left out; the event goes all the same. */
    ck_assert_int_eq(svc_event_build(&out, type, "/user-svc", subject, json_object(), "00-x"), 0);
    ck_assert_ptr_null(strstr(out.json.data, "traceparent"));
    svc_event_out_release(&out);

    /* What jansson could not build, or not an object: refused, and OUT still releasable. */
    ck_assert_int_eq(svc_event_build(&out, type, "/user-svc", subject, NULL, NULL), SVC_EINTERNAL);
    ck_assert_uint_eq(out.json.len, 0);
    svc_event_out_release(&out);
    ck_assert_int_eq(svc_event_build(&out, type, "/user-svc", subject, json_array(), NULL),
                     SVC_EINTERNAL);
    svc_event_out_release(&out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("envelope");

    tcase_add_test(tc, build_render_parse_roundtrip);
    tcase_add_test(tc, ids_are_fresh_v4_uuids);
    tcase_add_test(tc, parses_a_minimal_envelope);
    tcase_add_test(tc, refuses_missing_or_bad_attributes);
    tcase_add_test(tc, refuses_bad_traceparent);
    tcase_add_test(tc, refuses_what_is_not_one_object);
    tcase_add_test(tc, build_refuses_bad_arguments);
    tcase_add_test(tc, traceparent_is_validated_when_set);
    tcase_add_test(tc, render_under_a_cap_leaves_buffer_unchanged);
    tcase_add_test(tc, build_for_a_producer);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
