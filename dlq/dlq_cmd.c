/* dlq_cmd.c — ls, verify and dump (see dlq_cmd.h); replay is in
 * dlq_cmd_replay.c. */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_cmd.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlq/dlq_int.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/otlp_json.h"

/* What one segment file looks like, read-only. */
typedef struct seg_report {
    const char *state;   /* sealed, open, invalid */
    const char *why;     /* first problem, NULL if none */
    int corrupt;
    uint64_t size, records, torn;
    int64_t created_ns;
} seg_report;

static int skip_name(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) return 0;
    if (n >= 8 && strcmp(e->d_name + n - 8, ".seg.tmp") == 0) return 0; /* never held records */
    return e->d_name[0] != '.' && strcmp(e->d_name, "cursor") != 0 &&
           strcmp(e->d_name, "cursor.tmp") != 0;
}

int dlq_cmd_list_dir(const char *dir, const char *sub, struct dirent ***names)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", dir, *sub ? "/" : "", sub);
    return scandir(path, names, skip_name, alphasort);
}

void dlq_cmd_free_names(struct dirent **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Examines one file; full: verify hashes, frames and counts. */
static int examine(dlq_recbuf *rb, int dirfd, const char *name, int full, seg_report *r)
{
    dlq_seg_hdr h;
    dlq_scan s;
    uint64_t seq;
    memset(r, 0, sizeof *r);
    r->state = "invalid";
    r->corrupt = 1;
    if (dlq_seg_name_parse(name, &seq) != 0) {
        r->why = "not a segment file name";
        return 0;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SW_EIO;
    int rc = dlq_seg_read_hdr(fd, &h, &r->size, &r->why);
    if (rc == 0 && h.seq != seq) r->why = "sequence differs from the file name", rc = SW_EDECODE;
    if (rc) goto out;
    r->corrupt = 0;
    r->created_ns = h.created_ns;
    r->state = (h.flags & DLQ_SEG_SEALED) ? "sealed" : "open";
    r->records = h.records;
    if (!(h.flags & DLQ_SEG_SEALED) || full) {
        if (h.flags & DLQ_SEG_SEALED) rc = dlq_seg_verify_body(fd, &h, r->size, &r->why);
        if (rc == 0) rc = dlq_seg_scan(rb, fd, r->size, full, &s);
        if (rc) goto out;
        r->records = s.records;
        r->torn = r->size - s.good_end;
        if ((h.flags & DLQ_SEG_SEALED) && (s.why || s.records != h.records))
            r->why = s.why ? s.why : "record count differs from the header", r->corrupt = 1;
        else if (s.why) r->why = s.why;
    }
out:
    close(fd);
    if (rc == SW_EDECODE) r->corrupt = 1, rc = 0;
    return rc;
}

static int open_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) LOG_ERROR("cannot open DLQ directory %s", dir);
    return fd;
}

static void print_age(FILE *out, int64_t created_ns)
{
    int64_t s = (clock_wall_ns() - created_ns) / 1000000000;
    if (!created_ns || s < 0) fprintf(out, "-");
    else if (s < 120) fprintf(out, "%" PRId64 "s", s);
    else if (s < 7200) fprintf(out, "%" PRId64 "m", s / 60);
    else fprintf(out, "%" PRId64 "h", s / 3600);
}

static void ls_quarantine(const char *dir, FILE *out)
{
    struct dirent **q = NULL;
    int nq = dlq_cmd_list_dir(dir, "quarantine", &q);
    for (int i = 0; i < nq; i++) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/quarantine/%s", dir, q[i]->d_name);
        long long size = stat(p, &st) == 0 ? (long long)st.st_size : -1;
        fprintf(out, "quarantine/%-21s quarantined %12lld %8s  -\n", q[i]->d_name, size, "-");
    }
    if (nq > 0) dlq_cmd_free_names(q, nq);
}

static void ls_cursor(int dirfd, FILE *out)
{
    dlq_pos c;
    if (dlq_cursor_load(dirfd, &c) == 0)
        fprintf(out, "cursor: segment %016" PRIx64 " offset %" PRIu64 "\n", c.seq, c.off);
    else fprintf(out, "cursor: none (replay starts at the oldest segment)\n");
}

int dlq_cmd_ls(const char *dir, FILE *out)
{
    struct dirent **names = NULL;
    int dirfd = open_dir(dir), n = -1, rc = 1;
    dlq_recbuf *rb = dlq_recbuf_new();
    if (dirfd < 0 || !rb || (n = dlq_cmd_list_dir(dir, "", &names)) < 0) goto out;
    uint64_t bytes = 0, records = 0;
    fprintf(out, "%-32s %-11s %12s %8s  %s\n", "SEGMENT", "STATE", "BYTES", "RECORDS", "AGE");
    for (int i = 0; i < n; i++) {
        seg_report r;
        if (examine(rb, dirfd, names[i]->d_name, 0, &r) != 0) goto out;
        fprintf(out, "%-32s %-11s %12" PRIu64 " %8" PRIu64 "  ", names[i]->d_name, r.state,
                r.size, r.records);
        print_age(out, r.created_ns);
        fprintf(out, "%s%s\n", r.why ? "  " : "", r.why ? r.why : "");
        bytes += r.size;
        records += r.records;
    }
    ls_quarantine(dir, out);
    ls_cursor(dirfd, out);
    fprintf(out, "total: %d files, %" PRIu64 " bytes, %" PRIu64 " records\n", n, bytes, records);
    rc = 0;
out:
    if (n > 0) dlq_cmd_free_names(names, n);
    dlq_recbuf_free(rb);
    if (dirfd >= 0) close(dirfd);
    return rc;
}

static void verify_line(FILE *out, const char *name, const seg_report *r, int *corrupt)
{
    if (r->corrupt) {
        fprintf(out, "CORRUPT %s: %s\n", name, r->why ? r->why : "failed verification");
        (*corrupt)++;
        return;
    }
    fprintf(out, "OK      %s: %s, %" PRIu64 " records, %" PRIu64 " bytes\n", name, r->state,
            r->records, r->size);
    if (r->torn)
        fprintf(out, "TORN    %s: %" PRIu64 " bytes of torn tail (%s); cut at the next start\n",
                name, r->torn, r->why ? r->why : "incomplete record");
}

int dlq_cmd_verify(const char *dir, FILE *out)
{
    struct dirent **names = NULL, **q = NULL;
    int dirfd = open_dir(dir), n = -1, nq = -1, rc = 1, corrupt = 0;
    uint64_t records = 0;
    dlq_recbuf *rb = dlq_recbuf_new();
    if (dirfd < 0 || !rb || (n = dlq_cmd_list_dir(dir, "", &names)) < 0) goto out;
    for (int i = 0; i < n; i++) {
        seg_report r;
        if (examine(rb, dirfd, names[i]->d_name, 1, &r) != 0) goto out;
        verify_line(out, names[i]->d_name, &r, &corrupt);
        records += r.corrupt ? 0 : r.records;
    }
    nq = dlq_cmd_list_dir(dir, "quarantine", &q);
    for (int i = 0; i < nq; i++)
        fprintf(out, "QUARANTINED quarantine/%s (not checked)\n", q[i]->d_name);
    fprintf(out, "verify: %d files, %" PRIu64 " good records, %d corrupt\n", n, records, corrupt);
    rc = corrupt ? 1 : 0;
out:
    if (n > 0) dlq_cmd_free_names(names, n);
    if (nq > 0) dlq_cmd_free_names(q, nq);
    dlq_recbuf_free(rb);
    if (dirfd >= 0) close(dirfd);
    return rc;
}
