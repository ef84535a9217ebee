/* th_proc.c — see th_proc.h. */
#include "testing/lib/th_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- registry ---- */

#define TH_RES_MAX 256

typedef struct th_res {
    void (*fn)(void *);
    void *obj;
} th_res;

static th_res th_res_tab[TH_RES_MAX];
static int th_res_n;
static int th_res_atexit_set;

static void th_res_atexit(void) { th_res_release_all(); }

int th_res_add(void (*fn)(void *), void *obj)
{
    if (!th_res_atexit_set) {
        atexit(th_res_atexit);
        th_res_atexit_set = 1;
    }
    if (th_res_n == TH_RES_MAX) {
        fn(obj);
        return -1;
    }
    th_res_tab[th_res_n].fn = fn;
    th_res_tab[th_res_n].obj = obj;
    th_res_n++;
    return 0;
}

void th_res_forget(void *obj)
{
    for (int i = th_res_n - 1; i >= 0; i--) {
        if (th_res_tab[i].obj != obj) continue;
        memmove(&th_res_tab[i], &th_res_tab[i + 1],
                (size_t)(th_res_n - i - 1) * sizeof(th_res));
        th_res_n--;
        return;
    }
}

void th_res_release_all(void)
{
    while (th_res_n > 0) {
        th_res r = th_res_tab[--th_res_n];
        r.fn(r.obj);
    }
}

/* ---- time ---- */

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- files ---- */

/* BUILD from BUILD/tests/<kind>/<program>, when BUILD/spillway exists. */
static int th_bin_dir_from_exe(char *out, size_t len)
{
    char exe[PATH_MAX], probe[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash) return -1;
        *slash = '\0';
    }
    snprintf(probe, sizeof(probe), "%s/spillway", exe);
    if (access(probe, X_OK) != 0 || strlen(exe) >= len) return -1;
    snprintf(out, len, "%s", exe);
    return 0;
}

const char *th_bin_dir(void)
{
    static char dir[PATH_MAX];
    const char *d = getenv("SW_BIN_DIR");
    if (d && *d) return d;
    if (!dir[0] && th_bin_dir_from_exe(dir, sizeof(dir)) != 0) snprintf(dir, sizeof(dir), "build");
    return dir;
}

int th_exec_script(const char *name, const char *script, const char *arg)
{
    if (access(script, R_OK) != 0) {
        printf("FAIL: %s: %s not found (cwd must be the repository root)\n", name, script);
        return 1;
    }
    if (getenv("SW_BIN_DIR") == NULL && setenv("SW_BIN_DIR", th_bin_dir(), 1) != 0) {
        printf("FAIL: %s: setenv\n", name);
        return 1;
    }
    fflush(stdout);
    execl("/bin/sh", "sh", script, arg, (char *)NULL);
    printf("FAIL: %s: cannot run /bin/sh\n", name);
    return 1;
}

static void th_tmpdir_release(void *p)
{
    if (!getenv("SW_ITEST_KEEP")) th_rmtree(p);
    free(p);
}

int th_tmpdir(char *out, size_t len)
{
    const char *base = getenv("TMPDIR");
    char *copy;
    if (!base || !*base) base = "/tmp";
    if ((size_t)snprintf(out, len, "%s/spillway-itest-XXXXXX", base) >= len) return -1;
    if (!mkdtemp(out)) return -1;
    copy = strdup(out);
    if (!copy) {
        th_rmtree(out);
        return -1;
    }
    th_res_add(th_tmpdir_release, copy);
    return 0;
}

static int th_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int th_rmtree(const char *path)
{
    return nftw(path, th_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

char *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t cap = 0, n = 0;
    if (!f) return NULL;
    for (;;) {
        if (cap - n < 4097) {
            char *nd = realloc(data, cap ? cap * 2 : 8192);
            if (!nd) goto fail;
            data = nd;
            cap = cap ? cap * 2 : 8192;
        }
        size_t got = fread(data + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) goto fail;
    fclose(f);
    data[n] = '\0';
    if (len) *len = n;
    return data;
fail:
    free(data);
    fclose(f);
    return NULL;
}

int th_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc = -1;
    if (!f) return -1;
    if (fwrite(data, 1, len, f) == len) rc = 0;
    if (fclose(f) != 0) rc = -1;
    return rc;
}

void th_print_tail(const char *path, int lines)
{
    size_t len = 0;
    char *text = th_read_file(path, &len);
    const char *p;
    int seen = 0;
    if (!text) return;
    p = text + len;
    while (p > text && seen <= lines) {
        p--;
        if (*p == '\n' && p + 1 < text + len) seen++;
    }
    if (seen > lines) p++;
    printf("# ---- tail of %s ----\n", path);
    while (*p) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        printf("# %.*s\n", n, p);
        p += n + (nl ? 1 : 0);
    }
    fflush(stdout);
    free(text);
}

