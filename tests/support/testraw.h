/*
 * testraw: raw TCP clients for tests that send what libcurl will not (ambiguous framing, a body
 * that never ends, a header a byte at a time) and for floods of connections. Every connection
 * goes to 127.0.0.1 from an address of the loopback network chosen by the caller (127.0.0.2,
 * 127.0.0.3, ...), as clients on different machines would: the servers cap connections per
 * address.
 */
#ifndef POLYGLOT_TESTRAW_H
#define POLYGLOT_TESTRAW_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Opens a TCP connection from 127.0.0.HOST (1..254, any port) to 127.0.0.1:PORT. With NONBLOCK
 * the socket is non-blocking and the connection may still be in progress. Returns the socket,
 * or -1 with errno set (never fails the test: floods count failures themselves).
 */
int testraw_dial(int host, int port, bool nonblock);

/* Sends the N bytes at P on a blocking socket, without SIGPIPE. False when the peer is gone. */
bool testraw_send(int fd, const void *p, size_t n);

/*
 * Reads from FD until the peer closes the connection (or resets it) or TIMEOUT_MS have passed.
 * Returns what arrived, NUL-terminated, to free() (never NULL); *CLOSED, when not NULL, tells
 * whether the peer closed.
 */
char *testraw_read_all(int fd, int timeout_ms, bool *closed);

/* The number of HTTP responses in BUF: status lines "HTTP/1.x NNN " anywhere in it (a body
 * without a final newline runs into the next response). A body quoting a status line would
 * count too: the services' JSON bodies never do. */
int testraw_responses(const char *buf);

/* The status of the first response in BUF, or 0 when BUF does not start with one. */
int testraw_status(const char *buf);

/* Raises this process's soft RLIMIT_NOFILE to at least N (its children inherit it), failing the
 * test when the hard limit is lower. */
void testraw_nofile(long n);

#endif
