/* Two CPU-bound phases, each in its own function, while the program advances a fake powercap
 * counter (argv[1], microjoules) at a known rate: argv[2] µJ/ms in the first phase and
 * argv[3] µJ/ms in the second, each phase argv[4] ms long. The counter is rewritten every
 * millisecond from the elapsed time, so the energy a profiler reads follows the phases. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static unsigned long long energy_uj;

/* Rewritten in place at a fixed width (no truncation), so a reader never sees an empty file,
 * and through one descriptor, as the kernel's file would stay the same file. */
static int counter_fd = -1;

static void write_counter(const char *path, unsigned long long v) {
    char buf[32];
    if (counter_fd < 0 && (counter_fd = open(path, O_WRONLY)) < 0) exit(2);
    int n = snprintf(buf, sizeof buf, "%020llu\n", v);
    if (pwrite(counter_fd, buf, n, 0) != n) exit(2);
}

static volatile unsigned long sink;

static void spin_and_count(const char *path, double rate, double ms) {
    double start = now_ms(), last = start;
    unsigned long long base = energy_uj;
    while (now_ms() - start < ms) {
        for (int i = 0; i < 20000; i++) sink += i * i;
        double t = now_ms();
        if (t - last >= 1.0) {
            energy_uj = base + (unsigned long long)(rate * (t - start));
            write_counter(path, energy_uj);
            last = t;
        }
    }
    energy_uj = base + (unsigned long long)(rate * ms);
    write_counter(path, energy_uj);
}

__attribute__((noinline)) static void low_power_phase(const char *p, double r, double ms) {
    spin_and_count(p, r, ms);
}

__attribute__((noinline)) static void high_power_phase(const char *p, double r, double ms) {
    spin_and_count(p, r, ms);
}

int main(int argc, char **argv) {
    if (argc != 5) return 64;
    energy_uj = strtoull("0", 0, 10);
    FILE *f = fopen(argv[1], "r");
    if (f) { if (fscanf(f, "%llu", &energy_uj) != 1) energy_uj = 0; fclose(f); }
    double ms = atof(argv[4]);
    low_power_phase(argv[1], atof(argv[2]), ms);
    high_power_phase(argv[1], atof(argv[3]), ms);
    return 0;
}
