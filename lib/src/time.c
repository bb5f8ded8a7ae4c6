#include "svc/time.h"

#include <errno.h>
#include <time.h>

int64_t svc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t svc_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void svc_sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int svc_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    int rc;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

bool svc_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec until;

    if (deadline_ms <= svc_now_ms())
        return false;
    until.tv_sec = (time_t)(deadline_ms / 1000);
    until.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    return pthread_cond_timedwait(cv, mu, &until) != ETIMEDOUT;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil),
 * so parsing needs neither timegm() nor the process's time zone. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* N decimal digits at *P, advanced past them; -1 when one is not a digit. */
static int digits(const char **p, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

bool svc_rfc3339_parse(const char *s, int64_t *epoch_ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, sec, ms = 0, off = 0;

    if (s == NULL)
        return false;
    if ((y = digits(&p, 4)) < 0 || !expect(&p, '-') || (mo = digits(&p, 2)) < 0 ||
        !expect(&p, '-') || (d = digits(&p, 2)) < 0)
        return false;
    if (*p != 'T' && *p != 't')
        return false;
    p++;
    if ((h = digits(&p, 2)) < 0 || !expect(&p, ':') || (mi = digits(&p, 2)) < 0 ||
        !expect(&p, ':') || (sec = digits(&p, 2)) < 0)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return false;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
        return false;
    if (*p == '.') {
        int n = 0;

        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                ms = ms * 10 + (*p - '0');
        if (n == 0)
            return false;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;

        p++;
        if ((oh = digits(&p, 2)) < 0 || !expect(&p, ':') || (om = digits(&p, 2)) < 0)
            return false;
        if (oh > 23 || om > 59)
            return false;
        off = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    if (epoch_ms != NULL) {
        /* A leap second (:60) counts as the next second's start, as POSIX time has none. */
        int64_t secs =
            days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec;

        *epoch_ms = (secs - (int64_t)off * 60) * 1000 + ms;
    }
    return true;
}

/* Writes V as exactly N decimal digits (V must fit). */
static char *put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

void svc_rfc3339_format_ms(int64_t epoch_ms, char out[SVC_RFC3339_MS_LEN + 1])
{
    int64_t ms = epoch_ms % 1000;
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    char *p = out;

    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    gmtime_r(&secs, &tm);
    /* Digits by hand: the years a time_t can hold do not fit the fixed width, and the
     * compiler rightly warns that snprintf could truncate. Years past 9999 wrap. */
    p = put_digits(p, (tm.tm_year + 1900) % 10000, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, (int)ms, 3);
    *p++ = 'Z';
    *p = '\0';
}
