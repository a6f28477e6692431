/* The machine's own cost of 10 kHz sampling, without any recorder: a fixed loop is timed bare,
 * then again while a cpu-clock event samples this process every 100 us (callchains on, records
 * going to a ring buffer nobody reads, as cheap as sampling gets). Prints both times and the
 * ratio: no recorder can be cheaper than this on the same machine.
 *
 *   sample_floor ITERATIONS [PERIOD_NS]
 */
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline)) static unsigned long spin(long n) {
    unsigned long x = 1;
    for (long i = 0; i < n; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    long n = atol(argv[1]);
    long period = argc > 2 ? atol(argv[2]) : 100000;
    double t0 = now();
    unsigned long x = spin(n);
    double bare = now() - t0;

    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_CPU_CLOCK;
    a.sample_period = period;
    a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_PERIOD |
                    PERF_SAMPLE_CALLCHAIN;
    a.disabled = 1;
    a.watermark = 1;
    a.wakeup_watermark = 1 << 30;
    int fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd < 0) {
        perror("perf_event_open");
        return 1;
    }
    /* 16 MiB of ring: room for every record of a few seconds at 10 kHz. */
    if (mmap(0, (1 + 4096) * 4096L, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    t0 = now();
    x ^= spin(n);
    double sampled = now() - t0;
    printf("bare %.3f s, self-sampled every %ld ns %.3f s, ratio %.3f (%lu)\n", bare, period,
           sampled, sampled / bare, x & 1);
    return 0;
}
