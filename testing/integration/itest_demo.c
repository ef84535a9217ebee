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

#include "testing/lib/th_proc.h"

int main(void)
{
    if (system("command -v curl >/dev/null 2>&1") != 0) {
        printf("SKIP: demo: curl is not installed\n");
        return 0;
    }
    return th_exec_script("demo", "testing/deploy/demo_check.sh", NULL);
}
