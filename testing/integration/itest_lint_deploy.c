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

#include "testing/lib/th_proc.h"

int main(void)
{
    return th_exec_script("lint_deploy", "testing/deploy/lint_deploy.sh", NULL);
}
