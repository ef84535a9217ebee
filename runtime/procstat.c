/* procstat.c — see procstat.h.
 *
 * /proc/PID/stat: the command name (field 2) is in parentheses and may hold
 * spaces or ')', so parsing starts after the last ')'. Field numbers below
 * are those of proc(5), counted from 1.
 */
#include "runtime/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime/err.h"

#define PS_STAT_MAX 4096

/* Reads a small /proc file into dst (NUL-terminated). Returns bytes read,
 * or -1 with errno set. */
static ssize_t ps_read_file(const char *path, char *dst, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, dst + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    dst[len] = '\0';
    return (ssize_t)len;
}

/* Boot time in seconds since the epoch ("btime" in /proc/stat), 0 if absent.
 * Read line by line: the "intr" line before it can be very long. */
static uint64_t ps_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    char *line = NULL;
    size_t cap = 0;
    uint64_t bt = 0;
    if (!f) return 0;
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    free(line);
    fclose(f);
    return bt;
}

/* Parses the fields after "(comm)" of /proc/PID/stat into out. */
static int ps_parse_stat(char *text, procstat *out)
{
    char *p = strrchr(text, ')');
    if (!p) return SW_EDECODE;
    p++;
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (tck <= 0 || page <= 0) return SW_EIO;
    unsigned long long f[25] = {0};
    int field = 3; /* p points at the space before field 3 (state) */
    char *save = NULL;
    for (char *tok = strtok_r(p, " \n", &save); tok && field <= 24;
         tok = strtok_r(NULL, " \n", &save), field++) {
        if (field == 3) continue; /* state is a letter */
        f[field] = strtoull(tok, NULL, 10);
    }
    if (field <= 24) return SW_EDECODE;
    out->cpu_user_s = (double)f[14] / (double)tck;
    out->cpu_system_s = (double)f[15] / (double)tck;
    out->threads = (int64_t)f[20];
    out->vsize_bytes = f[23];
    out->rss_bytes = f[24] * (uint64_t)page;
    uint64_t bt = ps_boot_time();
    out->start_time_s = bt ? (double)bt + (double)f[22] / (double)tck : 0.0;
    return 0;
}

/* VmHWM (peak RSS) from /proc/PID/status, in bytes; 0 if unavailable. */
static uint64_t ps_peak_rss(pid_t pid)
{
    char path[64], text[PS_STAT_MAX];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (ps_read_file(path, text, sizeof text) <= 0) return 0;
    const char *p = strstr(text, "VmHWM:");
    if (!p) return 0;
    return strtoull(p + 6, NULL, 10) * 1024u; /* reported in kB */
}

/* Entries of /proc/PID/fd, minus the directory's own fd when pid is us. */
static int64_t ps_open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int64_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') n++;
    closedir(d);
    if (pid == getpid() && n > 0) n--;
    return n;
}

static int64_t ps_max_fds(pid_t pid)
{
    struct rlimit rl;
    if (prlimit(pid, RLIMIT_NOFILE, NULL, &rl) != 0) return -1;
    if (rl.rlim_cur == RLIM_INFINITY) return -1;
    return (int64_t)rl.rlim_cur;
}

int procstat_read_pid(pid_t pid, procstat *out)
{
    char path[64], text[PS_STAT_MAX];
    memset(out, 0, sizeof *out);
    out->open_fds = out->max_fds = -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (ps_read_file(path, text, sizeof text) < 0)
        return errno == ENOENT ? SW_ENOTFOUND : SW_EIO;
    int rc = ps_parse_stat(text, out);
    if (rc) return rc;
    out->peak_rss_bytes = ps_peak_rss(pid);
    out->open_fds = ps_open_fds(pid);
    out->max_fds = ps_max_fds(pid);
    return 0;
}

int procstat_read(procstat *out) { return procstat_read_pid(getpid(), out); }
