/* th_thread.c — see th_thread.h. */
#include "testing/lib/th_thread.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "testing/lib/th_proc.h"

int th_threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.') continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0;
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

int th_threads_gone(const char *name, int timeout_ms)
{
    struct timespec t0, now, nap = {0, 1000000};
    int64_t limit = (int64_t)th_slow_ms(timeout_ms) * 1000000;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int n = th_threads_named(name);
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (int64_t)(now.tv_sec - t0.tv_sec) * 1000000000 + (now.tv_nsec - t0.tv_nsec);
        if (n <= 0 || el >= limit) return n;
        nanosleep(&nap, NULL);
    }
}
