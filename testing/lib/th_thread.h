/* th_thread.h — what threads this test process runs, for lifecycle tests. */
#ifndef TH_THREAD_H
#define TH_THREAD_H

/* Threads of this process named name (/proc/self/task/N/comm, as set by
 * pthread_setname_np). Main thread only. */
int th_threads_named(const char *name);
/* Waits up to timeout_ms (scaled by th_slow_ms) until no thread is named
 * name; returns how many are left (0: gone). A thread pthread_join() has
 * returned for can still be listed for a moment: the kernel clears its tid,
 * which wakes the joiner, before it removes the task. */
int th_threads_gone(const char *name, int timeout_ms);

#endif
