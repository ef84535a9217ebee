/* dlq_journal_recover.c — start-up: the journal's unacknowledged records
 * move into the main area (see dlq_journal.h). One segment at a time, with
 * a bitmap of its acknowledged records; records are appended in batches of
 * MOVE_BATCH through a private port, and each batch's stored records are
 * acknowledged in the segment's .ack file before the next batch. */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq/dlq_int.h"
#include "dlq/dlq_journal_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define MOVE_BATCH 64

typedef struct move {
    uint64_t index;
    int status;          /* 1: pending */
} move;

typedef struct jrec_ctx {
    dlq *d;
    int dirfd;           /* journal/ (borrowed) */
    dlq_port *port;
    dlq_recbuf *rb;
    dlq_jrecov *st;
} jrec_ctx;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Sorted sequences of the journal's segments; removes orphan .ack files. */
static int list_segments(int dirfd, uint64_t **out, size_t *n)
{
    int fd = dup(dirfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (!dir) {
        if (fd >= 0) close(fd);
        return SW_EIO;
    }
    struct dirent *e;
    int rc = 0;
    rewinddir(dir); /* the dup shares its offset with the scan at open */
    while (rc == 0 && (e = readdir(dir)) != NULL) {
        uint64_t seq;
        if (dlq_seg_name_parse(e->d_name, &seq) != 0) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *m = realloc(*out, cap * sizeof *m);
            if (!m) rc = SW_ENOMEM;
            else *out = m;
        }
        if (rc == 0) (*out)[(*n)++] = seq;
    }
    rewinddir(dir);
    while (rc == 0 && (e = readdir(dir)) != NULL) { /* .ack without its .seg */
        char seg[40];
        if (!ends_with(e->d_name, DLQ_JNL_ACK_SUFFIX) || strlen(e->d_name) != 20) continue;
        snprintf(seg, sizeof seg, "%.16s.seg", e->d_name);
        if (faccessat(dirfd, seg, F_OK, 0) != 0) (void)unlinkat(dirfd, e->d_name, 0);
    }
    closedir(dir);
    if (rc == 0 && *n) qsort(*out, *n, sizeof **out, cmp_u64);
    return rc;
}

/* Bitmap of the records of segment seq acknowledged in its .ack file. */
static uint8_t *load_acks(int dirfd, uint64_t seq, uint64_t records, uint64_t *acked)
{
    char name[40];
    uint8_t *bits = calloc(records / 8 + 1, 1), e[DLQ_JNL_ACK_LEN];
    *acked = 0;
    if (!bits) return NULL;
    dlq_jnl_name(seq, DLQ_JNL_ACK_SUFFIX, name, sizeof name);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bits;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return bits;
    }
    uint64_t index;
    while (fread(e, 1, sizeof e, f) == sizeof e) {
        if (dlq_jnl_entry_decode(seq, e, &index) != 0 || index >= records) continue;
        if (!(bits[index / 8] & (1u << (index % 8)))) (*acked)++;
        bits[index / 8] |= (uint8_t)(1u << (index % 8));
    }
    fclose(f);
    return bits;
}

static void on_moved(void *arg, item *it, int status)
{
    move *m = arg;
    m->status = status;
    item_free(it); /* NULL when stored */
}

/* Waits for the batch's completions; acknowledges the stored ones in the
 * .ack file. Returns the first failure (0 if none). */
static int finish_batch(jrec_ctx *c, uint64_t seq, int ackfd, move *b, size_t n)
{
    uint8_t out[MOVE_BATCH * DLQ_JNL_ACK_LEN];
    size_t len = 0;
    int rc = 0;
    while (dlq_port_pending(c->port) > 0) dlq_port_wait(c->port, 100);
    for (size_t i = 0; i < n; i++) {
        if (b[i].status != 0) {
            if (rc == 0) rc = b[i].status;
            continue;
        }
        dlq_jnl_entry_encode(seq, b[i].index, out + len);
        len += DLQ_JNL_ACK_LEN;
        c->st->moved++;
    }
    if (len && ackfd >= 0 && write(ackfd, out, len) != (ssize_t)len)
        LOG_WARN("journal segment %016llx: acknowledgements of moved records not written (%s)",
                 (unsigned long long)seq, strerror(errno));
    return rc;
}

/* Moves the unacknowledged records of one sealed segment (fd) into the
 * main area. 0 when all of them are stored there. */
