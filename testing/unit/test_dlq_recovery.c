/* test_dlq_recovery.c — DLQ crash recovery (torn tails at every offset),
 * quarantine of corrupt and foreign files, and the offline commands. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_cmd.h"
#include "dlq/dlq_fmt.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "dlq/dlq_metrics.h"

static item *mk(uint32_t i, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (!d) abort();
    uint64_t x = 0x9E3779B97F4A7C15ull * (i + 1);
    for (size_t k = 0; k < len; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        d[k] = (k & 1) ? (uint8_t)x : (uint8_t)(k % 7);
    }
    item *it = item_new((sw_signal)((i / 3) % 3), (sw_class)(i % 3), i, clock_mono_ns(), d, len);
    free(d);
    if (!it) abort();
    return it;
}

static size_t len_of(uint32_t i) { return 50 + (i * 37) % 900; }

static void on_done(void *arg, item *it, int status)
{
    int *ok = arg;
    if (status == 0) (*ok)++;
    item_free(it);
}

static void opts_init(dlq_opts *o, const char *dir, uint64_t seg)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->segment_size = seg;
    o->max_size = 1ull << 30;
    o->compression_level = 3;
    o->fsync = CFG_FSYNC_NEVER;
}

static void append_n(dlq *d, uint32_t first, uint32_t n)
{
    int ok = 0;
    dlq_port *p = dlq_port_new(d);
    TH_ASSERT(p);
    for (uint32_t i = first; i < first + n; i++)
        TH_ASSERT_EQ_INT(dlq_append(p, mk(i, len_of(i)), on_done, &ok), 0);
    while (dlq_port_pending(p)) dlq_port_wait(p, 100);
    dlq_port_free(p);
    TH_ASSERT_EQ_INT(ok, (int)n);
}

/* Reads every readable record; checks they are first, first+1, ... */
static int read_check(dlq *d, const uint32_t *want, int nwant)
{
    dlq_wait_recovered(d); /* the writer thread's start-up scan */
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    int n = 0, idle = 0;
    while (idle < th_slow_ms(40)) { /* 80 ms idle, times SW_TEST_SLOW */
        item *it = NULL;
        dlq_pos pos;
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
        if (!it) {
            idle++;
            th_nap_ms(2);
            continue;
        }
        idle = 0;
        TH_ASSERT_MSG(n < nwant && it->count == want[n] && it->len == len_of(want[n]),
                      "record %d: count %u", n, it->count);
        item *w = mk(want[n], len_of(want[n]));
        TH_ASSERT(it->klass == w->klass && it->signal == w->signal);
        TH_ASSERT_MEM_EQ(it->data, w->data, it->len);
        item_free(w);
        item_free(it);
        n++;
    }
    dlq_reader_free(r);
    return n;
}

static void path_of(char *out, size_t len, const char *dir, uint64_t seq)
{
    char name[DLQ_SEG_NAME_LEN + 1];
    dlq_seg_name(seq, name);
    snprintf(out, len, "%s/%s", dir, name);
}

static int count_dir(const char *dir)
{
    DIR *dd = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (dd && (e = readdir(dd)) != NULL)
        if (e->d_name[0] != '.') n++;
    if (dd) closedir(dd);
    return n;
}

/* Writes n records into a fresh dir and returns the bytes of the still
 * open (unsealed) segment 0, as a crash would leave it. */
static uint8_t *open_segment_image(const char *dir, uint32_t n, size_t *len)
{
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    dlq *d = NULL;
    char p[512];
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_n(d, 0, n);
    path_of(p, sizeof p, dir, 0);
    uint8_t *img = (uint8_t *)th_read_file(p, len);
    dlq_close(d);
    TH_ASSERT(img && *len > DLQ_SEG_HDR_LEN);
    return img;
}

/* Offsets where each record starts in a segment image. */
static int record_starts(const uint8_t *img, size_t len, uint64_t *starts, int max)
{
    uint64_t off = DLQ_SEG_HDR_LEN;
    int n = 0;
    while (off + DLQ_REC_HDR_LEN <= len && n < max) {
        dlq_rec_hdr h;
        const char *why;
        if (dlq_rec_hdr_decode(img + off, &h, &why) != 0) break;
        starts[n++] = off;
        off += DLQ_REC_HDR_LEN + h.clen;
    }
    return n;
}

