/* The machine's own cost of a 1 kHz measurement loop, without ruperf: a timerfd ticking every
 * 1 ms, one epoll_wait and one timerfd read per tick, one pread of each FILE per tick, and the
 * rows written to /dev/null in batches every 100 ticks. Prints ticks per second and the CPU
 * time used as a share of one core: no program doing the same reads can be cheaper here.
 *
 *   tick_floor SECONDS FILE...
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    int secs = atoi(argv[1]), nfiles = argc - 2, ticks = secs * 1000;
    int fds[64];
    for (int i = 0; i < nfiles && i < 64; i++)
        if ((fds[i] = open(argv[i + 2], O_RDONLY)) < 0) {
            perror(argv[i + 2]);
            return 1;
        }
    int out = open("/dev/null", O_WRONLY);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {{0, 1000000}, {0, 1000000}};
    timerfd_settime(tfd, 0, &its, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN}, got;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char buf[64], rows[100 * 64];
    int pending = 0;
    for (int t = 0; t < ticks;) {
        if (epoll_wait(ep, &got, 1, -1) != 1)
            continue;
        uint64_t n;
        if (read(tfd, &n, 8) != 8)
            continue;
        t++;
        long sum = 0;
        for (int i = 0; i < nfiles; i++)
            if (pread(fds[i], buf, sizeof buf - 1, 0) > 0)
                sum += atol(buf);
        pending += snprintf(rows + pending, 64, "%d,%ld\n", t, sum);
        if (t % 100 == 0) {
            if (write(out, rows, pending) < 0)
                return 1;
            pending = 0;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("%.1f ticks/s, CPU %.2f%% of one core\n", ticks / wall, 100 * cpu / wall);
    return 0;
}