static int move_records(jrec_ctx *c, int fd, const dlq_seg_hdr *h, uint64_t size,
                        const uint8_t *bits, int ackfd)
{
    move b[MOVE_BATCH];
    size_t n = 0;
    uint64_t off = DLQ_SEG_HDR_LEN;
    int rc = 0;
    for (uint64_t index = 0; rc == 0 && off < size && index < h->records; index++) {
        dlq_rec_hdr rh;
        const char *why = NULL;
        item *it = NULL;
        rc = dlq_seg_read_rec(c->rb, fd, off, size, index, &rh, &why);
        if (rc) break;
        off += dlq_rec_size(&rh);
        if (bits[index / 8] & (1u << (index % 8))) continue;
        if ((rc = dlq_rec_to_item(c->rb, &rh, &it)) != 0) break;
        b[n] = (move){.index = index, .status = 1};
        while ((rc = dlq_append(c->port, it, on_moved, &b[n])) == SW_EFULL &&
               dlq_port_pending(c->port) > 0)
            dlq_port_wait(c->port, 100); /* the ring is full: let the writer catch up */
        if (rc) {
            item_free(it);
            break;
        }
        if (++n == MOVE_BATCH) {
            rc = finish_batch(c, h->seq, ackfd, b, n);
            n = 0;
        }
    }
    int rc2 = finish_batch(c, h->seq, ackfd, b, n);
    return rc ? rc : rc2;
}

/* One journal segment: verified, moved, deleted. */
static int recover_seg(jrec_ctx *c, uint64_t seq)
{
    char name[40];
    dlq_seg_hdr h;
    uint64_t size = 0, acked = 0;
    const char *why = NULL;
    dlq_jnl_name(seq, ".seg", name, sizeof name);
    int fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC), ackfd = -1;
    if (fd < 0) return SW_EIO;
    int rc = dlq_seg_read_hdr(fd, &h, &size, &why);
    if (rc == 0 && !(h.flags & DLQ_SEG_SEALED)) rc = SW_EIO, why = "not recovered yet";
    if (rc == 0) rc = dlq_seg_verify_body(fd, &h, size, &why);
    if (rc == SW_EDECODE) {
        close(fd);
        LOG_ERROR("journal segment %s failed verification (%s): quarantined", name, why);
        if (dlq_quarantine(c->dirfd, name, why, c->d->m) == 0) {
            pthread_mutex_lock(&c->d->mu);
            c->d->used -= size < c->d->used ? size : c->d->used;
            pthread_mutex_unlock(&c->d->mu);
        }
        return 0;
    }
    uint8_t *bits = rc == 0 ? load_acks(c->dirfd, seq, h.records, &acked) : NULL;
    if (rc == 0 && !bits) rc = SW_ENOMEM;
    if (rc == 0) {
        char ack[40];
        dlq_jnl_name(seq, DLQ_JNL_ACK_SUFFIX, ack, sizeof ack);
        ackfd = openat(c->dirfd, ack, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        c->st->segments++;
        c->st->records += h.records;
        c->st->acked += acked;
        uint64_t before = c->st->moved;
        rc = move_records(c, fd, &h, size, bits, ackfd);
        if (rc == 0) rc = dlq_jnl_delete(c->d, c->dirfd, seq, size);
        else c->st->left += h.records - acked - (c->st->moved - before);
        LOG_INFO("journal segment %s: %llu records, %llu acknowledged, %llu moved to the DLQ%s",
                 name, (unsigned long long)h.records, (unsigned long long)acked,
                 (unsigned long long)(c->st->moved - before), rc ? " (the rest is kept)" : "");
    }
    if (ackfd >= 0) close(ackfd);
    free(bits);
    close(fd);
    return rc;
}

int dlq_journal_recover(dlq *d, dlq_jrecov *st)
{
    dlq_jrecov local;
    uint64_t *seqs = NULL;
    size_t n = 0;
    jrec_ctx c = {.d = d, .st = st ? st : &local};
    *c.st = (dlq_jrecov){0};
    dlq_wait_recovered(d);
    c.dirfd = d->area[DLQ_AREA_JOURNAL].dirfd;
    if (c.dirfd < 0) return 0; /* no journal/: nothing to do */
    int rc = list_segments(c.dirfd, &seqs, &n);
    if (rc == 0 && n && (!(c.port = dlq_port_new(d)) || !(c.rb = dlq_recbuf_new()))) rc = SW_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) rc = recover_seg(&c, seqs[i]);
    if (rc)
        LOG_ERROR("journal recovery stopped: %s; %llu records stay in the journal until the next "
                  "start", sw_strerror(rc), (unsigned long long)c.st->left);
    else if (n)
        LOG_INFO("journal recovered: %llu segments, %llu records (%llu acknowledged, %llu moved "
                 "to the DLQ)", (unsigned long long)c.st->segments,
                 (unsigned long long)c.st->records, (unsigned long long)c.st->acked,
                 (unsigned long long)c.st->moved);
    if (c.port) {
        while (dlq_port_pending(c.port) > 0) dlq_port_wait(c.port, 100);
        dlq_port_free(c.port);
    }
    dlq_recbuf_free(c.rb);
    free(seqs);
    return rc;
}
