/* dlq_cmd_dump.c — `spillway dlq dump` and `spillway dlq replay` (see
 * dlq_cmd.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dlq/dlq_int.h"
#include "dlq/dlq_tb.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/otlp_json.h"

#define DUMP_JSON_MAX (512u << 20)

/* Rejected area: the upstream's status and the start of its message. */
static int dump_note(dlq_recbuf *rb, const dlq_rec_hdr *h, buf *js)
{
    char note[DLQ_NOTE_MAX + 1];
    dlq_rec_note(rb, h, note, sizeof note);
    int rc = buf_printf(js, "\"status\":%u,\"message\":", (unsigned)h->status);
    if (rc == 0) rc = oj_append_jstring(js, note, strlen(note));
    if (rc == 0) rc = buf_append_str(js, ",");
    return rc;
}

static int dump_record(dlq_recbuf *rb, const char *name, uint64_t off, const dlq_rec_hdr *h,
                       int rejected, buf *js, FILE *out)
{
    item *it = NULL;
    int rc = dlq_rec_to_item(rb, h, &it);
    if (rc) return rc;
    buf_reset(js);
    rc = buf_printf(js, "{\"segment\":\"%s\",\"offset\":%" PRIu64 ",\"class\":\"%s\","
                    "\"signal\":\"%s\",\"items\":%u,\"recv_time_unix_nano\":\"%" PRId64 "\",",
                    name, off, sw_class_name((sw_class)h->klass),
                    sw_signal_name((sw_signal)h->signal), h->count, h->recv_wall_ns);
    if (rc == 0 && rejected) rc = dump_note(rb, h, js);
    if (rc == 0) rc = buf_append_str(js, "\"request\":");
    size_t mark = js->len;
    if (rc == 0 && oj_pb_to_json((sw_signal)it->signal, it->data, it->len, js) != 0) {
        js->len = mark;
        rc = buf_append_str(js, "null,\"request_error\":\"not a decodable request\"");
    }
    if (rc == 0) rc = buf_append_str(js, "}\n");
    if (rc == 0 && fwrite(js->data, 1, js->len, out) != js->len) rc = SW_EIO;
    item_free(it);
    return rc;
}

/* Dumps the verified records of one segment. 0, SW_EDECODE (corrupt: the
 * reason is logged), or another SW_E*. */
static int dump_segment(dlq_recbuf *rb, int dirfd, const char *name, int rejected, buf *js,
                        FILE *out)
{
    dlq_seg_hdr h;
    uint64_t size = 0, seq = 0, off = DLQ_SEG_HDR_LEN;
    const char *why = "not a segment file name";
    int fd = -1, rc = SW_EDECODE;
    if (dlq_seg_name_parse(name, &seq) != 0) goto out;
    if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)) < 0) return SW_EIO;
    rc = dlq_seg_read_hdr(fd, &h, &size, &why);
    int sealed = rc == 0 && (h.flags & DLQ_SEG_SEALED);
    if (sealed) rc = dlq_seg_verify_body(fd, &h, size, &why);
    for (uint64_t idx = 0; rc == 0 && off < size; idx++) {
        dlq_rec_hdr rh;
        rc = dlq_seg_read_rec(rb, fd, off, size, idx, &rh, &why);
        if (rc == SW_EDECODE && !sealed) { /* torn tail of the open segment */
            rc = 0;
            break;
        }
        if (rc == 0) rc = dump_record(rb, name, off, &rh, rejected, js, out);
        if (rc == 0) off += dlq_rec_size(&rh);
    }
out:
    if (fd >= 0) close(fd);
    if (rc == SW_EDECODE) LOG_ERROR("segment %s skipped: %s", name, why ? why : "corrupt");
    return rc;
}

