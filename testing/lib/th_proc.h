/* th_proc.h — child processes, temp dirs and per-case cleanup for the
 * integration tests.
 *
 * A th_proc is a spawned binary: argv and extra environment, stdout and
 * stderr appended to a log file, a PR_SET_PDEATHSIG so it dies with the
 * test program. Waits are bounded by deadlines and poll every 10 ms.
 *
 * Cleanup registry: a failed assertion longjmps out of a case (th.h), so
 * test resources (processes, connections, temp dirs, generated data) are
 * registered with th_res_add() when they are created and released by
 * th_res_release_all(), which TH_ICASE runs after every case and an atexit
 * handler runs at the end. An object freed explicitly is removed from the
 * registry first (th_res_forget). Single-threaded, main thread only.
 */
#ifndef TH_PROC_H
#define TH_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "testing/lib/th.h"

/* ---- per-case resource registry ---- */

/* Registers obj to be released by fn(obj). 0, or -1 when the registry is
 * full (then fn(obj) is called at once). */
int th_res_add(void (*fn)(void *), void *obj);
/* Removes obj from the registry without releasing it (no-op if absent). */
void th_res_forget(void *obj);
/* Releases every registered object, newest first. */
void th_res_release_all(void);

/* Runs a case, then releases what it registered, whatever its outcome. */
#define TH_ICASE(fn)                                                         \
    do {                                                                     \
        TH_RUN(fn);                                                          \
        th_res_release_all();                                                \
    } while (0)

/* ---- time ---- */

int64_t th_now_ms(void);
/* Sleeps ms milliseconds; used only as the poll interval of a deadline loop. */
void th_nap_ms(int ms);
/* A deadline scaled for slow builds: ms times $SW_TEST_SLOW (an integer
 * 1..20, default 1; make asan-test / tsan-test set it). The waiting
 * helpers (WAIT_FOR, ready files, exits, upstream counts, HTTP/2 waits)
 * apply it, so sanitizer runs keep every assertion and get more time. */
int th_slow_ms(int ms);

/* ---- files and temp dirs ---- */

/* Directory of the binaries: $SW_BIN_DIR if set, else the build dir this
 * test program lives in (BUILD/tests/<kind>/<prog>, if BUILD/spillway
 * exists), else "build". Borrowed. */
const char *th_bin_dir(void);
/* For test programs that are shell scripts at heart: checks that script
 * (a path from the repository root, the cwd) exists, sets SW_BIN_DIR to
 * th_bin_dir() unless it is set, and execs /bin/sh script [arg] (arg may be
 * NULL), whose PASS/FAIL lines are the program's. Returns only on failure,
 * after printing "FAIL: name: ...": the program's exit status. */
int th_exec_script(const char *name, const char *script, const char *arg);
/* Creates a temp dir (/tmp/spillway-itest-XXXXXX or under $TMPDIR) into
 * out; registered for removal (unless $SW_ITEST_KEEP is set). 0 or -1. */
int th_tmpdir(char *out, size_t len);
/* Removes a directory tree; 0 or -1. */
int th_rmtree(const char *path);
/* Reads a whole file. Returns owned, NUL-terminated data (not registered)
 * and its length in *len (may be NULL), or NULL. */
char *th_read_file(const char *path, size_t *len);
/* Writes a whole file; 0 or -1. */
int th_write_file(const char *path, const void *data, size_t len);
/* Prints the last `lines` lines of a file as "# " lines on stdout. */
void th_print_tail(const char *path, int lines);

/* ---- processes ---- */

typedef struct th_proc th_proc;

/* Starts argv[0] (a path) with argv; env_extra is a NULL-terminated list of
 * "NAME=value" added to the environment (may be NULL); output goes to
 * log_path. Returns an owned process, registered for cleanup (SIGKILL), or
 * NULL with a message printed as a "# " line. */
th_proc *th_proc_start(char *const argv[], char *const env_extra[], const char *log_path);
/* Kills (SIGKILL) if still running, reaps, frees. NULL-safe. */
void th_proc_free(th_proc *p);
pid_t th_proc_pid(const th_proc *p);
const char *th_proc_log(const th_proc *p);
/* 0 or -1 (already exited). */
int th_proc_signal(th_proc *p, int sig);
/* 1 while the process runs (reaps it when it has exited). */
int th_proc_alive(th_proc *p);
/* Waits until the process exits. 0 and *status (waitpid status) set, or -1
 * on timeout. */
int th_proc_wait_exit(th_proc *p, int timeout_ms, int *status);
/* Waits until path exists. 0, -1 on timeout, -2 if p (may be NULL) exited
 * first. */
int th_proc_wait_file(th_proc *p, const char *path, int timeout_ms);
/* Reads "key=value" from a ready file's text; returns the port after the
 * last ':' of the value, or 0 if absent. */
uint16_t th_ready_port(const char *text, const char *key);
/* VmRSS of pid in KiB, or -1. */
long th_proc_rss_kib(pid_t pid);
/* 1 if pid runs with AddressSanitizer (libasan mapped): its RSS then
 * includes the quarantine of freed memory and says nothing about leaks. */
int th_proc_has_asan(pid_t pid);

#endif
