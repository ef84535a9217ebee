/* itest_scenarios.c — the short fault scenarios inside `make test`.
 *
 * Runs testing/scenarios/run.sh --short --tap (every scenario of
 * testing/scenarios/README.md, each under 30 s, four at a time) against the
 * binaries of this build directory and lets its "PASS: scenarios/<name>" /
 * "FAIL: scenarios/<name>: <verdict line>" lines through for
 * testing/run_tests.sh. The build directory is found from this program's
 * path (<BUILD>/tests/integration/itest_scenarios); cwd is the repository
 * root. Without curl the scenarios are skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes into out the directory three levels above path (the build dir),
 * "build" when path is too short. 0, or -1 when it does not fit. */
static int scen_build_dir(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path);
    for (int up = 0; up < 3; up++) {
        while (n > 0 && path[n - 1] != '/') n--;
        if (n == 0) return snprintf(out, cap, "build") < (int)cap ? 0 : -1;
        n--;
    }
    if (n == 0 || n >= cap) return -1;
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    char bin[4096];
    int rc = 1;
    (void)argc;
    if (access("testing/scenarios/run.sh", R_OK) != 0) {
        printf("FAIL: scenarios: testing/scenarios/run.sh not found (cwd must be the repository root)\n");
        goto done;
    }
    if (system("command -v curl >/dev/null 2>&1") != 0) {
        printf("SKIP: scenarios: curl is not installed\n");
        rc = 0;
        goto done;
    }
    if (scen_build_dir(argv[0], bin, sizeof(bin)) != 0 || setenv("SW_BIN_DIR", bin, 1) != 0) {
        printf("FAIL: scenarios: cannot derive the build directory from %s\n", argv[0]);
        goto done;
    }
    fflush(stdout);
    execl("/bin/sh", "sh", "testing/scenarios/run.sh", "--short", "--tap", "--jobs", "4",
          (char *)NULL);
    printf("FAIL: scenarios: cannot run /bin/sh\n");
done:
    return rc;
}
