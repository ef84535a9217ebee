/* evbase.h — the event_base every spillway thread runs its loop on.
 *
 * With epoll, libevent's change list is enabled: the additions, removals
 * and modifications of one fd made during a loop iteration are merged into
 * at most one epoll_ctl() before the next wait. evhttp disables reading
 * while it answers a request and enables it again right after, and the
 * export connections do the same around each response, so without the
 * change list every request costs several epoll_ctl() calls that cancel
 * out. (The change list must not be used with dup()ed fds; spillway has
 * none.) Other backends ignore the flag.
 */
#ifndef SW_EVBASE_H
#define SW_EVBASE_H

struct event_base;

/* A new event_base (owned: event_base_free), or NULL. */
struct event_base *evbase_new(void);

#endif