static int dump_area(const char *dir, int rejected, FILE *out)
{
    struct dirent **names = NULL;
    buf js;
    buf_init(&js, DUMP_JSON_MAX);
    int n = -1, rc = 1, bad = 0;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dlq_recbuf *rb = dlq_recbuf_new();
    if (dirfd < 0 || !rb || (n = dlq_cmd_list_dir(dir, "", &names)) < 0) {
        LOG_ERROR("cannot read DLQ directory %s: %s", dir, strerror(errno));
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int r = dump_segment(rb, dirfd, names[i]->d_name, rejected, &js, out);
        if (r == SW_EDECODE) bad++;
        else if (r) goto out;
    }
    rc = bad ? 1 : 0;
out:
    if (n > 0) dlq_cmd_free_names(names, n);
    dlq_recbuf_free(rb);
    buf_destroy(&js);
    if (dirfd >= 0) close(dirfd);
    return rc;
}

int dlq_cmd_dump(const char *dir, FILE *out)
{
    return dump_area(dir, 0, out);
}

int dlq_cmd_dump_rejected(const char *dir, FILE *out)
{
    char path[4096];
    int rc = dlq_cmd_rejected_path(dir, path, sizeof path);
    if (rc == SW_ENOTFOUND) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 0; /* nothing rejected */
        LOG_ERROR("cannot read DLQ directory %s", dir);
        return 1;
    }
    return rc ? 1 : dump_area(path, 1, out);
}

/* ---- replay ------------------------------------------------------------- */

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Sends with retries; 0 once accepted. */
static int send_retry(dlq_send_fn send, void *arg, const item *it)
{
    int64_t backoff = 1000000000;
    for (int attempt = 0; attempt < 5; attempt++) {
        if (attempt) {
            sleep_ns(backoff);
            backoff *= 2;
        }
        if (send(arg, (sw_signal)it->signal, it->data, it->len) == 0) return 0;
    }
    return SW_EIO;
}

static int replay_loop(dlq_reader *r, uint64_t rate, dlq_send_fn send, void *arg,
                       uint64_t *records, uint64_t *bytes)
{
    dlq_tb tb;
    dlq_tb_init(&tb, rate, 0, clock_mono_ns());
    for (;;) {
        item *it = NULL;
        dlq_pos pos;
        int rc = dlq_reader_next(r, &it, &pos);
        if (rc || !it) return rc;
        int64_t w;
        while (rate && (w = dlq_tb_wait_ns(&tb, it->len, clock_mono_ns())) > 0) sleep_ns(w);
        if (rate) dlq_tb_take(&tb, it->len, clock_mono_ns());
        rc = send_retry(send, arg, it);
        if (rc == 0) {
            dlq_reader_ack(r, &pos);
            (*records)++;
            *bytes += it->len;
        }
        item_free(it);
        if (rc) return rc;
    }
}

int dlq_cmd_replay(const char *dir, uint64_t rate, dlq_send_fn send, void *arg, FILE *out)
{
    dlq_opts o = {.dir = dir, .segment_size = UINT64_MAX / 2, .max_size = UINT64_MAX / 2,
                  .compression_level = 3, .fsync = CFG_FSYNC_ALWAYS};
    dlq *d = NULL;
    dlq_reader *r = NULL;
    uint64_t records = 0, bytes = 0;
    int64_t t0 = clock_mono_ns();
    int rc = dlq_open(&o, NULL, &d);
    if (rc == 0) {
        dlq_wait_recovered(d);
        r = dlq_reader_new(d, 0, 0);
        rc = r ? replay_loop(r, rate, send, arg, &records, &bytes) : SW_ENOMEM;
    }
    dlq_reader_free(r);
    dlq_close(d);
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    fprintf(out, "replay: %" PRIu64 " records, %" PRIu64 " request bytes in %.2f s (%.0f B/s)%s%s\n",
            records, bytes, secs, secs > 0 ? (double)bytes / secs : 0.0, rc ? ": stopped: " : "",
            rc ? sw_strerror(rc) : "");
    return rc ? 1 : 0;
}
