/* dlq_health.c — whether the DLQ's storage takes writes: the probe file,
 * the available / unavailable state and its re-probe back-off (see the
 * DESIGN paragraph in dlq.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

int dlq_available(dlq *d)
{
    return atomic_load(&d->avail);
}

int dlq_health(dlq *d, char *why, size_t len)
{
    int ok;
    pthread_mutex_lock(&d->mu);
    ok = atomic_load(&d->avail);
    if (why && len) snprintf(why, len, "%s", ok ? "available" : d->why);
    pthread_mutex_unlock(&d->mu);
    return ok;
}

int dlq_ready(void *arg, char *detail, size_t len)
{
    return dlq_health(arg, detail, len);
}

void dlq_health_fail(dlq *d, const char *what, int err, size_t len)
{
    metrics_add(&d->m->dlq_write_errors, 1);
    pthread_mutex_lock(&d->mu);
    int was = atomic_exchange(&d->avail, 0);
    snprintf(d->why, sizeof d->why, "%s: %s", what, err ? strerror(err) : "failed");
    pthread_mutex_unlock(&d->mu);
    metrics_gauge_set(&d->m->dlq_available, 0);
    size_t want = len < DLQ_PROBE_MIN ? DLQ_PROBE_MIN : len > DLQ_PROBE_MAX ? DLQ_PROBE_MAX : len;
    if (want > d->probe_len) d->probe_len = want;
    if (was) {
        d->probe_wait_ns = (int64_t)d->o.probe_ms * 1000000;
        d->probe_at_ns = clock_mono_ns() + d->probe_wait_ns;
        LOG_ERROR("DLQ %s unavailable: %s: %s; appends are refused (data stays with its "
                  "producer, intake answers 503) until a write succeeds again (re-probe every "
                  "%llu ms or more)", d->dir, what, err ? strerror(err) : "failed",
                  (unsigned long long)d->o.probe_ms);
    } else {
        LOG_ERROR_RL(10, "DLQ %s still unavailable: %s: %s", d->dir, what,
                     err ? strerror(err) : "failed");
    }
}

void dlq_health_ok(dlq *d)
{
    pthread_mutex_lock(&d->mu);
    int was = atomic_exchange(&d->avail, 1);
    d->why[0] = '\0';
    d->probe_req = 0;
    pthread_mutex_unlock(&d->mu);
    metrics_gauge_set(&d->m->dlq_available, 1);
    d->probe_len = 0;
    if (!was) LOG_INFO("DLQ %s available again: appends are taken", d->dir);
}

/* Writes len zero bytes at offset 0 through the injectable pwrite. */
static int probe_write(dlq *d, int fd, size_t len)
{
    static const uint8_t zero[65536];
    for (size_t off = 0; off < len;) {
        size_t n = len - off < sizeof zero ? len - off : sizeof zero;
        ssize_t w = d->o.pwrite(fd, zero, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = ENOSPC;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

int dlq_health_probe(dlq *d, size_t len)
{
    const char *what = "cannot create the probe file";
    int err = 0;
    int fd = openat(d->dirfd, DLQ_PROBE_NAME, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno;
        goto fail;
    }
    if (probe_write(d, fd, len) != 0) what = "cannot write the probe file", err = errno;
    else if (d->o.sync_fn(fd) != 0) what = "cannot fsync the probe file", err = errno;
    close(fd);
    if (unlinkat(d->dirfd, DLQ_PROBE_NAME, 0) != 0 && !err)
        what = "cannot remove the probe file", err = errno;
    if (!err) return 0;
fail:
    dlq_health_fail(d, what, err, len);
    return SW_EIO;
}

int64_t dlq_health_tick(dlq *d)
{
    if (atomic_load(&d->avail)) return 0;
    int64_t now = clock_mono_ns();
    pthread_mutex_lock(&d->mu);
    int req = d->probe_req;
    d->probe_req = 0;
    pthread_mutex_unlock(&d->mu);
    if (!req && now < d->probe_at_ns) return d->probe_at_ns - now;
    if (dlq_recover_pending(d) == 0 && dlq_health_probe(d, d->probe_len) == 0) {
        dlq_health_ok(d);
        return 0;
    }
    int64_t max = (int64_t)d->o.probe_ms * 1000000 * DLQ_PROBE_BACKOFF_MAX;
    if (!req) d->probe_wait_ns = d->probe_wait_ns * 2 > max ? max : d->probe_wait_ns * 2;
    d->probe_at_ns = clock_mono_ns() + d->probe_wait_ns;
    return d->probe_wait_ns;
}