/* ---- processes ---- */

struct th_proc {
    pid_t pid;
    int exited;   /* reaped */
    int status;   /* waitpid status once reaped */
    char log[512];
};

static void th_proc_release(void *p) { th_proc_free(p); }

static void th_proc_child(char *const argv[], char *const env_extra[], const char *log_path,
                          pid_t parent)
{
    int fd;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) dup2(fd, 0);
    for (size_t i = 0; env_extra && env_extra[i]; i++) putenv(env_extra[i]);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

th_proc *th_proc_start(char *const argv[], char *const env_extra[], const char *log_path)
{
    th_proc *p = calloc(1, sizeof(*p));
    pid_t parent = getpid();
    if (!p) return NULL;
    snprintf(p->log, sizeof(p->log), "%s", log_path);
    if (access(argv[0], X_OK) != 0) {
        printf("# cannot execute %s: %s\n", argv[0], strerror(errno));
        free(p);
        return NULL;
    }
    fflush(stdout);
    fflush(stderr);
    p->pid = fork();
    if (p->pid < 0) {
        printf("# fork: %s\n", strerror(errno));
        free(p);
        return NULL;
    }
    if (p->pid == 0) th_proc_child(argv, env_extra, log_path, parent);
    th_res_add(th_proc_release, p);
    return p;
}

void th_proc_free(th_proc *p)
{
    if (!p) return;
    th_res_forget(p);
    if (!p->exited) {
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR) {
        }
    }
    free(p);
}

pid_t th_proc_pid(const th_proc *p) { return p->pid; }
const char *th_proc_log(const th_proc *p) { return p->log; }

int th_proc_alive(th_proc *p)
{
    if (p->exited) return 0;
    if (waitpid(p->pid, &p->status, WNOHANG) == p->pid) p->exited = 1;
    return !p->exited;
}

int th_proc_signal(th_proc *p, int sig)
{
    if (!th_proc_alive(p)) return -1;
    return kill(p->pid, sig) == 0 ? 0 : -1;
}

int th_slow_ms(int ms)
{
    static int factor;
    if (!factor) {
        const char *e = getenv("SW_TEST_SLOW");
        long f = e ? strtol(e, NULL, 10) : 1;
        factor = f < 1 ? 1 : f > 20 ? 20 : (int)f;
    }
    return ms > INT_MAX / factor ? INT_MAX : ms * factor;
}

int th_proc_wait_exit(th_proc *p, int timeout_ms, int *status)
{
    int64_t deadline = th_now_ms() + th_slow_ms(timeout_ms);
    while (th_proc_alive(p)) {
        if (th_now_ms() >= deadline) return -1;
        th_nap_ms(10);
    }
    if (status) *status = p->status;
    return 0;
}

int th_proc_wait_file(th_proc *p, const char *path, int timeout_ms)
{
    int64_t deadline = th_now_ms() + th_slow_ms(timeout_ms);
    for (;;) {
        if (access(path, F_OK) == 0) return 0;
        if (p && !th_proc_alive(p)) return -2;
        if (th_now_ms() >= deadline) return -1;
        th_nap_ms(10);
    }
}

uint16_t th_ready_port(const char *text, const char *key)
{
    size_t klen = strlen(key);
    const char *line = text;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
            const char *colon = NULL;
            for (const char *q = line + klen; q < line + n; q++)
                if (*q == ':') colon = q;
            if (colon) return (uint16_t)strtoul(colon + 1, NULL, 10);
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

long th_proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

int th_proc_has_asan(pid_t pid)
{
    char path[64], line[512];
    int found = 0;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    f = fopen(path, "r");
    if (!f) return 0;
    while (!found && fgets(line, sizeof(line), f)) found = strstr(line, "libasan") != NULL;
    fclose(f);
    return found;
}
