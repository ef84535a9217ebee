/* itest_prometheus.c — the dashboard and the alert rules against a real
 * Prometheus scraping a real spillway, inside `make test`.
 *
 * Runs testing/deploy/prom_live.sh (spillway, the mock upstream with an
 * outage, the load generator and Debian's prometheus, all on 127.0.0.1;
 * every dashboard query must return data, every alert expression must
 * evaluate over metrics that have data, the breaker-open and DLQ-growing
 * alerts must have been pending or firing) with the binaries of this build
 * directory. The script prints the PASS/FAIL lines. cwd is the repository
 * root; the build directory is found from this program's path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char bin[4096];
    (void)argc;
    if (access("testing/deploy/prom_live.sh", R_OK) != 0) {
        printf("FAIL: prom_live: testing/deploy/prom_live.sh not found (cwd must be the repository root)\n");
        return 1;
    }
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
        printf("FAIL: prom_live: setenv\n");
        return 1;
    }
    fflush(stdout);
    execl("/bin/sh", "sh", "testing/deploy/prom_live.sh", (char *)NULL);
    printf("FAIL: prom_live: cannot run /bin/sh\n");
    return 1;
}
