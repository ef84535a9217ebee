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

#include "testing/lib/th_proc.h"

int main(void)
{
    return th_exec_script("prom_live", "testing/deploy/prom_live.sh", NULL);
}
