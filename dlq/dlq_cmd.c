/* dlq_cmd.c — ls, verify and purge (see dlq_cmd.h); dump and replay are
 * in dlq_cmd_dump.c. */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_cmd.h"

#include <dirent.h>
#include <errno.h>
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
    if (n == 20 && strcmp(e->d_name + 16, DLQ_JNL_ACK_SUFFIX) == 0) return 0; /* journal acks */
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

static int dir_exists(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 1;
    LOG_ERROR("cannot open DLQ directory %s", dir);
    return 0;
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

/* Lists the segments of one area directory (rejected: no cursor). */
static int ls_area(const char *dir, int rejected, FILE *out)
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
    if (!rejected) ls_cursor(dirfd, out);
    fprintf(out, "total: %d files, %" PRIu64 " bytes, %" PRIu64 " records%s\n", n, bytes,
            records, rejected ? " refused by the upstream (never replayed)" : "");
    rc = 0;
out:
    if (n > 0) dlq_cmd_free_names(names, n);
    dlq_recbuf_free(rb);
    if (dirfd >= 0) close(dirfd);
    return rc;
}

int dlq_cmd_ls(const char *dir, FILE *out)
{
    return ls_area(dir, 0, out);
}

int dlq_cmd_rejected_path(const char *dir, char *path, size_t len)
{
    struct stat st;
    int n = snprintf(path, len, "%s/" DLQ_REJ_DIR, dir);
    if (n < 0 || (size_t)n >= len) return SW_EINVAL;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return SW_ENOTFOUND;
    return 0;
}

int dlq_cmd_ls_rejected(const char *dir, FILE *out)
{
    char path[4096];
    int rc = dlq_cmd_rejected_path(dir, path, sizeof path);
    if (rc == SW_ENOTFOUND && dir_exists(dir)) {
        fprintf(out, "rejected area: empty (%s/" DLQ_REJ_DIR " does not exist)\n", dir);
        return 0;
    }
    return rc ? 1 : ls_area(path, 1, out);
}

/* Removes the rejected area's segment files (not its quarantine/). */
int dlq_cmd_purge_rejected(const char *dir, FILE *out)
{
    char path[4096];
    struct dirent **names = NULL;
    uint64_t bytes = 0;
    int removed = 0, failed = 0, n = -1, fd = -1;
    int rc = dlq_cmd_rejected_path(dir, path, sizeof path);
    if (rc == SW_ENOTFOUND && dir_exists(dir)) {
        fprintf(out, "purge: the rejected area is empty\n");
        return 0;
    }
    if (rc || (fd = open_dir(path)) < 0 || (n = dlq_cmd_list_dir(path, "", &names)) < 0) {
        failed = 1;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        struct stat st;
        uint64_t seq;
        if (dlq_seg_name_parse(name, &seq) != 0) continue; /* not a segment: left alone */
        uint64_t size = fstatat(fd, name, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
        if (unlinkat(fd, name, 0) != 0) {
            failed++;
            LOG_ERROR("cannot remove %s/%s: %s", path, name, strerror(errno));
            continue;
        }
        removed++;
        bytes += size;
    }
    fprintf(out, "purge: removed %d rejected-area segments, %" PRIu64 " bytes%s\n", removed,
            bytes, failed ? " (some could not be removed)" : "");
out:
    if (n > 0) dlq_cmd_free_names(names, n);
    if (fd >= 0) close(fd);
    return failed ? 1 : 0;
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

static int verify_area(const char *dir, FILE *out)
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

int dlq_cmd_verify(const char *dir, FILE *out)
{
    char path[4096];
    int rc = verify_area(dir, out);
    int n = snprintf(path, sizeof path, "%s/" DLQ_JNL_DIR, dir);
    if (n > 0 && (size_t)n < sizeof path && dir_exists(path)) { /* queue.mode durable */
        fprintf(out, "journal area (" DLQ_JNL_DIR "/):\n");
        rc |= verify_area(path, out);
    }
    return rc;
}

int dlq_cmd_verify_rejected(const char *dir, FILE *out)
{
    char path[4096];
    int rc = dlq_cmd_rejected_path(dir, path, sizeof path);
    if (rc == SW_ENOTFOUND && dir_exists(dir)) {
        fprintf(out, "verify: the rejected area is empty\n");
        return 0;
    }
    return rc ? 1 : verify_area(path, out);
}
