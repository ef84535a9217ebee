/* fuzz_dlq_segment.c — arbitrary bytes as the DLQ's only segment file.
 *
 * The input is written as <tmp>/0000000000000000.seg; the DLQ is opened
 * (header checks, quarantine, recovery of an open segment), every readable
 * record is read, and the offline verify and ls commands run. Nothing may
 * crash, and every record returned must be verified: the target re-checks
 * each one independently against the input bytes at the position the
 * reader reports (record header, SHA-256 of header and payload, zstd frame
 * decompressing to exactly the returned bytes, class, signal and count).
 * (SHA-256 here guards integrity, not authenticity: a fuzzer that learns a
 * hash from comparisons can forge a valid record, which is then correctly
 * accepted.)
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_cmd.h"
#include "dlq/dlq_fmt.h"
#include "runtime/log.h"

/* 1 if in[start, end) is a valid record whose content is exactly it. */
static int record_ok(const uint8_t *in, size_t size, uint64_t start, uint64_t end, const item *it)
{
    dlq_rec_hdr h;
    const char *why;
    uint8_t sum[DLQ_SHA256_LEN];
    if (end > size || end < start + DLQ_REC_HDR_LEN) return 0;
    if (dlq_rec_hdr_decode(in + start, &h, &why) != 0) return 0;
    if (h.clen != end - start - DLQ_REC_HDR_LEN || h.ulen != it->len) return 0;
    if (h.klass != it->klass || h.signal != it->signal || h.count != it->count) return 0;
    if (dlq_rec_hash(in + start, in + start + DLQ_REC_HDR_LEN, h.clen, sum) != 0 ||
        memcmp(sum, h.sha, DLQ_SHA256_LEN) != 0)
        return 0;
    uint8_t *out = malloc(it->len ? it->len : 1);
    if (!out) return 1;
    size_t n = ZSTD_decompress(out, it->len, in + start + DLQ_REC_HDR_LEN, h.clen);
    int ok = !ZSTD_isError(n) && n == it->len && memcmp(out, it->data, n) == 0;
    free(out);
    return ok;
}

static void read_all(dlq *d, const uint8_t *in, size_t size)
{
    uint64_t start = DLQ_SEG_HDR_LEN;
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    if (!r) return;
    for (int n = 0; n < 10000; n++) {
        item *it = NULL;
        dlq_pos pos;
        if (dlq_reader_next(r, &it, &pos) != 0 || !it) break;
        if (pos.seq != 0 || !record_ok(in, size, start, pos.off, it))
            abort();                     /* an unverified record got through */
        start = pos.off;
        dlq_reader_ack(r, &pos);
        item_free(it);
    }
    dlq_reader_free(r);
}

/* Removes dir/sub's files, then the directory itself. */
static void rm_dir(const char *dir)
{
    DIR *dd = opendir(dir);
    struct dirent *e;
    char p[512];
    while (dd && (e = readdir(dd)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR) rm_dir(p);
        else unlink(p);
    }
    if (dd) closedir(dd);
    rmdir(dir);
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    ssize_t w = size ? write(fd, data, size) : 0;
    close(fd);
    return w == (ssize_t)size ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[256], path[300];
    atomic_store(&log_level_now, -1); /* quiet: quarantine and cut logs are expected */
    snprintf(dir, sizeof dir, "%s/fuzz-dlq-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) return 0;
    snprintf(path, sizeof path, "%s/0000000000000000.seg", dir);
    if (write_file(path, data, size) == 0) {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            dlq_cmd_verify(dir, devnull);
            dlq_cmd_ls(dir, devnull);
            fclose(devnull);
        }
        dlq_opts o = {.dir = dir, .segment_size = 1 << 20, .max_size = 1 << 30,
                      .compression_level = 1, .fsync = CFG_FSYNC_NEVER};
        dlq *d = NULL;
        if (dlq_open(&o, NULL, &d) == 0) {
            dlq_wait_recovered(d);
            read_all(d, data, size);
            dlq_close(d);
        }
    }
    rm_dir(dir);
    return 0;
}
