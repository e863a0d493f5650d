// epoll and eventfd (glibc, Linux): Swift's Glibc module exports neither. Small wrappers keep
// the packed `struct epoll_event` and its union out of Swift.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdint.h>
#include <errno.h>

static inline int custos_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

/// Edge-triggered interest in input and hang-up, and in output only while `out` (a write that
/// found the socket full): always watching output would wake the loop each time a client reads
/// a reply. The descriptor is the event's key.
static inline int custos_epoll_add(int ep, int fd) {
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static inline int custos_epoll_watch_output(int ep, int fd, int out) {
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (out ? EPOLLOUT : 0);
    ev.data.fd = fd;
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/// Level-triggered input only (the loop's own wake-up descriptor).
static inline int custos_epoll_add_level(int ep, int fd) {
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/// Waits like epoll_wait and returns the ready descriptors in `fds` (at most 64).
static inline int custos_epoll_wait(int ep, int *fds, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(ep, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) fds[i] = evs[i].data.fd;
    return n;
}

static inline int custos_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
