/* itest_validate.c — `spillway validate --config FILE` end to end.
 *
 * Runs the real binary (th_bin_dir()/spillway: $SW_BIN_DIR or the test's build dir) with
 * its stdout and stderr captured in a temp file, each run bounded by a
 * deadline. Good files exit 0 with "FILE: ok"; bad files exit 1 with
 * "FILE:LINE:COL: key.path: message" lines.
 */
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_DEADLINE_MS 10000

static char bin[512];
static char tmpdir[64];

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void need_binary(void)
{
    snprintf(bin, sizeof bin, "%s/spillway", th_bin_dir());
    TH_ASSERT_MSG(access(bin, X_OK) == 0, "%s not built", bin);
}

/* Runs `bin validate --config cfgpath`; output (stdout+stderr) into out.
 * Returns the exit status, or -1 if it did not exit normally in time. */
static int run_validate(const char *cfgpath, char *out, size_t outlen)
{
    char capture[128];
    snprintf(capture, sizeof capture, "%s/out.txt", tmpdir);
    int fd = open(capture, O_RDWR | O_CREAT | O_TRUNC, 0600);
    TH_ASSERT(fd >= 0);
    pid_t pid = fork();
    TH_ASSERT(pid >= 0);
    if (pid == 0) {
        char *argv[] = { bin, "validate", "--config", (char *)cfgpath, NULL };
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, argv);
        _exit(127);
    }
    int status = 0;
    long long deadline = now_ms() + RUN_DEADLINE_MS;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline) {
        struct timespec d = { 0, 5 * 1000 * 1000 };
        nanosleep(&d, NULL);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    ssize_t n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(capture);
    if (w == 0 || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    TH_ASSERT(f != NULL);
    fputs(text, f);
    TH_ASSERT(fclose(f) == 0);
    return path;
}

static void setup(void)
{
    need_binary();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sw_itest_validate_XXXXXX");
    TH_ASSERT(mkdtemp(tmpdir) != NULL);
}

static void t_shipped_config_ok(void)
{
    char out[4096];
    setup();
    int rc = run_validate("configs/spillway.yaml", out, sizeof out);
    rmdir(tmpdir);
    TH_ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    TH_ASSERT_MSG(strstr(out, "configs/spillway.yaml: ok") != NULL, "%s", out);
}

static void t_minimal_config_ok(void)
{
    char out[4096];
    setup();
    const char *p = write_tmp("minimal.yaml",
                              "# only what differs from the defaults\n"
                              "receivers: { otlp: { http: { endpoint: 0.0.0.0:4318 } } }\n"
                              "exporters:\n  otlphttp:\n    endpoint: ${env:SW_ITEST_UP:-http://127.0.0.1:4319}\n");
    char want[300];
    snprintf(want, sizeof want, "%s: ok", p);
    int rc = run_validate(p, out, sizeof out);
    unlink(p);
    rmdir(tmpdir);
    TH_ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    TH_ASSERT_MSG(strstr(out, want) != NULL, "%s", out);
}

struct bad { const char *name, *yaml, *lines[3]; };

static const struct bad bads[] = {
    { "unknown.yaml", "queue:\n  max_bytes: 1MiB\n  max_bytez: 2MiB\n",
      { ":3:3: queue.max_bytez: unknown key" } },
    { "ranges.yaml",
      "processors:\n  cardinality:\n    aggregate_threshold: 0.9\n    drop_threshold: 0.8\n"
      "  priority:\n    weights: { critical: 0 }\n",
      { ":6:26: processors.priority.weights.critical: 0 is out of range" } },
    { "several.yaml",
      "dlq:\n  segment_size: 12XB\n  fsync: maybe\nexporters:\n  otlphttp:\n    timeout: 10\n",
      { ":2:17: dlq.segment_size: ", ":3:10: dlq.fsync: ", ":6:14: exporters.otlphttp.timeout: " } },
};

static void t_bad_configs_fail(void)
{
    char out[8192], want[400];
    setup();
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const char *p = write_tmp(bads[i].name, bads[i].yaml);
        int rc = run_validate(p, out, sizeof out);
        int missing = -1;
        for (int j = 0; j < 3 && bads[i].lines[j] && missing < 0; j++) {
            snprintf(want, sizeof want, "%s%s", p, bads[i].lines[j]);
            if (!strstr(out, want)) missing = j;
        }
        unlink(p);
        if (rc != 1 || missing >= 0) {
            rmdir(tmpdir);
            TH_ASSERT_MSG(0, "%s: exit %d, missing line %d, output: %s", bads[i].name, rc, missing, out);
        }
    }
    rmdir(tmpdir);
}

static void t_missing_file_fails(void)
{
    char out[4096];
    setup();
    int rc = run_validate("/nonexistent/spillway.yaml", out, sizeof out);
    rmdir(tmpdir);
    TH_ASSERT_MSG(rc == 1, "exit %d: %s", rc, out);
    TH_ASSERT_MSG(strstr(out, "/nonexistent/spillway.yaml") != NULL, "%s", out);
}

int main(void)
{
    TH_RUN(t_shipped_config_ok);
    TH_RUN(t_minimal_config_ok);
    TH_RUN(t_bad_configs_fail);
    TH_RUN(t_missing_file_fails);
    return th_done();
}