static void t_torn_tail_every_offset(void)
{
    char dir[256], p[512];
    size_t len = 0;
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    uint8_t *img = open_segment_image(dir, 6, &len);
    uint64_t starts[8];
    TH_ASSERT_EQ_INT(record_starts(img, len, starts, 8), 6);
    uint32_t want[6] = {0, 1, 2, 3, 4, 5};
    path_of(p, sizeof p, dir, 0);
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    for (uint64_t cut = starts[5]; cut <= len; cut++) {
        unlink(p);
        TH_ASSERT(th_write_file(p, img, cut) == 0);
        dlq *d = NULL;
        TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
        dlq_wait_recovered(d);
        uint64_t cut_want = cut == len ? 0 : cut - starts[5];
        TH_ASSERT_MSG(dlq_cut_bytes(d) == cut_want, "cut at %llu: %llu bytes cut",
                      (unsigned long long)cut, (unsigned long long)dlq_cut_bytes(d));
        TH_ASSERT_EQ_INT(read_check(d, want, 6), cut == len ? 6 : 5);
        dlq_close(d);
        unlink(p);
        char cur[600];
        snprintf(cur, sizeof cur, "%s/cursor", dir);
        unlink(cur);
    }
    /* A bad byte inside record 2 of the open segment: 0 and 1 survive. */
    img[starts[2] + DLQ_REC_HDR_LEN + 3] ^= 0x40;
    TH_ASSERT(th_write_file(p, img, len) == 0);
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    TH_ASSERT_EQ_INT(dlq_cut_bytes(d), len - starts[2]);
    TH_ASSERT_EQ_INT(read_check(d, want, 6), 2);
    dlq_close(d);
    free(img);
    th_rmtree(dir);
}

static void flip(const char *path, size_t off)
{
    size_t len = 0;
    char *b = th_read_file(path, &len);
    TH_ASSERT(b && off < len);
    b[off] ^= 0x10;
    TH_ASSERT(th_write_file(path, b, len) == 0);
    free(b);
}

/* Writes 4 sealed segments of 5 records each: seq k holds 5k..5k+4. */
static void four_segments(const char *dir)
{
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    for (uint32_t s = 0; s < 4; s++) {
        dlq *d = NULL;
        TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
        append_n(d, 5 * s, 5);
        dlq_close(d);                                   /* seals */
    }
}

static void t_flipped_byte_quarantined(void)
{
    char dir[256], p[512], q[600];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    four_segments(dir);
    path_of(p, sizeof p, dir, 1);
    flip(p, 700);                                       /* body of segment 1 */
    path_of(p, sizeof p, dir, 3);
    flip(p, 20);                                        /* header of segment 3 */
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_corrupt_segments), 1);   /* header: at open */
    uint32_t want[10] = {0, 1, 2, 3, 4, 10, 11, 12, 13, 14};
    TH_ASSERT_EQ_INT(read_check(d, want, 10), 10);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_corrupt_segments), 2);   /* body: before use */
    dlq_close(d);
    snprintf(q, sizeof q, "%s/quarantine", dir);
    TH_ASSERT_EQ_INT(count_dir(q), 2);
    snprintf(q, sizeof q, "%s/quarantine/0000000000000001.seg", dir);
    TH_ASSERT(access(q, F_OK) == 0);
    metrics_free(m);
    th_rmtree(dir);
}

static void t_bad_files_quarantined(void)
{
    char dir[256], p[512], q[600];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    four_segments(dir);
    path_of(p, sizeof p, dir, 0);
    size_t len = 0;
    char *good = th_read_file(p, &len);
    TH_ASSERT(good);
    path_of(p, sizeof p, dir, 0x10);
    TH_ASSERT(th_write_file(p, good, 50) == 0);         /* truncated header */
    path_of(p, sizeof p, dir, 0x11);
    TH_ASSERT(th_write_file(p, "", 0) == 0);            /* zero length */
    char junk[1000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 131 + 7);
    path_of(p, sizeof p, dir, 0x12);
    TH_ASSERT(th_write_file(p, junk, sizeof junk) == 0); /* garbage */
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    TH_ASSERT(th_write_file(p, junk, 10) == 0);         /* not a segment */
    free(good);
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_corrupt_segments), 4);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_segments), 4);
    uint32_t want[20];
    for (uint32_t i = 0; i < 20; i++) want[i] = i;
    TH_ASSERT_EQ_INT(read_check(d, want, 20), 20);
    dlq_close(d);
    snprintf(q, sizeof q, "%s/quarantine", dir);
    TH_ASSERT_EQ_INT(count_dir(q), 4);
    metrics_free(m);
    th_rmtree(dir);
}

