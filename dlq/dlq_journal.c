/* dlq_journal.c — the journal's acknowledgement store (running side). The
 * start-up recovery is in dlq_journal_recover.c. See dlq_journal.h. */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq/dlq_int.h"
#include "dlq/dlq_journal_int.h"
#include "runtime/err.h"
#include "runtime/le.h"
#include "runtime/log.h"

/* A journal segment written by this process and not deleted yet. */
typedef struct jseg {
    uint64_t seq;
    uint64_t stored;     /* records completed with 0 */
    uint64_t acked;      /* records acknowledged */
    int fd;              /* its .ack file, -1 until the first ack */
} jseg;

struct dlq_journal {
    dlq *d;              /* borrowed; NULL once detached */
    int dirfd;           /* owned: journal/, -1 until needed */
    jseg *segs;          /* ascending seq */
    size_t nsegs, segcap;
    dlq_jpos *pend;      /* acknowledgements not yet written */
    size_t npend, pendcap;
    int keep_all;        /* a record could not be counted: delete nothing while running */
};

/* ---- the entry format ------------------------------------------------------ */


static uint64_t entry_check(uint64_t seq, uint64_t index)
{
    uint8_t b[16];
    uint64_t h = 1469598103934665603ull;
    le_put64(b, seq);
    le_put64(b + 8, index);
    for (int i = 0; i < 16; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

void dlq_jnl_entry_encode(uint64_t seq, uint64_t index, uint8_t out[DLQ_JNL_ACK_LEN])
{
    le_put64(out, index);
    le_put64(out + 8, entry_check(seq, index));
}

int dlq_jnl_entry_decode(uint64_t seq, const uint8_t in[DLQ_JNL_ACK_LEN], uint64_t *index)
{
    uint64_t i = le_get64(in);
    if (le_get64(in + 8) != entry_check(seq, i)) return -1;
    *index = i;
    return 0;
}

void dlq_jnl_name(uint64_t seq, const char *suffix, char *out, size_t len)
{
    snprintf(out, len, "%016llx%s", (unsigned long long)seq, suffix);
}

/* Deletes journal segment seq (<seq>.seg, then <seq>.ack) and takes its
 * bytes out of d->used. 0, or SW_EIO (left in place). */
int dlq_jnl_delete(dlq *d, int dirfd, uint64_t seq, uint64_t bytes)
{
    char name[40];
    dlq_jnl_name(seq, ".seg", name, sizeof name);
    if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
        LOG_ERROR_RL(10, "cannot delete journal segment %s: %s", name, strerror(errno));
        return SW_EIO;
    }
    dlq_jnl_name(seq, DLQ_JNL_ACK_SUFFIX, name, sizeof name);
    (void)unlinkat(dirfd, name, 0); /* an orphan .ack is removed at the next start */
    pthread_mutex_lock(&d->mu);
    d->used -= bytes < d->used ? bytes : d->used;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* ---- running side ---------------------------------------------------------- */

dlq_journal *dlq_journal_new(dlq *d)
{
    dlq_journal *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->d = d;
    j->dirfd = -1;
    return j;
}

size_t dlq_journal_segments(const dlq_journal *j) { return j ? j->nsegs : 0; }

static jseg *find_seg(dlq_journal *j, uint64_t seq)
{
    for (size_t i = j->nsegs; i-- > 0;) /* the newest are looked up most */
        if (j->segs[i].seq == seq) return &j->segs[i];
    return NULL;
}

int dlq_journal_stored(dlq_journal *j, const dlq_jpos *pos)
{
    jseg *s = find_seg(j, pos->seq);
    if (!s) {
        if (j->nsegs == j->segcap) {
            size_t cap = j->segcap ? j->segcap * 2 : 8;
            jseg *n = realloc(j->segs, cap * sizeof *n);
            if (!n) {
                j->keep_all = 1; /* its segment's count would be short */
                return SW_ENOMEM;
            }
            j->segs = n;
            j->segcap = cap;
        }
        s = &j->segs[j->nsegs++];
        *s = (jseg){.seq = pos->seq, .fd = -1};
    }
    s->stored++;
    return 0;
}

int dlq_journal_ack(dlq_journal *j, const dlq_jpos *pos)
{
    if (j->npend == j->pendcap) {
        size_t cap = j->pendcap ? j->pendcap * 2 : 64;
        dlq_jpos *n = realloc(j->pend, cap * sizeof *n);
        if (!n) return SW_ENOMEM;
        j->pend = n;
        j->pendcap = cap;
    }
    j->pend[j->npend++] = *pos;
    return 0;
}

static int open_dir(dlq_journal *j)
{
    if (j->dirfd >= 0) return 0;
    if (!j->d) return SW_EIO;
    j->dirfd = openat(j->d->dirfd, DLQ_JNL_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dirfd < 0) {
        LOG_ERROR_RL(10, "cannot open the journal directory: %s", strerror(errno));
        return SW_EIO;
    }
    return 0;
}

/* The segment's .ack file, created (truncated: a leftover of an earlier
 * segment with this number has no meaning now) on its first ack. */
static int ack_fd(dlq_journal *j, jseg *s)
{
    char name[40];
    if (s->fd >= 0) return s->fd;
    if (open_dir(j) != 0) return -1;
    dlq_jnl_name(s->seq, DLQ_JNL_ACK_SUFFIX, name, sizeof name);
    s->fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (s->fd < 0)
        LOG_ERROR_RL(10, "cannot create journal acknowledgements %s: %s", name, strerror(errno));
    return s->fd;
}

static void write_acks(dlq_journal *j, jseg *s, const uint8_t *p, size_t n)
{
    int fd = ack_fd(j, s);
    if (fd >= 0 && write(fd, p, n) != (ssize_t)n)
        LOG_ERROR_RL(10, "journal acknowledgements of segment %016llx not written: %s "
                     "(their records are sent again after a restart)",
                     (unsigned long long)s->seq, strerror(errno));
}

/* Writes the pending acks, one write(2) per run of the same segment. */
static unsigned write_pending(dlq_journal *j)
{
    uint8_t out[256 * DLQ_JNL_ACK_LEN];
    size_t n = 0;
    jseg *cur = NULL;
    unsigned done = 0;
    for (size_t i = 0; i < j->npend; i++) {
        jseg *s = cur && cur->seq == j->pend[i].seq ? cur : find_seg(j, j->pend[i].seq);
        if (!s) continue; /* not from this process's journal: nothing to do */
        if (s != cur || n == sizeof out) {
            if (cur && n) write_acks(j, cur, out, n);
            n = 0;
            cur = s;
        }
        dlq_jnl_entry_encode(s->seq, j->pend[i].index, out + n);
        n += DLQ_JNL_ACK_LEN;
        s->acked++;
        done++;
    }
    if (cur && n) write_acks(j, cur, out, n);
    j->npend = 0;
    return done;
}

/* Deletes fully acknowledged segments the writer has left (a later one
 * holds records) and sealed. */
static void delete_done(dlq_journal *j)
{
    size_t keep = 0;
    for (size_t i = 0; i < j->nsegs; i++) {
        jseg *s = &j->segs[i];
        int last = i + 1 == j->nsegs;
        if (!last && s->acked >= s->stored && open_dir(j) == 0) {
            char name[40];
            dlq_seg_hdr h;
            uint64_t size = 0;
            const char *why = NULL;
            dlq_jnl_name(s->seq, ".seg", name, sizeof name);
            int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
            int sealed = fd >= 0 && dlq_seg_read_hdr(fd, &h, &size, &why) == 0 &&
                         (h.flags & DLQ_SEG_SEALED);
            if (fd >= 0) close(fd);
            if (sealed && dlq_jnl_delete(j->d, j->dirfd, s->seq, size) == 0) {
                if (s->fd >= 0) close(s->fd);
                LOG_DEBUG("journal segment %s acknowledged and deleted", name);
                continue;
            }
        }
        j->segs[keep++] = *s;
    }
    j->nsegs = keep;
}

unsigned dlq_journal_flush(dlq_journal *j)
{
    unsigned n = j->npend ? write_pending(j) : 0;
    if (j->d && j->nsegs > 1 && !j->keep_all) delete_done(j);
    return n;
}

void dlq_journal_detach(dlq_journal *j)
{
    if (!j) return;
    dlq_journal_flush(j);
    if (j->d && j->d->area[DLQ_AREA_JOURNAL].dirfd >= 0) (void)open_dir(j); /* for later acks */
    j->d = NULL;
}

void dlq_journal_free(dlq_journal *j)
{
    if (!j) return;
    dlq_journal_flush(j);
    for (size_t i = 0; i < j->nsegs; i++)
        if (j->segs[i].fd >= 0) close(j->segs[i].fd);
    if (j->dirfd >= 0) close(j->dirfd);
    free(j->segs);
    free(j->pend);
    free(j);
}
