/* dlq_cursor.c — the replay cursor file <dir>/cursor (see docs/dlq-format.md).
 *
 *    0   8  magic "SWDLQCUR"
 *    8   4  version (1)
 *   12   4  reserved, zero
 *   16   8  segment sequence
 *   24   8  offset in that segment of the first unacknowledged record
 *   32  32  SHA-256 of bytes [0, 32)
 *
 * Written to cursor.tmp, fsync'd, renamed over cursor, directory fsync'd.
 */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/le.h"
#include "runtime/log.h"

#define CUR_LEN 64
#define CUR_MAGIC "SWDLQCUR"


int dlq_cursor_load(int dirfd, dlq_pos *pos)
{
    uint8_t raw[CUR_LEN + 1], sum[DLQ_SHA256_LEN];
    int fd = openat(dirfd, "cursor", O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return SW_ENOTFOUND;
    if (fd < 0) {
        LOG_ERROR("cannot open the replay cursor: %s", strerror(errno));
        return SW_EIO;
    }
    ssize_t n = read(fd, raw, sizeof raw);
    close(fd);
    if (n != CUR_LEN || memcmp(raw, CUR_MAGIC, 8) != 0 || raw[8] != 1 ||
        dlq_sha256_2(raw, 32, NULL, 0, sum) != 0 || memcmp(sum, raw + 32, DLQ_SHA256_LEN) != 0) {
        LOG_WARN("replay cursor is invalid: replay starts at the oldest segment");
        return SW_ENOTFOUND;
    }
    pos->seq = le_get64(raw + 16);
    pos->off = le_get64(raw + 24);
    pos->total = 0;
    return 0;
}

int dlq_cursor_store(int dirfd, const dlq_pos *pos, int sync)
{
    uint8_t raw[CUR_LEN] = {0};
    memcpy(raw, CUR_MAGIC, 8);
    raw[8] = 1;
    le_put64(raw + 16, pos->seq);
    le_put64(raw + 24, pos->off);
    int rc = dlq_sha256_2(raw, 32, NULL, 0, raw + 32);
    if (rc) return rc;
    int fd = openat(dirfd, "cursor.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) goto fail;
    if (write(fd, raw, sizeof raw) != (ssize_t)sizeof raw || (sync && fsync(fd) != 0)) {
        close(fd);
        goto fail;
    }
    close(fd);
    if (renameat(dirfd, "cursor.tmp", dirfd, "cursor") != 0) goto fail;
    return sync ? dlq_sync_dir(dirfd) : 0;
fail:
    LOG_ERROR_RL(5, "cannot write the replay cursor: %s", strerror(errno));
    return SW_EIO;
}
