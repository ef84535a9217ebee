/* th_thread.h — what threads this test process runs, for lifecycle tests. */
#ifndef TH_THREAD_H
#define TH_THREAD_H

/* Threads of this process named name (/proc/self/task/N/comm, as set by
 * pthread_setname_np). Main thread only. */
int th_threads_named(const char *name);

#endif
