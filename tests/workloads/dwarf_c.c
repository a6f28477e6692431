/* A CPU-bound program for DWARF call stacks: built with -O2 -fomit-frame-pointer -g, so only
 * the CFI (.eh_frame) can unwind it. The work splits into known shares:
 *
 *   main -> drive -> hash_work                      (about half)
 *   main -> drive -> descend (x24, recursive) -> mix_leaf (about a third)
 *   main -> drive -> qsort (libc) -> by_value       (the rest, through libc's own CFI)
 *
 *   dwarf_c SECONDS    run for SECONDS of CPU time
 *   dwarf_c -n ROUNDS  a fixed amount of work (for benchmarks, where overhead must show up
 *                      as longer wall time)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) unsigned long hash_work(const unsigned char *buf, int n) {
    unsigned long h = 1469598103934665603UL;
    for (int r = 0; r < 40; r++)
        for (int i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211UL;
    return h;
}

__attribute__((noinline)) unsigned long mix_leaf(unsigned long x) {
    for (int i = 0; i < 60000; i++)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

__attribute__((noinline)) unsigned long descend(int depth, unsigned long x) {
    unsigned long r;
    if (depth == 0)
        return mix_leaf(x);
    r = descend(depth - 1, x + depth);
    __asm__ volatile("" : "+r"(r)); /* no tail call: every level keeps its frame */
    return r ^ depth;
}

static int by_value(const void *a, const void *b) {
    unsigned v = *(const unsigned *)a, w = *(const unsigned *)b;
    return (v > w) - (v < w);
}

__attribute__((noinline)) unsigned long drive(double seconds, long rounds) {
    static unsigned char buf[4096];
    static unsigned vals[3000];
    unsigned long acc = 0, seed = 7;
    double start = cpu_now();
    for (int i = 0; i < 4096; i++)
        buf[i] = (unsigned char)(i * 31);
    for (long n = 0; rounds >= 0 ? n < rounds : cpu_now() - start < seconds; n++) {
        acc += hash_work(buf, sizeof buf);
        acc += descend(24, acc);
        for (int i = 0; i < 3000; i++) {
            seed = seed * 1103515245 + 12345;
            vals[i] = (unsigned)(seed >> 16);
        }
        qsort(vals, 3000, sizeof vals[0], by_value);
        acc += vals[1500];
    }
    return acc;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    long rounds = -1;
    if (argc > 2 && argv[1][0] == '-' && argv[1][1] == 'n')
        rounds = atol(argv[2]);
    printf("result=%lu\n", drive(seconds, rounds));
    return 0;
}