static void t_invalid_cursor_replays_from_oldest(void)
{
    char dir[256], p[512];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    four_segments(dir);
    snprintf(p, sizeof p, "%s/cursor", dir);
    TH_ASSERT(th_write_file(p, "garbage", 7) == 0);
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    uint32_t want[20];
    for (uint32_t i = 0; i < 20; i++) want[i] = i;
    TH_ASSERT_EQ_INT(read_check(d, want, 20), 20);
    dlq_close(d);
    th_rmtree(dir);
}

/* ---- offline commands ------------------------------------------------ */

static char *run_cmd(int (*fn)(const char *, FILE *), const char *dir, int *rc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    TH_ASSERT(f);
    *rc = fn(dir, f);
    fclose(f);
    return text;
}

/* Three sealed segments plus an open one with a torn tail. */
static void mixed_dir(const char *dir)
{
    char p[512];
    size_t len = 0;
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    for (uint32_t s = 0; s < 3; s++) {
        dlq *d = NULL;
        TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
        append_n(d, 4 * s, 4);
        dlq_close(d);
    }
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_n(d, 12, 3);
    path_of(p, sizeof p, dir, 3);
    char *img = th_read_file(p, &len);
    dlq_close(d);
    TH_ASSERT(img);
    char *torn = realloc(img, len + 30);
    TH_ASSERT(torn);
    memcpy(torn + len, torn + DLQ_SEG_HDR_LEN, 30);     /* half a record header */
    TH_ASSERT(th_write_file(p, torn, len + 30) == 0);
    free(torn);
}

static void t_cmd_ls_verify(void)
{
    char dir[256], p[512];
    int rc;
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    mixed_dir(dir);
    char *out = run_cmd(dlq_cmd_ls, dir, &rc);
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_MSG(strstr(out, "sealed") && strstr(out, " open ") && strstr(out, "15 records"),
                  "ls:\n%s", out);
    free(out);
    out = run_cmd(dlq_cmd_verify, dir, &rc);
    TH_ASSERT_MSG(rc == 0 && strstr(out, "TORN") && strstr(out, "15 good records"), "verify:\n%s", out);
    free(out);
    path_of(p, sizeof p, dir, 1);
    flip(p, 300);
    out = run_cmd(dlq_cmd_verify, dir, &rc);
    TH_ASSERT_MSG(rc == 1 && strstr(out, "CORRUPT 0000000000000001.seg"), "verify:\n%s", out);
    free(out);
    th_rmtree(dir);
}

static void t_cmd_dump(void)
{
    char dir[256];
    int rc, ok = 0;
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_port *p = dlq_port_new(d);
    static const uint8_t req[] = {0x0a, 0x00};          /* one empty ResourceSpans */
    for (int i = 0; i < 3; i++) {
        item *it = item_new(SIG_TRACES, CLASS_HIGH, 7, clock_mono_ns(), req, sizeof req);
        TH_ASSERT_EQ_INT(dlq_append(p, it, on_done, &ok), 0);
    }
    while (dlq_port_pending(p)) dlq_port_wait(p, 100);
    dlq_close(d);
    dlq_port_free(p);
    char *out = run_cmd(dlq_cmd_dump, dir, &rc);
    TH_ASSERT_EQ_INT(rc, 0);
    int lines = 0;
    for (char *s = out; (s = strchr(s, '\n')) != NULL; s++) lines++;
    TH_ASSERT_MSG(lines == 3 && strstr(out, "\"class\":\"high\"") && strstr(out, "\"signal\":\"traces\"")
                  && strstr(out, "\"items\":7") && strstr(out, "resourceSpans"), "dump:\n%s", out);
    free(out);
    th_rmtree(dir);
}

