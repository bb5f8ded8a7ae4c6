#include "svc/consume.h"

#include "svc/error.h"
#include "testenv.h"

#include <stdio.h>
#include <string.h>

#define EV_ID "0b5c9a38-2f0e-4c43-9a8e-6f1c2d3e4f50"
#define ID    "7d444840-9dc0-11d1-b245-5ffdce74fad2"
#define ID_UC "7D444840-9DC0-11D1-B245-5FFDCE74FAD2"
#define OTHER "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define TIME  "2026-11-24T10:00:00.123Z"

/* What the handlers saw, zeroed before each test (setup). */
static struct {
    int calls, released;
    char id[SVC_JSON_UUID_SIZE], name[16];
    int64_t time_ms;
    char ev_id[SVC_UUID_STR_LEN + 1];
    void *arg;
} seen;

static int apply_rc; /* what apply answers */

static void setup(void)
{
    memset(&seen, 0, sizeof(seen));
    apply_rc = 0;
}

struct thing {
    char id[SVC_JSON_UUID_SIZE];
    const char *name;
};

static const struct svc_json_field thing_fields[] = {
    {"id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct thing, id)},
    {"name", SVC_JSON_STRING, .required = true, .min = 1, .max = 10,
     .offset = offsetof(struct thing, name)},
    {0},
};

static void count_release(void *p)
{
    (void)p;
    seen.released++;
}

static int apply_thing(const struct svc_event_in *in)
{
    const struct thing *t = in->data;

    seen.calls++;
    snprintf(seen.id, sizeof(seen.id), "%s", t->id);
    snprintf(seen.name, sizeof(seen.name), "%s", t->name);
    seen.time_ms = in->time_ms;
    snprintf(seen.ev_id, sizeof(seen.ev_id), "%s", in->ev->id);
    seen.arg = in->arg;
    /* Memory and a cleanup on the record's arena: both must be gone once the record is. */
    svc_arena_defer(in->arena, count_release, svc_arena_strdup(in->arena, t->name));
    return apply_rc;
}

static int apply_nothing(const struct svc_event_in *in)
{
    (void)in;
    seen.calls++;
    return apply_rc;
}

static const struct svc_event_handler table[] = {
    {"thing.made", .fields = thing_fields, .size = sizeof(struct thing), .subject = "id",
     .apply = apply_thing},
    {"thing.gone", .apply = apply_nothing},
    {"thing.odd", .fields = thing_fields, .size = sizeof(struct thing), .subject = "missing",
     .apply = apply_nothing},
    {0},
};

/* Dispatches the envelope TYPE about SUBJECT with DATA (raw JSON); REASON gets the reason. */
static enum svc_ev_result dispatch(const char *type, const char *subject, const char *data,
                                   struct svc_buf *reason)
{
    char json[1024];
    struct svc_kafka_record rec = {.topic = "things", .attempt = 1};

    snprintf(json, sizeof(json),
             "{\"specversion\":\"1.0\",\"id\":\"" EV_ID "\",\"source\":\"/thing-svc\","
             "\"type\":\"%s\",\"subject\":\"%s\",\"time\":\"" TIME "\","
             "\"datacontenttype\":\"application/json\",\"data\":%s}",
             type, subject, data);
    rec.value = json;
    rec.value_len = strlen(json);
    svc_buf_reset(reason);
    return svc_event_dispatch(table, &rec, reason, &seen);
}

static enum svc_ev_result dispatch_raw(const char *value, struct svc_buf *reason)
{
    struct svc_kafka_record rec = {.topic = "things", .attempt = 1, .value = value};

    rec.value_len = value != NULL ? strlen(value) : 0;
    svc_buf_reset(reason);
    return svc_event_dispatch(table, &rec, reason, &seen);
}

START_TEST(applies_the_decoded_data_with_an_arena_per_record)
{
    struct svc_buf reason = SVC_BUF_INIT;

    ck_assert_int_eq(
        dispatch("thing.made", ID, "{\"id\":\"" ID "\",\"name\":\"Hedy\",\"x\":1}", &reason),
        SVC_EV_DONE);
    ck_assert_str_eq(svc_buf_str(&reason), "");
    ck_assert_int_eq(seen.calls, 1);
    ck_assert_str_eq(seen.id, ID);
    ck_assert_str_eq(seen.name, "Hedy");
    ck_assert_int_eq(seen.time_ms, 1795514400123LL);
    ck_assert_ptr_eq(seen.arg, &seen);
    ck_assert_str_eq(seen.ev_id, EV_ID);
    ck_assert_int_eq(seen.released, 1);

    /* A UUID in capitals is the same id as the subject. */
    ck_assert_int_eq(dispatch("thing.made", ID, "{\"id\":\"" ID_UC "\",\"name\":\"Ada\"}", &reason),
                     SVC_EV_DONE);
    ck_assert_int_eq(seen.calls, 2);
    ck_assert_str_eq(seen.id, ID);
    ck_assert_int_eq(seen.released, 2);

    /* No field table: nothing read, applied all the same. */
    ck_assert_int_eq(dispatch("thing.gone", "any", "{}", &reason), SVC_EV_DONE);
    ck_assert_int_eq(seen.calls, 3);
    svc_buf_release(&reason);
}
END_TEST

START_TEST(types_not_in_the_table_are_done_untouched)
{
    struct svc_buf reason = SVC_BUF_INIT;

    ck_assert_int_eq(dispatch("wallet.credited", ID, "{\"whatever\":true}", &reason), SVC_EV_DONE);
    ck_assert_str_eq(svc_buf_str(&reason), "");
    ck_assert_int_eq(seen.calls, 0);
    svc_buf_release(&reason);
}
END_TEST

START_TEST(bad_envelopes_are_poison_with_the_reason)
{
    struct svc_buf reason = SVC_BUF_INIT;

    ck_assert_int_eq(dispatch_raw(NULL, &reason), SVC_EV_POISON);
    ck_assert_str_eq(svc_buf_str(&reason), "record without a value (a tombstone) is not an event");
    ck_assert_int_eq(dispatch_raw("not json", &reason), SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "not a CloudEvent: malformed JSON"));
    ck_assert_int_eq(dispatch_raw("{\"specversion\":\"1.0\",\"id\":\"x\"}", &reason),
                     SVC_EV_POISON);
    ck_assert_str_eq(svc_buf_str(&reason), "not a CloudEvent: attribute 'id' must be a UUID");
    ck_assert_int_eq(seen.calls, 0);
    svc_buf_release(&reason);
}
END_TEST

