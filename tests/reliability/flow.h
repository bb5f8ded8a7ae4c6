/*
 * flow: the registration -> welcome message flow of the local stack (user-svc, user-events,
 * message-svc, as `make up` runs them), for the reliability tests that break a consumer.
 */
#ifndef POLYGLOT_RELIABILITY_FLOW_H
#define POLYGLOT_RELIABILITY_FLOW_H

#include <stdint.h>
#include <sys/types.h>

/* Reads the stack's user-svc and message-svc ports from their env files and fails the test
 * unless both accept connections. */
void flow_urls(void);

/* POST /v1/users on the stack's user-svc with a fresh email; the new user's id into ID. */
void flow_register(const char *name, char id[64]);

/* The number of welcome messages in ID's inbox on the stack's message-svc, or -1 when the inbox
 * does not answer 200. */
int flow_welcomes(const char *id);

/* Waits until ID's inbox holds a welcome message, failing the test at DEADLINE_MS (svc_now_ms()
 * time); returns when it arrived (svc_now_ms()). */
int64_t flow_wait_welcome(const char *id, int64_t deadline_ms);

/* Waits until message-svc reports a lag of 0 on every partition it holds (kafka_consumer_lag),
 * failing the test after LIMIT_MS: a flow timed afterwards is not queued behind older events. */
void flow_catch_up(int limit_ms);

/* The state folder of the stack ($POLYGLOT_STATE, or the one CMake was configured with). */
const char *flow_state(void);

/* The pid in the stack's run/NAME.pid, or 0 when the file is missing or the process is not
 * running (a zombie counts as not running). */
pid_t flow_stack_pid(const char *name);

/* Whether the executable of process PID contains the bytes NEEDLE (a feature's string, to tell
 * which build runs). Fails the test when /proc/PID/exe cannot be read. */
int flow_exe_has(pid_t pid, const char *needle);

#endif
