/* fl_file.c — the tailer: finding files, reading lines, rotation and
 * truncation. Ingest thread. See fl_int.h for the offsets and states. */
#define LOG_COMPONENT "filelog"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "receivers/filelog/fl_int.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define READ_CHUNK (64u << 10)
#define READ_BUDGET (1u << 20)   /* per file per turn, then the others */
#define DRAIN_IDLE_TICKS 2       /* a rotated file closes after this many quiet ticks */
#define TRIM_KEEP (64u << 10)    /* join and batch buffers up to this stay allocated */

/* Hash of the first len bytes of fd; 0, or -1 when the file is shorter. */
static int fp_of(int fd, uint32_t len, uint64_t *hash)
{
    uint8_t b[FL_FP_MAX];
    if (len > FL_FP_MAX) return -1;
    ssize_t r = len ? pread(fd, b, len, 0) : 0;
    if (r != (ssize_t)len) return -1;
    *hash = fl_fp_hash(b, len);
    return 0;
}

void fl_file_fingerprint(fl_file *f)
{
    uint8_t b[FL_FP_MAX];
    if (f->fd < 0 || f->fp_len == FL_FP_MAX) return;
    ssize_t r = pread(f->fd, b, FL_FP_MAX, 0);
    if (r < (ssize_t)f->fp_len) return; /* shrank: the truncation check handles it */
    f->fp_len = (uint32_t)r;
    f->fp_hash = fl_fp_hash(b, (size_t)r);
}

static int excluded(const filelog *fl, const char *path)
{
    const cfg_strlist *ex = &fl->c->filelog.exclude;
    for (size_t i = 0; i < ex->n; i++)
        if (fnmatch(ex->v[i], path, FNM_PATHNAME) == 0) return 1;
    return 0;
}

static fl_file *find_open(filelog *fl, uint64_t dev, uint64_t ino)
{
    for (fl_file *f = fl->files; f; f = f->next)
        if (f->fd >= 0 && f->dev == dev && f->ino == ino) return f;
    return NULL;
}

/* Where a newly found file starts: its saved position when the
 * fingerprint matches, else the end (start-up scan, start_at: end) or 0. */
static uint64_t start_offset(filelog *fl, fl_file *f, uint64_t size)
{
    fl_pos_set *s = &fl->saved;
    for (size_t i = 0; i < s->n; i++) {
        fl_pos_entry *e = &s->v[i];
        if (e->dev != f->dev || e->ino != f->ino) continue;
        uint64_t h = 0, off = 0;
        int match = fp_of(f->fd, e->fp_len, &h) == 0 && h == e->fp_hash;
        if (match) off = e->offset <= size ? e->offset : 0;
        free(e->path);
        s->v[i] = s->v[--s->n];
        if (match) return off;
        break;
    }
    return fl->first_scan && fl->c->filelog.start_at == 0 ? size : 0;
}

static fl_file *file_new(filelog *fl, const char *path)
{
    const cfg *c = fl->c;
    fl_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return NULL;
    }
    f->fl = fl;
    f->fd = -1;
    f->wd = -1;
    buf_init(&f->line, c->filelog.max_record_size + READ_CHUNK);
    fl_join_init(&f->join, c->filelog.max_record_size);
    /* Room for two records after the batch reached max_bytes (a joined record
     * and a malformed line may follow each other before reading stops). */
    fl_batch_init(&f->batch, c->filelog.batch_max_bytes + 2 * (c->filelog.max_record_size + 4096));
    return f;
}

void fl_file_free(fl_file *f)
{
    if (!f) return;
    if (f->fd >= 0) fl_file_close(f);
    for (fl_sub *s = f->head, *n; s; s = n) {
        n = s->next;
        free(s->pb);
        free(s);
    }
    if (f->pending) {
        free(f->pending->pb);
        free(f->pending);
    }
    fl_meta_put(f->fl->meta, f->cont);
    buf_destroy(&f->line);
    fl_join_destroy(&f->join);
    fl_batch_destroy(&f->batch);
    free(f->path);
    free(f);
}

/* Opens path as a new file reading from start (-1: decide by positions
 * and start_at). Returns it (in the list) or NULL. */
