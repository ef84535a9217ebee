/* fl_pos.c — position files: encoding, atomic saves, generations. */
#define LOG_COMPONENT "filelog"

#include "receivers/filelog/fl_pos.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/err.h"
#include "runtime/log.h"

#define MAGIC "spillway-filelog-positions 1\n"
#define POS_FILE_MAX (64u << 20)

void fl_pos_set_init(fl_pos_set *s) { memset(s, 0, sizeof *s); }

void fl_pos_set_destroy(fl_pos_set *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i].path);
    free(s->v);
    memset(s, 0, sizeof *s);
}

int fl_pos_set_add(fl_pos_set *s, const fl_pos_entry *e)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        fl_pos_entry *v = realloc(s->v, cap * sizeof *v);
        if (!v) return SW_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    char *path = strdup(e->path ? e->path : "");
    if (!path) return SW_ENOMEM;
    s->v[s->n] = *e;
    s->v[s->n++].path = path;
    return 0;
}

uint64_t fl_fp_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int put_path(buf *out, const char *p)
{
    int rc = 0;
    for (; *p && rc == 0; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '%' || c >= 0x7f) rc = buf_printf(out, "%%%02X", c);
        else rc = buf_append(out, p, 1);
    }
    return rc;
}

int fl_pos_encode(uint64_t seq, const fl_pos_entry *v, size_t n, buf *out)
{
    size_t start = out->len;
    int rc = buf_printf(out, MAGIC "seq %" PRIu64 "\n", seq);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = buf_printf(out, "pos %" PRIu64 " %" PRIu64 " %u %016" PRIx64 " %" PRIu64 " ", v[i].dev,
                        v[i].ino, v[i].fp_len, v[i].fp_hash, v[i].offset);
        if (rc == 0) rc = put_path(out, v[i].path ? v[i].path : "");
        if (rc == 0) rc = buf_append(out, "\n", 1);
    }
    if (rc != 0) return rc;
    uLong crc = crc32(0L, out->data + start, (uInt)(out->len - start));
    return buf_printf(out, "end %zu %08lx\n", n, (unsigned long)crc);
}

static int unhex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes the %XX-escaped path s[0..n) into an owned string, or NULL. */
static char *get_path(const char *s, size_t n)
{
    char *p = malloc(n + 1), *o = p;
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') { *o++ = s[i]; continue; }
        int h = i + 2 < n ? unhex(s[i + 1]) : -1, l = h >= 0 ? unhex(s[i + 2]) : -1;
        if (h < 0 || l < 0 || (h == 0 && l == 0)) { free(p); return NULL; }
        *o++ = (char)(h * 16 + l);
        i += 2;
    }
    *o = '\0';
    return p;
}

/* One "pos" line (without '\n', NUL-terminated copy). 0 or -1. */
static int decode_entry(const char *ln, fl_pos_set *out, int *oom)
{
    fl_pos_entry e = { 0 };
    int used = 0;
    if (sscanf(ln, "pos %" SCNu64 " %" SCNu64 " %u %16" SCNx64 " %" SCNu64 " %n", &e.dev, &e.ino,
               &e.fp_len, &e.fp_hash, &e.offset, &used) != 5 || used == 0 || e.fp_len > FL_FP_MAX)
        return -1;
    char *path = get_path(ln + used, strlen(ln + used));
    if (!path) return -1;
    e.path = path;
    int rc = fl_pos_set_add(out, &e);
    free(path);
    if (rc != 0) *oom = 1;
    return rc == 0 ? 0 : -1;
}

