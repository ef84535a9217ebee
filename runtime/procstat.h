/* procstat.h — resource usage of a process, read from /proc.
 *
 * Used by metrics_render() for the process_* self-metrics (this process) and
 * by the benchmark tool for other processes (any PID it may read). Stateless
 * and thread-safe: each call opens, reads and closes the /proc files it needs.
 * Linux only.
 */
#ifndef SW_PROCSTAT_H
#define SW_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

typedef struct procstat {
    uint64_t rss_bytes;       /* resident set size (stat field 24 x page size) */
    uint64_t vsize_bytes;     /* virtual memory size (stat field 23) */
    uint64_t peak_rss_bytes;  /* VmHWM from status; 0 if unavailable */
    double cpu_user_s;        /* utime, seconds */
    double cpu_system_s;      /* stime, seconds */
    double start_time_s;      /* process start, seconds since the Unix epoch;
                                 0 if /proc/stat has no btime */
    int64_t threads;          /* num_threads (stat field 20) */
    int64_t open_fds;         /* entries in /proc/PID/fd; -1 if not readable */
    int64_t max_fds;          /* soft RLIMIT_NOFILE; -1 if unknown or unlimited */
} procstat;

/* Fills *out for this process. 0, or SW_EIO (/proc unreadable) /
 * SW_EDECODE (unexpected format). */
int procstat_read(procstat *out);
/* Same for any process the caller may inspect. 0, SW_ENOTFOUND (no such
 * process), SW_EIO or SW_EDECODE. Fields the caller may not read (open
 * fds, peak RSS of another user's process) are left at -1 / 0. */
int procstat_read_pid(pid_t pid, procstat *out);

#endif