static fl_file *file_open(filelog *fl, const char *path, int64_t start)
{
    struct stat st;
    fl_file *f = file_new(fl, path);
    if (!f) return NULL;
    f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f->fd < 0 || fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (f->fd < 0 && errno != ENOENT) LOG_WARN_RL(60, "cannot open %s: %s", path, strerror(errno));
        fl_file_free(f);
        return NULL;
    }
    f->dev = (uint64_t)st.st_dev;
    f->ino = (uint64_t)st.st_ino;
    fl_file_fingerprint(f);
    uint64_t off = start >= 0 ? (uint64_t)start : start_offset(fl, f, (uint64_t)st.st_size);
    f->read_off = f->safe_off = f->commit_off = f->saved_off = off;
    f->last_size = (uint64_t)st.st_size;
    if (fl->c->filelog.format == 0) f->cont = fl_meta_get(fl->meta, path, clock_mono_ns());
    f->next = fl->files;
    fl->files = f;
    fl->n_open++;
    if (fl->m) metrics_gauge_add(&fl->m->fl_files_watched, 1);
    fl_watch_file(fl, f);
    LOG_DEBUG("tailing %s from offset %llu", path, (unsigned long long)off);
    f->more = 1;
    return f;
}

void fl_file_close(fl_file *f)
{
    filelog *fl = f->fl;
    if (f->fd < 0) return;
    fl_unwatch_file(fl, f);
    close(f->fd);
    f->fd = -1;
    f->state = FS_DONE;
    fl->n_open--;
    if (fl->m) metrics_gauge_add(&fl->m->fl_files_watched, -1);
    for (fl_file *g = fl->files; g; g = g->next)
        if (g->blocked_by == f) {
            g->blocked_by = NULL;
            g->more = 1;
            fl_kick(fl);
        }
}

int fl_file_finished(const fl_file *f)
{
    return f->fd < 0 && !f->head && !f->pending && f->batch.n == 0;
}

/* A draining file with the same path: the new file waits for it. */
static fl_file *draining_at(filelog *fl, const char *path)
{
    for (fl_file *f = fl->files; f; f = f->next)
        if (f->fd >= 0 && f->state == FS_DRAINING && strcmp(f->path, path) == 0) return f;
    return NULL;
}