START_TEST(bad_data_is_poison_naming_the_field)
{
    struct svc_buf reason = SVC_BUF_INIT;

    ck_assert_int_eq(dispatch("thing.made", ID, "{\"id\":\"" ID "\"}", &reason), SVC_EV_POISON);
    ck_assert_str_eq(svc_buf_str(&reason),
                     "event '" EV_ID "' (thing.made): data field 'name' is required");
    ck_assert_int_eq(
        dispatch("thing.made", ID, "{\"id\":\"" ID "\",\"name\":\"far too long\"}", &reason),
        SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "data field 'name' must be"));
    ck_assert_int_eq(dispatch("thing.made", ID, "{\"id\":7,\"name\":\"N\"}", &reason),
                     SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "data field 'id' must be"));

    /* The data is about another entity than the subject (the Kafka key) says. */
    ck_assert_int_eq(dispatch("thing.made", OTHER, "{\"id\":\"" ID "\",\"name\":\"N\"}", &reason),
                     SVC_EV_POISON);
    ck_assert_str_eq(svc_buf_str(&reason), "event '" EV_ID "' (thing.made): data 'id' '" ID
                                           "' differs from subject '" OTHER "'");
    /* A table whose subject field it does not read. */
    ck_assert_int_eq(dispatch("thing.odd", ID, "{\"id\":\"" ID "\",\"name\":\"N\"}", &reason),
                     SVC_EV_POISON);
    ck_assert_str_eq(svc_buf_str(&reason), "event '" EV_ID "' (thing.odd): data has no 'missing' "
                                           "to match subject '" ID "'");
    ck_assert_int_eq(seen.calls, 0);
    svc_buf_release(&reason);
}
END_TEST

START_TEST(apply_decides_retry_or_poison)
{
    static const struct {
        int rc;
        enum svc_ev_result res;
    } cases[] = {
        {SVC_EUNAVAILABLE, SVC_EV_RETRY}, {SVC_ETIMEDOUT, SVC_EV_RETRY},
        {SVC_EAGAIN, SVC_EV_RETRY},       {SVC_ENOTFOUND, SVC_EV_POISON},
        {SVC_EINTERNAL, SVC_EV_POISON},
    };
    struct svc_buf reason = SVC_BUF_INIT;
    char want[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        apply_rc = cases[i].rc;
        ck_assert_int_eq(dispatch("thing.made", ID, "{\"id\":\"" ID "\",\"name\":\"N\"}", &reason),
                         cases[i].res);
        if (cases[i].res == SVC_EV_RETRY) {
            ck_assert_str_eq(svc_buf_str(&reason), "");
        } else {
            snprintf(want, sizeof(want), "event '" EV_ID "' (thing.made) not applied: %s",
                     svc_err_title(cases[i].rc));
            ck_assert_str_eq(svc_buf_str(&reason), want);
        }
        /* Whatever the answer, the record's arena is gone with it. */
        ck_assert_int_eq(seen.released, (int)i + 1);
    }
    svc_buf_release(&reason);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("consume");
    TCase *tc = tcase_create("dispatch");

    tcase_add_checked_fixture(tc, setup, NULL);

    tcase_add_test(tc, applies_the_decoded_data_with_an_arena_per_record);
    tcase_add_test(tc, types_not_in_the_table_are_done_untouched);
    tcase_add_test(tc, bad_envelopes_are_poison_with_the_reason);
    tcase_add_test(tc, bad_data_is_poison_naming_the_field);
    tcase_add_test(tc, apply_decides_retry_or_poison);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}
