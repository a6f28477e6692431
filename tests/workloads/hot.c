/* A CPU-bound program with a known hot function and known callers, for `ruperf record`.
 *
 *   hot SECONDS          burn SECONDS of CPU time in hot_spin (called main -> run_work ->
 *                        middle_layer -> hot_spin); SECONDS < 0 runs until killed
 *   hot SECONDS fork     a child renamed "hotchild" does the same; the parent waits for it
 *   hot -n CALLS         a fixed amount of work: CALLS calls of middle_layer (for benchmarks,
 *                        where overhead must show up as longer wall time)
 *
 * At exit it prints "cpu_seconds=<user+sys of this process and its waited children>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Calling it keeps hot_spin from being a leaf: compilers drop the frame pointer of leaves. */
__attribute__((noinline)) unsigned long sink(unsigned long x) {
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) unsigned long hot_spin(unsigned long x) {
    for (int i = 0; i < 200000; i++)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    return sink(x) + 1;
}

__attribute__((noinline)) unsigned long middle_layer(unsigned long x) {
    return hot_spin(x) ^ 1;
}

static long calls_made;

__attribute__((noinline)) unsigned long run_work(double seconds) {
    unsigned long x = 1;
    double start = cpu_now();
    while (seconds < 0 || cpu_now() - start < seconds) {
        x = middle_layer(x);
        calls_made++;
    }
    return x;
}

static double rusage_seconds(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        long calls = atol(argv[2]);
        unsigned long x = 1;
        for (long i = 0; i < calls; i++)
            x = middle_layer(x);
        printf("calls=%ld result=%lu\n", calls, x & 1);
        return 0;
    }
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    int do_fork = argc > 2 && strcmp(argv[2], "fork") == 0;
    unsigned long r;
    if (do_fork) {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_NAME, "hotchild", 0, 0, 0);
            r = run_work(seconds);
            _exit(r == 42 ? 3 : 0);
        }
        int st;
        waitpid(pid, &st, 0);
        r = 0;
    } else {
        r = run_work(seconds);
    }
    printf("cpu_seconds=%.6f calls=%ld result=%lu\n",
           rusage_seconds(RUSAGE_SELF) + rusage_seconds(RUSAGE_CHILDREN), calls_made, r & 1);
    return 0;
}