static void consider(filelog *fl, const char *path)
{
    struct stat st;
    if (excluded(fl, path) || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return;
    fl_file *f = find_open(fl, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (f) {
        f->seen = 1;
        return;
    }
    if (fl->n_open >= fl->c->filelog.max_open_files) {
        LOG_WARN_RL(60, "max_open_files (%u) reached: %s waits", fl->c->filelog.max_open_files, path);
        return;
    }
    for (fl_file *g = fl->files; g; g = g->next) /* its predecessor: rotated just now? */
        if (g->fd >= 0 && g->state == FS_ACTIVE && strcmp(g->path, path) == 0) fl_file_check(g);
    fl_file *prev = draining_at(fl, path);
    if ((f = file_open(fl, path, fl->first_scan ? -1 : (prev ? 0 : -1))) == NULL) return;
    f->seen = 1;
    f->blocked_by = prev;
    char *slash = strrchr(path, '/');
    if (slash) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        fl_watch_dir(fl, dir[0] ? dir : "/");
    }
}

void fl_rescan(filelog *fl)
{
    const cfg_strlist *inc = &fl->c->filelog.include;
    for (fl_file *f = fl->files; f; f = f->next) f->seen = 0;
    for (size_t i = 0; i < inc->n; i++) {
        glob_t g;
        if (glob(inc->v[i], GLOB_NOSORT, NULL, &g) == 0)
            for (size_t k = 0; k < g.gl_pathc; k++) consider(fl, g.gl_pathv[k]);
        globfree(&g);
    }
    fl->first_scan = 0;
}

/* ---- lines ---- */

static void emit_join(fl_file *f)
{
    fl_join *j = &f->join;
    fl_record r = { (const char *)j->b.data, j->b.len, j->stream, j->time_ns, clock_wall_ns(),
                    j->truncated, NULL, NULL };
    if (!r.body) r.body = "";
    if (j->truncated) FL_COUNT(f->fl, fl_truncated_records, 1);
    fl_add_record(f, &r);
    fl_join_reset(j);
}

static void docker_line(fl_file *f, const char *p, size_t l)
{
    filelog *fl = f->fl;
    fl_line ln;
    if (fl_parse_docker(fl->parser, p, l, &ln) != 0) return;
    if (ln.error) {
        FL_COUNT(fl, fl_parse_errors, 1);
        LOG_WARN_RL(60, "%s: malformed line kept as raw text: %s", f->path, ln.error);
        if (f->join.active) emit_join(f);
    } else if (ln.partial || f->join.active) {
        if (fl_join_add(&f->join, &ln) == 1) emit_join(f);
        return;
    }
    fl_record r = { ln.body, ln.body_len, ln.stream, ln.time_ns, clock_wall_ns(), 0, ln.error, NULL };
    fl_add_record(f, &r);
}

/* One complete line p[0..l) ending at file offset end_off. */
static void handle_line(fl_file *f, const char *p, size_t l, uint64_t end_off)
{
    filelog *fl = f->fl;
    if (f->skipping) {
        f->skipping = 0; /* the tail of an overlong line, already cut */
    } else {
        FL_COUNT(fl, fl_lines_read, 1);
        if (fl->c->filelog.format == 0) {
            docker_line(f, p, l);
        } else {
            fl_line ln;
            fl_parse_raw(p, l, &ln);
            fl_record r = { ln.body, ln.body_len, 0, 0, clock_wall_ns(), 0, NULL, f->path };
            fl_add_record(f, &r);
        }
    }
    if (!f->join.active) f->safe_off = end_off;
}

/* A line longer than the buffer: its start becomes one cut record. */
static void overlong(fl_file *f)
{
    filelog *fl = f->fl;
    size_t n = f->line.len < fl->c->filelog.max_record_size ? f->line.len : fl->c->filelog.max_record_size;
    fl_record r = { (const char *)f->line.data, n, 0, 0, clock_wall_ns(), 1, NULL, NULL };
    if (fl->c->filelog.format == 0) {
        r.error = "line too long";
        FL_COUNT(fl, fl_parse_errors, 1);
        if (f->join.active) emit_join(f);
    } else {
        r.path = f->path;
    }
    FL_COUNT(fl, fl_lines_read, 1);
    FL_COUNT(fl, fl_truncated_records, 1);
    fl_add_record(f, &r);
    f->skipping = 1;
    f->line.len = 0;
    f->line_scan = 0;
}

static void process_lines(fl_file *f)
{
    size_t start = 0;
    uint8_t *d = f->line.data;
    while (!f->pending && start < f->line.len) {
        size_t from = start ? start : f->line_scan;
        uint8_t *nl = memchr(d + from, '\n', f->line.len - from);
        if (!nl) break;
        size_t l = (size_t)(nl - (d + start));
        uint64_t end_off = f->read_off - (f->line.len - (start + l + 1));
        handle_line(f, (const char *)d + start, l, end_off);
        start += l + 1;
    }
    if (start) {
        memmove(d, d + start, f->line.len - start);
        f->line.len -= start;
        f->line_scan = 0;
    }
    if (!f->pending) f->line_scan = f->line.len;
    if (!f->pending && f->line.len == f->line.max) overlong(f);
}

/* A finished file's last line without '\n' is a record too. */
static void final_line(fl_file *f)
{
    if (!f->line.len || f->pending) return;
    if (f->skipping) {
        f->skipping = 0;
    } else if (buf_append(&f->line, "\n", 1) == 0) {
        f->read_off++; /* counts the virtual '\n'; the file is done */
        process_lines(f);
        f->read_off--;
        f->safe_off = f->read_off;
    } else {
        overlong(f);
    }
    f->line.len = 0;
}

static void truncated(fl_file *f);
static int was_truncated(fl_file *f);

/* An idle file keeps no read buffer and no large join or batch buffer, so
 * memory follows what is being read, not what once was (1,000 quiet files
 * cost their structs, not 1,000 read buffers). */
static void trim(fl_file *f)
{
    if (f->line.len == 0 && f->line.cap) {
        size_t max = f->line.max;
        buf_destroy(&f->line);
        buf_init(&f->line, max);
    }
    if (!f->join.active && f->join.b.cap > TRIM_KEEP) {
        size_t max = f->join.b.max;
        buf_destroy(&f->join.b);
        buf_init(&f->join.b, max);
    }
    if (f->batch.n == 0 && f->batch.recs.cap > TRIM_KEEP) {
        size_t max = f->batch.recs.max;
        buf_destroy(&f->batch.recs);
        buf_init(&f->batch.recs, max);
    }
}

void fl_file_read(fl_file *f)
{
    filelog *fl = f->fl;
    size_t budget = READ_BUDGET;
    f->more = 0;
    if (f->fd < 0 || f->blocked_by || fl->paused || fl->stopping || f->pending) return;
    if (f->state == FS_ACTIVE && was_truncated(f)) {
        truncated(f);
        return;
    }
    process_lines(f);
    while (budget && !f->pending) {
        size_t room = f->line.max - f->line.len, want = room < READ_CHUNK ? room : READ_CHUNK;
        if (want == 0 || buf_reserve(&f->line, want) != 0) break;
        ssize_t r = pread(f->fd, f->line.data + f->line.len, want, (off_t)f->read_off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            LOG_WARN_RL(60, "read %s: %s", f->path, strerror(errno));
            break;
        }
        if (r == 0) break;
        f->line.len += (size_t)r;
        f->read_off += (uint64_t)r;
        budget -= (size_t)r < budget ? (size_t)r : budget;
        FL_COUNT(fl, fl_bytes_read, (uint64_t)r);
        process_lines(f);
    }
    if (f->fp_len < FL_FP_MAX) fl_file_fingerprint(f);
    trim(f);
    if (!budget) {
        f->more = 1;
        fl_kick(fl);
    }
}

/* ---- rotation and truncation ---- */

/* A sibling of f's path holding the same first bytes and at least
 * read_off bytes: the copy made by copytruncate. Owned path or NULL. */
static char *find_copy(fl_file *f, struct stat *out)
{
    char dir[4096], path[8192];
    const char *slash = strrchr(f->path, '/');
    const char *base = slash ? slash + 1 : f->path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - f->path) : 1, slash ? f->path : ".");
    DIR *d = opendir(dir[0] ? dir : "/");
    char *found = NULL;
    size_t bl = strlen(base);
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        if (strncmp(e->d_name, base, bl) != 0 || e->d_name[bl] == '\0') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint64_t h;
        if (fd < 0) continue;
        if (fstat(fd, out) == 0 && S_ISREG(out->st_mode) && (uint64_t)out->st_ino != f->ino &&
            (uint64_t)out->st_size >= f->read_off && fp_of(fd, f->fp_len, &h) == 0 && h == f->fp_hash)
            found = strdup(path);
        close(fd);
    }
    if (d) closedir(d);
    return found;
}