static int decode_lines(const char *data, size_t len, fl_pos_set *out, int *oom)
{
    size_t i = sizeof MAGIC - 1, n = 0;
    char ln[8192];
    unsigned long crc_want = 0;
    int seen_seq = 0;
    if (len < i || memcmp(data, MAGIC, i) != 0) return -1;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t l = nl ? (size_t)(nl - (data + i)) : 0;
        if (!nl || l >= sizeof ln || memchr(data + i, '\0', l)) return -1;
        memcpy(ln, data + i, l);
        ln[l] = '\0';
        if (!seen_seq) {
            if (sscanf(ln, "seq %" SCNu64, &out->seq) != 1) return -1;
            seen_seq = 1;
        } else if (strncmp(ln, "end ", 4) == 0) {
            if (sscanf(ln, "end %zu %8lx", &n, &crc_want) != 2 || i + l + 1 != len) return -1;
            uLong crc = crc32(0L, (const Bytef *)data, (uInt)i);
            return n == out->n && crc == crc_want ? 0 : -1;
        } else if (decode_entry(ln, out, oom) != 0) {
            return -1;
        }
        i += l + 1;
    }
    return -1; /* no end line: torn */
}

int fl_pos_decode(const char *data, size_t len, fl_pos_set *out)
{
    int oom = 0;
    if (decode_lines(data, len, out, &oom) == 0) return 0;
    fl_pos_set_destroy(out);
    return oom ? SW_ENOMEM : SW_EDECODE;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int fl_pos_save(const char *dir, uint64_t seq, const fl_pos_entry *v, size_t n)
{
    buf b;
    buf_init(&b, POS_FILE_MAX);
    int rc = fl_pos_encode(seq, v, n, &b);
    if (rc == 0) rc = fl_pos_write(dir, seq, b.data, b.len);
    buf_destroy(&b);
    return rc;
}

int fl_pos_write(const char *dir, uint64_t seq, const uint8_t *data, size_t len)
{
    char tmp[4096], dst[4096];
    int fd = -1, rc = SW_EIO;
    if (snprintf(tmp, sizeof tmp, "%s/positions.tmp", dir) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/positions.%u", dir, (unsigned)(seq % FL_POS_GENERATIONS)) >=
            (int)sizeof dst)
        goto out;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        LOG_ERROR("cannot create positions_dir %s: %s", dir, strerror(errno));
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        LOG_ERROR("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, dst) != 0 || sync_dir(dir) != 0) {
        LOG_ERROR("cannot install %s: %s", dst, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) close(fd);
    return rc;
}

/* Reads path into an owned buffer; 0, SW_ENOTFOUND, SW_EIO, SW_ENOMEM. */
static int slurp(const char *path, char **data, size_t *len)
{
    struct stat st;
    int rc = SW_EIO, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? SW_ENOTFOUND : SW_EIO;
    char *p = NULL;
    if (fstat(fd, &st) != 0 || st.st_size > POS_FILE_MAX) goto out;
    rc = SW_ENOMEM;
    if (!(p = malloc((size_t)st.st_size + 1))) goto out;
    rc = SW_EIO;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    *data = p;
    *len = got;
    p = NULL;
    rc = 0;
out:
    free(p);
    close(fd);
    return rc;
}

int fl_pos_load(const char *dir, fl_pos_set *out, unsigned *corrupt)
{
    char path[4096];
    int have = 0;
    *corrupt = 0;
    fl_pos_set_init(out);
    for (unsigned g = 0; g < FL_POS_GENERATIONS; g++) {
        char *data = NULL;
        size_t len = 0;
        fl_pos_set s;
        snprintf(path, sizeof path, "%s/positions.%u", dir, g);
        int rc = slurp(path, &data, &len);
        if (rc == SW_ENOTFOUND) continue;
        if (rc == SW_ENOMEM) { fl_pos_set_destroy(out); return rc; }
        fl_pos_set_init(&s);
        if (rc == 0) rc = fl_pos_decode(data, len, &s);
        free(data);
        if (rc == SW_ENOMEM) { fl_pos_set_destroy(out); return rc; }
        if (rc != 0 || s.seq % FL_POS_GENERATIONS != g) {
            LOG_WARN("position file %s is corrupt or unreadable; using an older generation", path);
            (*corrupt)++;
            fl_pos_set_destroy(&s);
            continue;
        }
        if (!have || s.seq > out->seq) {
            fl_pos_set_destroy(out);
            *out = s;
            have = 1;
        } else {
            fl_pos_set_destroy(&s);
        }
    }
    return 0;
}
