/* itest_demo.c — `make demo`, short, inside `make test`.
 *
 * Runs testing/deploy/demo_check.sh: testing/scenarios/demo.sh for 10 s
 * (spillway, the mock upstream and three load generators, with an upstream
 * outage halfway) with the binaries of this build directory, and checks its
 * exit status, that nothing was lost, that the breaker opened and closed and
 * that data was spilled and replayed. The script prints the PASS/FAIL lines.
 * cwd is the repository root; the build directory is found from this
 * program's path (<BUILD>/tests/integration/itest_demo).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char bin[4096];
    (void)argc;
    if (access("testing/deploy/demo_check.sh", R_OK) != 0) {
        printf("FAIL: demo: testing/deploy/demo_check.sh not found (cwd must be the repository root)\n");
        return 1;
    }
    if (system("command -v curl >/dev/null 2>&1") != 0) {
        printf("SKIP: demo: curl is not installed\n");
        return 0;
    }
    /* <BUILD>/tests/integration/itest_demo -> <BUILD> */
    size_t n = strlen(argv[0]);
    for (int up = 0; up < 3 && n > 0; up++) {
        while (n > 0 && argv[0][n - 1] != '/') n--;
        if (n > 0) n--;
    }
    if (n == 0 || n >= sizeof bin) snprintf(bin, sizeof bin, "build");
    else {
        memcpy(bin, argv[0], n);
        bin[n] = '\0';
    }
    if (getenv("SW_BIN_DIR") == NULL && setenv("SW_BIN_DIR", bin, 1) != 0) {
        printf("FAIL: demo: setenv\n");
        return 1;
    }
    fflush(stdout);
    execl("/bin/sh", "sh", "testing/deploy/demo_check.sh", (char *)NULL);
    printf("FAIL: demo: cannot run /bin/sh\n");
    return 1;
}