static void truncated(fl_file *f)
{
    filelog *fl = f->fl;
    struct stat st;
    FL_COUNT(fl, fl_truncations, 1);
    char *copy = find_copy(f, &st);
    char *path = strdup(f->path);
    int fd = copy ? open(copy, O_RDONLY | O_CLOEXEC) : -1;
    if (!path) { free(copy); if (fd >= 0) close(fd); return; }
    f->state = FS_DRAINING;
    if (fd >= 0) {
        LOG_INFO("%s was truncated; finishing its copy %s from offset %llu", path, copy,
                 (unsigned long long)f->read_off);
        fl_unwatch_file(fl, f);
        close(f->fd);
        f->fd = fd;
        f->ino = (uint64_t)st.st_ino;
        f->dev = (uint64_t)st.st_dev;
        free(f->path);
        f->path = copy;
        copy = NULL;
        fl_watch_file(fl, f);
    } else {
        LOG_WARN("%s was truncated at offset %llu and no copy was found; reading it again from 0",
                 path, (unsigned long long)f->read_off);
        fl_flush_batch(f);
        fl_file_close(f);
    }
    fl_file *n = file_open(fl, path, 0);
    if (n && f->fd >= 0) n->blocked_by = f;
    free(copy);
    free(path);
}

/* Shorter than what was read, or other first bytes: truncated in place
 * (copytruncate), perhaps already written again. */
static int was_truncated(fl_file *f)
{
    struct stat st;
    uint64_t h;
    if (fstat(f->fd, &st) != 0) return 0;
    if ((uint64_t)st.st_size < f->read_off) return 1;
    return f->fp_len && (fp_of(f->fd, f->fp_len, &h) != 0 || h != f->fp_hash);
}

void fl_file_check(fl_file *f)
{
    filelog *fl = f->fl;
    struct stat st, fst;
    if (f->fd < 0 || fstat(f->fd, &fst) != 0) return;
    if (f->state == FS_DRAINING) {
        if ((uint64_t)fst.st_size == f->last_size && f->read_off >= (uint64_t)fst.st_size && !f->pending)
            f->idle_ticks++;
        else
            f->idle_ticks = 0;
        f->last_size = (uint64_t)fst.st_size;
        if (f->idle_ticks >= DRAIN_IDLE_TICKS) {
            final_line(f);
            fl_flush_batch(f);
            if (!f->pending && f->batch.n == 0) fl_file_close(f);
        }
        return;
    }
    int gone = stat(f->path, &st) != 0;
    if (gone || (uint64_t)st.st_ino != f->ino || (uint64_t)st.st_dev != f->dev || fst.st_nlink == 0) {
        /* Still linked somewhere: renamed away (rotation); else deleted. */
        if (fst.st_nlink > 0) FL_COUNT(fl, fl_rotations, 1);
        LOG_DEBUG("%s was %s; finishing it", f->path, fst.st_nlink ? "rotated" : "removed");
        f->state = FS_DRAINING;
        f->last_size = (uint64_t)fst.st_size;
        f->more = 1;
        return;
    }
    if (was_truncated(f)) {
        truncated(f);
        return;
    }
    if ((uint64_t)fst.st_size > f->read_off) f->more = 1;
}
