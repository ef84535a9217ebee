/* itest_lint_deploy.c — `make lint-deploy` inside `make test`.
 *
 * Runs testing/deploy/lint_deploy.sh (docker-compose config, the Dockerfile
 * checker, promtool check config / check rules / test rules, the alert,
 * dashboard and kustomize checks) with the binaries of this build
 * directory. The script prints the "PASS: deploy/..." / "FAIL: deploy/..."
 * lines. cwd is the repository root; the build directory is found from this
 * program's path (<BUILD>/tests/integration/itest_lint_deploy).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char bin[4096];
    (void)argc;
    if (access("testing/deploy/lint_deploy.sh", R_OK) != 0) {
        printf("FAIL: lint_deploy: testing/deploy/lint_deploy.sh not found (cwd must be the repository root)\n");
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
        printf("FAIL: lint_deploy: setenv\n");
        return 1;
    }
    fflush(stdout);
    execl("/bin/sh", "sh", "testing/deploy/lint_deploy.sh", (char *)NULL);
    printf("FAIL: lint_deploy: cannot run /bin/sh\n");
    return 1;
}
