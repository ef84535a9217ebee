/* dlq_seg_file.c — segment creation, sealing, quarantine (see dlq_seg.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_seg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

int64_t dlq_mono_to_wall(int64_t mono_ns)
{
    return mono_ns - clock_mono_ns() + clock_wall_ns();
}

int64_t dlq_wall_to_mono(int64_t wall_ns)
{
    return wall_ns - clock_wall_ns() + clock_mono_ns();
}

int dlq_sync_dir(int dirfd)
{
    if (fsync(dirfd) == 0) return 0;
    int err = errno;
    LOG_ERROR_RL(10, "fsync of the DLQ directory failed: %s", strerror(err));
    errno = err;
    return SW_EIO;
}

static int pwrite_full(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *d = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, d, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = ENOSPC;
            return SW_EIO;
        }
        d += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int dlq_seg_create(int dirfd, uint64_t seq, int64_t created_ns, int sync, int *fd)
{
    char name[DLQ_SEG_NAME_LEN + 1], tmp[DLQ_SEG_NAME_LEN + 8];
    uint8_t raw[DLQ_SEG_HDR_LEN];
    dlq_seg_hdr h = {.seq = seq, .created_ns = created_ns};
    dlq_seg_name(seq, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int err, rc = dlq_seg_hdr_encode(&h, raw);
    if (rc) return rc;
    int f = openat(dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f < 0) {
        err = errno;
        LOG_ERROR_RL(10, "cannot create segment %s: %s", tmp, strerror(err));
        errno = err;
        return SW_EIO;
    }
    rc = SW_EIO;
    if (pwrite_full(f, raw, sizeof raw, 0) != 0 || (sync && fsync(f) != 0)) {
        err = errno;
        LOG_ERROR_RL(10, "cannot write segment header %s: %s", tmp, strerror(err));
        goto fail;
    }
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        err = errno;
        LOG_ERROR_RL(10, "cannot rename %s to %s: %s", tmp, name, strerror(err));
        goto fail;
    }
    if (sync && dlq_sync_dir(dirfd) != 0) {
        err = errno;
        goto fail;
    }
    *fd = f;
    return 0;
fail:
    close(f);
    unlinkat(dirfd, tmp, 0);
    errno = err; /* the caller reports the first failure */
    return rc;
}

int dlq_seg_seal(int fd, const dlq_seg_hdr *h, int sync)
{
    uint8_t raw[DLQ_SEG_HDR_LEN];
    dlq_seg_hdr s = *h;
    s.flags |= DLQ_SEG_SEALED;
    int rc = dlq_seg_hdr_encode(&s, raw);
    if (rc) return rc;
    if (sync && fsync(fd) != 0) goto fail;
    if (pwrite_full(fd, raw, sizeof raw, 0) != 0) goto fail;
    if (sync && fsync(fd) != 0) goto fail;
    return 0;
fail:
    rc = errno;
    LOG_ERROR("cannot seal segment %016llx: %s", (unsigned long long)h->seq, strerror(rc));
    errno = rc;
    return SW_EIO;
}

static int ensure_quarantine_dir(int dirfd)
{
    if (mkdirat(dirfd, "quarantine", 0755) == 0 || errno == EEXIST) return 0;
    LOG_ERROR("cannot create quarantine/: %s", strerror(errno));
    return SW_EIO;
}

int dlq_quarantine(int dirfd, const char *name, const char *why, dlq_metrics *m)
{
    char dst[512];
    struct stat st;
    if (ensure_quarantine_dir(dirfd) != 0) return SW_EIO;
    snprintf(dst, sizeof dst, "quarantine/%s", name);
    for (int i = 1; fstatat(dirfd, dst, &st, AT_SYMLINK_NOFOLLOW) == 0 && i < 1000; i++)
        snprintf(dst, sizeof dst, "quarantine/%s.%d", name, i);
    if (renameat(dirfd, name, dirfd, dst) != 0) {
        LOG_ERROR("cannot move %s to quarantine: %s (reason: %s)", name, strerror(errno), why);
        return SW_EIO;
    }
    LOG_WARN("segment %s failed verification (%s): moved to %s", name, why, dst);
    if (m) metrics_add(&m->dlq_corrupt_segments, 1);
    return dlq_sync_dir(dirfd);
}
