/* test_fl_pos.c — position files: round trip, atomic generations, and
 * the fall back to the newest valid generation when one is corrupt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "receivers/filelog/fl_pos.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

static fl_pos_entry E[2] = {
    { 2049, 1234567, 256, 0x0123456789abcdefULL, 99999, "/var/lib/docker/x y/%odd\nname.log" },
    { 1, 2, 0, 0, 0, "/tmp/empty" },
};

static void t_round_trip(void)
{
    buf b;
    fl_pos_set s;
    buf_init(&b, 1 << 20);
    fl_pos_set_init(&s);
    TH_ASSERT_EQ_INT(fl_pos_encode(42, E, 2, &b), 0);
    TH_ASSERT_EQ_INT(fl_pos_decode((const char *)b.data, b.len, &s), 0);
    TH_ASSERT_EQ_INT(s.seq, 42);
    TH_ASSERT_EQ_INT(s.n, 2);
    for (int i = 0; i < 2; i++) {
        TH_ASSERT_EQ_INT(s.v[i].dev, E[i].dev);
        TH_ASSERT_EQ_INT(s.v[i].ino, E[i].ino);
        TH_ASSERT_EQ_INT(s.v[i].fp_len, E[i].fp_len);
        TH_ASSERT(s.v[i].fp_hash == E[i].fp_hash);
        TH_ASSERT_EQ_INT(s.v[i].offset, E[i].offset);
        TH_ASSERT_EQ_STR(s.v[i].path, E[i].path);
    }
    fl_pos_set_destroy(&s);
    /* every single-byte change and every truncation is detected */
    for (size_t i = 0; i < b.len; i++) {
        uint8_t o = b.data[i];
        b.data[i] ^= 0x01;
        fl_pos_set_init(&s);
        TH_ASSERT_MSG(fl_pos_decode((const char *)b.data, b.len, &s) == SW_EDECODE, "flip at %zu", i);
        TH_ASSERT_EQ_INT(s.n, 0);
        b.data[i] = o;
        TH_ASSERT(fl_pos_decode((const char *)b.data, i, &s) == SW_EDECODE);
    }
    buf_destroy(&b);
}

static void load(const char *dir, uint64_t *seq, size_t *n, unsigned *corrupt)
{
    fl_pos_set s;
    TH_ASSERT_EQ_INT(fl_pos_load(dir, &s, corrupt), 0);
    *seq = s.seq;
    *n = s.n;
    fl_pos_set_destroy(&s);
}

static void corrupt_file(const char *dir, unsigned gen)
{
    char p[512];
    size_t len = 0;
    snprintf(p, sizeof p, "%s/positions.%u", dir, gen);
    char *d = th_read_file(p, &len);
    TH_ASSERT(d && len > 40);
    d[len / 2] ^= 0x20;
    TH_ASSERT_EQ_INT(th_write_file(p, d, len), 0);
    free(d);
}

static void t_generations_and_fallback(void)
{
    char dir[256], sub[300];
    uint64_t seq;
    size_t n;
    unsigned bad;
    TH_ASSERT_EQ_INT(th_tmpdir(dir, sizeof dir), 0);
    snprintf(sub, sizeof sub, "%s/pos", dir); /* created by the first save */
    load(sub, &seq, &n, &bad);
    TH_ASSERT_EQ_INT(seq, 0);
    TH_ASSERT_EQ_INT(n, 0);
    TH_ASSERT_EQ_INT(bad, 0);
    for (uint64_t s = 1; s <= 5; s++) TH_ASSERT_EQ_INT(fl_pos_save(sub, s, E, s % 2 ? 2 : 1), 0);
    load(sub, &seq, &n, &bad);
    TH_ASSERT_EQ_INT(seq, 5);
    TH_ASSERT_EQ_INT(n, 2);
    TH_ASSERT_EQ_INT(bad, 0);
    corrupt_file(sub, 5 % 3); /* newest -> seq 4 */
    load(sub, &seq, &n, &bad);
    TH_ASSERT_EQ_INT(seq, 4);
    TH_ASSERT_EQ_INT(n, 1);
    TH_ASSERT_EQ_INT(bad, 1);
    corrupt_file(sub, 4 % 3); /* -> seq 3 */
    load(sub, &seq, &n, &bad);
    TH_ASSERT_EQ_INT(seq, 3);
    TH_ASSERT_EQ_INT(bad, 2);
    corrupt_file(sub, 3 % 3); /* nothing valid left: empty, all reported */
    load(sub, &seq, &n, &bad);
    TH_ASSERT_EQ_INT(seq, 0);
    TH_ASSERT_EQ_INT(n, 0);
    TH_ASSERT_EQ_INT(bad, 3);
    TH_ASSERT_EQ_INT(fl_pos_save(sub, 6, E, 2), 0); /* a new save recovers */
    load(sub, &seq, &n, &bad);
    TH_ASSERT_EQ_INT(seq, 6);
    TH_ASSERT_EQ_INT(bad, 2);
    th_rmtree(dir);
}

static void t_save_fails_cleanly(void)
{
    TH_ASSERT_EQ_INT(fl_pos_save("/proc/no/such/dir", 1, E, 2), SW_EIO);
}

/* The writer thread: the latest image wins, flush waits for it, failures
 * are reported. */
static void t_saver_thread(void)
{
    char dir[256];
    buf b;
    TH_ASSERT_EQ_INT(th_tmpdir(dir, sizeof dir), 0);
    fl_saver *sv = fl_saver_start(dir, NULL);
    TH_ASSERT(sv != NULL);
    for (uint64_t seq = 1; seq <= 50; seq++) {
        buf_init(&b, 1 << 20);
        E[0].offset = seq * 10;
        TH_ASSERT_EQ_INT(fl_pos_encode(seq, E, 2, &b), 0);
        size_t len = 0;
        uint8_t *d = buf_steal(&b, &len);
        fl_saver_post(sv, seq, d, len, 1);
    }
    TH_ASSERT_EQ_INT(fl_saver_flush(sv), 0);
    int64_t lag = 0;
    uint64_t n = fl_saver_written(sv, &lag);
    TH_ASSERT(n >= 1 && n <= 50);
    TH_ASSERT(lag > 0);
    fl_pos_set s;
    unsigned bad;
    TH_ASSERT_EQ_INT(fl_pos_load(dir, &s, &bad), 0);
    TH_ASSERT_EQ_INT(s.seq, 50);
    TH_ASSERT_EQ_INT(s.v[0].offset, 500);
    fl_pos_set_destroy(&s);
    fl_saver_stop(sv);
    E[0].offset = 99999;
    sv = fl_saver_start("/proc/no/such/dir", NULL);
    buf_init(&b, 1 << 20);
    TH_ASSERT_EQ_INT(fl_pos_encode(1, E, 2, &b), 0);
    size_t len = 0;
    uint8_t *d = buf_steal(&b, &len);
    fl_saver_post(sv, 1, d, len, 0);
    TH_ASSERT_EQ_INT(fl_saver_flush(sv), SW_EIO);
    fl_saver_stop(sv);
    th_rmtree(dir);
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, 0);
    TH_RUN(t_round_trip);
    TH_RUN(t_generations_and_fallback);
    TH_RUN(t_save_fails_cleanly);
    TH_RUN(t_saver_thread);
    return th_done();
}