typedef struct sink {
    int n, fail_after;
    uint64_t bytes;
} sink;

static int sink_send(void *arg, sw_signal sig, const uint8_t *data, size_t len)
{
    sink *s = arg;
    (void)sig;
    (void)data;
    if (s->fail_after >= 0 && s->n >= s->fail_after) return -1;
    s->n++;
    s->bytes += len;
    return 0;
}

static void t_cmd_replay(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    mixed_dir(dir);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sink s = {.fail_after = -1};
    TH_ASSERT_EQ_INT(dlq_cmd_replay(dir, 0, sink_send, &s, f), 0);
    fclose(f);
    TH_ASSERT_MSG(s.n == 15 && strstr(text, "15 records"), "replay: %d sent\n%s", s.n, text);
    free(text);
    char cur[600];
    snprintf(cur, sizeof cur, "%s/cursor", dir);
    TH_ASSERT_EQ_INT(count_dir(dir), 1);                /* every segment replayed and deleted */
    TH_ASSERT(access(cur, F_OK) == 0);
    th_rmtree(dir);
}

/* Verifies dir whose open segment 0 is img[0, len) + extra zero bytes:
 * exit 0, TORN when torn, never CORRUPT, `good` records. */
static void verify_torn(const char *dir, const uint8_t *img, size_t len, size_t zeros,
                        int good, int torn)
{
    char p[512];
    int rc;
    path_of(p, sizeof p, dir, 0);
    uint8_t *file = calloc(1, len + zeros + 1);
    TH_ASSERT(file);
    memcpy(file, img, len);
    TH_ASSERT(th_write_file(p, file, len + zeros) == 0);
    free(file);
    char *out = run_cmd(dlq_cmd_verify, dir, &rc);
    char want[64];
    snprintf(want, sizeof want, "%d good records, 0 corrupt", good);
    TH_ASSERT_MSG(rc == 0 && !strstr(out, "CORRUPT") && strstr(out, want) &&
                      (torn ? strstr(out, "TORN    0000000000000000.seg") != NULL
                            : strstr(out, "TORN") == NULL),
                  "length %zu + %zu zeros: exit %d\n%s", len, zeros, rc, out);
    free(out);
}

/* `spillway dlq verify` on what a kill -9 or a power cut leaves in the
 * open (unsealed) segment: a partial record header, a partial payload,
 * zeros past the end (delayed allocation), or no complete record at all.
 * Each is reported as TORN with the complete records counted good, and
 * the command exits 0: a torn tail is not corruption (it is cut at the
 * next start). */
static void t_verify_torn_tail_is_not_corruption(void)
{
    char dir[256];
    size_t len = 0;
    uint64_t starts[16];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    uint8_t *img = open_segment_image(dir, 4, &len);
    int n = record_starts(img, len, starts, 16);
    TH_ASSERT_EQ_INT(n, 4);
    verify_torn(dir, img, len, 0, 4, 0);                       /* clean open segment */
    verify_torn(dir, img, DLQ_SEG_HDR_LEN, 0, 0, 0);           /* header only */
    verify_torn(dir, img, len, 4096, 4, 1);                    /* zeros after the end */
    for (size_t cut = (size_t)starts[3] + 1; cut < len; cut += cut < starts[3] + DLQ_REC_HDR_LEN ? 1 : 13)
        verify_torn(dir, img, cut, 0, 3, 1);                   /* the last record cut short */
    for (size_t cut = DLQ_SEG_HDR_LEN + 1; cut < starts[1]; cut += 17)
        verify_torn(dir, img, cut, 0, 0, 1);                   /* not one complete record */
    verify_torn(dir, img, (size_t)starts[2] + 40, 512, 2, 1);  /* cut short, then zeros */
    free(img);
    th_rmtree(dir);
}

int main(void)
{
    TH_RUN(t_torn_tail_every_offset);
    TH_RUN(t_flipped_byte_quarantined);
    TH_RUN(t_bad_files_quarantined);
    TH_RUN(t_invalid_cursor_replays_from_oldest);
    TH_RUN(t_cmd_ls_verify);
    TH_RUN(t_verify_torn_tail_is_not_corruption);
    TH_RUN(t_cmd_dump);
    TH_RUN(t_cmd_replay);
    return th_done();
}
